//! The tables of a [`MemoryStore`](super::MemoryStore) and the mutations several operations
//! share (refresh families, rotation).

use std::collections::{HashMap, HashSet};

use crate::store::records::foreign_refresh;
use crate::store::{
    ClientRecord, CodeRecord, ConsentRecord, FlowKind, FlowRecord, GrantRecord, RefreshRecord,
    RefreshState, Rotation, StoreError, StoredKey, TokenHash, UpstreamTokenRecord, Window,
};

/// Every record, behind the store's one lock.
#[derive(Default)]
pub(super) struct State {
    pub(super) clients: HashMap<String, ClientRecord>,
    /// Registration key (hash of the canonical metadata) → `client_id` of a public client.
    pub(super) public_clients: HashMap<TokenHash, String>,
    /// Codes with their "used" flag.
    pub(super) codes: HashMap<TokenHash, (CodeRecord, bool)>,
    pub(super) grants: HashMap<String, GrantRecord>,
    pub(super) refresh: HashMap<TokenHash, RefreshRecord>,
    /// Grant id → the hashes of its refresh tokens.
    pub(super) families: HashMap<String, HashSet<TokenHash>>,
    /// Refresh-token hash → the hashes of the tokens rotated from it (its successors): a
    /// rotation looks at its token's siblings without walking the whole family, which grows
    /// by one with every rotation of a long-lived grant.
    pub(super) children: HashMap<TokenHash, Vec<TokenHash>>,
    /// Revoked access-token `jti` → (its `exp`, when it was revoked).
    pub(super) revoked_jtis: HashMap<String, (u64, u64)>,
    /// Short-lived browser state.
    pub(super) flows: HashMap<(FlowKind, TokenHash), FlowRecord>,
    /// Rate-limit windows by key.
    pub(super) windows: HashMap<String, Window>,
    /// Lease name → (holder, until).
    pub(super) leases: HashMap<String, (String, u64)>,
    /// (subject, client_id, resource) → consent.
    pub(super) consents: HashMap<(String, String, String), ConsentRecord>,
    pub(super) keys: HashMap<String, StoredKey>,
    /// Subject → upstream → encrypted tokens.
    pub(super) upstream_tokens: HashMap<String, HashMap<String, UpstreamTokenRecord>>,
}

impl State {
    pub(super) fn forget_registration_key(&mut self, client_id: &str) {
        self.public_clients.retain(|_, id| id != client_id);
    }

    /// Revoke a grant and its family; whether the grant was active at `now` before.
    pub(super) fn revoke_family(&mut self, grant_id: &str, now: u64) -> bool {
        let Some(grant) = self.grants.get_mut(grant_id) else {
            return false;
        };
        let was_active = grant.is_active(now);
        grant.revoked_at.get_or_insert(now);
        if let Some(family) = self.families.get(grant_id) {
            for hash in family {
                if let Some(token) = self.refresh.get_mut(hash) {
                    token.state = RefreshState::Revoked;
                }
            }
        }
        was_active
    }

    /// [`Store::rotate_refresh`], under the write lock.
    pub(super) fn rotate(
        &mut self,
        old: &TokenHash,
        mut new: RefreshRecord,
        now: u64,
        grace: u64,
    ) -> Result<Rotation, StoreError> {
        let Some(token) = self.refresh.get(old) else {
            return Ok(Rotation::Unknown);
        };
        let grant_id = token.grant_id.clone();
        let (token_state, rotated_at, parent) = (token.state, token.rotated_at, token.parent);
        let grant = self.grants.get(&grant_id);
        let grant_revoked = grant.is_none_or(|g| g.revoked_at.is_some());
        let grant_active = grant.is_some_and(|g| g.is_active(now));
        if token_state == RefreshState::Revoked || grant_revoked {
            return Ok(Rotation::Revoked);
        }
        if new.grant_id != grant_id {
            return Err(foreign_refresh());
        }
        new.parent = Some(*old);
        new.rotated_at = None;
        if token_state == RefreshState::Rotated {
            let in_window =
                rotated_at.is_some_and(|at| grace > 0 && now.saturating_sub(at) <= grace);
            let unused = {
                let mut successors = self.successors(&grant_id, old).peekable();
                successors.peek().is_some() && successors.all(|t| t.state == RefreshState::Active)
            };
            if in_window && grant_active && unused {
                self.insert_refresh(new)?;
                return Ok(Rotation::WithinGrace);
            }
            self.revoke_family(&grant_id, now);
            return Ok(Rotation::Reused { grant_id });
        }
        // Checked before anything changes: a failed rotation leaves the family as it was.
        if self.refresh.contains_key(&new.hash) {
            return Err(StoreError::new("refresh token already stored"));
        }
        // The first use of a successor supersedes its unused siblings: one live branch.
        if let Some(parent) = parent {
            let siblings: Vec<TokenHash> = self
                .successors(&grant_id, &parent)
                .filter(|t| t.hash != *old && t.state == RefreshState::Active)
                .map(|t| t.hash)
                .collect();
            for hash in siblings {
                if let Some(token) = self.refresh.get_mut(&hash) {
                    token.state = RefreshState::Rotated;
                }
            }
        }
        self.insert_refresh(new)?;
        if let Some(token) = self.refresh.get_mut(old) {
            token.state = RefreshState::Rotated;
            token.rotated_at = Some(now);
        }
        Ok(Rotation::Rotated)
    }

    /// The refresh tokens of `grant_id` rotated from `parent`.
    pub(super) fn successors<'s>(
        &'s self,
        grant_id: &'s str,
        parent: &TokenHash,
    ) -> impl Iterator<Item = &'s RefreshRecord> + 's {
        self.children
            .get(parent)
            .into_iter()
            .flatten()
            .filter_map(|hash| self.refresh.get(hash))
            .filter(move |t| t.grant_id == grant_id)
    }

    pub(super) fn insert_refresh(&mut self, refresh: RefreshRecord) -> Result<(), StoreError> {
        if self.refresh.contains_key(&refresh.hash) {
            return Err(StoreError::new("refresh token already stored"));
        }
        self.families
            .entry(refresh.grant_id.clone())
            .or_default()
            .insert(refresh.hash);
        if let Some(parent) = refresh.parent {
            self.children.entry(parent).or_default().push(refresh.hash);
        }
        self.refresh.insert(refresh.hash, refresh);
        Ok(())
    }

    pub(super) fn remove_refresh(&mut self, hash: &TokenHash) -> bool {
        let Some(token) = self.refresh.remove(hash) else {
            return false;
        };
        if let Some(family) = self.families.get_mut(&token.grant_id) {
            family.remove(hash);
            if family.is_empty() {
                self.families.remove(&token.grant_id);
            }
        }
        if let Some(parent) = token.parent
            && let Some(siblings) = self.children.get_mut(&parent)
        {
            siblings.retain(|sibling| sibling != hash);
            if siblings.is_empty() {
                self.children.remove(&parent);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refresh(secret: &str, grant_id: &str, expires_at: u64) -> RefreshRecord {
        RefreshRecord {
            hash: TokenHash::of(secret),
            grant_id: grant_id.into(),
            expires_at,
            ..RefreshRecord::default()
        }
    }

    #[test]
    fn a_long_chain_keeps_one_successor_per_token_and_removal_clears_the_index() {
        let mut state = State::default();
        state.grants.insert(
            "g".into(),
            GrantRecord {
                grant_id: "g".into(),
                expires_at: 10_000,
                ..GrantRecord::default()
            },
        );
        state.insert_refresh(refresh("t0", "g", 10_000)).unwrap();
        for i in 1..200 {
            let (old, new) = (format!("t{}", i - 1), format!("t{i}"));
            let rotation = state
                .rotate(&TokenHash::of(&old), refresh(&new, "g", 10_000), i, 0)
                .unwrap();
            assert_eq!(rotation, Rotation::Rotated);
        }
        assert_eq!(state.children.len(), 199, "one entry per rotated token");
        let t5 = TokenHash::of("t5");
        let next: Vec<TokenHash> = state.successors("g", &t5).map(|t| t.hash).collect();
        assert_eq!(next, [TokenHash::of("t6")]);
        assert_eq!(state.successors("other", &t5).count(), 0, "another grant's");

        // Reusing an old token still revokes the family.
        let reused = state
            .rotate(&t5, refresh("late", "g", 10_000), 300, 0)
            .unwrap();
        assert_eq!(
            reused,
            Rotation::Reused {
                grant_id: "g".into()
            }
        );

        for i in 0..200 {
            assert!(state.remove_refresh(&TokenHash::of(&format!("t{i}"))));
        }
        assert!(
            state.children.is_empty(),
            "the index empties with the family"
        );
        assert!(state.families.is_empty());
    }
}
