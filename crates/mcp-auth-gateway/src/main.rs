//! `mcp-auth-gateway`: OAuth 2.1 for MCP in front of any MCP server. See the crate docs and
//! `--help`.

use std::process::ExitCode;

use mcp_auth_gateway::{AuthConfig, Config, IdentityMode, Overrides, UserConfig, build, serve};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: mcp-auth-gateway [--config FILE] [--upstream URL] [--listen ADDR] [--public-url URL]
                        [--db FILE|URL [--db-schema NAME]] [--auto-approve USER | --issuer URL]
                        [--identity headers|jwt|none] [--tool NAME=SCOPES]...
                        [--hide-unauthorized-tools]
  --config FILE    a TOML configuration (env MCP_GATEWAY_CONFIG); the flags below override it
  --upstream URL   the MCP server to protect, e.g. http://127.0.0.1:8000/mcp (env MCP_GATEWAY_UPSTREAM)
  --listen ADDR    where to listen (env MCP_GATEWAY_LISTEN; default 127.0.0.1:8080)
  --public-url URL the URL clients use, without path, when behind a TLS proxy
                   (env MCP_GATEWAY_PUBLIC_URL; default http://ADDR)
  --db FILE|URL    the embedded authorization server's SQLite file, or a PostgreSQL URL
                   (postgres://…) that several gateway replicas share (env MCP_GATEWAY_DB;
                   default mcp-auth-gateway.db; :memory: keeps nothing)
  --db-schema NAME with a PostgreSQL URL: the schema for the tables, created if missing
                   (env MCP_GATEWAY_DB_SCHEMA)
  --auto-approve USER
                   no login page: approve every authorization as USER (loopback only; demos and
                   tests) (env MCP_GATEWAY_AUTO_APPROVE)
  --issuer URL     trust this external authorization server instead of the embedded one
                   (env MCP_GATEWAY_ISSUER)
  --identity MODE  how the upstream learns who calls: headers (X-MCP-Subject, X-MCP-Client-Id,
                   X-MCP-Scopes; loopback upstreams only), jwt (a gateway-signed JWT in
                   Authorization) or none (env MCP_GATEWAY_IDENTITY; default headers on
                   loopback, jwt otherwise)
  --tool NAME=SCOPES
                   calls of tool NAME need SCOPES (space delimited); repeatable
  --hide-unauthorized-tools
                   leave the tools a caller may not call out of tools/list
Without a configured way to sign in, the embedded server gets one user, `admin`, whose password
is MCP_GATEWAY_PASSWORD or a random one printed at start.
Logs: RUST_LOG (default info; access logs on target mcp_auth_gateway::access).";

fn parse(
    args: impl IntoIterator<Item = String>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(Option<String>, Overrides)>, String> {
    let mut config = var("MCP_GATEWAY_CONFIG");
    let mut o = Overrides {
        upstream: var("MCP_GATEWAY_UPSTREAM"),
        public_url: var("MCP_GATEWAY_PUBLIC_URL"),
        db: var("MCP_GATEWAY_DB"),
        db_schema: var("MCP_GATEWAY_DB_SCHEMA"),
        issuer: var("MCP_GATEWAY_ISSUER"),
        auto_approve: var("MCP_GATEWAY_AUTO_APPROVE"),
        ..Overrides::default()
    };
    let mut listen = var("MCP_GATEWAY_LISTEN");
    let mut identity = var("MCP_GATEWAY_IDENTITY");
    let mut args = args.into_iter();
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
            "--config" => config = Some(value()?),
            "--upstream" => o.upstream = Some(value()?),
            "--listen" => listen = Some(value()?),
            "--public-url" => o.public_url = Some(value()?),
            "--db" => o.db = Some(value()?),
            "--db-schema" => o.db_schema = Some(value()?),
            "--auto-approve" => o.auto_approve = Some(value()?),
            "--issuer" => o.issuer = Some(value()?),
            "--identity" => identity = Some(value()?),
            "--tool" => {
                let v = value()?;
                let (tool, scopes) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--tool {v:?}: expected NAME=SCOPES"))?;
                o.tools.push((tool.to_owned(), scopes.to_owned()));
            }
            "--hide-unauthorized-tools" if inline.is_none() => o.hide_unauthorized_tools = true,
            "-h" | "--help" => return Ok(None),
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if let Some(listen) = listen {
        o.listen = Some(
            listen
                .parse()
                .map_err(|e| format!("invalid address {listen:?}: {e}"))?,
        );
    }
    o.identity = match identity.as_deref() {
        None => None,
        Some("headers") => Some(IdentityMode::Headers),
        Some("jwt") => Some(IdentityMode::Jwt),
        Some("none") => Some(IdentityMode::None),
        Some(other) => return Err(format!("--identity {other:?}: headers, jwt or none")),
    };
    Ok(Some((config, o)))
}

/// A random password: 24 characters from a 32-character alphabet without look-alikes.
fn random_password() -> Result<String, String> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("the random source failed: {e}"))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % 32]))
        .collect())
}

async fn run() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some((file, overrides)) = parse(std::env::args().skip(1), &var)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let file = file
        .map(Config::from_file)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut config = overrides.apply(file).map_err(|e| e.to_string())?;
    let mut printed_password = None;
    if let AuthConfig::Embedded(embedded) = &mut config.auth
        && embedded.users.is_empty()
        && embedded.auto_approve.is_none()
        && embedded.oidc.is_none()
    {
        let password = match var("MCP_GATEWAY_PASSWORD") {
            Some(p) => p,
            None => {
                let p = random_password()?;
                printed_password = Some(p.clone());
                p
            }
        };
        embedded.users.push(UserConfig::new("admin", password));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let gateway = build(&config, bound).await.map_err(|e| e.to_string())?;
    println!(
        "mcp-auth-gateway: {} -> {}",
        gateway.mcp_url, config.upstream.url
    );
    println!("  connect MCP clients to {}", gateway.mcp_url);
    println!("  authorization server: {}", gateway.issuer);
    if let Some(password) = printed_password {
        println!(
            "  sign in as admin with password {password}  (set MCP_GATEWAY_PASSWORD to choose)"
        );
    }
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                let _ = ctrl_c.await;
                return;
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    serve(listener, gateway, shutdown)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-auth-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_environment() {
        let env =
            |name: &str| (name == "MCP_GATEWAY_UPSTREAM").then(|| "http://env/mcp".to_owned());
        let args = [
            "--upstream",
            "http://127.0.0.1:8000/mcp",
            "--tool=wipe=admin",
            "--identity",
            "jwt",
        ];
        let (file, o) = parse(args.map(String::from), &env).unwrap().unwrap();
        assert!(file.is_none());
        assert_eq!(o.upstream.as_deref(), Some("http://127.0.0.1:8000/mcp"));
        assert_eq!(o.tools, [("wipe".to_owned(), "admin".to_owned())]);
        assert_eq!(o.identity, Some(IdentityMode::Jwt));
        assert!(parse(["--bogus".to_owned()], &env).is_err());
    }
}
