//! What a webhook request says: which format it is in (from headers, then from the body's
//! shape) and the push events it carries, each kept or ignored with a reason.
//!
//! Detection order: a Distribution events content type; an `X-Gitea-Event` (or
//! `X-Forgejo-Event`) header, checked before GitHub's because Gitea sends
//! `X-GitHub-Event` too; an `X-GitHub-Event` header; then the body's shape:
//! `{"events": [...]}`, an Event Grid array (or one Azure CloudEvent), Harbor's
//! `event_data` or `harbor.*` CloudEvent, Quay's `docker_url`, JFrog's `domain`, a Pub/Sub
//! `message`, an ACR `action` with `target`, `{"push_data": ...}`, `{"image": ...}`.
//!
//! GitHub and Gitea may send their JSON form-encoded (`payload=<url-encoded JSON>`); such
//! a body is read when one of their event headers says who sent it.

use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use serde_json::Value;

use super::formats;
use super::json::Field;
use crate::image_ref::{ImageRef, Tag};

/// Where a webhook came from, as told by its headers and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// `{"image": "host/org/app:tag", "digest"?: "sha256:…"}` from a CI job or script.
    Generic,
    /// A Docker Distribution registry's `notifications.endpoints`.
    Distribution,
    /// Gitea's (or Forgejo's) `package` event.
    Gitea,
    /// GitHub's `registry_package` or `package` event.
    GitHub,
    /// Docker Hub's repository webhook.
    DockerHub,
    /// Harbor 2.x, Default or CloudEvents payload format.
    Harbor,
    /// Quay's `repo_push` notification.
    Quay,
    /// Azure Container Registry's own webhook (one Distribution-shaped event).
    Acr,
    /// Azure Container Registry events delivered by Azure Event Grid.
    EventGrid,
    /// JFrog Artifactory's `docker` domain webhook.
    JFrog,
    /// Google Container Registry / Artifact Registry through a Pub/Sub push subscription.
    GooglePubSub,
}

/// Most events one request may carry (a Distribution envelope); more is refused whole.
/// Registries send a handful per push, so this only stops amplification.
pub const MAX_EVENTS: usize = 100;

/// What the caller knows that a payload may not say.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// Registry host (`host[:port]`) to use when a Distribution event has no
    /// `request.host`, or a Gitea event no `package.html_url`.
    pub registry_host: Option<String>,
    /// The `jfrog_image_host` setting: where JFrog repository keys are pulled from.
    pub jfrog_image_host: Option<String>,
}

/// One request, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedPayload {
    pub format: SourceFormat,
    /// In the order the payload lists them; may be empty (a Distribution envelope with no
    /// events).
    pub events: Vec<ParsedEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedEvent {
    Push(PushEvent),
    Ignored(IgnoredEvent),
}

/// A tag was pushed: something to match against projects and stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushEvent {
    /// The image at the pushed tag (`registry/repository:tag`), never with a digest.
    pub image: ImageRef,
    /// The same tag as in `image`, for callers that match tag patterns.
    pub tag: Tag,
    /// The manifest digest, when the payload names a valid one.
    pub digest: Option<String>,
}

/// An event that starts nothing, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredEvent {
    pub reason: IgnoreReason,
    /// What the event was about, as far as the payload says (`host/repo:tag`, a package
    /// name), for the event log; `None` when it says nothing useful.
    pub subject: Option<String>,
}

/// Why an event is ignored. `Display` gives the short reason the handler answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// GitHub's `ping` sent when a webhook is created.
    Ping,
    /// A Gitea/GitHub event of another kind (push, issues, …).
    OtherEvent(String),
    /// An action other than a publish (`deleted`, `delete`, `mount`, …).
    Action(String),
    /// A registry pull.
    Pull,
    /// A blob (layer or config) push: the manifest push that follows is the event.
    LayerPush,
    /// A manifest pushed by digest only, or a package version without a tag.
    NoTag,
    /// A Gitea package version named by its digest (an untagged manifest).
    DigestVersion,
    /// A package that is not a container image (npm, maven, …).
    NotContainer(String),
    /// One event of a Distribution envelope that cannot be read; the rest still count.
    Invalid(String),
}

/// Why a request could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Bad JSON, a missing or mistyped field, an invalid image reference: answer 400.
    #[error("invalid webhook payload: {field} {reason}")]
    Malformed { field: String, reason: String },
    /// A content type that is neither JSON nor a registry's events type: answer 415.
    #[error("unsupported content type {content_type:?}: send the webhook body as application/json")]
    UnsupportedMediaType { content_type: String },
    /// More than [`MAX_EVENTS`] events in one request: answer 413.
    #[error(
        "the request carries {count} events, more than the {MAX_EVENTS} one request may: \
         send them in smaller batches (a registry's notifications config: lower its \
         threshold or ignore pulls and blobs)"
    )]
    TooManyEvents { count: usize },
}

/// Reads a webhook request into its format and events.
pub fn parse_payload(
    headers: &HeaderMap,
    body: &[u8],
    options: &ParseOptions,
) -> Result<ParsedPayload, PayloadError> {
    let (format, root) = read(headers, body)?;
    let root = Field::root(&root);
    let events = match format {
        SourceFormat::Generic => formats::generic::parse(&root)?,
        SourceFormat::Distribution => formats::distribution::parse(&root, options)?,
        SourceFormat::Gitea => formats::gitea::parse(&root, headers, options)?,
        SourceFormat::GitHub => formats::github::parse(&root, headers)?,
        SourceFormat::DockerHub => formats::docker_hub::parse(&root)?,
        SourceFormat::Harbor => formats::harbor::parse(&root, options)?,
        SourceFormat::Quay => formats::quay::parse(&root)?,
        SourceFormat::Acr => formats::distribution::parse_single(root_value(&root), options)?,
        SourceFormat::EventGrid => formats::event_grid::parse(root_value(&root), options)?,
        SourceFormat::JFrog => formats::jfrog::parse(&root, options)?,
        SourceFormat::GooglePubSub => formats::pubsub::parse(&root)?,
    };
    Ok(ParsedPayload { format, events })
}

/// Only the format, e.g. to check a signature before reading the events.
pub fn detect_format(headers: &HeaderMap, body: &[u8]) -> Result<SourceFormat, PayloadError> {
    read(headers, body).map(|(format, _)| format)
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 11] = [
        SourceFormat::Generic,
        SourceFormat::Distribution,
        SourceFormat::Gitea,
        SourceFormat::GitHub,
        SourceFormat::DockerHub,
        SourceFormat::Harbor,
        SourceFormat::Quay,
        SourceFormat::Acr,
        SourceFormat::EventGrid,
        SourceFormat::JFrog,
        SourceFormat::GooglePubSub,
    ];

    /// Stable name for logs, answers and the event record.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Generic => "generic",
            SourceFormat::Distribution => "distribution",
            SourceFormat::Gitea => "gitea",
            SourceFormat::GitHub => "github",
            SourceFormat::DockerHub => "docker_hub",
            SourceFormat::Harbor => "harbor",
            SourceFormat::Quay => "quay",
            SourceFormat::Acr => "acr",
            SourceFormat::EventGrid => "event_grid",
            SourceFormat::JFrog => "jfrog",
            SourceFormat::GooglePubSub => "google_pubsub",
        }
    }

    /// The inverse of [`SourceFormat::as_str`].
    pub fn parse(name: &str) -> Option<SourceFormat> {
        SourceFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ParsedPayload {
    pub fn pushes(&self) -> impl Iterator<Item = &PushEvent> {
        self.events.iter().filter_map(|e| match e {
            ParsedEvent::Push(push) => Some(push),
            ParsedEvent::Ignored(_) => None,
        })
    }

    pub fn ignored(&self) -> impl Iterator<Item = &IgnoredEvent> {
        self.events.iter().filter_map(|e| match e {
            ParsedEvent::Ignored(ignored) => Some(ignored),
            ParsedEvent::Push(_) => None,
        })
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::Ping => f.write_str("ping"),
            IgnoreReason::OtherEvent(event) => write!(f, "not a package event ({event})"),
            IgnoreReason::Action(action) => write!(f, "action {action}"),
            IgnoreReason::Pull => f.write_str("pull event"),
            IgnoreReason::LayerPush => f.write_str("layer push"),
            IgnoreReason::NoTag => f.write_str("no tag"),
            IgnoreReason::DigestVersion => f.write_str("digest-named version"),
            IgnoreReason::NotContainer(kind) => write!(f, "not a container package ({kind})"),
            IgnoreReason::Invalid(why) => write!(f, "invalid event: {why}"),
        }
    }
}

impl PayloadError {
    /// The HTTP status the webhook handler answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            PayloadError::Malformed { .. } => StatusCode::BAD_REQUEST,
            PayloadError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

impl PayloadError {
    /// Refuses a request of more than [`MAX_EVENTS`] events, counted before any is read:
    /// each costs a record and maybe a deploy.
    pub(super) fn check_count(count: usize) -> Result<(), PayloadError> {
        if count > MAX_EVENTS {
            return Err(PayloadError::TooManyEvents { count });
        }
        Ok(())
    }

    /// The message without the "invalid webhook payload" lead, to nest in another.
    pub(super) fn detail(&self) -> String {
        match self {
            PayloadError::Malformed { field, reason } => format!("{field} {reason}"),
            PayloadError::UnsupportedMediaType { .. } | PayloadError::TooManyEvents { .. } => {
                self.to_string()
            }
        }
    }
}

impl ParsedEvent {
    pub(super) fn push(image: &ImageRef, tag: Tag, digest: Option<String>) -> ParsedEvent {
        ParsedEvent::Push(PushEvent {
            image: image.with_tag(tag.clone()),
            tag,
            digest,
        })
    }

    pub(super) fn ignored(reason: IgnoreReason, subject: Option<String>) -> ParsedEvent {
        ParsedEvent::Ignored(IgnoredEvent { reason, subject })
    }
}

/// What the Content-Type header says about the body.
enum BodyKind {
    DistributionEvents,
    Json,
    /// `application/x-www-form-urlencoded`: GitHub's default, and a Gitea option.
    Form,
    /// No Content-Type: read it as JSON anyway, many scripts forget the header.
    Unlabelled,
}

fn read(headers: &HeaderMap, body: &[u8]) -> Result<(SourceFormat, Value), PayloadError> {
    let kind = body_kind(headers)?;
    let root = match kind {
        BodyKind::Form => parse_json(&form_payload(body)?)?,
        _ => parse_json(body)?,
    };
    let format = match kind {
        BodyKind::DistributionEvents => SourceFormat::Distribution,
        BodyKind::Json | BodyKind::Unlabelled | BodyKind::Form => detect(headers, &root)?,
    };
    Ok((format, root))
}

/// The JSON in a form-encoded body's `payload` field.
fn form_payload(body: &[u8]) -> Result<Vec<u8>, PayloadError> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value.into_owned().into_bytes())
        .ok_or_else(|| PayloadError::Malformed {
            field: "payload".to_string(),
            reason: "is missing from the form-encoded body: GitHub and Gitea send their \
                     JSON there"
                .to_string(),
        })
}

/// The JSON value at the root (always present: `read` made it).
fn root_value<'a>(root: &Field<'a>) -> &'a Value {
    root.value().unwrap_or(&Value::Null)
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, PayloadError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(BodyKind::Unlabelled);
    };
    let unsupported = || PayloadError::UnsupportedMediaType {
        content_type: String::from_utf8_lossy(value.as_bytes())
            .chars()
            .take(100)
            .collect(),
    };
    let text = value.to_str().map_err(|_| unsupported())?;
    let form_sender = formats::gitea::event_header(headers).is_some()
        || formats::github::event_header(headers).is_some();
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence.is_empty() {
        Ok(BodyKind::Unlabelled)
    } else if essence.starts_with("application/vnd.docker.distribution.events.")
        && essence.ends_with("+json")
    {
        Ok(BodyKind::DistributionEvents)
    } else if essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
    {
        Ok(BodyKind::Json)
    } else if essence == "application/x-www-form-urlencoded" && form_sender {
        Ok(BodyKind::Form)
    } else if formats::pubsub::unwrapped_with_metadata(headers) {
        Ok(BodyKind::Unlabelled)
    } else {
        Err(unsupported())
    }
}

fn parse_json(body: &[u8]) -> Result<Value, PayloadError> {
    let malformed = |reason: String| PayloadError::Malformed {
        field: "body".to_string(),
        reason,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(malformed(
            "is empty: send a JSON object such as {\"image\": \"host/org/app:tag\"}".to_string(),
        ));
    }
    let root: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("is not valid JSON ({e})")))?;
    if !root.is_object() && !formats::event_grid::matches(&root) {
        return Err(malformed(
            "must be a JSON object (or an Azure Event Grid array of events)".to_string(),
        ));
    }
    Ok(root)
}

fn detect(headers: &HeaderMap, root: &Value) -> Result<SourceFormat, PayloadError> {
    if formats::gitea::event_header(headers).is_some() {
        return Ok(SourceFormat::Gitea);
    }
    if formats::github::event_header(headers).is_some() {
        return Ok(SourceFormat::GitHub);
    }
    if root.get("events").is_some_and(Value::is_array) {
        return Ok(SourceFormat::Distribution);
    }
    if formats::event_grid::matches(root) {
        return Ok(SourceFormat::EventGrid);
    }
    if formats::harbor::matches(root) {
        return Ok(SourceFormat::Harbor);
    }
    if formats::quay::matches(root) {
        return Ok(SourceFormat::Quay);
    }
    if formats::jfrog::matches(root) {
        return Ok(SourceFormat::JFrog);
    }
    if formats::pubsub::matches(root) {
        return Ok(SourceFormat::GooglePubSub);
    }
    if root.get("action").is_some() && root.get("target").is_some_and(Value::is_object) {
        return Ok(SourceFormat::Acr);
    }
    if root.get("push_data").is_some() {
        return Ok(SourceFormat::DockerHub);
    }
    if root.get("image").is_some() {
        return Ok(SourceFormat::Generic);
    }
    Err(PayloadError::Malformed {
        field: "body".to_string(),
        reason: "is in no known webhook format: send {\"image\": \"host/org/app:tag\"}, or \
                 point a registry's own webhook here (Docker Distribution, Harbor, Quay, \
                 Azure Container Registry or its Event Grid events, JFrog Artifactory, \
                 Google Pub/Sub, Gitea, GitHub, Docker Hub)"
            .to_string(),
    })
}

/// One header's value as text; absent when missing, empty or not visible ASCII.
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::test_support::*;
    use proptest::prelude::*;

    #[test]
    fn content_types_that_are_not_json_answer_415() {
        for content_type in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/xml",
        ] {
            let error = parse(
                r#"{"image": "nginx:1"}"#,
                &headers(&[("content-type", content_type)]),
            )
            .unwrap_err();
            assert!(
                matches!(error, PayloadError::UnsupportedMediaType { .. }),
                "{content_type}: {error:?}"
            );
            assert_eq!(error.status_code().as_u16(), 415);
            assert!(error.to_string().contains("application/json"), "{error}");
        }
    }

    #[test]
    fn github_and_gitea_form_encoded_bodies_are_read() {
        for (file, event_header, format) in [
            (
                "github_registry_package_published.json",
                ("x-github-event", "registry_package"),
                SourceFormat::GitHub,
            ),
            (
                "gitea_package_created.json",
                ("x-gitea-event", "package"),
                SourceFormat::Gitea,
            ),
        ] {
            let json = String::from_utf8(testdata(file)).unwrap();
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &json)
                .finish();
            let headers = headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                event_header,
            ]);
            let from_form = parse(&form, &headers).unwrap_or_else(|e| panic!("{file}: {e}"));
            let from_json = parse(&json, &json_headers_with(event_header)).unwrap();
            assert_eq!(from_form, from_json, "{file}");
            assert_eq!(from_form.format, format);
            assert_eq!(from_form.pushes().count(), 1, "{file}");
        }
        let no_payload = parse(
            "other=1",
            &headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-github-event", "package"),
            ]),
        )
        .unwrap_err();
        assert!(
            no_payload.to_string().contains("payload is missing"),
            "{no_payload}"
        );
    }

    fn json_headers_with(pair: (&str, &str)) -> HeaderMap {
        headers(&[("content-type", "application/json"), pair])
    }

    #[test]
    fn every_new_sender_is_told_apart_by_its_shape() {
        for (file, format) in [
            ("harbor_push.json", SourceFormat::Harbor),
            ("harbor_cloudevents_push.json", SourceFormat::Harbor),
            ("quay_repo_push.json", SourceFormat::Quay),
            ("acr_push.json", SourceFormat::Acr),
            ("event_grid_acr_push.json", SourceFormat::EventGrid),
            (
                "event_grid_acr_push_cloudevents.json",
                SourceFormat::EventGrid,
            ),
            (
                "event_grid_subscription_validation.json",
                SourceFormat::EventGrid,
            ),
            ("jfrog_docker_pushed.json", SourceFormat::JFrog),
            ("gcr_pubsub_push.json", SourceFormat::GooglePubSub),
        ] {
            assert_eq!(
                detect_format(&json_headers(), &testdata(file)),
                Ok(format),
                "{file}"
            );
        }
    }

    #[test]
    fn json_content_types_are_accepted_with_parameters_and_any_case() {
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "text/json",
            "application/vnd.acme.ci+json",
            "",
        ] {
            let parsed = parse(
                r#"{"image": "nginx:1"}"#,
                &headers(&[("content-type", content_type)]),
            )
            .unwrap_or_else(|e| panic!("{content_type}: {e}"));
            assert_eq!(parsed.format, SourceFormat::Generic);
        }
    }

    #[test]
    fn bodies_that_are_not_a_json_object_are_malformed() {
        let cases = [
            ("", "body is empty"),
            ("  \n", "body is empty"),
            ("{\"image\": ", "body is not valid JSON"),
            ("not json", "body is not valid JSON"),
            ("[1, 2]", "body must be a JSON object"),
            ("\"nginx:1\"", "body must be a JSON object"),
            (
                r#"{"something": "else"}"#,
                "body is in no known webhook format",
            ),
        ];
        for (body, expected) in cases {
            let message = malformed(body, &json_headers());
            assert!(
                message.starts_with("invalid webhook payload: "),
                "{message}"
            );
            assert!(message.contains(expected), "{body:?}: {message}");
        }
        // Not UTF-8 at all.
        let error = parse_payload(
            &json_headers(),
            &[0xff, 0xfe, 0x00],
            &ParseOptions::default(),
        )
        .unwrap_err();
        assert_eq!(error.status_code().as_u16(), 400);
    }

    #[test]
    fn gitea_headers_win_over_the_github_compatible_ones_it_also_sends() {
        let headers = headers(&[
            ("content-type", "application/json"),
            ("x-github-event", "package"),
            ("x-gitea-event", "package"),
        ]);
        let body = testdata("gitea_package_created.json");
        assert_eq!(detect_format(&headers, &body), Ok(SourceFormat::Gitea));
    }

    #[test]
    fn detect_format_reads_headers_then_shape() {
        let distribution = headers(&[(
            "content-type",
            "application/vnd.docker.distribution.events.v1+json",
        )]);
        assert_eq!(
            detect_format(&distribution, br#"{"events": []}"#),
            Ok(SourceFormat::Distribution)
        );
        let github = headers(&[("x-github-event", "registry_package")]);
        assert_eq!(detect_format(&github, b"{}"), Ok(SourceFormat::GitHub));
        assert_eq!(
            detect_format(&json_headers(), &testdata("docker_hub_push.json")),
            Ok(SourceFormat::DockerHub)
        );
        assert_eq!(
            detect_format(&json_headers(), &testdata("generic.json")),
            Ok(SourceFormat::Generic)
        );
        assert!(detect_format(&json_headers(), b"{}").is_err());
    }

    #[test]
    fn source_format_names_round_trip() {
        for format in SourceFormat::ALL {
            assert_eq!(SourceFormat::parse(format.as_str()), Some(format));
            assert_eq!(format.to_string(), format.as_str());
        }
        assert_eq!(SourceFormat::parse("gitlab"), None);
    }

    const HEADER_NAMES: &[&str] = &[
        "content-type",
        "x-gitea-event",
        "x-gitea-event-type",
        "x-forgejo-event",
        "x-github-event",
        "x-gitea-signature",
        "x-hub-signature-256",
        "x-jfrog-event-auth",
        "authorization",
        "aeg-event-type",
    ];

    const HEADER_VALUES: &[&str] = &[
        "application/json",
        "application/vnd.docker.distribution.events.v1+json",
        "text/plain",
        "package",
        "registry_package",
        "ping",
        "push",
        "",
        "sha256=00",
        "application/x-www-form-urlencoded",
        "application/cloudevents+json",
        "Bearer x.eyJhdWQiOiJ4In0.y",
    ];

    /// Leaves that steer the readers: real field values, near misses and noise.
    fn leaf() -> impl Strategy<Value = Value> {
        let known = proptest::sample::select(vec![
            "push",
            "pull",
            "delete",
            "created",
            "deleted",
            "published",
            "updated",
            "container",
            "CONTAINER",
            "npm",
            "package",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
            "application/octet-stream",
            DIGEST,
            "sha256:abc",
            "v1",
            "-v1",
            "",
            "acme/shop",
            "Acme/Shop",
            "acme//shop",
            "nginx",
            "127.0.0.1:5000",
            "registry",
            "[::1]:5000",
            "http://localhost:3000/a/-/p",
            "https://",
            "ghcr.io/o/n:t",
            "ghcr.io/o/n@sha256:1",
            "nginx:1.25",
            "x@y:z",
            "PUSH_ARTIFACT",
            "PULL_ARTIFACT",
            "harbor.artifact.pushed",
            "pushed",
            "docker",
            "INSERT",
            "DELETE",
            "Microsoft.ContainerRegistry.ImagePushed",
            "Microsoft.EventGrid.SubscriptionValidationEvent",
            "localhost/harbor/alpine@sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
            "eyJhY3Rpb24iOiJJTlNFUlQiLCJ0YWciOiJnY3IuaW8vcC9hOjEifQ==",
            "bm90IGpzb24=",
            "{repo_key}",
        ]);
        prop_oneof![
            6 => known.prop_map(|s| Value::String(s.to_string())),
            3 => "[a-zA-Z0-9:/@._\\[\\]-]{0,24}".prop_map(Value::String),
            1 => Just(Value::Null),
            1 => any::<i64>().prop_map(Value::from),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(serde_json::json!({})),
            1 => Just(serde_json::json!([])),
        ]
    }

    /// Replaces leaves of `template` in order by the given choices (`None` keeps one).
    fn mutate(template: &Value, choices: &mut std::slice::Iter<'_, Option<Value>>) -> Value {
        match template {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), mutate(v, choices)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| mutate(v, choices)).collect()),
            leaf => match choices.next() {
                Some(Some(replacement)) => replacement.clone(),
                _ => leaf.clone(),
            },
        }
    }

    /// (file, headers that announce its format)
    const TEMPLATES: &[(&str, &[(&str, &str)])] = &[
        ("generic.json", &[]),
        ("docker_hub_push.json", &[]),
        (
            "distribution_push.json",
            &[(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )],
        ),
        (
            "gitea_package_created.json",
            &[("x-gitea-event", "package")],
        ),
        (
            "gitea_package_digest_version.json",
            &[("x-gitea-event", "package")],
        ),
        (
            "github_registry_package_published.json",
            &[("x-github-event", "registry_package")],
        ),
        (
            "github_package_untagged.json",
            &[("x-github-event", "package")],
        ),
        ("harbor_push.json", &[]),
        ("harbor_push_digest_only.json", &[]),
        (
            "harbor_cloudevents_push_tagged.json",
            &[("content-type", "application/cloudevents+json")],
        ),
        ("quay_repo_push_test_notification.json", &[]),
        ("acr_push.json", &[]),
        (
            "event_grid_acr_push.json",
            &[("aeg-event-type", "Notification")],
        ),
        (
            "event_grid_acr_push_cloudevents.json",
            &[("content-type", "application/cloudevents-batch+json")],
        ),
        ("event_grid_subscription_validation.json", &[]),
        ("jfrog_docker_pushed.json", &[]),
        ("gcr_pubsub_push.json", &[]),
    ];

    /// A request near one of the real formats, mutated; or arbitrary bytes.
    fn request() -> impl Strategy<Value = (HeaderMap, Vec<u8>)> {
        let mutated = (
            0..TEMPLATES.len(),
            proptest::collection::vec(proptest::option::weighted(0.15, leaf()), 0..200),
            any::<bool>(),
            any::<bool>(),
            header_map(),
        )
            .prop_map(|(index, choices, announce, form, extra)| {
                let (file, announced) = TEMPLATES[index];
                let template: Value = serde_json::from_slice(&testdata(file)).unwrap();
                let body = mutate(&template, &mut choices.iter()).to_string();
                let mut map = if announce {
                    headers(announced)
                } else {
                    HeaderMap::new()
                };
                map.extend(extra);
                if !form {
                    return (map, body.into_bytes());
                }
                // GitHub's and Gitea's form encoding of the same JSON.
                map.insert(
                    CONTENT_TYPE,
                    "application/x-www-form-urlencoded".parse().unwrap(),
                );
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .append_pair("payload", &body)
                    .finish();
                (map, encoded.into_bytes())
            });
        prop_oneof![
            3 => mutated,
            1 => (header_map(), proptest::collection::vec(any::<u8>(), 0..200)),
        ]
    }

    fn header_map() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec(
            (
                proptest::sample::select(HEADER_NAMES),
                prop_oneof![
                    proptest::sample::select(HEADER_VALUES).prop_map(str::to_string),
                    "[ -~]{0,20}",
                ],
            ),
            0..3,
        )
        .prop_map(|pairs| {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            headers(&pairs)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parse_payload_never_panics((headers, body) in request(), host in proptest::option::of("[a-z0-9.:]{0,12}"), jfrog in proptest::option::of("[a-z0-9.:/{}_]{0,24}")) {
            let options = ParseOptions { registry_host: host, jfrog_image_host: jfrog };
            if let Ok(parsed) = parse_payload(&headers, &body, &options) {
                // Every kept push carries the tag it claims.
                for push in parsed.pushes() {
                    prop_assert_eq!(push.image.tag(), Some(push.tag.as_str()));
                    prop_assert_eq!(push.image.digest(), None);
                }
            }
            let _ = detect_format(&headers, &body);
            let _ = crate::webhook::event_grid_validation_code(&body);
        }

        #[test]
        fn verify_signature_never_panics(headers in header_map(), body in proptest::collection::vec(any::<u8>(), 0..64), secret in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16))) {
            for format in SourceFormat::ALL {
                let _ = crate::webhook::verify_signature(format, &headers, &body, secret.as_deref(), &crate::webhook::GoogleKeySet::default());
            }
        }
    }
}
