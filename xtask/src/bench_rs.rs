//! `cargo xtask bench-rs [--runs N] [--rounds N] [--duration SECS] [--connections N]`: requests/s
//! of one handler bare, behind the bearer layer, and behind the demo's full resource stack
//! (issue 18 item 3), with the server's CPU time per request.
//!
//! 1. Builds the server `bench-rs` (`xtask/bench-rs`, a crate of its own so that xtask stays
//!    dependency-free) in release, and starts it pinned to CPU 0 (`taskset -c 0`). It prints its
//!    address and an ES256 access token; see `xtask/bench-rs/src/main.rs` for the routes.
//! 2. Writes a `wrk` Lua script (into `target/bench-rs`): every request is the same
//!    `POST` of a JSON-RPC `tools/call` with `Authorization: Bearer <token>`,
//!    `MCP-Protocol-Version: 2025-11-25` and one `Mcp-Session-Id`, on every route.
//! 3. Warms each route up (2 s). Each run is `--rounds` rounds (default 6); each round drives
//!    `/bare`, `/bearer` and `/full` in turn, `--duration` seconds each (default 2), with
//!    `wrk -t1 -c<connections> --latency` pinned to CPU 1, starting each round with another
//!    route so that no route always follows the same one. A run prints, per route, the median
//!    over its rounds of requests/s, of the ratio to bare **of the same round** (the machine
//!    drifts between rounds by more than the layers cost), of p50 and p99 latency, and the
//!    server's CPU time per request over the whole run: all of it (`/proc/<pid>/schedstat`, which
//!    includes the kernel's loopback TCP that the server's threads run) and user mode alone
//!    (`/proc/<pid>/stat`), which is where the layers run.
//!
//! Targets (issue 18): ≥ 98% of bare for the bearer layer, ≥ 95% for the full stack, in two
//! consecutive runs. Wall-clock figures: run it on a quiet machine (`uptime` load < 0.5); the
//! command prints the load average and the CPU's model name before it starts (the ratios depend
//! on the CPU: see the resource crate's PERF.md, round 5).

use std::{
    env, fs,
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
};

/// The CPU of the server; `wrk` runs on [`WRK_CPU`].
const SERVER_CPU: &str = "0";
const WRK_CPU: &str = "1";
/// The routes, in the order they are driven in every run.
const ROUTES: [(&str, &str); 3] = [
    ("bare", "the handler alone"),
    (
        "bearer",
        "BearerAuthLayer + CachedVerifier<JwtVerifier>, repeated ES256 token",
    ),
    (
        "full",
        "bearer + SessionBindingLayer + ToolScopesLayer (the demo's stack)",
    ),
];
/// The JSON-RPC request of every route: a call of a tool that needs `mcp:tools` (the token has it).
const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{}}}"#;

struct Options {
    runs: u32,
    rounds: u32,
    duration: u32,
    connections: u32,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        runs: 2,
        rounds: 6,
        duration: 2,
        connections: 32,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--runs" => &mut options.runs,
            "--rounds" => &mut options.rounds,
            "--duration" => &mut options.duration,
            "--connections" => &mut options.connections,
            other => return Err(format!("unknown argument {other}")),
        };
        *slot = args
            .next()
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("{arg} needs a positive number"))?;
    }
    Ok(options)
}

/// The server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One wrk run's figures.
struct Figures {
    /// Requests completed (`N requests in …`).
    requests: u64,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: bool,
}

/// A wrk latency (`812.00us`, `1.23ms`, `2.00s`) in milliseconds.
fn millis(value: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Reads `Requests/sec:`, the `50%` and `99%` lines of `--latency`, and whether wrk saw non-2xx
/// answers or socket errors.
fn parse_wrk(output: &str) -> Option<Figures> {
    let mut requests = None;
    let mut requests_per_sec = None;
    let mut p50_ms = None;
    let mut p99_ms = None;
    let mut errors = false;
    for line in output.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => requests_per_sec = v.parse().ok(),
            (Some("50%"), Some(v)) => p50_ms = millis(v),
            (Some("99%"), Some(v)) => p99_ms = millis(v),
            (Some("Non-2xx"), _) | (Some("Socket"), _) => errors = true,
            (Some(n), Some("requests")) => requests = n.parse().ok(),
            _ => {}
        }
    }
    Some(Figures {
        requests: requests?,
        requests_per_sec: requests_per_sec?,
        p50_ms: p50_ms?,
        p99_ms: p99_ms?,
        errors,
    })
}

/// Runs wrk pinned to [`WRK_CPU`] against `url`.
fn wrk(script: &str, url: &str, duration: u32, connections: u32) -> Option<Figures> {
    let output = Command::new("taskset")
        .args(["-c", WRK_CPU, "wrk", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{duration}s"))
        .args(["--latency", "-s", script, url])
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            eprintln!("xtask: wrk failed ({})", output.status);
            return None;
        }
        Err(error) => {
            eprintln!("xtask: cannot run taskset/wrk (`cargo xtask setup` installs wrk): {error}");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let figures = parse_wrk(&text);
    if figures.is_none() {
        eprintln!("xtask: cannot read wrk's output:\n{text}");
    }
    figures
}

/// The load average over the last minute, from `/proc/loadavg`.
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

/// The CPU's model name (`/proc/cpuinfo`): the ratios depend on it (see PERF.md, round 5).
fn cpu_model() -> Option<String> {
    let text = fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// Builds, starts and drives the server; prints one table per run.
pub(crate) fn run(args: &[String]) -> bool {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!(
            "usage: cargo xtask bench-rs [--runs N] [--rounds N] [--duration SECS] [--connections N]"
        );
        return true;
    }
    let options = match parse_options(args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("xtask: {error}");
            return false;
        }
    };
    if !crate::wrk_present() {
        eprintln!("xtask: wrk is missing: run `cargo xtask setup`");
        return false;
    }
    let root = crate::conformance::root();
    let Some(target) = crate::conformance::target_dir(&root) else {
        return false;
    };
    if !crate::cargo(&["build", "--release", "-p", "bench-rs"], &[]) {
        return false;
    }
    let binary = target
        .join("release")
        .join(format!("bench-rs{}", env::consts::EXE_SUFFIX));
    let work_dir = target.join("bench-rs");
    if let Err(error) = fs::create_dir_all(&work_dir) {
        eprintln!("xtask: cannot create {}: {error}", work_dir.display());
        return false;
    }

    let child = Command::new("taskset")
        .args(["-c", SERVER_CPU])
        .arg(&binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut server = match child {
        Ok(child) => Server(child),
        Err(error) => {
            eprintln!(
                "xtask: cannot start {} under taskset: {error}",
                binary.display()
            );
            return false;
        }
    };
    let mut line = String::new();
    let read = server
        .0
        .stdout
        .take()
        .map(|stdout| BufReader::new(stdout).read_line(&mut line));
    let Some((addr, token)) = read
        .and_then(Result::ok)
        .and_then(|_| line.trim().split_once(' '))
    else {
        eprintln!("xtask: the bench-rs server did not print its address and token");
        return false;
    };

    let script = work_dir.join("request.lua");
    let lua = format!(
        "wrk.method = \"POST\"\n\
         wrk.body = '{BODY}'\n\
         wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n\
         wrk.headers[\"MCP-Protocol-Version\"] = \"2025-11-25\"\n\
         wrk.headers[\"Mcp-Session-Id\"] = \"bench-session-1\"\n"
    );
    if let Err(error) = fs::write(&script, lua) {
        eprintln!("xtask: cannot write {}: {error}", script.display());
        return false;
    }
    let script = script.to_string_lossy().into_owned();

    eprintln!(
        "== load average {} (wall-clock figures mean something below 0.5); CPU: {}",
        load_average().unwrap_or_else(|| "?".to_owned()),
        cpu_model().unwrap_or_else(|| "?".to_owned())
    );
    for (route, _) in ROUTES {
        let url = format!("http://{addr}/{route}");
        match wrk(&script, &url, 2, options.connections) {
            Some(figures) if !figures.errors => {}
            Some(_) => {
                eprintln!("xtask: /{route} answered non-2xx responses or socket errors");
                return false;
            }
            None => return false,
        }
    }

    println!(
        "wrk -t1 -c{} -d{}s --latency, {} rounds a run, server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}",
        options.connections, options.duration, options.rounds
    );
    for (route, what) in ROUTES {
        println!("  /{route}: {what}");
    }
    let pid = server.0.id();
    for run in 1..=options.runs {
        let Some(rows) = drive_run(&script, addr, pid, &options) else {
            return false;
        };
        println!();
        println!(
            "| run {run} (median of {} rounds) | requests/s | × bare | p50 ms | p99 ms | server CPU µs/request | of which user mode |",
            options.rounds
        );
        println!("|---|---|---|---|---|---|---|");
        for (row, (route, _)) in rows.iter().zip(ROUTES) {
            println!(
                "| {route} | {:.0} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} |",
                row.requests_per_sec, row.ratio, row.p50_ms, row.p99_ms, row.cpu_us, row.user_us
            );
        }
    }
    eprintln!(
        "== load average {} at the end",
        load_average().unwrap_or_else(|| "?".to_owned())
    );
    true
}

/// One route's figures over a run.
struct Row {
    requests_per_sec: f64,
    /// The median over the rounds of this route's requests/s over bare's in the same round.
    ratio: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// The server's CPU time per request over the run, in µs: all, and user mode alone.
    cpu_us: f64,
    user_us: f64,
}

/// The server's CPU time so far: all of it in nanoseconds (the sum of its threads'
/// `/proc/<pid>/task/*/schedstat`), and user mode alone in clock ticks (`/proc/<pid>/stat`).
fn server_cpu(pid: u32) -> Option<(u64, u64)> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let text = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    let [user, ..] = crate::procfs::stat_times(&pid.to_string()).ok()?;
    Some((total, user))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// One run: `rounds` rounds of every route, each round starting with another route.
fn drive_run(script: &str, addr: &str, pid: u32, options: &Options) -> Option<Vec<Row>> {
    let ticks = crate::procfs::clock_ticks() as f64;
    let n = ROUTES.len();
    let mut per_round: Vec<Vec<Figures>> = (0..n).map(|_| Vec::new()).collect();
    let mut cpu = vec![(0_u64, 0_u64, 0_u64); n];
    for round in 0..options.rounds as usize {
        for step in 0..n {
            let index = (round + step) % n;
            let url = format!("http://{addr}/{}", ROUTES[index].0);
            let before = server_cpu(pid)?;
            let figures = wrk(script, &url, options.duration, options.connections)?;
            let after = server_cpu(pid)?;
            if figures.errors {
                eprintln!(
                    "xtask: /{} answered non-2xx responses or socket errors",
                    ROUTES[index].0
                );
                return None;
            }
            let spent = &mut cpu[index];
            spent.0 += after.0.saturating_sub(before.0);
            spent.1 += after.1.saturating_sub(before.1);
            spent.2 += figures.requests;
            per_round[index].push(figures);
        }
    }
    let bare: Vec<f64> = per_round[0].iter().map(|f| f.requests_per_sec).collect();
    let rows = per_round
        .iter()
        .zip(&cpu)
        .map(|(rounds, &(total_ns, user_ticks, requests))| {
            let requests = requests.max(1) as f64;
            Row {
                requests_per_sec: median(rounds.iter().map(|f| f.requests_per_sec).collect()),
                ratio: median(
                    rounds
                        .iter()
                        .zip(&bare)
                        .map(|(f, b)| f.requests_per_sec / b)
                        .collect(),
                ),
                p50_ms: median(rounds.iter().map(|f| f.p50_ms).collect()),
                p99_ms: median(rounds.iter().map(|f| f.p99_ms).collect()),
                cpu_us: total_ns as f64 / 1000.0 / requests,
                user_us: user_ticks as f64 / ticks * 1e6 / requests,
            }
        })
        .collect();
    Some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let output = "Running 8s test @ http://127.0.0.1:1/bare
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   197.62us   40.12us   2.01ms   90.00%
    Req/Sec   160.40k     3.10k  170.00k    80.00%
  Latency Distribution
     50%  190.00us
     75%  200.00us
     90%  220.00us
     99%    1.20ms
  1283200 requests in 8.00s, 200.00MB read
Requests/sec: 160400.12
Transfer/sec:     25.00MB
";
        let figures = parse_wrk(output).unwrap();
        assert_eq!(figures.requests, 1_283_200);
        assert!((figures.requests_per_sec - 160_400.12).abs() < 1e-6);
        assert!((figures.p50_ms - 0.19).abs() < 1e-9);
        assert!((figures.p99_ms - 1.2).abs() < 1e-9);
        assert!(!figures.errors);
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
        assert!(
            parse_wrk(&format!("{output}  Non-2xx or 3xx responses: 12\n"))
                .unwrap()
                .errors
        );
    }
}
