//! Fixed-window rate limits for the endpoints an anonymous caller can make expensive: open
//! dynamic registration (AS-46), password sign-in (brute force, and PBKDF2's CPU cost) and
//! failed client authentication.
//!
//! Counters live in the [`Store`] ([`Store::count_event`]), so every replica sharing it counts
//! against the same windows. Keys are namespaced by limit and hashed (a username never reaches
//! the store). A store that fails makes the caller answer 503: the limits fail closed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;

use crate::store::{Store, StoreError, TokenHash};

/// Counts events per key in windows of `window` seconds; at most `max` per window.
pub(crate) struct Limiter {
    name: &'static str,
    max: u32,
    window: u64,
    store: Arc<dyn Store>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("name", &self.name)
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    pub(crate) fn new(name: &'static str, max: u32, window: u64, store: Arc<dyn Store>) -> Self {
        Self {
            name,
            max,
            window: window.max(1),
            store,
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.name, TokenHash::of(key).to_hex())
    }

    /// Whether `key` is still under its limit at `now` (does not count).
    pub(crate) async fn allows(&self, key: &str, now: u64) -> Result<bool, StoreError> {
        let window = self.store.get_window(&self.key(key), now).await?;
        Ok(window.is_none_or(|w| w.count < self.max))
    }

    /// Count one event for `key`: [`Hit::Over`] when it is over the limit, with the seconds
    /// until its window ends (from the window just counted: no second read of the store).
    pub(crate) async fn hit(&self, key: &str, now: u64) -> Result<Hit, StoreError> {
        let window = self
            .store
            .count_event(&self.key(key), self.window, now)
            .await?;
        Ok(if window.count <= self.max {
            Hit::Within
        } else {
            Hit::Over {
                retry_after: seconds_left(window.ends_at, now),
            }
        })
    }

    /// Seconds until the window of `key` ends (at least 1).
    pub(crate) async fn retry_after(&self, key: &str, now: u64) -> u64 {
        match self.store.get_window(&self.key(key), now).await {
            Ok(Some(w)) => seconds_left(w.ends_at, now),
            _ => self.window,
        }
    }

    /// Forget `key` (a successful sign-in clears its failures).
    pub(crate) async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.store.clear_window(&self.key(key)).await
    }
}

/// The seconds from `now` until a window ending at `ends_at` ends: a `Retry-After` (at least 1).
fn seconds_left(ends_at: u64, now: u64) -> u64 {
    ends_at.saturating_sub(now).max(1)
}

/// What [`Limiter::hit`] found once the event was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    /// Within the limit.
    Within,
    /// Over it until the window ends, `retry_after` seconds from now (at least 1).
    Over { retry_after: u64 },
}

impl Hit {
    pub(crate) fn is_within(self) -> bool {
        self == Self::Within
    }
}

/// The key of a request's peer address (`ip:…`), when the router is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`; `None` otherwise.
///
/// IPv4-mapped IPv6 addresses count as the IPv4 address; IPv6 addresses by their /64 (one host
/// usually holds a whole /64).
pub(crate) fn address_key(extensions: &http::Extensions) -> Option<String> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| format!("ip:{}", canonical_ip(addr.ip())))
}

fn canonical_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn addresses_are_keyed_by_host_and_ipv6_by_its_64() {
        let key = |addr: &str| {
            let mut extensions = http::Extensions::new();
            extensions.insert(ConnectInfo(addr.parse::<SocketAddr>().unwrap()));
            address_key(&extensions)
        };
        assert_eq!(key("192.0.2.7:4000").as_deref(), Some("ip:192.0.2.7"));
        assert_eq!(
            key("192.0.2.7:4001"),
            key("192.0.2.7:4000"),
            "the port does not count"
        );
        assert_eq!(
            key("[::ffff:192.0.2.7]:4000").as_deref(),
            Some("ip:192.0.2.7"),
            "an IPv4-mapped address is the IPv4 address"
        );
        assert_eq!(
            key("[2001:db8:1:2:aaaa::1]:443").as_deref(),
            Some("ip:2001:db8:1:2::/64")
        );
        assert_eq!(
            key("[2001:db8:1:2:bbbb::9]:443"),
            key("[2001:db8:1:2:aaaa::1]:443"),
            "one /64 is one address"
        );
        assert_eq!(
            address_key(&http::Extensions::new()),
            None,
            "no peer address known"
        );
    }

    #[tokio::test]
    async fn a_window_allows_max_events_then_refuses_until_it_ends() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let l = Limiter::new("t", 3, 60, store.clone());
        for now in [100, 101, 102] {
            assert!(l.hit("a", now).await.unwrap().is_within());
        }
        assert!(!l.allows("a", 103).await.unwrap());
        assert!(!l.hit("a", 103).await.unwrap().is_within());
        assert_eq!(
            l.hit("a", 110).await.unwrap(),
            Hit::Over { retry_after: 50 },
            "the window that began at 100 ends at 160"
        );
        assert!(l.allows("b", 103).await.unwrap(), "keys are independent");
        assert_eq!(l.retry_after("a", 130).await, 30);
        assert!(l.allows("a", 160).await.unwrap(), "a new window");
        assert!(l.hit("a", 160).await.unwrap().is_within());
        let other = Limiter::new("u", 3, 60, store);
        assert!(
            other.allows("a", 103).await.unwrap(),
            "limits are independent"
        );
    }

    #[tokio::test]
    async fn clear_forgets_a_key() {
        let l = Limiter::new("t", 1, 60, Arc::new(MemoryStore::new()));
        assert!(l.hit("a", 0).await.unwrap().is_within());
        assert!(!l.allows("a", 1).await.unwrap());
        l.clear("a").await.unwrap();
        assert!(l.allows("a", 1).await.unwrap());
    }
}
