//! What to do with pushed images, wherever the news came from (a webhook today; the same
//! rules serve any detector that knows an image and a tag).
//!
//! Matching: image → project by the project's image (registry host included), then tag →
//! stage by the stage's pattern, stages in name order, first match wins. A matching stage
//! that auto-deploys gets a deploy request; anything else is recorded with the reason.
//! Unknown images create a project when the setting allows it, at most
//! `auto_create_per_minute` a minute (see `autocreate`).
//!
//! Intake is the one place that records webhook events: a request's events together,
//! committed with those of concurrent requests by one writer thread (`recorder`), before
//! the request is answered ([`Intake::receive`]); and requests the handler refused
//! ([`Intake::record_rejected`]). Which project has an image comes from the store's
//! in-memory view of the configuration ([`Store::project_for_image`]).
//!
//! Invariant: no HTTP here; the webhook handler parses and calls [`Intake::receive`].

mod autocreate;
mod recorder;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::image_ref::ImageRef;
use crate::store::{NewWebhookEvent, Project, Stage, Store, StoreError, Trigger, WebhookOutcome};
use crate::tags::PatternCache;
use crate::trigger::{DeployRequest, DeployTrigger};
use crate::webhook::{IgnoreReason, ParsedEvent, SourceFormat};

pub use autocreate::{EngineInspector, ImageFacts, ImageInspector};

/// How many events an answer lists; the rest are only counted.
pub const SHOWN_EVENTS: usize = 10;

/// What became of one pushed image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PushOutcome {
    pub image: String,
    pub tag: String,
    pub outcome: WebhookOutcomeText,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub project_created: bool,
    /// Why nothing was deployed, or what was noteworthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `deployed` or `ignored`, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcomeText {
    Deployed,
    Ignored,
}

/// What became of one event of a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventAnswer {
    Push(PushOutcome),
    Ignored {
        outcome: WebhookOutcomeText,
        reason: String,
        subject: Option<String>,
    },
}

/// What became of a whole request: counts, and the first [`SHOWN_EVENTS`] events
/// (pushes first, as they matter most).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Receipt {
    pub format: &'static str,
    pub received: usize,
    pub deployed: usize,
    pub ignored: usize,
    pub events: Vec<EventAnswer>,
    /// Events counted but not listed in `events`.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_shown: usize,
}

#[derive(Clone)]
pub struct Intake {
    store: Store,
    trigger: Arc<dyn DeployTrigger>,
    inspector: Arc<dyn ImageInspector>,
    creating: Arc<autocreate::Creations>,
    recorder: Arc<recorder::Recorder>,
}

impl Intake {
    pub fn new(
        store: Store,
        trigger: Arc<dyn DeployTrigger>,
        inspector: Arc<dyn ImageInspector>,
    ) -> Intake {
        Intake {
            recorder: Arc::new(recorder::Recorder::start(store.clone())),
            store,
            trigger,
            inspector,
            creating: Arc::default(),
        }
    }

    /// Handles every event of one request: pushes are matched (and deploys requested),
    /// noteworthy ignored events kept; all of them are recorded together at the end (see
    /// `recorder`). The caller bounds the number of events.
    pub async fn receive(
        &self,
        format: SourceFormat,
        events: Vec<ParsedEvent>,
    ) -> Result<Receipt, StoreError> {
        let source = format.as_str();
        let mut records = Vec::new();
        let mut pushes = Vec::new();
        let mut ignored_answers = Vec::new();
        let mut known = Known::default();
        let received = events.len();
        for event in events {
            match event {
                ParsedEvent::Push(push) => {
                    let outcome = match self
                        .handle_push(&mut known, &push.image, push.digest.as_deref())
                        .await
                    {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            crate::metrics::webhook_event("error");
                            records.push(NewWebhookEvent {
                                source: source.to_string(),
                                image: Some(push.image.name()),
                                tag: push.image.tag().map(str::to_string),
                                outcome: Some(WebhookOutcome::Error),
                                detail: format!("internal error: {e}"),
                                ..Default::default()
                            });
                            // What happened before the error still counts.
                            let _ = self.record(records).await;
                            return Err(e);
                        }
                    };
                    crate::metrics::webhook_event(match outcome.0.outcome {
                        WebhookOutcomeText::Deployed => "deployed",
                        WebhookOutcomeText::Ignored => "ignored",
                    });
                    records.push(record_of(source, &outcome.0, outcome.1, outcome.2));
                    pushes.push(EventAnswer::Push(outcome.0));
                }
                ParsedEvent::Ignored(ignored) => {
                    crate::metrics::webhook_event("ignored");
                    // Registries send a notification per blob and per pull: not worth a
                    // record.
                    if !matches!(
                        ignored.reason,
                        IgnoreReason::Pull | IgnoreReason::LayerPush | IgnoreReason::Ping
                    ) {
                        records.push(NewWebhookEvent {
                            source: source.to_string(),
                            image: ignored.subject.clone(),
                            outcome: Some(WebhookOutcome::Ignored),
                            detail: ignored.reason.to_string(),
                            ..Default::default()
                        });
                    }
                    ignored_answers.push(EventAnswer::Ignored {
                        outcome: WebhookOutcomeText::Ignored,
                        reason: ignored.reason.to_string(),
                        subject: ignored.subject,
                    });
                }
            }
        }
        self.record(records).await?;
        let deployed = pushes
            .iter()
            .filter(
                |a| matches!(a, EventAnswer::Push(p) if p.outcome == WebhookOutcomeText::Deployed),
            )
            .count();
        let mut shown = pushes;
        shown.extend(ignored_answers);
        let not_shown = shown.len().saturating_sub(SHOWN_EVENTS);
        shown.truncate(SHOWN_EVENTS);
        Ok(Receipt {
            format: source,
            received,
            deployed,
            ignored: received - deployed,
            events: shown,
            not_shown,
        })
    }

    /// Records a request that got past the webhook secret but could not be used.
    pub async fn record_rejected(&self, source: &str, status: u16, reason: &str) {
        crate::metrics::webhook_event("rejected");
        let record = NewWebhookEvent {
            source: source.to_string(),
            outcome: Some(WebhookOutcome::Rejected),
            detail: format!("{status}: {reason}"),
            ..Default::default()
        };
        if let Err(e) = self.record(vec![record]).await {
            tracing::warn!("cannot record a rejected webhook: {e}");
        }
    }

    /// Writes `records` in one transaction (shared with concurrent requests').
    async fn record(&self, records: Vec<NewWebhookEvent>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.recorder.record(records).await
    }

    /// Matches one pushed `image` (which has a tag) and asks for a deploy where the rules
    /// say so; returns the outcome with the project and stage it matched.
    async fn handle_push(
        &self,
        known: &mut Known,
        image: &ImageRef,
        digest: Option<&str>,
    ) -> Result<(PushOutcome, Option<i64>, Option<i64>), StoreError> {
        let tag = image.tag().unwrap_or_default().to_string();
        let name = image.name();
        let mut outcome = PushOutcome {
            image: name.clone(),
            tag: tag.clone(),
            outcome: WebhookOutcomeText::Ignored,
            project: None,
            stage: None,
            deploy_id: None,
            project_created: false,
            reason: None,
        };
        let (project, stages) = match known.projects.get(&name) {
            Some(found) => found.clone(),
            None => {
                let found = match self.store.project_for_image(&name)? {
                    Some(found) => found,
                    None => match self.auto_create(image).await? {
                        Err(reason) => {
                            outcome.reason = Some(reason);
                            return Ok((outcome, None, None));
                        }
                        Ok((project, created)) => {
                            outcome.project_created = created;
                            let stages = Arc::new(self.store.list_stages(project.id)?);
                            (Arc::new(project), stages)
                        }
                    },
                };
                known.projects.insert(name.clone(), found.clone());
                found
            }
        };
        outcome.project = Some(project.name.clone());
        let Some(stage) = first_matching_stage(&stages, &tag) else {
            outcome.reason = Some(format!("no stage of {} matches tag {tag}", project.name));
            return Ok((outcome, Some(project.id), None));
        };
        outcome.stage = Some(stage.name.clone());
        if !stage.auto_deploy {
            outcome.reason = Some(format!(
                "stage {} does not deploy automatically",
                stage.name
            ));
            return Ok((outcome, Some(project.id), Some(stage.id)));
        }
        if let Err(reason) = crate::release::admit_automatic(&self.store, stage, &tag)? {
            outcome.reason = Some(reason);
            return Ok((outcome, Some(project.id), Some(stage.id)));
        }
        let deploy_id = self
            .trigger
            .request_deploy(DeployRequest {
                project_id: project.id,
                stage_id: stage.id,
                tag: tag.clone(),
                digest: digest.map(str::to_string),
                trigger: Trigger::Webhook,
                detected_at: Some(chrono::Utc::now()),
                origin: Default::default(),
            })
            .await?;
        outcome.outcome = WebhookOutcomeText::Deployed;
        outcome.deploy_id = Some(deploy_id);
        Ok((outcome, Some(project.id), Some(stage.id)))
    }

    /// A project for an image no project has: `Ok(Err(reason))` when auto-create is off
    /// or over its rate; otherwise the project and whether this call made it (a
    /// concurrent push of the same image may have made it first).
    async fn auto_create(
        &self,
        image: &ImageRef,
    ) -> Result<Result<(Project, bool), String>, StoreError> {
        // From the store's memory (a push of an unknown image is the common ignored case).
        let view = self.store.webhook_view()?;
        let settings = &view.settings;
        if !settings.auto_create_projects {
            return Ok(Err(
                "no project has this image and auto-create is off".to_string()
            ));
        }
        self.creating
            .create(
                &self.store,
                self.inspector.as_ref(),
                image,
                settings.limits.auto_create_per_minute,
            )
            .await
    }
}

/// Projects (and their stages) already looked up during one request.
#[derive(Default)]
struct Known {
    projects: HashMap<String, (Arc<Project>, Arc<Vec<Stage>>)>,
}

fn record_of(
    source: &str,
    outcome: &PushOutcome,
    project_id: Option<i64>,
    stage_id: Option<i64>,
) -> NewWebhookEvent {
    let detail = match (&outcome.reason, outcome.deploy_id) {
        (Some(reason), _) => reason.clone(),
        (None, Some(id)) => format!("deploy {id} requested"),
        (None, None) => String::new(),
    };
    let detail = if outcome.project_created {
        format!("project created; {detail}")
    } else {
        detail
    };
    NewWebhookEvent {
        source: source.to_string(),
        image: Some(outcome.image.clone()),
        tag: Some(outcome.tag.clone()),
        outcome: Some(match outcome.outcome {
            WebhookOutcomeText::Deployed => WebhookOutcome::Deployed,
            WebhookOutcomeText::Ignored => WebhookOutcome::Ignored,
        }),
        detail,
        project_id,
        stage_id,
        deploy_id: outcome.deploy_id,
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The first stage (in name order) whose pattern matches `tag`. A stage whose stored
/// pattern is refused (it may predate today's limits) is skipped, with the reason logged.
pub fn first_matching_stage<'a>(stages: &'a [Stage], tag: &str) -> Option<&'a Stage> {
    let mut ordered: Vec<&Stage> = stages.iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    ordered.into_iter().find(|stage| {
        match PatternCache::shared().get(&stage.tag_pattern, stage.version_range.as_deref()) {
            Ok(pattern) => pattern.matches(tag),
            Err(e) => {
                tracing::warn!(stage_id = stage.id, "stage skipped: {e}");
                false
            }
        }
    })
}
