//! Gitea (and Forgejo) `package` events: `{"action": "created", "package": {"type":
//! "container", "owner": {"login"}, "name", "version", "html_url"}}`.
//!
//! The image lives on the Gitea host itself (`host/owner/name`), read from the package's
//! `html_url`. A multi-platform push also creates versions named by digest
//! (`sha256:…`) for the untagged platform manifests: those are ignored.

use axum::http::HeaderMap;

use super::url_host;
use crate::image_ref::{ImageRef, Tag};
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParseOptions, ParsedEvent, PayloadError, header};

/// The event name Gitea (or Forgejo, which sends both) puts in its headers.
pub(in crate::webhook) fn event_header(headers: &HeaderMap) -> Option<&str> {
    header(headers, "x-gitea-event")
        .or_else(|| header(headers, "x-forgejo-event"))
        .or_else(|| header(headers, "x-gitea-event-type"))
}

pub(in crate::webhook) fn parse(
    root: &Field<'_>,
    headers: &HeaderMap,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let event = event_header(headers).unwrap_or_default();
    if event != "package" {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::OtherEvent(event.to_string()),
            None,
        )]);
    }
    let package = root.get("package");
    let kind = package.get("type").str()?;
    let name_field = package.get("name");
    let name = name_field.str()?;
    let owner = package.get("owner").get("login");
    let owner = match owner.non_empty_str()? {
        Some(login) => login,
        None => package
            .get("owner")
            .get("username")
            .non_empty_str()?
            .ok_or_else(|| owner.malformed("is missing"))?,
    };
    let version_field = package.get("version");
    let version = version_field.str()?;
    let subject = Some(format!("{owner}/{name}:{version}"));

    if kind != "container" {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::NotContainer(kind.to_string()),
            subject,
        )]);
    }
    let action = root.get("action").str()?;
    if action != "created" {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::Action(action.to_string()),
            subject,
        )]);
    }
    if version.contains(':') {
        return Ok(vec![ParsedEvent::ignored(
            IgnoreReason::DigestVersion,
            subject,
        )]);
    }
    let html_url = package.get("html_url");
    let host = html_url
        .non_empty_str()?
        .and_then(url_host)
        .or(options.registry_host.as_deref())
        .ok_or_else(|| {
            html_url.malformed(
                "is missing or not an http(s) URL, so the registry host is unknown: \
                 configure the webhook's registry host",
            )
        })?;
    // Gitea matches owners and names case-insensitively; references must be lowercase.
    let repository = format!("{}/{}", owner.to_lowercase(), name.to_lowercase());
    let image = ImageRef::from_parts(host, &repository)
        .map_err(|e| name_field.malformed(format!("does not make an image reference: {e}")))?;
    let tag = Tag::parse(version)
        .map_err(|e| version_field.malformed(format!("is not a valid tag: {e}")))?;
    Ok(vec![ParsedEvent::push(&image, tag, None)])
}

#[cfg(test)]
mod tests {
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    fn gitea_headers(event: &str) -> axum::http::HeaderMap {
        // What Gitea sends, including its GitHub-compatible headers.
        headers(&[
            ("content-type", "application/json"),
            ("x-gitea-delivery", "7a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"),
            ("x-gitea-event", event),
            ("x-gitea-event-type", event),
            ("x-gitea-signature", ""),
            ("x-github-event", event),
            ("x-github-event-type", event),
            ("x-hub-signature-256", "sha256="),
        ])
    }

    fn edited(file: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut body: serde_json::Value = serde_json::from_slice(&testdata(file)).unwrap();
        edit(&mut body);
        body.to_string()
    }

    #[test]
    fn created_container_version_is_a_push_on_the_gitea_host() {
        let parsed = parse_file("gitea_package_created.json", &gitea_headers("package"));
        assert_eq!(parsed.format, SourceFormat::Gitea);
        let push = only_push(&parsed);
        assert_eq!(push.image.to_string(), "git.example.com/acme/shop:dev-42");
        assert_eq!(push.image.name(), "git.example.com/acme/shop");
        assert_eq!(push.digest, None);
    }

    #[test]
    fn digest_named_version_is_ignored() {
        let parsed = parse_file(
            "gitea_package_digest_version.json",
            &gitea_headers("package"),
        );
        assert_eq!(ignored_reasons(&parsed), vec!["digest-named version"]);
    }

    #[test]
    fn deleted_and_non_container_packages_are_ignored() {
        let deleted = edited("gitea_package_created.json", |b| {
            b["action"] = "deleted".into()
        });
        let parsed = parse(&deleted, &gitea_headers("package")).unwrap();
        assert_eq!(ignored_reasons(&parsed), vec!["action deleted"]);
        let npm = edited("gitea_package_created.json", |b| {
            b["package"]["type"] = "npm".into()
        });
        let parsed = parse(&npm, &gitea_headers("package")).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec!["not a container package (npm)"]
        );
        assert_eq!(
            parsed.ignored().next().unwrap().subject.as_deref(),
            Some("Acme/shop:dev-42")
        );
    }

    #[test]
    fn other_gitea_events_are_ignored() {
        let parsed = parse(r#"{"ref": "refs/heads/main"}"#, &gitea_headers("push")).unwrap();
        assert_eq!(parsed.format, SourceFormat::Gitea);
        assert_eq!(ignored_reasons(&parsed), vec!["not a package event (push)"]);
    }

    #[test]
    fn forgejo_headers_are_read_as_gitea() {
        let headers = headers(&[
            ("content-type", "application/json"),
            ("x-forgejo-event", "package"),
        ]);
        let parsed = parse_file("gitea_package_created.json", &headers);
        assert_eq!(parsed.format, SourceFormat::Gitea);
        assert_eq!(parsed.pushes().count(), 1);
    }

    #[test]
    fn host_with_port_and_fallback_host() {
        let local = edited("gitea_package_created.json", |b| {
            b["package"]["html_url"] =
                "http://localhost:3000/Acme/-/packages/container/shop/dev-42".into()
        });
        let parsed = parse(&local, &gitea_headers("package")).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "localhost:3000/acme/shop:dev-42"
        );
        let no_url = edited("gitea_package_created.json", |b| {
            b["package"]["html_url"] = serde_json::Value::Null
        });
        let message = malformed(&no_url, &gitea_headers("package"));
        assert!(message.contains("package.html_url is missing"), "{message}");
        let options = ParseOptions {
            registry_host: Some("git.internal:3000".into()),
            ..Default::default()
        };
        let parsed = parse_payload(&gitea_headers("package"), no_url.as_bytes(), &options).unwrap();
        assert_eq!(
            only_push(&parsed).image.to_string(),
            "git.internal:3000/acme/shop:dev-42"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 4] = [
            ("package.version is missing", |b| {
                b["package"].as_object_mut().unwrap().remove("version");
            }),
            ("package.owner.login is missing", |b| {
                b["package"]["owner"] = serde_json::json!({})
            }),
            ("package.type must be a string", |b| {
                b["package"]["type"] = 3.into()
            }),
            ("package.version is not a valid tag", |b| {
                b["package"]["version"] = "-bad".into()
            }),
        ];
        for (expected, edit) in cases {
            let body = edited("gitea_package_created.json", edit);
            let message = malformed(&body, &gitea_headers("package"));
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }
}
