//! The full-stack demo: an MCP notes server with its own authorization server at the same origin.
//!
//! Run with `cargo run -p example-mcp-server`, then connect any MCP client to
//! `http://localhost:8080/mcp` or `http://127.0.0.1:8080/mcp` (it prints how, for Claude Code,
//! the MCP Inspector and `example-mcp-client`).
//!
//! ```text
//! example-mcp-server [--addr ADDR] [--public-url URL] [--db FILE|URL [--db-schema NAME]]
//!                    [--auto-approve | --upstream-oidc ISSUER]
//!                    [--resource URL]... [--introspection-client ID]
//!                    [--machine-client ID --machine-scope SCOPE...]
//!   --addr ADDR      where to listen, a loopback address (env MCP_AUTH_ADDR; default 127.0.0.1:8080)
//!   --public-url URL where clients reach this server when that is not ADDR, http://IP:PORT on
//!                    loopback (a proxy in front of replicas): the issuer and the MCP endpoint
//!                    are named after it (env MCP_AUTH_PUBLIC_URL; default http://ADDR)
//!   --db FILE|URL    the SQLite database file, or a PostgreSQL URL postgres://… shared by
//!                    replicas (env MCP_AUTH_DB; default ./mcp-auth-demo.db)
//!   --db-schema NAME with a PostgreSQL URL: keep the tables in this schema, created if missing
//!                    (env MCP_AUTH_DB_SCHEMA; default the URL's search_path, usually public)
//!   --auto-approve   no login page: approve every request as the demo user (loopback only)
//!   --upstream-oidc ISSUER
//!                    sign users in at this OpenID Connect provider instead of the password
//!                    page; client id and secret in MCP_AUTH_UPSTREAM_CLIENT_ID and
//!                    MCP_AUTH_UPSTREAM_CLIENT_SECRET, the vault key in MCP_AUTH_VAULT_KEY
//!   --upstream-scope SCOPE
//!                    a scope asked of the provider (repeatable; default openid email profile)
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
//!   --machine-jwks URL|FILE
//!                    the machine client authenticates with private_key_jwt: its public keys
//!                    at this jwks_uri, or in this JWK Set file (no MCP_AUTH_MACHINE_SECRET)
//!   --id-jag-issuer ISSUER
//!                    accept identity assertion grants (ID-JAG) from this enterprise IdP with
//!                    the JWT bearer grant; keys from --id-jag-jwks URL|FILE or its metadata
//!   --workload-issuer ISSUER
//!                    accept this platform's workload tokens with the JWT bearer grant, keys
//!                    from --workload-jwks URL|FILE (or its metadata), for the
//!                    --workload-client IDs
//! ```
//!
//! The demo user is `demo`; its password is random, printed at each start (set
//! `MCP_AUTH_DEMO_PASSWORD` to choose one). With `--upstream-oidc` there is no demo user: people
//! sign in at the provider, and the banner prints `upstream redirect URI: <url>`, the URL to
//! register there. Registered clients, refresh tokens, consents and
//! signing keys are kept in the database, so a restart does not sign clients out.

use std::{net::SocketAddr, process::ExitCode};

use example_mcp_server::{
    Config, DEMO_USER, Database, JwtBearerIssuer, Login, MachineClient, UPSTREAM_CLIENT_ID_ENV,
    UPSTREAM_CLIENT_SECRET_ENV, UpstreamOidc, VAULT_KEY_ENV, VaultKey, build, random_password,
    scopes, serve,
};
use mcp_auth_core::Secret;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: example-mcp-server [--addr ADDR] [--public-url URL] [--db FILE|URL [--db-schema NAME]]
                          [--auto-approve | --upstream-oidc ISSUER]
                          [--upstream-scope SCOPE]... [--resource URL]...
                          [--introspection-client ID]
                          [--machine-client ID --machine-scope SCOPE...]
  --addr ADDR      where to listen, a loopback address (env MCP_AUTH_ADDR; default 127.0.0.1:8080)
  --public-url URL where clients reach this server when that is not ADDR: http://IP:PORT on
                   loopback, e.g. a proxy in front of several replicas; the issuer and the
                   MCP endpoint are named after it (env MCP_AUTH_PUBLIC_URL; default http://ADDR)
  --db FILE|URL    the SQLite database file, or a PostgreSQL URL
                   postgres://user:password@host:port/database (or postgresql://), which
                   several replicas of this server may share (env MCP_AUTH_DB; default
                   ./mcp-auth-demo.db)
  --db-schema NAME with a PostgreSQL URL: keep the tables in this schema (letters, digits,
                   _), created if missing (env MCP_AUTH_DB_SCHEMA; default the URL's
                   search_path, usually public)
  --auto-approve   no login page: approve every authorization request as the demo user
                   (loopback only; for demos and tests)
  --upstream-oidc ISSUER
                   sign users in at the OpenID Connect provider ISSUER instead of the
                   password page (not with --auto-approve); the tool upstream_profile calls
                   its userinfo endpoint as the user. Register the printed
                   `upstream redirect URI` at the provider. Env:
                     MCP_AUTH_UPSTREAM_CLIENT_ID      the client id there (required)
                     MCP_AUTH_UPSTREAM_CLIENT_SECRET  its secret (unset: a public client)
                     MCP_AUTH_VAULT_KEY               base64 of 32 bytes that encrypts the
                                                      users' upstream tokens at rest (unset: a
                                                      new key each start, printed once)
  --upstream-scope SCOPE
                   a scope asked of the provider; repeatable (default: openid email profile;
                   add offline_access where the provider needs it for refresh tokens)
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
  --machine-jwks URL|FILE
                   the machine client authenticates with private_key_jwt (RFC 7523) instead
                   of a secret: its public keys at this jwks_uri (https, or http on
                   loopback), or in this JWK Set file
  --id-jag-issuer ISSUER
                   enterprise-managed authorization: accept identity assertion grants
                   (ID-JAG) issued by the IdP ISSUER with the JWT bearer grant, presented by
                   a confidential client (the --machine-client), for the advertised scopes
  --id-jag-jwks URL|FILE
                   the IdP's JWK Set (default: the jwks_uri of its metadata)
  --workload-issuer ISSUER
                   workload identity: accept JWTs issued by the platform ISSUER with the JWT
                   bearer grant, presented by a --workload-client, for the advertised scopes;
                   the token's subject is workload:<the JWT's sub>
  --workload-jwks URL|FILE
                   the platform's JWK Set (default: the jwks_uri of its metadata)
  --workload-client ID
                   a client id that may present the workload tokens (repeatable, at least
                   one with --workload-issuer); registered as a public client for that grant
env MCP_AUTH_DEMO_PASSWORD: the demo user's password (default: a new random one each start)";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    /// `--public-url`: the address clients reach this server at, if not `addr`.
    public_addr: Option<SocketAddr>,
    db: Database,
    auto_approve: bool,
    upstream: Option<UpstreamArgs>,
    resources: Vec<String>,
    introspection_client: Option<(String, Secret)>,
    machine_client: Option<(String, Vec<String>)>,
    /// `--machine-jwks`: the machine client's jwks_uri or JWK Set file.
    machine_jwks: Option<String>,
    /// `--id-jag-issuer` and `--id-jag-jwks`.
    id_jag: Option<(String, Option<String>)>,
    /// `--workload-issuer`, `--workload-jwks` and the `--workload-client`s.
    workload: Option<(String, Option<String>, Vec<String>)>,
}

/// `--upstream-oidc` and its environment.
#[derive(Debug)]
struct UpstreamArgs {
    issuer: String,
    client_id: String,
    client_secret: Option<Secret>,
    /// `MCP_AUTH_VAULT_KEY`, checked; `None`: generate one.
    vault_key: Option<Secret>,
    scopes: Vec<String>,
}

fn parse_args() -> Result<Option<Args>, String> {
    parse(std::env::args().skip(1), &|name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })
}

/// The command line `args` (without the program name), with the environment `var`.
fn parse(
    args: impl IntoIterator<Item = String>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Args>, String> {
    let mut addr = var("MCP_AUTH_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let mut public_url = var("MCP_AUTH_PUBLIC_URL");
    let mut db = var("MCP_AUTH_DB").unwrap_or_else(|| "mcp-auth-demo.db".to_owned());
    let mut db_schema = var("MCP_AUTH_DB_SCHEMA");
    let mut auto_approve = false;
    let mut resources = Vec::new();
    let mut introspection_id = None;
    let mut machine_id = None;
    let mut machine_scopes = Vec::new();
    let mut machine_jwks = None;
    let (mut id_jag_issuer, mut id_jag_jwks) = (None, None);
    let (mut workload_issuer, mut workload_jwks, mut workload_clients) = (None, None, Vec::new());
    let mut upstream_issuer = None;
    let mut upstream_scopes = Vec::new();
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
            "--addr" => addr = value()?,
            "--public-url" => public_url = Some(value()?),
            "--db" => db = value()?,
            "--db-schema" => db_schema = Some(value()?),
            "--resource" => resources.push(value()?),
            "--introspection-client" => introspection_id = Some(value()?),
            "--machine-client" => machine_id = Some(value()?),
            "--machine-scope" => machine_scopes.push(value()?),
            "--machine-jwks" => machine_jwks = Some(value()?),
            "--id-jag-issuer" => id_jag_issuer = Some(value()?),
            "--id-jag-jwks" => id_jag_jwks = Some(value()?),
            "--workload-issuer" => workload_issuer = Some(value()?),
            "--workload-jwks" => workload_jwks = Some(value()?),
            "--workload-client" => workload_clients.push(value()?),
            "--upstream-oidc" => upstream_issuer = Some(value()?),
            "--upstream-scope" => upstream_scopes.push(value()?),
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
    if machine_jwks.is_some() && machine_client.is_none() {
        return Err("--machine-jwks goes with --machine-client".to_owned());
    }
    let id_jag = match (id_jag_issuer, id_jag_jwks) {
        (Some(issuer), jwks) => Some((issuer, jwks)),
        (None, Some(_)) => return Err("--id-jag-jwks goes with --id-jag-issuer".to_owned()),
        (None, None) => None,
    };
    let workload = match (workload_issuer, workload_jwks, workload_clients) {
        (Some(_), _, clients) if clients.is_empty() => {
            return Err("--workload-issuer needs at least one --workload-client".to_owned());
        }
        (Some(issuer), jwks, clients) => Some((issuer, jwks, clients)),
        (None, None, clients) if clients.is_empty() => None,
        (None, _, _) => {
            return Err(
                "--workload-jwks and --workload-client go with --workload-issuer".to_owned(),
            );
        }
    };
    let upstream = match upstream_issuer {
        Some(_) if auto_approve => {
            return Err("--upstream-oidc and --auto-approve cannot be combined: \
                 --upstream-oidc signs users in at the provider, --auto-approve signs nobody in"
                .to_owned());
        }
        Some(issuer) => Some(upstream_args(issuer, upstream_scopes, var)?),
        None if !upstream_scopes.is_empty() => {
            return Err("--upstream-scope goes with --upstream-oidc".to_owned());
        }
        None => None,
    };
    let addr = addr
        .parse()
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?;
    let public_addr = public_url.as_deref().map(public_addr).transpose()?;
    if db_schema.is_some() && !Database::parse(&db, None).is_ok_and(|db| db.is_postgres()) {
        return Err("--db-schema goes with a PostgreSQL --db URL (postgres://…)".to_owned());
    }
    let db = Database::parse(&db, db_schema).map_err(|e| format!("--db: {e}"))?;
    Ok(Some(Args {
        addr,
        public_addr,
        db,
        auto_approve,
        upstream,
        resources,
        introspection_client,
        machine_client,
        machine_jwks,
        id_jag,
        workload,
    }))
}

/// `--public-url`: `http://IP:PORT` (a trailing `/` allowed) with a loopback IP.
fn public_addr(url: &str) -> Result<SocketAddr, String> {
    let error = || format!("--public-url {url:?}: expected http://IP:PORT with a loopback IP");
    let authority = url
        .strip_prefix("http://")
        .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
        .ok_or_else(error)?;
    let addr: SocketAddr = authority.parse().map_err(|_| error())?;
    if !addr.ip().is_loopback() || addr.port() == 0 {
        return Err(error());
    }
    Ok(addr)
}

/// `--upstream-oidc ISSUER`'s settings from the environment `var`.
fn upstream_args(
    issuer: String,
    scopes: Vec<String>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<UpstreamArgs, String> {
    let Some(client_id) = var(UPSTREAM_CLIENT_ID_ENV) else {
        return Err(format!(
            "--upstream-oidc needs the client id registered at the provider in {UPSTREAM_CLIENT_ID_ENV}"
        ));
    };
    let vault_key = match var(VAULT_KEY_ENV) {
        Some(key) => {
            VaultKey::from_base64(&key).map_err(|e| {
                format!("{VAULT_KEY_ENV}: {e} (make one with `openssl rand -base64 32`)")
            })?;
            Some(Secret::new(key))
        }
        None => None,
    };
    Ok(UpstreamArgs {
        issuer,
        client_id,
        client_secret: var(UPSTREAM_CLIENT_SECRET_ENV).map(Secret::new),
        vault_key,
        scopes,
    })
}

/// A `--*-jwks` value: `Ok(url)` for an http(s) URL, else `Err(the JWK Set read from the file)`.
fn jwks_source(flag: &str, source: &str) -> Result<Result<String, serde_json::Value>, String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return Ok(Ok(source.to_owned()));
    }
    let text = std::fs::read_to_string(source).map_err(|e| format!("{flag} {source}: {e}"))?;
    serde_json::from_str(&text)
        .map(Err)
        .map_err(|e| format!("{flag} {source}: not JSON: {e}"))
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
    // A vault key made here is printed once, in the banner.
    let mut generated_vault_key = None;
    let login = if let Some(upstream) = &args.upstream {
        let vault_key = match &upstream.vault_key {
            Some(key) => key.clone(),
            None => {
                let key = VaultKey::generate()?.to_base64();
                generated_vault_key = Some(key.clone());
                key
            }
        };
        let mut oidc = UpstreamOidc::new(&upstream.issuer, &upstream.client_id, vault_key);
        oidc.client_secret = upstream.client_secret.clone();
        if !upstream.scopes.is_empty() {
            oidc.scopes = upstream.scopes.clone();
        }
        Login::Upstream(oidc)
    } else if args.auto_approve {
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
    config.public_addr = args.public_addr;
    config.db = Some(args.db.clone());
    config.extra_resources = args.resources.clone();
    config.introspection_client = args.introspection_client.clone();
    if let Some((id, scopes)) = &args.machine_client {
        let client = match &args.machine_jwks {
            Some(source) => match jwks_source("--machine-jwks", source)? {
                Ok(uri) => MachineClient::with_jwks_uri(id, uri),
                Err(jwks) => MachineClient::with_jwks(id, jwks),
            },
            None => {
                let Some(secret) = std::env::var("MCP_AUTH_MACHINE_SECRET")
                    .ok()
                    .filter(|s| !s.is_empty())
                else {
                    return Err(
                        "--machine-client needs its secret in MCP_AUTH_MACHINE_SECRET (or keys with --machine-jwks)"
                            .into(),
                    );
                };
                MachineClient::new(id, Secret::new(secret))
            }
        };
        config
            .machine_clients
            .push(client.scopes(scopes).name("demo machine client"));
    }
    let advertised: Vec<&str> = scopes::ADVERTISED.concat();
    if let Some((issuer, jwks)) = &args.id_jag {
        let mut trusted = JwtBearerIssuer::id_jag(issuer).scopes(advertised.clone());
        if let Some(source) = jwks {
            trusted = match jwks_source("--id-jag-jwks", source)? {
                Ok(uri) => trusted.jwks_uri(uri),
                Err(jwks) => trusted.jwks(jwks),
            };
        }
        config.jwt_bearer_issuers.push(trusted);
    }
    if let Some((issuer, jwks, clients)) = &args.workload {
        // Workload subjects never pass for a user's name (notes, consents are per subject).
        let mut trusted = JwtBearerIssuer::workload(issuer)
            .subject_prefix("workload:")
            .scopes(advertised.clone());
        if let Some(source) = jwks {
            trusted = match jwks_source("--workload-jwks", source)? {
                Ok(uri) => trusted.jwks_uri(uri),
                Err(jwks) => trusted.jwks(jwks),
            };
        }
        for client in clients {
            trusted = trusted.client(client);
        }
        config.jwt_bearer_issuers.push(trusted);
    }
    if !config.addr.ip().is_loopback() {
        return Err(example_mcp_server::Error::NotLoopback(config.addr).into());
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let bound = listener.local_addr()?;
    let demo = build(&config, bound).await?;
    if args.public_addr.is_some() {
        // Where the replica itself is, for a proxy in front of it (the banner names the public URL).
        println!("listening on:   http://{bound}");
    }
    print_banner(
        &demo.local_url,
        &demo.mcp_url,
        &demo.database,
        &args,
        &login,
        password_generated,
    );
    if let Some(uri) = &demo.upstream_redirect_uri {
        print_upstream(uri, generated_vault_key.as_ref());
    }
    println!();
    println!("Ctrl-C stops the server.");
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
    database: &str,
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
    println!("database:       {database} (clients, refresh tokens, consents, keys)");
    println!(
        "scopes:         advertised \"{}\"; by step-up {}",
        scopes::advertised_scopes(),
        scopes::unadvertised_scopes().join(", ")
    );
    for (tool, scopes) in scopes::TOOL_SCOPES {
        println!("  tool {tool:<16} needs {}", scopes.join(" "));
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
    if let Some((issuer, _)) = &args.id_jag {
        println!("ID-JAG:         identity assertion grants from {issuer} (JWT bearer grant)");
    }
    if let Some((issuer, _, clients)) = &args.workload {
        println!(
            "workloads:      tokens from {issuer} (JWT bearer grant) for {}",
            clients.join(" ")
        );
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
        Login::Upstream(upstream) => {
            println!("sign in at the OpenID provider {}", upstream.issuer);
            println!(
                "    (client id {:?}; the tool upstream_profile calls its userinfo endpoint as you)",
                upstream.client_id
            );
        }
    }
    println!();
    println!("connect with:");
    println!("  Claude Code:    claude mcp add --transport http demo {mcp_url}");
    println!("  MCP Inspector:  npx @modelcontextprotocol/inspector");
    println!("                  then Transport \"Streamable HTTP\", URL {mcp_url}");
    println!("  example client: cargo run -p example-mcp-client -- {mcp_url} --call whoami");
}

/// The upstream sign-in part of the banner: the redirect URI to register at the provider, and a
/// vault key made for this run (printed this once).
fn print_upstream(redirect_uri: &str, generated_vault_key: Option<&Secret>) {
    println!();
    println!("upstream redirect URI: {redirect_uri}");
    println!("  (register it at the provider as the client's redirect URI)");
    if let Some(key) = generated_vault_key {
        println!("vault key generated for this run (MCP_AUTH_VAULT_KEY was not set):");
        println!("    {}", key.expose());
        println!(
            "  set MCP_AUTH_VAULT_KEY to it (or to `openssl rand -base64 32`) to keep the users'"
        );
        println!(
            "  upstream tokens across restarts: without it each start has a new key, and users"
        );
        println!("  sign in again at the provider");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn run(args: &[&str], vars: &[(&str, &str)]) -> Result<Option<Args>, String> {
        parse(args.iter().map(|a| (*a).to_owned()), &env(vars))
    }

    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

    #[test]
    fn jwt_assertion_flags_go_together() {
        let args = run(
            &[
                "--machine-client",
                "signer",
                "--machine-scope",
                "mcp:tools",
                "--machine-jwks",
                "https://keys.example.com/jwks",
                "--id-jag-issuer",
                "https://idp.example.com",
                "--workload-issuer",
                "https://platform.example",
                "--workload-jwks",
                "platform-jwks.json",
                "--workload-client",
                "nightly-job",
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            args.machine_jwks.as_deref(),
            Some("https://keys.example.com/jwks")
        );
        assert_eq!(args.id_jag, Some(("https://idp.example.com".into(), None)));
        let (issuer, jwks, clients) = args.workload.unwrap();
        assert_eq!(issuer, "https://platform.example");
        assert_eq!(jwks.as_deref(), Some("platform-jwks.json"));
        assert_eq!(clients, ["nightly-job"]);
        for bad in [
            &["--machine-jwks", "k.json"][..],
            &["--id-jag-jwks", "https://idp.example.com/jwks"],
            &["--workload-issuer", "https://platform.example"],
            &["--workload-client", "nightly-job"],
        ] {
            assert!(run(bad, &[]).is_err(), "{bad:?}");
        }
        assert_eq!(
            jwks_source("--x", "https://k.example.com/j").unwrap(),
            Ok("https://k.example.com/j".to_owned())
        );
        assert!(jwks_source("--x", "/nonexistent/jwks.json").is_err());
    }

    #[test]
    fn upstream_oidc_reads_the_client_and_the_vault_key_from_the_environment() {
        let args = run(
            &[
                "--upstream-oidc",
                "https://idp.example.com",
                "--upstream-scope=openid",
            ],
            &[
                (UPSTREAM_CLIENT_ID_ENV, "demo-client"),
                (UPSTREAM_CLIENT_SECRET_ENV, "s3cret"),
                (VAULT_KEY_ENV, KEY),
            ],
        )
        .unwrap()
        .unwrap();
        let upstream = args.upstream.unwrap();
        assert_eq!(upstream.issuer, "https://idp.example.com");
        assert_eq!(upstream.client_id, "demo-client");
        assert_eq!(upstream.client_secret.unwrap().expose(), "s3cret");
        assert_eq!(upstream.vault_key.unwrap().expose(), KEY);
        assert_eq!(upstream.scopes, ["openid"]);
        assert!(!args.auto_approve);
    }

    #[test]
    fn without_a_vault_key_one_is_generated_later_and_without_a_secret_the_client_is_public() {
        let args = run(
            &["--upstream-oidc", "https://idp.example.com"],
            &[(UPSTREAM_CLIENT_ID_ENV, "demo-client")],
        )
        .unwrap()
        .unwrap();
        let upstream = args.upstream.unwrap();
        assert!(upstream.vault_key.is_none());
        assert!(upstream.client_secret.is_none());
        assert!(upstream.scopes.is_empty(), "the library's default scopes");
    }

    #[test]
    fn upstream_oidc_without_a_client_id_is_an_error_naming_the_variable() {
        let error = run(&["--upstream-oidc", "https://idp.example.com"], &[]).unwrap_err();
        assert!(error.contains("MCP_AUTH_UPSTREAM_CLIENT_ID"), "{error}");
    }

    #[test]
    fn a_vault_key_that_is_not_base64_of_32_bytes_is_an_error() {
        for bad in ["not base64!", "c2hvcnQ=", &format!("{KEY}{KEY}")] {
            let error = run(
                &["--upstream-oidc", "https://idp.example.com"],
                &[
                    (UPSTREAM_CLIENT_ID_ENV, "demo-client"),
                    (VAULT_KEY_ENV, bad),
                ],
            )
            .unwrap_err();
            assert!(error.starts_with("MCP_AUTH_VAULT_KEY: "), "{error}");
            assert!(!error.contains(bad), "the key is not echoed: {error}");
        }
    }

    #[test]
    fn upstream_oidc_and_auto_approve_cannot_be_combined() {
        let error = run(
            &[
                "--auto-approve",
                "--upstream-oidc",
                "https://idp.example.com",
            ],
            &[(UPSTREAM_CLIENT_ID_ENV, "demo-client")],
        )
        .unwrap_err();
        assert!(error.contains("cannot be combined"), "{error}");
        assert!(
            run(&["--upstream-oidc"], &[])
                .unwrap_err()
                .contains("needs a value"),
        );
        assert!(
            run(&["--upstream-scope", "openid"], &[])
                .unwrap_err()
                .contains("goes with --upstream-oidc")
        );
    }

    #[test]
    fn db_takes_a_sqlite_path_or_a_postgres_url_and_a_schema_goes_only_with_a_url() {
        let args = run(&[], &[]).unwrap().unwrap();
        assert!(matches!(&args.db, Database::Sqlite(p) if p.as_os_str() == "mcp-auth-demo.db"));
        for url in ["postgres://u:pw@127.0.0.1/db", "PostgreSQL://127.0.0.1/db"] {
            let args = run(&["--db", url, "--db-schema", "demo"], &[])
                .unwrap()
                .unwrap();
            assert!(args.db.is_postgres(), "{url}");
            let shown = format!("{:?}", args.db);
            assert!(shown.contains("demo") && !shown.contains(":pw@"), "{shown}");
        }
        let args = run(
            &[],
            &[
                ("MCP_AUTH_DB", "postgresql://db/x"),
                ("MCP_AUTH_DB_SCHEMA", "s"),
            ],
        )
        .unwrap()
        .unwrap();
        assert!(args.db.is_postgres());
        let error = run(&["--db", "demo.db", "--db-schema", "demo"], &[]).unwrap_err();
        assert!(
            error.contains("--db-schema goes with a PostgreSQL"),
            "{error}"
        );
    }

    #[test]
    fn public_url_is_a_loopback_http_address_and_defaults_to_none() {
        assert_eq!(run(&[], &[]).unwrap().unwrap().public_addr, None);
        for (given, expected) in [
            ("http://127.0.0.1:9000", "127.0.0.1:9000"),
            ("http://127.0.0.1:9000/", "127.0.0.1:9000"),
            ("http://[::1]:9001", "[::1]:9001"),
        ] {
            let args = run(&["--public-url", given], &[]).unwrap().unwrap();
            assert_eq!(args.public_addr.unwrap().to_string(), expected, "{given}");
        }
        let args = run(&[], &[("MCP_AUTH_PUBLIC_URL", "http://127.0.0.1:9002")])
            .unwrap()
            .unwrap();
        assert_eq!(args.public_addr.unwrap().to_string(), "127.0.0.1:9002");
        for bad in [
            "https://127.0.0.1:9000",
            "http://10.0.0.1:9000",
            "http://localhost:9000",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://127.0.0.1:9000/mcp",
        ] {
            let error = run(&["--public-url", bad], &[]).unwrap_err();
            assert!(error.contains("loopback"), "{bad}: {error}");
        }
    }

    #[test]
    fn auto_approve_and_the_password_login_parse_as_before() {
        let args = run(&["--auto-approve"], &[]).unwrap().unwrap();
        assert!(args.auto_approve && args.upstream.is_none());
        let args = run(&[], &[]).unwrap().unwrap();
        assert!(!args.auto_approve && args.upstream.is_none());
        assert_eq!(args.addr.to_string(), "127.0.0.1:8080");
        assert!(run(&["--help"], &[]).unwrap().is_none());
    }
}
