//! Deploy requests written in batches (group commit): every admission is handed to one
//! writer thread, which takes whatever has queued up meanwhile and writes it in one store
//! transaction, with the lanes of the queue held still (see `QueueBatch`). Under a burst
//! of pushes many admissions share a commit; alone, a request waits for its own, as
//! before. No request is answered before its deploy is committed, and a queued deploy's
//! events go out before its lane's worker can start it.
//!
//! The thread ends when the last handle goes (the deployer is dropped).

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::store::{Admission, Admitted, Deploy, DeployStatus, StoreError};

use super::Inner;
use super::queue::DeployQueue;

/// Most admissions written in one transaction.
const MAX_BATCH: usize = 256;

struct Job {
    admission: Admission,
    /// A webhook's or a poll's: it supersedes the automatic requests waiting in its lane.
    automatic: bool,
    done: oneshot::Sender<Result<Deploy, StoreError>>,
}

/// The handle admissions go through.
pub(super) struct Admitter {
    jobs: mpsc::Sender<Job>,
}

impl Admitter {
    pub(super) fn start(inner: Arc<Inner>, queue: DeployQueue) -> Admitter {
        let (jobs, pending) = mpsc::channel::<Job>();
        // The lanes' workers are tokio tasks, started from this thread.
        let runtime = tokio::runtime::Handle::try_current();
        let spawned = std::thread::Builder::new()
            .name("deploy-admitter".into())
            .spawn(move || {
                let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
                while let Ok(first) = pending.recv() {
                    let more = pending.try_iter().take(MAX_BATCH - 1);
                    write_batch(&inner, &queue, std::iter::once(first).chain(more).collect());
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the deploy admission thread: {e}");
        }
        Admitter { jobs }
    }

    /// Records `admission` (and, when it is `pending`, queues it); returns the deploy once
    /// committed. A pending admission's queued requests that it supersedes are added to
    /// the ones it names.
    pub(super) async fn admit(
        &self,
        admission: Admission,
        automatic: bool,
    ) -> Result<Deploy, StoreError> {
        let stopped = || StoreError::Database("the deploy admission thread has stopped".into());
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job {
                admission,
                automatic,
                done,
            })
            .map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

fn write_batch(inner: &Inner, queue: &DeployQueue, mut batch: Vec<Job>) {
    let mut lanes = queue.batch();
    let written = inner.store.admit_deploys(|admissions| {
        batch
            .iter_mut()
            .map(|job| {
                let admission = &mut job.admission;
                let queued = admission.status == DeployStatus::Pending;
                let stage_id = admission.deploy.stage_id;
                let superseded = if queued {
                    lanes.supersedable(stage_id, job.automatic)
                } else {
                    Vec::new()
                };
                admission.supersedes.extend_from_slice(&superseded);
                let admitted = admissions.admit(admission)?;
                if queued {
                    lanes.push(stage_id, admitted.deploy.id, job.automatic, &superseded);
                }
                Ok(admitted)
            })
            .collect::<Vec<Result<Admitted, StoreError>>>()
    });
    match written {
        Ok(results) => {
            // Published before the lanes start: a deploy's `pending` precedes its worker's.
            let results: Vec<_> = results
                .into_iter()
                .map(|result| result.map(|admitted| inner.recorded(admitted)))
                .collect();
            lanes.start();
            for (job, result) in batch.into_iter().zip(results) {
                // A request that gave up waiting does not mind.
                let _ = job.done.send(result);
            }
        }
        Err(e) => {
            // Nothing was committed: the lanes go back as they were (`lanes` dropped).
            drop(lanes);
            let message = e.to_string();
            for job in batch {
                let _ = job.done.send(Err(StoreError::Database(message.clone())));
            }
        }
    }
}
