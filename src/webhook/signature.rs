//! How each sender proves it knows the webhook signing secret, checked in constant time.
//!
//! With a signing secret configured, every request must prove it:
//! - senders that sign the body with HMAC-SHA256: Gitea (`X-Gitea-Signature: <hex>`),
//!   GitHub and generic CI bodies (`X-Hub-Signature-256: sha256=<hex>`, so a CI job can
//!   sign with `openssl dgst -sha256 -hmac`), JFrog Artifactory (`X-JFrog-Event-Auth:
//!   <hex>` with "use secret for payload signing"; without it JFrog sends the secret
//!   itself there, which is accepted too);
//! - senders that can only send a fixed header: Docker Distribution, Azure Container
//!   Registry and Event Grid (`Authorization: Bearer <secret>`), Harbor (its policy's auth
//!   header: `Authorization: <secret>` or `Bearer <secret>`);
//! - Google Pub/Sub pushes carry a Google-signed OIDC token (`Authorization: Bearer
//!   <JWT>`): its RS256 signature is checked against Google's public keys (the caller
//!   fetches them: `crate::google_keys`), its `aud` must be the signing secret (set as the
//!   subscription's audience), its `iss` Google's, and it must not have expired;
//! - Docker Hub and Quay can do neither: their requests are refused
//!   ([`SignatureError::Unsignable`]) and the caller decides whether a setting lets them
//!   in.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::google_token::{KeySet as GoogleKeySet, TokenError};
use super::payload::{SourceFormat, header};

const GITEA_HEADER: &str = "X-Gitea-Signature";
const FORGEJO_HEADER: &str = "X-Forgejo-Signature";
const HUB_HEADER: &str = "X-Hub-Signature-256";
const AUTHORIZATION: &str = "Authorization";
const JFROG_HEADER: &str = "X-JFrog-Event-Auth";

/// Why a request's signature is not accepted; the handler answers 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the request has no {header} header but a webhook signing secret is configured: \
         set the same secret on the sender's webhook"
    )]
    Missing { header: &'static str },
    #[error(
        "the {header} signature does not match the body: check that the sender's webhook \
         secret is the one configured here"
    )]
    Mismatch { header: &'static str },
    /// The format has no way to sign (Docker Hub, Quay).
    #[error(
        "{format} webhooks cannot be signed and a webhook signing secret is configured: \
         turn on {} in the settings to accept them",
        unsigned_setting(.format)
    )]
    Unsignable { format: SourceFormat },
    /// A Pub/Sub push's token is not one Google signed for this audience.
    #[error("{0}")]
    GoogleToken(#[from] TokenError),
}

/// Checks the request's signature against `secret`; without a secret nothing is checked.
/// `google_keys` are Google's public keys, for Pub/Sub pushes' tokens.
pub fn verify_signature(
    format: SourceFormat,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&[u8]>,
    google_keys: &GoogleKeySet,
) -> Result<(), SignatureError> {
    let Some(secret) = secret else {
        return Ok(());
    };
    let (name, hex_signature) = match format {
        SourceFormat::Gitea => {
            // Gitea sends an empty header when it has no secret: that is a missing one.
            match header(headers, GITEA_HEADER) {
                Some(value) => (GITEA_HEADER, value),
                None => (
                    GITEA_HEADER,
                    header(headers, FORGEJO_HEADER).ok_or(SignatureError::Missing {
                        header: GITEA_HEADER,
                    })?,
                ),
            }
        }
        SourceFormat::GitHub | SourceFormat::Generic => {
            let value = header(headers, HUB_HEADER)
                .ok_or(SignatureError::Missing { header: HUB_HEADER })?;
            let hex = value
                .strip_prefix("sha256=")
                .filter(|hex| !hex.is_empty())
                .ok_or(SignatureError::Missing { header: HUB_HEADER })?;
            (HUB_HEADER, hex)
        }
        SourceFormat::JFrog => {
            let value = header(headers, JFROG_HEADER).ok_or(SignatureError::Missing {
                header: JFROG_HEADER,
            })?;
            // Without "use secret for payload signing" JFrog sends the secret itself.
            if constant_time_eq(value.as_bytes(), secret) {
                return Ok(());
            }
            (JFROG_HEADER, value)
        }
        SourceFormat::Distribution | SourceFormat::Acr | SourceFormat::EventGrid => {
            return verify_bearer(headers, secret);
        }
        SourceFormat::Harbor => return verify_static_authorization(headers, secret),
        SourceFormat::GooglePubSub => {
            return Ok(google_keys.verify(bearer_token(headers)?, secret)?);
        }
        SourceFormat::DockerHub | SourceFormat::Quay => {
            return Err(SignatureError::Unsignable { format });
        }
    };
    let mismatch = SignatureError::Mismatch { header: name };
    let expected = hex::decode(hex_signature).map_err(|_| mismatch.clone())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| mismatch.clone())?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| mismatch)
}

/// A static header: `Authorization: Bearer <secret>` (Docker Distribution, ACR, Event Grid).
fn verify_bearer(headers: &HeaderMap, secret: &[u8]) -> Result<(), SignatureError> {
    let token = bearer_token(headers)?;
    if constant_time_eq(token.as_bytes(), secret) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch {
            header: AUTHORIZATION,
        })
    }
}

/// Harbor sends its policy's auth header as the whole `Authorization` value: accept the
/// secret alone or after `Bearer `.
fn verify_static_authorization(headers: &HeaderMap, secret: &[u8]) -> Result<(), SignatureError> {
    let value = header(headers, AUTHORIZATION).ok_or(SignatureError::Missing {
        header: AUTHORIZATION,
    })?;
    let bearer = bearer_token(headers).ok();
    if constant_time_eq(value.as_bytes(), secret)
        || bearer.is_some_and(|token| constant_time_eq(token.as_bytes(), secret))
    {
        return Ok(());
    }
    Err(SignatureError::Mismatch {
        header: AUTHORIZATION,
    })
}

/// The token of `Authorization: Bearer <token>`; missing when the header or scheme is.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, SignatureError> {
    let missing = SignatureError::Missing {
        header: AUTHORIZATION,
    };
    let value = header(headers, AUTHORIZATION).ok_or(missing.clone())?;
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(missing)
}

/// The setting that lets a sender that cannot sign in anyway.
pub fn unsigned_setting(format: &SourceFormat) -> &'static str {
    match format {
        SourceFormat::Quay => "allow_unsigned_quay",
        _ => "allow_unsigned_dockerhub",
    }
}

pub(super) fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.ct_eq(secret).into()
}

/// Hex HMAC-SHA256 of `body` under `secret`: what Gitea puts in `X-Gitea-Signature`, and
/// GitHub after `sha256=`.
pub fn signature_hex(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length, so this never fails; an empty string would not
    // verify against anything.
    Hmac::<Sha256>::new_from_slice(secret)
        .map(|mut mac| {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default()
}

impl SignatureError {
    pub fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::{headers, testdata};

    const SECRET: &[u8] = b"s3cret-shared-with-the-registry";

    #[test]
    fn signature_hex_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn gitea_signature_valid_invalid_and_missing() {
        let body = testdata("gitea_package_created.json");
        let good = signature_hex(SECRET, &body);
        let signed = headers(&[("x-gitea-event", "package"), ("x-gitea-signature", &good)]);
        assert_eq!(
            verify_signature(
                SourceFormat::Gitea,
                &signed,
                &body,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Ok(())
        );
        let other_secret = verify_signature(
            SourceFormat::Gitea,
            &signed,
            &body,
            Some(b"other"),
            &GoogleKeySet::default(),
        );
        assert_eq!(
            other_secret,
            Err(SignatureError::Mismatch {
                header: GITEA_HEADER
            })
        );
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert!(
            verify_signature(
                SourceFormat::Gitea,
                &signed,
                &tampered,
                Some(SECRET),
                &GoogleKeySet::default()
            )
            .is_err()
        );
        for bad in ["zz", "00", &good[..good.len() - 2]] {
            let h = headers(&[("x-gitea-signature", bad)]);
            assert_eq!(
                verify_signature(
                    SourceFormat::Gitea,
                    &h,
                    &body,
                    Some(SECRET),
                    &GoogleKeySet::default()
                ),
                Err(SignatureError::Mismatch {
                    header: GITEA_HEADER
                }),
                "{bad}"
            );
        }
        // Gitea without a secret sends the header empty.
        let unsigned = headers(&[("x-gitea-event", "package"), ("x-gitea-signature", "")]);
        let missing = verify_signature(
            SourceFormat::Gitea,
            &unsigned,
            &body,
            Some(SECRET),
            &GoogleKeySet::default(),
        );
        assert_eq!(
            missing,
            Err(SignatureError::Missing {
                header: GITEA_HEADER
            })
        );
        assert_eq!(missing.unwrap_err().status_code().as_u16(), 401);
    }

    #[test]
    fn forgejo_signature_is_accepted_for_gitea() {
        let body = b"{}";
        let h = headers(&[("x-forgejo-signature", &signature_hex(SECRET, body))]);
        assert_eq!(
            verify_signature(
                SourceFormat::Gitea,
                &h,
                body,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Ok(())
        );
    }

    #[test]
    fn github_and_generic_signature_valid_invalid_and_missing() {
        let body = testdata("github_registry_package_published.json");
        let good = format!("sha256={}", signature_hex(SECRET, &body));
        for format in [SourceFormat::GitHub, SourceFormat::Generic] {
            let signed = headers(&[("x-hub-signature-256", &good)]);
            assert_eq!(
                verify_signature(
                    format,
                    &signed,
                    &body,
                    Some(SECRET),
                    &GoogleKeySet::default()
                ),
                Ok(())
            );
            let wrong = headers(&[(
                "x-hub-signature-256",
                &format!("sha256={}", signature_hex(b"wrong", &body)),
            )]);
            assert_eq!(
                verify_signature(
                    format,
                    &wrong,
                    &body,
                    Some(SECRET),
                    &GoogleKeySet::default()
                ),
                Err(SignatureError::Mismatch { header: HUB_HEADER })
            );
            for missing in [
                headers(&[]),
                headers(&[("x-hub-signature-256", "sha256=")]),
                // The bare hex without the algorithm is not GitHub's format.
                headers(&[("x-hub-signature-256", &signature_hex(SECRET, &body))]),
                // The SHA-1 header alone is not enough.
                headers(&[("x-hub-signature", "sha1=0123")]),
            ] {
                assert_eq!(
                    verify_signature(
                        format,
                        &missing,
                        &body,
                        Some(SECRET),
                        &GoogleKeySet::default()
                    ),
                    Err(SignatureError::Missing { header: HUB_HEADER }),
                    "{missing:?}"
                );
            }
        }
    }

    #[test]
    fn without_a_secret_nothing_is_checked() {
        let garbage = headers(&[("x-hub-signature-256", "sha256=nothex")]);
        for format in SourceFormat::ALL {
            assert_eq!(
                verify_signature(format, &garbage, b"{}", None, &GoogleKeySet::default()),
                Ok(())
            );
        }
    }

    #[test]
    fn distribution_proves_the_secret_with_a_bearer_header() {
        let format = SourceFormat::Distribution;
        let bearer = format!("Bearer {}", std::str::from_utf8(SECRET).unwrap());
        assert_eq!(
            verify_signature(
                format,
                &headers(&[("authorization", &bearer)]),
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Ok(())
        );
        for (value, expected) in [
            (
                "Bearer wrong",
                SignatureError::Mismatch {
                    header: AUTHORIZATION,
                },
            ),
            (
                "Bearer ",
                SignatureError::Missing {
                    header: AUTHORIZATION,
                },
            ),
            (
                "Basic czNjcmV0",
                SignatureError::Missing {
                    header: AUTHORIZATION,
                },
            ),
        ] {
            assert_eq!(
                verify_signature(
                    format,
                    &headers(&[("authorization", value)]),
                    b"{}",
                    Some(SECRET),
                    &GoogleKeySet::default()
                ),
                Err(expected),
                "{value}"
            );
        }
        assert_eq!(
            verify_signature(
                format,
                &headers(&[]),
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Missing {
                header: AUTHORIZATION
            })
        );
    }

    #[test]
    fn harbor_static_header_alone_or_as_bearer() {
        let secret = std::str::from_utf8(SECRET).unwrap();
        for value in [secret.to_string(), format!("Bearer {secret}")] {
            let h = headers(&[("authorization", &value)]);
            assert_eq!(
                verify_signature(
                    SourceFormat::Harbor,
                    &h,
                    b"{}",
                    Some(SECRET),
                    &GoogleKeySet::default()
                ),
                Ok(()),
                "{value}"
            );
        }
        let wrong = headers(&[("authorization", "not-it")]);
        assert_eq!(
            verify_signature(
                SourceFormat::Harbor,
                &wrong,
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Mismatch {
                header: AUTHORIZATION
            }),
            "neither the secret nor a bearer token of it"
        );
        assert_eq!(
            verify_signature(
                SourceFormat::Harbor,
                &headers(&[]),
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Missing {
                header: AUTHORIZATION
            })
        );
        let wrong_bearer = headers(&[("authorization", "Bearer not-it")]);
        assert_eq!(
            verify_signature(
                SourceFormat::Harbor,
                &wrong_bearer,
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Mismatch {
                header: AUTHORIZATION
            })
        );
    }

    #[test]
    fn acr_and_event_grid_send_a_bearer_header() {
        let bearer = format!("Bearer {}", std::str::from_utf8(SECRET).unwrap());
        for format in [SourceFormat::Acr, SourceFormat::EventGrid] {
            let good = headers(&[("authorization", &bearer)]);
            assert_eq!(
                verify_signature(format, &good, b"[]", Some(SECRET), &GoogleKeySet::default()),
                Ok(())
            );
            let bare = headers(&[("authorization", std::str::from_utf8(SECRET).unwrap())]);
            assert!(
                verify_signature(format, &bare, b"[]", Some(SECRET), &GoogleKeySet::default())
                    .is_err()
            );
        }
    }

    #[test]
    fn jfrog_signs_with_hmac_or_sends_the_secret() {
        let body = testdata("jfrog_docker_pushed.json");
        let format = SourceFormat::JFrog;
        let signed = headers(&[("x-jfrog-event-auth", &signature_hex(SECRET, &body))]);
        assert_eq!(
            verify_signature(
                format,
                &signed,
                &body,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Ok(())
        );
        let plain = headers(&[("x-jfrog-event-auth", std::str::from_utf8(SECRET).unwrap())]);
        assert_eq!(
            verify_signature(
                format,
                &plain,
                &body,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Ok(())
        );
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert_eq!(
            verify_signature(
                format,
                &signed,
                &tampered,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Mismatch {
                header: JFROG_HEADER
            })
        );
        assert_eq!(
            verify_signature(
                format,
                &headers(&[]),
                &body,
                Some(SECRET),
                &GoogleKeySet::default()
            ),
            Err(SignatureError::Missing {
                header: JFROG_HEADER
            })
        );
    }

    /// An unsigned JWT-shaped token with these claims (the signature part is not checked).
    #[test]
    fn pubsub_token_must_be_googles_for_the_secret_audience() {
        use crate::webhook::test_support::{google_claims, google_token, jwks};
        let format = SourceFormat::GooglePubSub;
        let keys = GoogleKeySet::from_jwks(&jwks(1)).unwrap();
        let secret = std::str::from_utf8(SECRET).unwrap();
        let bearer = |token: String| headers(&[("authorization", &format!("Bearer {token}"))]);
        let good = bearer(google_token(1, "test-key-1", &google_claims(secret)));
        assert_eq!(
            verify_signature(format, &good, b"{}", Some(SECRET), &keys),
            Ok(())
        );
        // Without Google's keys nothing is accepted.
        assert_eq!(
            verify_signature(format, &good, b"{}", Some(SECRET), &GoogleKeySet::default()),
            Err(SignatureError::GoogleToken(TokenError::UnknownKey))
        );
        let other_audience = bearer(google_token(
            1,
            "test-key-1",
            &google_claims("https://deploy.example.com/api/webhook/x"),
        ));
        let forged = bearer(google_token(2, "test-key-1", &google_claims(secret)));
        for (h, reason) in [
            (other_audience, TokenError::WrongAudience),
            (forged, TokenError::BadSignature),
            (
                headers(&[("authorization", "Bearer not-a-jwt")]),
                TokenError::Malformed,
            ),
        ] {
            let refused = verify_signature(format, &h, b"{}", Some(SECRET), &keys);
            assert_eq!(refused, Err(SignatureError::GoogleToken(reason)));
            assert_eq!(refused.unwrap_err().status_code().as_u16(), 401);
        }
        assert_eq!(
            verify_signature(format, &headers(&[]), b"{}", Some(SECRET), &keys),
            Err(SignatureError::Missing {
                header: AUTHORIZATION
            })
        );
    }

    #[test]
    fn docker_hub_and_quay_cannot_prove_it_and_name_their_setting() {
        for (format, setting) in [
            (SourceFormat::DockerHub, "allow_unsigned_dockerhub"),
            (SourceFormat::Quay, "allow_unsigned_quay"),
        ] {
            let refused = verify_signature(
                format,
                &headers(&[]),
                b"{}",
                Some(SECRET),
                &GoogleKeySet::default(),
            );
            assert_eq!(refused, Err(SignatureError::Unsignable { format }));
            assert!(
                refused.unwrap_err().to_string().contains(setting),
                "{format}"
            );
        }
    }
}
