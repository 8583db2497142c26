//! The in-memory store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use super::{StoreFuture, StoreLock, StoredClient, StoredTokens, TokenKey, TokenStore};

/// Tokens and registrations in memory: lost when the process exits. The default store.
///
/// Cloning shares the same records, so several managers (or a test and a manager) can use one.
/// Its [`lock`](TokenStore::lock) is a real (async) lock, so managers sharing it refresh one at a
/// time. See the [module docs](crate::store) for an example.
#[derive(Debug, Clone, Default)]
pub struct MemoryTokenStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tokens: Mutex<HashMap<TokenKey, StoredTokens>>,
    clients: Mutex<HashMap<String, StoredClient>>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl MemoryTokenStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, Option<StoredTokens>> {
        let found = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save_tokens<'a>(
        &'a self,
        key: &'a TokenKey,
        tokens: &'a StoredTokens,
    ) -> StoreFuture<'a, ()> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), tokens.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove_tokens<'a>(&'a self, key: &'a TokenKey) -> StoreFuture<'a, ()> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Box::pin(async { Ok(()) })
    }

    fn load_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, Option<StoredClient>> {
        let found = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(issuer)
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save_client<'a>(&'a self, client: &'a StoredClient) -> StoreFuture<'a, ()> {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client.issuer.clone(), client.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove_client<'a>(&'a self, issuer: &'a str) -> StoreFuture<'a, ()> {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer);
        Box::pin(async { Ok(()) })
    }

    fn lock<'a>(&'a self, _key: &'a TokenKey) -> StoreFuture<'a, StoreLock> {
        let lock = Arc::clone(&self.inner.lock);
        Box::pin(async move { Ok(StoreLock::new(lock.lock_owned().await)) })
    }
}
