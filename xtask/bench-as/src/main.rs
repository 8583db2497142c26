//! `bench-as`: the driver and load generator of `cargo xtask bench-as` (run it through xtask,
//! which installs the reference server, builds this and the demo in release, and pins this
//! process to CPU 1 with `taskset`).
//!
//! For each authorization server in turn (the TypeScript SDK's reference server, then our demo
//! `example-mcp-server --auto-approve` on its in-memory store (`--db :memory:`, the floor: what
//! HTTP, the grant logic and signing cost without a database), with a fresh SQLite file, then
//! with PostgreSQL when the demo accepts `--db postgres://…`), pinned to CPU 0 with
//! `taskset -c 0`:
//!
//! 1. register one public client (RFC 7591);
//! 2. warm up (a few hundred grants of each kind, not measured);
//! 3. at concurrency 1, then 16: N complete `authorization_code` grants (`GET /authorize` with
//!    PKCE S256 and `resource`, the redirect's `code` taken without following it, `POST
//!    /token`), then N `refresh_token` grants in chains (one chain per worker, each grant
//!    presenting the refresh token of the previous answer of its chain).
//!
//! Per phase it reports grants per second, the server's CPU time per grant (utime + stime of
//! the whole process and its reaped children, from `/proc/PID/stat`), p50/p99 latency of one
//! grant (for a code grant, both requests), and its own CPU use, so that a saturated load
//! generator shows. Everything is loopback, and every loop is bounded in count and time.

#[path = "../../src/procfs.rs"]
mod procfs;

use std::{
    ffi::OsString,
    fmt::Write as _,
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};

/// The redirect URI of the benchmark's client; nothing listens there (the code is read from the
/// `Location` header).
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// How long a server may take to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of each HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one measured phase may take before the run is abandoned.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);
/// The smallest `--n` accepted: one refresh chain per worker.
const MIN_N: usize = 16;
/// The largest `--n` accepted.
const MAX_N: usize = 100_000;
/// Grants per phase by default: a whole run (three servers, four phases each) takes a minute
/// or two on this 2-core machine, and a phase lasts seconds (CPU time is counted in ticks).
const DEFAULT_N: usize = 3000;
/// Warm-up grants of each kind before the measured phases.
const WARMUP: usize = 300;
/// The concurrencies measured.
const CONCURRENCY: [usize; 2] = [1, 16];
/// The CPU the server is pinned to (the load generator is on another, pinned by xtask).
const SERVER_CPU: &str = "0";
/// The PostgreSQL of the tests, unless `MCP_AUTH_TEST_POSTGRES_URL` says otherwise.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The largest error body quoted in a message.
const QUOTE: usize = 300;

const USAGE: &str = "\
usage: bench-as --server PATH --node PATH --reference SCRIPT --work-dir DIR
                [--n N] [--only memory|sqlite|postgres|reference]
  --server PATH       the release example-mcp-server
  --node PATH         Node >= 22, to run the reference server
  --reference SCRIPT  reference-as.mjs, next to its node_modules
  --work-dir DIR      where the SQLite databases and server logs go
  --n N               grants per phase (default 3000; 16 to 100000)
  --only KIND         measure one server only (repeatable)
env MCP_AUTH_TEST_POSTGRES_URL: the PostgreSQL for --db postgres://… (default
  postgres://postgres@127.0.0.1:5432/test)";

/// The servers measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reference,
    /// Our server on its in-memory store: the floor under every durable store (HTTP, grant
    /// logic, signing), so a row of it says what the store itself costs.
    Memory,
    Sqlite,
    Postgres,
}

impl Kind {
    const ALL: [Self; 4] = [Self::Reference, Self::Memory, Self::Sqlite, Self::Postgres];

    fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }
}

/// The command line.
#[derive(Debug)]
struct Options {
    server: PathBuf,
    node: PathBuf,
    reference: PathBuf,
    work_dir: PathBuf,
    n: usize,
    only: Vec<Kind>,
    postgres_url: String,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut server = None;
    let mut node = None;
    let mut reference = None;
    let mut work_dir = None;
    let mut n = DEFAULT_N;
    let mut only = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--server" => server = Some(PathBuf::from(value()?)),
            "--node" => node = Some(PathBuf::from(value()?)),
            "--reference" => reference = Some(PathBuf::from(value()?)),
            "--work-dir" => work_dir = Some(PathBuf::from(value()?)),
            "--n" => {
                let text = value()?;
                n = text
                    .parse()
                    .ok()
                    .filter(|n| (MIN_N..=MAX_N).contains(n))
                    .ok_or_else(|| {
                        format!("--n wants a number from {MIN_N} to {MAX_N}, not {text}")
                    })?;
            }
            "--only" => {
                let text = value()?;
                only.push(Kind::parse(&text).ok_or_else(|| {
                    format!("--only wants memory, sqlite, postgres or reference, not {text}")
                })?);
            }
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    let postgres_url = std::env::var("MCP_AUTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    Ok(Options {
        server: server.ok_or("--server is required")?,
        node: node.ok_or("--node is required")?,
        reference: reference.ok_or("--reference is required")?,
        work_dir: work_dir.ok_or("--work-dir is required")?,
        n,
        only,
        postgres_url,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bench-as: {error}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench-as: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-as: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One measured phase.
#[derive(Debug)]
struct Row {
    server: &'static str,
    phase: &'static str,
    concurrency: usize,
    grants: usize,
    wall: Duration,
    /// Server CPU time in clock ticks.
    server_ticks: u64,
    /// This process's CPU time in clock ticks.
    loadgen_ticks: u64,
    /// Sorted.
    latencies: Vec<Duration>,
}

async fn run(options: &Options) -> Result<(), String> {
    let clock_ticks = procfs::clock_ticks();
    fs::create_dir_all(&options.work_dir)
        .map_err(|e| format!("{}: {e}", options.work_dir.display()))?;
    let wanted = |kind: Kind| options.only.is_empty() || options.only.contains(&kind);
    let support = postgres_support(&options.server)?;
    let postgres = support != PostgresSupport::None;
    if wanted(Kind::Postgres) && !postgres {
        let message = "this example-mcp-server does not accept --db postgres://…";
        if options.only.contains(&Kind::Postgres) {
            return Err(message.to_owned());
        }
        eprintln!("== postgres: not measured: {message}");
    }
    let mut rows = Vec::new();
    for kind in Kind::ALL {
        if !wanted(kind) || (kind == Kind::Postgres && !postgres) {
            continue;
        }
        let mut schema = None;
        let server = match kind {
            Kind::Reference => Server::start_reference(options)?,
            Kind::Memory => Server::start_ours(options, kind, &[":memory:".into()])?,
            Kind::Sqlite => {
                let db = options
                    .work_dir
                    .join(format!("bench-as-{}.db", std::process::id()));
                remove_sqlite(&db);
                let mut server = Server::start_ours(options, kind, &[db.clone().into()])?;
                server.sqlite = Some(db);
                server
            }
            Kind::Postgres => {
                let fresh = Schema::create(&options.postgres_url, support)?;
                let server = Server::start_ours(options, kind, &fresh.args)?;
                schema = Some(fresh);
                server
            }
        };
        let bench = Bench::connect(&server).await?;
        eprintln!(
            "== {}: pid {} on CPU {SERVER_CPU}, token endpoint {}, resource {}",
            kind.name(),
            server.pid,
            bench.token,
            bench.resource
        );
        let tokens = code_phase(&bench, WARMUP, 16).await?.1;
        refresh_phase(&bench, WARMUP, 16, tokens).await?;
        for concurrency in CONCURRENCY {
            let (row, tokens) = measure(&server, kind, "code", concurrency, clock_ticks, {
                code_phase(&bench, options.n, concurrency)
            })
            .await?;
            rows.push(row);
            let (row, ()) = measure(&server, kind, "refresh", concurrency, clock_ticks, async {
                refresh_phase(&bench, options.n, concurrency, tokens)
                    .await
                    .map(|l| (l, ()))
            })
            .await?;
            rows.push(row);
        }
        drop(server);
        drop(schema);
    }
    println!();
    println!("{}", table(&rows, clock_ticks));
    Ok(())
}

/// Runs `phase`, measuring the server's and this process's CPU time around it.
async fn measure<T>(
    server: &Server,
    kind: Kind,
    phase: &'static str,
    concurrency: usize,
    clock_ticks: u64,
    work: impl Future<Output = Result<(Vec<Duration>, T), String>>,
) -> Result<(Row, T), String> {
    let server_before = cpu_ticks(&server.pid.to_string(), true)?;
    let self_before = cpu_ticks("self", false)?;
    let started = Instant::now();
    let (mut latencies, out) =
        tokio::time::timeout(PHASE_TIMEOUT, work)
            .await
            .map_err(|_| {
                format!(
                    "{} {phase} at concurrency {concurrency} took over {PHASE_TIMEOUT:?}",
                    kind.name()
                )
            })??;
    let wall = started.elapsed();
    let server_ticks = cpu_ticks(&server.pid.to_string(), true)? - server_before;
    let loadgen_ticks = cpu_ticks("self", false)? - self_before;
    latencies.sort_unstable();
    let row = Row {
        server: kind.name(),
        phase,
        concurrency,
        grants: latencies.len(),
        wall,
        server_ticks,
        loadgen_ticks,
        latencies,
    };
    eprintln!(
        "   {:<9} {:<7} c={:<2} {} grants in {:.2} s, server {:.0} µs CPU per grant",
        row.server,
        row.phase,
        row.concurrency,
        row.grants,
        row.wall.as_secs_f64(),
        cpu_per_grant(&row, clock_ticks)
    );
    Ok((row, out))
}

fn cpu_per_grant(row: &Row, clock_ticks: u64) -> f64 {
    row.server_ticks as f64 * 1e6 / clock_ticks as f64 / row.grants.max(1) as f64
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // The smallest value with at least `percent`% of the values at or below it.
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// The printed table; `×ref` is this row's server CPU per grant over the reference server's
/// for the same phase and concurrency.
fn table(rows: &[Row], clock_ticks: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<7} {:>4} {:>6} {:>9} {:>12} {:>6} {:>9} {:>8} {:>8} {:>9}",
        "server",
        "phase",
        "conc",
        "grants",
        "grants/s",
        "CPU µs/grant",
        "×ref",
        "srv CPU%",
        "p50 ms",
        "p99 ms",
        "gen CPU%"
    );
    for row in rows {
        let cpu = cpu_per_grant(row, clock_ticks);
        let reference = rows.iter().find(|r| {
            r.server == Kind::Reference.name()
                && r.phase == row.phase
                && r.concurrency == row.concurrency
        });
        let ratio = reference
            .map(|r| cpu_per_grant(r, clock_ticks))
            .filter(|r| *r > 0.0)
            .map_or_else(|| "-".to_owned(), |r| format!("{:.2}", cpu / r));
        let wall = row.wall.as_secs_f64().max(1e-9);
        let percent = |ticks: u64| ticks as f64 / clock_ticks as f64 / wall * 100.0;
        let _ = writeln!(
            out,
            "{:<9} {:<7} {:>4} {:>6} {:>9.0} {:>12.0} {:>6} {:>9.0} {:>8.2} {:>8.2} {:>9.0}",
            row.server,
            row.phase,
            row.concurrency,
            row.grants,
            row.grants as f64 / wall,
            cpu,
            ratio,
            percent(row.server_ticks),
            percentile(&row.latencies, 50).as_secs_f64() * 1e3,
            percentile(&row.latencies, 99).as_secs_f64() * 1e3,
            percent(row.loadgen_ticks),
        );
    }
    let _ = write!(
        out,
        "CPU µs/grant: server utime+stime (/proc/PID/stat, {clock_ticks} ticks/s) per grant; \
         ×ref: over the reference server's; srv/gen CPU%: of one core, server on CPU \
         {SERVER_CPU}, load generator on another; a code grant is GET /authorize + POST /token"
    );
    out
}

/// utime + stime of `/proc/{pid}/stat`, plus cutime + cstime (reaped children) when
/// `children`, in clock ticks.
fn cpu_ticks(pid: &str, children: bool) -> Result<u64, String> {
    let [utime, stime, cutime, cstime] = procfs::stat_times(pid)?;
    Ok(utime + stime + if children { cutime + cstime } else { 0 })
}

/// What the demo's usage says it accepts for PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostgresSupport {
    /// No PostgreSQL `--db`.
    None,
    /// `--db postgres://…`; the schema is the URL's `search_path`.
    Url,
    /// `--db postgres://…` and `--db-schema NAME` (created if missing).
    UrlAndSchema,
}

fn postgres_support(server: &Path) -> Result<PostgresSupport, String> {
    let output = Command::new(server)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    Ok(if !text.contains("postgres://") {
        PostgresSupport::None
    } else if text.contains("--db-schema") {
        PostgresSupport::UrlAndSchema
    } else {
        PostgresSupport::Url
    })
}

/// A fresh PostgreSQL schema for one server, dropped afterwards, so that the run starts from an
/// empty database and leaves nothing behind. The demo creates it when it takes `--db-schema`;
/// otherwise `psql` creates it and the server's URL names it in `search_path`.
#[derive(Debug)]
struct Schema {
    admin_url: String,
    name: String,
    /// The server's `--db` and any further arguments.
    args: Vec<OsString>,
}

impl Schema {
    fn create(admin_url: &str, support: PostgresSupport) -> Result<Self, String> {
        let mut unique = [0u8; 6];
        getrandom::fill(&mut unique).map_err(|e| format!("no randomness: {e}"))?;
        let name = format!(
            "bench_as_{}",
            unique
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let args = if support == PostgresSupport::UrlAndSchema {
            vec![admin_url.into(), "--db-schema".into(), name.clone().into()]
        } else {
            vec![
                format!(
                    "{admin_url}{}options=-c%20search_path%3D{name}",
                    if admin_url.contains('?') { '&' } else { '?' }
                )
                .into(),
            ]
        };
        let schema = Self {
            admin_url: admin_url.to_owned(),
            name,
            args,
        };
        if support != PostgresSupport::UrlAndSchema {
            schema.psql(&format!("CREATE SCHEMA {}", schema.name))?;
        }
        Ok(schema)
    }

    fn psql(&self, sql: &str) -> Result<(), String> {
        let output = Command::new("psql")
            .arg(&self.admin_url)
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql (the PostgreSQL client): {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "psql {sql:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(error) = self.psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
            eprintln!("bench-as: schema {} left in place: {error}", self.name);
        }
    }
}

/// A database URL without its password (a path is shown as is).
fn redacted(db: &str) -> String {
    match url::Url::parse(db) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => db.to_owned(),
    }
}

/// Removes a SQLite database and its `-wal`/`-shm`/`-journal` files.
fn remove_sqlite(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = fs::remove_file(PathBuf::from(path));
    }
}

/// A server under test, pinned to [`SERVER_CPU`]; killed on drop (and its SQLite file removed).
#[derive(Debug)]
struct Server {
    child: Child,
    pid: u32,
    issuer: String,
    resource: String,
    sqlite: Option<PathBuf>,
}

impl Server {
    /// `taskset -c 0 node reference-as.mjs`, run next to its `node_modules`.
    fn start_reference(options: &Options) -> Result<Self, String> {
        let dir = options.reference.parent().unwrap_or(Path::new("."));
        let log = options.work_dir.join("reference.log");
        let mut command = Command::new("taskset");
        command
            .args(["-c", SERVER_CPU])
            .arg(&options.node)
            .arg(&options.reference)
            .current_dir(dir);
        let shown = format!("{command:?}");
        let (child, line) = spawn_until(command, &shown, &log, "listening ")?;
        let base = line.trim().to_owned();
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            issuer: format!("{base}/"),
            resource: format!("{base}/mcp"),
            sqlite: None,
        })
    }

    /// `taskset -c 0 example-mcp-server --addr 127.0.0.1:0 --auto-approve --db DB [ARGS]`
    /// (`db` is DB then ARGS); the issuer and resource are read from its protected resource
    /// metadata later ([`Bench::connect`]).
    fn start_ours(options: &Options, kind: Kind, db: &[OsString]) -> Result<Self, String> {
        let log = options.work_dir.join(format!("{}.log", kind.name()));
        let mut command = Command::new("taskset");
        command
            .args(["-c", SERVER_CPU])
            .arg(&options.server)
            .args(["--addr", "127.0.0.1:0", "--auto-approve", "--db"])
            .args(db)
            .env("NO_COLOR", "1");
        let shown = format!(
            "taskset -c {SERVER_CPU} {} --addr 127.0.0.1:0 --auto-approve --db {}",
            options.server.display(),
            db.iter()
                .map(|a| redacted(&a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (child, line) = spawn_until(command, &shown, &log, "MCP endpoint:")?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            // The MCP endpoint, until `Bench::connect` reads the metadata.
            issuer: String::new(),
            resource: line.trim().to_owned(),
            sqlite: None,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = &self.sqlite {
            remove_sqlite(db);
        }
    }
}

/// Spawns `command` (stderr to `log`) and waits for a stdout line starting with `prefix`;
/// returns the rest of that line. Its stdout keeps being drained afterwards.
/// `shown` is how the command is printed (without secrets).
fn spawn_until(
    mut command: Command,
    shown: &str,
    log: &Path,
    prefix: &str,
) -> Result<(Child, String), String> {
    let stderr = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    eprintln!("== {shown} (log: {})", log.display());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err("no stdout".to_owned());
    };
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                // Nobody listens any more: keep draining.
                continue;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receive.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok((child, rest.to_owned()));
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let mut tail = String::new();
                let _ = fs::File::open(log).and_then(|f| f.take(4096).read_to_string(&mut tail));
                return Err(format!(
                    "{shown} did not print {prefix:?} within {START_TIMEOUT:?}; its log {}:\n{tail}",
                    log.display()
                ));
            }
        }
    }
}

/// What the workload needs: endpoints, the registered client, an HTTP client with keep-alive.
#[derive(Debug)]
struct Bench {
    http: reqwest::Client,
    authorize: String,
    token: String,
    client_id: String,
    resource: String,
}

impl Bench {
    /// Discovers the endpoints and registers a public client for refresh grants.
    async fn connect(server: &Server) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        let (issuer, resource) = if server.issuer.is_empty() {
            // Ours: the protected resource metadata of the MCP endpoint (RFC 9728).
            let mcp = url::Url::parse(&server.resource).map_err(|e| e.to_string())?;
            let prm = get_json(
                &http,
                &format!(
                    "{}/.well-known/oauth-protected-resource{}",
                    mcp.origin().ascii_serialization(),
                    mcp.path()
                ),
            )
            .await?;
            let resource = prm["resource"]
                .as_str()
                .ok_or("the protected resource metadata has no resource")?
                .to_owned();
            let issuer = prm["authorization_servers"][0]
                .as_str()
                .ok_or("the protected resource metadata names no authorization server")?
                .to_owned();
            (issuer, resource)
        } else {
            (server.issuer.clone(), server.resource.clone())
        };
        // RFC 8414 §3.1: the well-known segment goes between the origin and the issuer's path.
        let parsed = url::Url::parse(&issuer).map_err(|e| format!("issuer {issuer}: {e}"))?;
        let metadata = get_json(
            &http,
            &format!(
                "{}/.well-known/oauth-authorization-server{}",
                parsed.origin().ascii_serialization(),
                parsed.path().trim_end_matches('/')
            ),
        )
        .await?;
        let endpoint = |name: &str| {
            metadata[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("the metadata of {issuer} has no {name}"))
        };
        let register = endpoint("registration_endpoint")?;
        let body = serde_json::json!({
            "client_name": "bench-as",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        });
        let response = http
            .post(&register)
            .json_body(&body)
            .send()
            .await
            .map_err(|e| format!("{register}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!("registration answered {status}: {}", quote(&text)));
        }
        let client: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("registration answer: {e}"))?;
        let client_id = client["client_id"]
            .as_str()
            .ok_or("the registration answer has no client_id")?
            .to_owned();
        Ok(Arc::new(Self {
            authorize: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            http,
            client_id,
            resource,
        }))
    }

    /// One complete `authorization_code` grant; its refresh token.
    async fn code_grant(&self) -> Result<String, String> {
        let verifier = random_text(32)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state = random_text(16)?;
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
            ("resource", &self.resource),
        ]);
        let response = self
            .http
            .get(format!("{}?{query}", self.authorize))
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.authorize))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read the body so that the connection is reused.
        let body = response.text().await.map_err(|e| e.to_string())?;
        let location = location
            .filter(|_| status.is_redirection())
            .ok_or_else(|| {
                format!(
                    "the authorization request answered {status} without a redirect: {}",
                    quote(&body)
                )
            })?;
        let redirect =
            url::Url::parse(&location).map_err(|e| format!("redirect {location}: {e}"))?;
        let mut code = None;
        let mut returned_state = None;
        for (name, value) in redirect.query_pairs() {
            match name.as_ref() {
                "code" => code = Some(value.into_owned()),
                "state" => returned_state = Some(value.into_owned()),
                _ => {}
            }
        }
        let code = code.ok_or_else(|| format!("no code in the redirect {location}"))?;
        if returned_state.as_deref() != Some(state.as_str()) {
            return Err(format!("the redirect {location} lost the state"));
        }
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &self.client_id),
            ("code_verifier", &verifier),
            ("resource", &self.resource),
        ])
        .await
    }

    /// One `refresh_token` grant; the next refresh token of the chain.
    async fn refresh_grant(&self, refresh_token: &str) -> Result<String, String> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &self.client_id),
            ("resource", &self.resource),
        ])
        .await
    }

    /// `POST /token`; the refresh token of a 200 answer with an access token.
    async fn token_request(&self, params: &[(&str, &str)]) -> Result<String, String> {
        let response = self
            .http
            .post(&self.token)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form(params))
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.token))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if status != reqwest::StatusCode::OK {
            return Err(format!(
                "the token endpoint answered {status}: {}",
                quote(&text)
            ));
        }
        let tokens: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("token answer: {e}"))?;
        if tokens["access_token"].as_str().is_none_or(str::is_empty) {
            return Err(format!("no access_token in {}", quote(&text)));
        }
        tokens["refresh_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no refresh_token in {}", quote(&text)))
    }
}

/// `reqwest` without its `json` feature: a JSON body by hand.
trait JsonBody {
    fn json_body(self, body: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: &serde_json::Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {url} answered {status}: {}", quote(&text)));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}"))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `bytes` random bytes, base64url.
fn random_text(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn quote(text: &str) -> &str {
    let mut end = text.len().min(QUOTE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `n` code grants by `concurrency` workers: their latencies, and the refresh tokens obtained
/// (one per grant).
async fn code_phase(
    bench: &Arc<Bench>,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<Duration>, Vec<String>), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (bench, next) = (Arc::clone(bench), Arc::clone(&next));
        workers.spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let started = Instant::now();
                let refresh = bench.code_grant().await?;
                done.push((started.elapsed(), refresh));
            }
            Ok::<_, String>(done)
        });
    }
    let mut latencies = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(n);
    while let Some(result) = workers.join_next().await {
        for (latency, token) in result.map_err(|e| format!("worker: {e}"))?? {
            latencies.push(latency);
            tokens.push(token);
        }
    }
    Ok((latencies, tokens))
}

/// `n` refresh grants by `concurrency` workers, each a chain starting from one of `tokens`;
/// their latencies.
async fn refresh_phase(
    bench: &Arc<Bench>,
    n: usize,
    concurrency: usize,
    tokens: Vec<String>,
) -> Result<Vec<Duration>, String> {
    if tokens.len() < concurrency {
        return Err(format!(
            "{} refresh tokens cannot start {concurrency} chains",
            tokens.len()
        ));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for mut token in tokens.into_iter().take(concurrency) {
        let (bench, next) = (Arc::clone(bench), Arc::clone(&next));
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let started = Instant::now();
                token = bench.refresh_grant(&token).await?;
                latencies.push(started.elapsed());
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(n);
    while let Some(result) = workers.join_next().await {
        latencies.extend(result.map_err(|e| format!("worker: {e}"))??);
    }
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ranks() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn reads_its_own_cpu_time() {
        assert!(cpu_ticks("self", false).is_ok());
        assert!(cpu_ticks("self", true).is_ok());
        assert!(cpu_ticks("0", false).is_err());
    }

    #[test]
    fn hides_database_passwords() {
        assert_eq!(
            redacted("postgres://u:secret@127.0.0.1/db?x=1"),
            "postgres://u:***@127.0.0.1/db?x=1"
        );
        assert_eq!(redacted("/tmp/a.db"), "/tmp/a.db");
    }

    #[test]
    fn parses_options() {
        let args: Vec<String> = [
            "--server",
            "s",
            "--node",
            "n",
            "--reference",
            "r",
            "--work-dir",
            "w",
            "--n=20",
            "--only",
            "sqlite",
        ]
        .map(str::to_owned)
        .to_vec();
        let options = parse_options(&args).unwrap();
        assert_eq!(options.n, 20);
        assert_eq!(options.only, [Kind::Sqlite]);
        let bad = |extra: &str| {
            let mut args = args.clone();
            args.push(extra.to_owned());
            parse_options(&args).is_err()
        };
        assert!(bad("--n=15"));
        assert!(bad("--only=mysql"));
        assert!(bad("--fast"));
    }
}
