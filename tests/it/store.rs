//! The store against a real SQLite file: CRUD for every entity, typed not-found,
//! uniqueness, cascades, sealed secrets (never in the file), rotation and tampering.

use std::path::Path;

use docker_watcher::config::Config;
use docker_watcher::crypto::{KeyFile, Sealer};
use docker_watcher::registry::RegistryKind;
use docker_watcher::store::*;

struct TestStore {
    store: Store,
    dir: tempfile::TempDir,
}

fn open_store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = KeyFile::new(dir.path().join("master.key"))
        .load_or_create()
        .unwrap();
    let store = Store::open(dir.path(), Sealer::new(key)).unwrap();
    TestStore { store, dir }
}

fn reopen(dir: &Path) -> Store {
    let (key, _) = KeyFile::new(dir.join("master.key"))
        .load_or_create()
        .unwrap();
    Store::open(dir, Sealer::new(key)).unwrap()
}

fn new_registry(name: &str, secret: Option<&str>) -> NewRegistry {
    NewRegistry {
        name: name.into(),
        kind: RegistryKind::Oci,
        base_url: "http://127.0.0.1:5000".into(),
        username: Some("ci".into()),
        secret: secret.map(str::to_string),
        insecure: true,
    }
}

fn new_project(name: &str) -> NewProject {
    NewProject {
        name: name.into(),
        image: format!("127.0.0.1:5000/acme/{name}"),
        container_port: 8080,
        health_path: Some("/health".into()),
        ..Default::default()
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::NotFound { .. })),
        "expected NotFound, got {result:?}"
    );
}

/// Every byte of the database, WAL included.
fn raw_database(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(DATABASE_FILE)
        {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn registry_crud_and_not_found() {
    let t = open_store();
    let created = t
        .store
        .create_registry(&new_registry("local", Some("pw-1")))
        .unwrap();
    assert_eq!(created.name, "local");
    assert!(created.has_secret);
    assert_eq!(t.store.get_registry(created.id).unwrap(), created);
    assert_eq!(t.store.list_registries().unwrap(), vec![created.clone()]);
    assert_eq!(
        t.store.registry_secret(created.id).unwrap().as_deref(),
        Some("pw-1")
    );

    let updated = t
        .store
        .update_registry(
            created.id,
            &RegistryUpdate {
                base_url: Some("https://registry.example.test".into()),
                secret: Some(None),
                insecure: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(updated.base_url, "https://registry.example.test");
    assert!(!updated.has_secret);
    assert_eq!(
        updated.username.as_deref(),
        Some("ci"),
        "untouched field kept"
    );
    assert_eq!(t.store.registry_secret(created.id).unwrap(), None);

    t.store.delete_registry(created.id).unwrap();
    assert_not_found(t.store.get_registry(created.id));
    assert_not_found(t.store.delete_registry(created.id));
    assert_not_found(
        t.store
            .update_registry(created.id, &RegistryUpdate::default()),
    );
}

#[test]
fn names_that_must_be_unique_are() {
    let t = open_store();
    t.store
        .create_registry(&new_registry("local", None))
        .unwrap();
    let clash = t.store.create_registry(&new_registry("local", None));
    assert!(
        matches!(clash, Err(StoreError::Conflict(ref m)) if m.contains("registries.name")),
        "{clash:?}"
    );

    let project = t.store.create_project(&new_project("shop")).unwrap();
    assert!(matches!(
        t.store.create_project(&new_project("shop")),
        Err(StoreError::Conflict(_))
    ));
    let mut same_image = new_project("shop2");
    same_image.image = project.image.clone();
    assert!(matches!(
        t.store.create_project(&same_image),
        Err(StoreError::Conflict(_))
    ));

    t.store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    assert!(matches!(
        t.store.create_stage(&NewStage::defaults(project.id, "dev")),
        Err(StoreError::Conflict(_))
    ));
}

#[test]
fn project_and_stage_crud_with_env() {
    let t = open_store();
    let registry = t
        .store
        .create_registry(&new_registry("local", None))
        .unwrap();
    let mut new = new_project("shop");
    new.registry_id = Some(registry.id);
    new.env = vec![
        EnvVar {
            name: "MODE".into(),
            value: Some("dev".into()),
            secret: false,
        },
        EnvVar {
            name: "DB_PASSWORD".into(),
            value: Some("p@ss".into()),
            secret: true,
        },
    ];
    new.volumes = vec!["shop-data:/data".into()];
    let project = t.store.create_project(&new).unwrap();
    assert_eq!(project.env[0].value.as_deref(), Some("dev"));
    assert_eq!(
        project.env[1].value, None,
        "secret values are not read back"
    );
    assert!(project.env[1].secret);
    assert_eq!(
        t.store.project_env(project.id).unwrap(),
        vec![
            ("MODE".into(), "dev".into()),
            ("DB_PASSWORD".into(), "p@ss".into())
        ]
    );
    assert_eq!(t.store.get_project_by_name("shop").unwrap().id, project.id);
    assert_eq!(
        t.store
            .find_project_by_image(&project.image)
            .unwrap()
            .unwrap()
            .id,
        project.id
    );
    assert_eq!(
        t.store
            .find_project_by_image("127.0.0.1:5000/other")
            .unwrap(),
        None
    );

    // Updating with the secret's value omitted keeps it (the UI cannot send it back).
    let updated = t
        .store
        .update_project(
            project.id,
            &ProjectUpdate {
                container_port: Some(9090),
                health_path: Some(None),
                env: Some(vec![
                    EnvVar {
                        name: "MODE".into(),
                        value: Some("prod".into()),
                        secret: false,
                    },
                    EnvVar {
                        name: "DB_PASSWORD".into(),
                        value: None,
                        secret: true,
                    },
                ]),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(updated.container_port, 9090);
    assert_eq!(updated.health_path, None);
    assert_eq!(updated.volumes, vec!["shop-data:/data".to_string()]);
    assert_eq!(
        t.store.project_env(project.id).unwrap(),
        vec![
            ("MODE".into(), "prod".into()),
            ("DB_PASSWORD".into(), "p@ss".into())
        ]
    );
    let missing_secret = t.store.update_project(
        project.id,
        &ProjectUpdate {
            env: Some(vec![EnvVar {
                name: "NEW_TOKEN".into(),
                value: None,
                secret: true,
            }]),
            ..Default::default()
        },
    );
    assert!(
        matches!(missing_secret, Err(StoreError::Invalid(_))),
        "{missing_secret:?}"
    );

    let prod = t
        .store
        .create_stage(&NewStage {
            tag_pattern: "v*".into(),
            version_range: Some(">=1.0".into()),
            auto_deploy: false,
            max_instances: 2,
            polling: true,
            env: vec![EnvVar {
                name: "API_KEY".into(),
                value: Some("k-123".into()),
                secret: true,
            }],
            ..NewStage::defaults(project.id, "prod")
        })
        .unwrap();
    let dev = t
        .store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    assert_eq!(
        t.store
            .list_stages(project.id)
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["dev", "prod"],
        "stages come in name order"
    );
    assert_eq!(t.store.list_polling_stages().unwrap(), vec![prod.clone()]);
    assert_eq!(
        t.store.stage_env(prod.id).unwrap(),
        vec![("API_KEY".into(), "k-123".into())]
    );
    let dev = t
        .store
        .update_stage(
            dev.id,
            &StageUpdate {
                tag_pattern: Some("dev-*".into()),
                max_instances: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (dev.tag_pattern.as_str(), dev.max_instances, dev.auto_deploy),
        ("dev-*", 3, true)
    );
    t.store.delete_stage(dev.id).unwrap();
    assert_not_found(t.store.get_stage(dev.id));

    t.store
        .add_project_event(project.id, "warn", "image could not be inspected")
        .unwrap();
    assert_eq!(
        t.store.list_project_events(project.id).unwrap()[0].message,
        "image could not be inspected"
    );

    // Deleting the registry leaves the project without one.
    t.store.delete_registry(registry.id).unwrap();
    assert_eq!(t.store.get_project(project.id).unwrap().registry_id, None);
    t.store.delete_project(project.id).unwrap();
    assert_not_found(t.store.get_project(project.id));
    assert_not_found(t.store.get_project_by_name("shop"));
}

#[test]
fn schema_checks_statuses_and_ranges() {
    let t = open_store();
    let mut bad_port = new_project("shop");
    bad_port.container_port = 0;
    assert!(
        t.store.create_project(&bad_port).is_ok(),
        "port 0 means unknown"
    );
    let project = t.store.get_project_by_name("shop").unwrap();
    let zero_instances = t.store.create_stage(&NewStage {
        max_instances: 0,
        ..NewStage::defaults(project.id, "dev")
    });
    assert!(
        matches!(zero_instances, Err(StoreError::Invalid(_))),
        "{zero_instances:?}"
    );
    let orphan = t
        .store
        .create_stage(&NewStage::defaults(project.id + 100, "dev"));
    assert!(
        matches!(orphan, Err(StoreError::Invalid(_))),
        "foreign key enforced: {orphan:?}"
    );
}

#[test]
fn deploys_logs_and_instances() {
    let t = open_store();
    let project = t.store.create_project(&new_project("shop")).unwrap();
    let stage = t
        .store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    let first = t
        .store
        .create_deploy(&NewDeploy {
            project_id: project.id,
            stage_id: stage.id,
            tag: "dev-1".into(),
            digest: None,
            trigger: Trigger::Webhook,
            detected_at: Some(chrono::Utc::now()),
        })
        .unwrap();
    assert_eq!(first.status, DeployStatus::Pending);
    assert!(first.started_at.is_none());
    t.store
        .set_deploy_status(first.id, DeployStatus::Pulling)
        .unwrap();
    let pulling = t.store.get_deploy(first.id).unwrap();
    assert!(pulling.started_at.is_some() && pulling.finished_at.is_none());
    t.store.set_deploy_digest(first.id, "sha256:abc").unwrap();
    t.store
        .append_deploy_log(first.id, LogLevel::Info, "pull", "pulling dev-1")
        .unwrap();
    let second_line = t
        .store
        .append_deploy_log(first.id, LogLevel::Error, "health", "never healthy")
        .unwrap();
    t.store
        .finish_deploy_failed(
            first.id,
            DeployStatus::RolledBack,
            "health_check",
            "never healthy",
        )
        .unwrap();
    let finished = t.store.get_deploy(first.id).unwrap();
    assert_eq!(finished.status, DeployStatus::RolledBack);
    assert_eq!(finished.failed_step.as_deref(), Some("health_check"));
    assert_eq!(finished.digest.as_deref(), Some("sha256:abc"));
    assert!(finished.finished_at.is_some());
    let logs = t.store.deploy_logs(first.id, 0).unwrap();
    assert_eq!(
        logs.iter().map(|l| l.step.as_str()).collect::<Vec<_>>(),
        vec!["pull", "health"]
    );
    assert_eq!(
        t.store.deploy_logs(first.id, logs[0].id).unwrap(),
        vec![second_line]
    );

    let second = t
        .store
        .create_deploy(&NewDeploy {
            project_id: project.id,
            stage_id: stage.id,
            tag: "dev-2".into(),
            digest: None,
            trigger: Trigger::Manual,
            detected_at: None,
        })
        .unwrap();
    assert_eq!(
        t.store.list_unfinished_deploys().unwrap(),
        vec![second.clone()]
    );
    let by_project: Vec<i64> = t
        .store
        .list_deploys_by_project(project.id, 10)
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(by_project, vec![second.id, first.id], "newest first");
    assert_eq!(t.store.list_recent_deploys(1).unwrap()[0].id, second.id);
    let rolled_back = t
        .store
        .list_deploys(&DeployFilter {
            status: Some(DeployStatus::RolledBack),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rolled_back.len(), 1);
    assert_not_found(t.store.get_deploy(9999));
    assert_not_found(t.store.set_deploy_status(9999, DeployStatus::Failed));

    let instance = t
        .store
        .create_instance(&NewInstance {
            stage_id: stage.id,
            deploy_id: Some(second.id),
            tag: "dev-2".into(),
            digest: None,
            container_name: "dw-shop-dev-dev-2-a1b2".into(),
            status: InstanceStatus::Starting,
        })
        .unwrap();
    t.store
        .set_instance_container(instance.id, "c0ffee", Some("127.0.0.1:49153"))
        .unwrap();
    t.store
        .set_instance_status(instance.id, InstanceStatus::Running)
        .unwrap();
    t.store
        .set_instance_routing(
            instance.id,
            &["stage-dev-shop.example.test".into()],
            &["caddy:dw-7".into()],
        )
        .unwrap();
    t.store.set_deploy_instance(second.id, instance.id).unwrap();
    let read = t.store.get_instance(instance.id).unwrap();
    assert_eq!(read.status, InstanceStatus::Running);
    assert_eq!(read.container_id.as_deref(), Some("c0ffee"));
    assert_eq!(
        read.subdomains,
        vec!["stage-dev-shop.example.test".to_string()]
    );
    assert_eq!(
        t.store.list_instances(stage.id).unwrap(),
        vec![read.clone()]
    );
    let duplicate_name = t.store.create_instance(&NewInstance {
        stage_id: stage.id,
        deploy_id: None,
        tag: "dev-3".into(),
        digest: None,
        container_name: read.container_name.clone(),
        status: InstanceStatus::Starting,
    });
    assert!(matches!(duplicate_name, Err(StoreError::Conflict(_))));
    t.store.delete_instance(instance.id).unwrap();
    assert_not_found(t.store.get_instance(instance.id));
}

#[test]
fn deleting_a_project_cascades_to_everything_it_owns() {
    let t = open_store();
    let project = t.store.create_project(&new_project("shop")).unwrap();
    let stage = t
        .store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    let deploy = t
        .store
        .create_deploy(&NewDeploy {
            project_id: project.id,
            stage_id: stage.id,
            tag: "dev-1".into(),
            digest: None,
            trigger: Trigger::Api,
            detected_at: None,
        })
        .unwrap();
    t.store
        .append_deploy_log(deploy.id, LogLevel::Info, "pull", "x")
        .unwrap();
    let instance = t
        .store
        .create_instance(&NewInstance {
            stage_id: stage.id,
            deploy_id: Some(deploy.id),
            tag: "dev-1".into(),
            digest: None,
            container_name: "dw-shop-dev-dev-1-0001".into(),
            status: InstanceStatus::Running,
        })
        .unwrap();
    t.store
        .record_poll(stage.id, &SeenTags::new(), PollResult::Baseline, None)
        .unwrap();
    let event = t
        .store
        .record_webhook_event(&NewWebhookEvent {
            source: "generic".into(),
            outcome: Some(WebhookOutcome::Deployed),
            detail: "deployed".into(),
            project_id: Some(project.id),
            deploy_id: Some(deploy.id),
            ..Default::default()
        })
        .unwrap();

    t.store.delete_project(project.id).unwrap();
    assert_not_found(t.store.get_stage(stage.id));
    assert_not_found(t.store.get_deploy(deploy.id));
    assert_not_found(t.store.get_instance(instance.id));
    assert!(t.store.deploy_logs(deploy.id, 0).unwrap().is_empty());
    assert_eq!(t.store.get_poll_state(stage.id).unwrap(), None);
    let kept = t.store.list_webhook_events(10).unwrap();
    assert_eq!(kept[0].id, event);
    assert_eq!(kept[0].project_id, None, "events outlive their project");
}

#[test]
fn poll_state_records_baseline_results_and_failures() {
    let t = open_store();
    let project = t.store.create_project(&new_project("shop")).unwrap();
    let stage = t
        .store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    assert_eq!(t.store.get_poll_state(stage.id).unwrap(), None);
    assert_eq!(
        t.store
            .record_poll_error(stage.id, "connection refused")
            .unwrap(),
        1
    );
    let failed = t.store.get_poll_state(stage.id).unwrap().unwrap();
    assert_eq!(
        failed.baseline_at, None,
        "a failed first poll is no baseline"
    );
    let mut seen = SeenTags::new();
    seen.insert("dev-1".into(), Some("sha256:1".into()));
    t.store
        .record_poll(stage.id, &seen, PollResult::Baseline, None)
        .unwrap();
    seen.insert("dev-2".into(), None);
    t.store
        .record_poll(stage.id, &seen, PollResult::NewTag, Some("dev-2"))
        .unwrap();
    assert_eq!(t.store.record_poll_error(stage.id, "timeout").unwrap(), 1);
    assert_eq!(t.store.record_poll_error(stage.id, "timeout").unwrap(), 2);
    let state = t.store.get_poll_state(stage.id).unwrap().unwrap();
    assert_eq!(state.seen, seen, "an error keeps the tags seen before");
    assert!(state.baseline_at.is_some());
    assert_eq!(state.last_result, Some(PollResult::Error));
    assert_eq!(state.last_new_tag.as_deref(), Some("dev-2"));
    assert_eq!(state.consecutive_failures, 2);
}

#[test]
fn settings_single_row_and_webhook_secret() {
    let t = open_store();
    let defaults = t.store.settings().unwrap();
    assert_eq!(defaults.proxy_kind, ProxyKind::None);
    assert_eq!(defaults.health_retries, 3);
    assert_eq!(defaults.health_interval, std::time::Duration::from_secs(5));
    assert_eq!(defaults.health_timeout, std::time::Duration::from_secs(10));
    assert!(!defaults.has_webhook_secret);

    let (secret, generated) = t.store.ensure_webhook_secret().unwrap();
    assert!(generated);
    assert!(uuid_like(&secret), "{secret}");
    assert_eq!(
        t.store.ensure_webhook_secret().unwrap(),
        (secret.clone(), false)
    );
    let regenerated = t.store.regenerate_webhook_secret().unwrap();
    assert_ne!(regenerated, secret);
    assert_eq!(t.store.webhook_secret().unwrap(), Some(regenerated));

    let updated = t
        .store
        .update_settings(&SettingsUpdate {
            base_domain: Some("example.test".into()),
            proxy_kind: Some(ProxyKind::Caddy),
            proxy_url: Some(Some("http://127.0.0.1:2019".into())),
            proxy_secret: Some(Some("npm-password".into())),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(updated.base_domain, "example.test");
    assert!(updated.has_proxy_secret);
    assert_eq!(
        t.store.proxy_secret().unwrap().as_deref(),
        Some("npm-password")
    );
    assert_eq!(
        updated.poll_interval, defaults.poll_interval,
        "untouched field kept"
    );
    drop(t.store);
    assert_eq!(
        reopen(t.dir.path()).settings().unwrap(),
        updated,
        "one row, persisted"
    );
}

#[test]
fn users_tokens_and_sessions() {
    let t = open_store();
    let user = t.store.create_user("admin", "$argon2id$fake").unwrap();
    assert!(matches!(
        t.store.create_user("admin", "x"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(t.store.count_users().unwrap(), 1);
    let token = t
        .store
        .create_api_token(user.id, "ci", TokenScope::Deploy, "hash-1")
        .unwrap();
    assert_eq!(token.scope, TokenScope::Deploy);
    assert!(matches!(
        t.store
            .create_api_token(user.id, "ci", TokenScope::Read, "hash-2"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        t.store.user_for_token("hash-1").unwrap(),
        Some((user.id, TokenScope::Deploy))
    );
    assert_eq!(t.store.user_for_token("nope").unwrap(), None);
    assert!(
        t.store.list_api_tokens(user.id).unwrap()[0]
            .last_used_at
            .is_some()
    );
    t.store.revoke_api_token(user.id, token.id).unwrap();
    assert_eq!(t.store.user_for_token("hash-1").unwrap(), None);

    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    t.store
        .create_session("s-1", user.id, "csrf", later)
        .unwrap();
    t.store
        .create_session(
            "s-old",
            user.id,
            "csrf",
            chrono::Utc::now() - chrono::Duration::seconds(1),
        )
        .unwrap();
    assert_eq!(
        t.store.get_session("s-1").unwrap().unwrap().user_id,
        user.id
    );
    assert_eq!(
        t.store.get_session("s-old").unwrap(),
        None,
        "expired sessions are gone"
    );
    t.store.set_user_password(user.id, "$argon2id$new").unwrap();
    assert_eq!(
        t.store.get_session("s-1").unwrap(),
        None,
        "a new password ends sessions"
    );
    assert_eq!(
        t.store.get_user_by_name("admin").unwrap().password_hash,
        "$argon2id$new"
    );
}

#[test]
fn notification_targets_keep_their_url_sealed() {
    let t = open_store();
    let url = "https://hooks.slack.example.test/services/T000/B000/XXXXSECRET";
    let target = t
        .store
        .create_notification_target(&NewNotificationTarget {
            name: "team".into(),
            kind: NotificationKind::Slack,
            url: url.into(),
            filter: TargetFilter::default(),
            templates: Templates::default(),
        })
        .unwrap();
    assert_eq!(t.store.notification_url(target.id).unwrap(), url);
    assert_eq!(
        t.store.list_notification_targets().unwrap(),
        vec![target.clone()]
    );
    assert!(!contains(&raw_database(t.dir.path()), "XXXXSECRET"));
    t.store.delete_notification_target(target.id).unwrap();
    assert_not_found(t.store.get_notification_target(target.id));
}

/// Writes one secret of every kind, returning the plaintexts.
fn write_every_kind_of_secret(store: &Store) -> Vec<&'static str> {
    let registry = store
        .create_registry(&new_registry("local", Some("registry-pw-PLAINTEXT-1")))
        .unwrap();
    let mut project = new_project("shop");
    project.registry_id = Some(registry.id);
    project.env = vec![EnvVar {
        name: "DB_PASSWORD".into(),
        value: Some("env-PLAINTEXT-2".into()),
        secret: true,
    }];
    let project = store.create_project(&project).unwrap();
    store
        .create_stage(&NewStage {
            env: vec![EnvVar {
                name: "API_KEY".into(),
                value: Some("stage-env-PLAINTEXT-3".into()),
                secret: true,
            }],
            ..NewStage::defaults(project.id, "dev")
        })
        .unwrap();
    store
        .update_settings(&SettingsUpdate {
            proxy_secret: Some(Some("proxy-PLAINTEXT-4".into())),
            webhook_signing_secret: Some(Some("hmac-PLAINTEXT-5".into())),
            ..Default::default()
        })
        .unwrap();
    store
        .create_notification_target(&NewNotificationTarget {
            name: "ntfy".into(),
            kind: NotificationKind::Ntfy,
            url: "https://ntfy.example.test/topic-PLAINTEXT-6".into(),
            filter: TargetFilter::default(),
            templates: Templates::default(),
        })
        .unwrap();
    vec![
        "registry-pw-PLAINTEXT-1",
        "env-PLAINTEXT-2",
        "stage-env-PLAINTEXT-3",
        "proxy-PLAINTEXT-4",
        "hmac-PLAINTEXT-5",
        "topic-PLAINTEXT-6",
    ]
}

fn read_every_secret(store: &Store) -> Vec<String> {
    let registry = store.list_registries().unwrap().remove(0);
    let project = store.get_project_by_name("shop").unwrap();
    let stage = store.list_stages(project.id).unwrap().remove(0);
    let target = store.list_notification_targets().unwrap().remove(0);
    vec![
        store.registry_secret(registry.id).unwrap().unwrap(),
        store.project_env(project.id).unwrap().remove(0).1,
        store.stage_env(stage.id).unwrap().remove(0).1,
        store.proxy_secret().unwrap().unwrap(),
        store.webhook_signing_secret().unwrap().unwrap(),
        store.notification_url(target.id).unwrap(),
    ]
}

#[test]
fn plaintext_secrets_never_reach_the_database_file() {
    let t = open_store();
    let plaintexts = write_every_kind_of_secret(&t.store);
    let (webhook_secret, _) = t.store.ensure_webhook_secret().unwrap();
    let raw = raw_database(t.dir.path());
    assert!(raw.len() > 4096);
    for plaintext in plaintexts.iter().copied().chain([webhook_secret.as_str()]) {
        assert!(
            !contains(&raw, plaintext),
            "{plaintext} found in the database file"
        );
    }
    // And they all read back.
    let read = read_every_secret(&t.store);
    for (plaintext, value) in plaintexts.iter().zip(&read) {
        assert!(value.contains(plaintext), "{value} vs {plaintext}");
    }
}

#[test]
fn key_rotation_keeps_every_secret_readable() {
    let t = open_store();
    let plaintexts = write_every_kind_of_secret(&t.store);
    let (webhook_secret, _) = t.store.ensure_webhook_secret().unwrap();
    drop(t.store);
    let key_file = KeyFile::new(t.dir.path().join("master.key"));
    let (old_key, _) = key_file.load_or_create().unwrap();
    let old_sealed = sealed_registry_secret(t.dir.path());

    let config = Config {
        data_dir: t.dir.path().to_path_buf(),
        ..Config::default()
    };
    let count = docker_watcher::daemon::rotate_key(&config).unwrap();
    assert_eq!(count, 7, "six secrets plus the webhook secret");

    let (new_key, _) = key_file.load_or_create().unwrap();
    assert_ne!(new_key.id(), old_key.id());
    assert!(!key_file.next_path().exists());
    let store = reopen(t.dir.path());
    for (plaintext, value) in plaintexts.iter().zip(read_every_secret(&store)) {
        assert!(value.contains(plaintext));
    }
    assert_eq!(store.webhook_secret().unwrap(), Some(webhook_secret));
    // The old key no longer opens what is stored.
    let new_sealed = sealed_registry_secret(t.dir.path());
    assert_ne!(new_sealed, old_sealed);
    assert!(
        Sealer::new(old_key)
            .open("registries.secret_sealed:1", &new_sealed)
            .is_err()
    );
}

#[test]
fn tampered_ciphertext_is_an_error_not_garbage() {
    let t = open_store();
    let registry = t
        .store
        .create_registry(&new_registry("local", Some("pw")))
        .unwrap();
    let sealed = sealed_registry_secret(t.dir.path());
    // Flip one character of the base64 body.
    let mut bytes = sealed.into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let raw = rusqlite::Connection::open(t.dir.path().join(DATABASE_FILE)).unwrap();
    raw.execute(
        "UPDATE registries SET secret_sealed = ?1 WHERE id = ?2",
        (&tampered, registry.id),
    )
    .unwrap();
    let result = t.store.registry_secret(registry.id);
    assert!(matches!(result, Err(StoreError::Crypto(_))), "{result:?}");

    // A sealed value copied to another row does not open either.
    let other = t
        .store
        .create_registry(&new_registry("other", Some("other-pw")))
        .unwrap();
    let other_sealed: String = raw
        .query_row(
            "SELECT secret_sealed FROM registries WHERE id = ?1",
            [other.id],
            |r| r.get(0),
        )
        .unwrap();
    raw.execute(
        "UPDATE registries SET secret_sealed = ?1 WHERE id = ?2",
        (&other_sealed, registry.id),
    )
    .unwrap();
    assert!(matches!(
        t.store.registry_secret(registry.id),
        Err(StoreError::Crypto(_))
    ));
}

fn sealed_registry_secret(dir: &Path) -> String {
    let raw = rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap();
    raw.query_row(
        "SELECT secret_sealed FROM registries ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}
