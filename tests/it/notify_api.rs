//! `/api/notifications` through HTTP: service URLs are checked and stored canonical and
//! sealed, filters and templates validate (a bad one is a 422 that changes nothing), the
//! preview renders, and the delivery status shows a test send's outcome.

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::app::spawn_app;

#[tokio::test]
async fn targets_validate_preview_and_show_their_delivery() {
    let app = spawn_app().await;
    let api = app.api().await;

    let (status, body) = api
        .post(
            "/api/notifications",
            json!({ "name": "tg", "url": "telegram://123:SECRET@telegram", "events": ["success", "sometimes"],
                    "poll_error_threshold": 0, "body_template": "{% if %}" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    for field in ["url", "events", "poll_error_threshold", "body_template"] {
        assert!(body["fields"][field].is_string(), "{field}: {body}");
    }
    assert!(
        body["fields"]["url"].as_str().unwrap().contains("chats"),
        "{body}"
    );
    let (_, targets) = api.get("/api/notifications").await;
    assert_eq!(targets, json!([]), "nothing was made");

    let (status, body) = api
        .post(
            "/api/notifications",
            json!({ "name": "x", "kind": "slack", "url": "gotify://g.example.test/T" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["kind"].as_str().unwrap().contains("gotify"),
        "{body}"
    );

    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/message"))
        .and(header("X-Gotify-Key", "AppToken9"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": "Unauthorized", "errorCode": 401, "errorDescription": "you need to provide a valid access token or user credentials to access this api"
        })))
        .expect(1)
        .mount(&fake)
        .await;
    let target = api
        .create(
            "/api/notifications",
            json!({ "name": "gotify", "url": format!("gotify://{}/AppToken9?disabletls=yes", fake.address()),
                    "events": ["failure", "poll_error"], "stages": ["prod"], "poll_error_threshold": 5,
                    "title_template": "{{ project }} {{ event }}" }),
        )
        .await;
    assert_eq!(target["kind"], "gotify");
    assert_eq!(target["events"], json!(["failure", "poll_error"]));
    assert_eq!(target["stages"], json!(["prod"]));
    assert_eq!(target["poll_error_threshold"], 5);
    assert_eq!(target["title_template"], "{{ project }} {{ event }}");
    assert!(
        target.get("url").is_none(),
        "the URL is write-only: {target}"
    );
    let id = target["id"].as_i64().unwrap();

    let (status, answer) = api
        .post(&format!("/api/notifications/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["ok"], false);
    assert!(
        answer["message"].as_str().unwrap().contains("401"),
        "{answer}"
    );
    let (_, view) = api.get(&format!("/api/notifications/{id}")).await;
    assert!(
        view["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("valid access token"),
        "{view}"
    );
    assert!(!view.to_string().contains("AppToken9"), "{view}");

    // A bad template in a change is refused and the old one stays.
    let (status, _) = api
        .put(
            &format!("/api/notifications/{id}"),
            json!({ "title_template": "{{ unclosed" }),
        )
        .await;
    assert_eq!(status, 422);
    let (_, view) = api.get(&format!("/api/notifications/{id}")).await;
    assert_eq!(view["title_template"], "{{ project }} {{ event }}");
    let (status, view) = api
        .put(
            &format!("/api/notifications/{id}"),
            json!({ "title_template": "" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        view["title_template"],
        serde_json::Value::Null,
        "empty goes back to the default"
    );

    let (status, preview) = api
        .post(
            "/api/notifications/preview",
            json!({ "title_template": "{{ outcome|upper }} {{ tag }}", "event": "failure" }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["title"], "FAILED TO DEPLOY dev-4f2a91");
    assert!(
        preview["body"]
            .as_str()
            .unwrap()
            .contains("Failed step: health_check"),
        "{preview}"
    );
    let (status, body) = api
        .post(
            "/api/notifications/preview",
            json!({ "body_template": "{% for %}" }),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["fields"]["body_template"]
            .as_str()
            .unwrap()
            .contains("template error"),
        "{body}"
    );
}
