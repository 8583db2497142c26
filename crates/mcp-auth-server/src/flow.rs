//! Browser state between `GET /authorize` and the consent form's POST, and login sessions.
//!
//! Both are short-lived and kept in memory (a restart asks the user to sign in again; it never
//! loses a client, grant, consent or key, which live in the store):
//!
//! 1. A *transaction* is one validated authorization request waiting for the user. Its id is
//!    in the form; it is bound to the browser by a random cookie (only its hash is kept) and to
//!    a CSRF token, and lives at most ten minutes.
//! 2. A *session* remembers who signed in on this browser (cookie, twelve hours), so a second
//!    authorization with remembered consent needs no page at all.
//! 3. A *pending upstream sign-in* is an approved transaction whose browser went to the
//!    upstream provider: keyed by the hash of its `state`, bound to the browser by a cookie set
//!    on the redirect (only its hash is kept), taken (single use) at the callback, and lives at
//!    most ten minutes.

use std::collections::HashMap;
use std::sync::Mutex;

use mcp_auth_core::ScopeSet;

use crate::login::User;
use crate::store::{ClientSource, TokenHash};
use crate::upstream::UpstreamRequest;

/// How long a transaction waits for the user.
pub(crate) const TRANSACTION_TTL: u64 = 600;
/// How long a login session lasts.
pub(crate) const SESSION_TTL: u64 = 12 * 3600;
/// Bounds, so an unauthenticated flood cannot grow memory without limit.
const MAX_TRANSACTIONS: usize = 10_000;
const MAX_SESSIONS: usize = 10_000;
const MAX_PENDING_UPSTREAM: usize = 10_000;

/// A validated authorization request.
#[derive(Clone, Debug)]
pub(crate) struct AuthRequest {
    pub(crate) client_id: String,
    pub(crate) client_name: String,
    pub(crate) client_source: ClientSource,
    /// Where the response goes (the exact string the request named, or the single registered one).
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_in_request: bool,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) resource: String,
    pub(crate) scope: ScopeSet,
}

/// A transaction waiting for the user.
#[derive(Debug)]
pub(crate) struct Transaction {
    pub(crate) request: AuthRequest,
    pub(crate) csrf: String,
    pub(crate) browser: TokenHash,
    pub(crate) expires_at: u64,
}

/// An approved transaction waiting for the upstream provider's callback.
#[derive(Debug)]
pub(crate) struct PendingUpstream {
    pub(crate) request: AuthRequest,
    pub(crate) upstream: UpstreamRequest,
    /// Hash of the binding cookie set on the redirect to the provider.
    pub(crate) browser: TokenHash,
    pub(crate) expires_at: u64,
}

#[derive(Debug)]
struct Session {
    user: User,
    expires_at: u64,
}

/// In-memory, short-lived browser state.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    transactions: Mutex<HashMap<String, Transaction>>,
    sessions: Mutex<HashMap<TokenHash, Session>>,
    upstream: Mutex<HashMap<TokenHash, PendingUpstream>>,
}

impl Flow {
    /// Store a transaction under `id`. `false` when full even after purging.
    pub(crate) fn insert_transaction(&self, id: String, tx: Transaction, now: u64) -> bool {
        let Ok(mut map) = self.transactions.lock() else {
            return false;
        };
        if map.len() >= MAX_TRANSACTIONS {
            map.retain(|_, t| t.expires_at > now);
            if map.len() >= MAX_TRANSACTIONS {
                return false;
            }
        }
        map.insert(id, tx);
        true
    }

    /// Look a live transaction up and apply `f` to it.
    pub(crate) fn with_transaction<R>(
        &self,
        id: &str,
        now: u64,
        f: impl FnOnce(&Transaction) -> R,
    ) -> Option<R> {
        let map = self.transactions.lock().ok()?;
        map.get(id).filter(|t| t.expires_at > now).map(f)
    }

    /// Remove a transaction (it has been decided).
    pub(crate) fn take_transaction(&self, id: &str, now: u64) -> Option<Transaction> {
        let mut map = self.transactions.lock().ok()?;
        map.remove(id).filter(|t| t.expires_at > now)
    }

    /// Start a session for `user` under the hash of its cookie value.
    pub(crate) fn insert_session(&self, cookie: TokenHash, user: User, now: u64) {
        let Ok(mut map) = self.sessions.lock() else {
            return;
        };
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires_at > now);
            if map.len() >= MAX_SESSIONS {
                return;
            }
        }
        map.insert(
            cookie,
            Session {
                user,
                expires_at: now + SESSION_TTL,
            },
        );
    }

    /// The user of a live session.
    pub(crate) fn session_user(&self, cookie: &TokenHash, now: u64) -> Option<User> {
        let map = self.sessions.lock().ok()?;
        map.get(cookie)
            .filter(|s| s.expires_at > now)
            .map(|s| s.user.clone())
    }

    /// End every session of `subject` (signed out, or its upstream tokens deleted: the next
    /// authorization must sign the user in again, upstream included).
    pub(crate) fn end_sessions(&self, subject: &str) {
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, s| s.user.subject != subject);
        }
    }

    /// Keep a pending upstream sign-in under the hash of its `state`. `false` when full.
    pub(crate) fn insert_upstream(&self, pending: PendingUpstream, now: u64) -> bool {
        let Ok(mut map) = self.upstream.lock() else {
            return false;
        };
        if map.len() >= MAX_PENDING_UPSTREAM {
            map.retain(|_, p| p.expires_at > now);
            if map.len() >= MAX_PENDING_UPSTREAM {
                return false;
            }
        }
        map.insert(TokenHash::of(pending.upstream.state()), pending);
        true
    }

    /// Take the pending sign-in of this `state` (single use: it is gone afterwards, even when
    /// it has expired, which answers `None`).
    pub(crate) fn take_upstream(&self, state: &str, now: u64) -> Option<PendingUpstream> {
        let mut map = self.upstream.lock().ok()?;
        map.remove(&TokenHash::of(state))
            .filter(|p| p.expires_at > now)
    }

    /// Drop what expired.
    pub(crate) fn purge(&self, now: u64) {
        if let Ok(mut map) = self.upstream.lock() {
            map.retain(|_, p| p.expires_at > now);
        }
        if let Ok(mut map) = self.transactions.lock() {
            map.retain(|_, t| t.expires_at > now);
        }
        if let Ok(mut map) = self.sessions.lock() {
            map.retain(|_, s| s.expires_at > now);
        }
    }
}
