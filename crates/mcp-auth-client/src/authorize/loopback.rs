//! The loopback redirect listener (OAuth 2.1 §8.4.2, SPEC C-22).

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use mcp_auth_core::{Secret, error::ErrorCode};
use subtle::ConstantTimeEq;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};

use crate::error::{AuthError, AuthErrorKind};

/// The path of the redirect URI.
const CALLBACK_PATH: &str = "/callback";
/// The largest request head read from the browser.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A listener on `127.0.0.1` (never another interface) that receives one authorization response
/// at `http://127.0.0.1:<port>/callback`, checks `state`, answers the browser with a small page
/// and closes. See the [module docs](crate::authorize) for an example.
pub struct LoopbackRedirect {
    listener: TcpListener,
    redirect_uri: String,
}

impl fmt::Debug for LoopbackRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackRedirect")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// A successful authorization response: the code and the `iss` parameter (RFC 9207), if sent.
#[derive(Debug)]
pub struct AuthorizationResponse {
    code: Secret,
    iss: Option<String>,
}

impl AuthorizationResponse {
    /// The authorization code.
    #[must_use]
    pub fn code(&self) -> &Secret {
        &self.code
    }

    /// The `iss` parameter, exactly as received.
    #[must_use]
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }
}

impl LoopbackRedirect {
    /// Listens on `127.0.0.1:port`; `0` picks a free port.
    ///
    /// # Errors
    /// [`AuthErrorKind::Callback`] when the port cannot be bound.
    pub async fn bind(port: u16) -> Result<Self, AuthError> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .map_err(|e| {
                AuthError::new(AuthErrorKind::Callback)
                    .with_detail("the loopback redirect port could not be bound")
                    .with_source(e)
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| AuthError::new(AuthErrorKind::Callback).with_source(e))?
            .port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        })
    }

    /// The redirect URI to register and send: `http://127.0.0.1:<port>/callback`.
    #[must_use]
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The port listened on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Waits up to `timeout` for the authorization response with this `state`, then closes.
    ///
    /// Requests for another path, or without the right `state`, are answered with an error page
    /// and ignored.
    ///
    /// # Errors
    /// - [`AuthErrorKind::AuthorizationDenied`]: the response carried `error` (see
    ///   [`AuthError::oauth_error`]);
    /// - [`AuthErrorKind::Callback`]: the timeout passed, or the response had no single `code`.
    pub async fn receive(
        self,
        state: &str,
        timeout: Duration,
    ) -> Result<AuthorizationResponse, AuthError> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted = tokio::time::timeout_at(deadline, self.listener.accept()).await;
            let Ok(accepted) = accepted else {
                return Err(AuthError::new(AuthErrorKind::Callback)
                    .with_detail("no authorization response before the timeout"));
            };
            let Ok((stream, _)) = accepted else {
                continue;
            };
            if let Some(result) = handle(stream, state).await {
                return result;
            }
        }
    }
}

/// Handles one connection; `None` means "not the response we wait for, keep listening".
async fn handle(
    mut stream: TcpStream,
    state: &str,
) -> Option<Result<AuthorizationResponse, AuthError>> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .ok()
        .flatten();
    let Some(head) = head else {
        respond(&mut stream, 400, "Bad request").await;
        return None;
    };
    let mut parts = head.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        respond(&mut stream, 400, "Bad request").await;
        return None;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != CALLBACK_PATH {
        respond(&mut stream, 404, "Not found").await;
        return None;
    }
    let mut params = Params::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "state" => &mut params.state,
            "code" => &mut params.code,
            "error" => &mut params.error,
            "iss" => &mut params.iss,
            _ => continue,
        };
        if slot.is_some() {
            params.duplicate = true;
        }
        *slot = Some(value.into_owned());
    }
    let state_ok = params
        .state
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(state.as_bytes())));
    if !state_ok {
        // Not our flow (or forged): keep waiting for the real response (SPEC C-21).
        respond(
            &mut stream,
            400,
            "This authorization response does not belong to the pending request.",
        )
        .await;
        return None;
    }
    if params.duplicate {
        respond(&mut stream, 400, "Malformed authorization response.").await;
        return Some(Err(AuthError::new(AuthErrorKind::Callback).with_detail(
            "a parameter of the authorization response was repeated",
        )));
    }
    if let Some(error) = params.error {
        respond(
            &mut stream,
            200,
            "Authorization failed. You can close this window.",
        )
        .await;
        return Some(Err(AuthError::new(AuthErrorKind::AuthorizationDenied)
            .with_oauth(ErrorCode::from_wire(&error))));
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        respond(&mut stream, 400, "The authorization response has no code.").await;
        return Some(Err(AuthError::new(AuthErrorKind::Callback)
            .with_detail("the authorization response has no code")));
    };
    respond(
        &mut stream,
        200,
        "Authorization complete. You can close this window.",
    )
    .await;
    Some(Ok(AuthorizationResponse {
        code: Secret::from(code),
        iss: params.iss,
    }))
}

#[derive(Default)]
struct Params {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
    duplicate: bool,
}

/// Reads up to the end of the request head; returns the request line.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return None;
        }
    }
    let line_end = buf.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&buf[..line_end]).ok()?;
    Some(line.trim_end_matches('\r').to_owned())
}

async fn respond(stream: &mut TcpStream, status: u16, message: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>MCP authorization</title></head>\
         <body><p>{message}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
