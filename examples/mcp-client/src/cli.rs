//! The command line, and the MCP conformance suite's client contract.
//!
//! ```text
//! example-mcp-client [OPTIONS] <MCP_URL>
//! ```
//!
//! The conformance suite runs `<command> <server-url>` (the URL last) with
//! `MCP_CONFORMANCE_SCENARIO` set and, for scenarios with pre-registered credentials,
//! `MCP_CONFORMANCE_CONTEXT` = `{"name": …, "client_id": …, "client_secret": …}`. In that mode
//! the client is headless, allows plain http on loopback (the suite's mocks run on
//! `http://localhost`), offers the Client ID Metadata Document URL the suite expects, uses the
//! credentials from the context, speaks the protocol version the suite names in
//! `MCP_CONFORMANCE_PROTOCOL_VERSION`, accepts elicitations with the schema's defaults and, when no
//! `--call` is given, makes the context's `toolCalls` or calls every listed tool.

use std::path::PathBuf;

use mcp_auth_client::ClientCredentials;
use serde_json::{Map, Value};

use crate::mcp::Era;

/// The usage text.
pub const USAGE: &str = "\
usage: example-mcp-client [OPTIONS] <MCP_URL>

Connects to an MCP server over Streamable HTTP (MCP 2026-07-28 where the server speaks it,
else 2025-11-25), lists and calls tools, authorizing with OAuth as the server asks, and
prints what it did.

options:
  --call TOOL                 call TOOL after listing the tools (repeatable)
  --arg KEY=VALUE             an argument for the preceding --call (VALUE is JSON if it
                              parses, else a string; repeatable)
  --headless                  fetch the authorization URL instead of opening a browser
                              (for an authorization server that approves at once)
  --store FILE                keep tokens and client registrations in FILE (default: memory)
  --client-metadata-url URL   this client's Client ID Metadata Document (https URL), used as
                              client_id where the authorization server supports it
  --client-id ID              a pre-registered client id (secret from MCP_CLIENT_SECRET)
  --private-key-file FILE     authenticate --client-id with private_key_jwt (RFC 7523): the
                              PKCS#8 PEM private key in FILE signs a client assertion for
                              each token request (ES256 unless --signing-alg says otherwise)
  --signing-alg ALG           the private key's algorithm (ES256, ES384, RS256, PS256, EdDSA)
  --protocol-version V        start with this version's lifecycle: 2026-07-28 (server/discover,
                              falling back to initialize; the default) or an older one such as
                              2025-11-25 (the initialize handshake only)
  --client-credentials        a machine client: tokens from the client credentials grant with
                              --client-id and MCP_CLIENT_SECRET, never a browser
  --workload-jwt-file FILE    workload identity: tokens from the JWT bearer grant with the JWT
                              in FILE (issued by the platform) and --client-id
  --accept-elicitations       accept the server's elicitation forms with their default values
                              (default: decline them)
  --quiet                     do not print each HTTP exchange
  -h, --help                  this text

environment:
  MCP_CLIENT_SECRET           the pre-registered client's secret (with --client-id)
  MCP_CONFORMANCE_SCENARIO    conformance-suite mode (see examples/mcp-client/README.md)
  MCP_CONFORMANCE_CONTEXT     the suite's JSON context (pre-registered credentials, toolCalls)
  MCP_CONFORMANCE_PROTOCOL_VERSION  the protocol version the suite runs (as --protocol-version)
  RUST_LOG                    log filter (default: mcp_auth_client=info)
";

/// The Client ID Metadata Document URL the conformance suite expects (`auth/basic-cimd`).
pub const CONFORMANCE_CIMD_URL: &str = "https://conformance-test.local/client-metadata.json";

/// The conformance scenarios of a machine client (`client_secret_basic`, `private_key_jwt`).
pub const CONFORMANCE_CLIENT_CREDENTIALS: &[&str] = &[
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
];

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Print [`USAGE`].
    Help,
    /// Connect and run.
    Run(Box<Args>),
}

/// The parsed options.
#[derive(Debug)]
pub struct Args {
    /// The MCP endpoint.
    pub url: String,
    /// The tools to call, in order.
    pub calls: Vec<ToolCall>,
    /// Use the fetching (headless) browser.
    pub headless: bool,
    /// The token store file; memory when `None`.
    pub store: Option<PathBuf>,
    /// The Client ID Metadata Document URL.
    pub client_metadata_url: Option<String>,
    /// Pre-registered client credentials.
    pub client: Option<ClientCredentials>,
    /// Print each HTTP exchange.
    pub trace_http: bool,
    /// Conformance-suite mode: the scenario's name.
    pub scenario: Option<String>,
    /// The tool calls the suite's context asks for (`toolCalls`).
    pub context_calls: Vec<ToolCall>,
    /// Which lifecycle to start with.
    pub era: Era,
    /// Accept elicitation forms with their defaults.
    pub accept_elicitations: bool,
    /// A machine client: the client credentials grant.
    pub machine: bool,
    /// Workload identity: the JWT for the JWT bearer grant.
    pub workload_jwt: Option<String>,
    /// Enterprise-managed authorization: the IdP's token endpoint, this client's id there, and
    /// the user's ID token.
    pub enterprise: Option<(String, String, String)>,
}

/// One `--call`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// Its arguments.
    pub arguments: Map<String, Value>,
}

/// A command-line mistake.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Parses the arguments (without the program name) and the environment (`env(name)`).
///
/// # Errors
/// [`UsageError`] for an unknown option, a missing value or URL, or an invalid
/// `MCP_CONFORMANCE_CONTEXT`.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, UsageError> {
    let mut url = None;
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut headless = false;
    let mut store = None;
    let mut client_metadata_url = None;
    let mut client_id = None;
    let mut trace_http = true;
    let mut version: Option<String> = None;
    let mut accept_elicitations = false;
    let mut machine = false;
    let mut workload_jwt_file: Option<PathBuf> = None;
    let mut private_key_file: Option<PathBuf> = None;
    let mut signing_alg: Option<String> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--call" => calls.push(ToolCall {
                name: value("--call")?,
                arguments: Map::new(),
            }),
            "--arg" => {
                let pair = value("--arg")?;
                let (key, raw) = pair
                    .split_once('=')
                    .ok_or_else(|| UsageError(format!("--arg {pair}: expected KEY=VALUE")))?;
                let call = calls
                    .last_mut()
                    .ok_or_else(|| UsageError("--arg must follow a --call".to_owned()))?;
                let parsed = serde_json::from_str(raw).unwrap_or_else(|_| Value::from(raw));
                call.arguments.insert(key.to_owned(), parsed);
            }
            "--headless" => headless = true,
            "--store" => store = Some(PathBuf::from(value("--store")?)),
            "--client-metadata-url" => client_metadata_url = Some(value("--client-metadata-url")?),
            "--client-id" => client_id = Some(value("--client-id")?),
            "--quiet" => trace_http = false,
            "--protocol-version" => version = Some(value("--protocol-version")?),
            "--accept-elicitations" => accept_elicitations = true,
            "--client-credentials" => machine = true,
            "--private-key-file" => {
                private_key_file = Some(PathBuf::from(value("--private-key-file")?));
            }
            "--signing-alg" => signing_alg = Some(value("--signing-alg")?),
            "--workload-jwt-file" => {
                workload_jwt_file = Some(PathBuf::from(value("--workload-jwt-file")?));
            }
            other if other.starts_with('-') => {
                return Err(UsageError(format!("unknown option {other}")));
            }
            // The server URL; the conformance suite appends it last.
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or_else(|| UsageError("the MCP server URL is missing".to_owned()))?;
    let mut client = client_id.map(|id| {
        let credentials = ClientCredentials::new(id);
        match env("MCP_CLIENT_SECRET") {
            Some(secret) => credentials.secret(secret),
            None => credentials,
        }
    });
    match (private_key_file, &mut client) {
        (Some(path), Some(credentials)) => {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("--private-key-file {}: {e}", path.display())))?;
            let algorithm = signing_alg.as_deref().unwrap_or("ES256");
            *credentials = credentials
                .clone()
                .private_key_jwt(&pem, algorithm)
                .map_err(|e| UsageError(format!("--private-key-file {}: {e}", path.display())))?;
        }
        (Some(_), None) => {
            return Err(UsageError(
                "--private-key-file goes with --client-id".to_owned(),
            ));
        }
        (None, _) if signing_alg.is_some() => {
            return Err(UsageError(
                "--signing-alg goes with --private-key-file".to_owned(),
            ));
        }
        (None, _) => {}
    }

    let mut workload_jwt = match workload_jwt_file {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| UsageError(format!("--workload-jwt-file {}: {e}", path.display())))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let scenario = env("MCP_CONFORMANCE_SCENARIO").filter(|s| !s.is_empty());
    let mut context_calls = Vec::new();
    let mut enterprise = None;
    if scenario.is_some() {
        headless = true;
        accept_elicitations = true;
        if client_metadata_url.is_none() {
            client_metadata_url = Some(CONFORMANCE_CIMD_URL.to_owned());
        }
        // The suite's machine-client scenario with a shared secret (extension E-1).
        machine |= CONFORMANCE_CLIENT_CREDENTIALS.contains(&scenario.as_deref().unwrap_or(""));
        if version.is_none() {
            version = env("MCP_CONFORMANCE_PROTOCOL_VERSION").filter(|v| !v.is_empty());
        }
        if let Some(context) = env("MCP_CONFORMANCE_CONTEXT") {
            let context: Value = serde_json::from_str(&context)
                .map_err(|e| UsageError(format!("MCP_CONFORMANCE_CONTEXT is not JSON: {e}")))?;
            if let Some(credentials) = conformance_credentials(&context)? {
                client = Some(credentials);
            }
            context_calls = conformance_tool_calls(&context);
            // Workload identity (SEP-1933): the platform's JWT for the JWT bearer grant.
            if let Some(jwt) = context.get("valid_jwt").and_then(Value::as_str) {
                workload_jwt = Some(jwt.to_owned());
            }
            // Enterprise-managed authorization (SEP-990): the IdP and the user's ID token.
            let field = |name: &str| context.get(name).and_then(Value::as_str).map(str::to_owned);
            if let (Some(endpoint), Some(client), Some(token)) = (
                field("idp_token_endpoint"),
                field("idp_client_id"),
                field("idp_id_token"),
            ) {
                enterprise = Some((endpoint, client, token));
            }
        }
    }
    let era = match version.as_deref() {
        None | Some("2026-07-28") => Era::Auto,
        Some(v) if v.len() == 10 && v.as_bytes()[4] == b'-' && v < "2026-07-28" => {
            Era::Legacy(v.to_owned())
        }
        Some(v) => {
            return Err(UsageError(format!(
                "--protocol-version {v}: expected a date such as 2026-07-28 or 2025-11-25"
            )));
        }
    };
    Ok(Command::Run(Box::new(Args {
        url,
        context_calls,
        era,
        accept_elicitations,
        machine,
        workload_jwt,
        enterprise,
        calls,
        headless,
        store,
        client_metadata_url,
        client,
        trace_http,
        scenario,
    })))
}

/// The `toolCalls` of a conformance context (`[{"name": …, "arguments": {…}}]`).
fn conformance_tool_calls(context: &Value) -> Vec<ToolCall> {
    context
        .get("toolCalls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|call| {
                    Some(ToolCall {
                        name: call.get("name")?.as_str()?.to_owned(),
                        arguments: call
                            .get("arguments")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pre-registered credentials in a conformance context, if it has a `client_id`.
fn conformance_credentials(context: &Value) -> Result<Option<ClientCredentials>, UsageError> {
    let field = |name: &str| context.get(name).and_then(Value::as_str);
    let Some(id) = field("client_id") else {
        return Ok(None);
    };
    let credentials = ClientCredentials::new(id);
    if let Some(pem) = field("private_key_pem") {
        let algorithm = field("signing_algorithm").unwrap_or("ES256");
        return credentials
            .private_key_jwt(pem, algorithm)
            .map(Some)
            .map_err(|e| UsageError(format!("MCP_CONFORMANCE_CONTEXT: {e}")));
    }
    Ok(Some(match field("client_secret") {
        Some(secret) => credentials.secret(secret.to_owned()),
        None => credentials,
    }))
}

/// Whether `url` is plain http to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`).
pub fn is_loopback_http(url: &http::Uri) -> bool {
    url.scheme_str() == Some("http") && url.host().is_some_and(mcp_auth_core::is_loopback_host)
}

#[cfg(test)]
mod tests {
    use super::{CONFORMANCE_CIMD_URL, Command, is_loopback_http, parse};
    use mcp_auth_client::TokenEndpointAuthMethod;
    use serde_json::json;

    fn run(args: &[&str], env: &[(&str, &str)]) -> super::Args {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match parse(args.iter().map(|s| (*s).to_owned()), lookup) {
            Ok(Command::Run(args)) => *args,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn calls_with_arguments() {
        let args = run(
            &[
                "--call",
                "add",
                "--arg",
                "a=1",
                "--arg",
                "b=two",
                "--call",
                "whoami",
                "--headless",
                "http://127.0.0.1:8080/mcp",
            ],
            &[],
        );
        assert_eq!(args.url, "http://127.0.0.1:8080/mcp");
        assert_eq!(args.calls.len(), 2);
        assert_eq!(args.calls[0].arguments.get("a"), Some(&json!(1)));
        assert_eq!(args.calls[0].arguments.get("b"), Some(&json!("two")));
        assert!(args.headless && args.scenario.is_none() && args.context_calls.is_empty());
        assert_eq!(args.era, crate::mcp::Era::Auto);
        assert!(!args.accept_elicitations);
    }

    #[test]
    fn conformance_contract() {
        let args = run(
            &["http://localhost:1234/mcp"],
            &[
                ("MCP_CONFORMANCE_SCENARIO", "auth/pre-registration"),
                (
                    "MCP_CONFORMANCE_CONTEXT",
                    r#"{"name":"auth/pre-registration","client_id":"pre","client_secret":"s3cret"}"#,
                ),
            ],
        );
        assert!(args.headless && args.accept_elicitations && args.calls.is_empty());
        assert!(!args.machine);
        assert_eq!(
            args.client_metadata_url.as_deref(),
            Some(CONFORMANCE_CIMD_URL)
        );
        let client = args.client.expect("credentials from the context");
        assert_eq!(client.client_id(), "pre");
        assert_eq!(
            client.auth_method(),
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn conformance_protocol_version_and_tool_calls() {
        let args = run(
            &["http://localhost:1234/mcp"],
            &[
                ("MCP_CONFORMANCE_SCENARIO", "http-custom-headers"),
                ("MCP_CONFORMANCE_PROTOCOL_VERSION", "2025-11-25"),
                (
                    "MCP_CONFORMANCE_CONTEXT",
                    r#"{"toolCalls":[{"name":"t","arguments":{"region":"us-west1","n":42}}]}"#,
                ),
            ],
        );
        assert_eq!(args.era, crate::mcp::Era::Legacy("2025-11-25".to_owned()));
        assert_eq!(args.context_calls.len(), 1);
        assert_eq!(args.context_calls[0].name, "t");
        assert_eq!(args.context_calls[0].arguments.get("n"), Some(&json!(42)));
        let modern = run(
            &[
                "--protocol-version",
                "2026-07-28",
                "http://localhost:1234/mcp",
            ],
            &[],
        );
        assert_eq!(modern.era, crate::mcp::Era::Auto);
    }

    #[test]
    fn conformance_private_key_jwt_makes_a_machine_client() {
        let context = r#"{"client_id":"m","private_key_pem":"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgu8EP56LzTUuRDV/U\noer7Y0KutRrQ9lDDQb4/KTmW/EWhRANCAATDY/tmPRP4kwpT9jEswaEOWAf17W4A\nFjfJQPqnJZ2dwAI35cRUMm+PJagTazN1y7Tm0WHVWgbvIBY4Rno5rQAZ\n-----END PRIVATE KEY-----","signing_algorithm":"ES256"}"#.to_owned();
        let args = run(
            &["http://localhost:1234/mcp"],
            &[
                ("MCP_CONFORMANCE_SCENARIO", "auth/client-credentials-jwt"),
                ("MCP_CONFORMANCE_CONTEXT", context.as_str()),
            ],
        );
        assert!(args.machine);
        let client = args.client.expect("credentials from the context");
        assert_eq!(client.auth_method(), TokenEndpointAuthMethod::PrivateKeyJwt);
        assert!(!format!("{client:?}").contains("PRIVATE KEY"));
        let bad = |name: &str| {
            let env = [
                (
                    "MCP_CONFORMANCE_SCENARIO".to_owned(),
                    "auth/client-credentials-jwt".to_owned(),
                ),
                (
                    "MCP_CONFORMANCE_CONTEXT".to_owned(),
                    r#"{"client_id":"m","private_key_pem":"nope"}"#.to_owned(),
                ),
            ];
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        };
        assert!(parse(["http://localhost:1/mcp".to_owned()], bad).is_err());
    }

    #[test]
    fn a_private_key_file_makes_private_key_jwt_credentials() {
        let dir = std::env::temp_dir().join(format!("mcp-client-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("key.pem");
        std::fs::write(&pem, "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgu8EP56LzTUuRDV/U\noer7Y0KutRrQ9lDDQb4/KTmW/EWhRANCAATDY/tmPRP4kwpT9jEswaEOWAf17W4A\nFjfJQPqnJZ2dwAI35cRUMm+PJagTazN1y7Tm0WHVWgbvIBY4Rno5rQAZ\n-----END PRIVATE KEY-----\n").unwrap();
        let path = pem.to_str().unwrap();
        let args = run(
            &[
                "--client-id",
                "report-signer",
                "--private-key-file",
                path,
                "--client-credentials",
                "http://127.0.0.1:8080/mcp",
            ],
            &[],
        );
        let client = args.client.expect("credentials");
        assert_eq!(client.auth_method(), TokenEndpointAuthMethod::PrivateKeyJwt);
        assert!(args.machine);
        let refused =
            |args: &[&str]| parse(args.iter().map(|s| (*s).to_owned()), |_| None).is_err();
        assert!(refused(&[
            "--private-key-file",
            path,
            "http://127.0.0.1:1/mcp"
        ]));
        assert!(refused(&[
            "--client-id",
            "a",
            "--signing-alg",
            "ES256",
            "http://127.0.0.1:1/mcp"
        ]));
        assert!(refused(&[
            "--client-id",
            "a",
            "--private-key-file",
            path,
            "--signing-alg",
            "HS256",
            "http://127.0.0.1:1/mcp"
        ]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn usage_errors() {
        let none = |_: &str| None;
        assert!(parse(["--bogus".to_owned()], none).is_err());
        assert!(parse(["--arg".to_owned(), "a=1".to_owned()], none).is_err());
        assert!(parse(Vec::new(), none).is_err());
        assert!(
            parse(
                [
                    "--protocol-version".to_owned(),
                    "latest".to_owned(),
                    "http://x/".to_owned()
                ],
                none
            )
            .is_err()
        );
        assert!(matches!(parse(["-h".to_owned()], none), Ok(Command::Help)));
    }

    #[test]
    fn loopback() {
        for url in [
            "http://localhost:1/mcp",
            "http://127.0.0.2/x",
            "http://[::1]:9/",
        ] {
            assert!(is_loopback_http(&url.parse().unwrap()), "{url}");
        }
        for url in [
            "https://localhost/mcp",
            "http://example.com/",
            "http://10.0.0.1/",
        ] {
            assert!(!is_loopback_http(&url.parse().unwrap()), "{url}");
        }
    }
}
