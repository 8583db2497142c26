//! The classification of a JSON-RPC body as [`ToolScopes`](super::ToolScopes) runs it: a bounded
//! byte scan for the usual message, and the full serde_json visitor of [`classify`] for anything
//! else.
//!
//! The scan reads one top-level object in a single pass, borrowing the members the checks need
//! from the body. It answers only when it is sure to give exactly what [`classify::parse`] gives,
//! and gives up (the full parse runs) on anything it does not handle itself:
//!
//! - a body that is not one object (a batch, a scalar), or nested more than [`MAX_DEPTH`] deep;
//! - any syntax error, including what serde_json refuses (trailing commas, control characters in
//!   strings, leading zeros, a lone `-`, a number it would find out of range);
//! - an escape `\u…` anywhere, any escape in a key or in a member the checks read
//!   (`method`, `id`, `params.name`, `params.uri`, `params.taskId`, the protocol version), and
//!   invalid UTF-8 anywhere;
//! - a number with an exponent or more than [`MAX_NUMBER`] characters;
//! - a duplicate `method`, `params`, `id`, `name`, `uri`, `taskId`, `_meta` or protocol version,
//!   a member the checks read that does not have its usual type (`method`, `name`, `uri`,
//!   `taskId` or the version not a string; an `id` that is not a string or an integer from 0 to
//!   `10^19 - 1`);
//! - serde_json's private keys (`$serde_json::private::…`), and every body when this build of
//!   serde_json has `arbitrary_precision`.
//!
//! What is left is the message every MCP client sends, and for it the answer is the same by
//! construction: the scan keeps exactly the members the visitor keeps and skips every other value
//! after checking its syntax. A unit proptest and the `jsonrpc` fuzz target check the two
//! agree.

use std::borrow::Cow;

use super::classify::{self, Field, Id, Key, Message, Params, Parsed, Text};

/// Deepest nesting the scan follows (serde_json's own limit is 128).
const MAX_DEPTH: usize = 64;

/// Longest number the scan reads (serde_json finds no number without an exponent and with fewer
/// digits than this out of range).
const MAX_NUMBER: usize = 100;

/// Reads `body` as the tool-scope layer does: the scan, else the full parse. Never fails: what
/// cannot be read is [`Parsed::Invalid`].
pub(crate) fn parse(body: &[u8]) -> Parsed<'_> {
    let mut parsed = Parsed::Invalid;
    parse_into(body, &mut parsed);
    parsed
}

/// [`parse`] into `parsed`. The message is filled where the caller keeps it: a `Message` is 160
/// bytes, and building it aside and returning it cost three copies a request.
#[inline]
pub(crate) fn parse_into<'a>(body: &'a [u8], parsed: &mut Parsed<'a>) {
    *parsed = Parsed::Single(Message::default());
    if let Parsed::Single(message) = parsed
        && scan_into(body, message).is_some()
    {
        return;
    }
    *parsed = classify::parse(body);
}

/// The scan: `Some` only for a body it reads exactly as [`classify::parse`] would.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fast(body: &[u8]) -> Option<Parsed<'_>> {
    let mut message = Message::default();
    scan_into(body, &mut message)?;
    Some(Parsed::Single(message))
}

/// The scan into `message`, which is left partly filled when it gives up (`None`).
#[inline(always)]
fn scan_into<'a>(body: &'a [u8], message: &mut Message<'a>) -> Option<()> {
    if classify::numbers_are_maps() {
        return None;
    }
    // Invalid UTF-8 anywhere is a syntax error or a string serde_json refuses: both are left
    // to the full parse. Checked once here, so each string is a slice of `text`.
    let text = std::str::from_utf8(body).ok()?;
    let mut scan = Scan { text, at: 0 };
    scan.space();
    scan.message(message)?;
    scan.space();
    (scan.at == body.len()).then_some(())
}

struct Scan<'a> {
    /// The body, valid UTF-8.
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    /// The body's bytes.
    #[inline(always)]
    fn body(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.body().get(self.at).copied()
    }

    #[inline(always)]
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// Consumes `byte` (after whitespace), or gives up.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Where a string's raw content starts and ends, the scan at its opening quote. Escapes other than `\u` are
    /// accepted only with `escapes`.
    #[inline(always)]
    fn raw_string(&mut self, escapes: bool) -> Option<(usize, usize)> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let mut end = start;
        loop {
            end = stop(self.body(), end)?;
            match self.body()[end] {
                b'"' => break,
                b'\\' if escapes => match self.body().get(end + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => end += 2,
                    _ => return None,
                },
                _ => return None,
            }
        }
        self.at = end + 1;
        Some((start, end))
    }

    /// A string without escapes, borrowed.
    #[inline(always)]
    fn text(&mut self) -> Option<Text<'a>> {
        let (start, end) = self.raw_string(false)?;
        // Both ends are ASCII quotes: char boundaries.
        self.text.get(start..end).map(Cow::Borrowed)
    }

    /// The next key of an object and its colon, or `None` at the closing brace (consumed). Gives
    /// up on serde_json's private keys.
    #[inline(always)]
    fn key(&mut self, first: bool) -> Option<Option<Key>> {
        self.space();
        match self.peek()? {
            b'}' => {
                self.at += 1;
                return Some(None);
            }
            b',' if !first => {
                self.at += 1;
                self.space();
            }
            _ if first => {}
            _ => return None,
        }
        let (start, end) = self.raw_string(false)?;
        let key = key_of(&self.body()[start..end]);
        if matches!(key, Key::Number | Key::Private) {
            return None;
        }
        self.expect(b':')?;
        self.space();
        Some(Some(key))
    }

    /// The top-level message, into `message` (default on entry): the members
    /// `classify::message` keeps.
    fn message(&mut self, message: &mut Message<'a>) -> Option<()> {
        self.expect(b'{')?;
        let (mut params, mut id) = (false, false);
        let mut first = true;
        while let Some(key) = self.key(first)? {
            first = false;
            match key {
                Key::Method => once(&mut message.method, self.text()?)?,
                Key::Params => {
                    if std::mem::replace(&mut params, true) {
                        return None;
                    }
                    if self.peek()? == b'{' {
                        message.params = self.params()?;
                    } else {
                        self.skip(1)?;
                    }
                }
                Key::Id => {
                    if std::mem::replace(&mut id, true) {
                        return None;
                    }
                    message.id = self.id()?;
                }
                _ => self.other(1)?,
            }
        }
        Some(())
    }

    /// `id`: a string without escapes (borrowed), or an integer from 0 to `10^19 - 1`.
    fn id(&mut self) -> Option<Id<'a>> {
        if self.peek()? == b'"' {
            return Some(Id::Str(self.text()?));
        }
        let start = self.at;
        let digits = self.body()[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 19 || (digits > 1 && self.body()[start] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.body().get(start + digits) {
            return None;
        }
        let mut n: u64 = 0;
        for b in &self.body()[start..start + digits] {
            n = n * 10 + u64::from(b - b'0');
        }
        self.at += digits;
        Some(Id::Int(n.into()))
    }

    /// An object `params`: the members `classify::ParamsSeed` keeps.
    fn params(&mut self) -> Option<Params<'a>> {
        self.expect(b'{')?;
        let mut params = Params {
            object: true,
            ..Params::default()
        };
        let mut meta = false;
        let mut first = true;
        while let Some(key) = self.key(first)? {
            first = false;
            match key {
                Key::Name => once(&mut params.name, self.text()?)?,
                Key::Uri => once(&mut params.uri, self.text()?)?,
                Key::TaskId => once(&mut params.task_id, self.text()?)?,
                Key::Meta => {
                    if std::mem::replace(&mut meta, true) {
                        return None;
                    }
                    if self.peek()? == b'{' {
                        params.protocol_version = self.meta()?;
                    } else {
                        self.skip(2)?;
                    }
                }
                _ => self.other(2)?,
            }
        }
        Some(params)
    }

    /// An object `_meta`: its protocol version.
    fn meta(&mut self) -> Option<Field<Text<'a>>> {
        self.expect(b'{')?;
        let mut version = Field::Absent;
        let mut first = true;
        while let Some(key) = self.key(first)? {
            first = false;
            match key {
                Key::ProtocolVersion => once(&mut version, self.text()?)?,
                _ => self.other(3)?,
            }
        }
        Some(version)
    }

    /// The value of a member the checks do not read: a string (the usual one, such as
    /// `"jsonrpc":"2.0"`) skipped here, anything else by [`Self::skip`].
    #[inline(always)]
    fn other(&mut self, depth: usize) -> Option<()> {
        if self.peek()? == b'"' {
            self.raw_string(true).map(drop)
        } else {
            self.skip(depth)
        }
    }

    /// Skips one value at nesting `depth`, checking its syntax as serde_json would.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut first = true;
                while self.key(first)?.is_some() {
                    first = false;
                    self.skip(depth + 1)?;
                }
            }
            b'[' => {
                self.at += 1;
                self.space();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.space();
                    self.skip(depth + 1)?;
                    self.space();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                self.raw_string(true)?;
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.body().get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)?`, at most [`MAX_NUMBER`] bytes, followed by a byte that
    /// can end a value.
    fn number(&mut self) -> Option<()> {
        let start = self.at;
        let rest = &self.body()[start..];
        let mut at = usize::from(rest.first() == Some(&b'-'));
        let int = rest[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if int == 0 || (int > 1 && rest[at] == b'0') {
            return None;
        }
        at += int;
        if rest.get(at) == Some(&b'.') {
            let frac = rest[at + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if frac == 0 {
                return None;
            }
            at += 1 + frac;
        }
        match rest.get(at) {
            _ if at > MAX_NUMBER => None,
            None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') => {
                self.at = start + at;
                Some(())
            }
            Some(_) => None,
        }
    }
}

/// The bytes that end a run of plain string content: the closing quote, a backslash, and the
/// control characters JSON forbids in strings.
static STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        stops[byte] = true;
        byte += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// A byte repeated in every byte of a word.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The first byte of [`STOPS`] at or after `from`, if any: eight bytes at a time, then byte by
/// byte for the last few.
#[inline(always)]
fn stop(body: &[u8], mut from: usize) -> Option<usize> {
    while let Some(chunk) = body.get(from..).and_then(<[u8]>::first_chunk::<8>) {
        let found = stops_in(u64::from_le_bytes(*chunk));
        if found != 0 {
            // Little-endian: the lowest set bit is the first byte in the body.
            return Some(from + (found.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    while !STOPS[usize::from(*body.get(from)?)] {
        from += 1;
    }
    Some(from)
}

/// A word with the high bit set in (at least) the lowest byte of `word` that is in [`STOPS`],
/// and zero when no byte is.
///
/// Each test is the classic "has a byte less than n" (`(x - n) & !x & 0x80…`, for n ≤ 0x80):
/// a byte's high bit is set when it is below n, except that a borrow from a lower byte that
/// is below n may also flag the bytes above it. The lowest flagged byte of each test is exact, so
/// the lowest flagged byte of their union is the first stop. Bytes from 0x80 up (UTF-8 beyond
/// ASCII) are never flagged: `!x` clears their high bit.
#[inline]
const fn stops_in(word: u64) -> u64 {
    const ONES: u64 = splat(1);
    let control = below(word, splat(0x20));
    let quote = below(word ^ splat(b'"'), ONES);
    let backslash = below(word ^ splat(b'\\'), ONES);
    control | quote | backslash
}

/// The high bit of every byte of `x` below `n` (`n` splat, each byte at most 0x80), and maybe of
/// bytes above the lowest such byte (see [`stops_in`]).
#[inline]
const fn below(x: u64, n: u64) -> u64 {
    x.wrapping_sub(n) & !x & splat(0x80)
}

/// Keys shorter than this are never one that [`Key::of`] finds by its length alone: the
/// protocol version key and serde_json's private keys are all longer.
const LONG_KEY: usize = 22;

/// [`Key::of`], with the short keys matched inline (a length switch and one compare): the
/// longer ones go to `Key::of`.
#[inline(always)]
fn key_of(key: &[u8]) -> Key {
    match key {
        b"id" => Key::Id,
        b"uri" => Key::Uri,
        b"name" => Key::Name,
        b"_meta" => Key::Meta,
        b"method" => Key::Method,
        b"params" => Key::Params,
        b"taskId" => Key::TaskId,
        _ if key.len() >= LONG_KEY => Key::of(key),
        _ => Key::Other,
    }
}

/// Records the one occurrence of a member, or gives up on a second.
fn once<'a>(field: &mut Field<Text<'a>>, value: Text<'a>) -> Option<()> {
    field.is_absent().then(|| *field = Field::Valid(value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::mcp::json_strategy::json_tree;

    /// The scan answers for `body`, and exactly as the full parse.
    fn scans(body: &str) -> bool {
        let scanned = fast(body.as_bytes());
        if let Some(scanned) = &scanned {
            assert_eq!(*scanned, classify::parse(body.as_bytes()), "{body}");
        }
        scanned.is_some()
    }

    #[test]
    fn the_usual_messages_are_scanned() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x","arguments":{"q":"a\nb \"c\"","n":[1,-2.5,0,true,false,null,{}],"d":{"e":[]}}}}"#,
            r#" { "method" : "resources/read" , "id" : 0 , "params" : { "uri" : "file:///é" , "_meta" : { "io.modelcontextprotocol/protocolVersion" : "2026-07-28" , "k" : 1 } } } "#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"method":"tasks/get","params":{"taskId":"t","_meta":null}}"#,
            r#"{"method":"x","params":[1,2]}"#,
            r#"{"method":"x","params":null,"id":18446744073709551}"#,
            "{}",
        ] {
            assert!(scans(body), "{body}");
        }
    }

    #[test]
    fn a_string_id_is_borrowed_from_the_body() {
        let body = br#"{"jsonrpc":"2.0","id":"0b6f3c1e-5b1a","method":"tools/call"}"#;
        let Some(Parsed::Single(message)) = fast(body) else {
            panic!("scanned");
        };
        assert!(
            matches!(message.id, Id::Str(Cow::Borrowed("0b6f3c1e-5b1a"))),
            "{:?}",
            message.id
        );
        let Some(Parsed::Single(message)) = fast(br#"{"id":42}"#) else {
            panic!("scanned");
        };
        assert_eq!(message.id, Id::Int(42_u64.into()));
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parse() {
        for body in [
            "",
            "[]",
            r#"[{"method":"tools/call","params":{"name":"a"}}]"#,
            r#"{"method":"tools/call","params":{"name":"a"}} x"#,
            r#"{"method":"tools/call","params":{"name":"a"},}"#,
            r#"{"meth\u006fd":"tools/call"}"#,
            r#"{"method":"tools\/call"}"#,
            r#"{"method":"tools/call","params":{"name":"a\u0062"}}"#,
            r#"{"method":"m","x":"\ud800"}"#,
            r#"{"method":5}"#,
            r#"{"method":"a","method":"b"}"#,
            r#"{"params":{},"params":{}}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"id":-1}"#,
            r#"{"id":1.0}"#,
            r#"{"id":null}"#,
            r#"{"id":12345678901234567890}"#,
            r#"{"params":{"name":"a","name":"a"}}"#,
            r#"{"params":{"name":7}}"#,
            r#"{"params":{"_meta":{},"_meta":{}}}"#,
            r#"{"x":1e400}"#,
            r#"{"x":01}"#,
            r#"{"x":-}"#,
            r#"{"x":1.}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":tru}"#,
            "{\"x\":\"a\u{1}b\"}",
            r#"{"$serde_json::private::RawValue":"{}"}"#,
            r#"{"x":{"$serde_json::private::Number":"1"}}"#,
        ] {
            assert!(!scans(body), "{body}");
        }
        assert!(fast(b"{\"x\":\"\xff\"}").is_none());
        let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(!scans(&deep));
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<i32>().prop_map(|n| Value::from(f64::from(n) / 8.0)),
            "[a-z_/$: \u{e9}]{0,12}".prop_map(Value::String),
            "[a-z_/$:\"\\\\\n\u{e9}]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("tools/call"),
                Just("resources/read"),
                Just("2026-07-28"),
                Just("admin_tool")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_tree(
            json_leaf(),
            &[
                "method",
                "params",
                "name",
                "uri",
                "taskId",
                "id",
                "_meta",
                "io.modelcontextprotocol/protocolVersion",
            ],
        )
    }

    /// A member the checks read: mostly of its usual type, sometimes anything.
    fn member(usual: &'static str) -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => usual.prop_map(Value::String),
            1 => json_value(),
        ]
    }

    fn message_value() -> impl Strategy<Value = Value> {
        (
            member("tools/call|tools/list|[a-z/]{1,12}"),
            member("[a-z_]{0,8}"),
            prop_oneof![
                Just(json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"})),
                json_value()
            ],
            prop_oneof![any::<u32>().prop_map(Value::from), member("[a-z0-9-]{0,8}")],
        )
            .prop_map(|(method, name, meta, id)| {
                json!({"jsonrpc": "2.0", "id": id, "method": method,
                    "params": {"name": name, "_meta": meta, "arguments": {"a": [1, "x"]}}})
            })
    }

    /// Text that may not be JSON at all: a value's text with one byte changed, dropped or
    /// doubled, or spliced with a duplicate member.
    fn mangled() -> impl Strategy<Value = Vec<u8>> {
        (
            message_value(),
            any::<prop::sample::Index>(),
            0..4u8,
            any::<u8>(),
        )
            .prop_map(|(value, at, how, byte)| {
                let mut text = value.to_string().into_bytes();
                let i = at.index(text.len());
                match how {
                    0 => text[i] = byte,
                    1 => {
                        text.remove(i);
                    }
                    2 => text.insert(i, text[i]),
                    _ => {
                        let extra: &[u8] = match byte % 3 {
                            0 => br#""method":"tools/list","#,
                            1 => br#""id":7,"#,
                            _ => br#""params":{},"#,
                        };
                        text.splice(1..1, extra.iter().copied());
                    }
                }
                text
            })
    }

    #[test]
    fn short_keys_are_classified_as_by_the_full_parse() {
        let long = [
            "io.modelcontextprotocol/protocolVersion",
            "$serde_json::private::Number",
            "$serde_json::private::RawValue",
            "$serde_json::private::",
        ];
        for key in long {
            assert!(key.len() >= LONG_KEY, "{key}");
            assert_ne!(Key::of(key.as_bytes()), Key::Other, "{key}");
        }
        let short = [
            "",
            "i",
            "id",
            "ids",
            "Id",
            "uri",
            "name",
            "names",
            "_meta",
            "meta",
            "method",
            "methods",
            "params",
            "taskId",
            "taskid",
            "jsonrpc",
            "arguments",
            "$serde_json::",
        ];
        for key in long.into_iter().chain(short) {
            for key in [
                key.to_owned(),
                format!("{key}x"),
                key.chars().skip(1).collect(),
            ] {
                assert_eq!(key_of(key.as_bytes()), Key::of(key.as_bytes()), "{key}");
            }
        }
    }

    /// The first stop byte, one byte at a time.
    fn naive_stop(body: &[u8], from: usize) -> Option<usize> {
        (from..body.len()).find(|&i| STOPS[usize::from(body[i])])
    }

    #[test]
    fn the_word_search_finds_the_first_stop() {
        for byte in 0..=u8::MAX {
            for at in 0..20 {
                let mut body = vec![b'a'; 20];
                body[at] = byte;
                // A later stop of every kind, which must not hide the first.
                body.extend_from_slice(b"\x01\"\\");
                for from in 0..=at {
                    assert_eq!(
                        stop(&body, from),
                        naive_stop(&body, from),
                        "{byte} {at} {from}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn any_key_is_classified_as_by_the_full_parse(key in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(key_of(&key), Key::of(&key));
        }

        #[test]
        fn the_word_search_agrees_with_the_table(
            body in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), Just(0x1f), Just(0x20), Just(0x7f), Just(0x80)],
                0..40,
            ),
            from in 0..40usize,
        ) {
            let from = from.min(body.len());
            prop_assert_eq!(stop(&body, from), naive_stop(&body, from));
        }

        /// Whenever the scan answers, it answers exactly as the full parse.
        #[test]
        fn the_scan_agrees_with_the_full_parse(
            value in prop_oneof![message_value(), json_value()],
            spaced in any::<bool>(),
        ) {
            let text = if spaced {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            };
            if let Some(scanned) = fast(text.as_bytes()) {
                prop_assert_eq!(scanned, classify::parse(text.as_bytes()));
            }
        }

        #[test]
        fn the_scan_agrees_on_mangled_text(bytes in mangled()) {
            if let Some(scanned) = fast(&bytes) {
                prop_assert_eq!(scanned, classify::parse(&bytes));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Some(scanned) = fast(&bytes) {
                prop_assert_eq!(scanned, classify::parse(&bytes));
            }
        }
    }
}
