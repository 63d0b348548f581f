//! JFrog Artifactory's predefined webhook, domain `docker`: `{"domain": "docker",
//! "event_type": "pushed", "data": {"repo_key", "image_name", "tag", "sha256"},
//! "jpd_origin": "https://acme.jfrog.io"}`.
//!
//! The payload names a repository key, not the host Docker pulls from: that depends on the
//! installation's Docker access method. The setting `jfrog_image_host` says it, with
//! `{repo_key}` standing for the key (`acme.jfrog.io/{repo_key}` for the repository-path
//! method, `{repo_key}.jfrog.example.com` for subdomains, `jfrog.example.com:5001` for a
//! port); without it the repository-path method on `jpd_origin`'s host is assumed.

use serde_json::Value;

use super::{url_host, valid_digest};
use crate::image_ref::{ImageRef, Tag};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParseOptions, ParsedEvent, PayloadError};

/// The placeholder for the repository key in the `jfrog_image_host` setting.
pub const REPO_KEY: &str = "{repo_key}";

/// Whether the body is JFrog's: only it has `domain` beside `event_type`.
pub(in crate::webhook) fn matches(root: &Value) -> bool {
    root.get("domain").is_some() && root.get("event_type").is_some()
}

/// The image name (without tag) for `image_name` in repository `repo_key`, by the
/// `jfrog_image_host` template or else the repository-path method on `origin_host`.
pub fn image_for(
    template: Option<&str>,
    origin_host: Option<&str>,
    repo_key: &str,
    image_name: &str,
) -> Option<String> {
    let prefix = match template.map(str::trim).filter(|t| !t.is_empty()) {
        Some(template) => template.replace(REPO_KEY, repo_key),
        None => format!("{}/{repo_key}", origin_host?),
    };
    Some(format!("{}/{image_name}", prefix.trim_end_matches('/')))
}

pub(in crate::webhook) fn parse(
    root: &Field<'_>,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let domain = root.get("domain").str()?;
    let data = root.get("data");
    let key_field = data.get("repo_key");
    let name_field = data.get("image_name");
    let subject = match (key_field.non_empty_str()?, name_field.non_empty_str()?) {
        (Some(key), Some(name)) => Some(format!("{key}/{name}")),
        (key, name) => key.or(name).map(str::to_string),
    };
    let ignored = |reason| Ok(vec![ParsedEvent::ignored(reason, subject.clone())]);
    if domain != "docker" {
        return ignored(IgnoreReason::NotContainer(domain.to_string()));
    }
    match root.get("event_type").str()? {
        "pushed" => {}
        other => return ignored(IgnoreReason::Action(other.to_string())),
    }
    let origin = root.get("jpd_origin").non_empty_str()?.and_then(url_host);
    let name = image_for(
        options.jfrog_image_host.as_deref(),
        origin,
        key_field.str()?,
        name_field.str()?,
    )
    .ok_or_else(|| {
        root.get("jpd_origin").malformed(
            "is missing, so the image host is unknown: set jfrog_image_host in the settings",
        )
    })?;
    let image = ImageRef::parse(&name)
        .map_err(|e| {
            name_field.malformed(format!(
                "does not make an image reference ({name}): {e}; check jfrog_image_host in \
                 the settings"
            ))
        })?
        .without_tag();
    let tag_field = data.get("tag");
    let Some(tag) = tag_field.non_empty_str()? else {
        return ignored(IgnoreReason::NoTag);
    };
    let tag =
        Tag::parse(tag).map_err(|e| tag_field.malformed(format!("is not a valid tag: {e}")))?;
    // `sha256` is the checksum of the manifest file Artifactory stored: the manifest digest.
    let digest = data
        .get("sha256")
        .non_empty_str()?
        .map(|hex| format!("sha256:{hex}"));
    Ok(vec![ParsedEvent::push(
        &image,
        tag,
        valid_digest(digest.as_deref()),
    )])
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    fn with_host(host: &str) -> ParseOptions {
        ParseOptions {
            jfrog_image_host: Some(host.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn pushed_tag_maps_its_repo_key_by_the_setting() {
        let body = testdata("jfrog_docker_pushed.json");
        for (template, image) in [
            (
                "acme.jfrog.io/{repo_key}",
                "acme.jfrog.io/docker-remote-cache/library/ubuntu:latest",
            ),
            (
                "{repo_key}.jfrog.example.com",
                "docker-remote-cache.jfrog.example.com/library/ubuntu:latest",
            ),
            (
                "jfrog.example.com:5001",
                "jfrog.example.com:5001/library/ubuntu:latest",
            ),
        ] {
            let parsed = parse_payload(&json_headers(), &body, &with_host(template)).unwrap();
            assert_eq!(parsed.format, SourceFormat::JFrog);
            let push = only_push(&parsed);
            assert_eq!(push.image.to_string(), image, "{template}");
            assert_eq!(
                push.digest.as_deref(),
                Some("sha256:35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce")
            );
        }
    }

    #[test]
    fn without_the_setting_the_origin_host_and_repository_path_are_used() {
        let body = r#"{"domain": "docker", "event_type": "pushed", "jpd_origin": "https://acme.jfrog.io",
            "data": {"repo_key": "docker-local", "image_name": "shop", "tag": "v1", "sha256": "nothex"}}"#;
        let parsed = parse(body, &json_headers()).unwrap();
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "acme.jfrog.io/docker-local/shop:v1");
        assert_eq!(push.digest, None, "a checksum that is not one is left out");
        // The documented sample's origin is a placeholder: the setting is needed.
        let message = malformed(
            std::str::from_utf8(&testdata("jfrog_docker_pushed.json")).unwrap(),
            &json_headers(),
        );
        assert!(message.contains("jfrog_image_host"), "{message}");
    }

    #[test]
    fn deletes_and_other_domains_are_ignored() {
        let delete = r#"{"domain": "docker", "event_type": "deleted",
            "data": {"repo_key": "docker-local", "image_name": "shop", "tag": "v1"}}"#;
        let parsed = parse(delete, &json_headers()).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["action deleted"]);
        assert_eq!(
            parsed.ignored().next().unwrap().subject.as_deref(),
            Some("docker-local/shop")
        );
        let artifact = r#"{"domain": "artifact", "event_type": "deployed",
            "data": {"repo_key": "generic-local", "path": "a.txt"}}"#;
        let parsed = parse(artifact, &json_headers()).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["not a container package (artifact)"]
        );
    }
}
