//! What to do with a pushed image, wherever the news came from (a webhook today; the same
//! rules serve any detector that knows an image and a tag).
//!
//! Matching: image → project by the project's image (registry host included), then tag →
//! stage by the stage's pattern, stages in name order, first match wins. A matching stage
//! that auto-deploys gets a deploy request; anything else is recorded with the reason.
//! Unknown images create a project when the setting allows it (see `autocreate`).
//!
//! Invariant: no HTTP here; the webhook handler parses and calls [`Intake::handle_push`].

mod autocreate;

use std::sync::Arc;

use serde::Serialize;

use crate::image_ref::ImageRef;
use crate::store::{NewWebhookEvent, Project, Stage, Store, StoreError, Trigger, WebhookOutcome};
use crate::tags::TagPattern;
use crate::trigger::{DeployRequest, DeployTrigger};

pub use autocreate::{EngineInspector, ImageFacts, ImageInspector};

/// What became of one pushed image; the webhook answers with a list of these.
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

#[derive(Clone)]
pub struct Intake {
    store: Store,
    trigger: Arc<dyn DeployTrigger>,
    inspector: Arc<dyn ImageInspector>,
}

impl Intake {
    pub fn new(
        store: Store,
        trigger: Arc<dyn DeployTrigger>,
        inspector: Arc<dyn ImageInspector>,
    ) -> Intake {
        Intake {
            store,
            trigger,
            inspector,
        }
    }

    /// Matches a pushed `image` (which has a tag) and asks for a deploy where the rules say
    /// so. Every push is recorded as a webhook event with its outcome and reason.
    pub async fn handle_push(
        &self,
        source: &str,
        image: &ImageRef,
        digest: Option<&str>,
    ) -> Result<PushOutcome, StoreError> {
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
        let project = match self.store.find_project_by_image(&name)? {
            Some(project) => project,
            None if self.store.settings()?.auto_create_projects => {
                let project =
                    autocreate::create_project(&self.store, self.inspector.as_ref(), image).await?;
                outcome.project_created = true;
                project
            }
            None => {
                outcome.reason = Some("no project has this image and auto-create is off".into());
                self.record(source, &outcome, None, None)?;
                return Ok(outcome);
            }
        };
        outcome.project = Some(project.name.clone());
        let stages = self.store.list_stages(project.id)?;
        let Some(stage) = first_matching_stage(&stages, &tag) else {
            outcome.reason = Some(format!("no stage of {} matches tag {tag}", project.name));
            self.record(source, &outcome, Some(&project), None)?;
            return Ok(outcome);
        };
        outcome.stage = Some(stage.name.clone());
        if !stage.auto_deploy {
            outcome.reason = Some(format!(
                "stage {} does not deploy automatically",
                stage.name
            ));
            self.record(source, &outcome, Some(&project), Some(stage))?;
            return Ok(outcome);
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
            })
            .await?;
        outcome.outcome = WebhookOutcomeText::Deployed;
        outcome.deploy_id = Some(deploy_id);
        self.record(source, &outcome, Some(&project), Some(stage))?;
        Ok(outcome)
    }

    /// Records an event that was ignored before matching (a pull, a layer push, …).
    pub fn record_ignored(
        &self,
        source: &str,
        image: Option<&str>,
        tag: Option<&str>,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.store.record_webhook_event(&NewWebhookEvent {
            source: source.to_string(),
            image: image.map(str::to_string),
            tag: tag.map(str::to_string),
            outcome: Some(WebhookOutcome::Ignored),
            detail: reason.to_string(),
            ..Default::default()
        })?;
        Ok(())
    }

    fn record(
        &self,
        source: &str,
        outcome: &PushOutcome,
        project: Option<&Project>,
        stage: Option<&Stage>,
    ) -> Result<(), StoreError> {
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
        self.store.record_webhook_event(&NewWebhookEvent {
            source: source.to_string(),
            image: Some(outcome.image.clone()),
            tag: Some(outcome.tag.clone()),
            outcome: Some(match outcome.outcome {
                WebhookOutcomeText::Deployed => WebhookOutcome::Deployed,
                WebhookOutcomeText::Ignored => WebhookOutcome::Ignored,
            }),
            detail,
            project_id: project.map(|p| p.id),
            stage_id: stage.map(|s| s.id),
            deploy_id: outcome.deploy_id,
        })?;
        Ok(())
    }
}

/// The first stage (in name order) whose pattern matches `tag`. A stage whose stored
/// pattern no longer compiles never matches.
pub fn first_matching_stage<'a>(stages: &'a [Stage], tag: &str) -> Option<&'a Stage> {
    let mut ordered: Vec<&Stage> = stages.iter().collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    ordered.into_iter().find(|stage| {
        TagPattern::parse(&stage.tag_pattern, stage.version_range.as_deref())
            .is_ok_and(|pattern| pattern.matches(tag))
    })
}
