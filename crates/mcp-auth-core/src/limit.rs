//! Fixed-window rate limits in one process's memory: the gateway's per-address and per-client
//! request limits. (The authorization server counts in its store instead, so that replicas
//! share the windows: `mcp_auth_server`'s limits use the same fixed-window rule there.)
//!
//! Counters live in memory, one window per key, bounded in number; a full table first drops
//! expired windows, then refuses new keys (failing closed). Times are whole seconds from any
//! fixed origin (the caller's [`Clock`](crate::Clock)).
//!
//! ```
//! use mcp_auth_core::limit::Limiter;
//!
//! let limiter = Limiter::new(2, 60); // two events a minute per key
//! assert!(limiter.hit("10.0.0.1", 100));
//! assert!(limiter.hit("10.0.0.1", 101));
//! assert!(!limiter.hit("10.0.0.1", 102));
//! assert_eq!(limiter.retry_after("10.0.0.1", 102), 58);
//! assert!(limiter.hit("10.0.0.2", 102), "keys are independent");
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

/// Counts events per key in windows of `window` seconds; at most `max` per window.
///
/// `Debug` shows the limits, never the keys (they may be addresses or client ids).
pub struct Limiter {
    max: u32,
    window: u64,
    counters: Mutex<HashMap<String, (u64, u32)>>,
}

/// The most keys counted at once.
pub const MAX_KEYS: usize = 10_000;

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// At most `max` events per key in each window of `window` seconds (at least one).
    #[must_use]
    pub fn new(max: u32, window: u64) -> Self {
        Self {
            max,
            window: window.max(1),
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is still under its limit at `now` (does not count).
    pub fn allows(&self, key: &str, now: u64) -> bool {
        let Ok(map) = self.counters.lock() else {
            return false;
        };
        match map.get(key) {
            Some((start, count)) if now < start + self.window => *count < self.max,
            _ => true,
        }
    }

    /// Count one event for `key`; `false` when it is over the limit.
    pub fn hit(&self, key: &str, now: u64) -> bool {
        let Ok(mut map) = self.counters.lock() else {
            return false;
        };
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            let window = self.window;
            map.retain(|_, (start, _)| now < *start + window);
            if map.len() >= MAX_KEYS {
                return false;
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }

    /// Seconds until the window of `key` ends.
    pub fn retry_after(&self, key: &str, now: u64) -> u64 {
        let Ok(map) = self.counters.lock() else {
            return self.window;
        };
        map.get(key).map_or(self.window, |(start, _)| {
            (start + self.window).saturating_sub(now).max(1)
        })
    }

    /// Forget `key` (a successful sign-in clears its failures).
    pub fn clear(&self, key: &str) {
        if let Ok(mut map) = self.counters.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_max_events_then_refuses_until_it_ends() {
        let l = Limiter::new(3, 60);
        assert!(l.hit("a", 100) && l.hit("a", 101) && l.hit("a", 102));
        assert!(!l.allows("a", 103));
        assert!(!l.hit("a", 103));
        assert!(l.allows("b", 103), "keys are independent");
        assert_eq!(l.retry_after("a", 130), 30);
        assert!(l.allows("a", 160), "a new window");
        assert!(l.hit("a", 160));
    }

    #[test]
    fn clear_forgets_a_key() {
        let l = Limiter::new(1, 60);
        assert!(l.hit("a", 0));
        assert!(!l.allows("a", 1));
        l.clear("a");
        assert!(l.allows("a", 1));
    }
}
