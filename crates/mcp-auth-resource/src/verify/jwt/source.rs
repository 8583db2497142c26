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

use super::{
    fetch::{FetchError, Fetcher},
    jwks::KeySet,
};
use crate::verify::VerifyError;

/// Timing of the remote key set.
#[derive(Debug, Clone, Copy)]
pub(super) struct RemoteConfig {
    /// Least time between two fetches triggered by unknown keys (from the last attempt).
    pub(super) cooldown: Duration,
    /// Clamp for the `Cache-Control` lifetime.
    pub(super) refresh_min: Duration,
    /// Clamp for the `Cache-Control` lifetime.
    pub(super) refresh_max: Duration,
    /// Lifetime when the response has no `Cache-Control: max-age`.
    pub(super) refresh_default: Duration,
    /// Keys older than this (since the last successful fetch) are not used.
    pub(super) max_stale: Option<Duration>,
    /// Whether to refresh in the background before the keys expire.
    pub(super) background: bool,
    /// Bound on one whole fetch (discovery and key set).
    pub(super) deadline: Duration,
}

/// The keys in use and when they were fetched.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    pub(super) set: KeySet,
    /// `None` until the first successful fetch.
    pub(super) fetched_at: Option<SystemTime>,
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

/// A key set fetched over HTTP and cached.
pub(super) struct Remote {
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    config: RemoteConfig,
    snapshot: ArcSwap<Snapshot>,
    control: Mutex<Control>,
    background: Mutex<Option<AbortHandle>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot.load();
        f.debug_struct("Remote")
            .field("location", self.fetcher.location())
            .field("keys", &snapshot.set.len())
            .field("fetched_at", &snapshot.fetched_at)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Remote {
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
pub(super) fn refresh_delay(max_age: Option<Duration>, config: &RemoteConfig) -> Duration {
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

impl Remote {
    pub(super) fn new(fetcher: Fetcher, clock: Arc<dyn Clock>, config: RemoteConfig) -> Arc<Self> {
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
    pub(super) fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Whether `snapshot` may be used: fetched at least once and not older than `max_stale`.
    pub(super) fn is_usable(&self, snapshot: &Snapshot) -> bool {
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
    pub(super) async fn refresh_for_unknown_key(self: &Arc<Self>) -> Result<(), VerifyError> {
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
    pub(super) async fn refresh_now(self: &Arc<Self>) -> Result<(), VerifyError> {
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
    remote: Arc<Remote>,
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
                        target: "mcp_auth_resource::jwt",
                        error = %_error,
                        "JWK Set fetch failed; keeping the cached keys"
                    );
                } else {
                    tracing::error!(
                        target: "mcp_auth_resource::jwt",
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
