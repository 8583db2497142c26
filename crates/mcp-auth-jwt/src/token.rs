//! The header gate: everything checked before a key is looked up.

use std::{borrow::Cow, fmt};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{VerifyError, VerifyErrorKind};
use crate::{alg::JwsAlgorithm, jwks::b64url_decode};

/// The largest token accepted, in bytes. Larger ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What the header gate needs from the configuration.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    /// The algorithms tokens may use.
    pub(crate) algorithms: Vec<JwsAlgorithm>,
    /// Whether `typ: JWT` (or no `typ`) is accepted besides `at+jwt`.
    pub(crate) accept_jwt_typ: bool,
    /// The explicit type required in place of `at+jwt` (RFC 8725 §3.11), without the
    /// `application/` prefix; `None`: `at+jwt`.
    pub(crate) typ: Option<String>,
}

impl HeaderPolicy {
    /// Tokens signed with one of `algorithms` (HMAC ones still need the verifier's secret);
    /// `accept_jwt_typ`: `typ: JWT` and no `typ` are accepted besides `at+jwt` (ID tokens and
    /// most providers' access tokens need it).
    #[must_use]
    pub fn new(algorithms: Vec<JwsAlgorithm>, accept_jwt_typ: bool) -> Self {
        Self {
            algorithms,
            accept_jwt_typ,
            typ: None,
        }
    }

    /// The policy of a JWS whose `typ` must be exactly `typ` (case-insensitive, with or without
    /// the `application/` prefix), e.g. `dpop+jwt`: no `typ: JWT`, no missing `typ`.
    pub(crate) fn exact_typ(algorithms: Vec<JwsAlgorithm>, typ: &'static str) -> Self {
        Self {
            algorithms,
            accept_jwt_typ: false,
            typ: Some(typ.to_owned()),
        }
    }

    /// Requires the explicit type `typ` in place of `at+jwt` (RFC 8725 §3.11 explicit typing),
    /// e.g. `oauth-id-jag+jwt` for identity assertion grants; compared case-insensitively, with
    /// or without the `application/` prefix. `typ: JWT` and no `typ` still pass when
    /// `accept_jwt_typ` was set.
    ///
    /// ```
    /// use mcp_auth_jwt::{HeaderPolicy, JwsAlgorithm};
    ///
    /// let policy = HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), false)
    ///     .with_typ("oauth-id-jag+jwt");
    /// assert_eq!(policy.typ(), "oauth-id-jag+jwt");
    /// ```
    #[must_use]
    pub fn with_typ(mut self, typ: impl Into<String>) -> Self {
        let typ = typ.into();
        let bare = match typ.get(..12) {
            Some(prefix) if typ.len() > 12 && prefix.eq_ignore_ascii_case("application/") => {
                typ[12..].to_owned()
            }
            _ => typ,
        };
        self.typ = Some(bare);
        self
    }

    /// The explicit type required (`at+jwt` unless [`with_typ`](Self::with_typ) said otherwise).
    #[must_use]
    pub fn typ(&self) -> &str {
        self.typ.as_deref().unwrap_or("at+jwt")
    }

    /// The allowed algorithms.
    #[must_use]
    pub fn algorithms(&self) -> &[JwsAlgorithm] {
        &self.algorithms
    }

    /// Whether `typ: JWT` (or none) is accepted.
    #[must_use]
    pub fn accepts_jwt_typ(&self) -> bool {
        self.accept_jwt_typ
    }
}

/// A token that passed the header gate.
#[derive(Debug)]
pub(crate) struct Token<'t> {
    pub(crate) alg: JwsAlgorithm,
    pub(crate) kid: Option<String>,
    /// The `jwk` header member, as sent (only DPoP proofs use it; RFC 9449 §4.2).
    pub(crate) jwk: Option<Value>,
    /// `header.payload`, the JWS signing input.
    pub(crate) signing_input: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
}

/// Whether every byte of `token` is a base64url character (RFC 4648 §5) or `.`: with the split
/// into exactly three segments, that is "every segment is base64url".
fn is_b64url_or_dot(token: &[u8]) -> bool {
    crate::ascii::all_bytes(token, b'A', |b| {
        (b.wrapping_sub(b'0') < 10)
            | ((b | 0x20).wrapping_sub(b'a') < 26)
            | (b == b'-')
            | (b == b'_')
            | (b == b'.')
    })
}

fn err(kind: VerifyErrorKind) -> VerifyError {
    VerifyError::new(kind)
}

/// Decodes one base64url JSON-object segment.
pub(crate) fn decode_object(segment: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = b64url_decode(segment).ok_or_else(|| err(VerifyErrorKind::Malformed))?;
    serde_json::from_slice(&bytes).map_err(|_| err(VerifyErrorKind::Malformed))
}

/// A JSON value in the header: a string (borrowed unless it has escapes) or anything else.
///
/// Every value is read with `deserialize_any`, all the way down, exactly as a
/// [`serde_json::Value`] would be (same string, escape, number and nesting checks), so a header
/// is accepted exactly when it parses as a JSON object, without building the object.
enum Member<'a> {
    Str(Cow<'a, str>),
    Other,
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Member<'de>>()?.is_some() {}
        Ok(Member::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<Member<'de>, Member<'de>>()?.is_some() {}
        Ok(Member::Other)
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

/// The header members the gate looks at. A repeated member counts with its last value, as in a
/// `serde_json::Map`.
#[derive(Default)]
struct Header<'a> {
    alg: Option<Member<'a>>,
    typ: Option<Member<'a>>,
    kid: Option<Member<'a>>,
    jwk: Option<Value>,
    crit: bool,
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut header = Header::default();
        while let Some(key) = map.next_key::<Member<'de>>()? {
            let Member::Str(key) = key else {
                map.next_value::<Member<'de>>()?;
                continue;
            };
            match &*key {
                // Read whole (same checks as any other value): a DPoP proof's key.
                "jwk" => header.jwk = Some(map.next_value::<Value>()?),
                "alg" => header.alg = Some(map.next_value()?),
                "typ" => header.typ = Some(map.next_value()?),
                "kid" => header.kid = Some(map.next_value()?),
                "crit" => {
                    map.next_value::<Member<'de>>()?;
                    header.crit = true;
                }
                _ => {
                    map.next_value::<Member<'de>>()?;
                }
            }
        }
        Ok(header)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// Checks the shape and the header of a compact JWS, in this order: size, three base64url
/// segments, header JSON, `alg` (never `none`, in the allow-list), `crit` (refused), `typ`, `kid`.
pub(crate) fn parse<'t>(token: &'t str, policy: &HeaderPolicy) -> Result<Token<'t>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(err(VerifyErrorKind::Malformed));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(VerifyErrorKind::Malformed));
    };
    if header.is_empty() || payload.is_empty() || !is_b64url_or_dot(token.as_bytes()) {
        return Err(err(VerifyErrorKind::Malformed));
    }
    let bytes = b64url_decode(header).ok_or_else(|| err(VerifyErrorKind::Malformed))?;
    let fields: Header<'_> =
        serde_json::from_slice(&bytes).map_err(|_| err(VerifyErrorKind::Malformed))?;

    let alg = match &fields.alg {
        Some(Member::Str(name)) => JwsAlgorithm::from_name(name)
            .filter(|alg| policy.algorithms.contains(alg))
            .ok_or_else(|| err(VerifyErrorKind::Algorithm))?,
        _ => return Err(err(VerifyErrorKind::Malformed)),
    };
    if fields.crit {
        return Err(err(VerifyErrorKind::Unsupported));
    }
    check_typ(fields.typ.as_ref(), policy.typ(), policy.accept_jwt_typ)?;
    let kid = match fields.kid {
        None => None,
        Some(Member::Str(kid)) => Some(kid.into_owned()),
        Some(Member::Other) => return Err(err(VerifyErrorKind::Malformed)),
    };
    if signature.is_empty() {
        return Err(err(VerifyErrorKind::InvalidSignature));
    }
    Ok(Token {
        alg,
        kid,
        jwk: fields.jwk,
        signing_input: &token[..header.len() + 1 + payload.len()],
        payload,
        signature,
    })
}

/// Strips the optional `application/` prefix of a media type (RFC 7515 §4.1.9).
fn bare_media_type(typ: &str) -> &str {
    // `get` (not `[..12]`): a multi-byte character across byte 12 is no prefix, not a panic.
    match typ.get(..12) {
        Some(prefix) if typ.len() > 12 && prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    }
}

/// `typ` (RFC 9068 §2.1, RFC 7515 §4.1.9: media types are case-insensitive and the
/// `application/` prefix may be left out).
fn check_typ(
    typ: Option<&Member<'_>>,
    expected: &str,
    accept_jwt_typ: bool,
) -> Result<(), VerifyError> {
    let typ: &str = match typ {
        None if accept_jwt_typ => return Ok(()),
        None => return Err(err(VerifyErrorKind::TokenType)),
        Some(Member::Str(typ)) => typ,
        Some(Member::Other) => return Err(err(VerifyErrorKind::Malformed)),
    };
    let bare = bare_media_type(typ);
    if bare.eq_ignore_ascii_case(expected) || (accept_jwt_typ && bare.eq_ignore_ascii_case("jwt")) {
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
        HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), accept_jwt_typ)
    }

    #[test]
    fn an_explicit_type_replaces_at_jwt() {
        let token = |header: &str| format!("{}.{}.c2ln", b64(header), b64("{}"));
        let jag = HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), false)
            .with_typ("application/oauth-id-jag+jwt");
        assert_eq!(jag.typ(), "oauth-id-jag+jwt");
        assert!(parse(&token(r#"{"alg":"ES256","typ":"oauth-id-jag+jwt"}"#), &jag).is_ok());
        assert!(
            parse(
                &token(r#"{"alg":"ES256","typ":"application/OAUTH-ID-JAG+JWT"}"#),
                &jag
            )
            .is_ok()
        );
        for refused in [
            r#"{"alg":"ES256","typ":"at+jwt"}"#,
            r#"{"alg":"ES256","typ":"JWT"}"#,
            r#"{"alg":"ES256"}"#,
        ] {
            assert_eq!(
                parse(&token(refused), &jag).unwrap_err().kind(),
                VerifyErrorKind::TokenType,
                "{refused}"
            );
        }
        let lenient = HeaderPolicy::new(JwsAlgorithm::ASYMMETRIC.to_vec(), true)
            .with_typ("client-authentication+jwt");
        assert!(parse(&token(r#"{"alg":"ES256","typ":"JWT"}"#), &lenient).is_ok());
        assert!(parse(&token(r#"{"alg":"ES256"}"#), &lenient).is_ok());
        assert!(parse(&token(r#"{"alg":"ES256","typ":"at+jwt"}"#), &lenient).is_err());
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
            // A repeated member counts with its last value (as in a `serde_json::Map`).
            (
                r#"{"alg":"HS256","alg":"ES256","typ":"at+jwt"}"#,
                false,
                None,
            ),
            (r#"{"\u0061lg":"ES256","t\u0079p":"at+jwt"}"#, false, None),
            (
                r#"{"alg":"ES256","typ":"at+jwt","x":{"y":[1,-2,2.5e3,null,true,"\u00e9"]}}"#,
                false,
                None,
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","crit":null}"#,
                false,
                Some(Unsupported),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","x":"\ud800"}"#,
                false,
                Some(Malformed),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt"} x"#,
                false,
                Some(Malformed),
            ),
            (
                r#"{"alg":"ES256","typ":"at+jwt","x":1e999}"#,
                false,
                Some(Malformed),
            ),
            (
                r#"{"alg":"ES256","typ":"applicationé/at+jwt"}"#,
                false,
                Some(TokenType),
            ),
            (r#"{"alg":null,"typ":"at+jwt"}"#, false, Some(Malformed)),
            (r#"{"alg":"ES256","typ":null}"#, true, Some(Malformed)),
            (
                r#"{"alg":"ES256","typ":"at+jwt","kid":"k\"1"}"#,
                false,
                None,
            ),
        ];
        for (header, lenient, want) in rows {
            assert_eq!(kind(header, *lenient), *want, "{header} lenient={lenient}");
        }
    }

    /// The header gate accepts exactly the headers a `serde_json::Map` accepts.
    #[test]
    fn header_parses_like_a_json_object() {
        let mut deep = String::from(r#"{"alg":"ES256","x":"#);
        deep.push_str(&"[".repeat(200));
        deep.push_str(&"]".repeat(200));
        deep.push('}');
        let cases = [
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"ES256",}"#,
            r#"{"alg":"ES256" "typ":"x"}"#,
            r#"{"alg":"ES256","x":"\ud800"}"#,
            r#"{"alg":"ES256","x":"\udc00\ud800"}"#,
            r#"{"alg":"ES256","x":"\ud83d\ude00"}"#,
            r#"{"alg":"ES256","x":"\x"}"#,
            r#"{"alg":"ES256","x":01}"#,
            r#"{"alg":"ES256","x":1e999}"#,
            r#"{"alg":"ES256","x":[1,]}"#,
            r#"{"alg":"ES256","x":{"a":1,"a":2}}"#,
            "{\"alg\":\"ES256\",\"x\":\"tab\tin string\"}",
            r#"{"alg":"ES256"}   "#,
            r#"{"alg":"ES256"}}"#,
            r#"[]"#,
            r#""alg""#,
            r#"null"#,
            &deep,
        ];
        for case in cases {
            let as_map = serde_json::from_slice::<Map<String, Value>>(case.as_bytes()).is_ok();
            let as_header = serde_json::from_slice::<Header<'_>>(case.as_bytes()).is_ok();
            assert_eq!(as_header, as_map, "{case:.60}");
        }
        let invalid_utf8: &[u8] = b"{\"alg\":\"ES256\",\"x\":\"\xff\"}";
        assert!(serde_json::from_slice::<Map<String, Value>>(invalid_utf8).is_err());
        assert!(serde_json::from_slice::<Header<'_>>(invalid_utf8).is_err());
    }

    #[test]
    fn base64url_alphabet_over_all_bytes() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
            for len in [1, 63, 64, 65, 130] {
                for at in [0, len / 2, len - 1] {
                    let mut token = vec![b'A'; len];
                    token[at] = b;
                    assert_eq!(
                        is_b64url_or_dot(&token),
                        want,
                        "byte {b:#04x} at {at}/{len}"
                    );
                }
            }
        }
        assert!(is_b64url_or_dot(b""));
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
