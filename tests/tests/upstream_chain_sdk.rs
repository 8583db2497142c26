//! The whole upstream chain (issue 11 item 9) with the official TypeScript MCP SDK v2
//! (`@modelcontextprotocol/client`, era 2026-07-28 pinned) as the MCP client: the same chain as
//! `upstream_chain.rs` (the demo as `--upstream-oidc` configures it in front of panva's
//! `oidc-provider`, both from `support/upstream.rs`), with `tests/sdk-client/upstream-chain.mjs`
//! in place of `mcp-auth-client`. The script's `redirectToAuthorization` prints the authorization
//! URL; this test opens it in the shared browser (our consent page, the provider's login and
//! consent, our callback), stops at the redirect to the SDK's redirect URI and writes that URL
//! back, and the SDK finishes the authorization itself (`finishAuth`). Steps, over JSON lines:
//!
//! 1. the SDK's first request gets 401; it registers and authorizes through the provider;
//!    `upstream_profile` returns alice's userinfo;
//! 2. the demo's clock moves past the upstream token's lifetime: `upstream_profile` still works
//!    (the vault refreshed upstream), with no new authorization and no 401;
//! 3. the upstream grant is revoked at the provider and the token expires: `upstream_profile`
//!    fails (sign in again), the next request gets 401, the SDK's refresh is refused and it asks
//!    to authorize again; the browser runs again and `upstream_profile` works again.
//!
//! Needs Node >= 22 and the npm packages of `.tools/oidc-provider` and `.tools/sdk-client`;
//! without them the test prints that it was skipped, unless `CI` or `MCP_AUTH_REQUIRE_NODE=1`
//! (set by `cargo xtask test`) make it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::{
    process::Stdio,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::{
    sdk,
    upstream::{Browser, Chain, USER},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

const TEST: &str = "upstream_chain_sdk";
/// The redirect URI the SDK registers; nothing listens there (the browser stops at it).
const REDIRECT_URI: &str = "http://127.0.0.1:53685/callback";
/// The whole run, bounded (the script bounds itself at 55 s too).
const OVERALL: Duration = Duration::from_secs(60);

/// The running script and the browser that plays its user.
struct Sdk {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    deadline: Instant,
    browser: Browser,
    /// Every line the script printed, for failure messages and the token requests.
    transcript: Vec<Value>,
    /// Authorization URLs the script printed.
    authorizations: usize,
}

impl Sdk {
    /// The script's next line; panics past the deadline or at its end.
    async fn line(&mut self) -> Value {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let line = tokio::time::timeout(left, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the script was silent past {OVERALL:?}: {:#?}",
                    self.transcript
                )
            })
            .unwrap()
            .unwrap_or_else(|| panic!("the script ended: {:#?}", self.transcript));
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        self.transcript.push(value.clone());
        value
    }

    async fn send(&mut self, value: Value) {
        let line = format!("{value}\n");
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, async {
            self.stdin.write_all(line.as_bytes()).await.unwrap();
            self.stdin.flush().await.unwrap();
        })
        .await
        .expect("the script reads its stdin in time");
    }

    /// Reads up to the first line of `step`, playing the browser for every authorization URL on
    /// the way (and handing the final redirect back).
    async fn until(&mut self, step: &str) -> Value {
        loop {
            let line = self.line().await;
            if line["step"] == "authorize" {
                self.authorizations += 1;
                let url = line["url"].as_str().unwrap().to_owned();
                let callback = self.browser.walk(&url).await;
                self.send(json!({ "callback": callback.as_str() })).await;
            } else if line["step"] == step {
                return line;
            }
        }
    }

    /// Calls `tool` with no arguments: its `result` line.
    async fn call(&mut self, tool: &str) -> Value {
        self.send(json!({ "call": tool })).await;
        let result = self.until("result").await;
        assert_eq!(result["tool"], tool, "{result}");
        result
    }

    /// Calls `tool`: its JSON result; panics when it failed.
    async fn ok(&mut self, tool: &str) -> Value {
        let result = self.call(tool).await;
        assert_eq!(result["ok"], true, "{result}: {:#?}", self.transcript);
        result["result"].clone()
    }

    /// The `grant_type` and `status` of every token request the SDK made so far.
    fn token_requests(&self) -> Vec<(String, u64)> {
        self.transcript
            .iter()
            .filter(|line| line["step"] == "token_request")
            .map(|line| {
                (
                    line["grant_type"].as_str().unwrap().to_owned(),
                    line["status"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_in_upstream_survives_expiry_and_signs_in_again_after_revocation()
{
    let Some(script) = sdk::prepare(TEST, "upstream-chain.mjs", "chain") else {
        return;
    };
    let Some(chain) = Chain::start(TEST).await else {
        return;
    };
    let mut child = Command::new(&script.node)
        .arg(&script.path)
        .arg(&chain.url)
        .arg(REDIRECT_URI)
        .current_dir(script.path.parent().unwrap())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut sdk = Sdk {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
        child,
        deadline: Instant::now() + OVERALL,
        browser: Browser::stopping_at(REDIRECT_URI),
        transcript: Vec::new(),
        authorizations: 0,
    };
    let seen = std::sync::Arc::clone(&sdk.browser.seen);

    // 1. 401 → registration → our consent → the provider's login and consent → our callback →
    //    the SDK's redirect URI (code, state, iss) → finishAuth → the code exchange.
    let ready = sdk.until("ready").await;
    assert_eq!(ready["protocol_version"], "2026-07-28", "{ready}");
    assert!(
        ready["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("upstream_profile")),
        "{ready}"
    );
    assert_eq!(sdk.authorizations, 1);
    assert_eq!(seen.runs.load(Ordering::SeqCst), 1);
    assert_eq!(seen.provider_logins.load(Ordering::SeqCst), 1);
    {
        let pages = seen.consent_pages.lock().unwrap();
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains("TypeScript SDK v2"), "{}", pages[0]);
        assert!(pages[0].contains("oidc-provider"), "{}", pages[0]);
    }
    let callback = sdk
        .transcript
        .iter()
        .find(|line| line["step"] == "callback")
        .unwrap()
        .clone();
    assert_eq!(
        callback["iss"],
        chain.url.trim_end_matches("/mcp"),
        "our issuer"
    );
    assert_eq!(
        chain.count("POST", "/mcp", Some(401)),
        1,
        "the first request"
    );

    let me = sdk.ok("whoami").await;
    assert_eq!(me["subject"], chain.subject());
    let profile = sdk.ok("upstream_profile").await;
    assert_eq!(profile["sub"], USER, "{profile}");
    assert_eq!(profile["email"], "alice@example.com", "{profile}");
    assert_eq!(profile["name"], "Alice Example", "{profile}");
    let at_sign_in = chain
        .stored()
        .await
        .expect("the sign-in kept the upstream tokens");
    let first_upstream = chain.upstream_access_token().await;

    // 2. The upstream access token expires: the vault refreshes it at the provider; the SDK sees
    //    an ordinary answer (no 401, no new authorization, no token request).
    let (authorizes, tokens) = (
        chain.count("GET", "/authorize", None),
        chain.count("POST", "/token", None),
    );
    let sdk_tokens = sdk.token_requests();
    assert_eq!(sdk_tokens, [("authorization_code".to_owned(), 200)]);
    chain.expire_upstream();
    let profile = sdk.ok("upstream_profile").await;
    assert_eq!(profile["sub"], USER, "{profile}");
    let refreshed = chain.stored().await.expect("kept");
    assert_ne!(refreshed, at_sign_in, "the refreshed tokens were stored");
    let second_upstream = chain.upstream_access_token().await;
    assert_ne!(second_upstream.expose(), first_upstream.expose());
    assert_eq!(sdk.authorizations, 1, "no new authorization URL");
    assert_eq!(sdk.token_requests(), sdk_tokens);
    assert_eq!(chain.count("POST", "/mcp", Some(401)), 1);
    assert_eq!(chain.count("GET", "/authorize", None), authorizes);
    assert_eq!(chain.count("POST", "/token", None), tokens);

    // 3. The grant is revoked at the provider and the access token expires: the refresh is
    //    refused, the tool call fails with a JSON-RPC error, the vault deletes the tokens.
    chain.idp.revoke(second_upstream.expose()).await;
    chain.expire_upstream();
    let failed = sdk.call("upstream_profile").await;
    assert_eq!(failed["ok"], false, "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("sign in again"),
        "{failed}"
    );
    assert_eq!(chain.stored().await, None, "the vault deleted the tokens");
    assert_eq!(sdk.authorizations, 1);

    // The next request gets 401 (the vault revoked the grant here); the SDK's refresh is refused,
    // so it asks for a new authorization: the browser goes through our consent page and the
    // provider again, and the call goes through with new upstream tokens.
    let profile = sdk.ok("upstream_profile").await;
    assert_eq!(profile["sub"], USER, "{profile}");
    assert_eq!(sdk.authorizations, 2, "a new authorization URL");
    assert_eq!(seen.runs.load(Ordering::SeqCst), 2);
    assert_eq!(seen.consent_pages.lock().unwrap().len(), 2);
    assert_eq!(
        chain.count("POST", "/mcp", Some(401)),
        2,
        "{:#?}",
        chain.log.lock().unwrap()
    );
    assert_eq!(chain.count("GET", "/login/callback", None), 2);
    assert!(chain.stored().await.is_some(), "new upstream tokens kept");
    let requests = sdk.token_requests();
    assert_eq!(
        requests[1..],
        [
            ("refresh_token".to_owned(), 400),
            ("authorization_code".to_owned(), 200)
        ],
        "{:#?}",
        sdk.transcript
    );
    let me = sdk.ok("whoami").await;
    assert_eq!(me["subject"], chain.subject());

    sdk.send(json!({ "done": true })).await;
    sdk.until("done").await;
    let left = sdk.deadline.saturating_duration_since(Instant::now());
    let status = tokio::time::timeout(left, sdk.child.wait())
        .await
        .expect("the script exits in time")
        .unwrap();
    assert!(status.success(), "{status}");
    chain.stop().await;
}
