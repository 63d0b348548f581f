//! The web UI, embedded: the static files `build.rs` makes in `web/build` (a SvelteKit
//! single-page app) served at `/`, with `index.html` for every page path the app routes
//! on the client. This is the router's fallback, so it sees only paths no route took.
//!
//! Invariant: anything under `/api` (and any method but GET and HEAD) still gets the one
//! JSON 404, byte for byte, so a wrong webhook secret looks like any unknown API path.
//! It knows nothing of the UI's pages; only that `_app/immutable/` files never change.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::error::{fallback, not_found};
use super::headers::{add_common, page_policy};

/// The built UI. Release builds carry the files; debug builds read them from `web/build`
/// at run time, so a rebuilt UI shows without recompiling the daemon.
#[derive(rust_embed::Embed)]
#[folder = "web/build"]
#[allow_missing = true]
struct Assets;

/// Where the single-page app's shell is.
const INDEX: &str = "index.html";
/// Files whose names carry a content hash: cacheable forever.
const IMMUTABLE: &str = "_app/immutable/";

/// Serves the embedded UI for a path no route matched.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if !(method == Method::GET || method == Method::HEAD) || is_api(path) {
        return fallback().await;
    }
    let relative = path.trim_start_matches('/');
    if !relative.is_empty()
        && let Some(file) = Assets::get(relative)
    {
        return file_response(&method, &headers, relative, file);
    }
    // A missing asset is a 404, not the app: a browser asking for a script must not get HTML.
    if relative.starts_with("_app/") || relative == "favicon.svg" {
        return not_found();
    }
    match Assets::get(INDEX) {
        Some(file) => file_response(&method, &headers, INDEX, file),
        None => not_built(),
    }
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn file_response(
    method: &Method,
    headers: &HeaderMap,
    name: &str,
    file: rust_embed::EmbeddedFile,
) -> Response {
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let page = file.metadata.mimetype().starts_with("text/html");
    let policy = page_policy(page.then_some(&file.data[..]));
    let cache = if name.starts_with(IMMUTABLE) {
        "public, max-age=31536000, immutable"
    } else {
        // The shell and unhashed files must be revalidated so a new release shows at once.
        "no-cache"
    };
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if *method == Method::HEAD {
        let mut response = StatusCode::OK.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(file.data.len()));
        response
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    add_common(response_headers);
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response_headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Without a built UI (`DW_SKIP_WEB_BUILD=1`, or `web/build` deleted), say how to get one.
fn not_built() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>docker-watcher</title><h1>The web UI is not built</h1>\
         <p>This binary was built without its UI. Install Node.js 20 with npm and build \
         again (<code>cargo build</code> runs npm in <code>web/</code>; after deleting \
         <code>web/build</code>, touch <code>web/package.json</code> first). The API \
         under <code>/api</code> works as usual.</p>",
    )
        .into_response();
    add_common(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    fn skipped_ui_build() -> bool {
        option_env!("DW_SKIP_WEB_BUILD") == Some("1")
    }

    async fn get(path: &str) -> Response {
        serve(Method::GET, path.parse().unwrap(), HeaderMap::new()).await
    }

    async fn body(response: Response) -> Vec<u8> {
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn api_paths_and_other_methods_get_the_json_404() {
        let expected = body(not_found()).await;
        for path in ["/api", "/api/", "/api/nope", "/api/webhook/wrong"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(body(response).await, expected, "{path}");
        }
        let response = serve(Method::POST, "/projects".parse().unwrap(), HeaderMap::new()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(response).await, expected);
    }

    #[tokio::test]
    async fn page_paths_get_the_app_shell_and_missing_assets_a_404() {
        // build.rs builds the UI before this crate compiles, unless told to skip it.
        if skipped_ui_build() {
            let response = get("/projects/3").await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            return;
        }
        let shell = body(get("/").await).await;
        assert!(String::from_utf8_lossy(&shell).contains("<!doctype html>"));
        for path in ["/projects/3", "/deploys", "/login"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html",
                "{path}"
            );
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
            assert_eq!(body(response).await, shell, "{path}");
        }
        let response = get("/_app/immutable/missing.js").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_forever_and_revalidate_by_etag() {
        if skipped_ui_build() {
            return;
        }
        let name = Assets::iter()
            .find(|n| n.starts_with(IMMUTABLE) && n.ends_with(".js"))
            .expect("a built UI has hashed scripts");
        let response = get(&format!("/{name}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript");
        assert!(
            response.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let etag = response.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let again = serve(Method::GET, format!("/{name}").parse().unwrap(), headers).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(body(again).await.is_empty());
    }
}
