//! Where time comes from.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

/// A source of wall-clock time.
///
/// Everything in mcp-auth that checks an expiry takes its time from a `Clock`, so tests can move time
/// forward instead of sleeping. [`SystemClock`] is the real one; [`ManualClock`] is for tests.
///
/// # Example
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use mcp_auth_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.unix_seconds(), 1_005);
/// ```
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// A time no earlier than the current one, which may be cheaper to read than
    /// [`now`](Self::now) and a few milliseconds later than it.
    ///
    /// For a check that must never accept an expired thing on a hot path (a token cache's
    /// hit): `clock.now_upper_bound() < expires_at` proves `now() < expires_at`, and only
    /// errs by calling something expired a little early. The default is `now()`;
    /// [`SystemClock`] reads the kernel's coarse clock on Linux (a few nanoseconds instead of
    /// some twenty) and adds its resolution, twice.
    ///
    /// ```
    /// use mcp_auth_core::{Clock, SystemClock};
    ///
    /// let clock = SystemClock::default();
    /// let before = clock.now();
    /// assert!(clock.now_upper_bound() >= before);
    /// ```
    fn now_upper_bound(&self) -> SystemTime {
        self.now()
    }

    /// The current time in whole seconds since the Unix epoch (0 before the epoch).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }

    fn now_upper_bound(&self) -> SystemTime {
        (**self).now_upper_bound()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clock
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_upper_bound(&self) -> SystemTime {
        coarse::upper_bound().unwrap_or_else(|| self.now())
    }
}

/// Linux's `CLOCK_REALTIME_COARSE`: the real time at the kernel's last tick, read from the vDSO
/// without a system call. It is never later than the real time and, while the system runs, at
/// most one tick (its resolution, 1 to 10 ms) earlier; twice the resolution is added, so the
/// sum is never earlier than the real time.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    use std::{
        sync::OnceLock,
        time::{Duration, SystemTime},
    };

    use rustix::time::{ClockId, clock_getres, clock_gettime};

    /// Twice the coarse clock's resolution, read once; `None` if it is unusable (zero, or a
    /// resolution over 25 ms: then [`now`](super::Clock::now) is read instead).
    fn slack() -> Option<Duration> {
        static SLACK: OnceLock<Option<Duration>> = OnceLock::new();
        *SLACK.get_or_init(|| {
            let res = clock_getres(ClockId::RealtimeCoarse);
            let res = Duration::new(
                u64::try_from(res.tv_sec).ok()?,
                u32::try_from(res.tv_nsec).ok()?,
            );
            (!res.is_zero() && res <= Duration::from_millis(25)).then(|| res * 2)
        })
    }

    pub(super) fn upper_bound() -> Option<SystemTime> {
        let slack = slack()?;
        let now = clock_gettime(ClockId::RealtimeCoarse);
        let since_epoch = Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        );
        SystemTime::UNIX_EPOCH.checked_add(since_epoch + slack)
    }
}

/// A clock that moves only when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    #[must_use]
    pub fn new(now: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clocks_upper_bound_is_never_earlier_than_now_and_close_to_it() {
        let clock = SystemClock;
        for _ in 0..10_000 {
            let before = clock.now();
            let bound = clock.now_upper_bound();
            assert!(bound >= before, "{bound:?} < {before:?}");
            assert!(
                bound <= before + Duration::from_millis(100),
                "{bound:?} is far ahead of {before:?}"
            );
        }
        let shared: Arc<dyn Clock> = Arc::new(SystemClock);
        let before = shared.now();
        assert!(shared.now_upper_bound() >= before);
    }

    #[test]
    fn a_manual_clocks_upper_bound_is_its_time() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(7));
        assert_eq!(clock.now_upper_bound(), clock.now());
    }
}
