//! Fetching a JWK Set over HTTP: issuer discovery, bounded bodies, `Cache-Control`.

use std::{fmt, sync::Mutex, time::Duration};

use http::{HeaderMap, StatusCode, header};
use mcp_auth_core::{metadata::AuthorizationServerMetadata, well_known};
use url::Url;

use crate::jwks::{JwksError, KeySet, MAX_JWKS_BYTES};
use crate::url::fetchable_url;

/// The largest authorization server metadata document accepted, in bytes.
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A configured `jwks_uri`.
    JwksUri(Url),
    /// The `jwks_uri` of the issuer's metadata (RFC 8414 / OpenID Connect Discovery).
    Discover {
        /// The issuer, compared byte for byte with the metadata's `issuer`.
        issuer: String,
    },
}

/// Why a fetch failed. Every text is fixed: this ends up in logs and as an error source, never in
/// a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// Connecting, sending or reading failed.
    Transport,
    /// The request timed out.
    Timeout,
    /// The server answered with a status other than 200 (redirects are not followed).
    Status(u16),
    /// The body is larger than allowed.
    TooLarge,
    /// No metadata document was found at any well-known URL.
    NoMetadata,
    /// A metadata document names another issuer.
    IssuerMismatch,
    /// The metadata has no `jwks_uri`, or it is not https (plain http only on loopback).
    BadJwksUri,
    /// The key set document was refused.
    Jwks(JwksError),
    /// There is no tokio runtime to run the fetch on.
    NoRuntime,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport => f.write_str("the key set request failed"),
            Self::Timeout => f.write_str("the key set request timed out"),
            Self::Status(status) => write!(f, "the key set server answered with status {status}"),
            Self::TooLarge => f.write_str("the response is larger than allowed"),
            Self::NoMetadata => f.write_str("no authorization server metadata was found"),
            Self::IssuerMismatch => {
                f.write_str("the authorization server metadata names a different issuer")
            }
            Self::BadJwksUri => {
                f.write_str("the authorization server metadata has no usable jwks_uri")
            }
            Self::Jwks(e) => fmt::Display::fmt(e, f),
            Self::NoRuntime => f.write_str("no tokio runtime to fetch the key set on"),
        }
    }
}

impl std::error::Error for FetchError {}

/// The HTTP client could not be built (no TLS backend, for example).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the HTTP client could not be built")]
pub(crate) struct HttpClientError(());

/// A key set fetched successfully.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) set: KeySet,
    /// How many entries were skipped (logged).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) skipped: usize,
    /// `Cache-Control: max-age` of the response (0 for `no-cache`/`no-store`).
    pub(crate) max_age: Option<Duration>,
}

/// Fetches the key set; holds the HTTP client and the discovered `jwks_uri`.
#[derive(Debug)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    location: Location,
    discovered: Mutex<Option<Url>>,
}

impl Fetcher {
    /// A fetcher with its own client: no redirects, connect and total timeouts.
    pub(crate) fn new(
        location: Location,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, HttpClientError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("mcp-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| HttpClientError(()))?;
        Ok(Self {
            client,
            location,
            discovered: Mutex::new(None),
        })
    }

    /// A fetcher using a client the caller built.
    pub(crate) fn with_client(location: Location, client: reqwest::Client) -> Self {
        Self {
            client,
            location,
            discovered: Mutex::new(None),
        }
    }

    /// Where keys come from.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Fetches and parses the key set (discovering the `jwks_uri` first if needed).
    pub(crate) async fn fetch(&self) -> Result<Fetched, FetchError> {
        let url = match &self.location {
            Location::JwksUri(url) => url.clone(),
            Location::Discover { issuer } => {
                let cached = self
                    .discovered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                match cached {
                    Some(url) => url,
                    None => {
                        let url = self.discover(issuer).await?;
                        *self
                            .discovered
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(url.clone());
                        url
                    }
                }
            }
        };
        let result = self.fetch_jwks(url).await;
        if result.is_err() {
            // Look the jwks_uri up again next time: the authorization server may have moved it.
            *self
                .discovered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        result
    }

    async fn fetch_jwks(&self, url: Url) -> Result<Fetched, FetchError> {
        let (body, headers) = self
            .get(
                url,
                "application/jwk-set+json, application/json",
                MAX_JWKS_BYTES,
            )
            .await?;
        let (set, skipped) = KeySet::parse(&body).map_err(FetchError::Jwks)?;
        Ok(Fetched {
            set,
            skipped,
            max_age: max_age(&headers),
        })
    }

    /// Tries each well-known metadata URL of the issuer in turn (RFC 8414 inserted, OIDC
    /// inserted, OIDC appended) and returns the `jwks_uri` of the first document whose `issuer`
    /// equals the configured issuer byte for byte.
    async fn discover(&self, issuer: &str) -> Result<Url, FetchError> {
        let mut failure = FetchError::NoMetadata;
        for candidate in well_known::authorization_server_metadata_urls(issuer) {
            let Ok(url) = Url::parse(&candidate) else {
                continue;
            };
            let body = match self.get(url, "application/json", MAX_METADATA_BYTES).await {
                Ok((body, _)) => body,
                Err(e) => {
                    if failure != FetchError::IssuerMismatch {
                        failure = e;
                    }
                    continue;
                }
            };
            let Ok(doc) = serde_json::from_slice::<AuthorizationServerMetadata>(&body) else {
                continue;
            };
            if doc.issuer != issuer {
                event!(
                    warn,
                    "authorization server metadata names a different issuer"
                );
                failure = FetchError::IssuerMismatch;
                continue;
            }
            return doc
                .jwks_uri
                .as_deref()
                .and_then(|uri| fetchable_url(uri).ok())
                .ok_or(FetchError::BadJwksUri);
        }
        Err(failure)
    }

    /// GET with a bounded body. Only 200 is success.
    async fn get(
        &self,
        url: Url,
        accept: &'static str,
        limit: usize,
    ) -> Result<(Vec<u8>, HeaderMap), FetchError> {
        let map = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Transport
            }
        };
        let mut response = self
            .client
            .get(url)
            .header(header::ACCEPT, accept)
            .send()
            .await
            .map_err(map)?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, headers))
    }
}

/// The freshness lifetime of a response from `Cache-Control` (RFC 9111 §5.2.2): `max-age`, or 0
/// for `no-cache`/`no-store`. `None` when the header says nothing usable.
pub(crate) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found: Option<u64> = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((name, arg)) => (name.trim(), Some(arg.trim().trim_matches('"'))),
                None => (directive, None),
            };
            let secs =
                if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                    Some(0)
                } else if name.eq_ignore_ascii_case("max-age") {
                    arg.filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                        .map(|a| a.parse::<u64>().unwrap_or(u64::MAX))
                } else {
                    None
                };
            if let Some(secs) = secs {
                found = Some(found.map_or(secs, |f| f.min(secs)));
            }
        }
    }
    found.map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn parse(values: &[&str]) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        max_age(&headers)
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(parse(&[]), None);
        assert_eq!(
            parse(&["public, max-age=300"]),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse(&["Max-Age=\"60\""]), Some(Duration::from_secs(60)));
        assert_eq!(parse(&["max-age=300", "no-cache"]), Some(Duration::ZERO));
        assert_eq!(parse(&["no-store"]), Some(Duration::ZERO));
        assert_eq!(parse(&["max-age=abc"]), None);
        assert_eq!(parse(&["max-age=-1"]), None);
        assert_eq!(parse(&["s-maxage=5, public"]), None);
        assert_eq!(
            parse(&["max-age=99999999999999999999999"]),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
