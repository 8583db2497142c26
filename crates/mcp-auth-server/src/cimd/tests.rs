//! Unit tests of the parent module.

use std::net::IpAddr;

use http::HeaderMap;
use serde_json::json;

use super::fetch::*;
use super::ssrf::*;
use super::url_rules::*;
use super::validate::*;
use super::*;
use crate::store::ClientSource;

const ID: &str = "https://client.example.com/oauth/client.json";

fn doc(overrides: serde_json::Value) -> Vec<u8> {
    let mut base = json!({
        "client_id": ID,
        "client_name": "Example",
        "redirect_uris": ["http://127.0.0.1/callback", "https://client.example.com/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    if let (Some(base), serde_json::Value::Object(o)) = (base.as_object_mut(), overrides) {
        for (k, v) in o {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    serde_json::to_vec(&base).unwrap()
}

fn kind(r: Result<impl fmt::Debug, CimdError>) -> CimdErrorKind {
    r.unwrap_err().kind()
}

#[test]
fn client_id_urls_follow_cimd_section_3() {
    for ok in [
        ID,
        "https://client.example.com/c",
        "https://client.example.com:8443/client.json",
        "https://client.example.com/client.json?v=1",
        "https://8.8.8.8/client.json",
        "https://[2606:4700::1111]/client.json",
    ] {
        assert!(check_client_id(ok, false).is_ok(), "{ok}");
    }
    for bad in [
        "http://client.example.com/client.json",
        "https://client.example.com",
        "https://client.example.com/",
        "https://client.example.com?x=/client.json",
        "https://client.example.com/?x=/client.json",
        "https://client.example.com/a/../client.json",
        "https://client.example.com/a/./client.json",
        "https://client.example.com/a/%2e%2E/client.json",
        "https://client.example.com/..",
        "https://client.example.com/client.json#x",
        "https://user@client.example.com/client.json",
        "https://user:pw@client.example.com/client.json",
        "https://@client.example.com/client.json",
        "https://Client.Example.com/client.json",
        "https://client.example.com:443/client.json",
        "https://client.example.com/client json",
        "https://client.example.com\\@evil/client.json",
        "HTTPS://client.example.com/client.json",
        "ftp://client.example.com/client.json",
        "client.example.com/client.json",
        "",
    ] {
        assert_eq!(
            kind(check_client_id(bad, false)),
            CimdErrorKind::InvalidUrl,
            "{bad:?}"
        );
    }
    let long = format!("https://client.example.com/{}", "a".repeat(3000));
    assert_eq!(
        kind(check_client_id(&long, false)),
        CimdErrorKind::InvalidUrl
    );
}

#[test]
fn literal_private_hosts_are_blocked_before_any_connection() {
    for bad in [
        "https://127.0.0.1/client.json",
        "https://10.1.2.3/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "https://[fd00:ec2::254]/client.json",
        "https://[::ffff:127.0.0.1]/client.json",
        "https://[::ffff:a9fe:a9fe]/client.json",
    ] {
        assert_eq!(
            kind(check_client_id(bad, false)),
            CimdErrorKind::Blocked,
            "{bad}"
        );
    }
}

#[test]
fn allow_loopback_permits_http_on_loopback_only() {
    assert!(check_client_id("http://127.0.0.1:8080/client.json", true).is_ok());
    assert!(check_client_id("http://localhost:8080/client.json", true).is_ok());
    assert!(check_client_id("https://127.0.0.1/client.json", true).is_ok());
    assert_eq!(
        kind(check_client_id("http://127.0.0.1:8080/client.json", false)),
        CimdErrorKind::InvalidUrl
    );
    assert_eq!(
        kind(check_client_id("http://example.com/client.json", true)),
        CimdErrorKind::InvalidUrl
    );
    assert_eq!(
        kind(check_client_id("http://10.0.0.1/client.json", true)),
        CimdErrorKind::InvalidUrl
    );
    assert_eq!(
        kind(check_client_id("https://10.0.0.1/client.json", true)),
        CimdErrorKind::Blocked
    );
}

#[test]
fn only_public_unicast_addresses_are_permitted() {
    for ok in [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ] {
        let ip: IpAddr = ok.parse().unwrap();
        assert!(permitted(ip, false), "{ok}");
    }
    for bad in [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "169.254.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::127.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0:a00:1",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "100::1",
        "2001::1",
        "2001:db8::1",
        "2002:a00:1::1",
        "2002:7f00:1::",
        "3fff::1",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "4000::1",
    ] {
        let ip: IpAddr = bad.parse().unwrap();
        assert!(!permitted(ip, false), "{bad}");
    }
    assert!(permitted("127.0.0.1".parse().unwrap(), true));
    assert!(permitted("::1".parse().unwrap(), true));
    assert!(permitted("::ffff:127.0.0.1".parse().unwrap(), true));
    assert!(!permitted("10.0.0.1".parse().unwrap(), true));
    assert!(!permitted("169.254.169.254".parse().unwrap(), true));
}

#[test]
fn a_good_document_becomes_a_public_metadata_client() {
    let record = validate_document(
        ID,
        &doc(json!({"logo_uri": "https://client.example.com/logo.png", "x-extra": 1})),
        7,
    )
    .unwrap();
    assert_eq!(record.client_id, ID);
    assert!(record.is_public());
    assert_eq!(record.source, ClientSource::MetadataDocument);
    assert_eq!(record.issued_at, 7);
    assert_eq!(record.metadata.client_name.as_deref(), Some("Example"));
    assert_eq!(record.metadata.redirect_uris.len(), 2);
    assert_eq!(record.metadata.extra.get("x-extra"), Some(&json!(1)));
    assert!(!record.metadata.extra.contains_key("client_id"));
    // The auth method may be omitted.
    assert!(validate_document(ID, &doc(json!({"token_endpoint_auth_method": null})), 7).is_ok());
}

#[test]
fn invalid_documents_are_refused() {
    let bad_id = doc(json!({"client_id": "https://client.example.com/oauth/client.json/"}));
    let other_id = doc(json!({"client_id": "https://evil.example.com/oauth/client.json"}));
    for (body, what) in [
        (b"not json".to_vec(), "not json"),
        (b"[]".to_vec(), "array"),
        (b"\"x\"".to_vec(), "string"),
        (b"{".to_vec(), "truncated"),
        (vec![0xff, 0xfe], "binary"),
        (Vec::new(), "empty"),
        (bad_id, "client_id with a slash"),
        (other_id, "other client_id"),
        (doc(json!({"client_id": null})), "no client_id"),
        (doc(json!({"client_id": 5})), "numeric client_id"),
        (doc(json!({"client_name": null})), "no client_name"),
        (doc(json!({"client_name": "  "})), "blank client_name"),
        (doc(json!({"client_name": 3})), "numeric client_name"),
        (doc(json!({"redirect_uris": null})), "no redirect_uris"),
        (doc(json!({"redirect_uris": []})), "empty redirect_uris"),
        (
            doc(json!({"redirect_uris": "https://client.example.com/cb"})),
            "redirect_uris not a list",
        ),
        (doc(json!({"redirect_uris": [1]})), "numeric redirect uri"),
        (
            doc(json!({"redirect_uris": ["http://evil.example.com/cb"]})),
            "http redirect",
        ),
        (
            doc(json!({"redirect_uris": ["https://client.example.com/cb#f"]})),
            "fragment",
        ),
        (doc(json!({"redirect_uris": ["/cb"]})), "relative"),
        (doc(json!({"logo_uri": 5})), "mistyped member"),
    ] {
        assert_eq!(
            kind(validate_document(ID, &body, 0)),
            CimdErrorKind::InvalidDocument,
            "{what}"
        );
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        kind(validate_document(ID, deep.as_bytes(), 0)),
        CimdErrorKind::InvalidDocument
    );
}

#[test]
fn secrets_and_secret_based_auth_are_refused() {
    for overrides in [
        json!({"client_secret": "s"}),
        json!({"client_secret_expires_at": 0}),
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
        json!({"token_endpoint_auth_method": "client_secret_post"}),
        json!({"token_endpoint_auth_method": "client_secret_jwt"}),
        json!({"token_endpoint_auth_method": "tls_client_auth"}),
        json!({"token_endpoint_auth_method": 1}),
    ] {
        let error = validate_document(ID, &doc(overrides.clone()), 0).unwrap_err();
        assert_eq!(error.kind(), CimdErrorKind::AuthMethod, "{overrides}");
    }
}

#[cfg(feature = "jwt-assertions")]
#[test]
fn private_key_jwt_documents_name_their_keys_once() {
    for keys in [
        json!({"jwks_uri": "https://client.example.com/jwks"}),
        json!({"jwks": {"keys": []}}),
    ] {
        let mut overrides = keys.clone();
        overrides["token_endpoint_auth_method"] = json!("private_key_jwt");
        let record = validate_document(ID, &doc(overrides), 0).unwrap();
        assert_eq!(
            record.auth_method,
            crate::store::ClientAuthMethod::PrivateKeyJwt,
            "{keys}"
        );
        assert!(!record.is_public());
    }
    for overrides in [
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": 7}),
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://client.example.com/jwks", "jwks": {"keys": []}}),
    ] {
        let error = validate_document(ID, &doc(overrides.clone()), 0).unwrap_err();
        assert_eq!(error.kind(), CimdErrorKind::AuthMethod, "{overrides}");
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[test]
fn cache_lifetime_follows_cache_control_within_bounds() {
    let c = CimdConfig::default();
    let life = |pairs: &[(&str, &str)]| cache_lifetime(&headers(pairs), &c);
    assert_eq!(life(&[]), 60);
    assert_eq!(life(&[("cache-control", "max-age=600")]), 600);
    assert_eq!(life(&[("cache-control", "public, max-age=\"600\"")]), 600);
    assert_eq!(life(&[("cache-control", "MAX-AGE=600")]), 600);
    assert_eq!(life(&[("cache-control", "max-age=5")]), 60);
    assert_eq!(life(&[("cache-control", "max-age=0")]), 60);
    assert_eq!(life(&[("cache-control", "max-age=999999999")]), 86_400);
    assert_eq!(
        life(&[("cache-control", "max-age=99999999999999999999999")]),
        60
    );
    assert_eq!(life(&[("cache-control", "max-age=banana")]), 60);
    assert_eq!(
        life(&[("cache-control", "max-age=600"), ("age", "500")]),
        100
    );
    assert_eq!(
        life(&[("cache-control", "max-age=600, s-maxage=1200")]),
        1200
    );
    assert_eq!(life(&[("cache-control", "no-store")]), 0);
    assert_eq!(life(&[("cache-control", "max-age=600, no-store")]), 0);
    assert_eq!(
        life(&[
            ("cache-control", "max-age=600"),
            ("cache-control", "no-cache")
        ]),
        0
    );
    let never = CimdConfig {
        min_cache: Duration::ZERO,
        ..CimdConfig::default()
    };
    assert_eq!(
        cache_lifetime(&headers(&[("cache-control", "max-age=0")]), &never),
        0
    );
}

#[test]
fn json_content_types() {
    let ct = |v: &str| crate::http::is_json(&headers(&[("content-type", v)]));
    assert!(ct("application/json"));
    assert!(ct("application/json; charset=utf-8"));
    assert!(ct("Application/JSON"));
    assert!(ct("application/client-metadata+json"));
    assert!(!ct("text/html"));
    assert!(!ct("text/json"));
    assert!(!ct("application/jsonx"));
    assert!(!ct("application/octet-stream"));
    assert!(!crate::http::is_json(&HeaderMap::new()));
}

#[tokio::test]
async fn config_is_checked() {
    let c = CimdConfig {
        max_bytes: 0,
        ..CimdConfig::default()
    };
    assert_eq!(kind(CimdFetcher::new(c)), CimdErrorKind::Config);
    let c = CimdConfig {
        min_cache: Duration::from_secs(10),
        max_cache: Duration::from_secs(5),
        ..CimdConfig::default()
    };
    assert_eq!(kind(CimdFetcher::new(c)), CimdErrorKind::Config);
    assert!(CimdFetcher::new(CimdConfig::default()).is_ok());
}

#[tokio::test]
async fn document_urls_are_recognised() {
    let strict = CimdFetcher::new(CimdConfig::default()).unwrap();
    assert!(strict.is_document_url(ID));
    assert!(!strict.is_document_url("http://127.0.0.1/client.json"));
    assert!(!strict.is_document_url("abc123"));
    let c = CimdConfig {
        allow_loopback: true,
        ..CimdConfig::default()
    };
    let loose = CimdFetcher::new(c).unwrap();
    assert!(loose.is_document_url("http://127.0.0.1:1/client.json"));
    assert!(loose.is_document_url("http://localhost:1/client.json"));
    assert!(!loose.is_document_url("http://example.com/client.json"));
}

#[tokio::test]
async fn the_resolver_refuses_names_that_resolve_to_loopback() {
    use reqwest::dns::Resolve as _;
    let name: reqwest::dns::Name = "localhost".parse().unwrap();
    let error = GuardedResolver {
        allow_loopback: false,
    }
    .resolve(name)
    .await
    .err()
    .unwrap();
    assert!(
        matches!(error.downcast_ref::<Refused>(), Some(Refused::Blocked)),
        "{error}"
    );
    let name: reqwest::dns::Name = "localhost".parse().unwrap();
    let addrs: Vec<_> = GuardedResolver {
        allow_loopback: true,
    }
    .resolve(name)
    .await
    .unwrap()
    .collect();
    assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
}

#[tokio::test]
async fn the_cache_is_bounded_and_expires() {
    let c = CimdConfig {
        max_entries: 2,
        ..CimdConfig::default()
    };
    let fetcher = CimdFetcher::new(c).unwrap();
    let record = validate_document(ID, &doc(json!({})), 0).unwrap();
    fetcher.remember("a", &record, 100, 0);
    fetcher.remember("b", &record, 50, 0);
    fetcher.remember("c", &record, 200, 0);
    assert!(fetcher.cached("a", 1).is_some());
    assert!(
        fetcher.cached("b", 1).is_none(),
        "the entry closest to expiry was evicted"
    );
    assert!(fetcher.cached("c", 1).is_some());
    assert!(fetcher.cached("a", 100).is_none(), "expired at 100");
    fetcher.remember("d", &record, 0, 0);
    assert!(fetcher.cached("d", 0).is_none(), "ttl 0 is not cached");
}
