//! What the two redirect logins ([`OidcLogin`](super::OidcLogin) and
//! [`OAuth2Login`](super::OAuth2Login)) share: the upstream authorization URL, the optional
//! admission rules, and the display name taken from the provider's claims.

use serde_json::{Map, Value};

use crate::upstream::{UpstreamError, UpstreamRequest};

/// The optional admission rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Admission {
    pub(crate) email_domains: Vec<String>,
    pub(crate) subjects: Vec<String>,
    pub(crate) claim: Option<(String, String)>,
}

/// The admission rules; `Err` says why the user is refused.
pub(crate) fn admit(
    rules: &Admission,
    sub: &str,
    claims: &Map<String, Value>,
) -> Result<(), UpstreamError> {
    if !rules.subjects.is_empty() && !rules.subjects.iter().any(|s| s == sub) {
        return Err(UpstreamError::Refused(
            "Your account is not on the list of accounts allowed to sign in here.".into(),
        ));
    }
    if !rules.email_domains.is_empty() {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            // Some providers (Cognito) send the boolean as a string.
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let email = claims.get("email").and_then(Value::as_str);
        let Some(email) = email.filter(|_| verified) else {
            return Err(UpstreamError::Refused(
                "Your account has no verified email address, and sign-ins here are limited by email domain.".into(),
            ));
        };
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if !rules.email_domains.contains(&domain) {
            return Err(UpstreamError::Refused(format!(
                "Sign-ins here are limited to accounts at {}.",
                rules.email_domains.join(", ")
            )));
        }
    }
    if let Some((claim, value)) = &rules.claim {
        let holds = match claims.get(claim) {
            Some(Value::String(s)) => s == value,
            Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(value)),
            _ => false,
        };
        if !holds {
            return Err(UpstreamError::Refused(format!(
                "Your account lacks the {value} membership ({claim}) required to sign in here."
            )));
        }
    }
    Ok(())
}

/// A name to show: `name`, else `preferred_username`, else `email`.
pub(crate) fn display_name(claims: &Map<String, Value>, field: &str) -> Option<String> {
    [field, "name", "preferred_username", "login", "email"]
        .iter()
        .find_map(|f| claims.get(*f).and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(200).collect())
}

/// The authorization URL: `base` with the protocol's parameters and the extra ones.
pub(crate) fn authorization_url(
    base: &url::Url,
    client_id: &str,
    scope: &str,
    request: &UpstreamRequest,
    nonce: bool,
    extra: &[(String, String)],
) -> String {
    const OURS: [&str; 8] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ];
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", request.redirect_uri());
        if !scope.is_empty() {
            q.append_pair("scope", scope);
        }
        q.append_pair("state", request.state());
        if nonce {
            q.append_pair("nonce", request.nonce());
        }
        q.append_pair("code_challenge", &request.code_challenge())
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            if !OURS.contains(&k.as_str()) {
                q.append_pair(k, v);
            }
        }
    }
    url.into()
}
