//! A small reader of Server-Sent Events (the `text/event-stream` format): feed it bytes
//! as they arrive, take out whole events.

/// One event: its name (`message` when none was given), data lines joined by `\n`, id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Buffers partial input; [`SseReader::push`] returns the events completed by it.
#[derive(Default)]
pub struct SseReader {
    buffer: String,
}

impl SseReader {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer
            .push_str(&String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            if let Some(event) = parse_block(&block) {
                events.push(event);
            }
        }
        events
    }
}

/// A block of lines up to a blank line; comment-only blocks (keep-alives) give `None`.
fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    let mut id = None;
    for line in block.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            "id" => id = Some(value.to_string()),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut reader = SseReader::default();
        assert!(reader.push(b"event: log\ndata: {\"a\"").is_empty());
        let events = reader.push(b":1}\nid: 7\n\n: keep-alive\n\nevent: end\ndata: x\ndata: y\n\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "log".into(),
                    data: "{\"a\":1}".into(),
                    id: Some("7".into())
                },
                SseEvent {
                    event: "end".into(),
                    data: "x\ny".into(),
                    id: None
                },
            ]
        );
    }

    #[test]
    fn crlf_line_ends_work_too() {
        let mut reader = SseReader::default();
        let events = reader.push(b"data: hi\r\n\r\n");
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "hi");
    }
}
