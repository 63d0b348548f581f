//! The OCI distribution (Docker v2) API client: tags list with paging, manifest digests
//! by HEAD, and `/v2/` for the connection check. Serves kinds `oci`, `dockerhub` (with
//! its `library/` prefix) and `ghcr`; Gitea uses it for digests.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::auth::{AuthState, BasicAuth, Challenge, Plan, Scheme, TokenEndpoint, fetch_token};
use super::error::{RegistryError, origin};
use super::paging::{PAGE_SIZE, next_link, page_after, same_origin};
use super::{CheckReport, Registry, TagInfo, valid_repository, valid_tag};

/// The manifest types we accept, so the registry answers with the digest it stored
/// (multi-arch index or single manifest) rather than converting.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// A runaway `Link` chain stops here.
const MAX_PAGES: usize = 1000;

pub(crate) struct OciClient {
    http: reqwest::Client,
    endpoint: Url,
    credentials: Option<BasicAuth>,
    /// Single-name images live under `library/` on Docker Hub.
    docker_hub: bool,
    auth: AuthState,
}

#[async_trait]
impl Registry for OciClient {
    async fn list_tags(&self, repository: &str) -> Result<Vec<TagInfo>, RegistryError> {
        let path = self.repository_path(repository)?;
        let scope = format!("repository:{path}:pull");
        let what = format!("repository {repository}");
        let mut first = self.url(&format!("v2/{path}/tags/list"));
        first
            .query_pairs_mut()
            .append_pair("n", &PAGE_SIZE.to_string());
        let mut url = first.clone();
        let mut names: HashSet<String> = HashSet::new();
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.send(Method::GET, &url, None, &scope).await?;
            let response = self.success(response, &what).await?;
            let link = next_link(response.headers(), &url);
            let page: TagsPage = response.json().await.map_err(|e| {
                RegistryError::protocol(&self.endpoint, format!("unreadable tags list ({e})"))
            })?;
            let page = page.tags.unwrap_or_default();
            let full = page.len() == PAGE_SIZE;
            let last = page.last().cloned();
            let before = tags.len();
            for name in page {
                if names.insert(name.clone()) {
                    tags.push(TagInfo::new(name));
                }
            }
            // A page that adds nothing means the registry ignores our paging: stop.
            if tags.len() == before {
                break;
            }
            url = match (link, last) {
                (Some(next), _) if same_origin(&next, &self.endpoint) => next,
                (Some(next), _) => {
                    return Err(RegistryError::protocol(
                        &self.endpoint,
                        format!(
                            "the next page of tags is on another host ({})",
                            origin(&next)
                        ),
                    ));
                }
                // Honours `n` but sends no `Link`: ask for what comes after the last tag.
                (None, Some(last)) if full => page_after(&first, &last),
                // A short page, or `n` ignored and everything sent at once.
                _ => break,
            };
        }
        Ok(tags)
    }

    async fn resolve_digest(&self, repository: &str, tag: &str) -> Result<String, RegistryError> {
        let path = self.repository_path(repository)?;
        let scope = format!("repository:{path}:pull");
        let url = self.url(&format!("v2/{path}/manifests/{}", valid_tag(tag)?));
        let what = format!("tag {tag} of {repository}");
        let head = self
            .send(Method::HEAD, &url, Some(MANIFEST_TYPES), &scope)
            .await?;
        if head.status() != StatusCode::METHOD_NOT_ALLOWED
            && let Some(digest) = digest_header(&self.success(head, &what).await?)
        {
            return Ok(digest);
        }
        // Some registries omit the digest header: hash the manifest exactly as sent.
        let get = self
            .send(Method::GET, &url, Some(MANIFEST_TYPES), &scope)
            .await?;
        let get = self.success(get, &what).await?;
        if let Some(digest) = digest_header(&get) {
            return Ok(digest);
        }
        let body = get
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(&self.endpoint, e))?;
        Ok(format!("sha256:{}", hex::encode(Sha256::digest(&body))))
    }

    async fn check(&self, repository: Option<&str>) -> Result<CheckReport, RegistryError> {
        let response = self.send(Method::GET, &self.url("v2/"), None, "").await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::protocol(
                &self.endpoint,
                "no registry API at /v2/ (HTTP 404): check that the URL points at the registry, not its web page",
            ));
        }
        self.success(response, "the registry API").await?;
        let repository = match repository {
            Some(repository) => Some((
                repository.to_string(),
                self.list_tags(repository).await?.len(),
            )),
            None => None,
        };
        Ok(CheckReport {
            endpoint: self.endpoint.to_string(),
            signed_in: self.credentials.is_some() && self.auth.asked_for_credentials(),
            repository,
        })
    }
}

impl OciClient {
    pub(crate) fn new(
        endpoint: Url,
        credentials: Option<BasicAuth>,
        docker_hub: bool,
    ) -> Result<OciClient, RegistryError> {
        Ok(OciClient {
            http: http_client()?,
            endpoint,
            credentials,
            docker_hub,
            auth: AuthState::default(),
        })
    }

    #[cfg(test)]
    pub(crate) fn with_auth_state(mut self, auth: AuthState) -> OciClient {
        self.auth = auth;
        self
    }

    fn repository_path(&self, repository: &str) -> Result<String, RegistryError> {
        let repository = valid_repository(repository)?;
        Ok(if self.docker_hub && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        })
    }

    /// `path` under the endpoint, keeping any path prefix the endpoint has.
    fn url(&self, path: &str) -> Url {
        let mut url = self.endpoint.clone();
        url.set_path(&format!(
            "{}/{path}",
            self.endpoint.path().trim_end_matches('/')
        ));
        url
    }

    /// Sends a request with what we know of the registry's auth. A client's first request
    /// is preceded by an anonymous `GET /v2/` that learns the registry's challenge (as
    /// Docker's own client does), so later requests go out once, with the right auth. A
    /// 401 after anonymous access or a cached token is answered once more, with what the
    /// new challenge says.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<Response, RegistryError> {
        if !self.auth.probed() {
            let ping = self
                .http
                .get(self.url("v2/"))
                .send()
                .await
                .map_err(|e| RegistryError::transport(&self.endpoint, e))?;
            self.learn(&ping)?;
            self.auth.mark_probed();
        }
        let mut retried = false;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            let (request, fresh_credentials) = self.authorize(request, scope).await?;
            let response = request
                .send()
                .await
                .map_err(|e| RegistryError::transport(&self.endpoint, e))?;
            // Credentials just fetched or learnt that still get a 401 are refused.
            if response.status() != StatusCode::UNAUTHORIZED || retried || fresh_credentials {
                return Ok(response);
            }
            retried = true;
            if !self.learn(&response)? {
                return Ok(response);
            }
            self.auth.forget_token(scope);
        }
    }

    /// Learns from a 401 challenge how to authenticate (Basic, or where Bearer tokens come
    /// from); whether there is something new to try.
    fn learn(&self, response: &Response) -> Result<bool, RegistryError> {
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(false);
        }
        let Some(challenge) = Challenge::from_headers(response.headers()) else {
            return Ok(false);
        };
        match challenge.scheme {
            Scheme::Bearer => {
                let realm = challenge
                    .realm
                    .as_deref()
                    .and_then(|realm| self.endpoint.join(realm).ok())
                    .ok_or_else(|| {
                        RegistryError::protocol(
                            &self.endpoint,
                            "a Bearer challenge without a realm",
                        )
                    })?;
                self.auth.learn_token_endpoint(TokenEndpoint {
                    realm,
                    service: challenge.service,
                });
                Ok(true)
            }
            Scheme::Basic if self.credentials.is_some() => {
                self.auth.learn_basic();
                Ok(true)
            }
            Scheme::Basic => Ok(false),
        }
    }

    /// Adds the auth the registry wants, fetching a Bearer token if none is cached. The
    /// flag says whether these credentials are fresh (not a cached token, not anonymous).
    async fn authorize(
        &self,
        request: RequestBuilder,
        scope: &str,
    ) -> Result<(RequestBuilder, bool), RegistryError> {
        Ok(match (self.auth.plan(scope), &self.credentials) {
            (Plan::Basic, Some(credentials)) => (credentials.apply(request), true),
            (Plan::Anonymous | Plan::Basic, _) => (request, false),
            (Plan::Bearer(token), _) => (request.bearer_auth(token), false),
            (Plan::FetchToken(endpoint), credentials) => {
                let (token, lifetime) =
                    fetch_token(&self.http, &endpoint, scope, credentials.as_ref()).await?;
                self.auth.store_token(scope, token.clone(), lifetime);
                (request.bearer_auth(token), true)
            }
        })
    }

    async fn success(&self, response: Response, what: &str) -> Result<Response, RegistryError> {
        if response.status().is_success() {
            Ok(response)
        } else {
            let with_credentials = self.credentials.is_some();
            Err(
                RegistryError::from_response(&self.endpoint, response, what, with_credentials)
                    .await,
            )
        }
    }
}

/// The one HTTP client of a registry: rustls with the system's CAs, bounded waits.
pub(crate) fn http_client() -> Result<reqwest::Client, RegistryError> {
    crate::http_client::builder()
        .user_agent(concat!("docker-watcher/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| RegistryError::config(format!("cannot set up the HTTP client ({e})")))
}

#[derive(Deserialize)]
struct TagsPage {
    tags: Option<Vec<String>>,
}

fn digest_header(response: &Response) -> Option<String> {
    let digest = response
        .headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .trim();
    digest.contains(':').then(|| digest.to_string())
}
