//! Random JSON for the classification proptests (`classify` and `scan`): trees of up to four
//! levels whose objects use the keys the checks read, so that the generated messages reach the
//! interesting paths. Each module brings its own leaves.

use proptest::prelude::*;
use serde_json::Value;

/// JSON values built from `leaf`: arrays of up to 3 values and objects of up to 4 members, whose
/// keys are one of `keys` (as often as all other keys together) or a short lowercase word.
pub(super) fn json_tree(
    leaf: impl Strategy<Value = Value> + 'static,
    keys: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let weight = u32::try_from(keys.len()).unwrap_or(u32::MAX);
    leaf.prop_recursive(4, 32, 6, move |inner| {
        let key = prop_oneof![
            weight => prop::sample::select(keys).prop_map(str::to_owned),
            1 => "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}
