//! The daemon's log output: `tracing` to stderr, as text or JSON. Text lines never carry
//! raw control characters from logged values (a login name with a newline would forge a
//! log line, one with ESC would colour a terminal), and colours are used only when stderr
//! is a terminal, so log files and journald get plain text.

use std::borrow::Cow;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{FormatFields, Writer, debug_fn};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber; called once by `main`.
pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log_format {
        LogFormat::Text => builder.fmt_fields(escaping_fields()).init(),
        // JSON strings escape control characters themselves.
        LogFormat::Json => builder.json().init(),
    }
}

/// The text formatter's fields (`message`, then `name=value`), every value escaped with
/// [`escape_for_log`].
pub fn escaping_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(|writer: &mut Writer<'_>, field, value| {
        let text = format!("{value:?}");
        let text = escape_for_log(&text);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

/// `text` with control characters (newlines, ESC, C1 codes) and the Unicode line
/// separators and direction overrides written as escapes, so it stays on one line and
/// shows as it is.
pub fn escape_for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_for_log("plain name"), "plain name");
        assert_eq!(escape_for_log("a\nb"), "a\\nb");
        assert_eq!(escape_for_log("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(
            escape_for_log("x\r\ty\u{85}\u{2028}\u{202e}"),
            "x\\r\\ty\\u{85}\\u{2028}\\u{202e}"
        );
    }

    /// A logged value with a newline and ESC stays on one line, without raw ESC.
    #[test]
    fn a_forged_line_stays_on_its_own_line() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(escaping_fields())
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let username = "admin\n2026-01-01T00:00:00Z  INFO signed in\x1b[2J";
            tracing::warn!(username = %username, other = ?username, "failed login {username}");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(text.contains("username=admin\\n2026"), "{text}");
    }

    struct Writer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
