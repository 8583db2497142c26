//! [`JwtVerifierBuilder`]: every setting of a [`JwtVerifier`], checked in `build`.

use std::{fmt, sync::Arc, time::Duration};

use mcp_auth_core::{Clock, ResourceId, SystemClock};
use mcp_auth_jwt::{HeaderPolicy, JwksError, JwsVerifier, KeySet, KeySource};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{
    claims::ClaimPolicy,
    verifier::{Inner, JwtVerifier},
};
use crate::ConfigError;
use crate::JwsAlgorithm;

/// The default clock-skew leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The largest leeway accepted.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// The shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size of HS256).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

#[cfg(feature = "remote")]
use mcp_auth_jwt::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_REFRESH, DEFAULT_MIN_REFRESH, DEFAULT_REFRESH,
    DEFAULT_TIMEOUT, DEFAULT_UNKNOWN_KID_COOLDOWN,
};

#[cfg(feature = "remote")]
#[derive(Debug, Clone)]
enum RemoteSource {
    JwksUri(String),
    Discover,
}

/// Configures a [`JwtVerifier`]; start with [`JwtVerifier::builder`].
///
/// Setters never fail; [`build`](Self::build) checks everything and returns a [`ConfigError`]
/// naming the first mistake. See the [module docs](super) for the defaults and an example.
#[must_use]
pub struct JwtVerifierBuilder {
    issuer: String,
    audience: ResourceId,
    algorithms: Option<Vec<JwsAlgorithm>>,
    hmac_secret: Option<Zeroizing<Vec<u8>>>,
    static_keys: Option<KeySet>,
    static_error: Option<ConfigError>,
    #[cfg(feature = "remote")]
    remote: Option<RemoteSource>,
    leeway: Duration,
    accept_jwt_typ: bool,
    extra_audiences: Vec<String>,
    required_claims: Vec<String>,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "remote")]
    timing: Timing,
}

#[cfg(feature = "remote")]
#[derive(Debug, Clone, Copy)]
struct Timing {
    cooldown: Duration,
    refresh_min: Duration,
    refresh_max: Duration,
    refresh_default: Duration,
    max_stale: Option<Duration>,
    background: bool,
    connect_timeout: Duration,
    timeout: Duration,
}

impl fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("JwtVerifierBuilder");
        d.field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("extra_audiences", &self.extra_audiences)
            .field("algorithms", &self.algorithms)
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("static_keys", &self.static_keys.as_ref().map(KeySet::len));
        #[cfg(feature = "remote")]
        d.field("remote", &self.remote)
            .field("timing", &self.timing);
        d.field("leeway", &self.leeway)
            .field("accept_jwt_typ", &self.accept_jwt_typ)
            .field("required_claims", &self.required_claims)
            .field("clock", &self.clock)
            .finish()
    }
}

impl JwtVerifierBuilder {
    pub(super) fn new(issuer: String, audience: ResourceId) -> Self {
        Self {
            issuer,
            audience,
            algorithms: None,
            hmac_secret: None,
            static_keys: None,
            static_error: None,
            #[cfg(feature = "remote")]
            remote: None,
            leeway: DEFAULT_LEEWAY,
            accept_jwt_typ: false,
            extra_audiences: Vec::new(),
            required_claims: Vec::new(),
            clock: Arc::new(SystemClock::default()),
            #[cfg(feature = "remote")]
            timing: Timing {
                cooldown: DEFAULT_UNKNOWN_KID_COOLDOWN,
                refresh_min: DEFAULT_MIN_REFRESH,
                refresh_max: DEFAULT_MAX_REFRESH,
                refresh_default: DEFAULT_REFRESH,
                max_stale: None,
                background: true,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                timeout: DEFAULT_TIMEOUT,
            },
        }
    }

    fn fail(&mut self, error: ConfigError) {
        if self.static_error.is_none() {
            self.static_error = Some(error);
        }
    }

    fn add_static(&mut self, set: KeySet) {
        match &mut self.static_keys {
            Some(keys) => keys.extend(set),
            None => self.static_keys = Some(set),
        }
    }

    fn jwks_error(e: JwksError) -> ConfigError {
        ConfigError::Key { what: e.as_str() }
    }

    /// Uses a static JWK Set (`{"keys": [...]}`). Entries that are not usable signature keys are
    /// skipped (see the [module docs](super)); a set with no usable key fails `build`.
    pub fn jwks(mut self, jwks: &Value) -> Self {
        let result = match jwks {
            Value::Object(doc) => KeySet::from_document(doc),
            _ => Err(JwksError::NotJson),
        };
        match result {
            Ok((set, _)) => self.add_static(set),
            Err(e) => self.fail(Self::jwks_error(e)),
        }
        self
    }

    /// Uses a static JWK Set given as JSON text.
    pub fn jwks_json(mut self, jwks: &str) -> Self {
        match KeySet::parse(jwks.as_bytes()) {
            Ok((set, _)) => self.add_static(set),
            Err(e) => self.fail(Self::jwks_error(e)),
        }
        self
    }

    /// Adds one static key, as a JWK. Unlike in a set, an unusable key fails `build`.
    pub fn jwk(mut self, jwk: &Value) -> Self {
        let mut set = KeySet::default();
        match set.push_jwk(jwk) {
            Ok(()) => self.add_static(set),
            Err(reason) => self.fail(ConfigError::Key {
                what: reason.as_str(),
            }),
        }
        self
    }

    /// Fetches the keys from this JWK Set URL (https; plain http only on loopback), lazily on the
    /// first verification, then keeps them fresh (see the [module docs](super#remote-key-sets)).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.remote = Some(RemoteSource::JwksUri(url.into()));
        self
    }

    /// Finds the JWK Set URL in the issuer's metadata: RFC 8414
    /// (`/.well-known/oauth-authorization-server`, inserted before the issuer's path), then
    /// OpenID Connect Discovery (`/.well-known/openid-configuration`, inserted and appended).
    /// The first document whose `issuer` equals the configured issuer byte for byte is used.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn discover_jwks(mut self) -> Self {
        self.remote = Some(RemoteSource::Discover);
        self
    }

    /// Accepts HMAC-signed tokens (`HS256`, `HS384`, `HS512`) verified with this shared secret
    /// (at least 32 bytes). HMAC tokens are verified only with this secret, never with a key
    /// from a JWK Set. Without this call, HMAC tokens are refused.
    pub fn hmac_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.hmac_secret = Some(Zeroizing::new(secret.as_ref().to_vec()));
        self
    }

    /// Replaces the algorithm allow-list. The default is every asymmetric algorithm
    /// ([`JwsAlgorithm::ASYMMETRIC`]), plus the HMAC ones when an HMAC secret is set.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = JwsAlgorithm>) -> Self {
        let mut list: Vec<JwsAlgorithm> = Vec::new();
        for alg in algorithms {
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        self.algorithms = Some(list);
        self
    }

    /// The clock-skew leeway for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Also accepts `typ: JWT` (any case, with or without `application/`) and tokens without
    /// `typ`.
    ///
    /// By default only RFC 9068 access tokens (`typ: at+jwt` or `application/at+jwt`) are
    /// accepted, so an ID token or another JWT from the same issuer cannot be replayed as an
    /// access token. Keycloak, Auth0 and Entra ID send `typ: JWT` on access tokens: call this
    /// for them. Other `typ` values are refused either way.
    pub fn accept_jwt_typ(mut self) -> Self {
        self.accept_jwt_typ = true;
        self
    }

    /// Also accepts tokens whose `aud` is exactly `audience` (plain string equality), besides the
    /// canonical resource URI.
    ///
    /// **Use with care**: this is for authorization servers that cannot put the resource URI into
    /// `aud`. Microsoft Entra ID v2.0 access tokens carry the API's client ID (a GUID) as `aud`,
    /// whatever the Application ID URI is. Name only an audience that identifies *this* resource
    /// and nothing else, or tokens issued for another service become valid here (SPEC RS-22).
    /// Each call is logged at `warn` when the verifier is built.
    pub fn accept_audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// Requires a claim to be present (and not `null`), e.g. `sub` or `jti`.
    pub fn require_claim(mut self, name: impl Into<String>) -> Self {
        self.required_claims.push(name.into());
        self
    }

    /// Where time comes from for `exp`/`nbf`/`iat`, key age and the unknown-`kid` cool-down (default
    /// [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The least time between two key set fetches triggered by tokens with an unknown `kid`,
    /// measured from the last attempt, successful or not (default 60 s, 1 s to 1 day).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.cooldown = cooldown;
        self
    }

    /// The clamp for the key set lifetime taken from `Cache-Control: max-age` (default 5 min to
    /// 24 h). The background refresh runs when the lifetime ends, up to 10 % earlier at random.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn refresh_interval(mut self, min: Duration, max: Duration) -> Self {
        self.timing.refresh_min = min;
        self.timing.refresh_max = max;
        self
    }

    /// The key set lifetime when the response has no `Cache-Control: max-age` (default 1 h;
    /// clamped like a header value).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn default_refresh_interval(mut self, interval: Duration) -> Self {
        self.timing.refresh_default = interval;
        self
    }

    /// Whether to refresh the key set in the background before its lifetime ends (default
    /// `true`). Without it, keys are fetched only for unknown `kid`s.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn background_refresh(mut self, enabled: bool) -> Self {
        self.timing.background = enabled;
        self
    }

    /// Stops using cached keys this long after the last successful fetch, answering
    /// `Unavailable` instead (default: keys are served stale for as long as the authorization
    /// server is unreachable).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.timing.max_stale = Some(max_stale);
        self
    }

    /// Connect and total timeouts of each key set or metadata request (default 5 s and 10 s).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn http_timeouts(mut self, connect: Duration, total: Duration) -> Self {
        self.timing.connect_timeout = connect;
        self.timing.timeout = total;
        self
    }

    /// Checks the configuration and builds the verifier. Nothing is fetched yet: a remote key set
    /// is fetched on the first verification, or by [`JwtVerifier::refresh_keys`].
    ///
    /// # Errors
    ///
    /// - [`ConfigError::InvalidUrl`] / [`ConfigError::InsecureUrl`]: the issuer (for discovery)
    ///   or the `jwks_uri` is not an absolute https URL (plain http is allowed on loopback only);
    ///   the issuer is empty.
    /// - [`ConfigError::Key`]: no key source, both a static and a remote one, a static set with no
    ///   usable key, an unusable static JWK, an HMAC secret shorter than 32 bytes.
    /// - [`ConfigError::Algorithm`]: an empty allow-list, an HMAC algorithm without a secret, a
    ///   secret without an HMAC algorithm, an asymmetric algorithm without a key set.
    /// - [`ConfigError::OutOfRange`]: the leeway, cool-down, refresh interval, staleness or a
    ///   timeout is out of range.
    /// - [`ConfigError::HttpClient`]: the HTTP client could not be built.
    pub fn build(self) -> Result<JwtVerifier, ConfigError> {
        if let Some(error) = self.static_error {
            return Err(error);
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::InvalidUrl { what: "issuer" });
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::OutOfRange { what: "leeway" });
        }
        #[cfg(feature = "remote")]
        let has_remote = self.remote.is_some();
        #[cfg(not(feature = "remote"))]
        let has_remote = false;
        if self.static_keys.is_some() && has_remote {
            return Err(ConfigError::Key {
                what: "configure either a static key set or a remote one, not both",
            });
        }
        let has_key_set = self.static_keys.is_some() || has_remote;
        let hmac = match &self.hmac_secret {
            Some(secret) if secret.len() < MIN_HMAC_SECRET_BYTES => {
                return Err(ConfigError::Key {
                    what: "the HMAC secret must be at least 32 bytes",
                });
            }
            Some(secret) => Some(secret.as_slice()),
            None => None,
        };
        if !has_key_set && hmac.is_none() {
            return Err(ConfigError::Key {
                what: "no verification key: configure a JWK Set, a jwks_uri, discovery or an HMAC secret",
            });
        }
        let algorithms = match self.algorithms {
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::Algorithm {
                        what: "the algorithm allow-list is empty",
                    });
                }
                if list.iter().any(|a| a.is_hmac()) && hmac.is_none() {
                    return Err(ConfigError::Algorithm {
                        what: "HMAC algorithms are allowed only with an HMAC secret",
                    });
                }
                if hmac.is_some() && !list.iter().any(|a| a.is_hmac()) {
                    return Err(ConfigError::Algorithm {
                        what: "an HMAC secret is set but no HMAC algorithm is allowed",
                    });
                }
                if !has_key_set && list.iter().any(|a| !a.is_hmac()) {
                    return Err(ConfigError::Algorithm {
                        what: "asymmetric algorithms are allowed but no key set is configured",
                    });
                }
                list
            }
            None => {
                let mut list = Vec::new();
                if has_key_set {
                    list.extend(JwsAlgorithm::ASYMMETRIC);
                }
                if hmac.is_some() {
                    list.extend(JwsAlgorithm::HMAC);
                }
                list
            }
        };

        let keys = match self.static_keys {
            Some(set) => KeySource::Static(set),
            None => {
                #[cfg(feature = "remote")]
                match self.remote {
                    Some(source) => KeySource::Remote(remote(
                        &self.issuer,
                        source,
                        self.timing,
                        Arc::clone(&self.clock),
                    )?),
                    None => KeySource::HmacOnly,
                }
                #[cfg(not(feature = "remote"))]
                KeySource::HmacOnly
            }
        };

        #[cfg(feature = "tracing")]
        for extra in &self.extra_audiences {
            tracing::warn!(
                target: "mcp_auth_resource::jwt",
                audience = %extra,
                resource = %self.audience,
                "JwtVerifier also accepts tokens for an extra audience; make sure it names only this resource"
            );
        }
        if self.extra_audiences.iter().any(String::is_empty) {
            return Err(ConfigError::OutOfRange {
                what: "extra audience (empty)",
            });
        }
        let jws = JwsVerifier::new(
            HeaderPolicy::new(algorithms, self.accept_jwt_typ),
            keys,
            hmac,
        );
        Ok(JwtVerifier(Arc::new(Inner {
            jws,
            claims: ClaimPolicy {
                issuer: self.issuer,
                audience: self.audience,
                extra_audiences: self.extra_audiences,
                leeway_secs: self.leeway.as_secs(),
                required: self.required_claims,
            },
            clock: self.clock,
        })))
    }
}

#[cfg(feature = "remote")]
fn remote(
    issuer: &str,
    source: RemoteSource,
    timing: Timing,
    clock: Arc<dyn Clock>,
) -> Result<Arc<mcp_auth_jwt::RemoteJwks>, ConfigError> {
    use mcp_auth_jwt::{JwksLocation, RemoteConfigError, RemoteJwks, RemoteTiming, UrlError};

    let location = match source {
        RemoteSource::JwksUri(uri) => JwksLocation::JwksUri(uri),
        RemoteSource::Discover => JwksLocation::Discover(issuer.to_owned()),
    };
    let mut remote_timing = RemoteTiming::default();
    remote_timing.cooldown = timing.cooldown;
    remote_timing.refresh_min = timing.refresh_min;
    remote_timing.refresh_max = timing.refresh_max;
    remote_timing.refresh_default = timing.refresh_default;
    remote_timing.max_stale = timing.max_stale;
    remote_timing.background = timing.background;
    remote_timing.connect_timeout = timing.connect_timeout;
    remote_timing.timeout = timing.timeout;
    RemoteJwks::new(location, remote_timing, clock).map_err(|e| match e {
        RemoteConfigError::Url {
            what,
            error: UrlError::Insecure,
        } => ConfigError::InsecureUrl { what },
        RemoteConfigError::Url { what, .. } => ConfigError::InvalidUrl { what },
        RemoteConfigError::OutOfRange { what } => ConfigError::OutOfRange { what },
        _ => ConfigError::HttpClient,
    })
}
