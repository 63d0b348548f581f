//! A self-signed server certificate for 127.0.0.1, made with the `openssl` CLI: shared by
//! the integration tests and the library's unit tests (included there with `#[path]`), so
//! it uses nothing but std.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Writes `cert.pem` and `key.pem` (P-256) into `dir`; their paths. The certificate is not
/// a CA (rustls refuses a CA certificate used as the server's own) and names IP 127.0.0.1.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let made = Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed to make the test certificate");
    assert!(
        made.success(),
        "openssl could not make the test certificate"
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}
