//! Google OIDC tokens for tests, signed with the test keys in testdata/google_keys, and
//! the key sets that publish them. Shared by the library's unit tests (included with
//! `#[path]`) and the integration tests; it needs only std, aws-lc-rs, base64 and serde_json.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The issuer Google writes into its tokens.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The public key set that holds test key `n` (1 or 2), as Google serves its keys.
pub fn jwks(n: u8) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/google_keys/jwks-key-{n}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test key set")
}

/// Claims as Pub/Sub writes them for a push subscription with audience `aud`.
pub fn google_claims_with(aud: &str, iss: &str, exp: u64) -> serde_json::Value {
    serde_json::json!({
        "aud": aud, "iss": iss, "exp": exp, "iat": exp.saturating_sub(3600),
        "azp": "112233445566778899000", "sub": "112233445566778899000",
        "email": "gcp-pubsub@my-project.iam.gserviceaccount.com", "email_verified": true,
    })
}

/// Valid claims for `aud`, expiring in an hour.
pub fn google_claims(aud: &str) -> serde_json::Value {
    google_claims_with(aud, GOOGLE_ISSUER, unix_now() + 3600)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
}

/// A token with `claims`, signed RS256 with test key `key` (1 or 2) and naming `kid`.
pub fn google_token(key: u8, kid: &str, claims: &serde_json::Value) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let der = std::fs::read(format!(
        "{}/testdata/google_keys/test-key-{key}.der",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("test key");
    let pair = RsaKeyPair::from_der(&der).expect("a PKCS#1 RSA key");
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","kid":"{kid}","typ":"JWT"}}"#));
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signed.as_bytes(),
        &mut signature,
    )
    .expect("signing");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A key server on 127.0.0.1 serving what `body` holds at each request (so a test can
/// rotate keys); returns its URL and the count of requests it answered.
pub async fn key_server(body: Arc<Mutex<String>>) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let text = body.lock().expect("key set").clone();
            counted.fetch_add(1, Ordering::SeqCst);
            async move { ([("content-type", "application/json")], text) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}/certs", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}
