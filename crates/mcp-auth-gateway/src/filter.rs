//! Hiding the tools a caller may not call from `tools/list` answers, in a JSON body or in the
//! SSE stream of the answer ([`ToolVisibility`]).
//!
//! Hiding is a courtesy, not the protection: a hidden tool called anyway still gets the 403 of
//! the tool-scope layer. Only the answer to a single `tools/list` request is rewritten; every
//! other event of its stream is forwarded as it arrives, and once the answer went by the rest of
//! the stream passes through untouched.

use std::{collections::HashMap, pin::Pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use mcp_auth_core::ScopeSet;
use serde_json::Value;

/// The largest answer (a JSON body, or one SSE event) that is rewritten; a larger one ends the
/// stream with an error.
pub const MAX_FILTERED_BYTES: usize = 16 * 1024 * 1024;

/// A boxed error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A boxed stream of body chunks.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Which tools a caller may see: the same table as the tool-scope layer's.
///
/// ```
/// use mcp_auth_gateway::filter::ToolVisibility;
///
/// let visibility = ToolVisibility::new("mcp:tools".parse()?).tool("wipe", "admin".parse()?);
/// let granted = "mcp:tools".parse()?;
/// assert!(visibility.allowed("echo", &granted));
/// assert!(!visibility.allowed("wipe", &granted));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ToolVisibility {
    default: ScopeSet,
    tools: HashMap<String, ScopeSet>,
}

impl ToolVisibility {
    /// Tools not named with [`tool`](Self::tool) need `default`.
    #[must_use]
    pub fn new(default: ScopeSet) -> Self {
        Self {
            default,
            tools: HashMap::new(),
        }
    }

    /// The tool `name` needs `scopes` (instead of the default).
    #[must_use]
    pub fn tool(mut self, name: impl Into<String>, scopes: ScopeSet) -> Self {
        self.tools.insert(name.into(), scopes);
        self
    }

    /// Whether a token granting `granted` may call `name`.
    #[must_use]
    pub fn allowed(&self, name: &str, granted: &ScopeSet) -> bool {
        granted.contains_all(self.tools.get(name).unwrap_or(&self.default))
    }

    /// Removes the tools `granted` does not cover from a JSON-RPC `tools/list` result in `message`;
    /// `true` when `message` was such a result.
    pub fn filter_message(&self, message: &mut Value, granted: &ScopeSet) -> bool {
        let Some(tools) = message
            .get_mut("result")
            .and_then(|r| r.get_mut("tools"))
            .and_then(Value::as_array_mut)
        else {
            return false;
        };
        tools.retain(|tool| {
            tool.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| self.allowed(name, granted))
        });
        true
    }

    /// Rewrites a whole JSON body; an unparsable body is returned as it is.
    #[must_use]
    pub fn filter_json(&self, body: Bytes, granted: &ScopeSet) -> Bytes {
        let Ok(mut message) = serde_json::from_slice::<Value>(&body) else {
            return body;
        };
        if self.filter_message(&mut message, granted) {
            serde_json::to_vec(&message).map_or(body, Bytes::from)
        } else {
            body
        }
    }

    /// Rewrites the `tools/list` answer in an SSE stream, forwarding every other event as it
    /// arrives.
    pub(crate) fn filter_sse(self: Arc<Self>, granted: ScopeSet, inner: ByteStream) -> ByteStream {
        struct State {
            inner: ByteStream,
            buf: BytesMut,
            passthrough: bool,
            ended: bool,
            visibility: Arc<ToolVisibility>,
            granted: ScopeSet,
        }
        let state = State {
            inner,
            buf: BytesMut::new(),
            passthrough: false,
            ended: false,
            visibility: self,
            granted,
        };
        Box::pin(futures_util::stream::unfold(state, |mut st| async move {
            loop {
                if st.passthrough || st.ended {
                    if !st.buf.is_empty() {
                        let rest = st.buf.split().freeze();
                        return Some((Ok(rest), st));
                    }
                    if st.ended {
                        return None;
                    }
                    return st.inner.next().await.map(|item| (item, st));
                }
                if let Some(end) = event_end(&st.buf) {
                    let event = st.buf.split_to(end).freeze();
                    let (out, answered) = rewrite_event(&event, &st.visibility, &st.granted);
                    st.passthrough = answered;
                    return Some((Ok(out), st));
                }
                match st.inner.next().await {
                    Some(Ok(chunk)) => {
                        if st.buf.len() + chunk.len() > MAX_FILTERED_BYTES {
                            st.ended = true;
                            st.buf.clear();
                            return Some((Err("an SSE event is too large to filter".into()), st));
                        }
                        st.buf.extend_from_slice(&chunk);
                    }
                    Some(Err(error)) => {
                        st.ended = true;
                        return Some((Err(error), st));
                    }
                    None => st.ended = true,
                }
            }
        }))
    }
}

/// The end (exclusive) of the first complete SSE event in `buf`: after its blank line.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'\n' => {
                if buf.get(i + 1) == Some(&b'\n') {
                    return Some(i + 2);
                }
                if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                    return Some(i + 3);
                }
            }
            b'\r' if buf.get(i + 1) == Some(&b'\r') => return Some(i + 2),
            _ => {}
        }
        i += 1;
    }
    None
}

/// One SSE event, rewritten when its data is a `tools/list` result; `true` when it was.
fn rewrite_event(event: &Bytes, visibility: &ToolVisibility, granted: &ScopeSet) -> (Bytes, bool) {
    let Ok(text) = std::str::from_utf8(event) else {
        return (event.clone(), false);
    };
    let mut data = String::new();
    let mut other = Vec::new();
    let mut has_data = false;
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        if let Some(value) = line.strip_prefix("data") {
            let value = value.strip_prefix(':').unwrap_or(value);
            let value = value.strip_prefix(' ').unwrap_or(value);
            if has_data {
                data.push('\n');
            }
            data.push_str(value);
            has_data = true;
        } else {
            other.push(line);
        }
    }
    if !has_data {
        return (event.clone(), false);
    }
    let Ok(mut message) = serde_json::from_str::<Value>(&data) else {
        return (event.clone(), false);
    };
    if !visibility.filter_message(&mut message, granted) {
        return (event.clone(), false);
    }
    let mut out = String::with_capacity(event.len());
    for line in other {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    (Bytes::from(out), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visibility() -> ToolVisibility {
        ToolVisibility::new("mcp:tools".parse().unwrap()).tool("wipe", "admin".parse().unwrap())
    }

    #[tokio::test]
    async fn the_sse_answer_is_rewritten_and_other_events_pass_as_they_are() {
        let chunks: Vec<Result<Bytes, BoxError>> = vec![
            Ok(Bytes::from_static(b"event: message\r\ndata: {\"method\":\"notifications/x\"}\r\n\r\nevent: mess")),
            Ok(Bytes::from_static(
                b"age\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"echo\"},{\"name\":\"wipe\"}]}}\r\n\r\n",
            )),
            Ok(Bytes::from_static(b"data: tail\n\n")),
        ];
        let inner: ByteStream = Box::pin(futures_util::stream::iter(chunks));
        let out: Vec<Bytes> = Arc::new(visibility())
            .filter_sse("mcp:tools".parse().unwrap(), inner)
            .map(Result::unwrap)
            .collect()
            .await;
        let text: String = out.iter().map(|b| String::from_utf8_lossy(b)).collect();
        assert!(
            text.starts_with("event: message\r\ndata: {\"method\":\"notifications/x\"}\r\n\r\n")
        );
        assert!(text.contains("event: message\nid: 7\ndata: {"), "{text}");
        assert!(
            text.contains("\"echo\"") && !text.contains("wipe"),
            "{text}"
        );
        assert!(text.ends_with("data: tail\n\n"));
    }

    #[test]
    fn a_json_answer_is_rewritten() {
        let body = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"wipe"}]}}"#,
        );
        let all = visibility().filter_json(body.clone(), &"mcp:tools admin".parse().unwrap());
        assert!(String::from_utf8_lossy(&all).contains("wipe"));
        let some = visibility().filter_json(body, &"mcp:tools".parse().unwrap());
        assert!(!String::from_utf8_lossy(&some).contains("wipe"));
    }
}
