//! A container's output as lines: what `Engine::follow_logs` yields, and how Docker's
//! frames (a timestamp, then whatever one write held) become them.
//!
//! Docker frames each write of a container (and splits writes over 16 KiB); a frame may
//! hold several lines or end without a newline. Lines are cut at [`MAX_LINE_BYTES`] so
//! one endless line cannot fill a browser.

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;

use super::EngineError;

/// The longest line passed on; the rest is cut and marked with `…`.
pub const MAX_LINE_BYTES: usize = 8 * 1024;

/// Which output of a container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Stdout,
    Stderr,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::Stdout => "stdout",
            LogSource::Stderr => "stderr",
        }
    }
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub source: LogSource,
    /// When Docker received it.
    pub at: Option<DateTime<Utc>>,
    pub text: String,
}

/// A container's lines as they come; ends when the container stops (when following)
/// or after the backlog (when not).
pub type LogLines = BoxStream<'static, Result<LogLine, EngineError>>;

/// The lines of one Docker frame (`<RFC 3339 timestamp> <text>`, asked for with
/// `timestamps=true`); empty lines are kept, a trailing newline does not make one.
pub(super) fn frame_lines(source: LogSource, frame: &[u8]) -> Vec<LogLine> {
    let text = String::from_utf8_lossy(frame);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let mut at = None;
    text.split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // Docker puts the timestamp before each line it received as a line; a frame
            // holding several lines has one timestamp, which the later lines share.
            let line = match line.split_once(' ') {
                Some((stamp, rest)) => match DateTime::parse_from_rfc3339(stamp) {
                    Ok(stamp) => {
                        at = Some(stamp.with_timezone(&Utc));
                        rest
                    }
                    Err(_) => line,
                },
                None => match DateTime::parse_from_rfc3339(line) {
                    Ok(stamp) => {
                        at = Some(stamp.with_timezone(&Utc));
                        ""
                    }
                    Err(_) => line,
                },
            };
            LogLine {
                source,
                at,
                text: cut(line),
            }
        })
        .collect()
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_becomes_its_lines_with_the_timestamp() {
        let lines = frame_lines(
            LogSource::Stderr,
            b"2026-11-30T02:10:00.123456789Z listening on :8080\n",
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "listening on :8080");
        assert_eq!(lines[0].source, LogSource::Stderr);
        assert_eq!(
            lines[0].at.unwrap().to_rfc3339(),
            "2026-11-30T02:10:00.123456789+00:00"
        );
    }

    #[test]
    fn several_lines_in_one_frame_share_its_timestamp_and_keep_blank_ones() {
        let lines = frame_lines(
            LogSource::Stdout,
            b"2026-11-30T02:10:00Z one\r\n\nthree 2026 x\n",
        );
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "", "three 2026 x"]);
        assert!(lines.iter().all(|l| l.at == lines[0].at && l.at.is_some()));
    }

    #[test]
    fn an_endless_line_is_cut_on_a_character_boundary() {
        let long = format!("2026-11-30T02:10:00Z {}", "é".repeat(MAX_LINE_BYTES));
        let lines = frame_lines(LogSource::Stdout, long.as_bytes());
        assert!(lines[0].text.len() <= MAX_LINE_BYTES + '…'.len_utf8());
        assert!(lines[0].text.ends_with('…'));
    }
}
