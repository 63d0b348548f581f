//! Stage and instance domains that would collide are refused when the names are chosen
//! (409 naming the other project and stage), never found at deploy time: `shop`/`dev-x`
//! and `x-shop`/`dev` both make `stage-dev-x-shop`.

use serde_json::{Value, json};

use crate::support::app::{Api, spawn_app};

async fn project(api: &Api, name: &str) -> Value {
    api.create(
        "/api/projects",
        json!({ "name": name, "image": format!("registry.example.test/acme/{name}"), "container_port": 8080 }),
    )
    .await
}

async fn stage(api: &Api, project: &Value, name: &str) -> (u16, Value) {
    api.post(
        &format!("/api/projects/{}/stages", project["id"]),
        json!({ "name": name }),
    )
    .await
}

fn names_the_other(answer: &Value, project: &str, stage: &str) -> bool {
    let error = answer["error"].as_str().unwrap_or_default();
    error.contains(&format!("project {project}, stage {stage}")) && error.contains("rename")
}

#[tokio::test]
async fn colliding_stage_domains_are_refused_on_create_and_rename() {
    let app = spawn_app().await;
    let api = app.api().await;
    let shop = project(&api, "shop").await;
    assert_eq!(stage(&api, &shop, "dev-x").await.0, 201);
    let x_shop = project(&api, "x-shop").await;

    let (status, answer) = stage(&api, &x_shop, "dev").await;
    assert_eq!(status, 409, "{answer}");
    assert!(names_the_other(&answer, "shop", "dev-x"), "{answer}");
    let (_, stages) = api
        .get(&format!("/api/projects/{}/stages", x_shop["id"]))
        .await;
    assert_eq!(stages, json!([]), "nothing was created");

    // Renaming a stage into the clash is refused too, and changes nothing.
    let qa = api
        .create(
            &format!("/api/projects/{}/stages", x_shop["id"]),
            json!({ "name": "qa" }),
        )
        .await;
    let (status, answer) = api
        .put(
            &format!("/api/stages/{}", qa["id"]),
            json!({ "name": "dev" }),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(names_the_other(&answer, "shop", "dev-x"), "{answer}");
    assert_eq!(
        api.get(&format!("/api/stages/{}", qa["id"])).await.1["name"],
        "qa"
    );

    // So is renaming a project: `other` (stage `dev`) renamed to `x-shop` would be
    // `stage-dev-x-shop` too.
    let other = project(&api, "other").await;
    assert_eq!(stage(&api, &other, "dev").await.0, 201);
    let (status, answer) = api
        .put(
            &format!("/api/projects/{}", other["id"]),
            json!({ "name": "x-shop" }),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(names_the_other(&answer, "shop", "dev-x"), "{answer}");
    assert_eq!(
        api.get(&format!("/api/projects/{}", other["id"])).await.1["name"],
        "other"
    );
    // A name that clashes with nothing is fine.
    let (status, answer) = api
        .put(
            &format!("/api/projects/{}", other["id"]),
            json!({ "name": "y-shop" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn colliding_instance_domains_are_refused_too() {
    let app = spawn_app().await;
    let api = app.api().await;
    // Stage domains in separate labels differ (`dev-x.shop`, `dev.x-shop`); the default
    // instance pattern still gives both `stage-dev-x-shop-<tag>`.
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "stage_subdomain_pattern": "{stage}.{project}" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let shop = project(&api, "shop").await;
    assert_eq!(stage(&api, &shop, "dev-x").await.0, 201);
    let x_shop = project(&api, "x-shop").await;

    let (status, answer) = stage(&api, &x_shop, "dev").await;

    assert_eq!(status, 409, "{answer}");
    assert!(names_the_other(&answer, "shop", "dev-x"), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("instance domains"),
        "{answer}"
    );
}
