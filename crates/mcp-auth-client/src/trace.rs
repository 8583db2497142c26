//! The span of every token endpoint request: `mcp_auth.client.token` at `INFO` on target
//! `mcp_auth_client`, with `grant_type`, `client_id`, `decision` (`allow` when tokens came back,
//! `deny` otherwise) and `error` (the OAuth error code of a refusal). Never a token, code,
//! verifier, secret or assertion. Without the `tracing` feature it is the bare request.

use crate::error::AuthError;

/// Run one token endpoint `request` in its span.
pub(crate) async fn token_request<T, F>(
    form: &[(&'static str, String)],
    client_id: &str,
    request: F,
) -> Result<T, AuthError>
where
    F: Future<Output = Result<T, AuthError>>,
{
    #[cfg(feature = "tracing")]
    {
        use tracing::Instrument as _;
        let grant_type = form
            .iter()
            .find(|(name, _)| *name == "grant_type")
            .map(|(_, value)| value.as_str());
        let span = tracing::info_span!(
            target: "mcp_auth_client",
            "mcp_auth.client.token",
            grant_type,
            client_id,
            decision = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let result = request.instrument(span.clone()).await;
        match &result {
            Ok(_) => span.record("decision", "allow"),
            Err(error) => {
                if let Some(code) = error.oauth_error() {
                    span.record("error", code.as_str());
                }
                span.record("decision", "deny")
            }
        };
        result
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (form, client_id);
        request.await
    }
}
