//! The fetcher: one HTTP client behind the SSRF guard, size and time limits, HTTP caching of
//! good documents, one fetch in flight per `client_id`.

use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "jwt-assertions")]
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, StatusCode, header};
use tokio::sync::OnceCell;

#[cfg(feature = "jwt-assertions")]
use super::ssrf::permitted;
use super::ssrf::{GuardedResolver, Refused, blocked};
use super::url_rules::{check_client_id, is_loopback_host};
use super::validate::validate_document;
use super::{CimdConfig, CimdError, CimdErrorKind};
use crate::store::ClientRecord;

/// Fetches, validates and caches Client ID Metadata Documents.
///
/// Cheap to clone; clones share the HTTP client and the cache. See the
/// [module docs](crate::cimd) for the rules and an example.
#[derive(Clone)]
pub struct CimdFetcher {
    inner: Arc<FetcherInner>,
}

struct FetcherInner {
    config: CimdConfig,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
    /// One fetch per URL at a time; concurrent resolves wait for its result.
    inflight: Mutex<HashMap<String, Arc<Flight>>>,
}

/// The shared result of one fetch.
type Flight = OnceCell<Result<ClientRecord, CimdError>>;

struct Cached {
    record: ClientRecord,
    expires_at: u64,
}

impl fmt::Debug for CimdFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CimdFetcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl CimdFetcher {
    /// A fetcher with the given limits.
    ///
    /// Fails when a limit is zero, `min_cache` exceeds `max_cache`, or the HTTP client cannot
    /// be built.
    pub fn new(config: CimdConfig) -> Result<Self, CimdError> {
        let invalid = |m: &str| {
            Err(CimdError::new(
                CimdErrorKind::Config,
                format!("invalid CIMD configuration: {m}"),
            ))
        };
        if config.max_bytes == 0 {
            return invalid("max_bytes is zero");
        }
        if config.timeout.is_zero() {
            return invalid("timeout is zero");
        }
        if config.min_cache > config.max_cache {
            return invalid("min_cache exceeds max_cache");
        }
        if config.max_entries == 0 {
            return invalid("max_entries is zero");
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver {
                allow_loopback: config.allow_loopback,
            })
            .no_proxy()
            .https_only(!config.allow_loopback)
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .referer(false)
            .user_agent(concat!(
                "mcp-auth-server/",
                env!("CARGO_PKG_VERSION"),
                " (client metadata fetcher)"
            ))
            .build()
            .map_err(|_| {
                CimdError::new(
                    CimdErrorKind::Config,
                    "the HTTP client for metadata documents could not be built",
                )
            })?;
        Ok(Self {
            inner: Arc::new(FetcherInner {
                config,
                http,
                cache: Mutex::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The guarded HTTP client (SSRF guards, no redirects, no proxy, short timeouts), for the
    /// `jwks_uri` of clients that registered themselves.
    #[cfg(feature = "jwt-assertions")]
    pub(crate) fn guarded_http(&self) -> reqwest::Client {
        self.inner.http.clone()
    }

    /// Whether the guarded client may fetch `url`: https (plain http on loopback only when
    /// `allow_loopback`), and an IP-literal host must be a permitted address (names are checked
    /// when they are resolved).
    #[cfg(feature = "jwt-assertions")]
    pub(crate) fn allows_url(&self, url: &url::Url) -> bool {
        let allow_loopback = self.inner.config.allow_loopback;
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => allow_loopback && is_loopback_host(url),
            _ => false,
        };
        scheme_ok
            && url.username().is_empty()
            && url.password().is_none()
            && match url.host() {
                Some(url::Host::Ipv4(ip)) => permitted(IpAddr::V4(ip), allow_loopback),
                Some(url::Host::Ipv6(ip)) => permitted(IpAddr::V6(ip), allow_loopback),
                Some(url::Host::Domain(_)) => true,
                None => false,
            }
    }

    /// Whether `client_id` is URL-shaped such that it must be treated as a metadata document URL
    /// (starts with `https://`, or `http://` on loopback when `allow_loopback`).
    pub fn is_document_url(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.inner.config.allow_loopback
                && client_id.starts_with("http://")
                && url::Url::parse(client_id).is_ok_and(|u| is_loopback_host(&u)))
    }

    /// Fetch (or take from cache) and validate the document at `client_id`; the result is a
    /// public client whose `source` is [`ClientSource::MetadataDocument`](crate::store::ClientSource).
    ///
    /// `now` (UNIX seconds) decides cache freshness and becomes the record's `issued_at`.
    pub async fn resolve(&self, client_id: &str, now: u64) -> Result<ClientRecord, CimdError> {
        let url = check_client_id(client_id, self.inner.config.allow_loopback)?;
        if let Some(record) = self.cached(client_id, now) {
            return Ok(record);
        }

        let flight = {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            inflight.entry(client_id.to_owned()).or_default().clone()
        };
        let guard = FlightGuard {
            fetcher: &self.inner,
            key: client_id,
            flight,
        };
        let result = guard
            .flight
            .get_or_init(|| async {
                // A fetch that finished while this one queued may have filled the cache.
                if let Some(record) = self.cached(client_id, now) {
                    return Ok(record);
                }
                let outcome = self.fetch(url, client_id, now).await;
                match &outcome {
                    Ok((record, ttl)) => {
                        #[cfg(feature = "tracing")]
                        tracing::info!(%client_id, cache_seconds = ttl, "client metadata document accepted");
                        self.remember(client_id, record, *ttl, now);
                    }
                    Err(_error) => {
                        #[cfg(feature = "tracing")]
                        tracing::info!(%client_id, error = %_error, kind = ?_error.kind(), "client metadata document refused");
                    }
                }
                outcome.map(|(record, _)| record)
            })
            .await
            .clone();
        drop(guard);
        result
    }

    /// A fresh cached record for `client_id`, dropping a stale one.
    pub(super) fn cached(&self, client_id: &str, now: u64) -> Option<ClientRecord> {
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match cache.get(client_id) {
            Some(entry) if now < entry.expires_at => Some(entry.record.clone()),
            Some(_) => {
                cache.remove(client_id);
                None
            }
            None => None,
        }
    }

    /// Cache a good document for `ttl` seconds (0: not at all), within the entry bound.
    pub(super) fn remember(&self, client_id: &str, record: &ClientRecord, ttl: u64, now: u64) {
        if ttl == 0 {
            return;
        }
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.inner.config.max_entries && !cache.contains_key(client_id) {
            cache.retain(|_, entry| now < entry.expires_at);
            while cache.len() >= self.inner.config.max_entries {
                let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(
            client_id.to_owned(),
            Cached {
                record: record.clone(),
                expires_at: now.saturating_add(ttl),
            },
        );
    }

    /// Fetch and validate; returns the record and how long it may be cached (seconds).
    async fn fetch(
        &self,
        url: url::Url,
        client_id: &str,
        now: u64,
    ) -> Result<(ClientRecord, u64), CimdError> {
        let config = &self.inner.config;
        let work = async {
            let mut response = self
                .inner
                .http
                .get(url)
                .header(header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| classify(&e))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(CimdError::new(
                    CimdErrorKind::Redirect,
                    format!(
                        "the client metadata document URL answered with a redirect (HTTP {}), which is not followed",
                        status.as_u16()
                    ),
                ));
            }
            if status != StatusCode::OK {
                return Err(CimdError::new(
                    CimdErrorKind::Status,
                    format!(
                        "the client metadata document URL answered HTTP {}",
                        status.as_u16()
                    ),
                ));
            }
            if !crate::http::is_json(response.headers()) {
                return Err(CimdError::new(
                    CimdErrorKind::ContentType,
                    "the client metadata document is not served as JSON (Content-Type: application/json)",
                ));
            }
            let too_large = || {
                CimdError::new(
                    CimdErrorKind::TooLarge,
                    format!(
                        "the client metadata document is larger than {} bytes",
                        config.max_bytes
                    ),
                )
            };
            if response
                .content_length()
                .is_some_and(|n| n > config.max_bytes as u64)
            {
                return Err(too_large());
            }
            let ttl = cache_lifetime(response.headers(), config);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
                if body.len().saturating_add(chunk.len()) > config.max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            let record = validate_document(client_id, &body, now)?;
            Ok((record, ttl))
        };
        match tokio::time::timeout(config.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error()),
        }
    }
}

fn timeout_error() -> CimdError {
    CimdError::new(
        CimdErrorKind::Timeout,
        "fetching the client metadata document timed out",
    )
}

/// Removes a finished (or abandoned) flight from the in-flight map.
struct FlightGuard<'a> {
    fetcher: &'a FetcherInner,
    key: &'a str,
    flight: Arc<Flight>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut inflight = self
            .fetcher
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = inflight.get(self.key)
            && Arc::ptr_eq(current, &self.flight)
            // Done, or nobody else is waiting (the map's reference and ours).
            && (self.flight.initialized() || Arc::strong_count(&self.flight) <= 2)
        {
            inflight.remove(self.key);
        }
    }
}

/// A user-safe error for a failed request.
fn classify(error: &reqwest::Error) -> CimdError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        match e.downcast_ref::<Refused>() {
            Some(Refused::Blocked) => return blocked(),
            Some(Refused::Unresolvable) => {
                return CimdError::new(
                    CimdErrorKind::Unreachable,
                    "the client metadata document host name could not be resolved",
                );
            }
            None => source = e.source(),
        }
    }
    if error.is_timeout() {
        timeout_error()
    } else if error.is_connect() {
        CimdError::new(
            CimdErrorKind::Unreachable,
            "could not connect to the client metadata document host",
        )
    } else {
        CimdError::new(
            CimdErrorKind::Unreachable,
            "the client metadata document could not be fetched",
        )
    }
}

/// How long a good document may be cached, in seconds (0: not at all), per RFC 9111 within the
/// configured bounds.
pub(super) fn cache_lifetime(headers: &HeaderMap, config: &CimdConfig) -> u64 {
    let mut max_age = None;
    let mut s_maxage = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            // An unparsable delta means "stale" (RFC 9111 §1.2.2): 0, raised to the minimum.
            let seconds = || arg.map_or(0, |a| a.parse::<u64>().unwrap_or(0));
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return 0;
            } else if name.eq_ignore_ascii_case("max-age") {
                max_age = Some(seconds());
            } else if name.eq_ignore_ascii_case("s-maxage") {
                s_maxage = Some(seconds());
            }
        }
    }
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let fresh = s_maxage.or(max_age).map_or(0, |m| m.saturating_sub(age));
    fresh.clamp(config.min_cache.as_secs(), config.max_cache.as_secs())
}
