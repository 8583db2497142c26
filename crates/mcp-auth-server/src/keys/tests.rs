//! Unit tests of the parent module.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::crypto::KID_BYTES;
use super::*;
use crate::store::{
    ClientRecord, CodeRecord, CodeTake, ConsentRecord, FlowKind, FlowRecord, GrantRecord,
    LeaseTake, MemoryStore, RefreshLease, RefreshRecord, Revoked, Rotation, StoreFuture, TokenHash,
    UpstreamTokenRecord, Window,
};
use crate::store::{StoreError, StoredKey};

const NOW: u64 = 1_700_000_000;
const ALGS: [SigningAlgorithm; 3] = [
    SigningAlgorithm::Es256,
    SigningAlgorithm::EdDsa,
    SigningAlgorithm::Rs256,
];

/// A [`MemoryStore`] with hooks: failing key listings, and a "rival" key another server
/// writes right after our next `put_key`.
#[derive(Debug, Default)]
struct HookedStore {
    inner: MemoryStore,
    fail_list: std::sync::atomic::AtomicBool,
    rival: Mutex<Option<StoredKey>>,
}

impl Store for HookedStore {
    fn put_client(&self, client: ClientRecord) -> StoreFuture<'_, ()> {
        self.inner.put_client(client)
    }
    fn get_client<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<ClientRecord>> {
        self.inner.get_client(id)
    }
    fn delete_client<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete_client(id)
    }
    fn client_authorized<'a>(&'a self, id: &'a str, now: u64) -> StoreFuture<'a, ()> {
        self.inner.client_authorized(id, now)
    }
    fn purge_unused_public_clients(&self, since: u64, now: u64) -> StoreFuture<'_, u64> {
        self.inner.purge_unused_public_clients(since, now)
    }
    fn find_public_client<'a>(
        &'a self,
        key: &'a TokenHash,
    ) -> StoreFuture<'a, Option<ClientRecord>> {
        self.inner.find_public_client(key)
    }
    fn put_public_client(
        &self,
        client: ClientRecord,
        key: TokenHash,
    ) -> StoreFuture<'_, (ClientRecord, bool)> {
        self.inner.put_public_client(client, key)
    }
    fn put_code(&self, code: CodeRecord) -> StoreFuture<'_, ()> {
        self.inner.put_code(code)
    }
    fn take_code<'a>(&'a self, hash: &'a TokenHash) -> StoreFuture<'a, CodeTake> {
        self.inner.take_code(hash)
    }
    fn create_grant(&self, g: GrantRecord, r: Option<RefreshRecord>) -> StoreFuture<'_, ()> {
        self.inner.create_grant(g, r)
    }
    fn get_grant<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<GrantRecord>> {
        self.inner.get_grant(id)
    }
    fn get_refresh<'a>(
        &'a self,
        hash: &'a TokenHash,
    ) -> StoreFuture<'a, Option<(RefreshRecord, GrantRecord)>> {
        self.inner.get_refresh(hash)
    }
    fn rotate_refresh<'a>(
        &'a self,
        old: &'a TokenHash,
        new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> StoreFuture<'a, Rotation> {
        self.inner.rotate_refresh(old, new, now, grace)
    }
    fn revoke_grant<'a>(&'a self, id: &'a str, now: u64) -> StoreFuture<'a, bool> {
        self.inner.revoke_grant(id, now)
    }
    fn revoke_access_token<'a>(&'a self, jti: &'a str, exp: u64, now: u64) -> StoreFuture<'a, ()> {
        self.inner.revoke_access_token(jti, exp, now)
    }
    fn put_flow(&self, record: FlowRecord, now: u64) -> StoreFuture<'_, ()> {
        self.inner.put_flow(record, now)
    }
    fn get_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        self.inner.get_flow(kind, key, now)
    }
    fn take_flow<'a>(
        &'a self,
        kind: FlowKind,
        key: &'a TokenHash,
        now: u64,
    ) -> StoreFuture<'a, Option<FlowRecord>> {
        self.inner.take_flow(kind, key, now)
    }
    fn delete_flows_of<'a>(&'a self, kind: FlowKind, subject: &'a str) -> StoreFuture<'a, u64> {
        self.inner.delete_flows_of(kind, subject)
    }
    fn count_event<'a>(&'a self, key: &'a str, window: u64, now: u64) -> StoreFuture<'a, Window> {
        self.inner.count_event(key, window, now)
    }
    fn get_window<'a>(&'a self, key: &'a str, now: u64) -> StoreFuture<'a, Option<Window>> {
        self.inner.get_window(key, now)
    }
    fn clear_window<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.inner.clear_window(key)
    }
    fn try_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        until: u64,
        now: u64,
    ) -> StoreFuture<'a, bool> {
        self.inner.try_lease(name, holder, until, now)
    }
    fn release_lease<'a>(&'a self, name: &'a str, holder: &'a str) -> StoreFuture<'a, ()> {
        self.inner.release_lease(name, holder)
    }
    fn is_access_token_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        self.inner.is_access_token_revoked(jti)
    }
    fn list_revocations(&self, now: u64, since: u64) -> StoreFuture<'_, Vec<Revoked>> {
        self.inner.list_revocations(now, since)
    }
    fn put_consent(&self, consent: ConsentRecord) -> StoreFuture<'_, ()> {
        self.inner.put_consent(consent)
    }
    fn get_consent<'a>(
        &'a self,
        subject: &'a str,
        client_id: &'a str,
        resource: &'a str,
    ) -> StoreFuture<'a, Option<ConsentRecord>> {
        self.inner.get_consent(subject, client_id, resource)
    }
    fn put_key(&self, key: StoredKey) -> StoreFuture<'_, ()> {
        let rival = self.rival.lock().unwrap().take();
        Box::pin(async move {
            self.inner.put_key(key).await?;
            if let Some(rival) = rival {
                self.inner.put_key(rival).await?;
            }
            Ok(())
        })
    }
    fn list_keys(&self) -> StoreFuture<'_, Vec<StoredKey>> {
        if self.fail_list.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::new("listing refused")) });
        }
        self.inner.list_keys()
    }
    fn delete_key<'a>(&'a self, kid: &'a str) -> StoreFuture<'a, bool> {
        self.inner.delete_key(kid)
    }
    fn list_active_grants<'a>(
        &'a self,
        subject: &'a str,
        now: u64,
    ) -> StoreFuture<'a, Vec<GrantRecord>> {
        self.inner.list_active_grants(subject, now)
    }
    fn put_upstream_tokens(&self, record: UpstreamTokenRecord) -> StoreFuture<'_, ()> {
        self.inner.put_upstream_tokens(record)
    }
    fn get_upstream_tokens<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
    ) -> StoreFuture<'a, Option<UpstreamTokenRecord>> {
        self.inner.get_upstream_tokens(subject, upstream)
    }
    fn delete_upstream_tokens<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64> {
        self.inner.delete_upstream_tokens(subject)
    }
    fn lease_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        lease: RefreshLease,
        now: u64,
    ) -> StoreFuture<'a, LeaseTake> {
        self.inner
            .lease_upstream_refresh(subject, upstream, lease, now)
    }
    fn finish_upstream_refresh<'a>(
        &'a self,
        record: UpstreamTokenRecord,
        holder: &'a str,
    ) -> StoreFuture<'a, bool> {
        self.inner.finish_upstream_refresh(record, holder)
    }
    fn release_upstream_refresh<'a>(
        &'a self,
        subject: &'a str,
        upstream: &'a str,
        holder: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.inner
            .release_upstream_refresh(subject, upstream, holder)
    }
    fn purge_expired(&self, now: u64) -> StoreFuture<'_, u64> {
        self.inner.purge_expired(now)
    }
}

fn policy(alg: SigningAlgorithm) -> KeyPolicy {
    KeyPolicy::default()
        .with_algorithm(alg)
        .with_publish_ahead(Duration::from_secs(100))
        .with_rotate_after(Some(Duration::from_secs(1000)))
        .with_keep_after_retire(Duration::from_secs(50))
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&B64.decode(segment).unwrap()).unwrap()
}

fn jwks(keys: &KeySet) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&keys.jwks_json()).unwrap();
    doc["keys"].as_array().unwrap().clone()
}

fn kids(keys: &KeySet) -> Vec<String> {
    jwks(keys)
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn stored_kids(store: &dyn Store) -> Vec<String> {
    store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect()
}

/// A token with `header` and `payload` replaced, and the original signature.
fn forge(token: &str, header: Option<&Value>, payload: Option<&Value>) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let encode = |v: &Value| B64.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.{}",
        header.map_or(parts[0].to_owned(), encode),
        payload.map_or(parts[1].to_owned(), encode),
        parts[2]
    )
}

#[test]
fn algorithm_names_round_trip_and_none_is_not_one() {
    for alg in ALGS {
        assert_eq!(SigningAlgorithm::from_name(alg.as_str()), Some(alg));
        assert_eq!(alg.to_string(), alg.as_str());
    }
    for bad in ["none", "es256", "HS256", "ES384", ""] {
        assert_eq!(SigningAlgorithm::from_name(bad), None, "{bad}");
    }
    assert_eq!(SigningAlgorithm::default(), SigningAlgorithm::Es256);
}

#[tokio::test]
async fn each_algorithm_signs_and_verifies_with_the_expected_header_and_signature_size() {
    for (alg, sig_len) in [
        (SigningAlgorithm::Es256, 64),
        (SigningAlgorithm::EdDsa, 64),
        (SigningAlgorithm::Rs256, 256),
    ] {
        let store = MemoryStore::new();
        let keys = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        assert_eq!(keys.algorithm(), alg);
        let claims = json!({"sub": "alice", "exp": NOW + 300, "scope": "a b"});
        let token = keys.sign("at+jwt", &claims, NOW).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let kid = keys.active_kid(NOW).unwrap();
        assert_eq!(
            decode_segment(parts[0]),
            json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": kid})
        );
        // The header is in the documented member order.
        let header = String::from_utf8(B64.decode(parts[0]).unwrap()).unwrap();
        assert!(
            header.starts_with(&format!("{{\"alg\":\"{alg}\",\"typ\"")),
            "{header}"
        );
        assert_eq!(B64.decode(parts[2]).unwrap().len(), sig_len, "{alg}");
        assert_eq!(Value::Object(keys.verify(&token).unwrap()), claims);

        // Another `typ` takes the slow path with the same result.
        let other = keys.sign("JWT", &claims, NOW).unwrap();
        let header = decode_segment(other.split('.').next().unwrap());
        assert_eq!(header["typ"], "JWT");
        assert!(keys.verify(&other).is_some());
    }
}

#[tokio::test]
async fn kid_is_22_base64url_characters_of_randomness() {
    let store = MemoryStore::new();
    let a = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let kid = a.active_kid(NOW).unwrap();
    assert_eq!(kid.len(), 22);
    assert_eq!(B64.decode(&kid).unwrap().len(), KID_BYTES);
    let other = a.rotate(&store, NOW).await.unwrap();
    assert_ne!(kid, other);
}

#[tokio::test]
async fn typ_is_escaped_in_the_header() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
        .await
        .unwrap();
    let token = keys.sign("a\"b", &json!({}), NOW).unwrap();
    assert_eq!(
        decode_segment(token.split('.').next().unwrap())["typ"],
        "a\"b"
    );
}

#[tokio::test]
async fn claims_must_be_an_object() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
        .await
        .unwrap();
    for claims in [json!([]), json!("x"), json!(null), json!(1)] {
        assert!(keys.sign("at+jwt", &claims, NOW).is_err(), "{claims}");
    }
}

#[tokio::test]
async fn verify_refuses_forgeries_and_malformed_input() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let keys = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let token = keys.sign("at+jwt", &json!({"sub": "alice"}), NOW).unwrap();
        let kid = keys.active_kid(NOW).unwrap();
        let header = decode_segment(token.split('.').next().unwrap());

        // Tampered payload.
        assert!(
            keys.verify(&forge(&token, None, Some(&json!({"sub": "mallory"}))))
                .is_none()
        );
        // Unknown kid, missing kid, kid not a string.
        for h in [
            json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": "nope"}),
            json!({"alg": alg.as_str(), "typ": "at+jwt"}),
            json!({"alg": alg.as_str(), "typ": "at+jwt", "kid": 1}),
        ] {
            assert!(keys.verify(&forge(&token, Some(&h), None)).is_none(), "{h}");
        }
        // `none`, another algorithm for our key, a missing alg, `crit`.
        for bad in ["none", "HS256", "ES384", "PS256", "RS256", "ES256", "EdDSA"] {
            if bad == alg.as_str() {
                continue;
            }
            let h = json!({"alg": bad, "typ": "at+jwt", "kid": kid});
            assert!(
                keys.verify(&forge(&token, Some(&h), None)).is_none(),
                "{bad}"
            );
            let unsigned = format!(
                "{}.{}.",
                B64.encode(h.to_string()),
                token.split('.').nth(1).unwrap()
            );
            assert!(keys.verify(&unsigned).is_none(), "{bad} unsigned");
        }
        let mut with_crit = header.clone();
        with_crit["crit"] = json!(["exp"]);
        assert!(
            keys.verify(&forge(&token, Some(&with_crit), None))
                .is_none()
        );
        let mut no_alg = header.clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        assert!(keys.verify(&forge(&token, Some(&no_alg), None)).is_none());

        // Structural garbage: no panic, no claims.
        let (h, rest) = token.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        let long = "A".repeat(MAX_TOKEN_BYTES + 1);
        let huge_sig = format!("{h}.{p}.{}", "A".repeat(4 * MAX_SIGNATURE_BYTES));
        let padded = format!("{token}==");
        let not_json = format!("{}.{p}.{s}", B64.encode("not json"));
        let array = format!("{}.{p}.{s}", B64.encode("[1]"));
        let payload_array = forge(&token, None, Some(&json!([1])));
        for bad in [
            "",
            ".",
            "..",
            "...",
            "a.b.c",
            &format!("{token}.x"),
            &format!("{h}.{p}"),
            &format!("{h}.{p}."),
            &format!("{h}..{s}"),
            &format!(".{p}.{s}"),
            &format!("{h}.{p}.{s}!"),
            &format!("{h}.{p}+.{s}"),
            &padded,
            &long,
            &huge_sig,
            &not_json,
            &array,
            &payload_array,
            "é.é.é",
        ] {
            assert!(keys.verify(bad).is_none(), "{bad:.80}");
        }
        // Flipping the last signature byte (within canonical base64) breaks it.
        let mut sig = B64.decode(s).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert!(
            keys.verify(&format!("{h}.{p}.{}", B64.encode(&sig)))
                .is_none()
        );
        // The untouched token still verifies.
        assert!(keys.verify(&token).is_some());
    }
}

#[tokio::test]
async fn a_token_of_another_key_set_does_not_verify() {
    let a = KeySet::load_or_create(&MemoryStore::new(), KeyPolicy::default(), NOW)
        .await
        .unwrap();
    let b = KeySet::load_or_create(&MemoryStore::new(), KeyPolicy::default(), NOW)
        .await
        .unwrap();
    let token = a.sign("at+jwt", &json!({}), NOW).unwrap();
    assert!(b.verify(&token).is_none());
    // Even when the kid is relabelled to b's.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": b.active_kid(NOW).unwrap()});
    assert!(b.verify(&forge(&token, Some(&header), None)).is_none());
}

#[tokio::test]
async fn jwks_has_public_parameters_only() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let keys = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let entries = jwks(&keys);
        assert_eq!(entries.len(), 1);
        let jwk = entries[0].as_object().unwrap();
        let mut members: Vec<&str> = jwk.keys().map(String::as_str).collect();
        members.sort_unstable();
        let expected: &[&str] = match alg {
            SigningAlgorithm::Es256 => &["alg", "crv", "kid", "kty", "use", "x", "y"],
            SigningAlgorithm::EdDsa => &["alg", "crv", "kid", "kty", "use", "x"],
            SigningAlgorithm::Rs256 => &["alg", "e", "kid", "kty", "n", "use"],
        };
        assert_eq!(members, expected, "{alg}");
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"].as_str(), keys.active_kid(NOW).as_deref());
        match alg {
            SigningAlgorithm::Es256 => {
                assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("EC"), &json!("P-256")));
                assert_eq!(B64.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
                assert_eq!(B64.decode(jwk["y"].as_str().unwrap()).unwrap().len(), 32);
            }
            SigningAlgorithm::EdDsa => {
                assert_eq!(
                    (&jwk["kty"], &jwk["crv"]),
                    (&json!("OKP"), &json!("Ed25519"))
                );
                assert_eq!(B64.decode(jwk["x"].as_str().unwrap()).unwrap().len(), 32);
            }
            SigningAlgorithm::Rs256 => {
                assert_eq!(jwk["kty"], "RSA");
                assert_eq!(B64.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256);
                assert_eq!(jwk["e"], "AQAB");
            }
        }
        // The same bytes every time (serialized once).
        assert_eq!(keys.jwks_json().as_ptr(), keys.jwks_json().as_ptr());
    }
}

#[tokio::test]
async fn debug_shows_kids_and_times_but_never_key_material() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::EdDsa), NOW)
        .await
        .unwrap();
    let debug = format!("{keys:?}");
    let kid = keys.active_kid(NOW).unwrap();
    assert!(debug.contains(&kid), "{debug}");
    let stored = store.list_keys().await.unwrap().remove(0);
    let pkcs8 = stored
        .pkcs8
        .iter()
        .map(|b| format!("{b}"))
        .collect::<Vec<_>>()
        .join(", ");
    assert!(!debug.contains(&pkcs8));
    assert!(!debug.contains(&B64.encode(&*stored.pkcs8)));
    assert!(!debug.to_lowercase().contains("pkcs8"), "{debug}");
    // `{:#?}` too.
    assert!(!format!("{keys:#?}").contains(&B64.encode(&stored.pkcs8[stored.pkcs8.len() - 32..])));
    let error = KeyError::new("x");
    assert_eq!(error.to_string(), "x");
}

#[tokio::test]
async fn unparsable_stored_keys_are_skipped_and_a_usable_key_created() {
    let store = MemoryStore::new();
    let good = Key::generate(SigningAlgorithm::Es256, NOW - 10, NOW - 10)
        .await
        .unwrap();
    let mut wrong_alg = good.to_stored();
    wrong_alg.kid = "wrong-alg".into();
    wrong_alg.alg = "RS256".into();
    let mut unknown_alg = good.to_stored();
    unknown_alg.kid = "unknown-alg".into();
    unknown_alg.alg = "none".into();
    let mut junk = good.to_stored();
    junk.kid = "junk".into();
    junk.pkcs8 = Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    for key in [wrong_alg, unknown_alg, junk] {
        store.put_key(key).await.unwrap();
    }
    let keys = KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
        .await
        .unwrap();
    let kid = keys.active_kid(NOW).unwrap();
    assert_eq!(kids(&keys), std::slice::from_ref(&kid));
    // The junk stays in the store (not ours to delete), the new key was added.
    assert_eq!(store.list_keys().await.unwrap().len(), 4);

    // With a good key in the store, it is used and nothing is created.
    let store = MemoryStore::new();
    store.put_key(good.to_stored()).await.unwrap();
    store.put_key(junk_key()).await.unwrap();
    let keys = KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
        .await
        .unwrap();
    assert_eq!(
        keys.active_kid(NOW).as_deref(),
        Some(good.material.kid.as_str())
    );
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}

fn junk_key() -> StoredKey {
    StoredKey {
        kid: "junk".into(),
        alg: "ES256".into(),
        pkcs8: Zeroizing::new(b"junk".to_vec()),
        created_at: 0,
        activates_at: 0,
        retired_at: None,
    }
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_then_retires_and_drops() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let old = keys.active_kid(NOW).unwrap();
    let new = keys.rotate(&store, NOW + 10).await.unwrap();
    assert_eq!(kids(&keys), [old.clone(), new.clone()]);
    assert_eq!(keys.active_kid(NOW + 109).as_ref(), Some(&old));
    assert_eq!(keys.active_kid(NOW + 110).as_ref(), Some(&new));

    // Not retired in the store until a maintain after activation.
    keys.maintain(&store, NOW + 109).await.unwrap();
    let listed = store.list_keys().await.unwrap();
    assert!(listed.iter().all(|k| k.retired_at.is_none()));
    keys.maintain(&store, NOW + 120).await.unwrap();
    let listed = store.list_keys().await.unwrap();
    let retired = listed.iter().find(|k| k.kid == old).unwrap();
    assert_eq!(retired.retired_at, Some(NOW + 110));
    assert_eq!(kids(&keys), [old.clone(), new.clone()]);

    keys.maintain(&store, NOW + 159).await.unwrap();
    assert_eq!(kids(&keys), [old.clone(), new.clone()]);
    keys.maintain(&store, NOW + 160).await.unwrap();
    assert_eq!(kids(&keys), std::slice::from_ref(&new));
    assert_eq!(stored_kids(&store).await, [new]);
}

#[tokio::test]
async fn maintain_rotates_when_the_key_is_old_or_of_another_algorithm() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    keys.maintain(&store, NOW + 999).await.unwrap();
    assert_eq!(kids(&keys).len(), 1);
    keys.maintain(&store, NOW + 1000).await.unwrap();
    assert_eq!(kids(&keys).len(), 2);
    // A pending key exists: no second rotation.
    keys.maintain(&store, NOW + 1050).await.unwrap();
    assert_eq!(kids(&keys).len(), 2);

    // Same store, a server configured for EdDSA: rotates to EdDSA at once.
    let store = MemoryStore::new();
    KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let ed = KeySet::load_or_create(&store, policy(SigningAlgorithm::EdDsa), NOW)
        .await
        .unwrap();
    assert_eq!(ed.algorithm(), SigningAlgorithm::Es256);
    ed.maintain(&store, NOW + 1).await.unwrap();
    assert_eq!(ed.algorithm(), SigningAlgorithm::Es256);
    ed.maintain(&store, NOW + 101).await.unwrap();
    assert_eq!(ed.algorithm(), SigningAlgorithm::EdDsa);
    let token = ed.sign("at+jwt", &json!({}), NOW + 101).unwrap();
    assert_eq!(
        decode_segment(token.split('.').next().unwrap())["alg"],
        "EdDSA"
    );

    // rotate_after: None never rotates on age.
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(
        &store,
        policy(SigningAlgorithm::Es256).with_rotate_after(None),
        NOW,
    )
    .await
    .unwrap();
    keys.maintain(&store, NOW + 1_000_000).await.unwrap();
    assert_eq!(kids(&keys).len(), 1);
}

#[tokio::test]
async fn two_servers_on_one_store_converge() {
    let store = MemoryStore::new();
    let a = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let b = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    assert_eq!(a.active_kid(NOW), b.active_kid(NOW));

    // A rotates; B learns about the new key at its next maintain, long before it signs.
    let new = a.rotate(&store, NOW + 10).await.unwrap();
    assert_eq!(kids(&b).len(), 1);
    b.maintain(&store, NOW + 11).await.unwrap();
    assert_eq!(kids(&a), kids(&b));
    assert_eq!(b.active_kid(NOW + 110), Some(new.clone()));
    let token = b.sign("at+jwt", &json!({}), NOW + 110).unwrap();
    assert!(a.verify(&token).is_some());

    // Both find rotation due: only one rotates (the second sees the pending key).
    a.maintain(&store, NOW + 2000).await.unwrap();
    b.maintain(&store, NOW + 2000).await.unwrap();
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    a.maintain(&store, NOW + 2001).await.unwrap();
    assert_eq!(kids(&a), kids(&b));

    // B deletes the retired key; A drops it too on its next maintain.
    b.maintain(&store, NOW + 2200).await.unwrap();
    assert_eq!(kids(&b).len(), 1);
    a.maintain(&store, NOW + 2200).await.unwrap();
    assert_eq!(kids(&a), kids(&b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_servers_starting_together_on_an_empty_store_make_one_key() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            KeySet::load_or_create(&*store, policy(SigningAlgorithm::Es256), NOW)
                .await
                .unwrap()
        }));
    }
    let mut sets = Vec::new();
    for task in tasks {
        sets.push(task.await.unwrap());
    }
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        1,
        "one key, not two"
    );
    let kid = sets[0].active_kid(NOW);
    assert!(sets.iter().all(|k| k.active_kid(NOW) == kid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_servers_finding_rotation_due_at_the_same_instant_make_one_new_key() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let mut sets = Vec::new();
    for _ in 0..8 {
        sets.push(
            KeySet::load_or_create(&*store, policy(SigningAlgorithm::Es256), NOW)
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for keys in sets.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            keys.maintain(&*store, NOW + 1000).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.list_keys().await.unwrap().len(), 2, "one new key");
    for keys in &sets {
        keys.maintain(&*store, NOW + 1001).await.unwrap();
    }
    let kid = sets[0].active_kid(NOW + 1100);
    assert!(sets.iter().all(|k| k.active_kid(NOW + 1100) == kid));
}

#[tokio::test]
async fn a_server_waits_for_the_first_key_of_the_lease_holder() {
    let store = std::sync::Arc::new(MemoryStore::new());
    // Another replica holds the lease and is about to store its key.
    assert!(
        store
            .try_lease("signing-keys", "other", NOW + 30, NOW)
            .await
            .unwrap()
    );
    let theirs = Key::generate(SigningAlgorithm::Es256, NOW, NOW)
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        let stored = theirs.to_stored();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            store.put_key(stored).await.unwrap();
        })
    };
    let ours = KeySet::load_or_create(&*store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    writer.await.unwrap();
    assert_eq!(ours.active_kid(NOW), Some(theirs.material.kid.clone()));
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_concurrent_newer_key_wins_the_race() {
    // First keys: another server's newer key lands between our put and our re-read.
    let store = HookedStore::default();
    let theirs = Key::generate(SigningAlgorithm::Es256, NOW + 2, NOW + 2)
        .await
        .unwrap();
    *store.rival.lock().unwrap() = Some(theirs.to_stored());
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        stored_kids(&store).await,
        std::slice::from_ref(&theirs.material.kid)
    );
    assert_eq!(kids(&keys), std::slice::from_ref(&theirs.material.kid));

    // The same second on both servers: the larger kid wins. Either ours yields (and is
    // deleted), or theirs is retired at once (its server deletes it when it sees ours).
    for _ in 0..8 {
        let store = HookedStore::default();
        let theirs = Key::generate(SigningAlgorithm::Es256, NOW, NOW)
            .await
            .unwrap();
        *store.rival.lock().unwrap() = Some(theirs.to_stored());
        let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
            .await
            .unwrap();
        let signer = keys.active_kid(NOW).unwrap();
        let listed = store.list_keys().await.unwrap();
        if signer == theirs.material.kid {
            assert_eq!(listed.len(), 1);
        } else {
            assert!(signer > theirs.material.kid);
            let loser = listed
                .iter()
                .find(|k| k.kid == theirs.material.kid)
                .unwrap();
            assert_eq!(loser.retired_at, Some(NOW));
        }
    }

    // An older concurrent key loses: both stay, the newer (ours) signs, theirs is retired.
    let store = HookedStore::default();
    let theirs = Key::generate(SigningAlgorithm::Es256, NOW - 1, NOW - 1)
        .await
        .unwrap();
    *store.rival.lock().unwrap() = Some(theirs.to_stored());
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let ours = keys.active_kid(NOW).unwrap();
    assert_ne!(ours, theirs.material.kid);
    assert_eq!(kids(&keys).len(), 2);
    let listed = store.list_keys().await.unwrap();
    let retired = listed
        .iter()
        .find(|k| k.kid == theirs.material.kid)
        .unwrap();
    assert_eq!(retired.retired_at, Some(NOW));

    // Rotation race: a newer pending key from another server supersedes ours.
    let store = HookedStore::default();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let first = keys.active_kid(NOW).unwrap();
    let theirs = Key::generate(SigningAlgorithm::Es256, NOW + 1001, NOW + 1101)
        .await
        .unwrap();
    *store.rival.lock().unwrap() = Some(theirs.to_stored());
    keys.maintain(&store, NOW + 1000).await.unwrap();
    assert_eq!(kids(&keys), [first, theirs.material.kid.clone()]);
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_lost_key_is_written_back_and_store_errors_keep_the_keys() {
    let store = HookedStore::default();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let kid = keys.active_kid(NOW).unwrap();
    store.delete_key(&kid).await.unwrap();
    keys.maintain(&store, NOW + 1).await.unwrap();
    assert_eq!(stored_kids(&store).await, std::slice::from_ref(&kid));
    assert_eq!(keys.active_kid(NOW + 1), Some(kid.clone()));

    store
        .fail_list
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let error = keys.maintain(&store, NOW + 5000).await.unwrap_err();
    assert!(std::error::Error::source(&error).is_some());
    assert!(keys.rotate(&store, NOW + 5000).await.is_err());
    assert_eq!(kids(&keys), std::slice::from_ref(&kid));
    assert!(keys.sign("at+jwt", &json!({}), NOW + 5000).is_ok());
    assert!(
        KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_retired_only_key_is_replaced_and_then_dropped() {
    let store = MemoryStore::new();
    let mut old = Key::generate(SigningAlgorithm::Es256, NOW - 500, NOW - 500)
        .await
        .unwrap();
    old.retired_at = Some(NOW - 100);
    store.put_key(old.to_stored()).await.unwrap();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let new = keys.active_kid(NOW).unwrap();
    assert_ne!(new, old.material.kid);
    assert_eq!(kids(&keys), [old.material.kid.clone(), new.clone()]);
    keys.maintain(&store, NOW).await.unwrap();
    assert_eq!(kids(&keys), std::slice::from_ref(&new));
    assert_eq!(stored_kids(&store).await, [new]);
}

#[tokio::test]
async fn the_signing_key_is_never_deleted() {
    // Only retired keys, all past keep_after_retire: the newest keeps signing (fallback)
    // until maintain creates a replacement; then the rest go.
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let kid = keys.active_kid(NOW).unwrap();
    let mut stored = store.list_keys().await.unwrap().remove(0);
    stored.retired_at = Some(NOW + 1);
    store.put_key(stored).await.unwrap();
    // This process has not re-read yet: the snapshot still signs with it, retired or not.
    assert_eq!(keys.active_kid(NOW + 1000), Some(kid.clone()));
    keys.maintain(&store, NOW + 1000).await.unwrap();
    let active = keys.active_kid(NOW + 1000).unwrap();
    assert_ne!(active, kid);
    assert!(stored_kids(&store).await.contains(&active));
    assert!(!stored_kids(&store).await.contains(&kid));
}

#[tokio::test]
async fn signing_key_selection_falls_back_without_an_active_key() {
    let store = MemoryStore::new();
    // Only a key that activates later (another server's clock is ahead).
    let future = Key::generate(SigningAlgorithm::Es256, NOW + 5, NOW + 5)
        .await
        .unwrap();
    store.put_key(future.to_stored()).await.unwrap();
    let keys = KeySet::load_or_create(&store, KeyPolicy::default(), NOW)
        .await
        .unwrap();
    assert_eq!(
        keys.active_kid(NOW).as_deref(),
        Some(future.material.kid.as_str())
    );
    let token = keys.sign("at+jwt", &json!({}), NOW).unwrap();
    assert!(keys.verify(&token).is_some());
}

#[tokio::test]
async fn keys_read_back_keep_their_kid_and_verify_old_tokens() {
    for alg in ALGS {
        let store = MemoryStore::new();
        let first = KeySet::load_or_create(&store, policy(alg), NOW)
            .await
            .unwrap();
        let token = first.sign("at+jwt", &json!({"sub": "alice"}), NOW).unwrap();
        let again = KeySet::load_or_create(&store, policy(alg), NOW + 5)
            .await
            .unwrap();
        assert_eq!(again.active_kid(NOW + 5), first.active_kid(NOW));
        assert_eq!(again.jwks_json(), first.jwks_json());
        assert_eq!(again.verify(&token).unwrap()["sub"], "alice");
    }
}

#[tokio::test]
async fn clones_share_state() {
    let store = MemoryStore::new();
    let keys = KeySet::load_or_create(&store, policy(SigningAlgorithm::Es256), NOW)
        .await
        .unwrap();
    let clone = keys.clone();
    let new = keys.rotate(&store, NOW).await.unwrap();
    assert_eq!(clone.active_kid(NOW + 100), Some(new));
    assert_eq!(clone.policy().publish_ahead, Duration::from_secs(100));
}
