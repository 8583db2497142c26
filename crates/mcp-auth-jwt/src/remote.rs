//! The remote key set: lock-free reads, single-flight detached refetches, cool-down, background
//! refresh and serving stale keys through an outage.

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError, Weak},
    time::{Duration, SystemTime},
};

use arc_swap::{ArcSwap, Guard};
use mcp_auth_core::Clock;
use tokio::{sync::watch, task::AbortHandle};

use crate::error::VerifyError;
use crate::{
    fetch::{FetchError, Fetcher, Location},
    jwks::KeySet,
};

/// Where a [`RemoteJwks`] gets its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksLocation {
    /// A JWK Set URL (https; plain http only on loopback).
    JwksUri(String),
    /// The `jwks_uri` of this issuer's metadata (RFC 8414, then OpenID Connect Discovery);
    /// the metadata's `issuer` must equal it byte for byte.
    Discover(String),
}

/// The default least time between two key set fetches triggered by unknown `kid`s.
pub const DEFAULT_UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(60);
/// The default lower clamp of the `Cache-Control` lifetime of a key set.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(5 * 60);
/// The default upper clamp of the `Cache-Control` lifetime of a key set.
pub const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// The lifetime of a key set served without `Cache-Control: max-age`.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60 * 60);
/// The default connect timeout of key set and metadata requests.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default total timeout of one key set or metadata request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The timing of a [`RemoteJwks`]. [`Default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteTiming {
    /// Least time between two fetches triggered by unknown `kid`s (1 s – 24 h).
    pub cooldown: Duration,
    /// Lower clamp of the `Cache-Control` lifetime.
    pub refresh_min: Duration,
    /// Upper clamp of the `Cache-Control` lifetime (at most 7 days).
    pub refresh_max: Duration,
    /// Lifetime when the response has no `Cache-Control: max-age`.
    pub refresh_default: Duration,
    /// Keys older than this (since the last successful fetch) are not used; `None`: no limit.
    pub max_stale: Option<Duration>,
    /// Refresh in the background before the keys expire.
    pub background: bool,
    /// Connect timeout of one request.
    pub connect_timeout: Duration,
    /// Total timeout of one request.
    pub timeout: Duration,
}

impl Default for RemoteTiming {
    fn default() -> Self {
        Self {
            cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
            refresh_min: DEFAULT_MIN_REFRESH,
            refresh_max: DEFAULT_MAX_REFRESH,
            refresh_default: DEFAULT_REFRESH,
            max_stale: None,
            background: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A [`RemoteJwks`] setting that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteConfigError {
    /// A URL may not be fetched.
    #[error("{what} URL: {error}")]
    Url {
        /// Which URL.
        what: &'static str,
        /// Why.
        error: crate::url::UrlError,
    },
    /// A duration is out of its range.
    #[error("{what} is out of range")]
    OutOfRange {
        /// Which setting.
        what: &'static str,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built")]
    HttpClient,
}

/// Timing of the remote key set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RemoteConfig {
    /// Least time between two fetches triggered by unknown keys (from the last attempt).
    pub(crate) cooldown: Duration,
    /// Clamp for the `Cache-Control` lifetime.
    pub(crate) refresh_min: Duration,
    /// Clamp for the `Cache-Control` lifetime.
    pub(crate) refresh_max: Duration,
    /// Lifetime when the response has no `Cache-Control: max-age`.
    pub(crate) refresh_default: Duration,
    /// Keys older than this (since the last successful fetch) are not used.
    pub(crate) max_stale: Option<Duration>,
    /// Whether to refresh in the background before the keys expire.
    pub(crate) background: bool,
    /// Bound on one whole fetch (discovery and key set).
    pub(crate) deadline: Duration,
}

/// The keys in use and when they were fetched.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) set: KeySet,
    /// `None` until the first successful fetch.
    pub(crate) fetched_at: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Control {
    /// Set while a fetch runs; resolves to `true` when it is over.
    in_flight: Option<watch::Receiver<bool>>,
    last_attempt: Option<SystemTime>,
    /// The outcome of the last finished attempt; `None` before the first.
    last_ok: Option<bool>,
    /// Consecutive failed attempts.
    failures: u32,
    /// The delay before the next background refresh, from the last successful fetch.
    next_refresh: Duration,
}

enum Begin {
    Wait(watch::Receiver<bool>),
    CoolingDown(Duration),
    NoRuntime,
}

/// A JWK Set fetched over HTTP and cached: lock-free reads, one single-flight fetch at a time
/// on a detached task, at most one fetch per cool-down for unknown `kid`s, a background refresh
/// before the keys expire (`Cache-Control: max-age`, clamped), stale keys served through an
/// outage, bounded bodies and timeouts, no redirects.
///
/// Build it with [`RemoteJwks::new`]; use it through [`KeySource::Remote`](crate::KeySource).
pub struct RemoteJwks {
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    config: RemoteConfig,
    snapshot: ArcSwap<Snapshot>,
    control: Mutex<Control>,
    background: Mutex<Option<AbortHandle>>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot.load();
        f.debug_struct("RemoteJwks")
            .field("location", self.fetcher.location())
            .field("keys", &snapshot.set.len())
            .field("fetched_at", &snapshot.fetched_at)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteJwks {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.background).take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Rounds a retry hint up to whole seconds, at least one (it becomes `Retry-After`).
fn retry_hint(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// Up to 10 % earlier, at random, so replicas do not refresh in lockstep.
fn jitter(d: Duration) -> Duration {
    let tenth = d / 10;
    let nanos = u64::try_from(tenth.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return d;
    }
    let r = getrandom::u64().unwrap_or(0) % nanos;
    d.saturating_sub(Duration::from_nanos(r))
}

/// The time until the next background refresh after a successful fetch.
pub(crate) fn refresh_delay(max_age: Option<Duration>, config: &RemoteConfig) -> Duration {
    max_age
        .unwrap_or(config.refresh_default)
        .clamp(config.refresh_min, config.refresh_max)
}

/// The time until the next background attempt after `failures` failed ones: the cool-down,
/// doubled per failure, at most the larger of the cool-down and the minimum refresh interval.
fn retry_delay(failures: u32, config: &RemoteConfig) -> Duration {
    let cap = config.cooldown.max(config.refresh_min);
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    config.cooldown.saturating_mul(factor).min(cap)
}

impl RemoteJwks {
    /// A remote key set at `location`, with `timing` (checked) and `clock`. Nothing is fetched
    /// until the first verification or [`JwsVerifier::refresh_keys`](crate::JwsVerifier::refresh_keys).
    ///
    /// # Errors
    ///
    /// [`RemoteConfigError`] naming the first unusable setting.
    pub fn new(
        location: JwksLocation,
        timing: RemoteTiming,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, RemoteConfigError> {
        let (location, config) = Self::check(location, timing)?;
        let fetcher = Fetcher::new(location, timing.connect_timeout, timing.timeout)
            .map_err(|_| RemoteConfigError::HttpClient)?;
        Ok(Self::with_fetcher(fetcher, clock, config))
    }

    /// Like [`new`](Self::new), but fetching with `http`, a client the caller built: for key
    /// sets at URLs someone else supplied (a client's `jwks_uri`), whose client resolves names
    /// with SSRF guards. The client should not follow redirects; `timing`'s timeouts still bound
    /// each whole fetch.
    ///
    /// # Errors
    ///
    /// [`RemoteConfigError`] naming the first unusable setting.
    pub fn with_http_client(
        location: JwksLocation,
        timing: RemoteTiming,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Result<Arc<Self>, RemoteConfigError> {
        let (location, config) = Self::check(location, timing)?;
        Ok(Self::with_fetcher(
            Fetcher::with_client(location, http),
            clock,
            config,
        ))
    }

    fn check(
        location: JwksLocation,
        timing: RemoteTiming,
    ) -> Result<(Location, RemoteConfig), RemoteConfigError> {
        let range = |ok: bool, what: &'static str| {
            if ok {
                Ok(())
            } else {
                Err(RemoteConfigError::OutOfRange { what })
            }
        };
        range(
            (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&timing.cooldown),
            "unknown kid cool-down",
        )?;
        range(
            !timing.refresh_min.is_zero()
                && timing.refresh_min <= timing.refresh_max
                && timing.refresh_max <= Duration::from_secs(7 * 86_400),
            "refresh interval",
        )?;
        range(
            !timing.refresh_default.is_zero(),
            "default refresh interval",
        )?;
        range(
            timing.max_stale.is_none_or(|m| !m.is_zero()),
            "maximum staleness",
        )?;
        range(
            !timing.connect_timeout.is_zero()
                && !timing.timeout.is_zero()
                && timing.connect_timeout <= timing.timeout,
            "HTTP timeouts",
        )?;
        let url = |raw: &str, what: &'static str| {
            crate::url::fetchable_url(raw).map_err(|error| RemoteConfigError::Url { what, error })
        };
        let location = match location {
            JwksLocation::JwksUri(uri) => Location::JwksUri(url(&uri, "jwks_uri")?),
            JwksLocation::Discover(issuer) => {
                url(&issuer, "issuer")?;
                Location::Discover { issuer }
            }
        };
        Ok((
            location,
            RemoteConfig {
                cooldown: timing.cooldown,
                refresh_min: timing.refresh_min,
                refresh_max: timing.refresh_max,
                refresh_default: timing.refresh_default,
                max_stale: timing.max_stale,
                background: timing.background,
                deadline: timing.timeout.saturating_mul(2),
            },
        ))
    }

    /// How many usable keys are cached now.
    #[must_use]
    pub fn key_count(&self) -> usize {
        self.snapshot().set.len()
    }

    fn with_fetcher(fetcher: Fetcher, clock: Arc<dyn Clock>, config: RemoteConfig) -> Arc<Self> {
        Arc::new(Self {
            fetcher,
            clock,
            config,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            control: Mutex::new(Control::default()),
            background: Mutex::new(None),
        })
    }

    /// The keys in use, lock-free.
    pub(crate) fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Whether `snapshot` may be used: fetched at least once and not older than `max_stale`.
    pub(crate) fn is_usable(&self, snapshot: &Snapshot) -> bool {
        let Some(fetched_at) = snapshot.fetched_at else {
            return false;
        };
        match self.config.max_stale {
            None => true,
            Some(max) => self
                .clock
                .now()
                .duration_since(fetched_at)
                .map_or(true, |age| age <= max),
        }
    }

    /// Called when a token names a key we do not have (or the keys are not usable): one
    /// single-flight fetch, at most once per cool-down.
    ///
    /// `Ok` means the keys are as fresh as the cool-down allows (look again; a key still missing
    /// is really unknown). `Err` is an [`Unavailable`](crate::VerifyErrorKind::Unavailable) error:
    /// the key set could not be fetched.
    pub(crate) async fn refresh_for_unknown_key(self: &Arc<Self>) -> Result<(), VerifyError> {
        match self.begin(true) {
            Begin::Wait(rx) => self.wait(rx).await,
            Begin::CoolingDown(remaining) => {
                let last_ok = lock(&self.control).last_ok == Some(true);
                if last_ok && self.is_usable(&self.snapshot()) {
                    Ok(())
                } else {
                    Err(VerifyError::unavailable(Some(retry_hint(remaining))))
                }
            }
            Begin::NoRuntime => {
                Err(VerifyError::unavailable(None).with_source(FetchError::NoRuntime))
            }
        }
    }

    /// Fetches now, ignoring the cool-down (but joining a fetch already running).
    pub(crate) async fn refresh_now(self: &Arc<Self>) -> Result<(), VerifyError> {
        match self.begin(false) {
            Begin::Wait(rx) => self.wait(rx).await,
            Begin::CoolingDown(_) | Begin::NoRuntime => {
                Err(VerifyError::unavailable(None).with_source(FetchError::NoRuntime))
            }
        }
    }

    async fn wait(&self, mut rx: watch::Receiver<bool>) -> Result<(), VerifyError> {
        // An error means the fetch task is gone; its drop guard has recorded the outcome.
        let _ = rx.wait_for(|done| *done).await;
        let control = lock(&self.control);
        if control.last_ok == Some(true) {
            Ok(())
        } else {
            let remaining = control
                .last_attempt
                .and_then(|last| self.clock.now().duration_since(last).ok())
                .map_or(self.config.cooldown, |elapsed| {
                    self.config.cooldown.saturating_sub(elapsed)
                });
            Err(VerifyError::unavailable(Some(retry_hint(remaining))))
        }
    }

    /// Joins the running fetch, or starts one on a detached task (so a cancelled request cannot
    /// wedge it), or says how long the cool-down still lasts.
    fn begin(self: &Arc<Self>, respect_cooldown: bool) -> Begin {
        let mut control = lock(&self.control);
        if let Some(rx) = &control.in_flight
            && rx.has_changed().is_ok()
            && !*rx.borrow()
        {
            return Begin::Wait(rx.clone());
        }
        let now = self.clock.now();
        if respect_cooldown
            && let Some(last) = control.last_attempt
            // A clock that went backwards allows an attempt rather than blocking for long.
            && let Ok(elapsed) = now.duration_since(last)
            && elapsed < self.config.cooldown
        {
            return Begin::CoolingDown(self.config.cooldown - elapsed);
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Begin::NoRuntime;
        };
        let (tx, rx) = watch::channel(false);
        control.in_flight = Some(rx.clone());
        control.last_attempt = Some(now);
        drop(control);
        let attempt = Attempt {
            remote: Arc::clone(self),
            tx,
            outcome: None,
        };
        runtime.spawn(attempt.run());
        Begin::Wait(rx)
    }

    /// Records the end of an attempt (called from the attempt's drop guard): `Some(delay until
    /// the next refresh)` on success.
    fn finish(&self, outcome: Option<Duration>) {
        let mut control = lock(&self.control);
        control.in_flight = None;
        control.last_ok = Some(outcome.is_some());
        match outcome {
            Some(next) => {
                control.failures = 0;
                control.next_refresh = next;
            }
            None => control.failures = control.failures.saturating_add(1),
        }
    }

    /// Starts the background refresh task once; it holds only a weak reference and is aborted
    /// when the verifier is dropped.
    fn ensure_background(self: &Arc<Self>, first_delay: Duration) {
        if !self.config.background {
            return;
        }
        let mut slot = lock(&self.background);
        if slot.is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let task = runtime.spawn(async move {
            let mut delay = first_delay;
            loop {
                tokio::time::sleep(delay).await;
                let Some(remote) = weak.upgrade() else {
                    return;
                };
                delay = remote.background_refresh().await;
            }
        });
        *slot = Some(task.abort_handle());
    }

    /// One background refresh; returns the delay until the next one.
    async fn background_refresh(self: &Arc<Self>) -> Duration {
        event!(debug, "refreshing the JWK Set in the background");
        if let Begin::Wait(mut rx) = self.begin(false) {
            let _ = rx.wait_for(|done| *done).await;
        }
        let control = lock(&self.control);
        if control.last_ok == Some(true) {
            jitter(control.next_refresh)
        } else {
            jitter(retry_delay(control.failures, &self.config))
        }
    }
}

/// One fetch attempt, run on its own task. Dropping it (finished, panicked or aborted at runtime
/// shutdown) always records the outcome and wakes the waiters.
struct Attempt {
    remote: Arc<RemoteJwks>,
    tx: watch::Sender<bool>,
    /// `Some(delay until the next refresh)` once the fetch succeeded.
    outcome: Option<Duration>,
}

impl Attempt {
    async fn run(mut self) {
        let remote = Arc::clone(&self.remote);
        let result = tokio::time::timeout(remote.config.deadline, remote.fetcher.fetch())
            .await
            .unwrap_or(Err(FetchError::Timeout));
        match result {
            Ok(fetched) => {
                let delay = refresh_delay(fetched.max_age, &remote.config);
                event!(
                    debug,
                    keys = fetched.set.len(),
                    skipped = fetched.skipped,
                    refresh_in_secs = delay.as_secs(),
                    "JWK Set fetched"
                );
                remote.snapshot.store(Arc::new(Snapshot {
                    set: fetched.set,
                    fetched_at: Some(remote.clock.now()),
                }));
                self.outcome = Some(delay);
                remote.ensure_background(jitter(delay));
            }
            Err(_error) =>
            {
                #[cfg(feature = "tracing")]
                if remote.snapshot().fetched_at.is_some() {
                    tracing::warn!(
                        target: "mcp_auth_jwt",
                        error = %_error,
                        "JWK Set fetch failed; keeping the cached keys"
                    );
                } else {
                    tracing::error!(
                        target: "mcp_auth_jwt",
                        error = %_error,
                        "JWK Set fetch failed and no keys are cached"
                    );
                }
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.remote.finish(self.outcome.take());
        self.tx.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RemoteConfig {
        RemoteConfig {
            cooldown: Duration::from_secs(60),
            refresh_min: Duration::from_secs(300),
            refresh_max: Duration::from_secs(86_400),
            refresh_default: Duration::from_secs(3600),
            max_stale: None,
            background: true,
            deadline: Duration::from_secs(20),
        }
    }

    #[test]
    fn cache_control_lifetime_stays_inside_the_clamp() {
        let c = config();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(refresh_delay(secs(0), &c), c.refresh_min);
        assert_eq!(refresh_delay(secs(31_536_000), &c), c.refresh_max);
        assert_eq!(refresh_delay(Some(Duration::MAX), &c), c.refresh_max);
        assert_eq!(refresh_delay(secs(900), &c), Duration::from_secs(900));
        assert_eq!(refresh_delay(None, &c), c.refresh_default);
    }

    #[test]
    fn failures_back_off_up_to_the_cap() {
        let c = config();
        let delays: Vec<u64> = (1..=6).map(|n| retry_delay(n, &c).as_secs()).collect();
        assert_eq!(delays, [60, 120, 240, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX, &c), Duration::from_secs(300));
        let long_cooldown = RemoteConfig {
            cooldown: Duration::from_secs(600),
            ..c
        };
        assert_eq!(retry_delay(3, &long_cooldown), Duration::from_secs(600));
    }

    #[test]
    fn jitter_only_shortens_by_at_most_a_tenth() {
        let d = Duration::from_secs(100);
        for _ in 0..200 {
            let j = jitter(d);
            assert!(j <= d && j >= Duration::from_secs(90), "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let _no_overflow = jitter(Duration::MAX);
    }

    #[test]
    fn retry_hints_are_whole_seconds_and_at_least_one() {
        assert_eq!(retry_hint(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            retry_hint(Duration::from_millis(1500)),
            Duration::from_secs(2)
        );
        assert_eq!(retry_hint(Duration::from_secs(60)), Duration::from_secs(60));
    }
}
