//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00): an https
//! `client_id` is the URL of the client's metadata, fetched with SSRF guards and cached.
//!
//! [`CimdFetcher::resolve`] turns such a `client_id` into a public [`ClientRecord`]
//! (`source` = [`ClientSource::MetadataDocument`]). The authorization endpoint calls it for
//! every URL-shaped `client_id`; the result is never written to the store.
//!
//! # The URL (CIMD-00 §3)
//!
//! The `client_id` must be an `https` URL written in canonical form (what `url` would
//! serialize it as: lowercase host, no default port), with a path other than `/`, no `.` or
//! `..` segments, no fragment and no userinfo. A query is allowed. The URL fetched is therefore
//! exactly the string the client sent.
//!
//! # The fetch (AS-40, CIMD-00 §6.5, §6.6)
//!
//! 1. The host name is resolved here, and every address that is not public unicast is
//!    dropped: private, loopback, link-local (so cloud metadata at `169.254.169.254`),
//!    unique-local (so `fd00:ec2::254`), CGNAT, multicast, unspecified, broadcast,
//!    documentation, benchmarking and reserved ranges, and the IPv4-mapped, NAT64 and 6to4
//!    forms of them. The connection goes to the addresses that were checked (no second
//!    lookup), so DNS rebinding between check and connect is not possible. IP-literal hosts
//!    are checked the same way.
//! 2. Redirects are not followed: a `3xx` is an error.
//! 3. The whole fetch (resolution, connection, body) must finish within
//!    [`CimdConfig::timeout`].
//! 4. The body may not exceed [`CimdConfig::max_bytes`] (5 KiB): a larger `Content-Length` is
//!    refused before reading, and a chunked body is cut off as soon as it passes the limit.
//! 5. The status must be `200` and the content type JSON (`application/json` or
//!    `application/*+json`). No proxy is used.
//!
//! # The document (AS-35, AS-37)
//!
//! A JSON object whose `client_id` is exactly the URL (string comparison), with a
//! `client_name` and a non-empty `redirect_uris` whose every entry passes the redirect URI
//! rules (https, or http on loopback; no fragment). It must not carry `client_secret` or
//! `client_secret_expires_at`, and `token_endpoint_auth_method` is absent, `none` or
//! `private_key_jwt` (the shared-secret methods are forbidden by the draft). A `private_key_jwt`
//! document names its keys with exactly one of `jwks_uri` and `jwks`, and makes a confidential
//! client that must authenticate with a client assertion (CIMD-00 §6.2; feature
//! `jwt-assertions`). Other members are kept as sent.
//!
//! # Caching (AS-39)
//!
//! Good documents are cached per `Cache-Control`: `max-age` (or `s-maxage`, less `Age`)
//! clamped to [`CimdConfig::min_cache`]..=[`CimdConfig::max_cache`]; no header means
//! `min_cache`; `no-store` and `no-cache` mean not cached at all. Errors, non-200 answers and
//! invalid documents are never cached. The cache holds at most [`CimdConfig::max_entries`]
//! documents. Concurrent resolves of one URL share a single fetch.
//!
//! # Example
//!
//! A document served on loopback (only possible with the test-only
//! [`allow_loopback`](CimdConfig::allow_loopback)):
//!
//! ```
//! use mcp_auth_server::cimd::{CimdConfig, CimdErrorKind, CimdFetcher};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let client_id = format!("http://{}/client.json", listener.local_addr()?);
//! let document = serde_json::json!({
//!     "client_id": client_id,
//!     "client_name": "Example MCP client",
//!     "redirect_uris": ["http://127.0.0.1/callback"],
//!     "token_endpoint_auth_method": "none",
//! });
//! let app = axum::Router::new().route("/client.json", axum::routing::get(move || async move { axum::Json(document) }));
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let mut config = CimdConfig::default();
//! config.allow_loopback = true; // tests only
//! let fetcher = CimdFetcher::new(config)?;
//! let client = fetcher.resolve(&client_id, 1_700_000_000).await?;
//! assert_eq!(client.metadata.client_name.as_deref(), Some("Example MCP client"));
//! assert!(client.is_public());
//!
//! // The default configuration refuses loopback (and any other non-public) address.
//! let strict = CimdFetcher::new(CimdConfig::default())?;
//! let error = strict.resolve("https://127.0.0.1/client.json", 1_700_000_000).await.unwrap_err();
//! assert_eq!(error.kind(), CimdErrorKind::Blocked);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderMap, StatusCode, header};
use mcp_auth_core::metadata::ClientMetadata;
use tokio::sync::OnceCell;

use crate::store::{ClientRecord, ClientSource};

/// Limits and policy for fetching Client ID Metadata Documents.
///
/// Start from [`Default`] and change fields: `let mut c = CimdConfig::default(); c.timeout = ..;`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CimdConfig {
    /// Largest accepted document (default 5 KiB).
    pub max_bytes: usize,
    /// Connect + read timeout for one fetch (default 3 s).
    pub timeout: Duration,
    /// Shortest time a good document is cached, whatever its headers say (default 60 s), except
    /// that `Cache-Control: no-store` / `no-cache` documents are not cached at all.
    pub min_cache: Duration,
    /// Longest time a good document is cached (default 24 h).
    pub max_cache: Duration,
    /// Most documents kept in the cache (default 1,000).
    pub max_entries: usize,
    /// Test-only: allow fetching from loopback addresses (and plain `http` on loopback).
    /// Off by default; never enable it in production.
    pub allow_loopback: bool,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024,
            timeout: Duration::from_secs(3),
            min_cache: Duration::from_secs(60),
            max_cache: Duration::from_secs(24 * 3600),
            max_entries: 1_000,
            allow_loopback: false,
        }
    }
}

/// What went wrong with a metadata document (see [`CimdError::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CimdErrorKind {
    /// The [`CimdConfig`] is invalid (from [`CimdFetcher::new`]).
    Config,
    /// The `client_id` is not an acceptable metadata document URL (CIMD-00 §3).
    InvalidUrl,
    /// The host is, or resolves only to, addresses the fetcher may not connect to.
    Blocked,
    /// The host name could not be resolved, or the connection or transfer failed.
    Unreachable,
    /// The fetch took longer than [`CimdConfig::timeout`].
    Timeout,
    /// The server answered with a redirect, which is not followed.
    Redirect,
    /// The server answered with a status other than 200.
    Status,
    /// The response is not JSON (`Content-Type`).
    ContentType,
    /// The document is larger than [`CimdConfig::max_bytes`].
    TooLarge,
    /// The document is not valid JSON, or misses or misstates a required member.
    InvalidDocument,
    /// The document asks for a client authentication method that is forbidden or unsupported.
    AuthMethod,
}

/// Why a metadata document could not be used.
///
/// The message is safe to show to the user: it never names the addresses a host resolved to.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct CimdError {
    kind: CimdErrorKind,
    message: String,
}

impl CimdError {
    fn new(kind: CimdErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    fn invalid_document(reason: impl fmt::Display) -> Self {
        Self::new(
            CimdErrorKind::InvalidDocument,
            format!("the client metadata document is invalid: {reason}"),
        )
    }

    /// The message (safe to show to the user on the error page).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What went wrong.
    pub fn kind(&self) -> CimdErrorKind {
        self.kind
    }
}

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
    fn cached(&self, client_id: &str, now: u64) -> Option<ClientRecord> {
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
    fn remember(&self, client_id: &str, record: &ClientRecord, ttl: u64, now: u64) {
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

// ----- the URL -----

/// Check a `client_id` against CIMD-00 §3 and our fetch policy; returns the URL to fetch.
fn check_client_id(client_id: &str, allow_loopback: bool) -> Result<url::Url, CimdError> {
    let invalid = |reason: &str| {
        Err(CimdError::new(
            CimdErrorKind::InvalidUrl,
            format!("the client_id is not a valid metadata document URL: {reason}"),
        ))
    };
    if client_id.len() > crate::redirect::MAX_LEN {
        return invalid("it is too long");
    }
    let https = client_id.starts_with("https://");
    let http = allow_loopback && client_id.starts_with("http://");
    if !https && !http {
        return invalid("it must start with https://");
    }
    if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return invalid("it contains whitespace, control characters or backslashes");
    }
    if client_id.contains('#') {
        return invalid("it must not have a fragment");
    }
    let Ok(url) = url::Url::parse(client_id) else {
        return invalid("it is not a valid URL");
    };
    // Authority and path as written (`url` would resolve dot segments away).
    let after_scheme = client_id.split_once("://").map_or("", |(_, rest)| rest);
    let (authority, path_and_query) =
        after_scheme.split_at(after_scheme.find(['/', '?']).unwrap_or(after_scheme.len()));
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return invalid("it must not contain user information");
    }
    let raw_path = path_and_query.split('?').next().unwrap_or("");
    if raw_path.split('/').any(is_dot_segment) {
        return invalid("its path must not contain . or .. segments");
    }
    if url.path() == "/" || raw_path.is_empty() || raw_path == "/" {
        return invalid("it must have a path (such as /client.json)");
    }
    if http && !is_loopback_host(&url) {
        return invalid("it must start with https://");
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !permitted(IpAddr::V4(ip), allow_loopback) => {
            return Err(blocked());
        }
        Some(url::Host::Ipv6(ip)) if !permitted(IpAddr::V6(ip), allow_loopback) => {
            return Err(blocked());
        }
        Some(_) => {}
        None => return invalid("it has no host"),
    }
    if url.as_str() != client_id {
        return invalid("it must be written in canonical form (lowercase host, no default port)");
    }
    Ok(url)
}

/// `.`/`..`, also percent-encoded (which `url` treats the same).
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
    )
}

fn is_loopback_host(url: &url::Url) -> bool {
    url.host_str().is_some_and(mcp_auth_core::is_loopback_host)
}

fn blocked() -> CimdError {
    CimdError::new(
        CimdErrorKind::Blocked,
        "the client metadata document host is not on the public internet (private, loopback, link-local or reserved address)",
    )
}

// ----- addresses -----

/// Whether the fetcher may connect to `ip`: public unicast only (plus loopback when allowed).
pub(crate) fn permitted(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => permitted_v4(v4, allow_loopback),
        IpAddr::V6(v6) => permitted_v6(v6, allow_loopback),
    }
}

fn permitted_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    let forbidden = a == 0 // "this network", unspecified
        || a == 10 // private
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254) // link-local, cloud metadata 169.254.169.254
        || (a == 172 && (16..=31).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224; // multicast, reserved 240/4, broadcast
    !forbidden
}

fn permitted_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    if ip.is_unspecified() {
        return false;
    }
    // ::ffff:a.b.c.d
    if let Some(v4) = ip.to_ipv4_mapped() {
        return permitted_v4(v4, allow_loopback);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // ::/96 (IPv4-compatible, deprecated) and everything else under ::/8 but the cases above.
    if s[0] == 0 {
        return false;
    }
    // 64:ff9b::/96 NAT64: judge the embedded address (never loopback through a translator).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return permitted_v4(embedded(s[6], s[7]), false);
    }
    // 2002::/16 6to4: judge the embedded address.
    if s[0] == 0x2002 {
        return permitted_v4(embedded(s[1], s[2]), false);
    }
    let forbidden = (s[0] == 0x64 && s[1] == 0xff9b) // other NAT64 prefixes (64:ff9b:1::/48)
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments 2001::/23 (Teredo, ORCHID, ...)
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation 2001:db8::/32
        || (s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] & 0xff00) == 0xff00; // multicast
    // Only global unicast (2000::/3) is routed on the internet.
    !forbidden && (s[0] & 0xe000) == 0x2000
}

/// Why the resolver refused a name (found again in the `reqwest` error chain).
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("the host name resolves only to non-public addresses")]
    Blocked,
    #[error("the host name could not be resolved")]
    Unresolvable,
}

/// Resolves with the system resolver and keeps only permitted addresses; the connection is
/// made to exactly these (DNS pinning).
#[derive(Clone, Copy, Debug)]
struct GuardedResolver {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(Refused::Unresolvable) as Box<dyn std::error::Error + Send + Sync>
                })?
                .collect();
            if found.is_empty() {
                return Err(
                    Box::new(Refused::Unresolvable) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| permitted(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused::Blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
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

// ----- the response -----

/// How long a good document may be cached, in seconds (0: not at all), per RFC 9111 within the
/// configured bounds.
fn cache_lifetime(headers: &HeaderMap, config: &CimdConfig) -> u64 {
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

/// Validate a fetched document (AS-35, AS-37) and turn it into a public client.
pub(crate) fn validate_document(
    client_id: &str,
    body: &[u8],
    now: u64,
) -> Result<ClientRecord, CimdError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| CimdError::invalid_document("it is not valid JSON"))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(CimdError::invalid_document("it is not a JSON object"));
    };
    match object.get("client_id") {
        Some(serde_json::Value::String(id)) if id == client_id => {}
        Some(serde_json::Value::String(_)) => {
            return Err(CimdError::invalid_document(
                "its client_id is not the URL it was fetched from",
            ));
        }
        _ => return Err(CimdError::invalid_document("it has no client_id")),
    }
    match object.get("client_name") {
        Some(serde_json::Value::String(name)) if !name.trim().is_empty() => {}
        _ => return Err(CimdError::invalid_document("it has no client_name")),
    }
    match object.get("redirect_uris") {
        Some(serde_json::Value::Array(uris)) if !uris.is_empty() => {
            for uri in uris {
                let Some(uri) = uri.as_str() else {
                    return Err(CimdError::invalid_document("redirect_uris must be strings"));
                };
                crate::redirect::check_registrable(uri).map_err(CimdError::invalid_document)?;
            }
        }
        _ => return Err(CimdError::invalid_document("it has no redirect_uris")),
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err(CimdError::new(
            CimdErrorKind::AuthMethod,
            "the client metadata document must not contain a client secret",
        ));
    }
    let mut auth_method = crate::store::ClientAuthMethod::None;
    match object.get("token_endpoint_auth_method") {
        None => {}
        Some(serde_json::Value::String(m)) if m == "none" => {}
        Some(serde_json::Value::String(m))
            if matches!(
                m.as_str(),
                "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
            ) =>
        {
            return Err(CimdError::new(
                CimdErrorKind::AuthMethod,
                "the client metadata document uses a shared-secret token_endpoint_auth_method, which metadata documents must not use",
            ));
        }
        Some(serde_json::Value::String(m)) if m == "private_key_jwt" => {
            if !cfg!(feature = "jwt-assertions") {
                return Err(CimdError::new(
                    CimdErrorKind::AuthMethod,
                    "the client metadata document uses private_key_jwt, which this server does not support",
                ));
            }
            // CIMD-00 §6.2: keys by jwks_uri (or inline jwks), exactly one of them.
            let uri = object.get("jwks_uri");
            let jwks = object.get("jwks");
            match (uri, jwks) {
                (Some(serde_json::Value::String(_)), None)
                | (None, Some(serde_json::Value::Object(_))) => {}
                _ => {
                    return Err(CimdError::new(
                        CimdErrorKind::AuthMethod,
                        "a client metadata document using private_key_jwt needs exactly one of jwks_uri and jwks",
                    ));
                }
            }
            auth_method = crate::store::ClientAuthMethod::PrivateKeyJwt;
        }
        Some(_) => {
            return Err(CimdError::new(
                CimdErrorKind::AuthMethod,
                "the client metadata document uses an unsupported token_endpoint_auth_method (only none is accepted)",
            ));
        }
    }
    // The identifier is the record's, not metadata.
    object.remove("client_id");
    let metadata: ClientMetadata = serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|_| CimdError::invalid_document("a member has the wrong type"))?;
    let mut record =
        ClientRecord::public(client_id, metadata, now).with_source(ClientSource::MetadataDocument);
    // A private_key_jwt document makes a confidential client that must authenticate so.
    record.auth_method = auth_method;
    Ok(record)
}

#[cfg(test)]
mod tests;
