//! HMAC-SHA256 signatures of webhook bodies: Gitea's `X-Gitea-Signature` (hex) and
//! GitHub's `X-Hub-Signature-256` (`sha256=<hex>`), compared in constant time.
//!
//! With a signing secret configured, every request must prove it knows the secret.
//! Generic bodies are signed like GitHub's, so a CI job can sign with
//! `openssl dgst -sha256 -hmac`. Docker Distribution cannot sign, but its notifications
//! config can send a static header: `Authorization: Bearer <signing secret>`, compared in
//! constant time. Docker Hub can do neither: its requests are refused
//! ([`SignatureError::Unsignable`]) and the caller decides whether a setting lets them in.

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::payload::{SourceFormat, header};

const GITEA_HEADER: &str = "X-Gitea-Signature";
const FORGEJO_HEADER: &str = "X-Forgejo-Signature";
const HUB_HEADER: &str = "X-Hub-Signature-256";
const AUTHORIZATION: &str = "Authorization";

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
    /// The format has no way to sign (Docker Hub).
    #[error(
        "{format} webhooks cannot be signed and a webhook signing secret is configured: \
         turn on allow_unsigned_dockerhub in the settings to accept them"
    )]
    Unsignable { format: SourceFormat },
}

/// Checks the request's signature against `secret`; without a secret nothing is checked.
pub fn verify_signature(
    format: SourceFormat,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&[u8]>,
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
        SourceFormat::Distribution => return verify_bearer(headers, secret),
        SourceFormat::DockerHub => return Err(SignatureError::Unsignable { format }),
    };
    let mismatch = SignatureError::Mismatch { header: name };
    let expected = hex::decode(hex_signature).map_err(|_| mismatch.clone())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| mismatch.clone())?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| mismatch)
}

/// Docker Distribution's static header: `Authorization: Bearer <secret>`.
fn verify_bearer(headers: &HeaderMap, secret: &[u8]) -> Result<(), SignatureError> {
    use subtle::ConstantTimeEq;
    let value = header(headers, AUTHORIZATION).ok_or(SignatureError::Missing {
        header: AUTHORIZATION,
    })?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(SignatureError::Missing {
            header: AUTHORIZATION,
        })?;
    if bool::from(token.as_bytes().ct_eq(secret)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch {
            header: AUTHORIZATION,
        })
    }
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
            verify_signature(SourceFormat::Gitea, &signed, &body, Some(SECRET)),
            Ok(())
        );
        let other_secret = verify_signature(SourceFormat::Gitea, &signed, &body, Some(b"other"));
        assert_eq!(
            other_secret,
            Err(SignatureError::Mismatch {
                header: GITEA_HEADER
            })
        );
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert!(verify_signature(SourceFormat::Gitea, &signed, &tampered, Some(SECRET)).is_err());
        for bad in ["zz", "00", &good[..good.len() - 2]] {
            let h = headers(&[("x-gitea-signature", bad)]);
            assert_eq!(
                verify_signature(SourceFormat::Gitea, &h, &body, Some(SECRET)),
                Err(SignatureError::Mismatch {
                    header: GITEA_HEADER
                }),
                "{bad}"
            );
        }
        // Gitea without a secret sends the header empty.
        let unsigned = headers(&[("x-gitea-event", "package"), ("x-gitea-signature", "")]);
        let missing = verify_signature(SourceFormat::Gitea, &unsigned, &body, Some(SECRET));
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
            verify_signature(SourceFormat::Gitea, &h, body, Some(SECRET)),
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
                verify_signature(format, &signed, &body, Some(SECRET)),
                Ok(())
            );
            let wrong = headers(&[(
                "x-hub-signature-256",
                &format!("sha256={}", signature_hex(b"wrong", &body)),
            )]);
            assert_eq!(
                verify_signature(format, &wrong, &body, Some(SECRET)),
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
                    verify_signature(format, &missing, &body, Some(SECRET)),
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
            assert_eq!(verify_signature(format, &garbage, b"{}", None), Ok(()));
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
                Some(SECRET)
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
                    Some(SECRET)
                ),
                Err(expected),
                "{value}"
            );
        }
        assert_eq!(
            verify_signature(format, &headers(&[]), b"{}", Some(SECRET)),
            Err(SignatureError::Missing {
                header: AUTHORIZATION
            })
        );
    }

    #[test]
    fn docker_hub_cannot_prove_it_and_is_refused_with_a_secret_configured() {
        let refused = verify_signature(SourceFormat::DockerHub, &headers(&[]), b"{}", Some(SECRET));
        assert_eq!(
            refused,
            Err(SignatureError::Unsignable {
                format: SourceFormat::DockerHub
            })
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("allow_unsigned_dockerhub")
        );
    }
}
