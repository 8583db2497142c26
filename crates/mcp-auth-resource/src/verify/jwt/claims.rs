//! Claim checks (RFC 9068 §4, RFC 7519 §4.1) and the [`AuthInfo`] they produce.

use mcp_auth_core::{ResourceId, ScopeSet};
use serde_json::{Map, Value};

use crate::{
    AuthInfo, VerifyError, VerifyErrorKind, verify::claims::audiences,
    verify::claims::check_confirmation, verify::claims::client_id, verify::claims::collect_scopes,
    verify::claims::is_after_leeway, verify::claims::numeric_date,
};

/// What the claim checks need from the configuration.
#[derive(Debug, Clone)]
pub(super) struct ClaimPolicy {
    pub(super) issuer: String,
    pub(super) audience: ResourceId,
    /// Further `aud` values accepted by exact string match (opt-in, e.g. Entra ID's client GUID).
    pub(super) extra_audiences: Vec<String>,
    pub(super) leeway_secs: u64,
    pub(super) required: Vec<String>,
}

fn err(kind: VerifyErrorKind) -> VerifyError {
    VerifyError::new(kind)
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(VerifyErrorKind::Malformed)),
    }
}

/// Checks the claims of a token whose signature verified, at `now` (Unix seconds).
///
/// Order: `cnf`, `iss`, `aud`, `exp`, `nbf`, `iat`, other registered claim types, required claims.
/// `nbf` and `iat` further in the future than the leeway are [`VerifyErrorKind::NotYetValid`]: a
/// token "issued" after now comes from an issuer whose clock is off, or was minted ahead of time
/// to be used later; either way it is not valid yet.
pub(super) fn check(
    policy: &ClaimPolicy,
    now: u64,
    claims: Map<String, Value>,
) -> Result<AuthInfo, VerifyError> {
    check_confirmation(&claims).map_err(err)?;
    match claims.get("iss") {
        None => return Err(err(VerifyErrorKind::MissingClaim)),
        Some(Value::String(iss)) if *iss == policy.issuer => {}
        Some(_) => return Err(err(VerifyErrorKind::Issuer)),
    }
    let audience = claims
        .get("aud")
        .ok_or_else(|| err(VerifyErrorKind::MissingClaim))
        .and_then(|aud| audiences(aud).ok_or_else(|| err(VerifyErrorKind::Audience)))?;
    if !audience
        .iter()
        .any(|aud| policy.audience.matches(aud) || policy.extra_audiences.iter().any(|a| a == aud))
    {
        return Err(err(VerifyErrorKind::Audience));
    }
    let exp = claims
        .get("exp")
        .and_then(numeric_date)
        .ok_or_else(|| err(VerifyErrorKind::MissingClaim))?;
    if now >= exp.saturating_add(policy.leeway_secs) {
        return Err(err(VerifyErrorKind::Expired));
    }
    match claims.get("nbf") {
        None => {}
        Some(v) => {
            let nbf = numeric_date(v).ok_or_else(|| err(VerifyErrorKind::Malformed))?;
            if is_after_leeway(nbf, now, policy.leeway_secs) {
                return Err(err(VerifyErrorKind::NotYetValid));
            }
        }
    }
    let issued_at = match claims.get("iat") {
        None => None,
        Some(v) => {
            let iat = numeric_date(v).ok_or_else(|| err(VerifyErrorKind::Malformed))?;
            if is_after_leeway(iat, now, policy.leeway_secs) {
                return Err(err(VerifyErrorKind::NotYetValid));
            }
            Some(iat)
        }
    };
    let subject = optional_string(&claims, "sub")?;
    let jwt_id = optional_string(&claims, "jti")?;
    let client_id = client_id(&claims).map(str::to_owned);
    for name in &policy.required {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(err(VerifyErrorKind::MissingClaim));
        }
    }

    let mut scopes = ScopeSet::new();
    collect_scopes(claims.get("scope"), &mut scopes);
    collect_scopes(claims.get("scp"), &mut scopes);

    let mut info = AuthInfo::builder()
        .issuer(policy.issuer.clone())
        .audience(audience)
        .scopes(scopes)
        .expires_at(exp);
    if let Some(sub) = subject {
        info = info.subject(sub);
    }
    if let Some(client_id) = client_id {
        info = info.client_id(client_id);
    }
    if let Some(iat) = issued_at {
        info = info.issued_at(iat);
    }
    if let Some(jti) = jwt_id {
        info = info.jwt_id(jti);
    }
    Ok(info.claims(claims).build())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: "https://auth.example.com".to_owned(),
            audience: ResourceId::parse("https://mcp.example.com/mcp").unwrap(),
            extra_audiences: Vec::new(),
            leeway_secs: 60,
            required: vec![],
        }
    }

    fn base() -> Map<String, Value> {
        json!({
            "iss": "https://auth.example.com",
            "aud": "https://mcp.example.com/mcp",
            "exp": NOW + 600,
            "sub": "alice",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut claims = base();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.remove(k);
            } else {
                claims.insert(k.clone(), v.clone());
            }
        }
        claims
    }

    fn kind(changes: Value) -> Option<VerifyErrorKind> {
        check(&policy(), NOW, with(changes)).err().map(|e| e.kind())
    }

    #[test]
    fn claim_matrix() {
        use VerifyErrorKind::*;
        let rows = [
            (json!({}), None),
            (json!({"exp": null}), Some(MissingClaim)),
            (json!({"exp": "soon"}), Some(MissingClaim)),
            (json!({"exp": NOW - 61}), Some(Expired)),
            (json!({"exp": NOW - 59}), None),
            (json!({"exp": NOW - 60}), Some(Expired)),
            (json!({"exp": -5}), Some(Expired)),
            (json!({"exp": (NOW + 10) as f64 + 0.5}), None),
            (json!({"nbf": NOW + 61}), Some(NotYetValid)),
            (json!({"nbf": NOW + 60}), None),
            (json!({"nbf": "x"}), Some(Malformed)),
            (json!({"iss": null}), Some(MissingClaim)),
            (json!({"iss": "https://auth.example.com/"}), Some(Issuer)),
            (json!({"iss": ["https://auth.example.com"]}), Some(Issuer)),
            (json!({"aud": null}), Some(MissingClaim)),
            (
                json!({"aud": "https://mcp.example.com/mcp/"}),
                Some(Audience),
            ),
            (json!({"aud": "HTTPS://MCP.example.com:443/mcp"}), None),
            (
                json!({"aud": ["https://other.example", "https://mcp.example.com/mcp"]}),
                None,
            ),
            (json!({"aud": ["https://other.example"]}), Some(Audience)),
            (json!({"aud": []}), Some(Audience)),
            (
                json!({"aud": ["https://mcp.example.com/mcp", 1]}),
                Some(Audience),
            ),
            (json!({"aud": 1}), Some(Audience)),
            (json!({"cnf": {"jkt": "x"}}), None),
            (json!({"cnf": {"jkt": 7}}), Some(Malformed)),
            (json!({"cnf": {"jkt": ""}}), Some(Malformed)),
            (json!({"cnf": "x"}), Some(Malformed)),
            (json!({"cnf": {"x5t#S256": "x"}}), Some(Unsupported)),
            (
                json!({"cnf": {"jkt": "x", "x5t#S256": "y"}}),
                Some(Unsupported),
            ),
            (json!({"sub": 1}), Some(Malformed)),
            (json!({"iat": "x"}), Some(Malformed)),
            (json!({"iat": NOW + 61}), Some(NotYetValid)),
            (json!({"iat": NOW + 60}), None),
            (json!({"iat": NOW - 3600}), None),
            (json!({"iat": (NOW + 61) as f64 + 0.5}), Some(NotYetValid)),
        ];
        for (changes, want) in rows {
            assert_eq!(kind(changes.clone()), want, "{changes}");
        }
    }

    #[test]
    fn origin_only_audience_ignores_a_trailing_slash() {
        let mut p = policy();
        p.audience = ResourceId::parse("https://mcp.example.com").unwrap();
        for aud in ["https://mcp.example.com", "https://mcp.example.com/"] {
            assert!(check(&p, NOW, with(json!({ "aud": aud }))).is_ok(), "{aud}");
        }
    }

    #[test]
    fn scopes_and_client_id() {
        let info = check(
            &policy(),
            NOW,
            with(json!({
                "scope": "a  b bad\"scope",
                "scp": ["c", "a", "in valid", 7],
                "azp": "azp-client",
                "iat": NOW,
                "jti": "j1",
            })),
        )
        .unwrap();
        assert_eq!(info.scopes().to_string(), "a b c");
        assert_eq!(info.client_id(), Some("azp-client"));
        assert_eq!(info.subject(), Some("alice"));
        assert_eq!(info.issued_at_unix(), Some(NOW));
        assert_eq!(info.jwt_id(), Some("j1"));
        assert_eq!(info.expires_at_unix(), Some(NOW + 600));
        assert_eq!(info.issuer(), Some("https://auth.example.com"));
        assert_eq!(info.claim("azp"), Some(&json!("azp-client")));

        let info = check(
            &policy(),
            NOW,
            with(json!({"client_id": "c1", "azp": "x", "scp": "s t"})),
        )
        .unwrap();
        assert_eq!(info.client_id(), Some("c1"));
        assert_eq!(info.scopes().to_string(), "s t");
    }

    #[test]
    fn required_claims() {
        let mut p = policy();
        p.required = vec!["jti".to_owned()];
        assert_eq!(
            check(&p, NOW, base()).unwrap_err().kind(),
            VerifyErrorKind::MissingClaim
        );
        assert!(check(&p, NOW, with(json!({"jti": "x"}))).is_ok());
    }
}
