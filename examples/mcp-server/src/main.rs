//! The full-stack demo: an MCP notes server with its own authorization server at the same origin.
//!
//! Run with `cargo run -p example-mcp-server`, then connect any MCP client to
//! `http://localhost:8080/mcp` or `http://127.0.0.1:8080/mcp` (it prints how, for Claude Code,
//! the MCP Inspector and `example-mcp-client`).
//!
//! ```text
//! example-mcp-server [--addr ADDR] [--db FILE] [--auto-approve] [--resource URL]...
//!                    [--introspection-client ID] [--machine-client ID --machine-scope SCOPE...]
//!   --addr ADDR      where to listen, a loopback address (env MCP_AUTH_ADDR; default 127.0.0.1:8080)
//!   --db FILE        the SQLite database (env MCP_AUTH_DB; default ./mcp-auth-demo.db)
//!   --auto-approve   no login page: approve every request as the demo user (loopback only)
//!   --resource URL   also issue tokens for this MCP server (one that trusts this authorization
//!                    server as its IdP, e.g. example-resource-server); repeatable
//!   --introspection-client ID
//!                    mount /introspect (RFC 7662) for resource server ID, whose secret is
//!                    MCP_AUTH_INTROSPECTION_SECRET
//!   --machine-client ID
//!                    arrange a machine client (client_credentials) with the secret
//!                    MCP_AUTH_MACHINE_SECRET, for the scopes given by --machine-scope
//!   --machine-scope SCOPE
//!                    a scope the machine client may obtain; repeatable, at least one
//! ```
//!
//! The demo user is `demo`; its password is random, printed at each start (set
//! `MCP_AUTH_DEMO_PASSWORD` to choose one). Registered clients, refresh tokens, consents and
//! signing keys are kept in the database, so a restart does not sign clients out.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use example_mcp_server::{
    Config, DEMO_USER, Login, MachineClient, build, random_password, scopes, serve,
};
use mcp_auth_core::Secret;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: example-mcp-server [--addr ADDR] [--db FILE] [--auto-approve] [--resource URL]...
                          [--introspection-client ID]
  --addr ADDR      where to listen, a loopback address (env MCP_AUTH_ADDR; default 127.0.0.1:8080)
  --db FILE        the SQLite database (env MCP_AUTH_DB; default ./mcp-auth-demo.db)
  --auto-approve   no login page: approve every authorization request as the demo user
                   (loopback only; for demos and tests)
  --resource URL   also issue tokens for the MCP server at URL, one that trusts this
                   authorization server as its IdP (e.g. example-resource-server); repeatable
  --introspection-client ID
                   mount /introspect (RFC 7662) for the resource server ID, whose secret is
                   the env MCP_AUTH_INTROSPECTION_SECRET
  --machine-client ID
                   arrange a machine client: it may use the client_credentials grant, with
                   the secret in the env MCP_AUTH_MACHINE_SECRET (at least 32 characters),
                   for exactly the scopes given by --machine-scope (off without this flag)
  --machine-scope SCOPE
                   a scope the machine client may obtain; repeatable, at least one
env MCP_AUTH_DEMO_PASSWORD: the demo user's password (default: a new random one each start)";

/// The parsed command line.
struct Args {
    addr: SocketAddr,
    db: PathBuf,
    auto_approve: bool,
    resources: Vec<String>,
    introspection_client: Option<(String, Secret)>,
    machine_client: Option<(String, Vec<String>)>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut addr = var("MCP_AUTH_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let mut db = var("MCP_AUTH_DB").unwrap_or_else(|| "mcp-auth-demo.db".to_owned());
    let mut auto_approve = false;
    let mut resources = Vec::new();
    let mut introspection_id = None;
    let mut machine_id = None;
    let mut machine_scopes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--addr" => addr = value()?,
            "--db" => db = value()?,
            "--resource" => resources.push(value()?),
            "--introspection-client" => introspection_id = Some(value()?),
            "--machine-client" => machine_id = Some(value()?),
            "--machine-scope" => machine_scopes.push(value()?),
            "--auto-approve" if inline.is_none() => auto_approve = true,
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let introspection_client = match introspection_id {
        Some(id) => match var("MCP_AUTH_INTROSPECTION_SECRET") {
            Some(secret) => Some((id, Secret::new(secret))),
            None => {
                return Err(
                    "--introspection-client needs the secret in MCP_AUTH_INTROSPECTION_SECRET"
                        .to_owned(),
                );
            }
        },
        None => None,
    };
    let machine_client = match (machine_id, machine_scopes.is_empty()) {
        (Some(_), true) => {
            return Err("--machine-client needs at least one --machine-scope".to_owned());
        }
        (None, false) => return Err("--machine-scope goes with --machine-client".to_owned()),
        (Some(id), false) => Some((id, machine_scopes)),
        (None, true) => None,
    };
    let addr = addr
        .parse()
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?;
    Ok(Some(Args {
        addr,
        db: PathBuf::from(db),
        auto_approve,
        resources,
        introspection_client,
        machine_client,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // The authorization events (registrations, sign-ins, codes, tokens) at info; rmcp's
            // per-session chatter only when something goes wrong.
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Whether the password was made here (then the banner shows it) or came from the
    // environment (then the operator knows it, and it is not printed).
    let mut password_generated = false;
    let login = if args.auto_approve {
        Login::AutoApprove {
            subject: DEMO_USER.to_owned(),
        }
    } else {
        let password = match std::env::var("MCP_AUTH_DEMO_PASSWORD") {
            Ok(password) if !password.is_empty() => password,
            _ => {
                password_generated = true;
                random_password()?
            }
        };
        Login::Local {
            username: DEMO_USER.to_owned(),
            password,
        }
    };
    let mut config = Config::new(args.addr, login.clone());
    config.db = Some(args.db.clone());
    config.extra_resources = args.resources.clone();
    config.introspection_client = args.introspection_client.clone();
    if let Some((id, scopes)) = &args.machine_client {
        let Some(secret) = std::env::var("MCP_AUTH_MACHINE_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            return Err("--machine-client needs its secret in MCP_AUTH_MACHINE_SECRET".into());
        };
        config.machine_clients.push(
            MachineClient::new(id, Secret::new(secret))
                .scopes(scopes)
                .name("demo machine client"),
        );
    }
    if !config.addr.ip().is_loopback() {
        return Err(example_mcp_server::Error::NotLoopback(config.addr).into());
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let bound = listener.local_addr()?;
    let demo = build(&config, bound).await?;
    print_banner(
        &demo.local_url,
        &demo.mcp_url,
        &args,
        &login,
        password_generated,
    );
    serve(listener, demo, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("\nshutting down (Ctrl-C): finishing open requests, closing the database");
    })
    .await?;
    Ok(())
}

fn print_banner(
    mcp_url: &str,
    canonical_url: &str,
    args: &Args,
    login: &Login,
    password_generated: bool,
) {
    let rule = "=".repeat(78);
    println!("{rule}");
    println!("mcp-auth demo: an MCP notes server with its own authorization server");
    println!("{rule}");
    println!("MCP endpoint:   {mcp_url}");
    if canonical_url != mcp_url {
        println!("                (also {canonical_url}; tokens name that one as their audience)");
    }
    println!(
        "database:       {} (clients, refresh tokens, consents, keys)",
        args.db.display()
    );
    println!(
        "scopes:         advertised \"{}\"; by step-up {}",
        scopes::advertised_scopes(),
        scopes::unadvertised_scopes().join(", ")
    );
    for (tool, scopes) in scopes::TOOL_SCOPES {
        println!("  tool {tool:<12} needs {}", scopes.join(" "));
    }
    for resource in &args.resources {
        println!("also issues tokens for {resource}");
    }
    if let Some((id, _)) = &args.introspection_client {
        let issuer = canonical_url.strip_suffix("/mcp").unwrap_or(canonical_url);
        println!("introspection:  {issuer}/introspect for the resource server {id:?}");
    }
    match &args.machine_client {
        Some((id, scopes)) => println!(
            "machine client: {id:?} may use client_credentials for {}",
            scopes.join(" ")
        ),
        None => println!("machine grants: off (no client_credentials; see --machine-client)"),
    }
    println!();
    match login {
        Login::Local { username, password } if password_generated => {
            println!("sign in on the login page as");
            println!("    username: {username}");
            println!("    password: {password}");
            println!("(a new random password each start; set MCP_AUTH_DEMO_PASSWORD to fix it)");
        }
        Login::Local { username, .. } => {
            println!("sign in on the login page as");
            println!("    username: {username}");
            println!("    password: the one in MCP_AUTH_DEMO_PASSWORD (not printed)");
        }
        Login::AutoApprove { subject } => {
            println!("!!! --auto-approve: NO LOGIN PAGE. Every authorization request is approved");
            println!(
                "!!! as \"{subject}\" without asking. Loopback only; never expose this server."
            );
        }
    }
    println!();
    println!("connect with:");
    println!("  Claude Code:    claude mcp add --transport http demo {mcp_url}");
    println!("  MCP Inspector:  npx @modelcontextprotocol/inspector");
    println!("                  then Transport \"Streamable HTTP\", URL {mcp_url}");
    println!("  example client: cargo run -p example-mcp-client -- {mcp_url} --call whoami");
    println!();
    println!("Ctrl-C stops the server.");
}
