//! Token scopes over HTTP (issue 12 §1): every signed-in route has a scope in one table,
//! a token gets 403 naming the scope it lacks, a token never mints a wider one, and the
//! scope shows in the token list.

use serde_json::{Value, json};

use docker_watcher::api::scopes::ROUTE_SCOPES;
use docker_watcher::api::{PUBLIC_ROUTES, openapi};
use docker_watcher::store::TokenScope;

use crate::support::app::{TestApp, spawn_app};

/// Every signed-in route of the OpenAPI document has a scope, and the table names no
/// route that does not exist: a new route cannot be forgotten.
#[test]
fn every_signed_in_route_has_exactly_one_scope() {
    let spec = serde_json::to_value(openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                routes.push((method.to_string(), path.clone()));
            }
        }
    }
    assert!(routes.len() > 40, "{routes:?}");
    for (method, path) in &routes {
        let public = PUBLIC_ROUTES.iter().any(|(m, p)| m == method && p == path);
        let scoped = ROUTE_SCOPES
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .count();
        if public {
            assert_eq!(scoped, 0, "{method} {path} is public and needs no scope");
        } else {
            assert_eq!(scoped, 1, "{method} {path} needs one entry in ROUTE_SCOPES");
        }
    }
    for (method, path, _) in ROUTE_SCOPES {
        assert!(
            routes.iter().any(|(m, p)| m == method && p == path),
            "ROUTE_SCOPES names {method} {path}, which is not a route"
        );
    }
    // `read` is GET only; signing out (a no-op for a token) is for everyone.
    for (method, path, scope) in ROUTE_SCOPES {
        if *method != "get" && *path != "/api/auth/logout" {
            assert_ne!(
                *scope,
                TokenScope::Read,
                "{method} {path} changes something"
            );
        }
    }
}

/// Makes a token of `scope` with the admin's session; returns its value.
async fn token(app: &TestApp, name: &str, scope: &str) -> String {
    let admin = app.api().await;
    let created = admin
        .create("/api/auth/tokens", json!({ "name": name, "scope": scope }))
        .await;
    assert_eq!(created["scope"], scope, "{created}");
    created["token"].as_str().unwrap().to_string()
}

/// Status of `method path` with `token`; the body only for a 403.
async fn status_with(app: &TestApp, token: &str, method: &str, path: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let response = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 403 {
        (status, response.json().await.unwrap())
    } else {
        // Event streams stay open: the status is all this needs.
        (status, Value::Null)
    }
}

/// Walks every signed-in route with a `read` and a `deploy` token: each route the token's
/// scope does not cover is 403 naming the scope it needs; each it covers gets past auth.
#[tokio::test]
async fn each_route_answers_403_to_a_token_without_its_scope() {
    let app = spawn_app().await;
    let read = token(&app, "reader", "read").await;
    let deploy = token(&app, "ci", "deploy").await;
    let admin = token(&app, "root", "admin").await;
    for (value, scope) in [
        (&read, TokenScope::Read),
        (&deploy, TokenScope::Deploy),
        (&admin, TokenScope::Admin),
    ] {
        for (method, path, needed) in ROUTE_SCOPES {
            // Ids that do not exist: nothing is changed by the calls that get through.
            let concrete = path.replace("{id}", "999999");
            if *path == "/api/settings/webhook/regenerate" && scope.allows(*needed) {
                continue; // would change the webhook URL the other calls do not need
            }
            let (status, body) = status_with(&app, value, method, &concrete).await;
            if scope.allows(*needed) {
                assert_ne!(status, 403, "{scope} token, {method} {path}: {body}");
                assert_ne!(status, 401, "{scope} token, {method} {path}");
            } else {
                assert_eq!(status, 403, "{scope} token, {method} {path}");
                let error = body["error"].as_str().unwrap();
                assert!(
                    error.contains(&format!("`{needed}`")),
                    "{method} {path}: names the scope needed: {error}"
                );
            }
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_read_token_reads_and_a_deploy_token_cannot_change_the_setup() {
    let app = spawn_app().await;
    let admin = app.api().await;
    let project = admin
        .create(
            "/api/projects",
            json!({ "name": "shop", "image": "example.com/shop", "container_port": 80 }),
        )
        .await;
    let id = project["id"].as_i64().unwrap();

    let read = app.api_with_token(&token(&app, "reader", "read").await);
    let (status, list) = read.get("/api/projects").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "shop");
    let (status, me) = read.get("/api/auth/me").await;
    assert_eq!((status, me["scope"].as_str()), (200, Some("read")));
    let (status, body) = read
        .post(&format!("/api/projects/{id}/poll"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("`deploy`"),
        "{body}"
    );

    let deploy = app.api_with_token(&token(&app, "ci", "deploy").await);
    // Poll now gets through (the project has no polling stage: 409, not 403).
    let (status, body) = deploy
        .post(&format!("/api/projects/{id}/poll"), json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let new_project = json!({ "name": "evil", "image": "example.com/evil", "container_port": 80,
        "volumes": ["/:/host"] });
    let (status, body) = deploy.post("/api/projects", new_project).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("`admin`"),
        "{body}"
    );
    let (status, _) = deploy
        .put(&format!("/api/projects/{id}"), json!({ "network": "host" }))
        .await;
    assert_eq!(status, 403);
    let (status, _) = deploy
        .put("/api/settings", json!({ "allow_host_network": true }))
        .await;
    assert_eq!(status, 403);
    assert_eq!(deploy.get("/api/settings/webhook").await.0, 403, "a secret");
    assert_eq!(deploy.get("/api/auth/tokens").await.0, 403);
    let (status, _) = deploy
        .put(
            "/api/auth/password",
            json!({ "current_password": "x", "new_password": "something-new" }),
        )
        .await;
    assert_eq!(status, 403);
    // Nothing changed.
    let (_, list) = admin.get("/api/projects").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["network"], Value::Null);
    let (_, settings) = admin.get("/api/settings").await;
    assert_eq!(settings["allow_host_network"], false);
    app.shutdown().await;
}

#[tokio::test]
async fn a_token_never_mints_a_wider_one_and_the_scope_is_listed() {
    let app = spawn_app().await;
    let admin = app.api().await;
    let default = admin
        .create("/api/auth/tokens", json!({ "name": "ci" }))
        .await;
    assert_eq!(default["scope"], "deploy", "the default is what CI needs");
    let (status, body) = admin
        .post("/api/auth/tokens", json!({ "name": "x", "scope": "root" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["scope"].is_string(), "{body}");

    let deploy = app.api_with_token(default["token"].as_str().unwrap());
    for scope in ["admin", "deploy", "read"] {
        let (status, body) = deploy
            .post(
                "/api/auth/tokens",
                json!({ "name": format!("from-ci-{scope}"), "scope": scope }),
            )
            .await;
        assert_eq!(status, 403, "a deploy token makes no {scope} token: {body}");
    }
    let read = app.api_with_token(&token(&app, "reader", "read").await);
    let (status, _) = read
        .post(
            "/api/auth/tokens",
            json!({ "name": "up", "scope": "admin" }),
        )
        .await;
    assert_eq!(status, 403);
    // Only admin manages tokens: a deploy token cannot revoke another.
    let id = default["id"].as_i64().unwrap();
    assert_eq!(
        deploy.delete(&format!("/api/auth/tokens/{id}")).await.0,
        403
    );

    let (_, list) = admin.get("/api/auth/tokens").await;
    let scopes: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["scope"].as_str().unwrap()))
        .collect();
    assert_eq!(scopes, vec![("ci", "deploy"), ("reader", "read")]);
    app.shutdown().await;
}

#[tokio::test]
async fn the_cli_makes_tokens_with_a_scope_and_lists_them() {
    let app = spawn_app().await;
    let admin = token(&app, "root", "admin").await;
    // The daemon runs on this test's runtime: the CLI must be awaited, not waited for.
    let cli = |token: &str, args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
            .args(args)
            .env("DW_SERVER", &app.address)
            .env("DW_TOKEN", token)
            .stdin(std::process::Stdio::null())
            .output()
    };
    let made = cli(&admin, &["token", "create", "ci", "--scope", "deploy"])
        .await
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let stderr = String::from_utf8_lossy(&made.stderr);
    assert!(stderr.contains("scope deploy"), "{stderr}");
    let ci = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let made = cli(&admin, &["token", "create", "viewer", "--scope", "read"])
        .await
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let list = cli(&admin, &["token", "list"]).await.unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.contains("ci") && l.contains("deploy")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains("viewer") && l.contains("read")),
        "{listing}"
    );
    let refused = cli(&ci, &["token", "create", "mine", "--scope", "admin"])
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("`admin`"),
        "{refused:?}"
    );
    app.shutdown().await;
}
