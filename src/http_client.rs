//! The one TLS set-up every outgoing HTTP client uses: rustls checking certificates
//! against the system's CAs (through rustls-platform-verifier, as reqwest does by default),
//! loaded once per process.
//!
//! Left to itself, reqwest reads and parses the system's ~150 CA certificates again for
//! every client it builds, and each client keeps its own copy: a few milliseconds of CPU
//! and ~50 KB each, for the notifier, every registry and proxy client, and every deploy's
//! HTTP health probe.

use std::sync::{Arc, OnceLock};

/// `reqwest::Client::builder()` with the shared TLS set-up. Without one (no CA
/// certificates could be loaded), reqwest's own, which reports the problem when built.
pub fn builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match shared_tls() {
        Some(tls) => builder.tls_backend_preconfigured(tls.clone()),
        None => builder,
    }
}

fn shared_tls() -> Option<&'static rustls::ClientConfig> {
    static TLS: OnceLock<Option<rustls::ClientConfig>> = OnceLock::new();
    TLS.get_or_init(|| match tls_config() {
        Ok(config) => Some(config),
        Err(e) => {
            tracing::warn!("cannot load the system's CA certificates: {e}");
            None
        }
    })
    .as_ref()
}

/// What reqwest would build: its crypto provider, the platform's verifier, HTTP/2 and
/// HTTP/1.1 offered by ALPN.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
#[path = "../tests/it/support/self_signed.rs"]
mod self_signed;

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::self_signed;

    /// The shared set-up still checks certificates: a server on 127.0.0.1 whose
    /// certificate no system CA vouches for is refused, as reqwest's own set-up does.
    #[tokio::test]
    async fn a_certificate_no_system_ca_vouches_for_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed::self_signed_cert(dir.path());
        let cert = CertificateDer::from_pem_file(cert).unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let connection = rustls::ServerConnection::new(Arc::new(server)).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, socket);
            // The client's alert ends the handshake: what the server reads is the error.
            tls.read(&mut [0; 64]).err().map(|e| e.to_string())
        });

        let client = super::builder().build().unwrap();
        let error = client
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
        let server_saw = served.join().unwrap().unwrap_or_default();
        assert!(server_saw.contains("UnknownCA"), "{server_saw}");
    }
}
