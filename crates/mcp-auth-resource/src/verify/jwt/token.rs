//! The header gate: everything checked before a key is looked up.

use serde_json::{Map, Value};

use super::{alg::JwsAlgorithm, jwks::b64url_decode};
use crate::verify::{VerifyError, VerifyErrorKind};

/// The largest token accepted, in bytes. Larger ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What the header gate needs from the configuration.
#[derive(Debug, Clone)]
pub(super) struct HeaderPolicy {
    /// The algorithms tokens may use.
    pub(super) algorithms: Vec<JwsAlgorithm>,
    /// Whether `typ: JWT` (or no `typ`) is accepted besides `at+jwt`.
    pub(super) accept_jwt_typ: bool,
}

/// A token that passed the header gate.
#[derive(Debug)]
pub(super) struct Token<'t> {
    pub(super) alg: JwsAlgorithm,
    pub(super) kid: Option<String>,
    /// `header.payload`, the JWS signing input.
    pub(super) signing_input: &'t str,
    pub(super) payload: &'t str,
    pub(super) signature: &'t str,
}

fn is_b64url(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn err(kind: VerifyErrorKind) -> VerifyError {
    VerifyError::new(kind)
}

/// Decodes one base64url JSON-object segment.
pub(super) fn decode_object(segment: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = b64url_decode(segment).ok_or_else(|| err(VerifyErrorKind::Malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| err(VerifyErrorKind::Malformed))
}

/// Checks the shape and the header of a compact JWS, in this order: size, three base64url
/// segments, header JSON, `alg` (never `none`, in the allow-list), `crit` (refused), `typ`, `kid`.
pub(super) fn parse<'t>(token: &'t str, policy: &HeaderPolicy) -> Result<Token<'t>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(err(VerifyErrorKind::Malformed));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(VerifyErrorKind::Malformed));
    };
    if header.is_empty()
        || payload.is_empty()
        || !is_b64url(header)
        || !is_b64url(payload)
        || !is_b64url(signature)
    {
        return Err(err(VerifyErrorKind::Malformed));
    }
    let fields = decode_object(header)?;

    let alg = match fields.get("alg") {
        Some(Value::String(name)) => JwsAlgorithm::from_name(name)
            .filter(|alg| policy.algorithms.contains(alg))
            .ok_or_else(|| err(VerifyErrorKind::Algorithm))?,
        _ => return Err(err(VerifyErrorKind::Malformed)),
    };
    if fields.contains_key("crit") {
        return Err(err(VerifyErrorKind::Unsupported));
    }
    check_typ(fields.get("typ"), policy.accept_jwt_typ)?;
    let kid = match fields.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(err(VerifyErrorKind::Malformed)),
    };
    if signature.is_empty() {
        return Err(err(VerifyErrorKind::InvalidSignature));
    }
    Ok(Token {
        alg,
        kid,
        signing_input: &token[..header.len() + 1 + payload.len()],
        payload,
        signature,
    })
}

/// `typ` (RFC 9068 §2.1, RFC 7515 §4.1.9: media types are case-insensitive and the
/// `application/` prefix may be left out).
fn check_typ(typ: Option<&Value>, accept_jwt_typ: bool) -> Result<(), VerifyError> {
    let typ = match typ {
        None if accept_jwt_typ => return Ok(()),
        None => return Err(err(VerifyErrorKind::TokenType)),
        Some(Value::String(typ)) => typ,
        Some(_) => return Err(err(VerifyErrorKind::Malformed)),
    };
    let bare = if typ.len() > 12 && typ[..12].eq_ignore_ascii_case("application/") {
        &typ[12..]
    } else {
        typ.as_str()
    };
    if bare.eq_ignore_ascii_case("at+jwt") || (accept_jwt_typ && bare.eq_ignore_ascii_case("jwt")) {
        Ok(())
    } else {
        Err(err(VerifyErrorKind::TokenType))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        // Test-only encoder (unpadded base64url).
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in s.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    fn policy(accept_jwt_typ: bool) -> HeaderPolicy {
        HeaderPolicy {
            algorithms: JwsAlgorithm::ASYMMETRIC.to_vec(),
            accept_jwt_typ,
        }
    }

    fn kind(header: &str, accept_jwt_typ: bool) -> Option<VerifyErrorKind> {
        let token = format!("{}.{}.c2ln", b64(header), b64("{}"));
        parse(&token, &policy(accept_jwt_typ))
            .err()
            .map(|e| e.kind())
    }

    #[test]
    fn header_gate_table() {
        use VerifyErrorKind::*;
        let rows: &[(&str, bool, Option<VerifyErrorKind>)] = &[
            (r#"{"alg":"ES256","typ":"at+jwt"}"#, false, None),
            (r#"{"alg":"ES256","typ":"application/AT+JWT"}"#, false, None),
            (r#"{"alg":"ES256","typ":"JWT"}"#, false, Some(TokenType)),
            (r#"{"alg":"ES256"}"#, false, Some(TokenType)),
            (r#"{"alg":"ES256","typ":"JWT"}"#, true, None),
            (r#"{"alg":"ES256"}"#, true, None),
            (
                r#"{"alg":"ES256","typ":"id_token+jwt"}"#,
                true,
                Some(TokenType),
            ),
            (r#"{"alg":"ES256","typ":7}"#, true, Some(Malformed)),
            (r#"{"alg":"none","typ":"at+jwt"}"#, false, Some(Algorithm)),
            (r#"{"alg":"HS256","typ":"at+jwt"}"#, false, Some(Algorithm)),
            (r#"{"alg":"es256","typ":"at+jwt"}"#, false, Some(Algorithm)),
            (r#"{"typ":"at+jwt"}"#, false, Some(Malformed)),
            (
                r#"{"alg":"ES256","typ":"at+jwt","crit":["exp"]}"#,
                false,
                Some(Unsupported),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":1}"#,
                false,
                Some(Malformed),
            ),
            (r#"["alg"]"#, false, Some(Malformed)),
        ];
        for (header, lenient, want) in rows {
            assert_eq!(kind(header, *lenient), *want, "{header} lenient={lenient}");
        }
    }

    #[test]
    fn shape_is_checked_first() {
        let p = policy(true);
        let good = b64(r#"{"alg":"ES256"}"#);
        for token in [
            String::new(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{good}..c2ln"),
            format!("{good}.e30=.c2ln"),
            format!("{good}.e30.c2 ln"),
            format!("{good}.e30.{}", "A".repeat(MAX_TOKEN_BYTES)),
        ] {
            assert_eq!(
                parse(&token, &p).unwrap_err().kind(),
                VerifyErrorKind::Malformed,
                "{token:.40}"
            );
        }
        assert_eq!(
            parse(&format!("{good}.e30."), &p).unwrap_err().kind(),
            VerifyErrorKind::InvalidSignature
        );
        let token = format!("{good}.e30.c2ln");
        let ok = parse(&token, &p).unwrap();
        assert_eq!(ok.signing_input, format!("{good}.e30"));
        assert_eq!(ok.signature, "c2ln");
    }
}
