//! The RFC 6750 `Bearer` and RFC 9449 `DPoP` challenges.

use std::fmt;

use http::HeaderValue;

use super::Challenge;
use crate::{ScopeSet, error::ErrorCode};

/// The `Bearer` challenge of RFC 6750 §3, with RFC 9728's `resource_metadata`.
///
/// Setters replace an earlier value, so each parameter appears once (SPEC RS-18); parameters are
/// printed in the order they were first set. See the [module docs](crate::challenge) for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge(Challenge);

/// The parameters every RFC 6750-style challenge shares (`Bearer`, `DPoP`).
macro_rules! common_challenge {
    ($ty:ident, $scheme:literal) => {
        impl $ty {
            #[doc = concat!("`", $scheme, "` with no parameters.")]
            #[must_use]
            pub fn new() -> Self {
                Self(Challenge::new($scheme))
            }

            /// Sets `realm`.
            #[must_use]
            pub fn realm(mut self, realm: &str) -> Self {
                self.0.set_param("realm", realm);
                self
            }

            /// Sets `resource_metadata`: the URL of the protected resource metadata (RFC 9728 §5.1).
            #[must_use]
            pub fn resource_metadata(mut self, url: &str) -> Self {
                self.0.set_param("resource_metadata", url);
                self
            }

            /// Sets `scope`. An empty set removes nothing and adds nothing.
            #[must_use]
            pub fn scope(mut self, scope: &ScopeSet) -> Self {
                if !scope.is_empty() {
                    self.0.set_param("scope", scope.to_string());
                }
                self
            }

            /// Sets `error`.
            #[must_use]
            pub fn error(mut self, code: ErrorCode) -> Self {
                self.0.set_param("error", sanitize(code.as_str()));
                self
            }

            /// Sets `error_description`. Characters RFC 6750 §3 does not allow become `?`.
            #[must_use]
            pub fn error_description(mut self, text: &str) -> Self {
                self.0.set_param("error_description", sanitize(text));
                self
            }

            /// Sets `error_uri`.
            #[must_use]
            pub fn error_uri(mut self, uri: &str) -> Self {
                self.0.set_param("error_uri", sanitize(uri));
                self
            }

            /// The first challenge of this scheme among `challenges`.
            #[must_use]
            pub fn find(challenges: &[Challenge]) -> Option<Self> {
                challenges
                    .iter()
                    .find(|c| c.is_scheme($scheme))
                    .cloned()
                    .map(Self)
            }

            /// Reads a challenge as one of this scheme; `None` for another scheme.
            #[must_use]
            pub fn from_challenge(challenge: Challenge) -> Option<Self> {
                challenge.is_scheme($scheme).then_some(Self(challenge))
            }

            /// `realm`, if present.
            #[must_use]
            pub fn realm_value(&self) -> Option<&str> {
                self.0.param("realm")
            }

            /// `resource_metadata`, if present.
            #[must_use]
            pub fn resource_metadata_url(&self) -> Option<&str> {
                self.0.param("resource_metadata")
            }

            /// `scope`, if present and made of valid scope tokens.
            #[must_use]
            pub fn scopes(&self) -> Option<ScopeSet> {
                self.0.param("scope").and_then(|s| ScopeSet::parse(s).ok())
            }

            /// `error`, if present.
            #[must_use]
            pub fn error_code(&self) -> Option<ErrorCode> {
                self.0.param("error").map(ErrorCode::from_wire)
            }

            /// `error_description`, if present.
            #[must_use]
            pub fn error_description_text(&self) -> Option<&str> {
                self.0.param("error_description")
            }

            /// The underlying generic challenge.
            #[must_use]
            pub fn as_challenge(&self) -> &Challenge {
                &self.0
            }

            /// The challenge as a header value.
            #[must_use]
            pub fn to_header_value(&self) -> HeaderValue {
                // Display writes only visible ASCII, spaces and tabs, so this cannot fail; fall
                // back to a bare scheme rather than panic if that ever changes.
                HeaderValue::try_from(self.to_string())
                    .unwrap_or_else(|_| HeaderValue::from_static($scheme))
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

common_challenge!(BearerChallenge, "Bearer");
common_challenge!(DpopChallenge, "DPoP");

/// The `DPoP` challenge of RFC 9449 §7.1: the same parameters as [`BearerChallenge`], plus
/// `algs`, the proof algorithms the resource accepts.
///
/// ```
/// use mcp_auth_core::challenge::{DpopChallenge, parse};
/// use mcp_auth_core::error::ErrorCode;
///
/// let header = DpopChallenge::new()
///     .error(ErrorCode::UseDpopNonce)
///     .error_description("A DPoP nonce is required")
///     .algs("ES256 EdDSA")
///     .to_string();
/// assert_eq!(
///     header,
///     r#"DPoP error="use_dpop_nonce", error_description="A DPoP nonce is required", algs="ES256 EdDSA""#,
/// );
/// let dpop = DpopChallenge::find(&parse(&format!(r#"Bearer realm="x", {header}"#))?).unwrap();
/// assert_eq!(dpop.error_code(), Some(ErrorCode::UseDpopNonce));
/// assert_eq!(dpop.algs_value(), Some("ES256 EdDSA"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopChallenge(Challenge);

impl DpopChallenge {
    /// Sets `algs`: space-separated JWS algorithm names.
    #[must_use]
    pub fn algs(mut self, algs: &str) -> Self {
        self.0.set_param("algs", sanitize(algs));
        self
    }

    /// `algs`, if present.
    #[must_use]
    pub fn algs_value(&self) -> Option<&str> {
        self.0.param("algs")
    }
}

/// RFC 6750 §3 limits `error`, `error_description` and `error_uri` to `%x20-21 / %x23-5B / %x5D-7E`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_token_challenge_matches_spec_rs14_byte_for_byte() {
        let h = BearerChallenge::new()
            .resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
            .scope(&ScopeSet::parse("files:read").unwrap());
        assert_eq!(
            h.to_string(),
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="files:read""#
        );
    }

    #[test]
    fn setting_twice_keeps_one_parameter_in_its_first_place() {
        let h = BearerChallenge::new()
            .error(ErrorCode::InvalidToken)
            .realm("r")
            .error(ErrorCode::InvalidRequest);
        assert_eq!(
            h.to_string(),
            r#"Bearer error="invalid_request", realm="r""#
        );
    }

    #[test]
    fn descriptions_cannot_break_out_of_the_quoted_string() {
        let h = BearerChallenge::new().error_description("x\", scope=\"admin");
        assert_eq!(
            h.to_string(),
            r#"Bearer error_description="x?, scope=?admin""#
        );
    }
}
