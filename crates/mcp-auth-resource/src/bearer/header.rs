//! Reading the access token of a request: the `Authorization` header (RFC 6750 §2.1, RFC 9110
//! §11.6.2), the `access_token` query parameter that is refused (RFC 6750 §2.3), and the
//! `b64token` syntax (rule 4 of the [module docs](super)).

use http::{Request, header::AUTHORIZATION};

use super::{BearerErrorKind, InvalidRequestKind};
use crate::{VerifyErrorKind, token_syntax::is_well_formed};

/// How the request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP` (only when the layer accepts DPoP).
    Dpop,
}

/// Finds the access token of a request and its scheme: `Ok(None)` when it has no credentials at
/// all. `accept_dpop`: the `DPoP` scheme is accepted besides `Bearer`.
///
/// Allocates nothing: the token borrows from the header.
/// The token comes back as the header's bytes, not yet checked against the `b64token` syntax
/// ([`checked`] does that): a verifier that remembers tokens it has seen may recognise it first
/// ([`TokenVerifier::recall`](crate::TokenVerifier::recall)).
pub(crate) fn credentials<B>(
    req: &Request<B>,
    accept_dpop: bool,
) -> Result<Option<(&[u8], Scheme)>, BearerErrorKind> {
    if req.uri().query().is_some_and(has_access_token_param) {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::TokenInQuery,
        ));
    }
    let mut values = req.headers().get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::DuplicateAuthorization,
        ));
    }
    split_authorization(value.as_bytes(), accept_dpop).map(Some)
}

/// Splits one `Authorization` value into its scheme and its (non-empty) token.
///
/// The scheme is case-insensitive (RFC 9110 §11.1); any run of spaces or tabs may separate it
/// from the token, and surrounding whitespace is ignored.
fn split_authorization(
    value: &[u8],
    accept_dpop: bool,
) -> Result<(&[u8], Scheme), BearerErrorKind> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
    }
    let (scheme, rest) = match value.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => value.split_at(i),
        None => (value, &[][..]),
    };
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if accept_dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::UnsupportedScheme,
        ));
    };
    let token = rest.trim_ascii_start();
    if token.is_empty() {
        return Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
    }
    Ok((token, scheme))
}

/// The token of [`credentials`] as a string, if it is a `b64token` of at most
/// 16 KiB (rule 4); otherwise it is malformed.
pub(crate) fn checked(token: &[u8]) -> Result<&str, BearerErrorKind> {
    if !is_well_formed(token) {
        return Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed));
    }
    // A `b64token` is ASCII, so this cannot fail; `from_utf8` is the safe way to say so.
    std::str::from_utf8(token)
        .map_err(|_| BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
}

/// Parses one `Authorization` value as `Bearer <b64token>` ([`split_authorization`], then
/// [`checked`]).
#[cfg(test)]
fn parse_authorization(value: &[u8], accept_dpop: bool) -> Result<(&str, Scheme), BearerErrorKind> {
    let (token, scheme) = split_authorization(value, accept_dpop)?;
    checked(token).map(|token| (token, scheme))
}

/// Whether the query has a parameter named `access_token` (RFC 6750 §2.3), percent-encoded or
/// not, with or without a value.
fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        is_access_token_name(name.as_bytes())
    })
}

fn is_access_token_name(name: &[u8]) -> bool {
    const NAME: &[u8] = b"access_token";
    if name == NAME {
        return true;
    }
    if !name.contains(&b'%') {
        return false;
    }
    // Decode %XX on the fly and compare.
    let mut decoded = NAME.iter();
    let mut i = 0;
    while i < name.len() {
        let byte = match name[i] {
            b'%' => match (hex(name.get(i + 1)), hex(name.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    i += 3;
                    hi << 4 | lo
                }
                _ => {
                    i += 1;
                    b'%'
                }
            },
            b => {
                i += 1;
                b
            }
        };
        if decoded.next() != Some(&byte) {
            return false;
        }
    }
    decoded.next().is_none()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_syntax::MAX_TOKEN_LEN;

    fn kind(value: &str) -> Result<&str, BearerErrorKind> {
        parse_authorization(value.as_bytes(), false).map(|(token, _)| token)
    }

    #[test]
    fn the_dpop_scheme_only_when_accepted() {
        assert_eq!(
            parse_authorization(b"DPoP abc", true),
            Ok(("abc", Scheme::Dpop))
        );
        assert_eq!(
            parse_authorization(b"dpop abc", true),
            Ok(("abc", Scheme::Dpop))
        );
        assert_eq!(
            parse_authorization(b"Bearer abc", true),
            Ok(("abc", Scheme::Bearer))
        );
        assert_eq!(
            parse_authorization(b"DPoP abc", false),
            Err(BearerErrorKind::InvalidRequest(
                InvalidRequestKind::UnsupportedScheme
            ))
        );
    }

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_runs_are_tolerated() {
        assert_eq!(kind("Bearer abc"), Ok("abc"));
        assert_eq!(kind("bearer abc"), Ok("abc"));
        assert_eq!(kind("BEARER abc"), Ok("abc"));
        assert_eq!(kind("Bearer \t  abc  "), Ok("abc"));
        assert_eq!(kind("  Bearer abc"), Ok("abc"));
    }

    #[test]
    fn b64token_allows_its_alphabet_and_trailing_padding_only() {
        assert_eq!(kind("Bearer aZ09-._~+/=="), Ok("aZ09-._~+/=="));
        let long = "a".repeat(100) + "/" + &"B".repeat(100);
        assert_eq!(kind(&format!("Bearer {long}")), Ok(long.as_str()));
        for bad in [
            "Bearer a b",
            "Bearer a=b",
            "Bearer ===",
            "Bearer a,b",
            "Bearer \"abc\"",
            "Bearer a@b",
            "Bearer a[b",
            "Bearer a{b",
            "Bearer a`b",
        ] {
            assert_eq!(
                kind(bad),
                Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed)),
                "{bad}"
            );
        }
        assert_eq!(
            parse_authorization(b"Bearer a\xC3\xA9b", false).map(|(t, _)| t),
            Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
        );
        // A bad byte deep inside a long token (past the first vector chunk) is found too.
        let mut long = "a".repeat(70);
        long.push('!');
        assert!(kind(&format!("Bearer {long}")).is_err());
    }

    #[test]
    fn oversized_tokens_are_malformed_without_reaching_the_verifier() {
        let token = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            kind(&format!("Bearer {token}")),
            Err(BearerErrorKind::InvalidToken(VerifyErrorKind::Malformed))
        );
    }

    #[test]
    fn empty_credentials_and_other_schemes_are_invalid_requests() {
        let empty = Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::EmptyCredentials,
        ));
        assert_eq!(kind(""), empty);
        assert_eq!(kind("Bearer"), empty);
        assert_eq!(kind("Bearer   "), empty);
        let scheme = Err(BearerErrorKind::InvalidRequest(
            InvalidRequestKind::UnsupportedScheme,
        ));
        assert_eq!(kind("Basic dXNlcjpwYXNz"), scheme);
        assert_eq!(kind("Bearerabc"), scheme);
        assert_eq!(kind("Bearer:abc"), scheme);
        assert_eq!(kind("DPoP abc"), scheme);
    }

    #[test]
    fn access_token_query_parameter_is_found_in_any_position_and_encoding() {
        for q in [
            "access_token=x",
            "a=1&access_token=x",
            "access_token",
            "access_token=",
            "a=1&access%5Ftoken=x",
            "%61ccess_token=x",
            "access_toke%6E=x",
        ] {
            assert!(has_access_token_param(q), "{q}");
        }
        for q in [
            "",
            "a=access_token",
            "access_tokens=x",
            "xaccess_token=x",
            "access+token=x",
            "access%5",
            "access_token%",
            "%",
        ] {
            assert!(!has_access_token_param(q), "{q}");
        }
    }
}
