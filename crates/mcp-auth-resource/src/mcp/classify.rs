//! Finds the tool calls in a JSON-RPC body without building a DOM.
//!
//! A serde visitor walks the document once: it keeps the top-level `method` and `params.name` of
//! each message and skips every other value, only looking at object keys on the way. Anything that
//! could make a dispatcher see a different call than this visitor sees is refused with an error,
//! and the caller answers an error with the strictest scope set (fail closed):
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
//! Keys and values are compared after JSON unescaping, as the dispatcher compares them.

use std::{fmt, sync::OnceLock};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The method whose calls need tool scopes.
pub(crate) const TOOLS_CALL: &str = "tools/call";

/// The prefix of serde_json's private map keys (`$serde_json::private::RawValue`,
/// `$serde_json::private::Number`).
const PRIVATE_PREFIX: &str = "$serde_json::private::";
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a body could not be classified. Only its existence matters: every case means "strictest".
#[derive(Debug)]
pub(crate) struct Ambiguous;

/// The names of the tools a body calls with `tools/call`, in order (one per call, duplicates
/// kept). An empty list means the body calls no tool.
///
/// # Errors
/// [`Ambiguous`] when the body must be treated with the strictest scope set.
pub(crate) fn tool_calls(body: &[u8]) -> Result<Vec<String>, Ambiguous> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let calls = Top.deserialize(&mut de).map_err(|_| Ambiguous)?;
    de.end().map_err(|_| Ambiguous)?;
    Ok(calls)
}

/// Whether this build of serde_json has `arbitrary_precision`, which hands every number to
/// visitors as a one-entry map keyed by the private `Number` token.
///
/// Feature unification means the MCP server's serde_json is this same crate, so in that build a
/// `Number`-token map *is* a number for the dispatcher too and is safe to skip as one.
fn numbers_are_maps() -> bool {
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
enum Key {
    Method,
    Params,
    Name,
    Number,
    Private,
    Other,
}

impl Key {
    fn of(key: &str) -> Self {
        match key {
            "method" => Self::Method,
            "params" => Self::Params,
            "name" => Self::Name,
            NUMBER_TOKEN => Self::Number,
            k if k.starts_with(PRIVATE_PREFIX) => Self::Private,
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
        Ok(Key::of(v))
    }
}

/// The whole document: one message or a batch.
struct Top;

impl<'de> DeserializeSeed<'de> for Top {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(message(map)?.into_iter().collect())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut calls = Vec::new();
        while let Some(call) = seq.next_element_seed(Element)? {
            calls.extend(call);
        }
        Ok(calls)
    }
}

/// One member of a batch: must be an object.
struct Element;

impl<'de> DeserializeSeed<'de> for Element {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        message(map)
    }
}

/// One message: `Some(tool)` for a `tools/call`, `None` for anything else.
fn message<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<String>, A::Error> {
    let mut is_call: Option<bool> = None;
    let mut params: Option<Params> = None;
    while let Some(key) = map.next_key_seed(KeySeed)? {
        match key {
            Key::Method if is_call.is_none() => is_call = Some(map.next_value_seed(Method)?),
            Key::Params if params.is_none() => params = Some(map.next_value_seed(ParamsSeed)?),
            Key::Method | Key::Params | Key::Number | Key::Private => return Err(ambiguous()),
            Key::Name | Key::Other => map.next_value_seed(Skip)?,
        }
    }
    if is_call != Some(true) {
        return Ok(None);
    }
    match params {
        Some(Params::Object(Some(Name::Valid(name)))) => Ok(Some(name)),
        _ => Err(ambiguous()),
    }
}

/// `method`: must be a string; `true` for `tools/call`.
struct Method;

impl<'de> DeserializeSeed<'de> for Method {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Method {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a method name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == TOOLS_CALL)
    }
}

/// What `params` holds, as far as a `tools/call` cares.
enum Params {
    /// An object, with what its `name` member looked like (`None`: absent).
    Object(Option<Name>),
    /// An array, `null` or a scalar.
    NotObject,
}

enum Name {
    Valid(String),
    /// Not a string, or given twice.
    Invalid,
}

struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Params;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut name: Option<Name> = None;
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Name => {
                    let value = map.next_value_seed(NameSeed)?;
                    name = Some(if name.is_some() { Name::Invalid } else { value });
                }
                Key::Number if first && numbers_are_maps() => {
                    // `params` is a number (arbitrary_precision build): not an object.
                    map.next_value_seed(Skip)?;
                    if map.next_key_seed(KeySeed)?.is_some() {
                        return Err(ambiguous());
                    }
                    return Ok(Params::NotObject);
                }
                Key::Number | Key::Private => return Err(ambiguous()),
                Key::Method | Key::Params | Key::Other => map.next_value_seed(Skip)?,
            }
            first = false;
        }
        Ok(Params::Object(name))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        Skip.visit_seq(seq).map(|()| Params::NotObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::NotObject)
    }
}

/// `params.name`: a string, or something a dispatcher would not take as a tool name.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Name;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Name, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Name;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tool name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
        Ok(Name::Valid(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Name, E> {
        Ok(Name::Valid(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Name, A::Error> {
        Skip.visit_map(map).map(|()| Name::Invalid)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Name, A::Error> {
        Skip.visit_seq(seq).map(|()| Name::Invalid)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Name, E> {
        Ok(Name::Invalid)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Name, E> {
        Ok(Name::Invalid)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Name, E> {
        Ok(Name::Invalid)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Name, E> {
        Ok(Name::Invalid)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Name, E> {
        Ok(Name::Invalid)
    }
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
                Key::Method | Key::Params | Key::Name | Key::Other => {
                    map.next_value_seed(Self)?;
                }
            }
            first = false;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Self)?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

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
        json_leaf().prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("method".to_owned()),
                            Just("params".to_owned()),
                            Just("name".to_owned()),
                            "[a-z]{1,6}",
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
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
