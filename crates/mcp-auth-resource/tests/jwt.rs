//! `JwtVerifier` against a fake identity provider on loopback (real HTTP, counted hits).
#![cfg(all(feature = "jwt", feature = "remote"))]
// Test code (helpers included): a panic is how a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use mcp_auth_core::{Clock as _, ManualClock, ResourceId};
use mcp_auth_resource::{
    BearerAuthLayer, ConfigError, JwsAlgorithm, JwtVerifier, JwtVerifierBuilder, ProtectedResource,
    TokenVerifier, VerifyError, VerifyErrorKind,
};
use serde_json::{Value, json};
use support::{FakeIdp, NOW, SigningKey, TokenBuilder, clock, malformed_tokens};

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn resource() -> ResourceId {
    ResourceId::parse(RESOURCE).unwrap()
}

/// A verifier fetching the IdP's `jwks_uri`, on a manual clock, without background refresh.
fn remote(idp: &FakeIdp, clock: &ManualClock) -> JwtVerifierBuilder {
    JwtVerifier::builder(idp.issuer(), &resource())
        .jwks_uri(idp.jwks_uri())
        .clock(clock.clone())
        .background_refresh(false)
}

async fn kind(verifier: &JwtVerifier, token: &str) -> Option<VerifyErrorKind> {
    verifier.verify(token).await.err().map(|e| e.kind())
}

fn jwks_of(keys: &[&SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

#[tokio::test]
async fn es256_rs256_and_eddsa_tokens_verify_and_fill_auth_info() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    for kid in ["es-1", "rs-1", "ed-1"] {
        let token = idp
            .token(RESOURCE)
            .claim("scp", json!(["extra"]))
            .sign(&idp.key(kid));
        let info = verifier.verify(&token).await.unwrap();
        assert_eq!(info.subject(), Some("alice"), "{kid}");
        assert_eq!(info.client_id(), Some("client-1"));
        assert_eq!(info.issuer(), Some(idp.issuer()));
        assert_eq!(info.audience(), [RESOURCE]);
        assert_eq!(info.scopes().to_string(), "mcp:tools files:read extra");
        assert_eq!(info.expires_at_unix(), Some(NOW + 300));
        assert_eq!(info.issued_at_unix(), Some(NOW));
        assert_eq!(info.jwt_id(), Some("jti-1"));
        assert_eq!(info.claim("sub"), Some(&json!("alice")));
    }
    // One fetch served all three keys.
    assert_eq!(idp.jwks_hits(), 1);
    assert_eq!(verifier.key_count(), 3);
}

#[tokio::test]
async fn exp_nbf_and_leeway_use_the_injected_clock() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let key = idp.key("es-1");
    let t = |b: TokenBuilder| b.sign(&key);
    use VerifyErrorKind::*;
    let rows: Vec<(&str, String, Option<VerifyErrorKind>)> = vec![
        ("valid", t(idp.token(RESOURCE)), None),
        (
            "expired long ago",
            t(idp.token(RESOURCE).claim("exp", NOW - 3600)),
            Some(Expired),
        ),
        (
            "expired within leeway",
            t(idp.token(RESOURCE).claim("exp", NOW - 30)),
            None,
        ),
        (
            "expired at leeway",
            t(idp.token(RESOURCE).claim("exp", NOW - 60)),
            Some(Expired),
        ),
        (
            "nbf in future",
            t(idp.token(RESOURCE).claim("nbf", NOW + 3600)),
            Some(NotYetValid),
        ),
        (
            "nbf within leeway",
            t(idp.token(RESOURCE).claim("nbf", NOW + 30)),
            None,
        ),
        (
            "no exp",
            t(idp.token(RESOURCE).without_claim("exp")),
            Some(MissingClaim),
        ),
        (
            "string exp",
            t(idp.token(RESOURCE).claim("exp", "tomorrow")),
            Some(MissingClaim),
        ),
    ];
    for (name, token, want) in &rows {
        assert_eq!(kind(&verifier, token).await, *want, "{name}");
    }

    // Time moves: the valid token expires once exp + leeway has passed.
    let token = t(idp.token(RESOURCE));
    clock.advance(Duration::from_secs(300 + 59));
    assert_eq!(kind(&verifier, &token).await, None);
    clock.advance(Duration::from_secs(1));
    assert_eq!(kind(&verifier, &token).await, Some(Expired));

    // A stricter leeway.
    let strict = remote(&idp, &clock).leeway(Duration::ZERO).build().unwrap();
    let clock_now = clock.unix_seconds();
    let token = t(idp.token(RESOURCE).claim("exp", clock_now + 1));
    assert_eq!(kind(&strict, &token).await, None);
    let token = t(idp.token(RESOURCE).claim("exp", clock_now - 1));
    assert_eq!(kind(&strict, &token).await, Some(Expired));
}

#[tokio::test]
async fn a_token_issued_an_hour_from_now_gets_401_invalid_token_through_the_layer() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let resource = ProtectedResource::builder(RESOURCE)
        .authorization_server(idp.issuer())
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/mcp", axum::routing::get(|| async { "ok" }))
        .layer(BearerAuthLayer::new(verifier, resource));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let key = idp.key("es-1");

    let now = idp.token(RESOURCE).sign(&key);
    let resp = http.get(&url).bearer_auth(&now).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Signed by the trusted key, with an `exp` still ahead, but "issued" an hour from now.
    let ahead = idp
        .token(RESOURCE)
        .claim("iat", NOW + 3600)
        .claim("exp", NOW + 3600 + 300)
        .sign(&key);
    let resp = http.get(&url).bearer_auth(&ahead).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="The access token is not valid yet", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
    );
}

#[tokio::test]
async fn issuer_and_audience_are_exact() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let key = idp.key("es-1");
    use VerifyErrorKind::*;
    let rows: Vec<(&str, TokenBuilder, Option<VerifyErrorKind>)> = vec![
        (
            "other issuer",
            idp.token(RESOURCE).claim("iss", "https://evil.example"),
            Some(Issuer),
        ),
        (
            "issuer + slash",
            idp.token(RESOURCE)
                .claim("iss", format!("{}/", idp.issuer())),
            Some(Issuer),
        ),
        (
            "issuer array",
            idp.token(RESOURCE).claim("iss", json!([idp.issuer()])),
            Some(Issuer),
        ),
        (
            "no issuer",
            idp.token(RESOURCE).without_claim("iss"),
            Some(MissingClaim),
        ),
        (
            "other audience",
            idp.token("https://other.example/mcp"),
            Some(Audience),
        ),
        (
            "path + slash",
            idp.token("https://mcp.example.com/mcp/"),
            Some(Audience),
        ),
        (
            "prefix path",
            idp.token("https://mcp.example.com/mc"),
            Some(Audience),
        ),
        (
            "longer path",
            idp.token("https://mcp.example.com/mcp/x"),
            Some(Audience),
        ),
        (
            "case in host and default port",
            idp.token("HTTPS://MCP.EXAMPLE.COM:443/mcp"),
            None,
        ),
        (
            "no audience",
            idp.token(RESOURCE).without_claim("aud"),
            Some(MissingClaim),
        ),
        (
            "audience array with us",
            idp.token(RESOURCE)
                .claim("aud", json!(["https://other.example", RESOURCE])),
            None,
        ),
        (
            "audience array without us",
            idp.token(RESOURCE)
                .claim("aud", json!(["https://other.example", "client-1"])),
            Some(Audience),
        ),
        (
            "empty audience array",
            idp.token(RESOURCE).claim("aud", json!([])),
            Some(Audience),
        ),
    ];
    for (name, builder, want) in rows {
        assert_eq!(kind(&verifier, &builder.sign(&key)).await, want, "{name}");
    }
}

#[tokio::test]
async fn origin_only_audience_forgives_the_trailing_slash() {
    let idp = FakeIdp::start().await;
    let origin = ResourceId::parse("https://mcp.example.com/").unwrap();
    let verifier = JwtVerifier::builder(idp.issuer(), &origin)
        .jwks_uri(idp.jwks_uri())
        .clock(clock())
        .build()
        .unwrap();
    let key = idp.key("es-1");
    for aud in ["https://mcp.example.com", "https://mcp.example.com/"] {
        assert_eq!(
            kind(&verifier, &idp.token(aud).sign(&key)).await,
            None,
            "{aud}"
        );
    }
    assert_eq!(
        kind(
            &verifier,
            &idp.token("https://mcp.example.com/mcp").sign(&key)
        )
        .await,
        Some(VerifyErrorKind::Audience)
    );

    // Built from a ProtectedResource, the audience is its canonical URI.
    let pr = ProtectedResource::builder(RESOURCE)
        .authorization_server(idp.issuer())
        .build()
        .unwrap();
    let verifier = JwtVerifier::for_resource(idp.issuer(), &pr)
        .jwks_uri(idp.jwks_uri())
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(verifier.audience().as_str(), RESOURCE);
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&key)).await, None);
}

#[tokio::test]
async fn unsigned_and_malformed_tokens_are_refused_without_fetching() {
    let idp = FakeIdp::start().await;
    let verifier = remote(&idp, &clock()).build().unwrap();
    let none = idp.token(RESOURCE).header("kid", "es-1").unsigned();
    assert_eq!(
        kind(&verifier, &none).await,
        Some(VerifyErrorKind::Algorithm)
    );
    // `none` with a signature copied from a real token, and other spellings.
    let real = idp.token(RESOURCE).sign(&idp.key("es-1"));
    let sig = real.rsplit('.').next().unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let t = idp
            .token(RESOURCE)
            .header("alg", alg)
            .header("kid", "es-1")
            .unsigned();
        assert_eq!(
            kind(&verifier, &t).await,
            Some(VerifyErrorKind::Algorithm),
            "{alg}"
        );
        assert_eq!(
            kind(&verifier, &format!("{t}{sig}")).await,
            Some(VerifyErrorKind::Algorithm)
        );
    }
    for token in malformed_tokens() {
        let err = verifier.verify(&token).await.unwrap_err();
        assert_eq!(err.kind(), VerifyErrorKind::Malformed, "{token:.60}");
        assert!(verifier.verify_cached(&token).is_some());
    }
    // Nothing above needed a key.
    assert_eq!(idp.jwks_hits(), 0);
}

#[tokio::test]
async fn hmac_signed_with_the_rsa_public_key_never_verifies() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let rsa = idp.key("rs-1");
    let pem = rsa.rsa_public_pem();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("PEM", pem.clone().into_bytes()),
        (
            "PEM without trailing newline",
            pem.trim_end().as_bytes().to_vec(),
        ),
        ("SPKI DER", rsa.rsa_public_der()),
        ("JWK n bytes", rsa.rsa_modulus()),
        (
            "JWK n text",
            rsa.jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
        ),
        ("JWK JSON", serde_json::to_vec(&rsa.jwk()).unwrap()),
    ];

    // No HMAC secret configured: HS* is not even in the allow-list.
    let plain = remote(&idp, &clock).build().unwrap();
    // An HMAC secret configured next to the JWK Set: HS* allowed, but only with that secret.
    let shared = b"0123456789abcdef0123456789abcdef-shared";
    let with_hmac = remote(&idp, &clock).hmac_secret(shared).build().unwrap();
    assert!(with_hmac.algorithms().contains(&JwsAlgorithm::HS256));

    for (name, secret) in &secrets {
        for kid in [Some("rs-1"), None] {
            let forged = idp
                .token(RESOURCE)
                .sign(&SigningKey::hs256(secret).with_kid(kid));
            assert_eq!(
                kind(&plain, &forged).await,
                Some(VerifyErrorKind::Algorithm),
                "{name}"
            );
            assert_eq!(
                kind(&with_hmac, &forged).await,
                Some(VerifyErrorKind::InvalidSignature),
                "{name} {kid:?}"
            );
        }
    }
    // The configured secret itself works.
    let good = idp.token(RESOURCE).sign(&SigningKey::hs256(shared));
    assert_eq!(kind(&with_hmac, &good).await, None);
    assert_eq!(kind(&plain, &good).await, Some(VerifyErrorKind::Algorithm));
}

#[tokio::test]
async fn typ_is_strict_by_default_with_a_one_call_opt_out() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let strict = remote(&idp, &clock).build().unwrap();
    let lenient = remote(&idp, &clock).accept_jwt_typ().build().unwrap();
    let key = idp.key("es-1");
    use VerifyErrorKind::TokenType;
    let rows: Vec<(
        Option<&str>,
        Option<VerifyErrorKind>,
        Option<VerifyErrorKind>,
    )> = vec![
        (Some("at+jwt"), None, None),
        (Some("application/at+jwt"), None, None),
        (Some("AT+JWT"), None, None),
        (Some("JWT"), Some(TokenType), None),
        (Some("application/jwt"), Some(TokenType), None),
        (None, Some(TokenType), None),
        (Some("id_token+jwt"), Some(TokenType), Some(TokenType)),
        (Some("dpop+jwt"), Some(TokenType), Some(TokenType)),
        (Some(""), Some(TokenType), Some(TokenType)),
    ];
    for (typ, want_strict, want_lenient) in rows {
        let builder = match typ {
            Some(typ) => idp.token(RESOURCE).header("typ", typ),
            None => idp.token(RESOURCE).without_header("typ"),
        };
        let token = builder.sign(&key);
        assert_eq!(kind(&strict, &token).await, want_strict, "strict {typ:?}");
        assert_eq!(
            kind(&lenient, &token).await,
            want_lenient,
            "lenient {typ:?}"
        );
    }
}

#[tokio::test]
async fn crit_cnf_and_required_claims() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).require_claim("jti").build().unwrap();
    let key = idp.key("es-1");
    let rows = [
        (
            idp.token(RESOURCE).header("crit", json!(["exp"])),
            Some(VerifyErrorKind::Unsupported),
        ),
        (
            idp.token(RESOURCE).header("crit", json!([])),
            Some(VerifyErrorKind::Unsupported),
        ),
        (
            // A DPoP binding verifies (the bearer layer then requires the proof).
            idp.token(RESOURCE).claim(
                "cnf",
                json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
            ),
            None,
        ),
        (
            // An mTLS binding cannot be checked here: refused.
            idp.token(RESOURCE).claim(
                "cnf",
                json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
            ),
            Some(VerifyErrorKind::Unsupported),
        ),
        (
            idp.token(RESOURCE).without_claim("jti"),
            Some(VerifyErrorKind::MissingClaim),
        ),
        (
            idp.token(RESOURCE).claim("jti", Value::Null),
            Some(VerifyErrorKind::MissingClaim),
        ),
        (idp.token(RESOURCE), None),
    ];
    for (builder, want) in rows {
        assert_eq!(
            kind(&verifier, &builder.sign(&key)).await,
            want,
            "{builder:?}"
        );
    }
}

#[tokio::test]
async fn scope_and_scp_are_both_read() {
    let idp = FakeIdp::start().await;
    let verifier = remote(&idp, &clock()).build().unwrap();
    let key = idp.key("es-1");
    let rows = [
        (json!("a b"), Value::Null, "a b"),
        (json!("  a   b  "), Value::Null, "a b"),
        (Value::Null, json!("c d"), "c d"),
        (Value::Null, json!(["c", "d", "c"]), "c d"),
        (json!("a"), json!(["b", "in valid", 3, "é"]), "a b"),
        (json!("a bad\"q b"), Value::Null, "a b"),
        (json!(["x", "y"]), Value::Null, "x y"),
        (json!(42), json!({"no": "pe"}), ""),
        (Value::Null, Value::Null, ""),
    ];
    for (scope, scp, want) in rows {
        let mut b = idp.token(RESOURCE).without_claim("scope");
        if !scope.is_null() {
            b = b.claim("scope", scope.clone());
        }
        if !scp.is_null() {
            b = b.claim("scp", scp.clone());
        }
        let info = verifier.verify(&b.sign(&key)).await.unwrap();
        assert_eq!(info.scopes().to_string(), want, "scope={scope} scp={scp}");
    }
    // client_id, else azp.
    let info = verifier
        .verify(
            &idp.token(RESOURCE)
                .without_claim("client_id")
                .claim("azp", "spa")
                .sign(&key),
        )
        .await
        .unwrap();
    assert_eq!(info.client_id(), Some("spa"));
}

#[tokio::test]
async fn discovery_via_rfc8414_metadata() {
    let idp = FakeIdp::start_with_path("/tenant1").await;
    idp.serve_openid_configuration(false);
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .discover_jwks()
        .clock(clock())
        .build()
        .unwrap();
    let token = idp.token(RESOURCE).sign(&idp.key("es-1"));
    assert_eq!(kind(&verifier, &token).await, None);
    assert_eq!(idp.oauth_metadata_hits(), 1);
    assert_eq!(idp.openid_configuration_hits(), 0);
    assert_eq!(idp.jwks_hits(), 1);
    // Cached: no more requests.
    assert_eq!(kind(&verifier, &token).await, None);
    assert_eq!(idp.oauth_metadata_hits() + idp.jwks_hits(), 2);
}

#[tokio::test]
async fn discovery_via_openid_configuration() {
    for path in ["", "/realms/mcp"] {
        let idp = FakeIdp::start_with_path(path).await;
        idp.serve_oauth_metadata(false);
        let verifier = JwtVerifier::builder(idp.issuer(), &resource())
            .discover_jwks()
            .clock(clock())
            .build()
            .unwrap();
        let token = idp.token(RESOURCE).sign(&idp.key("rs-1"));
        assert_eq!(kind(&verifier, &token).await, None, "{path:?}");
        assert_eq!(
            idp.oauth_metadata_hits(),
            1,
            "{path:?}: RFC 8414 tried first"
        );
        assert_eq!(idp.openid_configuration_hits(), 1, "{path:?}");
        assert_eq!(idp.jwks_hits(), 1);
        assert_eq!(idp.other_hits(), 0);
    }
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let idp = FakeIdp::start().await;
    // The documents name the issuer with a trailing slash: not byte-for-byte equal.
    idp.set_metadata_issuer(Some(&format!("{}/", idp.issuer())));
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .discover_jwks()
        .clock(clock())
        .build()
        .unwrap();
    let token = idp.token(RESOURCE).sign(&idp.key("es-1"));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    assert!(err.retry_after().is_some());
    assert_eq!(idp.oauth_metadata_hits(), 1);
    assert_eq!(idp.openid_configuration_hits(), 1);
    assert_eq!(
        idp.jwks_hits(),
        0,
        "the jwks_uri of a mismatched document is never used"
    );
    let err = verifier.refresh_keys().await.unwrap_err();
    assert!(err.is_unavailable());
}

#[tokio::test]
async fn a_new_kid_triggers_exactly_one_refetch() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let old = idp.key("es-1");
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&old)).await, None);
    assert_eq!(idp.jwks_hits(), 1);

    // The IdP rotates: a new key appears and the old one is withdrawn.
    let new = SigningKey::es256("es-2");
    idp.add_key(new.clone());
    idp.withdraw_key("es-1");
    clock.advance(Duration::from_secs(61));

    let token = idp.token(RESOURCE).sign(&new);
    assert_eq!(kind(&verifier, &token).await, None);
    assert_eq!(idp.jwks_hits(), 2);
    assert_eq!(kind(&verifier, &token).await, None);
    assert_eq!(idp.jwks_hits(), 2, "the new key is cached now");

    // The withdrawn key is gone with the refetched set (and within the cool-down it is simply
    // unknown: 401, not 503).
    let old_token = idp.token(RESOURCE).sign(&old);
    assert_eq!(
        kind(&verifier, &old_token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn a_named_kid_never_falls_back_to_the_only_key() {
    let idp = FakeIdp::start().await;
    let only = SigningKey::es256("a");
    idp.set_keys(vec![only.clone()]);
    let verifier = remote(&idp, &clock()).build().unwrap();
    // Signed by the only key but naming another kid.
    let renamed = only.clone().with_kid(Some("b"));
    let token = idp.token(RESOURCE).sign(&renamed);
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    // No kid and exactly one fitting key: that key.
    let token = idp.token(RESOURCE).no_kid().sign(&only);
    assert_eq!(kind(&verifier, &token).await, None);

    // No kid and two fitting keys: refused.
    let idp2 = FakeIdp::start().await;
    idp2.set_keys(vec![SigningKey::es256("a"), SigningKey::es256("b")]);
    let verifier = remote(&idp2, &clock()).build().unwrap();
    let token = idp2.token(RESOURCE).no_kid().sign(&idp2.key("a"));
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
}

#[tokio::test]
async fn a_key_is_bound_to_its_declared_alg_and_type() {
    let idp = FakeIdp::start().await;
    let verifier = remote(&idp, &clock()).build().unwrap();
    // rs-1 is published with alg RS256: a PS256 signature by the same key is refused.
    let pss = idp.key("rs-1").with_alg("PS256");
    let token = idp.token(RESOURCE).sign(&pss);
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::Algorithm)
    );
    // An EC key cannot verify an EdDSA token naming its kid.
    let token = idp
        .token(RESOURCE)
        .header("kid", "es-1")
        .sign(&idp.key("ed-1"));
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::Algorithm)
    );
    // A tampered payload fails the signature.
    let token = idp.token(RESOURCE).sign(&idp.key("es-1"));
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = idp
        .token(RESOURCE)
        .claim("sub", "mallory")
        .sign(&idp.key("es-1"));
    let other_payload = other.split('.').nth(1).unwrap().to_owned();
    parts[1] = &other_payload;
    assert_eq!(
        kind(&verifier, &parts.join(".")).await,
        Some(VerifyErrorKind::InvalidSignature)
    );

    // Without an `alg` in the JWK, any algorithm of the key type fits (still no cross-type use).
    let idp = FakeIdp::start().await;
    let mut jwk = idp.key("rs-1").jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks(&json!({ "keys": [jwk] }))
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&pss)).await, None);
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks(&jwks_of(&[&idp.key("rs-1")]))
        .algorithms([JwsAlgorithm::ES256])
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(
        kind(&verifier, &idp.token(RESOURCE).sign(&idp.key("rs-1"))).await,
        Some(VerifyErrorKind::Algorithm),
        "RS256 is not in the allow-list"
    );
}

#[tokio::test]
async fn unknown_kids_cause_one_fetch_per_cooldown() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let key = idp.key("es-1");
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&key)).await, None);
    assert_eq!(idp.jwks_hits(), 1);
    clock.advance(Duration::from_secs(61));

    // 300 tokens with random kids, concurrently: one shared fetch.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let verifier = verifier.clone();
        let token = idp
            .token(RESOURCE)
            .header("kid", format!("random-{i}-{}", i * 7919))
            .sign(&key);
        tasks.spawn(async move { verifier.verify(&token).await.map(|_| ()) });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(
            result.unwrap().unwrap_err().kind(),
            VerifyErrorKind::UnknownKey,
            "the IdP is up, so an unknown kid is a bad token (401), not 503"
        );
    }
    assert_eq!(idp.jwks_hits(), 2);

    // More unknown kids within the cool-down: no fetch at all.
    for i in 0..100 {
        let token = idp
            .token(RESOURCE)
            .header("kid", format!("again-{i}"))
            .sign(&key);
        assert_eq!(
            kind(&verifier, &token).await,
            Some(VerifyErrorKind::UnknownKey)
        );
    }
    assert_eq!(idp.jwks_hits(), 2);
    // Known keys are unaffected.
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&key)).await, None);

    // The cool-down is measured from the last attempt.
    clock.advance(Duration::from_secs(59));
    let token = idp.token(RESOURCE).header("kid", "late").sign(&key);
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 2);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 3);
}

#[tokio::test]
async fn the_cooldown_is_configurable() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock)
        .unknown_kid_cooldown(Duration::from_secs(5))
        .build()
        .unwrap();
    let key = idp.key("es-1");
    let token = idp.token(RESOURCE).header("kid", "nope").sign(&key);
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 1);
    clock.advance(Duration::from_secs(4));
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert_eq!(idp.jwks_hits(), 2);
}

async fn outage_keeps_known_keys(mut idp: FakeIdp, drop_server: bool) {
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let key = idp.key("es-1");
    let known = idp.token(RESOURCE).sign(&key);
    assert_eq!(kind(&verifier, &known).await, None);
    assert_eq!(idp.jwks_hits(), 1);

    if drop_server {
        idp.stop().await;
    } else {
        idp.set_failing(true);
    }
    clock.advance(Duration::from_secs(61));

    // Unknown kid: the refetch fails ⇒ 503 with a retry hint, not 401.
    let unknown = idp.token(RESOURCE).header("kid", "new-key").sign(&key);
    let err = verifier.verify(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    assert!(err.is_unavailable());
    let retry = err.retry_after().unwrap();
    assert!(
        retry >= Duration::from_secs(1) && retry <= Duration::from_secs(60),
        "{retry:?}"
    );
    // The description is the fixed one.
    assert_eq!(err.to_string(), VerifyErrorKind::Unavailable.description());

    // Known kid: still fine, from the stale keys.
    assert_eq!(kind(&verifier, &known).await, None);
    // Within the cool-down: no new attempt, still 503 for the unknown kid.
    let hits = idp.jwks_hits();
    assert_eq!(
        kind(&verifier, &unknown).await,
        Some(VerifyErrorKind::Unavailable)
    );
    assert_eq!(idp.jwks_hits(), hits);
    if !drop_server {
        assert_eq!(hits, 2, "the failed refetch reached the server once");
    }
}

#[tokio::test]
async fn outage_with_500_keeps_known_keys_and_answers_unavailable_for_unknown_ones() {
    outage_keeps_known_keys(FakeIdp::start().await, false).await;
}

#[tokio::test]
async fn outage_with_the_server_gone_keeps_known_keys_and_answers_unavailable() {
    outage_keeps_known_keys(FakeIdp::start().await, true).await;
}

#[tokio::test]
async fn idp_down_at_startup_answers_unavailable_then_recovers() {
    let idp = FakeIdp::start().await;
    idp.set_failing(true);
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let token = idp.token(RESOURCE).sign(&idp.key("es-1"));

    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert!(verifier.refresh_keys().await.is_err());
    assert_eq!(idp.jwks_hits(), 2, "refresh_keys ignores the cool-down");
    // During the cool-down the failed state is remembered without new requests.
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::Unavailable)
    );
    assert!(
        verifier.verify_cached(&token).is_none(),
        "a fetch is needed"
    );
    assert_eq!(idp.jwks_hits(), 2);

    idp.set_failing(false);
    clock.advance(Duration::from_secs(60));
    assert_eq!(kind(&verifier, &token).await, None);
    assert_eq!(idp.jwks_hits(), 3);
    assert!(matches!(verifier.verify_cached(&token), Some(Ok(_))));
}

#[tokio::test]
async fn cached_keys_never_wait_for_a_slow_refetch() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock).build().unwrap();
    let key = idp.key("es-1");
    let known = idp.token(RESOURCE).sign(&key);
    verifier.refresh_keys().await.unwrap();

    idp.set_delay(Duration::from_millis(600));
    clock.advance(Duration::from_secs(61));
    let unknown = idp.token(RESOURCE).header("kid", "slow").sign(&key);
    let slow = {
        let verifier = verifier.clone();
        tokio::spawn(async move { verifier.verify(&unknown).await.map(|_| ()) })
    };
    assert!(idp.wait_for_jwks_hits(2, Duration::from_secs(1)).await);

    // The refetch is in flight; a cached kid answers at once, with or without a future.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(kind(&verifier, &known).await, None);
        assert!(matches!(verifier.verify_cached(&known), Some(Ok(_))));
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    // Cancelling the waiting request does not wedge the refetch: it completes detached.
    slow.abort();
    let _ = slow.await;
    let next = idp.token(RESOURCE).header("kid", "slow-2").sign(&key);
    let started = std::time::Instant::now();
    assert_eq!(
        kind(&verifier, &next).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert!(started.elapsed() < Duration::from_millis(900));
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn an_oversized_jwks_is_refused() {
    let idp = FakeIdp::start().await;
    let key = idp.key("es-1");
    // A valid set padded past 256 KiB.
    let padding = "x".repeat(300 * 1024);
    let body = serde_json::to_vec(&json!({ "keys": [key.jwk()], "padding": padding })).unwrap();
    idp.set_jwks_body(Some(body));
    let verifier = remote(&idp, &clock()).build().unwrap();
    let token = idp.token(RESOURCE).sign(&key);
    assert_eq!(
        kind(&verifier, &token).await,
        Some(VerifyErrorKind::Unavailable)
    );
    assert_eq!(idp.jwks_hits(), 1);

    // More than 64 keys is refused too.
    let idp = FakeIdp::start().await;
    let key = idp.key("es-1");
    for i in 0..64 {
        idp.add_raw_jwk(json!({"kty": "EC", "crv": "P-256", "kid": format!("pad-{i}")}));
    }
    let verifier = remote(&idp, &clock()).build().unwrap();
    assert_eq!(
        kind(&verifier, &idp.token(RESOURCE).sign(&key)).await,
        Some(VerifyErrorKind::Unavailable)
    );
}

#[tokio::test]
async fn encryption_keys_are_skipped_and_one_bad_key_does_not_sink_the_set() {
    let idp = FakeIdp::start().await;
    let enc = SigningKey::es256("enc-1");
    let mut enc_jwk = enc.jwk();
    enc_jwk["use"] = json!("enc");
    let wrapping = SigningKey::es256("wrap-1");
    let mut wrap_jwk = wrapping.jwk();
    wrap_jwk.as_object_mut().unwrap().remove("use");
    wrap_jwk["key_ops"] = json!(["wrapKey"]);
    idp.add_raw_jwk(enc_jwk);
    idp.add_raw_jwk(wrap_jwk);
    idp.add_raw_jwk(json!({"kty": "RSA", "kid": "broken", "n": "%%%", "e": "AQAB"}));
    idp.add_raw_jwk(json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"}));
    idp.add_raw_jwk(json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}));
    idp.add_raw_jwk(
        json!({"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}),
    );
    idp.add_raw_jwk(json!("garbage"));
    let verifier = remote(&idp, &clock()).build().unwrap();

    for kid in ["es-1", "rs-1", "ed-1"] {
        let token = idp.token(RESOURCE).sign(&idp.key(kid));
        assert_eq!(kind(&verifier, &token).await, None, "{kid}");
    }
    assert_eq!(verifier.key_count(), 3);
    assert_eq!(
        kind(&verifier, &idp.token(RESOURCE).sign(&enc)).await,
        Some(VerifyErrorKind::UnknownKey),
        "a use:enc key never verifies"
    );
    assert_eq!(
        kind(&verifier, &idp.token(RESOURCE).sign(&wrapping)).await,
        Some(VerifyErrorKind::UnknownKey),
        "a key whose key_ops lack verify never verifies"
    );
    let hmac = idp
        .token(RESOURCE)
        .sign(&SigningKey::hs256("secretsecretsecretsecret").with_kid(Some("hmac")));
    assert_eq!(
        kind(&verifier, &hmac).await,
        Some(VerifyErrorKind::Algorithm)
    );
}

#[tokio::test]
async fn background_refresh_follows_cache_control() {
    let idp = FakeIdp::start().await;
    // max-age=0 is clamped up to the (test-sized) minimum of 200 ms.
    idp.set_cache_control(Some("public, max-age=0"));
    let clock = clock();
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks_uri(idp.jwks_uri())
        .clock(clock.clone())
        .refresh_interval(Duration::from_millis(200), Duration::from_secs(3600))
        .build()
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    assert_eq!(idp.jwks_hits(), 1);

    // A new key appears; the clock does not move, so no unknown-kid refetch is allowed
    // (cool-down): only the background refresh can bring it in.
    let new = SigningKey::es256("es-2");
    idp.add_key(new.clone());
    idp.set_cache_control(Some("max-age=31536000"));
    assert!(idp.wait_for_jwks_hits(2, Duration::from_millis(800)).await);
    let token = idp.token(RESOURCE).sign(&new);
    let mut ok = false;
    for _ in 0..50 {
        if kind(&verifier, &token).await.is_none() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ok, "the background refresh brought in the new key");

    // The second response said max-age=1y, clamped to the 1 h maximum: no more refreshes, and
    // dropping the verifier ends the task.
    drop(verifier);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn without_cache_control_the_default_interval_applies() {
    let idp = FakeIdp::start().await;
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks_uri(idp.jwks_uri())
        .clock(clock())
        .refresh_interval(Duration::from_millis(100), Duration::from_secs(3600))
        .build()
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    // Default 1 h: nothing within 300 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(idp.jwks_hits(), 1);

    let fast = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks_uri(idp.jwks_uri())
        .clock(clock())
        .refresh_interval(Duration::from_millis(100), Duration::from_secs(3600))
        .default_refresh_interval(Duration::from_millis(150))
        .build()
        .unwrap();
    fast.refresh_keys().await.unwrap();
    assert!(idp.wait_for_jwks_hits(4, Duration::from_millis(500)).await);
}

#[tokio::test]
async fn static_keys_work_without_any_fetch() {
    let idp = FakeIdp::start().await;
    let es = idp.key("es-1");
    let ed = idp.key("ed-1");
    let verifier = JwtVerifier::builder(idp.issuer(), &resource())
        .jwks_json(&jwks_of(&[&es]).to_string())
        .jwk(&ed.jwk())
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(verifier.key_count(), 2);
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&es)).await, None);
    assert_eq!(kind(&verifier, &idp.token(RESOURCE).sign(&ed)).await, None);
    assert_eq!(
        kind(&verifier, &idp.token(RESOURCE).sign(&idp.key("rs-1"))).await,
        Some(VerifyErrorKind::UnknownKey)
    );
    assert!(verifier.refresh_keys().await.is_ok());
    assert_eq!(idp.jwks_hits(), 0);

    // HMAC only.
    let secret = b"an HMAC secret that is long enough!!";
    let hmac = JwtVerifier::builder(idp.issuer(), &resource())
        .hmac_secret(secret)
        .clock(clock())
        .build()
        .unwrap();
    assert_eq!(hmac.algorithms(), JwsAlgorithm::HMAC);
    assert_eq!(
        kind(&hmac, &idp.token(RESOURCE).sign(&SigningKey::hs256(secret))).await,
        None
    );
    assert_eq!(
        kind(&hmac, &idp.token(RESOURCE).sign(&es)).await,
        Some(VerifyErrorKind::Algorithm)
    );
}

#[tokio::test]
async fn debug_output_redacts_the_hmac_secret() {
    let idp = FakeIdp::start().await;
    let secret = "super-secret-hmac-value-0123456789";
    let builder = remote(&idp, &clock()).hmac_secret(secret);
    let text = format!("{builder:?}");
    assert!(
        text.contains("[REDACTED]") && !text.contains(secret),
        "{text}"
    );
    let verifier = builder.build().unwrap();
    let text = format!("{verifier:?}");
    assert!(
        text.contains("[REDACTED]") && !text.contains(secret),
        "{text}"
    );
    assert!(text.contains(idp.issuer()));
}

#[tokio::test]
async fn error_descriptions_never_echo_the_token() {
    let idp = FakeIdp::start().await;
    let verifier = remote(&idp, &clock()).build().unwrap();
    let key = idp.key("es-1");
    let tokens = [
        idp.token(RESOURCE)
            .header("kid", "kid-that-must-not-leak")
            .sign(&key),
        idp.token(RESOURCE)
            .claim("iss", "https://issuer-that-must-not-leak")
            .sign(&key),
        idp.token(RESOURCE)
            .header("typ", "typ-that-must-not-leak")
            .sign(&key),
    ];
    for token in tokens {
        let err = verifier.verify(&token).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("must-not-leak"), "{shown}");
        assert_eq!(err.to_string(), err.kind().description());
    }
}

#[test]
fn configuration_mistakes_fail_at_build_time() {
    let r = resource();
    let b = || JwtVerifier::builder("https://auth.example.com", &r);
    let jwks = jwks_of(&[&SigningKey::es256("k")]);
    let err = |builder: JwtVerifierBuilder| builder.build().unwrap_err();

    assert!(matches!(err(b()), ConfigError::Key { .. }), "no key source");
    assert!(matches!(
        err(b().jwks(&jwks).leeway(Duration::from_secs(301))),
        ConfigError::OutOfRange { .. }
    ));
    assert!(
        b().jwks(&jwks)
            .leeway(Duration::from_secs(300))
            .build()
            .is_ok()
    );
    assert!(matches!(
        err(b().jwks(&jwks).algorithms([])),
        ConfigError::Algorithm { .. }
    ));
    assert!(matches!(
        err(b().jwks(&jwks).algorithms([JwsAlgorithm::HS256])),
        ConfigError::Algorithm { .. }
    ));
    assert!(matches!(
        err(b()
            .jwks(&jwks)
            .hmac_secret([7u8; 32])
            .algorithms([JwsAlgorithm::ES256])),
        ConfigError::Algorithm { .. }
    ));
    assert!(matches!(
        err(b().hmac_secret([7u8; 31])),
        ConfigError::Key { .. }
    ));
    assert!(matches!(
        err(b()
            .hmac_secret([7u8; 32])
            .algorithms([JwsAlgorithm::HS256, JwsAlgorithm::ES256])),
        ConfigError::Algorithm { .. }
    ));
    assert!(matches!(
        err(b().jwks(&json!({"keys": [{"kty": "oct", "k": "AAAA"}]}))),
        ConfigError::Key { .. }
    ));
    assert!(matches!(err(b().jwks(&json!([]))), ConfigError::Key { .. }));
    assert!(matches!(
        err(b().jwks_json("{not json")),
        ConfigError::Key { .. }
    ));
    assert!(matches!(
        err(b().jwk(&json!({"kty": "EC", "use": "enc"}))),
        ConfigError::Key { .. }
    ));
    assert!(matches!(
        err(b().jwks(&jwks).jwks_uri("https://auth.example.com/jwks")),
        ConfigError::Key { .. }
    ));
    assert!(matches!(
        err(b().jwks_uri("http://auth.example.com/jwks")),
        ConfigError::InsecureUrl { .. }
    ));
    assert!(matches!(
        err(b().jwks_uri("not a url")),
        ConfigError::InvalidUrl { .. }
    ));
    assert!(matches!(
        err(JwtVerifier::builder("http://auth.example.com", &r).discover_jwks()),
        ConfigError::InsecureUrl { .. }
    ));
    assert!(matches!(
        err(JwtVerifier::builder("", &r).jwks(&jwks)),
        ConfigError::InvalidUrl { .. }
    ));
    let remote = || b().jwks_uri("https://auth.example.com/jwks");
    assert!(matches!(
        err(remote().unknown_kid_cooldown(Duration::ZERO)),
        ConfigError::OutOfRange { .. }
    ));
    assert!(matches!(
        err(remote().refresh_interval(Duration::from_secs(10), Duration::from_secs(5))),
        ConfigError::OutOfRange { .. }
    ));
    assert!(matches!(
        err(remote().http_timeouts(Duration::from_secs(10), Duration::from_secs(5))),
        ConfigError::OutOfRange { .. }
    ));
    assert!(matches!(
        err(remote().max_stale(Duration::ZERO)),
        ConfigError::OutOfRange { .. }
    ));
    assert!(remote().build().is_ok(), "building never fetches");
}

#[tokio::test]
async fn max_stale_stops_using_old_keys() {
    let idp = FakeIdp::start().await;
    let clock = clock();
    let verifier = remote(&idp, &clock)
        .max_stale(Duration::from_secs(600))
        .build()
        .unwrap();
    let token = idp
        .token(RESOURCE)
        .claim("exp", NOW + 3600)
        .sign(&idp.key("es-1"));
    assert_eq!(kind(&verifier, &token).await, None);
    idp.set_failing(true);
    clock.advance(Duration::from_secs(599));
    assert_eq!(kind(&verifier, &token).await, None);
    clock.advance(Duration::from_secs(2));
    let err: VerifyError = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.kind(), VerifyErrorKind::Unavailable);
    idp.set_failing(false);
    clock.advance(Duration::from_secs(60));
    assert_eq!(kind(&verifier, &token).await, None);
}
