//! The official Python MCP SDK client for `tests/tests/python_client.rs`: a venv in
//! `.tools/python-client` (git-ignored) made with the machine's `python3` (>= 3.10, which the
//! SDK needs), holding exactly the packages pinned with hashes in
//! `tests/python-client/requirements.txt` (`pip install --require-hashes --no-deps`).
//!
//! The pins are made with pip-tools from `tests/python-client/requirements.in`:
//! `pip-compile --generate-hashes --strip-extras --allow-unsafe -o requirements.txt requirements.in`.

use std::{fs, path::Path, process::Command};

/// The committed requirements, relative to the workspace root.
const REQUIREMENTS: &str = "tests/python-client/requirements.txt";
/// The venv, relative to the workspace root (git-ignored); the test reads it there.
const VENV: &str = ".tools/python-client";
/// The oldest Python the SDK supports (its `Requires-Python`).
const MIN_MINOR: u32 = 10;

/// Whether the venv holds an install of the committed requirements: the copy of
/// `requirements.txt` that [`install`] leaves in the venv after a successful install matches.
pub(crate) fn present() -> bool {
    let root = crate::conformance::root();
    let venv = root.join(VENV);
    match (
        fs::read(root.join(REQUIREMENTS)),
        fs::read(venv.join("requirements.txt")),
    ) {
        (Ok(committed), Ok(installed)) => {
            committed == installed && venv.join("bin").join("python").is_file()
        }
        _ => false,
    }
}

/// `python3 -m venv --clear`, then `pip install --require-hashes --no-deps -r`, then the marker.
pub(crate) fn install() -> bool {
    let root = crate::conformance::root();
    let venv = root.join(VENV);
    let Some(minor) = python3_minor() else {
        eprintln!("xtask: no python3 found; install Python 3.{MIN_MINOR}+ with its venv module");
        return false;
    };
    if minor < MIN_MINOR {
        eprintln!("xtask: python3 is 3.{minor}; the MCP Python SDK needs 3.{MIN_MINOR}+");
        return false;
    }
    let venv_text = venv.to_string_lossy();
    let python = venv.join("bin").join("python");
    let requirements = root.join(REQUIREMENTS);
    crate::sh("python3", &["-m", "venv", "--clear", &venv_text])
        && crate::sh(
            &python.to_string_lossy(),
            &[
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--require-hashes",
                "--no-deps",
                "-r",
                &requirements.to_string_lossy(),
            ],
        )
        && copy_marker(&requirements, &venv)
}

fn copy_marker(requirements: &Path, venv: &Path) -> bool {
    match fs::copy(requirements, venv.join("requirements.txt")) {
        Ok(_) => true,
        Err(error) => {
            eprintln!("xtask: cannot copy {}: {error}", requirements.display());
            false
        }
    }
}

/// `python3 --version` → its minor version (for 3.x).
fn python3_minor() -> Option<u32> {
    let output = Command::new("python3").arg("--version").output().ok()?;
    // "Python 3.11.7" (older Pythons printed it on stderr).
    let text = String::from_utf8_lossy(if output.stdout.is_empty() {
        &output.stderr
    } else {
        &output.stdout
    })
    .into_owned();
    let version = text.trim().strip_prefix("Python 3.")?;
    version.split('.').next()?.parse().ok()
}
