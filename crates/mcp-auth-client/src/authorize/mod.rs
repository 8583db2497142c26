//! The authorization run: how the [`TokenManager`](crate::TokenManager) obtains a new grant,
//! with a user (the authorization code flow, in the browser) or without one (a machine client).
//! The public pieces are the browser side: [`BrowserOpener`] (with [`SystemBrowser`] and
//! [`HeadlessBrowser`](crate::HeadlessBrowser), all three at the crate root) and
//! [`LoopbackRedirect`], the one-shot listener on `127.0.0.1` that receives the authorization
//! response.
//!
//! # With a user
//!
//! 1. **Scopes** (SPEC C-20): the challenge's `scope`, else the protected resource metadata's
//!    `scopes_supported`, else none; on a step-up, that plus what was granted before (SPEC
//!    C-29); or exactly what [`TokenManager::authorize`](crate::TokenManager::authorize) was
//!    given. `offline_access` is added when the authorization server lists it (and the
//!    [builder](crate::TokenManagerBuilder::offline_access) did not turn it off), and dropped
//!    when it does not (SEP-2207).
//! 2. **Redirect**: a [`LoopbackRedirect`] is bound first, since dynamic registration needs its
//!    URI: the configured port, else the port of a client registered earlier if it is free,
//!    else an ephemeral one (SPEC C-22).
//! 3. **Client**: chosen or registered as the [`registration`](crate::registration) module
//!    describes.
//! 4. **Authorization URL**: `response_type=code`, `client_id`, `redirect_uri`, PKCE S256
//!    `code_challenge` (the verifier is fresh for each run), a random `state`, `resource` (the
//!    MCP server, RFC 8707) and `scope`. The URL is checked once built: https, or http on
//!    loopback when allowed (SPEC C-10).
//! 5. **Browser**: the URL is handed to the [`BrowserOpener`] while the listener waits, bounded
//!    by the [authorization timeout](crate::TokenManagerBuilder::authorization_timeout). The
//!    listener answers only `GET <redirect path>` with the right `state`; anything else gets an
//!    error page and the wait goes on, so a stray or forged request cannot end the flow.
//! 6. **Mix-up defence** (RFC 9207, SPEC C-21): an `iss` in the response must be the issuer,
//!    byte for byte; a server that advertises `authorization_response_iss_parameter_supported`
//!    must send one.
//! 7. **Code for tokens** at the token endpoint: the code, `redirect_uri`, `code_verifier` and
//!    `resource`, with the client's authentication and, when the authorization server offers
//!    DPoP, a proof with the principal's key. The manager stores what comes back.
//!
//! # Without a user
//!
//! A machine client ([`client_credentials_grant`](crate::TokenManagerBuilder::client_credentials_grant),
//! [`jwt_bearer_grant`](crate::TokenManagerBuilder::jwt_bearer_grant) or
//! [`enterprise_managed_authorization`](crate::TokenManagerBuilder::enterprise_managed_authorization))
//! never opens a browser. Scopes are chosen as in step 1, without `offline_access`: such a client
//! can always get a new access token. The enterprise-managed grant first exchanges the user's ID
//! token at the IdP (RFC 8693) for an identity assertion grant (SEP-990). Then one token request
//! with the pre-registered credentials: the JWT bearer grant (RFC 7523 §2.1) with the workload's
//! assertion or the identity assertion grant, else the client credentials grant (RFC 6749
//! §4.4). A rejection is returned as is: no other grant is tried.
//!
//! The [registration example](crate::registration#example-a-dynamic-registration-end-to-end)
//! runs a whole authorization with a user against a local authorization server.
//!
//! # Example
//!
//! The listener on its own, with a request standing in for the browser:
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth_client::authorize::LoopbackRedirect;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = LoopbackRedirect::bind(0).await?;
//! let uri = listener.redirect_uri().to_owned();
//! assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
//!
//! let browser = tokio::spawn(async move {
//!     // What the authorization server's redirect makes the browser do.
//!     let mut stream = tokio::net::TcpStream::connect(uri[7..].split('/').next().unwrap()).await?;
//!     use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!     stream.write_all(b"GET /callback?code=abc&state=xyz HTTP/1.1\r\nHost: x\r\n\r\n").await?;
//!     let mut page = String::new();
//!     stream.read_to_string(&mut page).await?;
//!     Ok::<_, std::io::Error>(page)
//! });
//!
//! let response = listener.receive("xyz", Duration::from_secs(5)).await?;
//! assert_eq!(response.code().expose(), "abc");
//! assert!(browser.await??.starts_with("HTTP/1.1 200"));
//! # Ok(())
//! # }
//! ```

pub(crate) mod browser;
mod loopback;
mod run;

pub(crate) use self::{
    browser::{BrowserOpener, SystemBrowser},
    run::{Enterprise, Obtained, Run, Scopes},
};

pub use self::{
    browser::OpenFuture,
    loopback::{AuthorizationResponse, LoopbackRedirect},
};
