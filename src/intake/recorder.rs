//! Webhook events written in batches (group commit): every request hands its records to
//! one writer thread and waits for their commit; the writer takes whatever has queued up
//! meanwhile and writes it in one transaction. Under load many requests share a commit;
//! alone, a request waits for its own, as before. No request is answered before its
//! records are in the database.

use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::store::{NewWebhookEvent, Store, StoreError};

/// Most requests written in one transaction.
const MAX_BATCH: usize = 512;

struct Job {
    records: Vec<NewWebhookEvent>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle requests record through; the writer thread ends when the last handle goes.
pub(super) struct Recorder {
    jobs: mpsc::Sender<Job>,
}

impl Recorder {
    pub(super) fn start(store: Store) -> Recorder {
        let (jobs, queue) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("webhook-recorder".into())
            .spawn(move || write_batches(&store, &queue));
        if let Err(e) = spawned {
            tracing::error!("cannot start the webhook recorder thread: {e}");
        }
        Recorder { jobs }
    }

    /// Writes `records`; returns once they are committed.
    pub(super) async fn record(&self, records: Vec<NewWebhookEvent>) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        self.jobs
            .send(Job { records, done })
            .map_err(|_| StoreError::Database("the webhook recorder has stopped".into()))?;
        committed
            .await
            .map_err(|_| StoreError::Database("the webhook recorder has stopped".into()))?
            .map_err(StoreError::Database)
    }
}

fn write_batches(store: &Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let more = queue.try_iter().take(MAX_BATCH - 1);
        let mut batch: Vec<Job> = std::iter::once(first).chain(more).collect();
        let records: Vec<NewWebhookEvent> = batch
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.records))
            .collect();
        let result = store
            .record_webhook_events(&records)
            .map(|_| ())
            .map_err(|e| e.to_string());
        for job in batch {
            // A request that gave up waiting does not mind.
            let _ = job.done.send(result.clone());
        }
    }
}
