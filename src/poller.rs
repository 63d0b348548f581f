//! The poller: the fallback detector for registries that send no webhooks.
//!
//! `poll_once` is the step: for every image with at least one polling stage it lists the
//! tags once (one listing shared by all stages of that image), decides per stage, records
//! poll state, and asks for a deploy where the stage auto-deploys. `run` is the thin loop
//! around it: the interval from settings, with jitter, until shutdown.
//!
//! Rules: the first successful poll of a stage records what exists and deploys nothing; a
//! failing registry backs off (exponential, capped) while the others keep their schedule;
//! at most `CONCURRENCY` images are polled at once.
//!
//! Invariant: the poller sees registries only through `registry::Registry` and the
//! deployer only through `trigger::DeployTrigger`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::registry::{self, Registry, RegistryConfig};
use crate::store::{PollResult, Project, Stage, Store, Trigger};
use crate::tags::{PatternCache, SeenTags, TagInfo, select_new};
use crate::trigger::{DeployRequest, DeployTrigger};

/// Images polled at the same time.
const CONCURRENCY: usize = 4;
/// First wait after a registry fails; doubles with every failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// The loop waits the interval ± this fraction, so many daemons do not poll in step.
const JITTER: f64 = 0.1;
/// The first cycle after start comes this long (± jitter) after the loop starts, not a
/// whole interval later.
const FIRST_POLL_DELAY: Duration = Duration::from_secs(3);

/// What one cycle did, stage by stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollOutcome {
    /// Images whose tags were listed this cycle.
    pub images_listed: usize,
    pub stages: Vec<StageOutcome>,
    /// Registries skipped because they are backing off after failures.
    pub backing_off: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageOutcome {
    pub stage_id: i64,
    pub result: PollResult,
    pub new_tag: Option<String>,
    pub deploy_id: Option<i64>,
    pub error: Option<String>,
}

pub struct Poller {
    store: Store,
    trigger: Arc<dyn DeployTrigger>,
    /// Clients are kept across cycles: they hold the auth tokens they learnt.
    clients: Mutex<HashMap<String, Arc<dyn Registry>>>,
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Signalled when settings or polling stages change: the loop stops waiting and polls.
    wake: tokio::sync::Notify,
    /// Told about failing polls (each target decides after how many in a row).
    notifier: Arc<dyn crate::notify::Notifier>,
}

/// Why "poll now" could not poll.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("this project has no stage with polling on; turn polling on for a stage first")]
    NoPollingStage,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

#[derive(Clone, Copy, Debug)]
struct Backoff {
    failures: u32,
    until: Instant,
}

/// One image to list, with the stages that watch it.
struct Watch {
    project: Project,
    stages: Vec<Stage>,
    registry: RegistryConfig,
    registry_key: String,
    repository: String,
}

impl Poller {
    pub fn new(store: Store, trigger: Arc<dyn DeployTrigger>) -> Poller {
        Poller {
            store,
            trigger,
            clients: Mutex::default(),
            backoff: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            notifier: Arc::new(crate::notify::NoNotifier),
        }
    }

    /// Sends failing polls to `notifier` (each poll error with its count in a row).
    pub fn with_notifier(mut self, notifier: Arc<dyn crate::notify::Notifier>) -> Poller {
        self.notifier = notifier;
        self
    }

    /// One poll cycle over every image with a polling stage.
    pub async fn poll_once(&self) -> PollOutcome {
        let mut outcome = PollOutcome::default();
        let watches = match self.watches() {
            Ok(watches) => watches,
            Err(e) => {
                tracing::warn!("poller cannot read the store: {e}");
                return outcome;
            }
        };
        let now = Instant::now();
        let (due, waiting): (Vec<Watch>, Vec<Watch>) = watches.into_iter().partition(|w| {
            self.backoff_of(&w.registry_key)
                .is_none_or(|b| b.until <= now)
        });
        outcome.backing_off = waiting.iter().map(|w| w.registry_key.clone()).collect();
        outcome.backing_off.dedup();
        let results: Vec<(usize, Vec<StageOutcome>)> = futures_util::stream::iter(due)
            .map(|watch| async move { self.poll_image(watch).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (listed, stages) in results {
            outcome.images_listed += listed;
            outcome.stages.extend(stages);
        }
        outcome.stages.sort_by_key(|s| s.stage_id);
        outcome
    }

    /// Polls on the schedule from settings (re-read every cycle: a cron expression, or
    /// the interval with jitter) until `shutdown`. The first cycle comes a few seconds after
    /// start; [`Poller::wake`] cuts any wait short.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut wait = jittered(FIRST_POLL_DELAY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {
                    tracing::debug!("poller woken: settings or polling stages changed");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                outcome = self.poll_once() => {
                    tracing::debug!(images = outcome.images_listed, stages = outcome.stages.len(), "poll cycle done");
                }
            }
            wait = self
                .store
                .settings()
                .map(|s| next_wait(s.poll_cron.as_deref(), s.poll_interval))
                .unwrap_or(Duration::from_secs(300));
        }
    }

    /// Ends the loop's current wait: the schedule or the polling stages changed, so it
    /// polls now (a new stage gets its baseline) and then waits by the new schedule. A wake
    /// during a cycle is kept and starts the next cycle when this one ends.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Polls the stages of one project now (the API's "poll now"), ignoring back-off.
    pub async fn poll_project(&self, project_id: i64) -> Result<Vec<StageOutcome>, PollError> {
        let watch = self
            .watches()?
            .into_iter()
            .find(|w| w.project.id == project_id)
            .ok_or(PollError::NoPollingStage)?;
        Ok(self.poll_image(watch).await.1)
    }

    fn watches(&self) -> Result<Vec<Watch>, crate::store::StoreError> {
        let mut by_project: BTreeMap<i64, Vec<Stage>> = BTreeMap::new();
        for stage in self.store.list_polling_stages()? {
            by_project.entry(stage.project_id).or_default().push(stage);
        }
        let mut watches = Vec::new();
        for (project_id, stages) in by_project {
            let project = self.store.get_project(project_id)?;
            let (registry, repository) = registry::for_project(&self.store, &project)?;
            watches.push(Watch {
                registry_key: format!(
                    "{}|{}",
                    registry.base_url,
                    registry.username.as_deref().unwrap_or("")
                ),
                project,
                stages,
                registry,
                repository,
            });
        }
        Ok(watches)
    }

    /// Lists one image's tags once and decides for each of its stages.
    async fn poll_image(&self, watch: Watch) -> (usize, Vec<StageOutcome>) {
        let listing = match self.client(&watch) {
            Ok(client) => match client.list_tags(&watch.repository).await {
                Ok(listing) => Ok((client, listing)),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        crate::metrics::poll(&watch.registry.base_url, listing.is_ok());
        let (client, listing) = match listing {
            Ok(ok) => {
                self.backoff
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&watch.registry_key);
                ok
            }
            Err(error) => {
                self.back_off(&watch.registry_key);
                tracing::warn!(image = %watch.project.image, "poll failed: {error}");
                let stages = watch
                    .stages
                    .iter()
                    .map(|stage| {
                        self.note_poll_error(&watch.project, stage, &error);
                        StageOutcome {
                            stage_id: stage.id,
                            result: PollResult::Error,
                            new_tag: None,
                            deploy_id: None,
                            error: Some(error.clone()),
                        }
                    })
                    .collect();
                return (1, stages);
            }
        };
        let mut outcomes = Vec::new();
        for stage in &watch.stages {
            outcomes.push(self.decide(&watch, stage, client.as_ref(), &listing).await);
        }
        (1, outcomes)
    }

    async fn decide(
        &self,
        watch: &Watch,
        stage: &Stage,
        client: &dyn Registry,
        listing: &[TagInfo],
    ) -> StageOutcome {
        let error = |message: String| {
            self.note_poll_error(&watch.project, stage, &message);
            StageOutcome {
                stage_id: stage.id,
                result: PollResult::Error,
                new_tag: None,
                deploy_id: None,
                error: Some(message),
            }
        };
        let pattern =
            match PatternCache::shared().get(&stage.tag_pattern, stage.version_range.as_deref()) {
                Ok(pattern) => pattern,
                Err(e) => return error(e.to_string()),
            };
        let mut listing: Vec<TagInfo> = listing
            .iter()
            .filter(|t| pattern.matches(&t.name))
            .cloned()
            .collect();
        if stage.track_digest {
            for tag in &mut listing {
                match client.resolve_digest(&watch.repository, &tag.name).await {
                    Ok(digest) => tag.digest = Some(digest),
                    Err(e) => return error(format!("cannot resolve {}: {e}", tag.name)),
                }
            }
        }
        let state = match self.store.get_poll_state(stage.id) {
            Ok(state) => state,
            Err(e) => return error(e.to_string()),
        };
        let now_seen = SeenTags::from_listing(&listing, &pattern);
        let baseline_done = state.as_ref().is_some_and(|s| s.baseline_at.is_some());
        if !baseline_done {
            // Unsaved, the next cycle takes the baseline again: nothing is deployed either way.
            if let Err(e) =
                self.store
                    .record_poll(stage.id, &to_store(&now_seen), PollResult::Baseline, None)
            {
                return error(format!("cannot save the baseline: {e}"));
            }
            return StageOutcome {
                stage_id: stage.id,
                result: PollResult::Baseline,
                new_tag: None,
                deploy_id: None,
                error: None,
            };
        }
        let seen: SeenTags = state
            .map(|s| s.seen.into_iter().collect())
            .unwrap_or_default();
        let Some(selection) = select_new(&listing, &seen, &pattern) else {
            if let Err(e) =
                self.store
                    .record_poll(stage.id, &to_store(&now_seen), PollResult::NoChange, None)
            {
                tracing::warn!(stage_id = stage.id, "cannot save the poll state: {e}");
            }
            return StageOutcome {
                stage_id: stage.id,
                result: PollResult::NoChange,
                new_tag: None,
                deploy_id: None,
                error: None,
            };
        };
        // What was seen is saved before the deploy is asked for: a state that cannot be
        // saved would make the next cycle find (and deploy) the same tag again. Nothing is
        // requested then; the next cycle finds the tag new and tries again.
        if let Err(e) = self.store.record_poll(
            stage.id,
            &to_store(&now_seen),
            PollResult::NewTag,
            Some(&selection.tag),
        ) {
            tracing::warn!(stage_id = stage.id, tag = %selection.tag, "cannot save the poll state ({e}); not deploying until it can be saved");
            return error(format!(
                "cannot save what polling saw ({e}); {} will be deployed once it can be saved",
                selection.tag
            ));
        }
        let mut deploy_id = None;
        // A tag the stage's release rules refuse is recorded with the reason (the audit
        // log is where a poll's ignored tags are kept).
        let admitted = match crate::release::admit_automatic(&self.store, stage, &selection.tag) {
            Ok(Ok(())) => true,
            Ok(Err(reason)) => {
                tracing::info!(stage_id = stage.id, tag = %selection.tag, "new tag ignored: {reason}");
                crate::audit::record(
                    &self.store,
                    &crate::audit::Actor::poller(),
                    "tag.ignored",
                    crate::audit::Target {
                        kind: "stage",
                        id: Some(stage.id),
                        name: Some(stage.name.clone()),
                        project_id: Some(stage.project_id),
                    },
                    format!("{}: {reason}", selection.tag),
                );
                false
            }
            Err(e) => return error(format!("cannot read the stage's release rules: {e}")),
        };
        if stage.auto_deploy && admitted {
            match self
                .trigger
                .request_deploy(DeployRequest {
                    project_id: watch.project.id,
                    stage_id: stage.id,
                    tag: selection.tag.clone(),
                    digest: selection.digest.clone(),
                    trigger: Trigger::Poll,
                    detected_at: Some(chrono::Utc::now()),
                    origin: Default::default(),
                })
                .await
            {
                Ok(id) => deploy_id = Some(id),
                Err(e) => {
                    // Forget the tag again, so the next cycle tries again.
                    if let Err(undo) =
                        self.store
                            .record_poll(stage.id, &to_store(&seen), PollResult::Error, None)
                    {
                        tracing::warn!(
                            stage_id = stage.id,
                            "cannot restore the poll state: {undo}"
                        );
                    }
                    return error(format!("cannot request a deploy of {}: {e}", selection.tag));
                }
            }
        }
        tracing::info!(image = %watch.project.image, stage = %stage.name, tag = %selection.tag, deploy_id, "new tag found by polling");
        StageOutcome {
            stage_id: stage.id,
            result: PollResult::NewTag,
            new_tag: Some(selection.tag),
            deploy_id,
            error: None,
        }
    }

    fn client(&self, watch: &Watch) -> Result<Arc<dyn Registry>, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&watch.registry_key) {
            return Ok(client.clone());
        }
        let client = registry::connect(&watch.registry).map_err(|e| e.to_string())?;
        clients.insert(watch.registry_key.clone(), client.clone());
        Ok(client)
    }

    fn backoff_of(&self, key: &str) -> Option<Backoff> {
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    fn back_off(&self, key: &str) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let failures = backoff.get(key).map_or(1, |b| b.failures + 1);
        let wait = FIRST_BACKOFF
            .saturating_mul(2u32.saturating_pow(failures - 1))
            .min(MAX_BACKOFF);
        backoff.insert(
            key.to_string(),
            Backoff {
                failures,
                until: Instant::now() + wait,
            },
        );
    }
}

/// Records a failed poll; a store that cannot take even that is logged (the outcome still
/// carries the error).
impl Poller {
    fn note_poll_error(&self, project: &Project, stage: &Stage, error: &str) {
        match self.store.record_poll_error(stage.id, error) {
            Ok(in_a_row) => self
                .notifier
                .notify(crate::notify::Notification::poll_error(
                    &project.name,
                    &stage.name,
                    error,
                    in_a_row,
                )),
            Err(e) => {
                tracing::warn!(
                    stage_id = stage.id,
                    "cannot record the poll error ({error}): {e}"
                )
            }
        }
    }
}

fn to_store(seen: &SeenTags) -> crate::store::SeenTags {
    seen.iter()
        .map(|(tag, digest)| (tag.to_string(), digest.map(str::to_string)))
        .collect()
}

/// How long to wait for the next cycle: until the cron expression's next time if one is
/// set (a bad expression falls back to the interval, and says so), else the interval.
pub fn next_wait(cron: Option<&str>, interval: Duration) -> Duration {
    if let Some(expression) = cron {
        match parse_cron(expression) {
            Ok(cron) => {
                let now = chrono::Utc::now();
                if let Ok(next) = cron.find_next_occurrence(&now, false) {
                    return (next - now).to_std().unwrap_or(Duration::ZERO);
                }
            }
            Err(e) => {
                tracing::warn!("poll_cron {expression:?} is invalid ({e}); using the interval")
            }
        }
    }
    jittered(interval)
}

/// Parses a 5-field (or 6-field, with seconds) cron expression.
pub fn parse_cron(expression: &str) -> Result<croner::Cron, String> {
    expression
        .parse::<croner::Cron>()
        .map_err(|e| e.to_string())
}

fn jittered(interval: Duration) -> Duration {
    let factor = 1.0 + JITTER * (rand::random::<f64>() * 2.0 - 1.0);
    interval.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_schedules_the_next_cycle() {
        let wait = next_wait(Some("* * * * *"), Duration::from_secs(3600));
        assert!(wait <= Duration::from_secs(60), "{wait:?}");
        let fallback = next_wait(Some("not a cron"), Duration::from_secs(100));
        assert!(fallback >= Duration::from_secs(89) && fallback <= Duration::from_secs(111));
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("61 * * * *").is_err());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            store_dir.path(),
            crate::crypto::Sealer::new(crate::crypto::MasterKey::generate()),
        )
        .unwrap();
        struct Never;
        #[async_trait::async_trait]
        impl DeployTrigger for Never {
            async fn request_deploy(
                &self,
                _: DeployRequest,
            ) -> Result<i64, crate::store::StoreError> {
                unreachable!()
            }
        }
        let poller = Poller::new(store, Arc::new(Never));
        let mut waits = Vec::new();
        for _ in 0..10 {
            let before = Instant::now();
            poller.back_off("r");
            waits.push(poller.backoff_of("r").unwrap().until - before);
        }
        assert!(waits[1] > waits[0] && waits[2] > waits[1]);
        assert!(
            waits
                .iter()
                .all(|w| *w <= MAX_BACKOFF + Duration::from_secs(1))
        );
        assert!(waits[9] >= MAX_BACKOFF - Duration::from_secs(1));
    }
}
