//! Signing in is in the audit log: a login names the user and where it came from, a wrong
//! password for a known user is recorded against that user — once per quarter hour, the
//! rest counted, so a guessing bot cannot fill the log — and a name nobody has is not
//! written (an anonymous caller may not fill the log with text of its choosing).

use serde_json::{Value, json};

use crate::support::app::spawn_app;

#[tokio::test]
async fn logins_and_wrong_passwords_are_audited_and_unknown_names_are_not() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    // Three wrong passwords, one unknown name and the sign-in: five attempts from this
    // address, the login limit's burst.
    let wrong = ("admin", "not-the-password");
    for (username, password) in [wrong, wrong, wrong, ("<b>mallory</b>", "whatever-it-is")] {
        let (status, _) = anonymous
            .post(
                "/api/auth/login",
                json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(status, 401, "{username}");
    }
    let api = app.api().await;

    let (status, page) = api.get("/api/audit?action=auth.").await;
    assert_eq!(status, 200, "{page}");
    let entries: Vec<&Value> = page["entries"].as_array().unwrap().iter().collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["auth.login", "auth.login_failed"],
        "one entry for the three wrong passwords: {page}"
    );
    let (login, failed) = (entries[0], entries[1]);
    assert_eq!(login["actor_kind"], "user");
    assert_eq!(login["actor"], "admin");
    assert_eq!(login["target_kind"], "user");
    assert_eq!(login["target_name"], "admin");
    let detail = login["detail"].as_str().unwrap();
    assert!(detail.contains("127.0.0.1"), "{login}");
    assert!(
        detail.contains("2 more wrong passwords"),
        "the sign-in reports the failures not listed: {login}"
    );
    assert_eq!(failed["target_name"], "admin");
    assert_eq!(failed["actor_kind"], "anonymous", "{failed}");
    assert_eq!(failed["actor"], "127.0.0.1", "{failed}");
    assert!(!page.to_string().contains("mallory"), "{page}");
    app.shutdown().await;
}
