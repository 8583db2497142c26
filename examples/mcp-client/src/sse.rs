//! An incremental `text/event-stream` parser (the subset MCP servers send): `data:` lines joined
//! with `\n`, `event:` and `id:` kept, comments and `retry:` ignored, events dispatched at a blank
//! line. Bytes arrive in arbitrary chunks.

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field (`message` when absent).
    pub event: Option<String>,
    /// The `id:` field.
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds bytes in, takes whole events out.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    current: Event,
    has_data: bool,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n' || *b == b'\r') {
            // A `\r\n` split across chunks: wait for the next byte to know.
            if self.buffer[end] == b'\r' && end + 1 == self.buffer.len() {
                break;
            }
            let skip = if self.buffer[end] == b'\r' && self.buffer.get(end + 1) == Some(&b'\n') {
                2
            } else {
                1
            };
            let line: Vec<u8> = self.buffer.drain(..end + skip).take(end).collect();
            self.line(&String::from_utf8_lossy(&line), &mut events);
        }
        events
    }

    /// Ends the stream: an event without its final blank line is still delivered.
    pub fn finish(&mut self) -> Option<Event> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let mut events = Vec::new();
            self.line(&String::from_utf8_lossy(&rest), &mut events);
            if let Some(event) = events.pop() {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str, events: &mut Vec<Event>) {
        if line.is_empty() {
            events.extend(self.dispatch());
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.to_owned()),
            "id" => self.current.id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.current);
        std::mem::take(&mut self.has_data).then_some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, Parser};

    #[test]
    fn events_across_chunks() {
        let mut parser = Parser::new();
        assert!(parser.feed(b": hi\r\nevent: message\r\nid: 1\r").is_empty());
        assert!(parser.feed(b"\ndata: {\"a\":").is_empty());
        let events = parser.feed(b"1}\r\ndata:x\r\n\r\nid: 2\n\ndata: tail");
        assert_eq!(
            events,
            vec![Event {
                event: Some("message".into()),
                id: Some("1".into()),
                data: "{\"a\":1}\nx".into()
            }]
        );
        assert_eq!(
            parser.finish(),
            Some(Event {
                event: None,
                id: None,
                data: "tail".into()
            })
        );
        assert_eq!(parser.finish(), None);
    }
}
