//! `cargo xtask fuzz [--smoke] [--time SECS] [--runs N] [TARGET…]`: the libFuzzer targets of
//! `fuzz/` (their own workspace, with its own `Cargo.lock`), built with `cargo fuzz build` and
//! then run one after the other.
//!
//! - `cargo-fuzz` is installed by `cargo xtask setup` into `.tools/cargo-fuzz` (git-ignored,
//!   version pinned here).
//! - The machine has one stable toolchain; the sanitizer and coverage flags `cargo fuzz`
//!   passes are unstable ones, so the build runs with `RUSTC_BOOTSTRAP=1`. `--sanitizer none`
//!   (default here; `--asan` for AddressSanitizer): the crates forbid `unsafe`, so ASan finds
//!   nothing Rust's own checks miss, and the build is faster. Debug assertions are on.
//! - `fuzz/Cargo.lock` is checked first (`cargo fetch --locked`): cargo-fuzz has no `--locked`,
//!   and a lock file the build would have to change fails the command instead.
//! - Builds go to `target/fuzz` (inside the git-ignored `target/`). Each target runs with the
//!   committed seeds of `fuzz/corpus/<target>/` (read only) and a working corpus in
//!   `target/fuzz/corpus/<target>/` that keeps what earlier runs found; crash, timeout and
//!   out-of-memory inputs go to `target/fuzz/artifacts/<target>/` (never into git: a finding
//!   becomes a regression test next to the code it fixes).
//! - Every run is bounded: `--time` seconds per target (default 60; `--smoke`: 4), and
//!   `--runs` executions (default unbounded; libFuzzer's `-runs`), with a 10 s per-input
//!   timeout and a 2 GiB RSS limit.
//! - At the end a table: per target the executions, coverage (`cov`: edges, `ft`: features,
//!   from libFuzzer's last status line), the corpus size and the result; also appended to
//!   `target/fuzz/results.tsv`. The command fails when any target crashed, leaked, timed out or
//!   ran out of memory.

use std::{
    env, fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use crate::conformance::root;

/// The pinned `cargo-fuzz`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Where `cargo xtask setup` installs it, relative to the workspace root (git-ignored).
const CARGO_FUZZ_ROOT: &str = ".tools/cargo-fuzz";
/// The fuzz crate, relative to the workspace root.
const FUZZ_DIR: &str = "fuzz";
/// Build and run output, relative to the workspace root.
const OUT_DIR: &str = "target/fuzz";
/// The host triple `cargo fuzz` builds for.
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Every target, in the order they run.
pub(crate) const TARGETS: &[&str] = &[
    "www_authenticate",
    "bearer_header",
    "jwt",
    "jwks",
    "jsonrpc",
    "form",
    "as_endpoints",
    "registration",
    "cimd",
    "redirect_uri",
    "scope",
    "pkce",
    "cookie",
    "dpop",
    "client_assertion",
];

fn cargo_fuzz() -> PathBuf {
    root().join(CARGO_FUZZ_ROOT).join("bin").join("cargo-fuzz")
}

/// Whether the pinned `cargo-fuzz` is installed.
pub(crate) fn present() -> bool {
    Command::new(cargo_fuzz())
        .arg("--version")
        .output()
        .is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(CARGO_FUZZ_VERSION)
        })
}

/// `cargo install --locked cargo-fuzz@<pinned>` into [`CARGO_FUZZ_ROOT`].
pub(crate) fn install() -> bool {
    let root_dir = root().join(CARGO_FUZZ_ROOT);
    crate::cargo(
        &[
            "install",
            "--locked",
            "--root",
            &root_dir.to_string_lossy(),
            &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        ],
        &[],
    )
}

/// What one target's run gave.
struct Outcome {
    target: String,
    runs: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<u64>,
    seconds: u64,
    result: String,
}

struct Options {
    smoke: bool,
    seconds: u64,
    runs: Option<u64>,
    asan: bool,
    targets: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        smoke: false,
        seconds: 60,
        runs: None,
        asan: false,
        targets: Vec::new(),
    };
    let mut time_given = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--smoke" => o.smoke = true,
            "--asan" => o.asan = true,
            "--time" => {
                o.seconds = number("--time")?;
                time_given = true;
            }
            "--runs" => o.runs = Some(number("--runs")?),
            t if TARGETS.contains(&t) => o.targets.push(t.to_owned()),
            other => {
                return Err(format!(
                    "unknown argument {other}; targets: {}",
                    TARGETS.join(" ")
                ));
            }
        }
    }
    if o.smoke && !time_given {
        o.seconds = 4;
    }
    if o.targets.is_empty() {
        o.targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(o)
}

/// `cargo xtask fuzz …`.
pub(crate) fn run(args: &[String]) -> bool {
    let options = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "xtask fuzz: {e}\nusage: cargo xtask fuzz [--smoke] [--time SECS] [--runs N] [--asan] [TARGET…]"
            );
            return false;
        }
    };
    let installed = present() || (install() && present());
    if !installed {
        eprintln!(
            "xtask fuzz: cargo-fuzz {CARGO_FUZZ_VERSION} is not installed (cargo xtask setup)"
        );
        return false;
    }
    let root = root();
    let out = root.join(OUT_DIR);
    if !build(&root, &out, options.asan) {
        return false;
    }
    let mut outcomes = Vec::new();
    for target in &options.targets {
        outcomes.push(run_target(&root, &out, target, &options));
    }
    report(&out, &outcomes, &options);
    outcomes.iter().all(|o| o.result == "ok")
}

fn build(root: &Path, out: &Path, asan: bool) -> bool {
    // cargo-fuzz has no `--locked`: check first that `fuzz/Cargo.lock` already pins every
    // dependency, so that the build below cannot change it (as the workspace's `--locked`).
    let manifest = root.join(FUZZ_DIR).join("Cargo.toml");
    let manifest = manifest.to_string_lossy();
    if !crate::cargo(&["fetch", "--locked", "--manifest-path", &manifest], &[]) {
        eprintln!(
            "xtask fuzz: {FUZZ_DIR}/Cargo.lock does not pin every dependency of {manifest}; \
             update it (`cargo fetch --manifest-path {manifest}`) and commit it"
        );
        return false;
    }
    let mut args: Vec<String> = vec![
        "fuzz".into(),
        "build".into(),
        "--fuzz-dir".into(),
        root.join(FUZZ_DIR).to_string_lossy().into_owned(),
        "--target-dir".into(),
        out.to_string_lossy().into_owned(),
        "--release".into(),
        "--debug-assertions".into(),
    ];
    if !asan {
        args.extend(["--sanitizer".into(), "none".into()]);
    }
    eprintln!("== RUSTC_BOOTSTRAP=1 cargo {}", args.join(" "));
    let status = Command::new(cargo_fuzz())
        .args(&args)
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "CARGO_BUILD_JOBS",
            env::var("CARGO_BUILD_JOBS").unwrap_or_else(|_| "2".into()),
        )
        .status();
    match status {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("xtask fuzz: the build failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("xtask fuzz: cannot run cargo-fuzz: {e}");
            false
        }
    }
}

/// The number after `key` in a libFuzzer status line (`cov: 123`, `corp: 318/27Kb`).
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    // `corp: 318/27Kb`: the count before the slash.
    rest.split_whitespace()
        .next()?
        .split('/')
        .next()?
        .parse()
        .ok()
}

fn run_target(root: &Path, out: &Path, target: &str, options: &Options) -> Outcome {
    let binary = out.join(TRIPLE).join("release").join(target);
    let work = out.join("corpus").join(target);
    let artifacts = out.join("artifacts").join(target);
    let seeds = root.join(FUZZ_DIR).join("corpus").join(target);
    for dir in [&work, &artifacts] {
        let _ = fs::create_dir_all(dir);
    }
    let mut args = vec![
        format!("-max_total_time={}", options.seconds),
        "-timeout=10".to_owned(),
        "-rss_limit_mb=2048".to_owned(),
        "-max_len=65536".to_owned(),
        "-print_final_stats=1".to_owned(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ];
    if let Some(runs) = options.runs {
        args.push(format!("-runs={runs}"));
    }
    args.push(work.to_string_lossy().into_owned());
    args.push(seeds.to_string_lossy().into_owned());
    eprintln!("== fuzz {target}: {} {}", binary.display(), args.join(" "));
    let started = Instant::now();
    let mut outcome = Outcome {
        target: target.to_owned(),
        runs: None,
        cov: None,
        ft: None,
        corpus: None,
        seconds: 0,
        result: "ok".to_owned(),
    };
    let child = Command::new(&binary)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            outcome.result = format!("cannot start: {e}");
            return outcome;
        }
    };
    let log_path = out.join(format!("{target}.log"));
    let mut log = fs::File::create(&log_path).ok();
    let mut tail: Vec<String> = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if line.starts_with('#') && line.contains("cov: ") {
                outcome.cov = field(&line, "cov: ").or(outcome.cov);
                outcome.ft = field(&line, "ft: ").or(outcome.ft);
                outcome.corpus = field(&line, "corp: ").or(outcome.corpus);
            }
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units: ") {
                outcome.runs = n.trim().parse().ok();
            }
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
    }
    let status = child.wait();
    outcome.seconds = started.elapsed().as_secs();
    if !status.is_ok_and(|s| s.success()) {
        let reason = tail
            .iter()
            .find_map(|l| {
                [
                    "deadly signal",
                    "panicked at",
                    "timeout",
                    "out-of-memory",
                    "leak",
                ]
                .iter()
                .find(|k| l.contains(*k))
                .map(|_| l.clone())
            })
            .unwrap_or_else(|| "failed".to_owned());
        outcome.result = format!("FAILED: {reason}");
        eprintln!("{}", tail.join("\n"));
        eprintln!(
            "xtask fuzz: {target} failed; the input is in {} (log {})",
            artifacts.display(),
            log_path.display()
        );
    }
    outcome
}

fn report(out: &Path, outcomes: &[Outcome], options: &Options) {
    let show = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
    println!(
        "\n{:<18} {:>12} {:>7} {:>8} {:>7} {:>6}  result",
        "target", "executions", "cov", "ft", "corpus", "secs"
    );
    let mut tsv = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("results.tsv"))
        .ok();
    for o in outcomes {
        println!(
            "{:<18} {:>12} {:>7} {:>8} {:>7} {:>6}  {}",
            o.target,
            show(o.runs),
            show(o.cov),
            show(o.ft),
            show(o.corpus),
            o.seconds,
            o.result
        );
        if let Some(f) = tsv.as_mut() {
            let _ = writeln!(
                f,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                o.target,
                show(o.runs),
                show(o.cov),
                show(o.ft),
                show(o.corpus),
                o.seconds,
                if options.smoke { "smoke" } else { "run" },
                o.result
            );
        }
    }
    let failed = outcomes.iter().filter(|o| o.result != "ok").count();
    println!("fuzz: {} passed, {failed} failed", outcomes.len() - failed);
}
