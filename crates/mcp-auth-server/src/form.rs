//! Strict parameter parsing for the OAuth endpoints (AS-22): duplicated parameters are refused,
//! empty values count as omitted, unknown parameters are ignored; reading a form body.

use std::borrow::Cow;

use crate::error::OAuthError;

/// Parsed `application/x-www-form-urlencoded` parameters (a body or a query string).
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub(crate) pairs: Vec<(String, String)>,
    duplicates: Vec<String>,
}

impl Params {
    /// Parse; remembers the duplicated names instead of failing, so the caller decides
    /// when a duplicate is fatal (the authorization endpoint must first know whether it may
    /// redirect).
    pub(crate) fn parse(input: &[u8]) -> Self {
        let mut params = Self::default();
        for (name, value) in url::form_urlencoded::parse(input) {
            if value.is_empty() {
                continue;
            }
            if params.pairs.iter().any(|(n, _)| *n == name) {
                if !params.duplicates.iter().any(|d| *d == name) {
                    params.duplicates.push(name.into_owned());
                }
                continue;
            }
            params.pairs.push((name.into_owned(), value.into_owned()));
        }
        params
    }

    /// Parse and refuse duplicates with `invalid_request`.
    pub(crate) fn parse_strict(input: &[u8]) -> Result<Self, OAuthError> {
        let params = Self::parse(input);
        params.check_duplicates()?;
        Ok(params)
    }

    /// `invalid_request` if a parameter was given twice; `invalid_target` if that parameter is
    /// `resource` (RFC 8707 §2: this server issues each token for one resource).
    pub(crate) fn check_duplicates(&self) -> Result<(), OAuthError> {
        if self.is_duplicated("resource") {
            return Err(OAuthError::new(
                mcp_auth_core::error::ErrorCode::InvalidTarget,
                "one resource per request: this server issues each token for a single resource",
            ));
        }
        match self.duplicates.first() {
            Some(name) => Err(OAuthError::invalid_request(format!(
                "parameter {name} was given more than once"
            ))),
            None => Ok(()),
        }
    }

    /// Whether `name` was given more than once.
    pub(crate) fn is_duplicated(&self, name: &str) -> bool {
        self.duplicates.iter().any(|d| d == name)
    }

    /// A parameter's value (non-empty), if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required parameter, or `invalid_request` naming it.
    pub(crate) fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(Cow::Owned(format!("missing parameter {name}")))
        })
    }
}

/// Read the form body of a POST: `application/x-www-form-urlencoded`, no duplicated
/// parameters (AS-22). The size is bounded by the route's `RequestBodyLimitLayer`; a body over
/// it (or one that breaks off) is 413 `invalid_request`.
pub(crate) async fn read_form(
    request: axum::extract::Request,
) -> Result<(http::request::Parts, Params), OAuthError> {
    let (parts, body) = request.into_parts();
    if !crate::http::is_form(&parts.headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_body(body).await?;
    let params = Params::parse_strict(&bytes)?;
    Ok((parts, params))
}

/// The whole body, under the route's `RequestBodyLimitLayer` (which wraps it in a limited
/// body): over the limit, 413 `invalid_request`.
pub(crate) async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, OAuthError> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| OAuthError::too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_omitted() {
        let p = Params::parse(b"a=&b=1");
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("1"));
        assert!(p.check_duplicates().is_ok());
    }

    #[test]
    fn duplicates_are_refused_by_name() {
        let p = Params::parse(b"code=1&code=2&x=y");
        let e = p.check_duplicates().unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
        assert!(e.description.contains("code"), "{}", e.description);
        assert!(p.is_duplicated("code"));
        assert!(!p.is_duplicated("x"));
        assert!(Params::parse_strict(b"code=1&code=2").is_err());
    }

    #[test]
    fn several_resources_are_invalid_target() {
        let e = Params::parse_strict(b"grant_type=x&resource=a&resource=b").unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
        let e = Params::parse_strict(b"code=1&code=2&resource=a&resource=b").unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_target");
    }

    #[test]
    fn values_are_percent_decoded() {
        let p = Params::parse(b"redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=a+b");
        assert_eq!(p.get("redirect_uri"), Some("http://127.0.0.1/cb"));
        assert_eq!(p.get("scope"), Some("a b"));
    }
}
