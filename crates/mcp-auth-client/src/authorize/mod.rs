//! The browser part of the authorization code flow: [`BrowserOpener`] (with [`SystemBrowser`] and
//! [`HeadlessBrowser`]) and [`LoopbackRedirect`], the one-shot listener on `127.0.0.1` that
//! receives the authorization response.
//!
//! The [`TokenManager`](crate::TokenManager) drives the flow: it binds a [`LoopbackRedirect`]
//! (an ephemeral port unless configured, SPEC C-22), builds the authorization URL (PKCE S256,
//! `state`, `resource`, scopes), checks it (https, or http on loopback when allowed, SPEC C-10),
//! hands it to the [`BrowserOpener`], and waits — bounded — for the redirect. The listener answers
//! only `GET <redirect path>` with the right `state`; anything else gets an error page and the wait
//! goes on, so a stray or forged request cannot end the flow.
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

mod browser;
mod loopback;

pub use self::{
    browser::{BrowserOpener, HeadlessBrowser, OpenFuture, SystemBrowser},
    loopback::{AuthorizationResponse, LoopbackRedirect},
};
