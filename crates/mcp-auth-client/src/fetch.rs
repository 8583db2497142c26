//! The crate's HTTP client: URL policy (SPEC C-9, C-10), bounded bodies, no redirects.

use std::{net::IpAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use url::Url;

use crate::error::{AuthError, AuthErrorKind, ConfigError};

/// The largest response body read, in bytes (metadata, token and registration responses).
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(crate) use mcp_auth_core::is_loopback_host;

/// Link-local literals (169.254/16, fe80::/10): cloud metadata services live there.
fn is_link_local_literal(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => (ip.segments()[0] & 0xffc0) == 0xfe80,
        Err(_) => false,
    }
}

/// Which URLs the crate fetches or opens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UrlPolicy {
    /// Plain http allowed on loopback hosts (development, the conformance suite).
    pub(crate) allow_insecure_loopback: bool,
}

impl UrlPolicy {
    /// Parses and checks a URL: https (or http on loopback when allowed), no user info, no
    /// fragment, not a link-local literal.
    pub(crate) fn check(&self, raw: &str) -> Result<Url, AuthErrorKind> {
        let url = Url::parse(raw).map_err(|_| AuthErrorKind::InsecureUrl)?;
        let host = url.host_str().ok_or(AuthErrorKind::InsecureUrl)?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(AuthErrorKind::InsecureUrl);
        }
        if is_link_local_literal(host) {
            return Err(AuthErrorKind::InsecureUrl);
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.allow_insecure_loopback && is_loopback_host(host) => Ok(url),
            _ => Err(AuthErrorKind::InsecureUrl),
        }
    }

    /// [`check`](Self::check) for configuration.
    pub(crate) fn check_config(&self, raw: &str, what: &'static str) -> Result<Url, ConfigError> {
        let url = Url::parse(raw).map_err(|_| ConfigError::InvalidUrl { what })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::InvalidUrl { what });
        }
        self.check(raw)
            .map_err(|_| ConfigError::InsecureUrl { what })
    }

    /// The error for a refused URL.
    pub(crate) fn refused(what: &'static str) -> AuthError {
        AuthError::new(AuthErrorKind::InsecureUrl).with_detail(what)
    }
}

/// A response read in full (bounded).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    /// Whether the body is declared JSON (or has no content type, which many servers send).
    pub(crate) fn is_json(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| {
                let ct = ct.split(';').next().unwrap_or_default().trim();
                ct.eq_ignore_ascii_case("application/json")
                    || ct.to_ascii_lowercase().ends_with("+json")
            })
    }
}

/// The HTTP client: redirects never followed, timeouts, bounded bodies.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
}

/// A request that did not get a response: network, TLS, timeout, or an oversized body.
pub(crate) fn transport_error(e: reqwest::Error) -> AuthError {
    let detail = if e.is_timeout() {
        "the request timed out"
    } else {
        "the request failed"
    };
    AuthError::new(AuthErrorKind::Transient)
        .with_detail(detail)
        .with_source(e)
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("mcp-auth-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ConfigError::HttpClient)?;
        Ok(Self { client })
    }

    /// GET with `Accept: application/json`.
    pub(crate) async fn get(&self, url: &Url) -> Result<Response, AuthError> {
        let request = self
            .client
            .get(url.clone())
            .header(header::ACCEPT, "application/json");
        Self::send(request).await
    }

    /// POST an `application/x-www-form-urlencoded` body, optionally with HTTP Basic credentials
    /// (already encoded) and a DPoP proof.
    pub(crate) async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<&str>,
        dpop_proof: Option<http::HeaderValue>,
    ) -> Result<Response, AuthError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .client
            .post(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CACHE_CONTROL, "no-store")
            .body(body);
        if let Some(basic) = basic {
            let mut value = http::HeaderValue::try_from(format!("Basic {basic}"))
                .map_err(|_| AuthError::new(AuthErrorKind::Protocol))?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(proof) = dpop_proof {
            request = request.header(crate::dpop::DPOP, proof);
        }
        Self::send(request).await
    }

    /// POST an empty JSON-RPC body to an MCP endpoint with these credentials: how the `rmcp`
    /// adapter learns a `DPoP-Nonce` that rmcp's own client does not pass on.
    pub(crate) async fn post_probe(
        &self,
        url: &Url,
        authorization: http::HeaderValue,
        dpop_proof: http::HeaderValue,
    ) -> Result<Response, AuthError> {
        let request = self
            .client
            .post(url.clone())
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, authorization)
            .header(crate::dpop::DPOP, dpop_proof);
        Self::send(request).await
    }

    /// POST a JSON body.
    pub(crate) async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<Response, AuthError> {
        let body = serde_json::to_vec(body).map_err(|_| AuthError::new(AuthErrorKind::Protocol))?;
        let request = self
            .client
            .post(url.clone())
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        Self::send(request).await
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<Response, AuthError> {
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        {
            return Err(AuthError::new(AuthErrorKind::Protocol)
                .with_detail("the response is larger than allowed")
                .with_status(status.as_u16()));
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AuthError::new(AuthErrorKind::Protocol)
                    .with_detail("the response is larger than allowed")
                    .with_status(status.as_u16()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body: Bytes::from(body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy_follows_spec_c9_and_c10() {
        let strict = UrlPolicy {
            allow_insecure_loopback: false,
        };
        let dev = UrlPolicy {
            allow_insecure_loopback: true,
        };
        assert!(strict.check("https://auth.example.com/authorize").is_ok());
        assert!(strict.check("http://127.0.0.1:8080/authorize").is_err());
        assert!(dev.check("http://127.0.0.1:8080/authorize").is_ok());
        assert!(dev.check("http://localhost:8080/x").is_ok());
        assert!(dev.check("http://[::1]:8080/x").is_ok());
        for bad in [
            "http://auth.example.com/authorize",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "vbscript:x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fe80::1]/x",
            "https://user:pw@auth.example.com/",
            "https://auth.example.com/#frag",
        ] {
            assert!(dev.check(bad).is_err(), "{bad} should be refused");
        }
    }
}
