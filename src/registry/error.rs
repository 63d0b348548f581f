//! [`RegistryError`]: what went wrong talking to a registry, in words a person can act
//! on, and the translation from HTTP statuses and transport failures into it.
//!
//! Messages name the registry's URL and the repository, never a credential or token.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode, Url};

use super::auth::Challenge;

/// Why a registry call failed. Callers branch on the variant: the poller backs off, the
/// API shows the message as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid registry settings: {message}")]
    Config { message: String },

    #[error(
        "cannot reach the registry at {registry}: {reason}; check the address and that the registry is running"
    )]
    Unreachable { registry: String, reason: String },

    #[error("TLS with the registry at {registry} failed: {reason}; {}", tls_hint(*.plain_http))]
    Tls {
        registry: String,
        reason: String,
        /// The server answered the TLS handshake with something else, most likely plain
        /// HTTP.
        plain_http: bool,
    },

    #[error("the registry at {registry} answered 401 Unauthorized: {}", unauthorized_hint(*.with_credentials))]
    Unauthorized {
        registry: String,
        with_credentials: bool,
    },

    #[error(
        "the registry at {registry} denies access to {what}: check that it exists and that the credentials (if any) may pull it"
    )]
    Forbidden { registry: String, what: String },

    #[error("{what} not found at {registry}: check the name and that it was pushed")]
    NotFound { registry: String, what: String },

    #[error("the registry at {registry} is rate-limiting requests (429): {}", rate_limit_hint(*.retry_after))]
    RateLimited {
        registry: String,
        retry_after: Option<Duration>,
    },

    #[error("unexpected answer from the registry at {registry}: {message}")]
    Protocol { registry: String, message: String },
}

impl RegistryError {
    pub(crate) fn config(message: impl Into<String>) -> RegistryError {
        RegistryError::Config {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(registry: &Url, message: impl Into<String>) -> RegistryError {
        RegistryError::Protocol {
            registry: origin(registry),
            message: message.into(),
        }
    }

    /// A request that got no HTTP answer: DNS, refused connection, TLS, timeout.
    pub(crate) fn transport(registry: &Url, error: reqwest::Error) -> RegistryError {
        let registry_name = origin(registry);
        let mut innermost: &dyn std::error::Error = &error;
        let mut refused = false;
        let mut dns = false;
        let mut source = error.source();
        while let Some(cause) = source {
            dns |= cause.to_string() == "dns error";
            refused |= cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            innermost = cause;
            source = cause.source();
        }
        let detail = innermost.to_string();
        if error.is_timeout() {
            RegistryError::Unreachable {
                registry: registry_name,
                reason: "no answer in time".into(),
            }
        } else if dns {
            RegistryError::Unreachable {
                registry: registry_name,
                reason: format!("the host name does not resolve ({detail})"),
            }
        } else if refused {
            RegistryError::Unreachable {
                registry: registry_name,
                reason: "connection refused".into(),
            }
        } else if error.is_connect() && error.url().is_some_and(|u| u.scheme() == "https") {
            RegistryError::Tls {
                registry: registry_name,
                plain_http: detail.contains("InvalidContentType")
                    || detail.contains("corrupt message"),
                reason: detail,
            }
        } else if error.is_decode() || error.is_body() {
            RegistryError::protocol(registry, format!("unreadable response body ({detail})"))
        } else {
            RegistryError::Unreachable {
                registry: registry_name,
                reason: detail,
            }
        }
    }

    /// The error for a response that is not a success. `what` names the thing asked for
    /// (`repository acme/shop`, `tag v1 of acme/shop`); `with_credentials` says whether
    /// credentials were configured.
    pub(crate) async fn from_response(
        registry: &Url,
        response: Response,
        what: &str,
        with_credentials: bool,
    ) -> RegistryError {
        let status = response.status();
        let headers = response.headers().clone();
        let registry_name = origin(registry);
        match status {
            StatusCode::UNAUTHORIZED => {
                let scope_denied = Challenge::from_headers(&headers)
                    .is_some_and(|c| c.error.as_deref() == Some("insufficient_scope"));
                // Token registries (Docker Hub, GHCR) answer this way for a private
                // repository and for one that does not exist alike.
                if scope_denied {
                    RegistryError::Forbidden {
                        registry: registry_name,
                        what: what.to_string(),
                    }
                } else {
                    RegistryError::Unauthorized {
                        registry: registry_name,
                        with_credentials,
                    }
                }
            }
            StatusCode::FORBIDDEN => RegistryError::Forbidden {
                registry: registry_name,
                what: what.to_string(),
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: registry_name,
                what: what.to_string(),
            },
            StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited {
                registry: registry_name,
                retry_after: retry_after(&headers),
            },
            _ => {
                let body = response.text().await.unwrap_or_default();
                let excerpt: String = body.trim().chars().take(200).collect();
                let message = if excerpt.is_empty() {
                    format!("HTTP {status} for {what}")
                } else {
                    format!("HTTP {status} for {what}: {excerpt}")
                };
                RegistryError::Protocol {
                    registry: registry_name,
                    message,
                }
            }
        }
    }
}

/// `scheme://host:port` of a URL: enough to name the registry, never a path or query.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn tls_hint(plain_http: bool) -> &'static str {
    if plain_http {
        "the server seems to speak plain HTTP: mark the registry insecure to use http"
    } else {
        "check the certificate (a private CA belongs in the system trust store) and the host name"
    }
}

fn unauthorized_hint(with_credentials: bool) -> &'static str {
    if with_credentials {
        "check the username and token"
    } else {
        "credentials are required: set a username and token"
    }
}

fn rate_limit_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("wait {} s, and poll less often", wait.as_secs()),
        None => "wait, and poll less often".to_string(),
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}
