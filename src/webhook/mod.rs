//! The webhook receiver's pure half: reading what registries and CI jobs send
//! (`parse_payload`) and checking their signatures (`verify_signature`).
//!
//! Formats: the generic `{"image": "host/org/app:tag"}`, Docker Distribution
//! notifications, Harbor 2.x (Default and CloudEvents), Quay `repo_push`, Azure Container
//! Registry (its own webhook and Event Grid events), JFrog Artifactory, Google
//! GCR/Artifact Registry through Pub/Sub push, Gitea `package` events, GitHub
//! `registry_package`/`package` events (JSON or form-encoded) and Docker Hub's push
//! webhook. Each request becomes a list of events, each either a push (an image with a
//! tag, maybe a digest) or ignored with a short reason, so the handler can answer per
//! event.
//!
//! *Invariant*: nothing here knows of HTTP servers, the store, projects or deploys; the
//! input is the request's headers and raw body, the output plain values.

mod formats;
mod google_token;
mod json;
mod payload;
mod signature;

pub use formats::event_grid::validation_code as event_grid_validation_code;
pub use formats::jfrog::{REPO_KEY as JFROG_REPO_KEY, image_for as jfrog_image_for};
pub use google_token::{KeySet as GoogleKeySet, TokenError, key_id as google_key_id};
pub use payload::{
    IgnoreReason, IgnoredEvent, MAX_EVENTS, ParseOptions, ParsedEvent, ParsedPayload, PayloadError,
    PushEvent, SourceFormat, detect_format, parse_payload,
};
pub use signature::{
    SignatureError, bearer_token, signature_hex, unsigned_setting, verify_signature,
};

#[cfg(test)]
pub(crate) mod test_support;
