//! The webhook receiver's pure half: reading what registries and CI jobs send
//! (`parse_payload`) and checking their signatures (`verify_signature`).
//!
//! Formats: the generic `{"image": "host/org/app:tag"}`, Docker Distribution
//! notifications, Gitea `package` events, GitHub `registry_package`/`package` events and
//! Docker Hub's push webhook. Each request becomes a list of events, each either a push
//! (an image with a tag, maybe a digest) or ignored with a short reason, so the handler can
//! answer per event.
//!
//! *Invariant*: nothing here knows of HTTP servers, the store, projects or deploys; the
//! input is the request's headers and raw body, the output plain values.

mod formats;
mod json;
mod payload;
mod signature;

pub use payload::{
    IgnoreReason, IgnoredEvent, MAX_EVENTS, ParseOptions, ParsedEvent, ParsedPayload, PayloadError,
    PushEvent, SourceFormat, detect_format, parse_payload,
};
pub use signature::{SignatureError, signature_hex, verify_signature};

#[cfg(test)]
mod test_support;
