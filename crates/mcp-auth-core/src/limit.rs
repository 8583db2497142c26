//! Rate limits per key in one process's memory, on [`governor`]'s keyed GCRA: the gateway's
//! per-address and per-client request limits (feature `limit`). The authorization server counts
//! in its store instead, so that replicas share the windows (`mcp_auth_server`'s limits: fixed
//! windows counted by `Store::count_event`).
//!
//! # Algorithm
//!
//! GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key): `max`
//! events per `window` seconds, with a burst of `max`. A key that used its burst gets one more
//! event every `window / max` seconds; [`Limiter::hit`] answers how long to wait for it. Unlike a
//! fixed window, a client cannot send `2 × max` events across a window boundary.
//!
//! Keys are bounded: when [`MAX_KEYS`] keys are tracked, keys whose bucket is full again are
//! dropped first; if the table is still full, every event is refused (the limit fails closed).
//! Time comes from the caller's [`Clock`], so tests move it instead of sleeping.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use mcp_auth_core::{ManualClock, limit::Limiter};
//!
//! let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
//! let limiter = Limiter::with_clock(2, 60, clock.clone()); // two events a minute per key
//! assert!(limiter.hit("10.0.0.1").is_ok());
//! assert!(limiter.hit("10.0.0.1").is_ok());
//! assert_eq!(limiter.hit("10.0.0.1"), Err(30), "one more in 60 / 2 seconds");
//! assert!(limiter.hit("10.0.0.2").is_ok(), "keys are independent");
//! clock.advance(Duration::from_secs(30));
//! assert!(limiter.hit("10.0.0.1").is_ok());
//! ```

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::{Clock, SystemClock};

/// The most keys tracked at once.
pub const MAX_KEYS: usize = 10_000;

/// Our [`Clock`] as governor's clock: nanoseconds since the Unix epoch.
#[derive(Debug, Clone)]
struct ClockSource(Arc<dyn Clock>);

impl GovernorClock for ClockSource {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let since = self.0.now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Nanos::from(since)
    }
}

/// At most `max` events per key in each `window` seconds (GCRA, burst `max`).
///
/// `Debug` shows the limits, never the keys (they may be addresses or client ids).
pub struct Limiter {
    max: u32,
    window: u64,
    clock: ClockSource,
    limiter:
        RateLimiter<String, DefaultKeyedStateStore<String>, ClockSource, NoOpMiddleware<Nanos>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// At most `max` events (at least one) per key in `window` seconds (at least one), on the
    /// system clock.
    #[must_use]
    pub fn new(max: u32, window: u64) -> Self {
        Self::with_clock(max, window, SystemClock)
    }

    /// The same on `clock`.
    #[must_use]
    pub fn with_clock(max: u32, window: u64, clock: impl Clock) -> Self {
        let burst = NonZeroU32::new(max).unwrap_or(NonZeroU32::MIN);
        let window = window.max(1);
        let period = Duration::from_secs(window) / burst.get();
        // `period` is at least 1 s / u32::MAX, never zero, so `with_period` always succeeds.
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let clock = ClockSource(Arc::new(clock));
        Self {
            max: burst.get(),
            window,
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Count one event for `key`: `Ok(())` under the limit, else `Err(seconds)` to wait before
    /// the next one is allowed (at least 1; for `Retry-After`).
    ///
    /// # Errors
    /// Over the limit, or when [`MAX_KEYS`] keys are in use (then the wait is the window).
    pub fn hit(&self, key: &str) -> Result<(), u64> {
        if self.limiter.len() >= MAX_KEYS {
            self.limiter.retain_recent();
            if self.limiter.len() >= MAX_KEYS {
                return Err(self.window);
            }
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                secs.max(1)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn at(secs: u64) -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn a_key_gets_max_events_then_waits_for_the_next_cell() {
        let clock = at(100);
        let l = Limiter::with_clock(3, 60, clock.clone());
        for _ in 0..3 {
            assert!(l.hit("a").is_ok());
        }
        assert_eq!(l.hit("a"), Err(20), "one cell every 60 / 3 s");
        assert!(l.hit("b").is_ok(), "keys are independent");
        clock.advance(Duration::from_secs(10));
        assert_eq!(l.hit("a"), Err(10));
        clock.advance(Duration::from_secs(10));
        assert!(l.hit("a").is_ok(), "a cell came back");
        assert_eq!(l.hit("a"), Err(20));
        clock.advance(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.hit("a").is_ok(), "after a whole window the burst is back");
        }
        assert!(l.hit("a").is_err());
    }

    #[test]
    fn no_boundary_doubles_the_rate() {
        let clock = at(59);
        let l = Limiter::with_clock(2, 60, clock.clone());
        assert!(l.hit("a").is_ok() && l.hit("a").is_ok());
        clock.advance(Duration::from_secs(1)); // a fixed window would start anew here
        assert!(l.hit("a").is_err());
    }

    #[test]
    fn a_full_table_drops_idle_keys_and_then_fails_closed() {
        let clock = at(0);
        let l = Limiter::with_clock(1, 1, clock.clone());
        for i in 0..MAX_KEYS {
            assert!(l.hit(&i.to_string()).is_ok());
        }
        assert_eq!(l.hit("new"), Err(1), "every tracked key is still busy");
        clock.advance(Duration::from_secs(2));
        assert!(l.hit("new").is_ok(), "idle keys were dropped");
    }

    #[test]
    fn debug_shows_no_key() {
        let l = Limiter::new(1, 60);
        assert!(l.hit("10.1.2.3").is_ok());
        let debug = format!("{l:?}");
        assert!(!debug.contains("10.1.2.3"), "{debug}");
    }
}
