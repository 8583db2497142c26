//! The one retry loop every outbound adapter shares (the tower [`OAuth`](crate::OAuth) service and,
//! with the `rmcp` feature, [`McpAuthClient`](crate::rmcp::McpAuthClient)): send with the current
//! token; on 401 ask the manager once (adopt, refresh or authorize) and retry; on 403
//! `insufficient_scope` step up and retry, as often as the manager's attempt limit allows; on 401
//! `use_dpop_nonce` (RFC 9449 §9) retry once with the server's nonce.

use std::future::Future;

use http::{HeaderMap, StatusCode};

use crate::{
    AuthError, dpop, layer::is_insufficient_scope, manager::TokenManager, token::AccessToken,
};

/// The most round trips one request may take (first try, a 401 retry, step-up retries).
const MAX_ROUNDS: u32 = 2 + 2 * crate::manager::MAX_ATTEMPTS_LIMIT;

/// What one attempt came to.
pub(crate) enum Attempt<R> {
    /// An answer that is not an authorization failure (or a failure to send at all): returned as
    /// is. `succeeded` says whether the operation's attempt count may be reset.
    Done { result: R, succeeded: bool },
    /// A 401 or 403 with the response's headers (the challenge); `result` is what the caller
    /// returns if the manager gives up.
    Challenged {
        status: StatusCode,
        headers: HeaderMap,
        result: R,
    },
}

/// Runs `send` with the manager's token until the server accepts it, the manager gives up, or the
/// round limit is reached. Returns the last result and, when the manager gave up, why. `url` is
/// where the requests go (for DPoP nonces).
pub(crate) async fn authorized<R, F, Fut>(
    manager: &TokenManager,
    operation: &str,
    url: &str,
    mut send: F,
) -> (R, Option<AuthError>)
where
    F: FnMut(Option<AccessToken>) -> Fut,
    Fut: Future<Output = Attempt<R>>,
{
    let mut token = match manager.cached_token().await {
        Ok(token) => token,
        Err(_e) => {
            event!(debug, error = %_e, "no token before the request");
            None
        }
    };
    let mut retried_unauthorized = false;
    let mut retried_nonce = false;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let (status, headers, result) = match send(token.clone()).await {
            Attempt::Done { result, succeeded } => {
                if succeeded {
                    manager.operation_succeeded(operation);
                }
                return (result, None);
            }
            Attempt::Challenged {
                status,
                headers,
                result,
            } => (status, headers, result),
        };
        if rounds >= MAX_ROUNDS {
            return (result, None);
        }
        if status == StatusCode::UNAUTHORIZED
            && let Some(sent) = token.as_ref().filter(|t| t.is_dpop())
            && dpop::asks_for_nonce(&headers)
        {
            if retried_nonce {
                event!(warn, "the MCP server asked for a DPoP nonce again");
                let e = dpop::error(
                    "the MCP server asked for a new DPoP nonce again after the one retry",
                )
                .with_status(401);
                return (result, Some(e));
            }
            retried_nonce = true;
            match manager.take_resource_nonce(url, &headers, sent).await {
                Ok(()) => continue,
                Err(e) => return (result, Some(e)),
            }
        }
        let outcome = if status == StatusCode::UNAUTHORIZED && !retried_unauthorized {
            retried_unauthorized = true;
            manager
                .on_unauthorized(&headers, token.as_ref(), operation)
                .await
        } else if is_insufficient_scope(status, &headers) {
            manager
                .on_insufficient_scope(&headers, token.as_ref(), operation)
                .await
        } else {
            return (result, None);
        };
        match outcome {
            Ok(new) => token = Some(new),
            Err(e) => {
                event!(info, error = %e, "giving up on authorization for this request");
                return (result, Some(e));
            }
        }
    }
}
