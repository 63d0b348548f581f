//! One deploy at a time per stage, stages in parallel.
//!
//! Each stage has a lane: at most one deploy running and a list waiting. A new automatic
//! request (webhook, poll) supersedes the automatic requests still waiting in its lane —
//! only the newest push matters — while manual requests keep their place. A lane's worker
//! task lives only while the lane has work.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio_util::task::TaskTracker;

/// Runs one deploy to its end; supplied by the deployer.
pub type RunFn = Arc<dyn Fn(i64) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Clone)]
pub struct DeployQueue {
    lanes: Arc<Mutex<HashMap<i64, Lane>>>,
    run: RunFn,
    tasks: TaskTracker,
}

#[derive(Clone, Default)]
struct Lane {
    running: Option<i64>,
    waiting: VecDeque<Waiting>,
}

#[derive(Clone)]
struct Waiting {
    deploy_id: i64,
    automatic: bool,
}

impl DeployQueue {
    pub fn new(run: RunFn) -> DeployQueue {
        DeployQueue {
            lanes: Arc::default(),
            run,
            tasks: TaskTracker::new(),
        }
    }

    /// Queues `deploy_id` on its stage's lane and returns the ids of the waiting requests it
    /// superseded (the caller records them as such).
    pub fn enqueue(&self, stage_id: i64, deploy_id: i64, automatic: bool) -> Vec<i64> {
        let mut batch = self.batch();
        let superseded = batch.supersedable(stage_id, automatic);
        batch.push(stage_id, deploy_id, automatic, &superseded);
        batch.start();
        superseded
    }

    /// Holds every lane still while a batch of admissions is written: no waiting deploy
    /// starts meanwhile, so the ones a new request supersedes are still waiting when it is
    /// committed. See [`QueueBatch`].
    pub fn batch(&self) -> QueueBatch<'_> {
        QueueBatch {
            queue: self,
            lanes: self.lock(),
            before: HashMap::new(),
        }
    }
    /// The deploy running on a stage, if any.
    pub fn running(&self, stage_id: i64) -> Option<i64> {
        self.lock().get(&stage_id).and_then(|lane| lane.running)
    }

    /// Whether any deploy is running or waiting.
    pub fn is_idle(&self) -> bool {
        self.lock()
            .values()
            .all(|lane| lane.running.is_none() && lane.waiting.is_empty())
    }

    /// Stops taking new work and waits for the running deploys to finish.
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    fn start_worker(&self, stage_id: i64, lane: &mut Lane) {
        let Some(first) = lane.waiting.pop_front() else {
            return;
        };
        lane.running = Some(first.deploy_id);
        let queue = self.clone();
        self.tasks.spawn(async move {
            let mut next = Some(first.deploy_id);
            while let Some(deploy_id) = next {
                (queue.run)(deploy_id).await;
                next = queue.take_next(stage_id);
            }
        });
    }

    /// After a deploy: the next waiting one (marked running), or the lane goes idle.
    fn take_next(&self, stage_id: i64) -> Option<i64> {
        let mut lanes = self.lock();
        let lane = lanes.get_mut(&stage_id)?;
        match lane.waiting.pop_front() {
            Some(next) => {
                lane.running = Some(next.deploy_id);
                Some(next.deploy_id)
            }
            None => {
                lanes.remove(&stage_id);
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Lanes changed by a batch of admissions, under the lanes' lock: each admission asks
/// which waiting requests it supersedes ([`QueueBatch::supersedable`]) and, once written,
/// takes their place ([`QueueBatch::push`]). Nothing starts until the batch is committed
/// ([`QueueBatch::start`]); dropped without it, every lane is as it was before.
pub struct QueueBatch<'q> {
    queue: &'q DeployQueue,
    lanes: std::sync::MutexGuard<'q, HashMap<i64, Lane>>,
    /// Each changed lane as it was (`None`: it did not exist), to put back.
    before: HashMap<i64, Option<Lane>>,
}

impl QueueBatch<'_> {
    /// The waiting requests a new one for `stage_id` supersedes: the automatic ones, for
    /// an automatic request, including those pushed earlier in this batch.
    pub fn supersedable(&self, stage_id: i64, automatic: bool) -> Vec<i64> {
        let Some(lane) = self.lanes.get(&stage_id) else {
            return Vec::new();
        };
        lane.waiting
            .iter()
            .filter(|w| automatic && w.automatic)
            .map(|w| w.deploy_id)
            .collect()
    }

    /// Queues `deploy_id` in place of the `superseded` requests.
    pub fn push(&mut self, stage_id: i64, deploy_id: i64, automatic: bool, superseded: &[i64]) {
        let existing = self.lanes.get(&stage_id).cloned();
        self.before.entry(stage_id).or_insert(existing);
        let lane = self.lanes.entry(stage_id).or_default();
        lane.waiting.retain(|w| !superseded.contains(&w.deploy_id));
        lane.waiting.push_back(Waiting {
            deploy_id,
            automatic,
        });
    }

    /// The batch is committed: every changed lane with nothing running starts its worker.
    pub fn start(mut self) {
        let changed = std::mem::take(&mut self.before);
        for stage_id in changed.into_keys() {
            if let Some(lane) = self.lanes.get_mut(&stage_id)
                && lane.running.is_none()
            {
                self.queue.start_worker(stage_id, lane);
            }
        }
    }
}

impl Drop for QueueBatch<'_> {
    /// Not committed: the lanes go back to what they were.
    fn drop(&mut self) {
        for (stage_id, lane) in self.before.drain() {
            match lane {
                Some(lane) => self.lanes.insert(stage_id, lane),
                None => self.lanes.remove(&stage_id),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A runner that records the order deploys ran in and blocks each until released.
    fn recording_runner() -> (RunFn, Arc<Mutex<Vec<i64>>>, Arc<Notify>) {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Notify::new());
        let (r, g) = (ran.clone(), gate.clone());
        let run: RunFn = Arc::new(move |id| {
            let (r, g) = (r.clone(), g.clone());
            Box::pin(async move {
                g.notified().await;
                r.lock().unwrap().push(id);
            })
        });
        (run, ran, gate)
    }

    async fn release_until_idle(queue: &DeployQueue, gate: &Notify) {
        for _ in 0..200 {
            if queue.is_idle() {
                return;
            }
            gate.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("queue never went idle");
    }

    #[tokio::test]
    async fn a_batch_not_committed_supersedes_nothing_and_queues_nothing() {
        let (run, ran, gate) = recording_runner();
        let queue = DeployQueue::new(run);
        queue.enqueue(1, 10, true);
        queue.enqueue(1, 11, true);
        {
            let mut batch = queue.batch();
            let superseded = batch.supersedable(1, true);
            assert_eq!(superseded, [11]);
            batch.push(1, 12, true, &superseded);
            assert_eq!(batch.supersedable(1, true), [12], "12 took 11's place");
            batch.push(2, 20, true, &[]);
            // Dropped: the store refused to commit.
        }
        assert_eq!(queue.running(2), None, "no lane for stage 2");
        release_until_idle(&queue, &gate).await;
        assert_eq!(
            *ran.lock().unwrap(),
            vec![10, 11],
            "11 still ran; 12 and 20 never queued"
        );
    }

    #[tokio::test]
    async fn a_committed_batch_starts_the_idle_lanes_with_the_newest_request() {
        let (run, ran, gate) = recording_runner();
        let queue = DeployQueue::new(run);
        let mut batch = queue.batch();
        for id in [10, 11, 12] {
            let superseded = batch.supersedable(1, true);
            batch.push(1, id, true, &superseded);
        }
        batch.start();
        assert_eq!(
            queue.running(1),
            Some(12),
            "10 and 11 were superseded in the batch"
        );
        release_until_idle(&queue, &gate).await;
        assert_eq!(*ran.lock().unwrap(), vec![12]);
    }

    #[tokio::test]
    async fn newer_automatic_request_supersedes_the_waiting_one() {
        let (run, ran, gate) = recording_runner();
        let queue = DeployQueue::new(run);
        assert!(queue.enqueue(1, 10, true).is_empty());
        assert_eq!(queue.running(1), Some(10));
        assert!(queue.enqueue(1, 11, true).is_empty(), "nothing waiting yet");
        assert_eq!(queue.enqueue(1, 12, true), vec![11]);
        release_until_idle(&queue, &gate).await;
        assert_eq!(*ran.lock().unwrap(), vec![10, 12]);
    }

    #[tokio::test]
    async fn manual_requests_keep_their_place() {
        let (run, ran, gate) = recording_runner();
        let queue = DeployQueue::new(run);
        queue.enqueue(1, 10, true);
        queue.enqueue(1, 11, false);
        assert!(queue.enqueue(1, 12, true).is_empty());
        release_until_idle(&queue, &gate).await;
        assert_eq!(*ran.lock().unwrap(), vec![10, 11, 12]);
    }

    #[tokio::test]
    async fn stages_run_in_parallel() {
        let (run, ran, gate) = recording_runner();
        let queue = DeployQueue::new(run);
        queue.enqueue(1, 10, true);
        queue.enqueue(2, 20, true);
        assert_eq!((queue.running(1), queue.running(2)), (Some(10), Some(20)));
        release_until_idle(&queue, &gate).await;
        let mut ran = ran.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, vec![10, 20]);
    }
}
