//! Gitea (and Forgejo) registries: tags with their creation times from the packages API
//! (`/api/v1/packages/{owner}?type=container`), digests and the connection check through
//! the same host's OCI API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Response, Url};
use serde::Deserialize;

use super::auth::Credentials;
use super::error::RegistryError;
use super::oci::{OciClient, http_client};
use super::{CheckReport, Registry, TagInfo, valid_repository};

/// Entries per page; Gitea's default maximum.
const LIMIT: usize = 50;
/// A listing that does not end stops here.
const MAX_PAGES: usize = 1000;

pub(crate) struct GiteaClient {
    http: reqwest::Client,
    endpoint: Url,
    credentials: Credentials,
    oci: OciClient,
}

#[async_trait]
impl Registry for GiteaClient {
    /// One entry per package version; the versions of the exact package `image` of
    /// `owner` are the tags. Digest-named versions (`sha256:…`) are dropped.
    async fn list_tags(&self, repository: &str) -> Result<Vec<TagInfo>, RegistryError> {
        let (owner, image) = valid_repository(repository)?
            .split_once('/')
            .ok_or_else(|| {
                RegistryError::config(format!(
                    "Gitea repositories are owner/image, not {repository:?}"
                ))
            })?;
        let mut tags = Vec::new();
        let mut package_found = false;
        let mut entries_read = 0;
        for page in 1..=MAX_PAGES {
            let mut url = self.endpoint.clone();
            url.set_path(&format!(
                "{}/api/v1/packages/{owner}",
                self.endpoint.path().trim_end_matches('/')
            ));
            url.query_pairs_mut()
                .append_pair("type", "container")
                .append_pair("q", image)
                .append_pair("page", &page.to_string())
                .append_pair("limit", &LIMIT.to_string());
            let response = self.get(url, &format!("owner {owner}")).await?;
            let total: Option<usize> = response
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let entries: Vec<PackageVersion> = response.json().await.map_err(|e| {
                RegistryError::protocol(&self.endpoint, format!("unreadable package list ({e})"))
            })?;
            entries_read += entries.len();
            let page_len = entries.len();
            // `q` matches parts of names: keep the package whose name is exactly `image`.
            for entry in entries.into_iter().filter(|e| e.name == image) {
                package_found = true;
                if !entry.version.starts_with("sha256:") {
                    tags.push(TagInfo {
                        name: entry.version,
                        created: entry.created_at,
                        digest: None,
                    });
                }
            }
            let last_page = match total {
                Some(total) => entries_read >= total,
                None => page_len < LIMIT,
            };
            if page_len == 0 || last_page {
                break;
            }
        }
        if !package_found {
            return Err(RegistryError::NotFound {
                registry: super::error::origin(&self.endpoint),
                what: format!("repository {repository}"),
            });
        }
        Ok(tags)
    }

    async fn resolve_digest(&self, repository: &str, tag: &str) -> Result<String, RegistryError> {
        self.oci.resolve_digest(repository, tag).await
    }

    async fn check(&self, repository: Option<&str>) -> Result<CheckReport, RegistryError> {
        let mut report = self.oci.check(None).await?;
        if let Some(repository) = repository {
            let tags = self.list_tags(repository).await?;
            report.repository = Some((repository.to_string(), tags.len()));
            report.signed_in |= self.credentials.secret().is_some();
        }
        Ok(report)
    }
}

impl GiteaClient {
    pub(crate) fn new(
        endpoint: Url,
        credentials: Credentials,
    ) -> Result<GiteaClient, RegistryError> {
        Ok(GiteaClient {
            http: http_client()?,
            oci: OciClient::new(endpoint.clone(), credentials.clone().basic(), false)?,
            endpoint,
            credentials,
        })
    }

    async fn get(&self, url: Url, what: &str) -> Result<Response, RegistryError> {
        let mut request = self.http.get(url).header(ACCEPT, "application/json");
        if let Some(secret) = self.credentials.secret() {
            let mut value = HeaderValue::from_str(&format!("token {secret}")).map_err(|_| {
                RegistryError::config("the Gitea token has characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::transport(&self.endpoint, e))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            let with_credentials = self.credentials.secret().is_some();
            Err(
                RegistryError::from_response(&self.endpoint, response, what, with_credentials)
                    .await,
            )
        }
    }
}

/// One entry of Gitea's package list: a version of a package.
#[derive(Deserialize)]
struct PackageVersion {
    name: String,
    version: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}
