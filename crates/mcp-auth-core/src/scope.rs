//! OAuth scopes (RFC 6749 §3.3).

use std::{fmt, str::FromStr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The error for a scope token with a character outside RFC 6749 §3.3
/// (`%x21 / %x23-5B / %x5D-7E`) or an empty one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope token: scopes are non-empty and use only %x21 / %x23-5B / %x5D-7E")]
pub struct InvalidScope(());

/// One scope token, e.g. `mcp:tools`. Case-sensitive.
///
/// Cheap to clone (an `Arc<str>`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Arc<str>);

impl Scope {
    /// Checks and wraps one scope token.
    ///
    /// # Errors
    /// [`InvalidScope`] when `token` is empty or has a character RFC 6749 §3.3 does not allow
    /// (a space, `"`, `\`, a control character or anything outside ASCII).
    pub fn new(token: &str) -> Result<Self, InvalidScope> {
        if is_scope_token(token) {
            Ok(Self(Arc::from(token)))
        } else {
            Err(InvalidScope(()))
        }
    }

    /// The scope as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The scope `offline_access` (OpenID Connect Core §11): a request for a refresh token.
///
/// It concerns the authorization server only. MCP 2026-07-28 (SEP-2207) lets a client add it when
/// the authorization server lists it in `scopes_supported`, and says an MCP server (a protected
/// resource) should not put it in its `WWW-Authenticate` challenges or in its protected resource
/// metadata's `scopes_supported`: refresh tokens are not a resource requirement.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether `token` is a valid RFC 6749 §3.3 scope token.
#[must_use]
pub const fn is_scope_token(token: &str) -> bool {
    let bytes = token.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)) {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A set of scopes that keeps the order it was built in and holds no duplicates.
///
/// Parsed from and printed as the space-delimited form of RFC 6749 §3.3; serde uses that string form
/// too. Order matters for challenges: `WWW-Authenticate` headers built from a `ScopeSet` are
/// byte-for-byte stable.
///
/// # Example
///
/// ```
/// use mcp_auth_core::ScopeSet;
///
/// let granted: ScopeSet = "mcp:tools files:read".parse()?;
/// let needed: ScopeSet = "mcp:tools mcp:admin".parse()?;
/// assert!(!granted.contains_all(&needed));
/// assert_eq!(needed.difference(&granted).to_string(), "mcp:admin");
/// assert_eq!(granted.union(&needed).to_string(), "mcp:tools files:read mcp:admin");
/// # Ok::<(), mcp_auth_core::InvalidScope>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Parses a space-delimited scope string. Runs of spaces are tolerated; duplicates are dropped.
    ///
    /// # Errors
    /// [`InvalidScope`] when any token is not a valid scope token.
    pub fn parse(s: &str) -> Result<Self, InvalidScope> {
        let mut set = Self::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            set.insert(Scope::new(token)?);
        }
        Ok(set)
    }

    /// Builds a set from scope tokens.
    ///
    /// # Errors
    /// [`InvalidScope`] when any token is not a valid scope token.
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut set = Self::new();
        for token in tokens {
            set.insert(Scope::new(token.as_ref())?);
        }
        Ok(set)
    }

    /// Adds a scope at the end, unless it is already present. Returns whether it was added.
    pub fn insert(&mut self, scope: Scope) -> bool {
        if self.contains(scope.as_str()) {
            false
        } else {
            self.0.push(scope);
            true
        }
    }

    /// Whether the set holds `scope`.
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    /// Whether every scope of `other` is in `self`.
    #[must_use]
    pub fn contains_all(&self, other: &Self) -> bool {
        other.iter().all(|s| self.contains(s.as_str()))
    }

    /// `self` followed by the scopes of `other` it does not already hold.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for s in other.iter() {
            out.insert(s.clone());
        }
        out
    }

    /// The scopes of `self` that are not in `other`, in `self`'s order.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        Self(
            self.0
                .iter()
                .filter(|s| !other.contains(s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// The scopes of `self` that are also in `other`, in `self`'s order.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        Self(
            self.0
                .iter()
                .filter(|s| other.contains(s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// The scopes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    /// The number of scopes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.iter()).finish()
    }
}

impl FromStr for ScopeSet {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = Self::new();
        for s in iter {
            set.insert(s);
        }
        set
    }
}

impl Extend<Scope> for ScopeSet {
    fn extend<I: IntoIterator<Item = Scope>>(&mut self, iter: I) {
        for s in iter {
            self.insert(s);
        }
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_follows_rfc_6749_section_3_3() {
        assert!(Scope::new("mcp:tools").is_ok());
        assert!(Scope::new("a!#[]~").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert!(Scope::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn parse_keeps_order_and_drops_duplicates() {
        let set = ScopeSet::parse("  b a  b c ").unwrap();
        assert_eq!(set.to_string(), "b a c");
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn scopes_are_case_sensitive() {
        let set = ScopeSet::parse("Read").unwrap();
        assert!(!set.contains("read"));
    }

    #[test]
    fn serde_uses_the_space_delimited_string() {
        let set = ScopeSet::parse("a b").unwrap();
        assert_eq!(serde_json::to_string(&set).unwrap(), "\"a b\"");
        let back: ScopeSet = serde_json::from_str("\"a b\"").unwrap();
        assert_eq!(back, set);
        assert!(serde_json::from_str::<ScopeSet>("\"a \\\"b\"").is_err());
    }
}
