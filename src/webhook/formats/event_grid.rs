//! Azure Container Registry events delivered by Azure Event Grid to a webhook: a JSON
//! array of events, in the Event Grid schema (`eventType`, `data`) or the CloudEvents 1.0
//! schema (`type`, `data`; one event alone with `Content-Type: application/cloudevents+json`).
//! An `ImagePushed` event's `data` is a Distribution event (`action`, `target`, `request`).
//!
//! Before it delivers anything, Event Grid proves the endpoint wants its events: in the
//! Event Grid schema with a `Microsoft.EventGrid.SubscriptionValidationEvent` whose
//! `data.validationCode` must be echoed back ([`validation_code`]); in the CloudEvents
//! schema with an `OPTIONS` request the handler answers.

use serde_json::Value;

use super::distribution;
use crate::webhook::json::Field;
use crate::webhook::payload::{IgnoreReason, ParseOptions, ParsedEvent, PayloadError};

const VALIDATION_EVENT: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";
const REGISTRY_EVENT: &str = "Microsoft.ContainerRegistry.";

/// Whether the body is Event Grid's: an array of events, or one CloudEvent, whose type is
/// an Event Grid or Container Registry one.
pub(in crate::webhook) fn matches(root: &Value) -> bool {
    match root {
        Value::Array(events) => events.first().is_some_and(is_azure_event),
        Value::Object(_) => root.get("specversion").is_some() && is_azure_event(root),
        _ => false,
    }
}

/// The code to echo back when the body is Event Grid's subscription-validation event.
pub fn validation_code(body: &[u8]) -> Option<String> {
    let root: Value = serde_json::from_slice(body).ok()?;
    let events = root.as_array()?;
    events.iter().find_map(|event| {
        (event_type(event) == Some(VALIDATION_EVENT))
            .then(|| event.get("data")?.get("validationCode")?.as_str())
            .flatten()
            .map(str::to_string)
    })
}

pub(in crate::webhook) fn parse(
    root: &Value,
    options: &ParseOptions,
) -> Result<Vec<ParsedEvent>, PayloadError> {
    let events: &[Value] = match root {
        Value::Array(events) => events,
        single => std::slice::from_ref(single),
    };
    PayloadError::check_count(events.len())?;
    Ok(events.iter().map(|event| read(event, options)).collect())
}

fn read(event: &Value, options: &ParseOptions) -> ParsedEvent {
    let subject = event
        .get("subject")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let ignored = |reason| ParsedEvent::ignored(reason, subject.clone());
    let Some(kind) = event_type(event) else {
        return ignored(IgnoreReason::Invalid(
            "eventType (or type) is missing".to_string(),
        ));
    };
    match kind.strip_prefix(REGISTRY_EVENT) {
        Some("ImagePushed" | "ImageDeleted") => {}
        Some("ChartPushed" | "ChartDeleted") => {
            return ignored(IgnoreReason::NotContainer("helm chart".to_string()));
        }
        _ => return ignored(IgnoreReason::OtherEvent(kind.to_string())),
    }
    let data = Field::root(event).get("data");
    match data.value() {
        Some(data) => distribution::read_event(data, options)
            .unwrap_or_else(|why| ignored(IgnoreReason::Invalid(format!("data: {why}")))),
        None => ignored(IgnoreReason::Invalid("data is missing".to_string())),
    }
}

/// `eventType` in the Event Grid schema, `type` in CloudEvents.
fn event_type(event: &Value) -> Option<&str> {
    event
        .get("eventType")
        .or_else(|| event.get("type"))
        .and_then(Value::as_str)
}

fn is_azure_event(event: &Value) -> bool {
    event_type(event)
        .is_some_and(|t| t.starts_with(REGISTRY_EVENT) || t.starts_with("Microsoft.EventGrid."))
}

#[cfg(test)]
mod tests {
    use super::validation_code;
    use crate::webhook::test_support::*;
    use crate::webhook::*;

    #[test]
    fn image_pushed_in_both_schemas_is_the_distribution_push() {
        for (file, content_type) in [
            (
                "event_grid_acr_push_cloudevents.json",
                "application/cloudevents-batch+json",
            ),
            ("event_grid_acr_push.json", "application/json"),
        ] {
            let parsed = parse_file(file, &headers(&[("content-type", content_type)]));
            assert_eq!(parsed.format, SourceFormat::EventGrid, "{file}");
            let push = only_push(&parsed);
            assert_eq!(push.image.to_string(), "demo.azurecr.io/aci-helloworld:v1");
            assert_eq!(
                push.digest.as_deref(),
                Some("sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5")
            );
        }
    }

    #[test]
    fn one_cloudevent_alone_is_read_too() {
        let array: serde_json::Value =
            serde_json::from_slice(&testdata("event_grid_acr_push_cloudevents.json")).unwrap();
        let single = array[0].to_string();
        let parsed = parse(
            &single,
            &headers(&[("content-type", "application/cloudevents+json")]),
        )
        .unwrap();
        assert_eq!(parsed.format, SourceFormat::EventGrid);
        assert_eq!(parsed.pushes().count(), 1);
    }

    #[test]
    fn deletes_charts_and_validation_are_not_pushes() {
        let body = r#"[
            {"eventType": "Microsoft.ContainerRegistry.ImageDeleted", "subject": "a:v1",
             "data": {"action": "delete", "target": {"repository": "a", "tag": "v1"}, "request": {"host": "r.azurecr.io"}}},
            {"eventType": "Microsoft.ContainerRegistry.ChartPushed", "subject": "c:1", "data": {}},
            {"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "x"}}
        ]"#;
        let parsed = parse(body, &json_headers()).unwrap();
        assert_eq!(
            ignored_reasons(&parsed),
            vec![
                "action delete",
                "not a container package (helm chart)",
                "not a package event (Microsoft.EventGrid.SubscriptionValidationEvent)"
            ]
        );
    }

    #[test]
    fn the_validation_code_is_found_only_in_a_validation_event() {
        assert_eq!(
            validation_code(&testdata("event_grid_subscription_validation.json")).as_deref(),
            Some("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")
        );
        assert_eq!(validation_code(&testdata("event_grid_acr_push.json")), None);
        assert_eq!(validation_code(b"not json"), None);
    }
}
