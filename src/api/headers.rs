//! Security headers on every answer: `nosniff`, no framing, a same-origin referrer, a
//! Content-Security-Policy fitting what is served, and HSTS when the public URL is https.
//!
//! The policies: API answers may load nothing (`default-src 'none'`); the web UI loads
//! only its own files, and its one inline script (SvelteKit's bootstrap in `index.html`)
//! is allowed by its sha256, computed from the page as served ([`page_policy`]), so a
//! rebuilt UI never needs the policy edited; the Swagger UI at `/api/docs` loads its own
//! files and the `data:` images its stylesheet uses. Inline styles are allowed in the two
//! UIs (Svelte and Swagger set `style` attributes); inline scripts never.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{DOCS_PATH, WebConfig};

/// The policy of API answers: they are data, never a page.
pub const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
/// The policy of the Swagger UI.
pub const DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
/// HSTS for a daemon reached over https: a year, this host only (deployed apps on
/// subdomains choose for themselves).
pub const HSTS: &str = "max-age=31536000";

/// Middleware: adds the headers an answer does not set itself.
pub async fn security_headers(
    State(web): State<Arc<WebConfig>>,
    request: Request,
    next: Next,
) -> Response {
    let docs = request.uri().path().starts_with(DOCS_PATH);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    add_common(headers);
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if docs { DOCS_POLICY } else { API_POLICY };
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    if web.secure_cookies {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// The headers every answer carries, whatever it is.
pub fn add_common(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The web UI's policy for a page: its own files only, plus the page's inline scripts
/// by hash (`None` for files that are not pages).
pub fn page_policy(html: Option<&[u8]>) -> String {
    let hashes: String = html
        .map(inline_scripts)
        .unwrap_or_default()
        .iter()
        .map(|script| {
            let digest = Sha256::digest(script);
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// The bodies of a page's `<script>` elements that have no `src`, byte for byte (what a
/// browser hashes).
fn inline_scripts(html: &[u8]) -> Vec<&[u8]> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(start) = find(rest, b"<script") {
        let after = &rest[start + b"<script".len()..];
        let Some(tag_end) = find(after, b">") else {
            break;
        };
        let attributes = &after[..tag_end];
        let body = &after[tag_end + 1..];
        let Some(close) = find(body, b"</script") else {
            break;
        };
        if find(&attributes.to_ascii_lowercase(), b"src=").is_none() {
            scripts.push(&body[..close]);
        }
        rest = &body[close..];
    }
    scripts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_policy_carries_the_hash_of_each_inline_script_and_none_of_others() {
        let html = b"<html><script src=\"/a.js\"></script><script>\n  go();\n</script></html>";
        let policy = page_policy(Some(html));
        let expected =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"\n  go();\n"));
        assert!(
            policy.contains(&format!("script-src 'self' 'sha256-{expected}';")),
            "{policy}"
        );
        assert_eq!(policy.matches("sha256-").count(), 1, "{policy}");
        let script_src = policy
            .split(';')
            .find(|d| d.contains("script-src"))
            .unwrap();
        assert!(!script_src.contains("unsafe-inline"), "{policy}");
        assert!(!page_policy(None).contains("sha256-"));
    }
}
