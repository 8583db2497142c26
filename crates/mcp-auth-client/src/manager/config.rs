//! What a [`TokenManager`](super::TokenManager) is configured with: the settings the
//! [builder](super::TokenManagerBuilder) checked, the [`RetryPolicy`] of refreshes, and the
//! defaults.

use std::time::Duration;

use mcp_auth_core::{ResourceId, Secret};

use crate::{authorize::Enterprise, fetch::UrlPolicy, registration::ClientCredentials};

/// How transient failures of a refresh are retried: `max_attempts` tries in all, waiting
/// `initial_backoff`, then twice as long each time, at most `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 250 ms then 500 ms apart (at most 5 s).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// `max_attempts` tries in all (at least 1), default backoff.
    #[must_use]
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// No retry: one attempt.
    #[must_use]
    pub fn none() -> Self {
        Self::new(1)
    }

    /// The first wait.
    #[must_use]
    pub fn initial_backoff(mut self, wait: Duration) -> Self {
        self.initial_backoff = wait;
        self
    }

    /// The longest wait.
    #[must_use]
    pub fn max_backoff(mut self, wait: Duration) -> Self {
        self.max_backoff = wait;
        self
    }

    /// Tries in all.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything the builder set.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) resource: ResourceId,
    pub(crate) policy: UrlPolicy,
    pub(crate) client_name: String,
    pub(crate) cimd_url: Option<String>,
    pub(crate) credentials: Vec<ClientCredentials>,
    pub(crate) dynamic_registration: bool,
    pub(crate) redirect_port: u16,
    pub(crate) authorization_timeout: Duration,
    pub(crate) refresh_buffer: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_authorization_attempts: u32,
    pub(crate) interactive: bool,
    pub(crate) offline_access: bool,
    pub(crate) client_credentials_grant: bool,
    pub(crate) jwt_bearer_assertion: Option<Secret>,
    pub(crate) enterprise: Option<Enterprise>,
    pub(crate) assume_s256: Vec<String>,
    pub(crate) dpop: bool,
}

/// The default
/// [`TokenManagerBuilder::refresh_buffer`](super::TokenManagerBuilder::refresh_buffer).
pub const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// The default
/// [`TokenManagerBuilder::authorization_timeout`](super::TokenManagerBuilder::authorization_timeout).
pub const DEFAULT_AUTHORIZATION_TIMEOUT: Duration = Duration::from_secs(300);
/// The default
/// [`TokenManagerBuilder::max_authorization_attempts`](super::TokenManagerBuilder::max_authorization_attempts)
/// (SPEC C-30).
pub const DEFAULT_MAX_AUTHORIZATION_ATTEMPTS: u32 = 3;
/// The largest value
/// [`TokenManagerBuilder::max_authorization_attempts`](super::TokenManagerBuilder::max_authorization_attempts)
/// accepts.
pub(crate) const MAX_ATTEMPTS_LIMIT: u32 = 10;
