//! The REST API as a script or the UI meets it, black-box over HTTP against the spawned
//! daemon: auth on every route, CRUD and validation of every resource, CSRF, token
//! revocation, the login limit, secrets that never come back, the OpenAPI document.

use serde_json::{Value, json};

use crate::support::app::{ADMIN_PASSWORD, spawn_app};

/// Routes anyone may call; every other route of the spec must answer 401 without auth.
const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("post", "/api/webhook/{secret}"),
    ("post", "/api/auth/login"),
];

/// The routes the issue asks for, written out by hand: the spec must list each (so the
/// spec is checked against something it was not generated from).
const EXPECTED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("post", "/api/webhook/{secret}"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/me"),
    ("put", "/api/auth/password"),
    ("get", "/api/auth/tokens"),
    ("post", "/api/auth/tokens"),
    ("delete", "/api/auth/tokens/{id}"),
    ("get", "/api/registries"),
    ("post", "/api/registries"),
    ("get", "/api/registries/{id}"),
    ("put", "/api/registries/{id}"),
    ("delete", "/api/registries/{id}"),
    ("post", "/api/registries/{id}/check"),
    ("get", "/api/projects"),
    ("post", "/api/projects"),
    ("get", "/api/projects/{id}"),
    ("put", "/api/projects/{id}"),
    ("delete", "/api/projects/{id}"),
    ("get", "/api/projects/{id}/tags"),
    ("post", "/api/projects/{id}/poll"),
    ("get", "/api/projects/{id}/events"),
    ("get", "/api/projects/{id}/stages"),
    ("post", "/api/projects/{id}/stages"),
    ("get", "/api/stages/{id}"),
    ("put", "/api/stages/{id}"),
    ("delete", "/api/stages/{id}"),
    ("get", "/api/stages/{id}/poll-state"),
    ("get", "/api/stages/{id}/service"),
    ("post", "/api/stages/{id}/service/scale"),
    ("post", "/api/stages/{id}/service/remove"),
    ("get", "/api/stages/{id}/instances"),
    ("post", "/api/stages/{id}/deploys"),
    ("post", "/api/stages/{id}/rollback"),
    ("get", "/api/instances"),
    ("get", "/api/instances/{id}"),
    ("delete", "/api/instances/{id}"),
    ("post", "/api/instances/{id}/stop"),
    ("post", "/api/instances/{id}/start"),
    ("get", "/api/instances/{id}/logs"),
    ("get", "/api/deploys"),
    ("get", "/api/deploys/{id}"),
    ("post", "/api/deploys/{id}/redeploy"),
    ("post", "/api/stages/{id}/promote"),
    ("post", "/api/deploys/{id}/approve"),
    ("post", "/api/deploys/{id}/reject"),
    ("get", "/api/deploys/waiting"),
    ("get", "/api/audit"),
    ("get", "/api/deploys/{id}/logs"),
    ("get", "/api/deploys/{id}/logs/stream"),
    ("get", "/api/events"),
    ("get", "/api/settings"),
    ("put", "/api/settings"),
    ("get", "/api/settings/webhook"),
    ("post", "/api/settings/webhook/regenerate"),
    ("post", "/api/settings/proxy/check"),
    ("get", "/api/notifications"),
    ("post", "/api/notifications"),
    ("get", "/api/notifications/{id}"),
    ("put", "/api/notifications/{id}"),
    ("delete", "/api/notifications/{id}"),
    ("post", "/api/notifications/{id}/test"),
    ("post", "/api/notifications/preview"),
    ("get", "/api/webhook-events"),
    ("post", "/api/reconcile"),
    ("post", "/api/apply"),
    ("get", "/api/export"),
    ("get", "/api/managed"),
];

/// Every (method, path) of the served spec.
fn operations(spec: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                ops.push((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{secret}", "not-the-secret")
}

#[tokio::test]
async fn every_route_needs_auth_except_the_public_ones() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    let (status, spec) = anonymous.get("/api/openapi.json").await;
    assert_eq!(status, 200, "the spec is public");
    let ops = operations(&spec);
    assert!(ops.len() >= EXPECTED.len(), "{ops:?}");
    for (method, path) in &ops {
        let (status, body) = anonymous
            .call(method, &concrete(path), Some(json!({})))
            .await;
        let public = PUBLIC.iter().any(|(m, p)| m == method && p == path);
        if public {
            assert_ne!(status, 401, "{method} {path} is public: {body}");
        } else {
            assert_eq!(status, 401, "{method} {path} must need auth: {body}");
            assert!(
                body["error"].is_string(),
                "{method} {path}: JSON error body: {body}"
            );
        }
        // The spec's own security says the same.
        let security = &spec["paths"][path][method]["security"];
        let open_in_spec = security.as_array().is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
        });
        assert_eq!(
            open_in_spec, public,
            "{method} {path}: spec security {security}"
        );
    }
    // A token that does not exist is refused just like none.
    let forged = app.api_with_token("dw_forged");
    assert_eq!(forged.get("/api/projects").await.0, 401);
    assert_eq!(forged.get("/metrics").await.0, 401);
    app.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let app = spawn_app().await;
    let (status, spec) = app.anonymous().get("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        spec["openapi"]
    );
    assert!(spec["info"]["title"].is_string());
    let ops = operations(&spec);
    for (method, path) in EXPECTED {
        assert!(
            ops.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is missing from the spec"
        );
    }
    for (method, path) in &ops {
        assert!(
            EXPECTED.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is in the spec but not in this test's list: add it to EXPECTED"
        );
        let op = &spec["paths"][path][method];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
        for param in path.split('/').filter(|s| s.starts_with('{')) {
            let name = param.trim_matches(|c| c == '{' || c == '}');
            let declared = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
            assert!(
                declared,
                "{method} {path} does not declare path parameter {name}"
            );
        }
    }
    // Every $ref points at a schema the document defines.
    let text = spec.to_string();
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(schemas.contains_key(name), "$ref to missing schema {name}");
    }
    // The interactive docs are served (vendored, no download).
    let docs = app.get("/api/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn login_me_logout_and_password_change() {
    let app = spawn_app().await;
    let login = app.login().await;
    assert!(
        login.set_cookie.contains("HttpOnly"),
        "{}",
        login.set_cookie
    );
    assert!(
        login.set_cookie.contains("SameSite=Strict"),
        "{}",
        login.set_cookie
    );
    assert!(
        !login.set_cookie.contains("Secure"),
        "plain http: {}",
        login.set_cookie
    );
    let api = app.api_with_token(&login.token);
    let (status, me) = api.get("/api/auth/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["auth"], "session");

    // The cookie works too, and /me then gives the CSRF token.
    let response = app
        .client
        .get(format!("{}/api/auth/me", app.address))
        .header("cookie", &login.cookie)
        .send()
        .await
        .unwrap();
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["auth"], "cookie");
    assert_eq!(me["csrf_token"], login.csrf_token.as_str());

    let (status, body) = api
        .put(
            "/api/auth/password",
            json!({ "current_password": "wrong", "new_password": "short" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["current_password"].is_string(), "{body}");
    assert!(body["fields"]["new_password"].is_string(), "{body}");
    let (status, body) = api
        .put(
            "/api/auth/password",
            json!({ "current_password": ADMIN_PASSWORD, "new_password": "a new long password" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        api.get("/api/auth/me").await.0,
        401,
        "sessions end with a new password"
    );
    let (status, _) = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({ "username": "admin", "password": "a new long password" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .anonymous()
        .post(
            "/api/auth/login",
            json!({ "username": "admin", "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "wrong username or password");

    let fresh = app.api_with_token(
        app.anonymous()
            .post(
                "/api/auth/login",
                json!({ "username": "admin", "password": "a new long password" }),
            )
            .await
            .1["token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(fresh.post("/api/auth/logout", json!({})).await.0, 204);
    assert_eq!(fresh.get("/api/auth/me").await.0, 401, "logged out");
    app.shutdown().await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_listed_without_value_and_revocable() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api
        .create("/api/auth/tokens", json!({ "name": "ci" }))
        .await;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("dw_") && token.len() > 30, "{token}");
    let (status, body) = api.post("/api/auth/tokens", json!({ "name": "ci" })).await;
    assert_eq!(status, 409, "names are unique: {body}");
    let (status, body) = api
        .post("/api/auth/tokens", json!({ "name": "CI token" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["name"].is_string());

    let script = app.api_with_token(&token);
    let (status, me) = script.get("/api/auth/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["auth"], "token");
    let (_, list) = api.get("/api/auth/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "ci");
    assert!(
        list[0]["last_used_at"].is_string(),
        "use is recorded: {list}"
    );
    assert!(
        !list.to_string().contains(&token),
        "the value is never listed"
    );

    let id = created["id"].as_i64().unwrap();
    assert_eq!(api.delete(&format!("/api/auth/tokens/{id}")).await.0, 204);
    assert_eq!(script.get("/api/auth/me").await.0, 401, "revoked at once");
    assert_eq!(api.delete(&format!("/api/auth/tokens/{id}")).await.0, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn cookie_requests_that_change_state_need_the_csrf_header() {
    let app = spawn_app().await;
    let login = app.login().await;
    let send = |csrf: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}/api/auth/tokens", app.address))
            .header("cookie", &login.cookie)
            .json(&json!({ "name": "from-ui" }));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let response = send(None).await.unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("X-CSRF-Token"),
        "{body}"
    );
    assert_eq!(send(Some("wrong")).await.unwrap().status(), 403);
    assert_eq!(send(Some(&login.csrf_token)).await.unwrap().status(), 201);
    // Reading needs no header; a bearer token needs none either.
    let response = app
        .client
        .get(format!("{}/api/auth/tokens", app.address))
        .header("cookie", &login.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = app
        .api_with_token(&login.token)
        .post("/api/auth/tokens", json!({ "name": "from-script" }))
        .await;
    assert_eq!(status, 201);
    app.shutdown().await;
}

#[tokio::test]
async fn logins_are_rate_limited_per_address() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    let wrong = json!({ "username": "admin", "password": "guess-guess" });
    for attempt in 1..=5 {
        let (status, body) = anonymous.post("/api/auth/login", wrong.clone()).await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
    }
    let response = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "even the right password waits");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    app.shutdown().await;
}

#[tokio::test]
async fn registries_crud_with_write_only_secret() {
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api
        .create(
            "/api/registries",
            json!({ "name": "gitea", "kind": "gitea", "base_url": "https://git.example.test",
                    "username": "bot", "secret": "registry-pass-123" }),
        )
        .await;
    assert_eq!(created["has_secret"], true);
    assert_eq!(created["kind"], "gitea");
    assert!(created.get("secret").is_none(), "{created}");
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/registries/{id}");

    let (status, updated) = api
        .put(
            &path,
            json!({ "name": "gitea-2", "secret": null, "insecure": true }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "gitea-2");
    assert_eq!(updated["has_secret"], false, "null clears the secret");
    assert_eq!(updated["username"], "bot", "left out keeps");
    assert_eq!(updated["insecure"], true);

    let (status, body) = api
        .post(
            "/api/registries",
            json!({ "name": "Bad Name", "kind": "quay", "base_url": "" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "validation failed");
    assert!(body["fields"]["name"].is_string(), "{body}");
    assert!(
        body["fields"]["kind"].as_str().unwrap().contains("oci"),
        "{body}"
    );
    let (status, body) = api
        .post(
            "/api/registries",
            json!({ "name": "x", "kind": "oci", "base_url": "" }),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["fields"]["base_url"].is_string(), "{body}");
    let (status, body) = api
        .post(
            "/api/registries",
            json!({ "name": "gitea-2", "kind": "dockerhub" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "name is already taken");

    // A check against a registry that is not there says why, in words.
    let broken = api
        .create(
            "/api/registries",
            json!({ "name": "nowhere", "kind": "oci", "base_url": "http://127.0.0.1:1", "insecure": true }),
        )
        .await;
    let (status, check) = api
        .post(
            &format!("/api/registries/{}/check", broken["id"]),
            json!({ "repository": "acme/shop" }),
        )
        .await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], false);
    assert!(
        check["message"].as_str().unwrap().contains("cannot reach"),
        "{check}"
    );

    let (_, list) = api.get("/api/registries").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(api.delete(&path).await.0, 204);
    assert_eq!(api.get(&path).await.0, 404);
    assert_eq!(api.delete(&path).await.0, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn projects_and_stages_crud_with_validation_naming_fields() {
    let app = spawn_app().await;
    let api = app.api().await;
    let project = api
        .create(
            "/api/projects",
            json!({ "name": "shop", "image": "registry.example.test/acme/shop", "container_port": 8080,
                    "health_path": "/health",
                    "env": [{ "name": "MODE", "value": "dev" }, { "name": "DB_PASSWORD", "value": "s3cr3t-env", "secret": true }],
                    "volumes": ["shop-data:/data"] }),
        )
        .await;
    assert_eq!(project["image"], "registry.example.test/acme/shop");
    assert_eq!(
        project["env"][0],
        json!({ "name": "MODE", "value": "dev", "secret": false })
    );
    assert_eq!(project["env"][1]["name"], "DB_PASSWORD");
    assert_eq!(project["env"][1]["secret"], true);
    assert!(project["env"][1]["value"].is_null(), "{project}");
    let id = project["id"].as_i64().unwrap();

    // Images are normalised the way docker does.
    let nginx = api
        .create(
            "/api/projects",
            json!({ "name": "web", "image": "nginx", "container_port": 80 }),
        )
        .await;
    assert_eq!(nginx["image"], "docker.io/library/nginx");

    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "Bad_Name", "image": "acme/shop:1.0", "container_port": 70000,
                    "health_path": "health", "registry_id": 999,
                    "env": [{ "name": "1X", "value": "x" }, { "name": "PLAIN" },
                            { "name": "NUL", "value": "a\u{0}b" }],
                    "volumes": ["nodest"], "health_retries": 0 }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    for field in [
        "name",
        "image",
        "container_port",
        "health_path",
        "registry_id",
        "env[0].name",
        "env[1].value",
        "env[2].value",
        "volumes[0]",
        "health_retries",
    ] {
        assert!(
            body["fields"][field].is_string(),
            "{field} not named: {body}"
        );
    }
    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "shop", "image": "other/image", "container_port": 1 }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // An image is taken as given, as the document's pattern says: no padding.
    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "padded", "image": " busybox", "container_port": 80 }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["image"].is_string(), "{body}");
    let (status, body) = api.post("/api/projects", json!({ "name": "x" })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["fields"]["image"], "is required", "{body}");
    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "x", "image": "a", "container_port": "eighty" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["container_port"].is_string(), "{body}");
    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "x", "surprise": 1, "image": "a", "container_port": 1 }),
        )
        .await;
    assert_eq!(status, 422, "unknown fields are refused: {body}");
    // Not JSON at all, or not declared as JSON.
    let response = app
        .client
        .post(format!("{}/api/projects", app.address))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .client
        .post(format!("{}/api/projects", app.address))
        .bearer_auth(api.token.as_ref().unwrap())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Update: left out keeps, null clears, the secret env keeps its value when re-sent without.
    let (status, updated) = api
        .put(
            &format!("/api/projects/{id}"),
            json!({ "container_port": 9090, "health_path": null,
                    "env": [{ "name": "DB_PASSWORD", "secret": true }] }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["container_port"], 9090);
    assert!(updated["health_path"].is_null());
    assert_eq!(updated["name"], "shop");
    assert_eq!(
        app.store().project_env(id).unwrap(),
        vec![("DB_PASSWORD".to_string(), "s3cr3t-env".to_string())]
    );
    // A secret var that was never saved has no value to keep: a field error, nothing changed.
    let (status, body) = api
        .put(
            &format!("/api/projects/{id}"),
            json!({ "container_port": 7070,
                    "env": [{ "name": "DB_PASSWORD", "secret": true },
                            { "name": "API_KEY", "secret": true }] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["env[1].value"].is_string(), "{body}");
    assert_eq!(
        api.get(&format!("/api/projects/{id}")).await.1["container_port"],
        9090
    );
    let (status, body) = api
        .post(
            "/api/projects",
            json!({ "name": "shop-secret", "image": "registry.example.com/acme/shop-secret",
                    "container_port": 8080, "env": [{ "name": "TOKEN", "secret": true }] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["env[0].value"].is_string(), "{body}");

    // Stages.
    let stages = format!("/api/projects/{id}/stages");
    let dev = api
        .create(&stages, json!({ "name": "dev", "tag_pattern": "dev-*" }))
        .await;
    assert_eq!(dev["auto_deploy"], true);
    assert_eq!(dev["max_instances"], 1);
    let prod = api
        .create(
            &stages,
            json!({ "name": "prod", "tag_pattern": "v*", "version_range": ">=1.2, <2",
                    "auto_deploy": false, "max_instances": 2, "polling": true }),
        )
        .await;
    let (status, body) = api
        .post(
            &stages,
            json!({ "name": "-x", "tag_pattern": "[", "version_range": ">>1", "max_instances": 0,
                    "container_port": 0, "health_path": "nope", "promote_from": "" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    for field in [
        "name",
        "tag_pattern",
        "version_range",
        "max_instances",
        "container_port",
        "health_path",
        "promote_from",
    ] {
        assert!(
            body["fields"][field].is_string(),
            "{field} not named: {body}"
        );
    }
    assert_eq!(api.post(&stages, json!({ "name": "dev" })).await.0, 409);
    // An empty source is not a way to say "none" (that is null), and a name is matched
    // exactly: either is refused with the field named, and no stage is created.
    for source in ["", " dev"] {
        let (status, body) = api
            .post(
                &stages,
                json!({ "name": "staging", "promote_from": source }),
            )
            .await;
        assert_eq!(status, 422, "{source:?}: {body}");
        assert!(body["fields"]["promote_from"].is_string(), "{body}");
    }
    assert_eq!(
        api.post("/api/projects/999/stages", json!({ "name": "dev" }))
            .await
            .0,
        404
    );
    let (_, list) = api.get(&stages).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "prod"]);
    let prod_path = format!("/api/stages/{}", prod["id"]);
    let (status, updated) = api
        .put(
            &prod_path,
            json!({ "version_range": null, "max_instances": 3 }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert!(updated["version_range"].is_null());
    assert_eq!(updated["max_instances"], 3);
    assert_eq!(updated["tag_pattern"], "v*");
    // `dev` does not poll, so it never was (`prod` polls: creating it woke the poller).
    let (status, poll) = api
        .get(&format!("/api/stages/{}/poll-state", dev["id"]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(poll["polled"], false);
    let (status, instances) = api.get(&format!("{prod_path}/instances")).await;
    assert_eq!((status, instances), (200, json!([])));
    // Polling a registry that does not exist records the error in the poll state.
    let (status, outcomes) = api
        .post(&format!("/api/projects/{id}/poll"), json!({}))
        .await;
    assert_eq!(status, 200, "{outcomes}");
    assert_eq!(outcomes[0]["result"], "error");
    let (_, poll) = api.get(&format!("{prod_path}/poll-state")).await;
    assert_eq!(poll["last_result"], "error", "{poll}");
    assert_eq!(
        api.post(&format!("/api/projects/{}/poll", nginx["id"]), json!({}))
            .await
            .0,
        409,
        "no polling stage"
    );
    // Rolling back a stage without deploys is a conflict, said in words.
    let (status, body) = api
        .post(&format!("/api/stages/{}/rollback", dev["id"]), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    // A tag is taken as given: a padded one is not a tag the registry has.
    for tag in ["bad tag!", " v1", "v1\n"] {
        let (status, body) = api
            .post(
                &format!("/api/stages/{}/deploys", dev["id"]),
                json!({ "tag": tag }),
            )
            .await;
        assert_eq!(status, 422, "{tag:?}: {body}");
        assert!(body["fields"]["tag"].is_string());
    }

    assert_eq!(api.delete(&prod_path).await.0, 204);
    assert_eq!(api.get(&prod_path).await.0, 404);
    assert_eq!(api.delete(&format!("/api/projects/{id}")).await.0, 204);
    assert_eq!(
        api.get(&format!("/api/stages/{}", dev["id"])).await.0,
        404,
        "stages go with the project"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn settings_notifications_webhook_events_and_deploy_lists() {
    let app = spawn_app_public("https://deploy.example.test").await;
    let api = app.api().await;
    let (status, settings) = api.get("/api/settings").await;
    assert_eq!(status, 200);
    assert_eq!(settings["proxy_kind"], "none");
    assert_eq!(settings["has_webhook_secret"], true);

    let (status, updated) = api
        .put(
            "/api/settings",
            json!({ "base_domain": "example.test", "poll_interval_secs": 60, "poll_cron": "*/5 * * * *",
                    "webhook_signing_secret": "hmac-secret-xyz" }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["poll_interval_secs"], 60);
    assert_eq!(updated["poll_cron"], "*/5 * * * *");
    assert_eq!(updated["has_webhook_signing_secret"], true);
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "poll_interval_secs": 5, "poll_cron": "every tuesday", "proxy_kind": "nginx",
                    "stage_subdomain_pattern": "{stage}", "reachability": "network",
                    "health_timeout_ms": 0, "base_domain": "bad domain", "proxy_url": "npm:81" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    for field in [
        "poll_interval_secs",
        "poll_cron",
        "proxy_kind",
        "stage_subdomain_pattern",
        "reach_network",
        "health_timeout_ms",
        "base_domain",
        "proxy_url",
    ] {
        assert!(
            body["fields"][field].is_string(),
            "{field} not named: {body}"
        );
    }
    let (_, unchanged) = api.get("/api/settings").await;
    assert_eq!(
        unchanged["poll_interval_secs"], 60,
        "nothing saved from a bad request"
    );

    // The webhook URL uses the public URL; regenerating makes the old one a plain 404.
    let (status, webhook) = api.get("/api/settings/webhook").await;
    assert_eq!(status, 200);
    let url = webhook["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("https://deploy.example.test/api/webhook/"),
        "{url}"
    );
    let old_path = url
        .trim_start_matches("https://deploy.example.test")
        .to_string();
    let (status, regenerated) = api
        .post("/api/settings/webhook/regenerate", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_ne!(regenerated["url"], webhook["url"]);
    let (status, body) = app
        .anonymous()
        .post(&old_path, json!({ "image": "127.0.0.1:5000/acme/shop:1" }))
        .await;
    assert_eq!((status, body), (404, json!({ "error": "not found" })));
    let new_path = regenerated["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://deploy.example.test")
        .to_string();
    let response = app
        .client
        .post(format!("{}{new_path}", app.address))
        .header("content-type", "application/json")
        .body(r#"{"image":"127.0.0.1:5000/acme/shop:latest"}"#)
        .send()
        .await
        .unwrap();
    // The signing secret is set and a generic body carries no signature: recorded, refused.
    assert_eq!(response.status(), 401);
    let (status, events) = api.get("/api/webhook-events?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(events[0]["outcome"], "rejected", "{events}");
    assert_eq!(api.get("/api/webhook-events?limit=0").await.0, 422);

    // Proxy check: the body is applied to the saved settings without saving.
    let (status, check) = api
        .post(
            "/api/settings/proxy/check",
            json!({ "proxy_kind": "caddy", "proxy_url": "http://127.0.0.1:1" }),
        )
        .await;
    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], false, "{check}");
    let (_, saved) = api.get("/api/settings").await;
    assert_eq!(saved["proxy_kind"], "none");
    let (status, check) = api.post("/api/settings/proxy/check", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(check["ok"], true, "no proxy is always fine: {check}");

    // Notification targets.
    let target = api
        .create(
            "/api/notifications",
            json!({ "name": "team", "kind": "slack", "url": "http://127.0.0.1:1/hooks/T000/B000/xoxb-secret", "events": ["failure", "rollback"] }),
        )
        .await;
    assert_eq!(target["has_url"], true);
    assert_eq!(target["events"], json!(["failure", "rollback"]));
    let tid = target["id"].as_i64().unwrap();
    let (status, updated) = api
        .put(
            &format!("/api/notifications/{tid}"),
            json!({ "kind": "discord", "events": ["success"] }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["kind"], "discord");
    assert_eq!(updated["events"], json!(["success"]));
    assert_eq!(updated["name"], "team");
    let (status, body) = api
        .post(
            "/api/notifications",
            json!({ "name": "x", "kind": "pager", "url": "not a url" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["kind"].is_string() && body["fields"]["url"].is_string(),
        "{body}"
    );
    let (status, sent) = api
        .post(&format!("/api/notifications/{tid}/test"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(sent["ok"], false, "nothing listens on port 1: {sent}");
    assert_eq!(
        api.delete(&format!("/api/notifications/{tid}")).await.0,
        204
    );
    assert_eq!(api.get(&format!("/api/notifications/{tid}")).await.0, 404);

    // Deploy listing: filters and paging validate.
    let (status, page) = api.get("/api/deploys?limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(page, json!({ "deploys": [], "next_before": null }));
    let (status, body) = api.get("/api/deploys?status=exploded&limit=0").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["status"].is_string() && body["fields"]["limit"].is_string(),
        "{body}"
    );
    let (status, body) = api.get("/api/deploys?project_id=abc").await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["project_id"].is_string(), "{body}");
    assert_eq!(api.get("/api/deploys/999").await.0, 404);
    assert_eq!(api.get("/api/deploys/999/logs").await.0, 404);
    assert_eq!(api.get("/api/deploys/999/logs/stream").await.0, 404);
    assert_eq!(api.get("/api/instances/999").await.0, 404);
    assert_eq!(api.post("/api/instances/999/stop", json!({})).await.0, 404);
    let (status, metrics) = api.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.as_str().unwrap().contains("docker_watcher"),
        "{metrics}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn secrets_never_appear_in_any_answer() {
    let app = spawn_app().await;
    let api = app.api().await;
    let secrets = [
        "registry-secret-4a1f",
        "proxy-secret-77bc",
        "signing-secret-91de",
        "notify-token-c0ffee",
        "env-secret-5e5e",
        "stage-env-secret-beef",
    ];
    let registry = api
        .create(
            "/api/registries",
            json!({ "name": "private", "kind": "oci", "base_url": "http://127.0.0.1:1",
                    "insecure": true, "username": "bot", "secret": secrets[0] }),
        )
        .await;
    let (status, _) = api
        .put(
            "/api/settings",
            json!({ "proxy_kind": "npm", "proxy_url": "http://127.0.0.1:1", "proxy_username": "admin@example.test",
                    "proxy_secret": secrets[1], "webhook_signing_secret": secrets[2] }),
        )
        .await;
    assert_eq!(status, 200);
    let target = api
        .create(
            "/api/notifications",
            json!({ "name": "ntfy", "kind": "ntfy", "url": format!("http://127.0.0.1:1/{}", secrets[3]) }),
        )
        .await;
    let project = api
        .create(
            "/api/projects",
            json!({ "name": "shop", "image": "127.0.0.1:1/acme/shop", "container_port": 8080,
                    "registry_id": registry["id"],
                    "env": [{ "name": "TOKEN", "value": secrets[4], "secret": true }] }),
        )
        .await;
    let stage = api
        .create(
            &format!("/api/projects/{}/stages", project["id"]),
            json!({ "name": "dev", "polling": true,
                    "env": [{ "name": "KEY", "value": secrets[5], "secret": true }] }),
        )
        .await;
    // The checks and tests talk to nothing, and must not quote what they sent.
    api.post(
        &format!("/api/registries/{}/check", registry["id"]),
        json!({}),
    )
    .await;
    api.post("/api/settings/proxy/check", json!({})).await;
    api.post(
        &format!("/api/notifications/{}/test", target["id"]),
        json!({}),
    )
    .await;
    api.post(&format!("/api/projects/{}/poll", project["id"]), json!({}))
        .await;
    api.put(
        &format!("/api/registries/{}", registry["id"]),
        json!({ "name": "private-2" }),
    )
    .await;

    // Every GET route of the spec, with the ids of what was made.
    let (_, spec) = api.get("/api/openapi.json").await;
    for (method, path) in operations(&spec) {
        if method != "get" || path.ends_with("/stream") || path == "/api/events" {
            continue;
        }
        let id = if path.starts_with("/api/registries/") {
            registry["id"].clone()
        } else if path.starts_with("/api/projects/") {
            project["id"].clone()
        } else if path.starts_with("/api/stages/") {
            stage["id"].clone()
        } else if path.starts_with("/api/notifications/") {
            target["id"].clone()
        } else {
            json!(1)
        };
        api.get(&path.replace("{id}", &id.to_string())).await;
    }
    let answers = api.seen();
    assert!(answers.len() > 20, "{}", answers.len());
    for answer in &answers {
        for secret in secrets.iter().chain([&ADMIN_PASSWORD]) {
            assert!(!answer.contains(secret), "{secret} leaked in: {answer}");
        }
    }
    app.shutdown().await;
}

async fn spawn_app_public(url: &str) -> crate::support::app::TestApp {
    crate::support::app::spawn_app_with(crate::support::app::AppOptions {
        public_url: Some(url.into()),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn the_session_cookie_is_secure_behind_https() {
    let app = spawn_app_public("https://deploy.example.test").await;
    let login = app.login().await;
    assert!(
        login.set_cookie.contains("; Secure"),
        "{}",
        login.set_cookie
    );
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_open_event_streams() {
    let app = spawn_app().await;
    let login = app.login().await;
    let response = app
        .client
        .get(format!("{}/api/events", app.address))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Bounded only so that a regression fails instead of hanging the suite.
    tokio::time::timeout(std::time::Duration::from_secs(60), app.shutdown())
        .await
        .expect("shutdown waited for an open event stream");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(60), response.bytes())
        .await
        .expect("the stream ended");
    assert!(rest.is_ok(), "the stream ends cleanly: {rest:?}");
}

/// Without `DW_ADMIN_PASSWORD` the first start generates a password and logs it once;
/// it works, and a second start neither makes another nor logs one.
#[tokio::test]
async fn the_first_start_logs_a_generated_admin_password_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let port = crate::support::free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
            .arg("serve")
            .env("DW_LISTEN", format!("127.0.0.1:{port}"))
            .env("DW_DATA_DIR", dir.path().join("data"))
            .env("NO_COLOR", "1")
            .env_remove("DW_ADMIN_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        (child, log, format!("http://127.0.0.1:{port}"))
    };
    let wait_until_up = |address: &str, log: &Arc<Mutex<String>>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !log.lock().unwrap().contains("listening on") {
            assert!(
                Instant::now() < deadline,
                "no start: {}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = address;
    };
    let stop = |mut child: std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(child.wait().unwrap().success());
    };

    let (child, log, address) = start();
    wait_until_up(&address, &log);
    let text = log.lock().unwrap().clone();
    let password = text
        .split("with password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password in the log:\n{text}"))
        .to_string();
    assert!(password.len() >= 16, "{password}");
    let response = reqwest::Client::new()
        .post(format!("{address}/api/auth/login"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    stop(child);

    let (child, log, address) = start();
    wait_until_up(&address, &log);
    stop(child);
    let text = log.lock().unwrap().clone();
    assert!(!text.contains("admin account"), "second start:\n{text}");
    assert!(!text.contains(&password), "second start:\n{text}");
}

#[tokio::test]
async fn answers_carry_a_request_id_and_big_bodies_are_refused() {
    let app = spawn_app().await;
    let login = app.login().await;
    let response = app
        .client
        .get(format!("{}/api/projects", app.address))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let big = json!({ "name": "x".repeat(300 * 1024) });
    let response = app
        .client
        .post(format!("{}/api/auth/tokens", app.address))
        .bearer_auth(&login.token)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );
    app.shutdown().await;
}
