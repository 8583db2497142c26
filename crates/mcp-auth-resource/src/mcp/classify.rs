//! Reads a JSON-RPC body once, without building a DOM: what the tool-scope check and the
//! header check of [`ToolScopes`](super::ToolScopes) need to know about it.
//!
//! A serde visitor walks the document once. Of each message it keeps the top-level `method` and
//! `id`, and of `params` the members `name`, `uri`, `taskId` and
//! `_meta["io.modelcontextprotocol/protocolVersion"]`;
//! every other value is skipped, looking only at object keys on the way. Anything that could make
//! a dispatcher see a different message than this visitor sees makes the body ambiguous, and the
//! scope check answers that with the strictest scope set (fail closed):
//!
//! - text that is not one JSON value (syntax errors, trailing bytes, invalid UTF-8, nesting past
//!   serde_json's recursion limit);
//! - a top-level value that is neither an object nor an array of objects;
//! - a duplicate `method` or `params` key in a message, a non-string `method`;
//! - for `tools/call`: `params` that is not an object, no `name`, a non-string `name` or a
//!   duplicate `name`;
//! - an object key, at any depth, that starts with `$serde_json::private::` (the `RawValue` and
//!   `Number` tokens serde_json and serde's buffering reinterpret).
//!
//! The header check reads the same [`Parsed`] body: a member given twice or with the wrong type is
//! [`Field::Invalid`], which no header value matches.
//!
//! Keys and values are compared after JSON unescaping, as the dispatcher compares them.

use std::{borrow::Cow, fmt, slice, sync::OnceLock};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The method whose calls need tool scopes.
pub(crate) const TOOLS_CALL: &str = "tools/call";

/// The `_meta` key that carries a 2026-07-28 request's protocol version.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// The scalar visits of a visitor that answers each of them with `$value`, skipping the scalar
/// (`visit_unit` always; then the named ones, or `numbers and bool`, or `every scalar`).
macro_rules! answer_scalars {
    ($value:expr; numbers and bool) => {
        answer_scalars!($value; visit_bool: bool, visit_i64: i64, visit_u64: u64,
            visit_i128: i128, visit_u128: u128, visit_f64: f64);
    };
    ($value:expr; every scalar) => {
        answer_scalars!($value; visit_bool: bool, visit_i64: i64, visit_u64: u64,
            visit_i128: i128, visit_u128: u128, visit_f64: f64, visit_str: &str);
    };
    ($value:expr; $($visit:ident: $ty:ty),* $(,)?) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        $(
            fn $visit<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
                Ok($value)
            }
        )*
    };
}

/// The prefix of serde_json's private map keys (`$serde_json::private::RawValue`,
/// `$serde_json::private::Number`).
const PRIVATE_PREFIX: &str = "$serde_json::private::";
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a body could not be classified. Only its existence matters: every case means "strictest".
#[derive(Debug)]
pub(crate) struct Ambiguous;

/// A string member's value: borrowed from the body unless it had escapes.
pub(crate) type Text<'a> = Cow<'a, str>;

/// A body, as far as the checks care. Strings borrow from the body when they can.
#[derive(Debug, PartialEq)]
pub(crate) enum Parsed<'a> {
    /// Not one JSON object or array of objects, or holding serde_json's private keys.
    Invalid,
    /// One message (an object).
    Single(Message<'a>),
    /// A JSON array of messages (possibly empty).
    Batch(Vec<Message<'a>>),
}

/// A member that must appear at most once, with a value of the expected type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Field<T> {
    /// Not in the message.
    #[default]
    Absent,
    /// Present once, of the expected type.
    Valid(T),
    /// Present with another type, or more than once.
    Invalid,
}

impl<T> Field<T> {
    /// Records one occurrence of the member: a second one makes it invalid.
    fn record(&mut self, value: Self) {
        *self = match self {
            Self::Absent => value,
            _ => Self::Invalid,
        };
    }

    /// The value, when present once with the expected type.
    pub(crate) fn valid(&self) -> Option<&T> {
        match self {
            Self::Valid(value) => Some(value),
            _ => None,
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }
}

/// A request's `id`, as an error response echoes it. A string borrows from the body, as the
/// other members do: a client that numbers its requests with strings (UUIDs) costs no
/// allocation per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Id<'a> {
    /// No `id`, or one that is neither a string nor an integer, or given twice: echoed as `null`.
    #[default]
    Null,
    /// A string.
    Str(Text<'a>),
    /// An integer (what serde_json reads as `i64` or `u64`).
    Int(serde_json::Number),
}

impl Id<'_> {
    /// The id as JSON text (`"abc"`, `7` or `null`).
    pub(crate) fn to_json(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Int(number) => number.to_string(),
            Self::Str(text) => {
                serde_json::to_string(text.as_ref()).unwrap_or_else(|_| "null".to_owned())
            }
        }
    }
}

/// One JSON-RPC message.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Message<'a> {
    /// `method`: a string, given once.
    pub(crate) method: Field<Text<'a>>,
    /// `id`, echoed in an error response: a string or an integer given once, else `null`.
    pub(crate) id: Id<'a>,
    /// `params`, when it is an object.
    pub(crate) params: Params<'a>,
    /// A duplicate `method` or `params`, or a `method` that is not a string.
    pub(crate) ambiguous: bool,
}

/// The members of an object `params` the checks look at. All absent when `params` is absent, not
/// an object, or given twice (then `name` is invalid, so no call and no header matches it).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Params<'a> {
    /// `params` is present and an object.
    pub(crate) object: bool,
    /// `params.name` (tools and prompts).
    pub(crate) name: Field<Text<'a>>,
    /// `params.uri` (resources).
    pub(crate) uri: Field<Text<'a>>,
    /// `params.taskId` (the Tasks extension).
    pub(crate) task_id: Field<Text<'a>>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`. Invalid when `_meta` or the key
    /// is given twice or the version is not a string.
    pub(crate) protocol_version: Field<Text<'a>>,
}

impl Field<Text<'_>> {
    /// The text, when present once as a string.
    pub(crate) fn text(&self) -> Option<&str> {
        self.valid().map(|text| &**text)
    }
}

impl Parsed<'_> {
    /// The messages of the body (none when it is invalid).
    pub(crate) fn messages(&self) -> &[Message<'_>] {
        match self {
            Self::Invalid => &[],
            Self::Single(message) => slice::from_ref(message),
            Self::Batch(messages) => messages,
        }
    }

    /// The names of the tools the body calls with `tools/call`, in order (one per call,
    /// duplicates kept). An empty list means the body calls no tool.
    ///
    /// # Errors
    /// [`Ambiguous`] when the body must be treated with the strictest scope set.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn tool_calls(&self) -> Result<Vec<&str>, Ambiguous> {
        self.calls().map(Iterator::collect)
    }

    /// The names of [`tool_calls`](Self::tool_calls), without collecting them: the whole body is
    /// checked for ambiguity first.
    ///
    /// # Errors
    /// [`Ambiguous`] when the body must be treated with the strictest scope set.
    pub(crate) fn calls(&self) -> Result<impl Iterator<Item = &str>, Ambiguous> {
        if matches!(self, Self::Invalid) {
            return Err(Ambiguous);
        }
        for message in self.messages() {
            if message.ambiguous
                || (message.method.text() == Some(TOOLS_CALL)
                    && !(message.params.object && message.params.name.text().is_some()))
            {
                return Err(Ambiguous);
            }
        }
        Ok(self.messages().iter().filter_map(|message| {
            (message.method.text() == Some(TOOLS_CALL))
                .then(|| message.params.name.text())
                .flatten()
        }))
    }
}

/// Reads `body`. Never fails: what cannot be read is [`Parsed::Invalid`].
pub(crate) fn parse(body: &[u8]) -> Parsed<'_> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match Top.deserialize(&mut de) {
        Ok(parsed) if de.end().is_ok() => parsed,
        _ => Parsed::Invalid,
    }
}

/// The names of the tools a body calls, as owned strings (see [`Parsed::tool_calls`]).
#[cfg(test)]
pub(crate) fn tool_calls(body: &[u8]) -> Result<Vec<String>, Ambiguous> {
    parse(body)
        .tool_calls()
        .map(|calls| calls.into_iter().map(str::to_owned).collect())
}

/// Whether this build of serde_json has `arbitrary_precision`, which hands every number to
/// visitors as a one-entry map keyed by the private `Number` token.
///
/// Feature unification means the MCP server's serde_json is this same crate, so in that build a
/// `Number`-token map *is* a number for the dispatcher too and is safe to skip as one.
pub(crate) fn numbers_are_maps() -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(|| {
        struct Probe;
        impl<'de> Visitor<'de> for Probe {
            type Value = bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
                Ok(false)
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
                Ok(true)
            }
        }
        let mut de = serde_json::Deserializer::from_str("1");
        de.deserialize_any(Probe).unwrap_or(false)
    })
}

fn ambiguous<E: de::Error>() -> E {
    E::custom("ambiguous message")
}

/// An object key, classified without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Method,
    Params,
    Name,
    Uri,
    TaskId,
    Id,
    Meta,
    ProtocolVersion,
    Number,
    Private,
    Other,
}

impl Key {
    /// The key whose (unescaped) text is `key`.
    pub(crate) fn of(key: &[u8]) -> Self {
        match key {
            b"method" => Self::Method,
            b"params" => Self::Params,
            b"name" => Self::Name,
            b"uri" => Self::Uri,
            b"taskId" => Self::TaskId,
            b"id" => Self::Id,
            b"_meta" => Self::Meta,
            k if k == PROTOCOL_VERSION_META.as_bytes() => Self::ProtocolVersion,
            k if k == NUMBER_TOKEN.as_bytes() => Self::Number,
            k if k.starts_with(PRIVATE_PREFIX.as_bytes()) => Self::Private,
            _ => Self::Other,
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::of(v.as_bytes()))
    }
}

/// The whole document: one message or a batch.
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Parsed<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = Parsed<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        message(map).map(Parsed::Single)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut messages = Vec::new();
        while let Some(message) = seq.next_element_seed(Element)? {
            messages.push(message);
        }
        Ok(Parsed::Batch(messages))
    }
}

/// One member of a batch: must be an object.
struct Element;

impl<'de> DeserializeSeed<'de> for Element {
    type Value = Message<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element {
    type Value = Message<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        message(map)
    }
}

/// One message.
fn message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Message<'de>, A::Error> {
    let mut message = Message::default();
    let mut seen_params = false;
    let mut id: Field<Id<'de>> = Field::Absent;
    while let Some(key) = map.next_key_seed(KeySeed)? {
        match key {
            Key::Method => {
                let method = map.next_value_seed(StringSeed)?;
                if !message.method.is_absent() || method == Field::Invalid {
                    message.ambiguous = true;
                }
                message.method.record(method);
            }
            Key::Params => {
                let params = map.next_value_seed(ParamsSeed)?;
                if seen_params {
                    // Which one a dispatcher takes is unknown: neither counts. A protocol version
                    // in either one cannot be told, and none in both is still none.
                    message.ambiguous = true;
                    let version_absent = message.params.protocol_version.is_absent()
                        && params
                            .as_ref()
                            .is_none_or(|p| p.protocol_version.is_absent());
                    message.params = Params {
                        object: false,
                        name: Field::Invalid,
                        uri: Field::Invalid,
                        task_id: Field::Invalid,
                        protocol_version: if version_absent {
                            Field::Absent
                        } else {
                            Field::Invalid
                        },
                    };
                } else {
                    message.params = params.unwrap_or_default();
                }
                seen_params = true;
            }
            Key::Id => id.record(map.next_value_seed(IdSeed)?),
            Key::Number | Key::Private => return Err(ambiguous()),
            Key::Name | Key::Uri | Key::TaskId | Key::Meta | Key::ProtocolVersion | Key::Other => {
                map.next_value_seed(Skip)?;
            }
        }
    }
    message.id = match id {
        Field::Valid(id) => id,
        _ => Id::Null,
    };
    Ok(message)
}

/// A string member: `Valid` for a string, `Invalid` for any other value (skipped).
struct StringSeed;

impl<'de> DeserializeSeed<'de> for StringSeed {
    type Value = Field<Text<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringSeed {
    type Value = Field<Text<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Valid(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Valid(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Valid(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip.visit_map(map).map(|()| Field::Invalid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| Field::Invalid)
    }
    answer_scalars!(Field::Invalid; numbers and bool);
}

/// `id`: a string or an integer, echoed as it came; anything else is echoed as `null`.
struct IdSeed;

impl<'de> DeserializeSeed<'de> for IdSeed {
    type Value = Field<Id<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IdSeed {
    type Value = Field<Id<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request id")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Valid(Id::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Valid(Id::Str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Valid(Id::Str(Cow::Owned(v))))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Valid(Id::Int(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Valid(Id::Int(v.into())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip.visit_map(map).map(|()| Field::Invalid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| Field::Invalid)
    }
    answer_scalars!(Field::Invalid; visit_bool: bool, visit_i128: i128, visit_u128: u128, visit_f64: f64);
}

/// `params`: `Some` for an object, `None` for an array, `null` or a scalar.
struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Option<Params<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Option<Params<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut params = Params {
            object: true,
            ..Params::default()
        };
        let mut first = true;
        let mut meta_seen = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Name => params.name.record(map.next_value_seed(StringSeed)?),
                Key::Uri => params.uri.record(map.next_value_seed(StringSeed)?),
                Key::TaskId => params.task_id.record(map.next_value_seed(StringSeed)?),
                Key::Meta => {
                    let version = map.next_value_seed(MetaSeed)?;
                    if !meta_seen {
                        params.protocol_version = version;
                    } else if !(version.is_absent() && params.protocol_version.is_absent()) {
                        // Two `_meta`, one with a version: which one counts is unknown.
                        params.protocol_version = Field::Invalid;
                    }
                    meta_seen = true;
                }
                Key::Number if first && numbers_are_maps() => {
                    // `params` is a number (arbitrary_precision build): not an object.
                    map.next_value_seed(Skip)?;
                    if map.next_key_seed(KeySeed)?.is_some() {
                        return Err(ambiguous());
                    }
                    return Ok(None);
                }
                Key::Number | Key::Private => return Err(ambiguous()),
                Key::Method | Key::Params | Key::Id | Key::ProtocolVersion | Key::Other => {
                    map.next_value_seed(Skip)?;
                }
            }
            first = false;
        }
        Ok(Some(params))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }
    answer_scalars!(None; every scalar);
}

/// `params._meta`: the protocol version it carries. An `_meta` that is not an object carries none
/// (`Absent`); a version given twice or not as a string is `Invalid`.
struct MetaSeed;

impl<'de> DeserializeSeed<'de> for MetaSeed {
    type Value = Field<Text<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetaSeed {
    type Value = Field<Text<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_meta")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut version = Field::Absent;
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::ProtocolVersion => version.record(map.next_value_seed(StringSeed)?),
                Key::Number if first && numbers_are_maps() => {
                    // `_meta` is a number (arbitrary_precision build): not an object.
                    map.next_value_seed(Skip)?;
                    if map.next_key_seed(KeySeed)?.is_some() {
                        return Err(ambiguous());
                    }
                    return Ok(Field::Absent);
                }
                Key::Number | Key::Private => return Err(ambiguous()),
                _ => map.next_value_seed(Skip)?,
            }
            first = false;
        }
        Ok(version)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq).map(|()| Field::Absent)
    }
    answer_scalars!(Field::Absent; every scalar);
}

/// Skips any value, refusing serde_json's private keys at every depth.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                // A number, in an arbitrary_precision build: one entry, a string value.
                Key::Number if first && numbers_are_maps() => map.next_value_seed(Self)?,
                Key::Number | Key::Private => return Err(ambiguous()),
                _ => map.next_value_seed(Self)?,
            }
            first = false;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Self)?.is_some() {}
        Ok(())
    }
    answer_scalars!((); every scalar);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::mcp::json_strategy::json_tree;

    fn owned(field: Field<Text<'_>>) -> Field<String> {
        match field {
            Field::Absent => Field::Absent,
            Field::Valid(text) => Field::Valid(text.into_owned()),
            Field::Invalid => Field::Invalid,
        }
    }

    fn calls(body: &str) -> Option<Vec<String>> {
        tool_calls(body.as_bytes()).ok()
    }

    #[test]
    fn a_single_call_yields_its_tool_name() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_tool","arguments":{"x":[1,2,{"y":null}]}}}"#;
        assert_eq!(calls(body), Some(vec!["admin_tool".to_owned()]));
    }

    #[test]
    fn params_before_method_is_handled() {
        let body = r#"{"params":{"arguments":{},"name":"a"},"id":"x","method":"tools/call","jsonrpc":"2.0"}"#;
        assert_eq!(calls(body), Some(vec!["a".to_owned()]));
    }

    #[test]
    fn escapes_are_decoded_before_comparing() {
        let body = r#"{"meth\u006fd":"tools\/call","params":{"n\u0061me":"admin\u005ftool"}}"#;
        assert_eq!(calls(body), Some(vec!["admin_tool".to_owned()]));
    }

    #[test]
    fn other_methods_and_responses_call_no_tool() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"name":"admin_tool"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "{}",
            "[]",
        ] {
            assert_eq!(calls(body), Some(vec![]), "{body}");
        }
    }

    #[test]
    fn a_batch_yields_every_call() {
        let body = r#"[{"method":"tools/call","params":{"name":"a"}},{"method":"tools/list"},{"method":"tools/call","params":{"name":"b"}}]"#;
        assert_eq!(calls(body), Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn ambiguous_messages_are_refused() {
        for body in [
            "",
            "not json",
            r#"{"method":"tools/call","params":{"name":"a"}} x"#,
            r#"{"method":"tools/call","params":{"name":"a"}"#,
            r#""tools/call""#,
            "5",
            "null",
            r#"[[{"method":"tools/call","params":{"name":"a"}}]]"#,
            r#"[1]"#,
            r#"{"method":"tools/call"}"#,
            r#"{"method":"tools/call","params":null}"#,
            r#"{"method":"tools/call","params":["a"]}"#,
            r#"{"method":"tools/call","params":{}}"#,
            r#"{"method":"tools/call","params":{"name":7}}"#,
            r#"{"method":"tools/call","params":{"name":{"x":"a"}}}"#,
            r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#,
            r#"{"method":"tools/list","method":"tools/call","params":{"name":"a"}}"#,
            r#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#,
            r#"{"method":5,"params":{"name":"a"}}"#,
            r#"{"method":"tools/call","params":{"name":"a","$serde_json::private::RawValue":"{}"}}"#,
            r#"{"method":"tools/list","x":{"y":[{"$serde_json::private::Number":"1"}]}}"#,
            r#"{"$serde_json::private::RawValue":"{\"method\":\"tools/call\"}"}"#,
            "{\"method\":\"tools/call\",\"params\":{\"name\":\"\\ud800\"}}",
        ] {
            assert!(calls(body).is_none(), "{body}");
        }
    }

    #[test]
    fn the_header_check_sees_method_id_name_uri_task_and_protocol_version() {
        let body = r#"{"id":"a\u0062","method":"resources/read","params":{"uri":"file:///x","name":"n","taskId":"t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","other":[1]}}}"#;
        let Parsed::Single(message) = parse(body.as_bytes()) else {
            panic!("one message");
        };
        assert_eq!(message.method, Field::Valid("resources/read".into()));
        assert_eq!(message.id, Id::Str("ab".into()));
        assert_eq!(message.params.uri, Field::Valid("file:///x".into()));
        assert_eq!(message.params.name, Field::Valid("n".into()));
        assert_eq!(message.params.task_id, Field::Valid("t".into()));
        assert_eq!(
            message.params.protocol_version,
            Field::Valid("2026-07-28".into())
        );
    }

    #[test]
    fn members_given_twice_or_with_the_wrong_type_are_invalid() {
        let version = |body: &str| match parse(body.as_bytes()) {
            Parsed::Single(message) => owned(message.params.protocol_version),
            other => panic!("{other:?}"),
        };
        let meta =
            |v: &str| format!(r#"{{"_meta":{{"io.modelcontextprotocol/protocolVersion":{v}}}}}"#);
        assert_eq!(
            version(&format!(r#"{{"params":{}}}"#, meta("5"))),
            Field::Invalid
        );
        assert_eq!(
            version(
                r#"{"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"a","io.modelcontextprotocol/protocolVersion":"a"}}}"#
            ),
            Field::Invalid
        );
        assert_eq!(
            version(
                r#"{"params":{"_meta":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"a"}}}"#
            ),
            Field::Invalid
        );
        assert_eq!(
            version(r#"{"params":{"_meta":{},"_meta":{}}}"#),
            Field::Absent
        );
        assert_eq!(version(r#"{"params":{"_meta":null}}"#), Field::Absent);
        assert_eq!(version(r#"{"params":{},"params":{}}"#), Field::Absent);
        assert_eq!(
            version(&format!(r#"{{"params":{{}},"params":{}}}"#, meta(r#""a""#))),
            Field::Invalid
        );
        let Parsed::Single(message) = parse(br#"{"id":1,"id":2,"method":"m","params":{"uri":1}}"#)
        else {
            panic!("one message");
        };
        assert_eq!(message.id, Id::Null);
        assert_eq!(message.params.uri, Field::Invalid);
        for id in ["1.5", "true", "null", "[1]", r#"{"a":1}"#] {
            let body = format!(r#"{{"id":{id}}}"#);
            let Parsed::Single(message) = parse(body.as_bytes()) else {
                panic!("one message");
            };
            assert_eq!(message.id, Id::Null, "{id}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(tool_calls(b"{\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(tool_calls(body.as_bytes()).is_err());
        let body = format!(
            r#"{{"method":"tools/list","x":{}1{}}}"#,
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(tool_calls(body.as_bytes()).is_err());
    }

    #[test]
    fn this_build_parses_numbers_as_numbers() {
        assert!(!numbers_are_maps());
    }

    /// What a dispatcher that parses into a `serde_json::Value` (last duplicate wins) would call.
    fn reference(value: &Value) -> Vec<Option<String>> {
        let one = |m: &Value| match m.get("method").and_then(Value::as_str) {
            Some(TOOLS_CALL) => vec![
                m.get("params")
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ],
            _ => vec![],
        };
        match value {
            Value::Array(items) => items.iter().flat_map(one).collect(),
            other => one(other),
        }
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z_/$:]{0,12}".prop_map(Value::String),
            prop_oneof![Just("tools/call"), Just("admin_tool"), Just("name")]
                .prop_map(|s| Value::String(s.to_owned())),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_tree(json_leaf(), &["method", "params", "name"])
    }

    fn message_value() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just(json!("tools/call")), json_value()],
            prop_oneof![
                json_value(),
                (prop_oneof![Just(json!("admin_tool")), json_value()], json_value())
                    .prop_map(|(name, extra)| json!({ "name": name, "arguments": extra })),
            ],
            json_value(),
        )
            .prop_map(|(method, params, id)| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = tool_calls(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let _ = tool_calls(value.to_string().as_bytes());
        }

        /// Differential check against a DOM-based dispatcher: whenever the visitor answers, it
        /// found exactly the tools the dispatcher would call (and it refuses when the dispatcher
        /// would call a tool with no usable name).
        #[test]
        fn agrees_with_a_dom_parser_or_fails_closed(
            value in prop_oneof![message_value(), prop::collection::vec(message_value(), 0..4).prop_map(Value::Array), json_value()]
        ) {
            let expected = reference(&value);
            if let Ok(found) = tool_calls(value.to_string().as_bytes()) {
                let expected: Option<Vec<String>> = expected.into_iter().collect();
                prop_assert_eq!(Some(found), expected);
            }
        }

        /// Splicing a duplicate `method`, `params` or `name` anywhere into a call never hides it.
        #[test]
        fn duplicate_keys_never_hide_a_call(which in 0..3usize, before in any::<bool>()) {
            let extra = [r#""method":"tools/list""#, r#""params":{"name":"public"}"#, r#""name":"public""#][which];
            let body = match (which, before) {
                (2, true) => format!(r#"{{"method":"tools/call","params":{{{extra},"name":"admin_tool"}}}}"#),
                (2, false) => format!(r#"{{"method":"tools/call","params":{{"name":"admin_tool",{extra}}}}}"#),
                (_, true) => format!(r#"{{{extra},"method":"tools/call","params":{{"name":"admin_tool"}}}}"#),
                (_, false) => format!(r#"{{"method":"tools/call","params":{{"name":"admin_tool"}},{extra}}}"#),
            };
            let found = tool_calls(body.as_bytes());
            prop_assert!(found.is_err(), "{body} gave {found:?}");
        }
    }
}
