//! [`SessionBindingLayer`]: the configuration and the shared session store.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use mcp_auth_core::{Clock, SystemClock};
use tower_layer::Layer;

use super::{
    service::SessionBinding,
    store::{Settings, Shared, Store},
};
use crate::ConfigError;

/// Applies [`SessionBinding`]: binds each MCP session to the user whose token created it, and
/// answers `404 Not Found` to anyone else who presents its `Mcp-Session-Id` (SPEC RS-30, RS-32).
///
/// The layer owns one session store; every service it builds, and every clone of the layer,
/// shares that store, so clone it per connection rather than building a new one. Each builder
/// method starts a fresh, empty store with the new settings.
///
/// Configuration is checked here, when it is built.
///
/// See the [module docs](crate::mcp::session) for the rules and an example.
#[derive(Clone)]
#[must_use]
pub struct SessionBindingLayer {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for SessionBindingLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingLayer")
            .field("store", &self.shared)
            .finish()
    }
}

impl Default for SessionBindingLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionBindingLayer {
    /// The default number of sessions remembered: 100 000.
    pub const DEFAULT_CAPACITY: usize = 100_000;
    /// The default idle time after which a binding is forgotten: 24 hours.
    pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

    /// A layer with [100 000](Self::DEFAULT_CAPACITY) sessions, a
    /// [24 hour](Self::DEFAULT_IDLE_TTL) idle TTL and the system clock.
    pub fn new() -> Self {
        Self::from_settings(Settings {
            capacity: Self::DEFAULT_CAPACITY,
            idle_ttl: Self::DEFAULT_IDLE_TTL,
            clock: Arc::new(SystemClock::default()),
        })
    }

    fn from_settings(settings: Settings) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings,
                store: Mutex::new(Store::default()),
            }),
        }
    }

    fn with(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = self.shared.settings.clone();
        f(&mut settings);
        Self::from_settings(settings)
    }

    /// The most sessions remembered at once. When the store is full, expired bindings are
    /// dropped first, then the least recently used ones. Default
    /// [100 000](Self::DEFAULT_CAPACITY).
    ///
    /// A forgotten session is trusted on first use again (see the
    /// [module docs](crate::mcp::session#trust-on-first-use)), so size this above the number of
    /// sessions your MCP server keeps alive.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for zero.
    pub fn capacity(self, sessions: usize) -> Result<Self, ConfigError> {
        if sessions == 0 {
            return Err(ConfigError::OutOfRange {
                what: "session binding capacity",
            });
        }
        Ok(self.with(|s| s.capacity = sessions))
    }

    /// How long a binding lives without being used; every allowed request refreshes it. Default
    /// [24 hours](Self::DEFAULT_IDLE_TTL).
    ///
    /// Make it at least as long as your MCP server's own session idle timeout: a binding that
    /// expires while the session lives is trusted on first use again.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for zero.
    pub fn idle_ttl(self, ttl: Duration) -> Result<Self, ConfigError> {
        if ttl.is_zero() {
            return Err(ConfigError::OutOfRange {
                what: "session binding idle TTL",
            });
        }
        Ok(self.with(|s| s.idle_ttl = ttl))
    }

    /// Where time comes from (default [`SystemClock`]); tests pass a
    /// [`ManualClock`](mcp_auth_core::ManualClock).
    pub fn clock(self, clock: impl Clock) -> Self {
        self.with(|s| s.clock = Arc::new(clock))
    }

    /// How many sessions are bound right now (expired ones count until they are dropped).
    #[must_use]
    pub fn bound_sessions(&self) -> usize {
        self.shared.bound_sessions()
    }
}

impl<S> Layer<S> for SessionBindingLayer {
    type Service = SessionBinding<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding::from_layer(inner, self)
    }
}
