//! Server-Sent Events: a deploy's log live (`/api/deploys/{id}/logs/stream`) and the
//! dashboard's feed of deploy status changes (`/api/events`).
//!
//! Both read the deployer's broadcast channel, which never waits for a reader: a reader
//! that falls behind is told it lagged, and the log stream then re-reads what it missed
//! from the store. The log stream subscribes before it reads the backlog and skips log
//! ids it has sent, so no entry is lost or repeated between the two.
//!
//! These routes are mounted outside the request timeout (a deploy can take minutes), and
//! end when the daemon shuts down. Each open stream holds a slot of [`StreamLimits`]:
//! a few per sign-in (session or token) and a few hundred in all, so one client cannot
//! hold every connection open; beyond either, the answer is 429 with the reason.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::ToSchema;

use super::AppState;
use super::deploys::{DeployView, LogEntryView};
use super::error::{ApiError, ErrorBody};
use super::extract::Path;
use crate::deployer::DeployEvent;
use crate::store::{DeployStatus, Store};

/// One server-sent event as it goes over the wire, for the OpenAPI document (which, before
/// OpenAPI 3.2, describes each event of a `text/event-stream` answer): `data` is the JSON
/// text of the type the `event` name stands for.
#[derive(ToSchema)]
#[allow(dead_code)] // only described, never built: axum's `Event` is what is sent
pub struct SseEvent {
    /// `log`, `status`, `end` or `resync`.
    event: Option<String>,
    data: String,
    /// The log entry id, on `log` events (send it back as `Last-Event-ID`).
    id: Option<String>,
    retry: Option<u64>,
}

/// Event streams one sign-in (a session or an API token) may hold open at once.
pub const STREAMS_PER_CALLER: usize = 10;
/// Event streams open at once in all.
pub const STREAMS_TOTAL: usize = 200;

/// Counts the open event streams, per caller and in all.
pub struct StreamLimits {
    per_caller: usize,
    total: usize,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    total: usize,
    by_caller: HashMap<String, usize>,
}

/// One open stream's place; given back when the stream ends (or its client goes away).
pub struct StreamSlot {
    limits: Arc<StreamLimits>,
    caller: String,
}

impl Default for StreamLimits {
    fn default() -> StreamLimits {
        StreamLimits::new(STREAMS_PER_CALLER, STREAMS_TOTAL)
    }
}

impl StreamLimits {
    pub fn new(per_caller: usize, total: usize) -> StreamLimits {
        StreamLimits {
            per_caller,
            total,
            open: Mutex::default(),
        }
    }

    /// A slot for one more stream of the caller that sent `headers`, or the reason for
    /// the 429 (which limit was reached).
    pub fn acquire(self: &Arc<Self>, headers: &HeaderMap) -> Result<StreamSlot, String> {
        let caller = caller_key(headers);
        let mut open = self.lock();
        if open.total >= self.total {
            return Err(format!(
                "{} event streams are open, the most this server keeps; try again later",
                self.total
            ));
        }
        let mine = open.by_caller.entry(caller.clone()).or_default();
        if *mine >= self.per_caller {
            return Err(format!(
                "this sign-in already has {} event streams open, the most allowed; \
                 close other tabs or streams first",
                self.per_caller
            ));
        }
        *mine += 1;
        open.total += 1;
        Ok(StreamSlot {
            limits: self.clone(),
            caller,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenStreams> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(mine) = open.by_caller.get_mut(&self.caller) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                open.by_caller.remove(&self.caller);
            }
        }
    }
}

/// Who is streaming: a hash of the bearer token or of the session cookie (the request
/// passed `require_auth`, so one is there), never the credential itself.
fn caller_key(headers: &HeaderMap) -> String {
    use sha2::{Digest, Sha256};
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .map(str::trim)
                .find(|c| {
                    c.strip_prefix(super::auth::SESSION_COOKIE)
                        .is_some_and(|rest| rest.starts_with('='))
                })
                .map(str::to_string)
        })
        .unwrap_or_default();
    hex::encode(Sha256::digest(credential.as_bytes()))
}

pub(super) fn too_many(reason: String) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(ErrorBody {
            error: reason,
            fields: None,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response
}

/// A deploy's status change, as the streams send it.
#[derive(Serialize, ToSchema)]
pub struct StatusEvent {
    pub deploy_id: i64,
    pub project_id: i64,
    pub stage_id: i64,
    pub tag: String,
    pub status: String,
    pub finished: bool,
}

/// Follow a deploy's log: `log` events (the entries so far, then new ones; the SSE id is
/// the entry id, so `Last-Event-ID` resumes), `status` events, and a final `end` event
/// carrying the finished deploy, after which the stream closes.
#[utoipa::path(get, path = "/deploys/{id}/logs/stream", tag = "deploys", params(("id" = i64, Path)),
    responses(
        (status = 200, content_type = "text/event-stream", body = SseEvent,
            description = "events `log` (LogEntryView), `status` (StatusEvent), `end` (DeployView)"),
        (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many event streams open")))]
pub async fn log_stream(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<StreamLimits>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let slot = match limits.acquire(&headers) {
        Ok(slot) => slot,
        Err(reason) => return Ok(too_many(reason)),
    };
    // Subscribe first: whatever happens after this is seen on the channel, whatever
    // happened before is in the store.
    let receiver = state.deployer.events().subscribe();
    let deploy = state.store.get_deploy(id)?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let mut follow = LogFollow {
        store: state.store.clone(),
        deploy_id: id,
        receiver,
        last_id: after,
        queue: VecDeque::new(),
        done: false,
    };
    follow.catch_up();
    if deploy.status.is_final() {
        follow.finish();
    }
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        follow
            .next()
            .await
            .map(|item| (Ok::<_, Infallible>(item.into_event()), follow))
    })
    .take_until(state.shutdown.clone().cancelled_owned());
    Ok(Sse::new(holding(slot, Box::pin(stream)))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `stream`, holding `slot` until it ends or is dropped.
pub(super) fn holding<S: Stream + Unpin>(
    slot: StreamSlot,
    stream: S,
) -> impl Stream<Item = S::Item> {
    futures_util::stream::unfold((slot, stream), |(slot, mut stream)| async move {
        stream.next().await.map(|item| (item, (slot, stream)))
    })
}

/// Deploy status changes of every project, for the dashboard: `status` events, and a
/// `resync` event when this reader fell behind and should re-read the deploy list.
#[utoipa::path(get, path = "/events", tag = "deploys",
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "events `status` (StatusEvent) and `resync`"),
        (status = 429, body = ErrorBody, description = "too many event streams open")))]
pub async fn events(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<StreamLimits>>,
    headers: HeaderMap,
) -> Response {
    let slot = match limits.acquire(&headers) {
        Ok(slot) => slot,
        Err(reason) => return too_many(reason),
    };
    let receiver = state.deployer.events().subscribe();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(DeployEvent::Status {
                    deploy_id,
                    project_id,
                    stage_id,
                    tag,
                    status,
                }) => {
                    let event = json_event(
                        "status",
                        &StatusEvent {
                            deploy_id,
                            project_id,
                            stage_id,
                            tag,
                            status: status.as_str().into(),
                            finished: status.is_final(),
                        },
                    );
                    return Some((Ok::<_, Infallible>(event), receiver));
                }
                Ok(DeployEvent::Log(_)) => {}
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default()
                        .event("resync")
                        .data(format!("{{\"missed\":{missed}}}"));
                    return Some((Ok::<_, Infallible>(event), receiver));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .take_until(state.shutdown.clone().cancelled_owned());
    Sse::new(holding(slot, Box::pin(stream)))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The state of one log stream.
struct LogFollow {
    store: Store,
    deploy_id: i64,
    receiver: broadcast::Receiver<DeployEvent>,
    /// The highest log id sent (or given by `Last-Event-ID`).
    last_id: i64,
    queue: VecDeque<Item>,
    done: bool,
}

/// What a log stream sends, before it becomes an SSE event.
enum Item {
    Log(LogEntryView),
    Status(StatusEvent),
    /// Boxed: a deploy's view is far larger than the other items.
    End(Box<Result<DeployView, String>>),
}

impl Item {
    fn into_event(self) -> Event {
        match self {
            Item::Log(entry) => {
                let id = entry.id.to_string();
                json_event("log", &entry).id(id)
            }
            Item::Status(status) => json_event("status", &status),
            Item::End(end) => match *end {
                Ok(deploy) => json_event("end", &deploy),
                Err(error) => json_event("end", &serde_json::json!({ "error": error })),
            },
        }
    }
}

impl LogFollow {
    async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            match self.receiver.recv().await {
                Ok(DeployEvent::Log(entry)) if entry.deploy_id == self.deploy_id => {
                    if entry.id > self.last_id {
                        self.last_id = entry.id;
                        self.queue.push_back(Item::Log(entry.into()));
                    }
                }
                Ok(DeployEvent::Status {
                    deploy_id,
                    project_id,
                    stage_id,
                    tag,
                    status,
                }) if deploy_id == self.deploy_id => {
                    self.catch_up();
                    self.queue.push_back(Item::Status(StatusEvent {
                        deploy_id,
                        project_id,
                        stage_id,
                        tag,
                        status: status.as_str().into(),
                        finished: status.is_final(),
                    }));
                    if status.is_final() {
                        self.finish();
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        deploy_id = self.deploy_id,
                        missed,
                        "log stream lagged; re-reading the store"
                    );
                    self.catch_up();
                    if self.stored_status().is_some_and(DeployStatus::is_final) {
                        self.finish();
                    }
                }
                Err(RecvError::Closed) => {
                    self.catch_up();
                    self.finish();
                }
            }
        }
    }

    /// Queues the stored entries not sent yet.
    fn catch_up(&mut self) {
        match self.store.deploy_logs(self.deploy_id, self.last_id) {
            Ok(entries) => {
                for entry in entries {
                    self.last_id = self.last_id.max(entry.id);
                    self.queue.push_back(Item::Log(entry.into()));
                }
            }
            Err(e) => tracing::warn!(
                deploy_id = self.deploy_id,
                "cannot read the deploy log: {e}"
            ),
        }
    }

    /// Queues the `end` event with the deploy as stored, and closes after it.
    fn finish(&mut self) {
        self.catch_up();
        let deploy = self
            .store
            .get_deploy(self.deploy_id)
            .map(DeployView::from)
            .map_err(|e| e.to_string());
        self.queue.push_back(Item::End(Box::new(deploy)));
        self.done = true;
    }

    fn stored_status(&self) -> Option<DeployStatus> {
        self.store.get_deploy(self.deploy_id).ok().map(|d| d.status)
    }
}

pub(super) fn json_event<T: Serialize>(name: &str, value: &T) -> Event {
    match Event::default().event(name).json_data(value) {
        Ok(event) => event,
        Err(e) => Event::default()
            .event("error")
            .data(format!("{{\"error\":{:?}}}", e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployer::DeployEvents;
    use crate::store::LogLevel;
    use crate::store::test_support::shop;

    /// More entries than the channel holds are published while nobody reads: the reader
    /// is told it lagged, re-reads the store, and still sends every entry once, in order,
    /// then the end.
    #[tokio::test]
    async fn a_reader_that_falls_behind_rereads_the_store_and_loses_nothing() {
        let shop = shop("dev");
        let (store, deploy) = (shop.store.clone(), shop.deploy("v1"));
        let events = DeployEvents::default();
        let mut follow = LogFollow {
            store: store.clone(),
            deploy_id: deploy.id,
            receiver: events.subscribe(),
            last_id: 0,
            queue: VecDeque::new(),
            done: false,
        };
        let mut written = Vec::new();
        for i in 0..1500 {
            let entry = store
                .append_deploy_log(deploy.id, LogLevel::Info, "pull", &format!("line {i}"))
                .unwrap();
            written.push(entry.id);
            events.publish(DeployEvent::Log(entry));
        }
        store
            .set_deploy_status(deploy.id, DeployStatus::Failed)
            .unwrap();
        events.publish(DeployEvent::Status {
            deploy_id: deploy.id,
            project_id: shop.project_id,
            stage_id: shop.stage_id,
            tag: "v1".into(),
            status: DeployStatus::Failed,
        });
        let mut sent = Vec::new();
        let mut end = None;
        while let Some(item) = follow.next().await {
            match item {
                Item::Log(entry) => sent.push(entry.id),
                Item::Status(_) => {}
                Item::End(deploy) => end = Some(deploy.as_ref().as_ref().unwrap().status.clone()),
            }
        }
        assert_eq!(sent, written);
        assert_eq!(end.as_deref(), Some("failed"));
    }
}
