//! GitHub `registry_package` and `package` events (actions `published`, `updated`) for
//! container packages on ghcr.io. The tag is at
//! `package_version.container_metadata.tag.name`; the image at
//! `package_version.package_url`, or `ghcr.io/<namespace>/<name>` when that is missing.

use axum::http::HeaderMap;

use super::strip_tag_and_digest;
use crate::image_ref::{ImageRef, Tag, is_valid_digest};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParsedEvent, PayloadError, header};

const GITHUB_REGISTRY: &str = "ghcr.io";

pub(in crate::webhook) fn event_header(headers: &HeaderMap) -> Option<&str> {
    header(headers, "x-github-event")
}

pub(in crate::webhook) fn parse(
    root: &Field<'_>,
    headers: &HeaderMap,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let event = event_header(headers).unwrap_or_default();
    let ignored = |reason, subject| Ok(vec![ParsedEvent::ignored(reason, subject)]);
    match event {
        "package" | "registry_package" => {}
        "ping" => return ignored(IgnoreReason::Ping, None),
        other => return ignored(IgnoreReason::OtherEvent(other.to_string()), None),
    }
    // The body names the package after the event; accept the other name too.
    let package = match root.get(event) {
        field if field.is_present() => field,
        _ => root.get(if event == "package" {
            "registry_package"
        } else {
            "package"
        }),
    };
    if !package.is_present() {
        return Err(root.get(event).malformed("is missing"));
    }
    let name = package.get("name").str()?;
    let subject = Some(name.to_string());
    let kind = match package.get("package_type").non_empty_str()? {
        Some(kind) => kind,
        None => package.get("ecosystem").str()?,
    };
    if !kind.eq_ignore_ascii_case("container") {
        return ignored(IgnoreReason::NotContainer(kind.to_lowercase()), subject);
    }
    let action = root.get("action").str()?;
    if action != "published" && action != "updated" {
        return ignored(IgnoreReason::Action(action.to_string()), subject);
    }
    let version = package.get("package_version");
    let image = image(&package, &version)?;
    let tag_field = version.get("container_metadata").get("tag");
    let name_field = tag_field.get("name");
    let Some(tag) = name_field.non_empty_str()? else {
        return ignored(IgnoreReason::NoTag, Some(image.to_string()));
    };
    let tag =
        Tag::parse(tag).map_err(|e| name_field.malformed(format!("is not a valid tag: {e}")))?;
    let digest_field = tag_field.get("digest");
    let digest = match digest_field.non_empty_str()? {
        Some(digest) if is_valid_digest(digest) => Some(digest.to_string()),
        Some(digest) => {
            return Err(digest_field.malformed(format!("{digest:?} is not a digest")));
        }
        // For containers the version's own name is its manifest digest.
        None => version
            .get("version")
            .non_empty_str()?
            .filter(|v| is_valid_digest(v))
            .map(str::to_string),
    };
    Ok(vec![ParsedEvent::push(&image, tag, digest)])
}

/// The image without tag: from `package_url` (`ghcr.io/owner/name[:tag]`), else from the
/// namespace (owner) and name. GHCR names are lowercase whatever the owner's spelling.
fn image(package: &Field<'_>, version: &Field<'_>) -> Result<ImageRef, PayloadError> {
    let url_field = version.get("package_url");
    if let Some(url) = url_field.non_empty_str()? {
        let name = strip_tag_and_digest(url).to_lowercase();
        return ImageRef::parse(&name)
            .map(|image| image.without_tag())
            .map_err(|e| url_field.malformed(format!("is not a valid image reference: {e}")));
    }
    let namespace_field = package.get("namespace");
    let namespace = match namespace_field.non_empty_str()? {
        Some(namespace) => namespace,
        None => package
            .get("owner")
            .get("login")
            .non_empty_str()?
            .ok_or_else(|| namespace_field.malformed("is missing, and so is owner.login"))?,
    };
    let name_field = package.get("name");
    let repository = format!("{namespace}/{}", name_field.str()?).to_lowercase();
    ImageRef::from_parts(GITHUB_REGISTRY, &repository)
        .map_err(|e| name_field.malformed(format!("does not make an image reference: {e}")))
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    fn github_headers(event: &str) -> axum::http::HeaderMap {
        headers(&[
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/5f1e2d3"),
            ("x-github-delivery", "0b1c2d3e-4f50-11ef-8a9b-0c1d2e3f4a5b"),
            ("x-github-event", event),
            ("x-github-hook-id", "498765432"),
        ])
    }

    fn edited(file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut body: serde_json::Value = serde_json::from_slice(&testdata(file)).unwrap();
        edit(&mut body);
        body.to_string()
    }

    #[test]
    fn published_registry_package_is_a_push_on_ghcr() {
        let parsed = parse_file(
            "github_registry_package_published.json",
            &github_headers("registry_package"),
        );
        assert_eq!(parsed.format, SourceFormat::GitHub);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "ghcr.io/acme-org/shop:v1.4.0");
        assert_eq!(push.tag.as_str(), "v1.4.0");
        assert_eq!(push.digest.as_deref(), Some(DIGEST));
    }

    #[test]
    fn untagged_package_version_is_ignored() {
        let parsed = parse_file("github_package_untagged.json", &github_headers("package"));
        assert_eq!(ignored_reasons(&parsed), vec!["no tag"]);
        assert_eq!(
            parsed.ignored().next().unwrap().subject.as_deref(),
            Some("ghcr.io/acme-org/shop")
        );
    }

    #[test]
    fn package_event_without_package_url_uses_namespace_and_name() {
        let body = edited("github_registry_package_published.json", |b| {
            let mut package = b["registry_package"].take();
            package["package_version"]
                .as_object_mut()
                .unwrap()
                .remove("package_url");
            package["name"] = "shop/API".into();
            b.as_object_mut().unwrap().remove("registry_package");
            b["package"] = package;
        });
        let parsed = parse(&body, &github_headers("package")).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "ghcr.io/acme-org/shop/api:v1.4.0"
        );
    }

    #[test]
    fn updated_counts_and_other_actions_do_not() {
        let updated = edited("github_registry_package_published.json", |b| {
            b["action"] = "updated".into()
        });
        let parsed = parse(&updated, &github_headers("registry_package")).unwrap();
        assert_eq!(parsed.pushes().count(), 1);
        let deleted = edited("github_registry_package_published.json", |b| {
            b["action"] = "deleted".into()
        });
        let parsed = parse(&deleted, &github_headers("registry_package")).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["action deleted"]);
    }

    #[test]
    fn ping_other_events_and_other_ecosystems_are_ignored() {
        let ping = parse(
            r#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#,
            &github_headers("ping"),
        )
        .unwrap();
        assert_eq!(ping.format, SourceFormat::GitHub);
        assert_eq!(ignored_reasons(&ping), vec!["ping"]);
        let push = parse(r#"{"ref": "refs/heads/main"}"#, &github_headers("push")).unwrap();
        assert_eq!(ignored_reasons(&push), vec!["not a package event (push)"]);
        let npm = edited("github_registry_package_published.json", |b| {
            b["registry_package"]["package_type"] = "NPM".into()
        });
        let parsed = parse(&npm, &github_headers("registry_package")).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["not a container package (npm)"]
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert!(
            malformed(r#"{"action": "published"}"#, &github_headers("package"))
                .contains("package is missing")
        );
        let bad_url = edited("github_registry_package_published.json", |b| {
            b["registry_package"]["package_version"]["package_url"] = "ghcr.io//x:1".into()
        });
        let message = malformed(&bad_url, &github_headers("registry_package"));
        assert!(
            message.contains("registry_package.package_version.package_url is not a valid"),
            "{message}"
        );
        let bad_tag = edited("github_registry_package_published.json", |b| {
            b["registry_package"]["package_version"]["container_metadata"]["tag"]["name"] =
                ".x".into()
        });
        let message = malformed(&bad_tag, &github_headers("registry_package"));
        assert!(
            message.contains("container_metadata.tag.name is not a valid tag"),
            "{message}"
        );
    }
}
