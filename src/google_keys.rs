//! Google's public keys for the OIDC tokens of Pub/Sub pushes, fetched when needed.
//!
//! Google publishes them as a JSON Web Key Set (`google_keys_url`, by default
//! [`DEFAULT_KEYS_URL`]). The set is fetched when a signed push names a key not held, or
//! when the held set is older than [`KEYS_MAX_AGE`], and never more often than every
//! [`REFETCH_INTERVAL`]: anyone who knows the webhook URL can send made-up key ids, and
//! must not make the daemon fetch on every request. An installation that never receives
//! a Pub/Sub push while a signing secret is set never contacts Google. Checking a token
//! against the set is `crate::webhook::GoogleKeySet::verify`.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::webhook::{GoogleKeySet as KeySet, google_key_id};

/// Where Google publishes the keys of its OIDC tokens.
pub const DEFAULT_KEYS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// The least time between two fetches of the key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// How long a fetched key set is used before it is fetched again (Google announces new
/// keys well before it signs with them, and keeps old ones a while after).
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Google's public keys as last fetched, shared by every request.
pub struct GoogleKeys {
    url: String,
    client: reqwest::Client,
    refetch_interval: Duration,
    fetched: RwLock<Fetched>,
    /// One fetch at a time; requests arriving meanwhile wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Fetched {
    keys: Arc<KeySet>,
    /// When the set was fetched, successfully or not (for the rate limit).
    attempted: Option<Instant>,
    /// When a set was last fetched successfully (for its age).
    succeeded: Option<Instant>,
}

impl GoogleKeys {
    pub fn new(url: impl Into<String>) -> GoogleKeys {
        GoogleKeys::with_refetch_interval(url, REFETCH_INTERVAL)
    }

    /// [`GoogleKeys::new`] with another bound on how often the keys are fetched.
    pub fn with_refetch_interval(url: impl Into<String>, refetch_interval: Duration) -> GoogleKeys {
        let client = crate::http_client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("docker-watcher/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        GoogleKeys {
            url: url.into(),
            client,
            refetch_interval,
            fetched: RwLock::new(Fetched::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key set to check `token` with: the one held, fetched again first when it
    /// lacks the token's key or is old, unless a fetch was tried too recently.
    pub async fn for_token(&self, token: &str) -> Arc<KeySet> {
        let kid = google_key_id(token);
        if let Some(keys) = self.fresh_enough(kid.as_deref()) {
            return keys;
        }
        let _one_fetch = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.fresh_enough(kid.as_deref()) {
            return keys;
        }
        let recently_tried = self
            .read()
            .attempted
            .is_some_and(|at| at.elapsed() < self.refetch_interval);
        if !recently_tried {
            let fetched = self.fetch().await;
            let mut state = self.fetched.write().unwrap_or_else(|p| p.into_inner());
            state.attempted = Some(Instant::now());
            match fetched {
                Ok(keys) => {
                    state.keys = Arc::new(keys);
                    state.succeeded = Some(Instant::now());
                }
                Err(e) => tracing::warn!(
                    url = %self.url,
                    "cannot fetch Google's token keys, so signed Pub/Sub pushes are refused until they can be fetched: {e:#}"
                ),
            }
        }
        self.read().keys.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Fetched> {
        self.fetched.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The held set when it has `kid` and is younger than [`KEYS_MAX_AGE`].
    fn fresh_enough(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let state = self.read();
        let young = state
            .succeeded
            .is_some_and(|at| at.elapsed() < KEYS_MAX_AGE);
        let known = kid.is_some_and(|kid| state.keys.has(kid));
        (young && known).then(|| state.keys.clone())
    }

    async fn fetch(&self) -> anyhow::Result<KeySet> {
        use anyhow::Context;
        let text = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("the request failed")?
            .text()
            .await
            .context("the answer could not be read")?;
        KeySet::from_jwks(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::TokenError;
    use crate::webhook::test_support::{google_claims, google_token, jwks, key_server};

    const SECRET: &str = "the-audience-secret";

    #[tokio::test]
    async fn keys_are_fetched_for_an_unknown_key_but_not_more_often_than_the_interval() {
        use std::sync::atomic::Ordering;
        let served = Arc::new(std::sync::Mutex::new(jwks(1)));
        let (url, hits) = key_server(served.clone()).await;
        let interval = Duration::from_millis(300);
        let keys = GoogleKeys::with_refetch_interval(url, interval);
        let good = google_claims(SECRET);
        let first = google_token(1, "test-key-1", &good);
        // Fetched on first use, then kept while it knows the key.
        for _ in 0..3 {
            let set = keys.for_token(&first).await;
            assert_eq!(set.verify(&first, SECRET.as_bytes()), Ok(()));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // Google rotates: a token under a new key makes the daemon fetch again, once the
        // interval since the last fetch has passed; made-up key ids inside it cost nothing.
        *served.lock().unwrap() = jwks(2);
        let rotated = google_token(2, "test-key-2", &good);
        let set = keys.for_token(&rotated).await;
        assert_eq!(
            set.verify(&rotated, SECRET.as_bytes()),
            Err(TokenError::UnknownKey)
        );
        for kid in ["made-up-1", "made-up-2", "made-up-3"] {
            keys.for_token(&google_token(2, kid, &good)).await;
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "no fetch within the interval"
        );
        tokio::time::sleep(interval).await;
        let set = keys.for_token(&rotated).await;
        assert_eq!(set.verify(&rotated, SECRET.as_bytes()), Ok(()));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_key_server_refuses_tokens_and_is_tried_again_later() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let keys = GoogleKeys::with_refetch_interval(
            format!("http://127.0.0.1:{port}/certs"),
            Duration::ZERO,
        );
        let token = google_token(1, "test-key-1", &google_claims(SECRET));
        let set = keys.for_token(&token).await;
        assert_eq!(
            set.verify(&token, SECRET.as_bytes()),
            Err(TokenError::UnknownKey)
        );
    }
}
