//! Scope strings (mcp-auth-core `ScopeSet`): parsing against an independent reading of
//! RFC 6749 §3.3, the print/parse round trip, and the set operations' laws.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_auth_core::{Scope, ScopeSet, is_scope_token};
use mcp_auth_fuzz::{fields, text};

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn reference_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

fn check(s: &str) -> Option<ScopeSet> {
    let tokens: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
    let valid = tokens.iter().all(|t| reference_token(t));
    for t in &tokens {
        assert_eq!(is_scope_token(t), reference_token(t), "{t:?}");
        assert_eq!(Scope::new(t).is_ok(), reference_token(t), "{t:?}");
    }
    match ScopeSet::parse(s) {
        Ok(set) => {
            assert!(valid, "accepted an invalid scope string {s:?}");
            let printed = set.to_string();
            assert_eq!(ScopeSet::parse(&printed).as_ref(), Ok(&set), "{printed:?}");
            // Order of first appearance, duplicates dropped.
            let mut expected: Vec<&str> = Vec::new();
            for t in &tokens {
                if !expected.contains(t) {
                    expected.push(t);
                }
            }
            assert_eq!(printed, expected.join(" "));
            assert_eq!(set.len(), expected.len());
            Some(set)
        }
        Err(_) => {
            assert!(!valid, "refused a valid scope string {s:?}");
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 2);
    let (Some(a), Some(b)) = (check(&text(f[0])), check(&text(f[1]))) else {
        return;
    };
    let union = a.union(&b);
    assert!(union.contains_all(&a) && union.contains_all(&b));
    let diff = a.difference(&b);
    assert!(a.contains_all(&diff));
    assert!(diff.iter().all(|s| !b.contains(s.as_str())));
    let both = a.intersection(&b);
    assert!(a.contains_all(&both) && b.contains_all(&both));
    assert_eq!(diff.len() + both.len(), a.len());
    assert_eq!(union.len(), a.len() + b.difference(&a).len());
});
