//! An MCP client built on rmcp's client and Streamable HTTP transport, authorized by
//! `mcp-auth-client`: connect (MCP 2026-07-28 where the server speaks it, else 2025-11-25),
//! `tools/list`, then `tools/call` for each `--call`, printing each step.
//!
//! The pieces:
//!
//! - [`mcp::McpClient`]: rmcp's client over `StreamableHttpClientTransport::with_client(
//!   McpAuthClient::with_client(trace, manager), …)` — the bearer token on every request,
//!   discovery, registration, the browser flow, refresh and step-up on 401/403, all in the
//!   library; the protocol (both eras, SSE, sessions, `_meta`, `Mcp-*` headers,
//!   `input_required` rounds) all rmcp's;
//! - [`trace::Trace`]: rmcp's reqwest client, printing one line per exchange;
//! - [`cli`]: the command line and the MCP conformance suite's client contract.
//!
//! See `examples/mcp-client/README.md`.

pub mod cli;
pub mod mcp;
pub mod trace;

use std::{error::Error as StdError, fmt, time::Duration};

use mcp_auth_client::{
    AuthError, BrowserOpener, HeadlessBrowser, SystemBrowser, TokenManager, authorize::OpenFuture,
    store::FileTokenStore,
};
use mcp_auth_core::{Clock, SystemClock};
use serde_json::{Map, Value};

use crate::{
    cli::{Args, ToolCall},
    mcp::{Handler, McpClient},
};

/// The `client_name` this example registers with.
pub const CLIENT_NAME: &str = "example-mcp-client";

/// The JSON Schema round trip of the conformance scenario `json-schema-2020-12-preservation`:
/// the schema of its focal tool, passed verbatim to its echo tool.
const SCHEMA_FOCAL_TOOL: &str = "json_schema_2020_12_tool";
const SCHEMA_ECHO_TOOL: &str = "json_schema_echo";

/// Arguments for a tool from its input schema: each required property's `default`, else its
/// first `examples` or `enum` value, else a value of its type.
#[must_use]
pub fn example_arguments(schema: &Value) -> Map<String, Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut arguments = Map::new();
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return arguments;
    };
    for name in required {
        let Some(property) = properties.get(name) else {
            continue;
        };
        let first = |key: &str| {
            property
                .get(key)
                .and_then(Value::as_array)
                .and_then(|v| v.first())
                .cloned()
        };
        let value = property
            .get("default")
            .cloned()
            .or_else(|| first("examples"))
            .or_else(|| first("enum"))
            .unwrap_or_else(|| match property.get("type").and_then(Value::as_str) {
                Some("number" | "integer") => Value::from(2),
                Some("boolean") => Value::Bool(true),
                Some("object") => Value::Object(Map::new()),
                Some("array") => Value::Array(Vec::new()),
                _ => Value::from("example"),
            });
        arguments.insert(name.to_owned(), value);
    }
    arguments
}

/// The calls a conformance run makes when none were given: the suite's `toolCalls` if its context
/// has them, else every listed tool with [`example_arguments`] (the JSON Schema echo tool gets the
/// focal tool's schema, verbatim).
fn conformance_calls(args: &Args, tools: &[mcp::Tool]) -> Vec<ToolCall> {
    if !args.context_calls.is_empty() {
        return args.context_calls.clone();
    }
    let focal = tools.iter().find(|t| t.name == SCHEMA_FOCAL_TOOL);
    tools
        .iter()
        .map(|tool| {
            let arguments = match focal {
                Some(focal) if tool.name == SCHEMA_ECHO_TOOL => {
                    let mut map = Map::new();
                    map.insert("schema".to_owned(), focal.input_schema.clone());
                    map
                }
                _ => example_arguments(&tool.input_schema),
            };
            ToolCall {
                name: tool.name.clone(),
                arguments,
            }
        })
        .collect()
}

/// Connects, lists the tools, calls the requested ones and prints each step.
///
/// # Errors
/// The first step that failed: an invalid configuration, an HTTP or protocol error, an
/// authorization the library gave up on, or a JSON-RPC error.
pub async fn run(args: &Args) -> Result<(), Box<dyn StdError + Send + Sync>> {
    let url: ::http::Uri = args
        .url
        .parse()
        .map_err(|e| format!("invalid MCP server URL {}: {e}", args.url))?;
    let loopback_http = cli::is_loopback_http(&url);
    if let Some(scenario) = &args.scenario {
        println!("conformance scenario {scenario}");
    }
    if loopback_http {
        println!(
            "note: plain http is allowed because {} is a loopback host",
            url.host().unwrap_or("")
        );
    }

    let mut builder = TokenManager::builder(&args.url)
        .client_name(CLIENT_NAME)
        .allow_insecure_loopback(loopback_http);
    builder = if args.headless {
        builder.browser(ShowingOpener {
            inner: HeadlessBrowser::new(),
            headless: true,
        })
    } else {
        builder.browser(ShowingOpener {
            inner: SystemBrowser::new(),
            headless: false,
        })
    };
    if let Some(path) = &args.store {
        println!("token store: {}", path.display());
        builder = builder.store(FileTokenStore::new(path));
    }
    if let Some(cimd) = &args.client_metadata_url {
        builder = builder.client_id_metadata_document(cimd.clone());
    }
    if let Some(client) = &args.client {
        println!("pre-registered client: {}", client.client_id());
        builder = builder.client_credentials(client.clone());
    }
    if let Some((endpoint, idp_client, id_token)) = &args.enterprise {
        println!("enterprise-managed authorization: ID token → identity assertion → token");
        builder = builder
            .enterprise_managed_authorization(endpoint, idp_client, id_token.clone())
            .interactive(false);
    } else if let Some(jwt) = &args.workload_jwt {
        println!("workload identity: the JWT bearer grant");
        builder = builder.jwt_bearer_grant(jwt.clone()).interactive(false);
    } else if args.machine {
        println!("machine client: the client credentials grant");
        builder = builder.client_credentials_grant(true).interactive(false);
    }
    let manager = builder.build()?;

    let handler = Handler::new(CLIENT_NAME, args.accept_elicitations, true);
    let mut client = McpClient::with_options(
        &args.url,
        manager.clone(),
        args.era.clone(),
        handler,
        args.trace_http,
    )?;

    println!("→ connect {}", args.url);
    let server = client.initialize(CLIENT_NAME).await?;
    println!(
        "  server {} {} (protocol {}{})",
        or_unnamed(&server.name),
        server.version,
        server.protocol_version,
        if server.legacy {
            ", initialize handshake"
        } else {
            ", server/discover"
        }
    );
    if let Some(instructions) = &server.instructions {
        println!("  instructions: {}", one_line(instructions, 200));
    }

    println!("→ tools/list");
    let tools = client.list_tools().await?;
    println!("  {} tool(s)", tools.len());
    for tool in &tools {
        match &tool.description {
            Some(description) => println!("  - {}: {}", tool.name, one_line(description, 100)),
            None => println!("  - {}", tool.name),
        }
    }

    let calls = if args.scenario.is_some() && args.calls.is_empty() {
        conformance_calls(args, &tools)
    } else {
        args.calls.clone()
    };
    for call in &calls {
        println!(
            "→ tools/call {} {}",
            call.name,
            Value::Object(call.arguments.clone())
        );
        let result = client.call_tool(&call.name, call.arguments.clone()).await?;
        show_tool_result(&result);
        if result.get("isError").and_then(Value::as_bool) == Some(true) && args.scenario.is_none() {
            return Err(format!("the tool {} reported an error", call.name).into());
        }
    }
    if args.scenario.is_some() && args.calls.is_empty() {
        // The rest of what a server may offer, so the suite sees every request kind.
        for (uri, contents) in client.read_resources().await.unwrap_or_default() {
            println!("→ resources/read {uri}: {contents} content item(s)");
        }
        for (name, messages) in client.get_prompts().await.unwrap_or_default() {
            println!("→ prompts/get {name}: {messages} message(s)");
        }
    }

    client.close().await?;
    match manager.cached_token().await {
        Ok(Some(token)) => {
            let scopes = token.scopes().to_string();
            let expiry = token.expires_at().map(|at| {
                at.duration_since(SystemClock::default().now()).map_or_else(
                    |_| "expired".to_owned(),
                    |left| format!("expires in {}", human(left)),
                )
            });
            println!(
                "done: authorized (scopes: {}{})",
                if scopes.is_empty() {
                    "none granted"
                } else {
                    &scopes
                },
                expiry.map(|e| format!("; {e}")).unwrap_or_default()
            );
        }
        Ok(None) => println!("done: no authorization was needed"),
        Err(error) => println!("done (the token store could not be read: {error})"),
    }
    Ok(())
}

/// Explains an error from [`run`] on stderr: the chain of causes, and for an authorization
/// failure its kind.
pub fn report(error: &(dyn StdError + 'static)) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(auth) = cause.downcast_ref::<AuthError>() {
            eprintln!("  caused by: {auth} [{:?}]", auth.kind());
        } else {
            eprintln!("  caused by: {cause}");
        }
        source = cause.source();
    }
}

fn show_tool_result(result: &Value) {
    let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
    let items = result
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if is_error {
        println!("  the tool reported an error:");
    }
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = item.get("text").and_then(Value::as_str).unwrap_or("");
                for line in text.lines() {
                    println!("  │ {line}");
                }
            }
            Some(other) => println!("  │ [{other} content]"),
            None => println!("  │ [content without a type]"),
        }
    }
    if let Some(structured) = result.get("structuredContent") {
        println!("  structured: {}", one_line(&structured.to_string(), 300));
    }
    if items.is_empty() && result.get("structuredContent").is_none() {
        println!("  (no content)");
    }
}

fn or_unnamed(name: &str) -> &str {
    if name.is_empty() { "(unnamed)" } else { name }
}

/// The first `max` characters of `text` on one line.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 3600 {
        format!("{} h {} min", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Shows the authorization request before the browser (or the headless fetch) opens it.
struct ShowingOpener<B> {
    inner: B,
    headless: bool,
}

impl<B> fmt::Debug for ShowingOpener<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShowingOpener")
            .field("headless", &self.headless)
            .finish_non_exhaustive()
    }
}

impl<B: BrowserOpener> BrowserOpener for ShowingOpener<B> {
    fn open<'a>(&'a self, url: &'a str) -> OpenFuture<'a> {
        let parsed = url::Url::parse(url).ok();
        let endpoint = url.split_once('?').map_or(url, |(endpoint, _)| endpoint);
        let param = |name: &str| {
            parsed.as_ref().and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
        };
        println!("  authorization request → {endpoint}");
        println!(
            "    client_id={} scope={} resource={}",
            param("client_id").unwrap_or_default(),
            param("scope").unwrap_or_else(|| "(none)".to_owned()),
            param("resource").unwrap_or_default(),
        );
        if self.headless {
            println!(
                "    (headless: fetching it and following the redirect to the loopback listener)"
            );
        } else {
            println!("    opening your browser; if it does not open, visit:\n    {url}");
        }
        self.inner.open(url)
    }
}
