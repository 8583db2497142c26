//! Reading the registered claims both verifiers share: a JWT's payload (RFC 7519 / RFC 9068) and
//! an introspection response (RFC 7662 §2.2) name `exp`, `nbf`, `aud`, `scope` and the client the
//! same way, so they are read the same way.
#![cfg_attr(not(any(feature = "jwt", feature = "introspection")), allow(dead_code))]

use mcp_auth_core::{Scope, ScopeSet};
use serde_json::{Map, Value};

use super::VerifyErrorKind;

/// `cnf` (RFC 7800): a DPoP binding (`jkt`, RFC 9449 §6) is accepted, and kept in the claims
/// for the bearer layer, which checks the proof ([`AuthInfo::dpop_jkt`](crate::AuthInfo::dpop_jkt)). Any other confirmation
/// method (mTLS `x5t#S256`, ...) is [`Unsupported`](VerifyErrorKind::Unsupported): we cannot
/// check that binding, so the token must not be accepted at all.
pub(crate) fn check_confirmation(claims: &Map<String, Value>) -> Result<(), VerifyErrorKind> {
    match claims.get("cnf") {
        None => Ok(()),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if cnf.len() == 1 && !jkt.is_empty() => Ok(()),
            Some(_) if cnf.len() == 1 => Err(VerifyErrorKind::Malformed),
            _ => Err(VerifyErrorKind::Unsupported),
        },
        Some(_) => Err(VerifyErrorKind::Malformed),
    }
}

/// A NumericDate (RFC 7519 §2) as whole seconds: fractions are dropped, a negative date (long
/// past) is 0. `None` when the value is not a finite number.
pub(crate) fn numeric_date(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else {
        return None;
    };
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    if n.as_i64().is_some() {
        return Some(0);
    }
    let f = n.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    // Saturating float-to-int conversion.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(f.max(0.0) as u64)
}

/// Whether a NumericDate that must not lie ahead (`nbf`, `iat`) is further in the future than
/// `now` plus the clock-skew leeway (all in Unix seconds).
pub(crate) fn is_after_leeway(date: u64, now: u64, leeway_secs: u64) -> bool {
    date > now.saturating_add(leeway_secs)
}

/// The values of `aud`: a string or an array of strings. `None` for any other shape (an array
/// with a non-string entry included).
pub(crate) fn audiences(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(aud) => Some(vec![aud.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// Adds the scope tokens of one claim value to `into`: a space-delimited string, or an array
/// whose every string is one scope token. Invalid tokens are skipped.
pub(crate) fn collect_scopes(value: Option<&Value>, into: &mut ScopeSet) {
    let mut add = |token: &str| {
        if let Ok(scope) = Scope::new(token) {
            into.insert(scope);
        }
    };
    match value {
        Some(Value::String(s)) => s.split(' ').filter(|t| !t.is_empty()).for_each(&mut add),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut add),
        _ => {}
    }
}

/// The client the token was issued to: `client_id` (RFC 9068, RFC 7662), else `azp` (OpenID
/// Connect: Keycloak, Auth0, Entra ID), else `cid` (Okta).
pub(crate) fn client_id(claims: &Map<String, Value>) -> Option<&str> {
    ["client_id", "azp", "cid"]
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numeric_dates_drop_fractions_and_clamp_the_past_to_zero() {
        assert_eq!(numeric_date(&json!(10)), Some(10));
        assert_eq!(numeric_date(&json!(10.9)), Some(10));
        assert_eq!(numeric_date(&json!(-5)), Some(0));
        assert_eq!(numeric_date(&json!(-5.5)), Some(0));
        assert_eq!(numeric_date(&json!("10")), None);
        assert_eq!(numeric_date(&json!(null)), None);
    }

    #[test]
    fn dates_ahead_of_now_are_refused_only_beyond_the_leeway() {
        assert!(!is_after_leeway(100, 100, 0));
        assert!(is_after_leeway(101, 100, 0));
        assert!(!is_after_leeway(160, 100, 60));
        assert!(is_after_leeway(161, 100, 60));
        assert!(!is_after_leeway(0, 100, 60));
        assert!(!is_after_leeway(u64::MAX, u64::MAX, u64::MAX));
    }

    #[test]
    fn audiences_are_a_string_or_an_array_of_strings() {
        assert_eq!(audiences(&json!("a")), Some(vec!["a".to_owned()]));
        assert_eq!(
            audiences(&json!(["a", "b"])),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(audiences(&json!([])), Some(vec![]));
        assert_eq!(audiences(&json!(["a", 1])), None);
        assert_eq!(audiences(&json!(1)), None);
    }

    #[test]
    fn client_is_client_id_else_azp_else_cid() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            client_id(&m(json!({"client_id": "a", "azp": "b", "cid": "c"}))),
            Some("a")
        );
        assert_eq!(client_id(&m(json!({"azp": "b", "cid": "c"}))), Some("b"));
        assert_eq!(client_id(&m(json!({"cid": "c"}))), Some("c"));
        assert_eq!(client_id(&m(json!({"client_id": 1}))), None);
    }
}
