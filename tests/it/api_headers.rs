//! Security headers on the real router: the web UI's Content-Security-Policy allows its
//! inline bootstrap script by hash and no other inline script, API answers carry `nosniff`
//! and a policy that loads nothing, the Swagger UI renders under its own policy, and HSTS
//! is sent when the public URL is https. And an unparsable path id is the JSON 400, not
//! a text answer.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::app::{AppOptions, spawn_app, spawn_app_with};

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_ui_policy_allows_exactly_its_inline_scripts_by_hash() {
    let app = spawn_app().await;
    let response = app.get("/projects").await;
    assert_eq!(response.status(), 200);
    let policy = header(&response, "content-security-policy");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert!(header(&response, "strict-transport-security").is_empty());
    let html = response.text().await.unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    let script_src = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("a script-src directive");
    assert!(!script_src.contains("unsafe-inline"), "{policy}");
    // Every inline script of the page, hashed as a browser hashes it, is in the policy.
    let mut inline = 0;
    for part in html.split("<script").skip(1) {
        let (attributes, rest) = part.split_once('>').unwrap();
        if attributes.contains("src=") {
            continue;
        }
        let body = rest.split("</script").next().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
        assert!(script_src.contains(&format!("'sha256-{hash}'")), "{policy}");
        inline += 1;
    }
    assert_eq!(script_src.matches("sha256-").count(), inline, "{policy}");
    app.shutdown().await;
}

#[tokio::test]
async fn api_answers_and_the_docs_carry_nosniff_and_a_policy() {
    let app = spawn_app().await;
    for path in [
        "/api/projects",
        "/api/nope",
        "/healthz",
        "/api/openapi.json",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(
            header(&response, "content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }
    let response = app.get("/api/docs/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let policy = header(&response, "content-security-policy");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(
        !policy.contains("script-src 'self' 'unsafe-inline'"),
        "{policy}"
    );
    // The page loads its scripts from files (the policy allows no inline script), and
    // those files are served.
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    for part in html.split("<script").skip(1) {
        let (attributes, _) = part.split_once('>').unwrap();
        assert!(
            attributes.contains("src="),
            "an inline script in the docs: {part}"
        );
    }
    let script = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("/api/openapi.json"));
    app.shutdown().await;
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_url_is_https() {
    let app = spawn_app_with(AppOptions {
        public_url: Some("https://deploy.example.com".into()),
        ..Default::default()
    })
    .await;
    for path in ["/", "/api/projects", "/healthz"] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "strict-transport-security"),
            "max-age=31536000",
            "{path}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_unparsable_path_id_is_the_json_400_naming_it() {
    let app = spawn_app().await;
    let api = app.api().await;
    for path in [
        "/api/projects/abc",
        "/api/deploys/1.5/logs",
        "/api/stages/99999999999999999999999",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(
            error.contains("`id`") && error.contains("whole number"),
            "{path}: {error}"
        );
    }
    app.shutdown().await;
}
