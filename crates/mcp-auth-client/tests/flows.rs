//! Discovery, registration and authorization against a loopback MCP server + authorization server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mcp_auth_client::{AuthError, AuthErrorKind, ClientCredentials, OAuthLayer, TokenManager};
use support::{AsAt, Fake, Iss, Knobs, Prm, Transport, clock, rpc};
use tower::{ServiceBuilder, ServiceExt};

/// One MCP request through the layer.
async fn call(manager: &TokenManager, fake: &Fake, method: &str) -> http::Response<String> {
    let client = ServiceBuilder::new()
        .layer(OAuthLayer::new(manager.clone()))
        .service(Transport::default());
    client
        .oneshot(
            http::Request::post(fake.mcp_url())
                .header("content-type", "application/json")
                .body(rpc(method))
                .unwrap(),
        )
        .await
        .unwrap()
}

fn error_of(response: &http::Response<String>) -> AuthErrorKind {
    response
        .extensions()
        .get::<AuthError>()
        .map(AuthError::kind)
        .expect("the layer records why it gave up")
}

/// The discovery requests in the log (well-known and registration/authorization endpoints).
fn discovery_log(fake: &Fake) -> Vec<String> {
    fake.log()
        .into_iter()
        .filter(|l| l.contains("/.well-known/") || l.contains("/custom/"))
        .collect()
}

#[tokio::test]
async fn metadata_default_uses_the_header_url_and_never_probes_root_prm() {
    let fake = Fake::start(Knobs::default()).await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(res.status(), 200, "{:?}", fake.log());
    assert_eq!(
        fake.log(),
        [
            "POST /mcp",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            "POST /register",
            "GET /authorize",
            "POST /token",
            "POST /mcp",
        ]
    );
}

#[tokio::test]
async fn metadata_var1_builds_the_path_aware_url_and_falls_through_to_oidc() {
    let fake = Fake::start(Knobs {
        header_has_metadata: false,
        as_at: AsAt::OidcInserted,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(
        discovery_log(&fake),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/openid-configuration",
        ]
    );
}

#[tokio::test]
async fn metadata_var2_root_prm_and_path_issuer_never_probe_root_as_metadata() {
    let fake = Fake::start(Knobs {
        prm: Prm::Root,
        header_has_metadata: false,
        issuer_path: "/tenant1".into(),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(
        discovery_log(&fake),
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-protected-resource",
            "GET /.well-known/oauth-authorization-server/tenant1",
        ]
    );
    assert!(fake.log().contains(&"GET /tenant1/authorize".to_owned()));
}

#[tokio::test]
async fn metadata_var3_custom_prm_and_the_third_as_url_in_order() {
    let fake = Fake::start(Knobs {
        prm: Prm::Custom,
        issuer_path: "/tenant1".into(),
        as_at: AsAt::OidcAppended,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(
        discovery_log(&fake),
        [
            "GET /custom/metadata/location.json",
            "GET /.well-known/oauth-authorization-server/tenant1",
            "GET /.well-known/openid-configuration/tenant1",
            "GET /tenant1/.well-known/openid-configuration",
        ]
    );
    assert!(
        !fake
            .log()
            .contains(&"GET /.well-known/oauth-authorization-server".to_owned()),
        "root AS metadata probed for a path issuer"
    );
}

#[tokio::test]
async fn prm_naming_another_origin_is_refused_before_authorizing() {
    let fake = Fake::start(Knobs {
        prm_resource: Some("https://evil.example.com/mcp".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(res.status(), 401);
    assert_eq!(error_of(&res), AuthErrorKind::ResourceMismatch);
    assert!(fake.authorize_calls().is_empty());
    assert!(fake.registrations().is_empty());
}

#[tokio::test]
async fn authorization_server_without_s256_is_refused() {
    let fake = Fake::start(Knobs {
        s256: false,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(error_of(&res), AuthErrorKind::PkceUnsupported);
    assert!(fake.authorize_calls().is_empty());
}

#[tokio::test]
async fn as_metadata_with_another_issuer_is_refused() {
    let fake = Fake::start(Knobs {
        issuer_override: Some("https://other.example.com".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(error_of(&res), AuthErrorKind::IssuerMismatch);
    assert!(fake.authorize_calls().is_empty());
}

#[tokio::test]
async fn iss_in_the_authorization_response_is_compared_exactly() {
    // Wrong iss, advertised or not: refused before the token request.
    for advertised in [true, false] {
        let fake = Fake::start(Knobs {
            iss_supported: advertised,
            iss: Iss::Wrong,
            ..Knobs::default()
        })
        .await;
        let manager = fake.manager(&clock()).build().unwrap();
        let res = call(&manager, &fake, "tools/list").await;
        assert_eq!(error_of(&res), AuthErrorKind::IssuerMismatch);
        assert_eq!(fake.authorize_calls().len(), 1);
        assert!(fake.token_calls().is_empty());
    }
    // Advertised but missing: refused.
    let fake = Fake::start(Knobs {
        iss_supported: true,
        iss: Iss::Omit,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(error_of(&res), AuthErrorKind::IssuerMismatch);
    assert!(fake.token_calls().is_empty());
    // Correct: accepted.
    let fake = Fake::start(Knobs {
        iss_supported: true,
        iss: Iss::Correct,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
}

#[tokio::test]
async fn pre_registered_credentials_win_and_use_client_secret_basic() {
    let fake = Fake::start(Knobs {
        cimd_supported: true,
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .client_id_metadata_document("https://app.example.com/client.json")
        .client_credentials(ClientCredentials::new("pre-id").secret("pre secret"))
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert!(fake.registrations().is_empty());
    assert_eq!(fake.authorize_calls()[0]["client_id"], "pre-id");
    let token = &fake.token_calls()[0];
    // RFC 6749 §2.3.1: form-urlencoded id and secret, then base64.
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("pre-id:pre+secret");
    assert_eq!(
        token.authorization.as_deref(),
        Some(format!("Basic {expected}").as_str())
    );
    assert!(!token.form.contains_key("client_secret"));
    assert!(!token.form.contains_key("client_id"));
}

#[tokio::test]
async fn client_id_metadata_document_beats_dynamic_registration() {
    let fake = Fake::start(Knobs {
        cimd_supported: true,
        ..Knobs::default()
    })
    .await;
    let manager = fake
        .manager(&clock())
        .client_id_metadata_document("https://app.example.com/client.json")
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert!(fake.registrations().is_empty());
    assert_eq!(
        fake.authorize_calls()[0]["client_id"],
        "https://app.example.com/client.json"
    );
    assert_eq!(
        fake.token_calls()[0].form["client_id"],
        "https://app.example.com/client.json"
    );
    assert!(fake.token_calls()[0].authorization.is_none());
}

#[tokio::test]
async fn cimd_is_not_used_when_the_server_does_not_advertise_it() {
    let fake = Fake::start(Knobs::default()).await;
    let manager = fake
        .manager(&clock())
        .client_id_metadata_document("https://app.example.com/client.json")
        .build()
        .unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    assert_eq!(fake.registrations().len(), 1);
}

#[tokio::test]
async fn dynamic_registration_sends_none_explicitly_and_is_reused() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).client_name("tests").build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let reg = &fake.registrations()[0];
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["client_name"], "tests");
    assert_eq!(reg["response_types"], serde_json::json!(["code"]));
    assert_eq!(
        reg["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    let redirect = reg["redirect_uris"][0].as_str().unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"));

    // Another principal authorizes with the same registration.
    let bob = manager.for_principal("bob");
    bob.authorize(None).await.unwrap();
    assert_eq!(fake.registrations().len(), 1);
    assert_eq!(fake.authorize_calls().len(), 2);
}

#[tokio::test]
async fn no_registration_possible_is_a_registration_error() {
    let fake = Fake::start(Knobs {
        registration: false,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    let res = call(&manager, &fake, "tools/list").await;
    assert_eq!(error_of(&res), AuthErrorKind::Registration);
}

#[tokio::test]
async fn resource_and_pkce_are_sent_and_identical_on_authorize_token_and_refresh() {
    let fake = Fake::start(Knobs::default()).await;
    let clock = clock();
    let manager = fake.manager(&clock).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    clock.advance(std::time::Duration::from_secs(3600));
    manager.access_token().await.unwrap();

    let resource = fake.mcp_url();
    let authorize = &fake.authorize_calls()[0];
    assert_eq!(authorize["resource"], resource);
    assert_eq!(authorize["code_challenge_method"], "S256");
    assert_eq!(authorize["response_type"], "code");
    assert!(authorize["state"].len() >= 43);
    let calls = fake.token_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].form["grant_type"], "authorization_code");
    assert_eq!(calls[0].form["resource"], resource);
    assert!(calls[0].form["code_verifier"].len() >= 43);
    assert_eq!(calls[1].form["grant_type"], "refresh_token");
    assert_eq!(calls[1].form["resource"], resource);
    assert!(!calls[1].form.contains_key("scope"));
}

#[tokio::test]
async fn scope_selection_challenge_then_scopes_supported_then_omitted() {
    // 1. The challenge's scope.
    let fake = Fake::start(Knobs {
        challenge_scope: Some("mcp:basic".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    call(&manager, &fake, "tools/list").await;
    assert_eq!(fake.authorize_calls()[0]["scope"], "mcp:basic");
    // 2. All of scopes_supported.
    let fake = Fake::start(Knobs {
        prm_scopes_supported: Some(vec![
            "mcp:basic".into(),
            "mcp:read".into(),
            "mcp:write".into(),
        ]),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    call(&manager, &fake, "tools/list").await;
    assert_eq!(
        fake.authorize_calls()[0]["scope"],
        "mcp:basic mcp:read mcp:write"
    );
    // 3. Omitted.
    let fake = Fake::start(Knobs {
        prm_scopes_supported: None,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    call(&manager, &fake, "tools/list").await;
    assert!(!fake.authorize_calls()[0].contains_key("scope"));
}

#[tokio::test]
async fn offline_access_is_requested_only_when_the_as_lists_it() {
    let fake = Fake::start(Knobs {
        as_scopes_supported: vec!["mcp:tools".into(), "offline_access".into()],
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    call(&manager, &fake, "tools/list").await;
    assert_eq!(
        fake.authorize_calls()[0]["scope"],
        "mcp:tools offline_access"
    );
}

#[tokio::test]
async fn back_compat_without_prm_uses_as_metadata_at_the_origin() {
    let fake = Fake::start(Knobs {
        prm: Prm::None,
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let log = discovery_log(&fake);
    assert_eq!(
        log,
        [
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/oauth-protected-resource",
            "GET /.well-known/oauth-authorization-server",
        ]
    );
    assert_eq!(fake.authorize_calls()[0]["resource"], fake.mcp_url());
}

#[tokio::test]
async fn back_compat_without_any_metadata_uses_root_endpoints() {
    let fake = Fake::start(Knobs {
        prm: Prm::None,
        as_at: AsAt::Nowhere,
        registration_secret: Some("s".into()),
        ..Knobs::default()
    })
    .await;
    let manager = fake.manager(&clock()).build().unwrap();
    assert_eq!(call(&manager, &fake, "tools/list").await.status(), 200);
    let log = fake.log();
    for expected in ["POST /register", "GET /authorize", "POST /token"] {
        assert!(log.contains(&expected.to_owned()), "{log:?}");
    }
}

#[tokio::test]
async fn plain_http_needs_the_explicit_loopback_opt_in() {
    let err = TokenManager::builder("http://127.0.0.1:9/mcp")
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        mcp_auth_client::ConfigError::InsecureUrl { .. }
    ));
    assert!(
        TokenManager::builder("http://mcp.example.com/mcp")
            .allow_insecure_loopback(true)
            .build()
            .is_err()
    );
}

#[test]
fn a_metadata_document_url_is_https_or_opted_in_loopback_http() {
    let build = |url: &str, allow_loopback: bool| {
        TokenManager::builder("https://mcp.example.com/mcp")
            .client_id_metadata_document(url)
            .allow_insecure_loopback(allow_loopback)
            .build()
            .map(drop)
    };
    let refused = |url: &str, allow_loopback: bool| {
        matches!(
            build(url, allow_loopback),
            Err(mcp_auth_client::ConfigError::MetadataDocumentUrl)
        )
    };
    assert!(build("https://app.example.com/client.json", false).is_ok());
    assert!(build("http://127.0.0.1:9999/client.json", true).is_ok());
    assert!(build("http://[::1]:9999/client.json", true).is_ok());
    assert!(
        refused("http://127.0.0.1:9999/client.json", false),
        "loopback http needs the opt-in"
    );
    assert!(
        refused("http://app.example.com/client.json", true),
        "http off loopback"
    );
    assert!(refused("https://app.example.com/", true), "no path");
    assert!(
        refused("https://app.example.com/c.json#x", true),
        "a fragment"
    );
    assert!(refused("not a url", true));
}
