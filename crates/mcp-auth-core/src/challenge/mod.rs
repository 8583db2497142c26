//! `WWW-Authenticate` challenges: one builder and one parser for the whole workspace.
//!
//! The parser follows RFC 9110 §11.6.1: a header holds one or more challenges separated by commas,
//! each an auth-scheme (case-insensitive) followed by either a token68 or a comma-separated list of
//! `name=value` parameters whose values are tokens or quoted strings with `\` escapes. It never
//! panics: any input gives either challenges or a [`ParseError`].
//!
//! [`DpopChallenge`] builds the RFC 9449 §7.1 `DPoP` challenge (the same parameters and `algs`).
//!
//! [`BearerChallenge`] builds the RFC 6750 §3 `Bearer` challenge with the RFC 9728 §5.1
//! `resource_metadata` parameter. Each parameter appears at most once (SPEC RS-18), in the order it
//! was first set, so headers are byte-for-byte stable.
//!
//! # Example
//!
//! ```
//! use mcp_auth_core::challenge::{BearerChallenge, parse};
//! use mcp_auth_core::error::ErrorCode;
//!
//! let header = BearerChallenge::new()
//!     .error(ErrorCode::InsufficientScope)
//!     .scope(&"files:read files:write".parse()?)
//!     .resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
//!     .to_string();
//! assert_eq!(
//!     header,
//!     r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
//! );
//!
//! // A client reads it back, even among other challenges.
//! let challenges = parse(&format!(r#"Basic realm="x", {header}"#))?;
//! let bearer = BearerChallenge::find(&challenges).expect("a Bearer challenge");
//! assert_eq!(bearer.error_code(), Some(ErrorCode::InsufficientScope));
//! assert_eq!(bearer.scopes().map(|s| s.to_string()).as_deref(), Some("files:read files:write"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod parse;

pub use self::{
    build::{BearerChallenge, DpopChallenge},
    parse::{ParseError, parse},
};

use std::fmt;

/// One challenge: a scheme and either a token68 or parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge with no parameters.
    ///
    /// The scheme should be an RFC 9110 token; characters that are not are dropped when printed.
    #[must_use]
    pub fn new(scheme: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            token68: None,
            params: Vec::new(),
        }
    }

    /// The auth-scheme, as written.
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme`, compared case-insensitively (RFC 9110 §11.1).
    #[must_use]
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68, if the challenge carries one instead of parameters.
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The parameters in order, names as written and values unescaped.
    #[must_use]
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The first value of a parameter, its name compared case-insensitively (RFC 9110 §11.2).
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a parameter: replaces the value of an existing one (keeping its place) or appends it.
    pub fn set_param(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        if let Some(slot) = self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            slot.1 = value;
        } else {
            self.params.push((name, value));
        }
        self.token68 = None;
    }

    /// Replaces the parameters by a token68.
    pub fn set_token68(&mut self, token68: impl Into<String>) {
        self.token68 = Some(token68.into());
        self.params.clear();
    }
}

pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_token68_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
}

/// Writes `value` as an RFC 9110 quoted-string. Characters a header cannot carry (controls other
/// than tab, DEL, non-ASCII) are written as `?`.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                f.write_str("\\")?;
                fmt::Write::write_char(f, c)?;
            }
            ' ' | '\t' | '!'..='~' => fmt::Write::write_char(f, c)?,
            _ => f.write_str("?")?,
        }
    }
    f.write_str("\"")
}

fn write_token(f: &mut fmt::Formatter<'_>, token: &str, allowed: fn(u8) -> bool) -> fmt::Result {
    for b in token.bytes().filter(|b| allowed(*b)) {
        fmt::Write::write_char(f, char::from(b))?;
    }
    Ok(())
}

/// Prints the challenge in RFC 9110 syntax; parameter values are always quoted strings.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_token(f, &self.scheme, is_tchar)?;
        if let Some(t) = &self.token68 {
            f.write_str(" ")?;
            let body = t.trim_end_matches('=');
            write_token(f, body, is_token68_char)?;
            for _ in 0..(t.len() - body.len()) {
                f.write_str("=")?;
            }
            return Ok(());
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write_token(f, name, is_tchar)?;
            f.write_str("=")?;
            write_quoted(f, value)?;
        }
        Ok(())
    }
}

/// Prints several challenges as one header value, separated by `, `.
#[must_use]
pub fn to_header_string(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
