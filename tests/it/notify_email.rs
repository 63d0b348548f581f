//! Email through a real SMTP server (aiosmtpd, Debian's python3-aiosmtpd installed by
//! `./dev services`) on 127.0.0.1: plain for a local relay, STARTTLS and implicit TLS
//! with a login, with a certificate from a private CA the notifier is told to trust.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use docker_watcher::notify::{Endpoints, EventKind, Notification};
use docker_watcher::store::NotificationKind;
use serde_json::Value;

use crate::notify_channels::harness_with;
use crate::support::free_port;

struct SmtpServer {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
    cert: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start(mode: &str) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        // Trusted by the notifier as an extra root.
        let (cert, key) = crate::support::self_signed::self_signed_cert(dir.path());
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, include_str!("support/smtp_server.py")).unwrap();
        let port = free_port();
        let out = dir.path().join("mails.jsonl");
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([mode, &port.to_string()])
            .args([&out, &cert, &key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 with aiosmtpd (./dev services installs python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start: is python3-aiosmtpd installed? (./dev services)"
        );
        SmtpServer {
            child,
            port,
            out,
            cert: std::fs::read(&cert).unwrap(),
            _dir: dir,
        }
    }

    fn mails(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Closing stdin stops the server; kill is the fallback.
        drop(self.child.stdin.take().map(|mut s| s.flush()));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the sample rollback to `url`, trusting `server`'s certificate; returns the
/// target's last error.
async fn send(url: &str, server: &SmtpServer) -> Option<String> {
    let endpoints = Endpoints {
        smtp_extra_root_pem: Some(server.cert.clone()),
        ..Endpoints::default()
    };
    let (h, target) = harness_with(url, NotificationKind::Email, endpoints);
    h.deliver(Notification::sample(EventKind::Rollback), target)
        .await
}

/// The target URL for `server` with an optional login, to two recipients.
fn mail_url(server: &SmtpServer, login: Option<&str>, encryption: &str) -> String {
    let login = login.map(|l| format!("{l}@")).unwrap_or_default();
    format!(
        "smtp://{login}127.0.0.1:{}/?from=deploys@example.test&to=ops@example.test,dev@example.test&encryption={encryption}",
        server.port
    )
}

fn assert_the_rollback_mail(mail: &Value, tls: bool, login: Option<&str>) {
    assert_eq!(mail["mail_from"], "deploys@example.test");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.test", "dev@example.test"])
    );
    assert_eq!(mail["tls"], tls);
    assert_eq!(mail["login"].as_str(), login);
    let content = mail["content"].as_str().unwrap();
    assert!(
        content.contains("Subject: shop/dev: rolled back dev-4f2a91"),
        "{content}"
    );
    assert!(content.contains("Failed step: health_check"), "{content}");
    assert!(
        content.contains("error: cannot reach database at db:5432"),
        "{content}"
    );
}

#[tokio::test]
async fn starttls_with_login_delivers_the_mail() {
    let server = SmtpServer::start("starttls");
    let url = mail_url(&server, Some("bot:bot-password"), "starttls");
    assert_eq!(send(&url, &server).await, None);
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_the_rollback_mail(&mails[0], true, Some("bot"));
}

#[tokio::test]
async fn implicit_tls_with_login_delivers_the_mail() {
    let server = SmtpServer::start("implicit");
    let url = mail_url(&server, Some("bot:bot-password"), "implicit");
    assert_eq!(send(&url, &server).await, None);
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_the_rollback_mail(&mails[0], true, Some("bot"));
}

#[tokio::test]
async fn plain_relay_and_a_wrong_password() {
    let server = SmtpServer::start("plain");
    assert_eq!(send(&mail_url(&server, None, "none"), &server).await, None);
    assert_the_rollback_mail(&server.mails()[0], false, None);

    let tls = SmtpServer::start("starttls");
    let wrong = mail_url(&tls, Some("bot:not-the-password"), "starttls");
    let error = send(&wrong, &tls).await.expect("the login fails");
    assert!(
        error.contains("mail not accepted") && error.contains("535"),
        "{error}"
    );
    assert!(!error.contains("not-the-password"), "{error}");
    assert!(tls.mails().is_empty());
}

#[tokio::test]
async fn starttls_refuses_a_server_it_cannot_trust() {
    let server = SmtpServer::start("starttls");
    // Without the certificate as an extra root it is not trusted and nothing is sent.
    let url = mail_url(&server, Some("bot:bot-password"), "starttls");
    let (h, target) = harness_with(&url, NotificationKind::Email, Endpoints::default());
    let error = h
        .deliver(Notification::sample(EventKind::Rollback), target)
        .await
        .expect("untrusted certificate");
    assert!(error.contains("certificate"), "{error}");
    assert!(server.mails().is_empty());
}
