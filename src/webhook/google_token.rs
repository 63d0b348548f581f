//! Google's OIDC tokens on Pub/Sub pushes (GCR, Artifact Registry), checked against a
//! set of Google's public keys: the pure half (fetching the keys is `crate::google_keys`).
//!
//! A token is accepted when its header names RS256 and a key of the set, the signature
//! over `header.claims` verifies with that key, `iss` is Google's, `aud` is the webhook
//! signing secret (the subscription's audience) and it has not expired.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// Clock difference tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Why a token is refused; each says what to set or check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the Authorization token is not a JSON Web Token signed with RS256")]
    Malformed,
    #[error(
        "the Authorization token is signed with a key Google does not publish (or that \
         could not be fetched from google_keys_url yet); Pub/Sub retries the push"
    )]
    UnknownKey,
    #[error("the Authorization token's signature does not verify with Google's key")]
    BadSignature,
    #[error(
        "the Authorization token is not a Google OIDC token whose audience is the webhook \
         signing secret: set the push subscription's audience to the signing secret"
    )]
    WrongAudience,
    #[error("the Authorization token has expired")]
    Expired,
}

/// RSA public keys by key id.
#[derive(Debug, Default)]
pub struct KeySet(HashMap<String, RsaKey>);

#[derive(Debug)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl KeySet {
    /// Whether the set has the key `kid`.
    pub fn has(&self, kid: &str) -> bool {
        self.0.contains_key(kid)
    }

    /// The RSA keys of a JSON Web Key Set; other kinds of key are skipped.
    pub fn from_jwks(text: &str) -> anyhow::Result<KeySet> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Jwk>,
        }
        #[derive(Deserialize)]
        struct Jwk {
            kid: Option<String>,
            kty: String,
            n: Option<String>,
            e: Option<String>,
        }
        let jwks: Jwks = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("not a JSON Web Key Set: {e}"))?;
        let mut keys = HashMap::new();
        for key in jwks.keys {
            let (Some(kid), "RSA", Some(n), Some(e)) = (key.kid, key.kty.as_str(), key.n, key.e)
            else {
                continue;
            };
            let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else {
                continue;
            };
            keys.insert(kid, RsaKey { n, e });
        }
        Ok(KeySet(keys))
    }

    /// Checks `token` (the bearer token) for the audience `secret`.
    pub fn verify(&self, token: &str, secret: &[u8]) -> Result<(), TokenError> {
        use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
        let header = token_header(token)?;
        let key = self.0.get(&header.kid).ok_or(TokenError::UnknownKey)?;
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        RsaPublicKeyComponents {
            n: &key.n,
            e: &key.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
        .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = token
            .split('.')
            .nth(1)
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Malformed)?;
        if !GOOGLE_ISSUERS.contains(&claims.iss.as_str())
            || !super::signature::constant_time_eq(claims.aud.as_bytes(), secret)
        {
            return Err(TokenError::WrongAudience);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if claims.exp.saturating_add(LEEWAY_SECS) < now {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    exp: u64,
}

/// The id of the key `token` says it is signed with.
pub fn key_id(token: &str) -> Option<String> {
    token_header(token).ok().map(|header| header.kid)
}

/// The token's header, when it is a three-part JWT signed with RS256.
fn token_header(token: &str) -> Result<Header, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(TokenError::Malformed)?;
    // Only RS256: a token may not choose `none` or an HMAC keyed with the public key.
    if header.alg != "RS256" {
        return Err(TokenError::Malformed);
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::{
        google_claims, google_claims_with, google_token, jwks, unix_now,
    };

    const SECRET: &str = "the-audience-secret";

    #[test]
    fn a_token_google_signed_for_our_audience_is_accepted() {
        let keys = KeySet::from_jwks(&jwks(1)).unwrap();
        let token = google_token(1, "test-key-1", &google_claims(SECRET));
        assert_eq!(keys.verify(&token, SECRET.as_bytes()), Ok(()));
    }

    #[test]
    fn every_other_token_is_refused_with_its_reason() {
        let keys = KeySet::from_jwks(&jwks(1)).unwrap();
        let good = google_claims_with(SECRET, GOOGLE_ISSUERS[1], unix_now() + 3600);
        let cases = [
            // Signed with another key under the published key's id: a forgery.
            (
                google_token(2, "test-key-1", &good),
                TokenError::BadSignature,
            ),
            (google_token(2, "test-key-2", &good), TokenError::UnknownKey),
            (
                google_token(
                    1,
                    "test-key-1",
                    &google_claims_with("another-audience", GOOGLE_ISSUERS[0], unix_now() + 3600),
                ),
                TokenError::WrongAudience,
            ),
            (
                google_token(
                    1,
                    "test-key-1",
                    &google_claims_with(SECRET, "https://evil.example.com", unix_now() + 3600),
                ),
                TokenError::WrongAudience,
            ),
            (
                google_token(
                    1,
                    "test-key-1",
                    &google_claims_with(SECRET, GOOGLE_ISSUERS[0], 1_000_000),
                ),
                TokenError::Expired,
            ),
        ];
        for (token, reason) in cases {
            assert_eq!(keys.verify(&token, SECRET.as_bytes()), Err(reason));
        }
        // The claims part changed after signing.
        let token = google_token(1, "test-key-1", &good);
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(google_claims("x").to_string());
        parts[1] = &other;
        assert_eq!(
            keys.verify(&parts.join("."), b"x"),
            Err(TokenError::BadSignature)
        );
        // Unsigned (`alg: none`) and HMAC tokens are not even looked at.
        for alg in ["none", "HS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"test-key-1"}}"#));
            let body = URL_SAFE_NO_PAD.encode(good.to_string());
            let token = format!("{header}.{body}.");
            assert_eq!(
                keys.verify(&token, SECRET.as_bytes()),
                Err(TokenError::Malformed)
            );
        }
        assert_eq!(
            keys.verify("not-a-jwt", SECRET.as_bytes()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_key_set_that_is_not_json_is_an_error_and_odd_keys_are_skipped() {
        assert!(KeySet::from_jwks("<html>").is_err());
        let set = KeySet::from_jwks(
            r#"{"keys":[{"kty":"EC","kid":"ec","crv":"P-256"},{"kty":"RSA","kid":"bad","n":"%%","e":"AQAB"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#,
        )
        .unwrap();
        assert!(set.0.is_empty());
    }
}
