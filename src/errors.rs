//! Error text shared by the adapters: an error and its causes on one line.

/// The error and its causes on one line, each cause once: a client library's own text
/// alone often hides the cause (`error sending request` … `Connection refused`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_once() {
        let error = Outer(std::io::Error::other("refused"));
        assert_eq!(error_chain(&error), "outer: refused");
    }
}
