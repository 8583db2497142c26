//! The protocol era of a request, and the MCP 2026-07-28 request headers checked against its body
//! (spec N-1, N-2: `basic/transports/streamable-http`, "Request Metadata").

use std::borrow::Cow;

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

use super::{
    classify::{Field, Id, Message, Parsed, TOOLS_CALL},
    rejection::HeaderMismatchKind,
};

/// `MCP-Protocol-Version`: the protocol version of the request (2025-06-18 and later).
const PROTOCOL_VERSION_NAME: &str = "mcp-protocol-version";
/// `Mcp-Method`: the JSON-RPC `method` of the body (2026-07-28).
const METHOD_NAME: &str = "mcp-method";
/// `Mcp-Name`: the body's `params.name` or `params.uri` (2026-07-28).
const NAME_NAME: &str = "mcp-name";
/// `Mcp-Session-Id`: the session of a 2025-11-25 request.
pub(crate) const SESSION_ID_NAME: &str = "mcp-session-id";
#[cfg(test)]
pub(crate) const MCP_PROTOCOL_VERSION: http::HeaderName =
    http::HeaderName::from_static(PROTOCOL_VERSION_NAME);
#[cfg(test)]
pub(crate) const MCP_METHOD: http::HeaderName = http::HeaderName::from_static(METHOD_NAME);
#[cfg(test)]
pub(crate) const MCP_NAME: http::HeaderName = http::HeaderName::from_static(NAME_NAME);

/// The method that opens a 2025-11-25 session.
const INITIALIZE: &str = "initialize";

/// The first protocol revision without sessions and with the standard request headers.
pub(crate) const MODERN_REVISION: &[u8; 10] = b"2026-07-28";

/// The JSON-RPC error code `HeaderMismatch`.
pub(crate) const HEADER_MISMATCH_CODE: i64 = HeaderMismatchKind::CODE;

/// The prefix and suffix of an `Mcp-Name` value that is Base64-encoded (case-sensitive).
const BASE64_PREFIX: &[u8] = b"=?base64?";
const BASE64_SUFFIX: &[u8] = b"?=";

/// Standard Base64, padded or not (the decoded bytes are what is compared).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which MCP revision family a request speaks, by its `MCP-Protocol-Version` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// 2025-11-25 and earlier: `initialize`, sessions, no standard request headers.
    Legacy,
    /// 2026-07-28 and later: no sessions; `Mcp-Method` (and `Mcp-Name`) on every request.
    Modern,
}

/// The era of a request ([`McpHeaders::era`]).
///
/// - No `MCP-Protocol-Version` header: legacy (the transport lets a server take a request without
///   it as 2025-03-26).
/// - One header holding a `YYYY-MM-DD` revision before 2026-07-28: legacy.
/// - Anything else (2026-07-28 or a later date, a value that is not a date, several headers):
///   modern. A request that is not clearly legacy gets the stricter modern treatment; a legacy
///   server would refuse such a version anyway.
#[cfg(test)]
pub(crate) fn era(headers: &HeaderMap) -> Era {
    McpHeaders::of(headers).era()
}

/// The values of one header: none, one, or several.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Values<'a> {
    #[default]
    Absent,
    One(&'a HeaderValue),
    Several,
}

impl<'a> Values<'a> {
    pub(crate) fn add(&mut self, value: &'a HeaderValue) {
        *self = match self {
            Self::Absent => Self::One(value),
            _ => Self::Several,
        };
    }

    /// The one value: `Ok(None)` without one, `Err` with several.
    pub(crate) fn at_most_one(self) -> Result<Option<&'a HeaderValue>, ()> {
        match self {
            Self::Absent => Ok(None),
            Self::One(value) => Ok(Some(value)),
            Self::Several => Err(()),
        }
    }
}

/// The MCP headers of a request, found in one pass over its header map: each lookup by name
/// hashes the name byte by byte (~250 instructions for these names), while the pass costs ~35
/// per header that is not an MCP one, so one pass is cheaper than the five lookups it replaces
/// in any realistic request.
#[derive(Debug, Default)]
pub(crate) struct McpHeaders<'a> {
    pub(crate) version: Values<'a>,
    pub(crate) method: Values<'a>,
    pub(crate) name: Values<'a>,
    pub(crate) session: Values<'a>,
}

impl<'a> McpHeaders<'a> {
    /// Inlined into each layer (it is small): no 64-byte result returned through memory, and
    /// the caller's checks fold into the pass.
    #[inline]
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let name = name.as_str();
            // Every other header of the request costs this one check.
            if !name.starts_with("mcp-") {
                continue;
            }
            let values = match name {
                PROTOCOL_VERSION_NAME => &mut found.version,
                METHOD_NAME => &mut found.method,
                NAME_NAME => &mut found.name,
                SESSION_ID_NAME => &mut found.session,
                _ => continue,
            };
            values.add(value);
        }
        found
    }

    /// The era of the request (see [`Era`]'s rules above).
    pub(crate) fn era(&self) -> Era {
        let first = match self.version {
            Values::Absent => return Era::Legacy,
            Values::Several => return Era::Modern,
            Values::One(first) => first,
        };
        match revision_date(first.as_bytes()) {
            Some(date) if ordinal(date) < ordinal(MODERN_REVISION) => Era::Legacy,
            _ => Era::Modern,
        }
    }
}

/// A `YYYY-MM-DD` date as a number that orders as its bytes do (big-endian), without a call to
/// `memcmp`.
fn ordinal(date: &[u8; 10]) -> u128 {
    let mut wide = [0; 16];
    wide[..10].copy_from_slice(date);
    u128::from_be_bytes(wide)
}

/// `value` as a `YYYY-MM-DD` date, if it is one (digits and dashes only; not checked further).
fn revision_date(value: &[u8]) -> Option<&[u8; 10]> {
    let date: &[u8; 10] = value.try_into().ok()?;
    let [y0, y1, y2, y3, dash1, m0, m1, dash2, d0, d1] = *date;
    let ok = dash1 == b'-'
        && dash2 == b'-'
        && [y0, y1, y2, y3, m0, m1, d0, d1]
            .iter()
            .all(u8::is_ascii_digit);
    ok.then_some(date)
}

/// Where a method's `Mcp-Name` comes from.
#[derive(Debug, Clone, Copy)]
enum NameSource {
    Name,
    Uri,
    TaskId,
}

/// The body member that `Mcp-Name` mirrors for `method`, if it has one: the transport's table,
/// the resource subscriptions of 2025-11-25, and the Tasks extension (SEP-2663), as the MCP SDKs
/// mirror them.
fn name_source(method: &str) -> Option<NameSource> {
    match method {
        TOOLS_CALL | "prompts/get" => Some(NameSource::Name),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(NameSource::Uri),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some(NameSource::TaskId),
        _ => None,
    }
}

/// Whether a 2026-07-28 request of `method` must carry `Mcp-Name` (when its body has the value).
fn requires_name(method: &str) -> bool {
    matches!(method, TOOLS_CALL | "prompts/get" | "resources/read")
}

/// Checks the standard request headers against the body (run only on `POST` bodies).
///
/// The era is [`era`]'s, except that an `initialize` is always legacy. A legacy request with
/// neither `Mcp-Method` nor `Mcp-Name` and whose body claims no protocol
/// version in `_meta` passes untouched: 2025-11-25 traffic is checked exactly as before. Otherwise:
///
/// 1. `Mcp-Method`, `Mcp-Name` and `MCP-Protocol-Version` appear at most once, with visible ASCII
///    (and spaces) only; an `Mcp-Name` in the `=?base64?…?=` form must decode.
/// 2. The body is one message: a batch cannot match the headers, and 2026-07-28 bodies are a
///    single message.
/// 3. A protocol version in the body's `_meta` equals `MCP-Protocol-Version` (so a body that
///    speaks 2026-07-28 cannot pass as legacy by its header).
/// 4. `Mcp-Method` equals `method`; a modern request must carry it.
/// 5. For a method whose `Mcp-Name` mirrors a body member, `Mcp-Name` equals `params.name`
///    (`tools/call`, `prompts/get`), `params.uri` (`resources/read`, `resources/subscribe`,
///    `resources/unsubscribe`) or `params.taskId` (`tasks/get`, `tasks/update`, `tasks/cancel`),
///    after Base64 decoding; an `Mcp-Name` when that member is missing does not match. A modern
///    `tools/call`, `prompts/get` or `resources/read` whose body has the value must carry it. An
///    `Mcp-Name` on any other method is left to the server (an extension may define its source).
///
/// Values compare byte for byte, case-sensitively, after JSON unescaping of the body.
pub(crate) fn check(headers: &HeaderMap, parsed: &Parsed<'_>) -> Result<(), HeaderMismatchKind> {
    // `initialize` opens a 2025-11-25 session whatever version header a dual-era client sends
    // with it (the revision's own rule): it needs no header, but one it carries must match.
    let found = McpHeaders::of(headers);
    let era = match parsed {
        Parsed::Single(message) if message.method.text() == Some(INITIALIZE) => Era::Legacy,
        _ => found.era(),
    };
    let method_header = at_most_one(found.method)?;
    let name_header = at_most_one(found.name)?;
    let claims_version = parsed
        .messages()
        .iter()
        .any(|m| !m.params.protocol_version.is_absent());
    if era == Era::Legacy && method_header.is_none() && name_header.is_none() && !claims_version {
        return Ok(());
    }
    let version_header = at_most_one(found.version)?;
    let method_header = method_header.map(plain).transpose()?;
    let name_header = name_header.map(decode_name).transpose()?;
    let version_header = version_header.map(plain).transpose()?;

    let message = match parsed {
        Parsed::Single(message) => message,
        Parsed::Batch(_) => return Err(HeaderMismatchKind::Batch),
        Parsed::Invalid if method_header.is_some() => {
            return Err(HeaderMismatchKind::MethodMismatch);
        }
        Parsed::Invalid if era == Era::Modern => return Err(HeaderMismatchKind::MissingMethod),
        Parsed::Invalid => return Err(HeaderMismatchKind::NameMismatch),
    };
    check_message(
        era,
        message,
        method_header,
        name_header.as_deref(),
        version_header,
    )
}

fn check_message(
    era: Era,
    message: &Message<'_>,
    method_header: Option<&[u8]>,
    name_header: Option<&[u8]>,
    version_header: Option<&[u8]>,
) -> Result<(), HeaderMismatchKind> {
    match &message.params.protocol_version {
        Field::Absent => {}
        Field::Valid(version) if version_header == Some(version.as_bytes()) => {}
        Field::Valid(_) | Field::Invalid => {
            return Err(HeaderMismatchKind::ProtocolVersionMismatch);
        }
    }

    let method = message.method.text();
    match (method_header, method) {
        (None, _) if era == Era::Modern => return Err(HeaderMismatchKind::MissingMethod),
        (None, _) => {}
        (Some(header), Some(method)) if header == method.as_bytes() => {}
        (Some(_), _) => return Err(HeaderMismatchKind::MethodMismatch),
    }

    let source = method.and_then(name_source).map(|source| match source {
        NameSource::Name => &message.params.name,
        NameSource::Uri => &message.params.uri,
        NameSource::TaskId => &message.params.task_id,
    });
    match (name_header, source) {
        (Some(header), Some(source)) => match source.valid() {
            Some(value) if value.as_bytes() == header => Ok(()),
            _ => Err(HeaderMismatchKind::NameMismatch),
        },
        // A method name this layer does not know the source of (an extension's).
        (Some(_), None) if method.is_some() => Ok(()),
        (Some(_), None) => Err(HeaderMismatchKind::NameMismatch),
        (None, Some(source))
            if era == Era::Modern && method.is_some_and(requires_name) && !source.is_absent() =>
        {
            Err(HeaderMismatchKind::MissingName)
        }
        (None, _) => Ok(()),
    }
}

/// The one value of `name`: `Ok(None)` without one, `Malformed` with several.
fn at_most_one(values: Values<'_>) -> Result<Option<&HeaderValue>, HeaderMismatchKind> {
    values
        .at_most_one()
        .map_err(|()| HeaderMismatchKind::Malformed)
}

/// A header value of visible ASCII, spaces and tabs only (RFC 9110 §5.5 without obs-text).
fn plain(value: &HeaderValue) -> Result<&[u8], HeaderMismatchKind> {
    let bytes = value.as_bytes();
    if bytes
        .iter()
        .all(|b| matches!(b, b'\t' | b' ' | 0x21..=0x7e))
    {
        Ok(bytes)
    } else {
        Err(HeaderMismatchKind::Malformed)
    }
}

/// The value `Mcp-Name` stands for: its text, or the bytes of its `=?base64?…?=` form.
fn decode_name(value: &HeaderValue) -> Result<Cow<'_, [u8]>, HeaderMismatchKind> {
    let bytes = plain(value)?;
    let encoded = bytes
        .strip_prefix(BASE64_PREFIX)
        .and_then(|rest| rest.strip_suffix(BASE64_SUFFIX));
    match encoded {
        Some(encoded) => BASE64
            .decode(encoded)
            .map(Cow::Owned)
            .map_err(|_| HeaderMismatchKind::Malformed),
        None => Ok(Cow::Borrowed(bytes)),
    }
}

/// The JSON-RPC error response for a header mismatch, echoing the request's `id` (`null` when it
/// has none or cannot be told).
///
/// Written by hand so the members keep the order of the spec's example whatever serde_json's
/// features are.
pub(crate) fn error_body(kind: HeaderMismatchKind, id: &Id<'_>) -> Bytes {
    let id = id.to_json();
    match serde_json::to_string(kind.message()).ok() {
        Some(message) => Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{HEADER_MISMATCH_CODE},"message":{message}}}}}"#,
        )),
        None => Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32020,"message":"Header mismatch"}}"#,
        ),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;
    use crate::mcp::classify::parse;

    type Headers<'a> = &'a [(&'a HeaderName, &'a str)];

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn check_str(pairs: &[(&HeaderName, &str)], body: &str) -> Result<(), HeaderMismatchKind> {
        check(&headers(pairs), &parse(body.as_bytes()))
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

    #[test]
    fn one_pass_finds_each_mcp_header_and_counts_repeats() {
        let mut map = HeaderMap::new();
        map.append("mcp-session-id", HeaderValue::from_static("s-1"));
        map.append("mcp-method", HeaderValue::from_static("tools/call"));
        map.append("mcp-name", HeaderValue::from_static("a"));
        map.append("mcp-name", HeaderValue::from_static("b"));
        map.append("mcp-other", HeaderValue::from_static("x"));
        map.append("x-mcp-method", HeaderValue::from_static("x"));
        map.append(http::header::AUTHORIZATION, HeaderValue::from_static("x"));
        let found = McpHeaders::of(&map);
        assert!(matches!(found.version, Values::Absent));
        assert_eq!(
            found.session.at_most_one(),
            Ok(Some(&HeaderValue::from_static("s-1")))
        );
        assert_eq!(
            found.method.at_most_one(),
            Ok(Some(&HeaderValue::from_static("tools/call")))
        );
        assert_eq!(found.name.at_most_one(), Err(()));
    }

    #[test]
    fn the_era_comes_from_the_protocol_version_header() {
        let era_of = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(MCP_PROTOCOL_VERSION, HeaderValue::from_str(v).unwrap());
            }
            era(&map)
        };
        assert_eq!(era_of(&[]), Era::Legacy);
        for legacy in [
            "2025-11-25",
            "2025-06-18",
            "2025-03-26",
            "2024-11-05",
            "2026-07-27",
        ] {
            assert_eq!(era_of(&[legacy]), Era::Legacy, "{legacy}");
        }
        for modern in [
            "2026-07-28",
            "2027-01-01",
            "draft",
            "2026-7-28",
            "",
            "2025-11-25x",
        ] {
            assert_eq!(era_of(&[modern]), Era::Modern, "{modern}");
        }
        assert_eq!(era_of(&["2025-11-25", "2025-11-25"]), Era::Modern);
    }

    #[test]
    fn matching_headers_pass() {
        let v = (&MCP_PROTOCOL_VERSION, "2026-07-28");
        let m = (&MCP_METHOD, "tools/call");
        assert_eq!(check_str(&[v, m, (&MCP_NAME, "admin_tool")], CALL), Ok(()));
        // Base64 form, padded or not.
        for name in ["=?base64?YWRtaW5fdG9vbA==?=", "=?base64?YWRtaW5fdG9vbA?="] {
            assert_eq!(
                check_str(&[v, m, (&MCP_NAME, name)], CALL),
                Ok(()),
                "{name}"
            );
        }
        let read = r#"{"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":"file:///a b.txt"}}"#;
        assert_eq!(
            check_str(
                &[
                    v,
                    (&MCP_METHOD, "resources/read"),
                    (&MCP_NAME, "file:///a b.txt")
                ],
                read
            ),
            Ok(())
        );
        // `initialize` is 2025-11-25 whatever the version header: no header needed, but a
        // supplied one must match.
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
        assert_eq!(check_str(&[v], init), Ok(()));
        assert_eq!(
            check_str(&[v, (&MCP_METHOD, "tools/list")], init),
            Err(HeaderMismatchKind::MethodMismatch)
        );
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        assert_eq!(check_str(&[v, (&MCP_METHOD, "tools/list")], list), Ok(()));
        let task = r#"{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{"taskId":"t-1"}}"#;
        assert_eq!(
            check_str(&[v, (&MCP_METHOD, "tasks/get"), (&MCP_NAME, "t-1")], task),
            Ok(())
        );
        // An extension's method: its `Mcp-Name` is the server's to check.
        let other = r#"{"jsonrpc":"2.0","id":4,"method":"x/lookup","params":{"key":"k"}}"#;
        assert_eq!(
            check_str(&[v, (&MCP_METHOD, "x/lookup"), (&MCP_NAME, "k")], other),
            Ok(())
        );
    }

    #[test]
    fn a_legacy_request_without_the_headers_is_not_checked() {
        for body in [
            CALL.replace("2026-07-28", "x"),
            "{oops".to_owned(),
            "[]".to_owned(),
        ] {
            let body = body.replace(
                r#""_meta":{"io.modelcontextprotocol/protocolVersion":"x"}"#,
                r#""_meta":{}"#,
            );
            assert_eq!(
                check_str(&[(&MCP_PROTOCOL_VERSION, "2025-11-25")], &body),
                Ok(()),
                "{body}"
            );
            assert_eq!(check_str(&[], &body), Ok(()), "{body}");
        }
    }

    #[test]
    fn mismatches_are_named() {
        use HeaderMismatchKind::*;
        let v = (&MCP_PROTOCOL_VERSION, "2026-07-28");
        let m = (&MCP_METHOD, "tools/call");
        let n = (&MCP_NAME, "admin_tool");
        let cases: &[(Headers<'_>, &str, HeaderMismatchKind)] = &[
            (&[v, n], CALL, MissingMethod),
            (&[v, (&MCP_METHOD, "tools/list"), n], CALL, MethodMismatch),
            (&[v, (&MCP_METHOD, "Tools/Call"), n], CALL, MethodMismatch),
            (&[v, m], CALL, MissingName),
            (&[v, m, (&MCP_NAME, "whoami")], CALL, NameMismatch),
            (
                &[v, m, (&MCP_NAME, "=?base64?d2hvYW1p?=")],
                CALL,
                NameMismatch,
            ),
            (
                &[v, m, (&MCP_NAME, "=?base64?not base64?=")],
                CALL,
                Malformed,
            ),
            (&[v, m, n, (&MCP_METHOD, "tools/call")], CALL, Malformed),
            (&[v, m, n, (&MCP_NAME, "admin_tool")], CALL, Malformed),
            (
                &[(&MCP_PROTOCOL_VERSION, "2025-11-25"), m, n],
                CALL,
                ProtocolVersionMismatch,
            ),
            (&[m, n], CALL, ProtocolVersionMismatch),
            (&[v, m, n], &format!("[{CALL}]"), Batch),
            (&[v, m, n], "{oops", MethodMismatch),
            (&[v], "{oops", MissingMethod),
            (
                &[v, (&MCP_METHOD, "tasks/get"), (&MCP_NAME, "t-2")],
                r#"{"method":"tasks/get","params":{"taskId":"t-1"}}"#,
                NameMismatch,
            ),
            (
                &[v, (&MCP_METHOD, "prompts/get"), (&MCP_NAME, "p")],
                r#"{"method":"prompts/get","params":{}}"#,
                NameMismatch,
            ),
            (
                &[v, m, n],
                r#"{"method":"tools/call","params":{"name":"admin_tool","name":"admin_tool"}}"#,
                NameMismatch,
            ),
            (
                &[v, m, n],
                r#"{"method":"tools/call","method":"tools/call","params":{"name":"admin_tool"}}"#,
                MethodMismatch,
            ),
            (
                &[(&MCP_NAME, "whoami")],
                r#"{"method":"tools/call","params":{"name":"admin_tool"}}"#,
                NameMismatch,
            ),
            (
                &[(&MCP_METHOD, "tools/list")],
                r#"{"method":"tools/call","params":{"name":"admin_tool"}}"#,
                MethodMismatch,
            ),
        ];
        for (pairs, body, expected) in cases {
            assert_eq!(check_str(pairs, body), Err(*expected), "{pairs:?} {body}");
        }
    }

    #[test]
    fn non_ascii_header_values_are_malformed() {
        let mut map = headers(&[(&MCP_PROTOCOL_VERSION, "2026-07-28")]);
        map.insert(MCP_METHOD, HeaderValue::from_bytes(b"tools/call").unwrap());
        map.insert(
            MCP_NAME,
            HeaderValue::from_bytes("admin_tool\u{e9}".as_bytes()).unwrap(),
        );
        assert_eq!(
            check(&map, &parse(CALL.as_bytes())),
            Err(HeaderMismatchKind::Malformed)
        );
    }

    proptest::proptest! {
        /// Whatever the bytes and whichever headers, the check answers without panicking.
        #[test]
        fn arbitrary_bodies_and_headers_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            version in proptest::option::of("[0-9a-z-]{0,12}"),
            method in proptest::option::of("[a-z/]{0,12}"),
            name in proptest::option::of("[ -~]{0,16}"),
        ) {
            let mut map = HeaderMap::new();
            for (header, value) in [(MCP_PROTOCOL_VERSION, version), (MCP_METHOD, method), (MCP_NAME, name)] {
                if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    map.insert(header, value);
                }
            }
            let _ = check(&map, &parse(&body));
        }

        /// A 2025-11-25 request without the 2026-07-28 headers, whose body names no protocol
        /// version, is never refused by the header check, whatever its body.
        #[test]
        fn legacy_requests_without_the_headers_always_pass(
            body in "[\\[\\]{}\",:a-z/0-9 _]{0,64}",
            version in proptest::option::of(proptest::prop_oneof![
                proptest::prelude::Just("2025-11-25"),
                proptest::prelude::Just("2025-06-18"),
                proptest::prelude::Just("2025-03-26"),
            ]),
        ) {
            let mut map = HeaderMap::new();
            if let Some(version) = version {
                map.insert(MCP_PROTOCOL_VERSION, HeaderValue::from_static(version));
            }
            let parsed = parse(body.as_bytes());
            let claims = parsed.messages().iter().any(|m| !m.params.protocol_version.is_absent());
            proptest::prop_assume!(!claims);
            proptest::prop_assert_eq!(check(&map, &parsed), Ok(()));
        }
    }

    #[test]
    fn the_error_body_is_a_json_rpc_error_with_the_request_id() {
        use serde_json::{Value, json};

        let cases = [
            (Id::Int(7.into()), json!(7)),
            (Id::Int(u64::MAX.into()), json!(u64::MAX)),
            (Id::Int((-3_i64).into()), json!(-3)),
            (Id::Str("req-1".into()), json!("req-1")),
            // Escaped again on the way out, whatever the id holds.
            (Id::Str("a\"b\\c\u{1}é".into()), json!("a\"b\\c\u{1}é")),
            (Id::Null, Value::Null),
        ];
        for (id, expected) in cases {
            let body = error_body(HeaderMismatchKind::NameMismatch, &id);
            let value: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(value["jsonrpc"], "2.0");
            assert_eq!(value["id"], expected, "{id:?}");
            assert_eq!(value["error"]["code"], -32020);
            assert!(
                value["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("Header mismatch")
            );
        }
    }
}
