//! What every webhook reads, kept in memory: the settings with the webhook secrets opened,
//! and which project (with its stages) has an image. Read from the database once, then
//! served from memory until a row of a configuration table changes.
//!
//! Invalidation is SQLite's own: an update hook on the connection counts every insert,
//! update and delete of `settings`, `projects`, `stages` and `registries` (whoever makes
//! it, so a writer added later cannot forget to invalidate), and a cached value is used
//! only while that count is what it was when the value was read. The count is taken before
//! reading, so a write racing the read leaves the value stale-marked, never stale-used.
//! Writes made by another process on the same file are not seen: the daemon holds the
//! data folder's lock, and only it writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::{Project, Settings, Stage, Store, StoreResult};

/// Tables whose changes end every cached value.
const CONFIG_TABLES: [&str; 4] = ["settings", "projects", "stages", "registries"];
/// Most images remembered (with or without a project); more clears the map.
const MAX_IMAGES: usize = 10_000;

/// The settings a webhook needs, secrets opened.
#[derive(Debug)]
pub struct WebhookView {
    pub secret: Option<String>,
    pub signing_secret: Option<String>,
    pub settings: Settings,
}

/// A project and its stages (ordered by name), as one image's pushes are matched.
pub type ProjectWithStages = (Arc<Project>, Arc<Vec<Stage>>);

#[derive(Default)]
pub(super) struct ConfigCache {
    generation: Arc<AtomicU64>,
    webhook: Mutex<Option<(u64, Arc<WebhookView>)>>,
    images: Mutex<(u64, HashMap<String, Option<ProjectWithStages>>)>,
}

impl ConfigCache {
    /// Counts changes to the configuration tables made through `connection`.
    pub(super) fn watch(&self, connection: &Connection) -> rusqlite::Result<()> {
        let generation = self.generation.clone();
        connection.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
                if CONFIG_TABLES.contains(&table) {
                    generation.fetch_add(1, Ordering::SeqCst);
                }
            },
        ))
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

impl Store {
    /// The settings and webhook secrets, from memory while no configuration row changed.
    pub fn webhook_view(&self) -> StoreResult<Arc<WebhookView>> {
        let cache = &self.cache;
        let generation = cache.generation();
        if let Some((at, view)) = &*lock(&cache.webhook)
            && *at == generation
        {
            return Ok(view.clone());
        }
        let view = Arc::new(WebhookView {
            secret: self.webhook_secret()?,
            signing_secret: self.webhook_signing_secret()?,
            settings: self.settings()?,
        });
        *lock(&cache.webhook) = Some((generation, view.clone()));
        Ok(view)
    }

    /// The project whose image is `image` (registry host and repository, no tag) with its
    /// stages, from memory while no configuration row changed; `None` when none has it.
    pub fn project_for_image(&self, image: &str) -> StoreResult<Option<ProjectWithStages>> {
        let cache = &self.cache;
        let generation = cache.generation();
        {
            let images = lock(&cache.images);
            if images.0 == generation
                && let Some(found) = images.1.get(image)
            {
                return Ok(found.clone());
            }
        }
        let found = match self.find_project_by_image(image)? {
            Some(project) => {
                let stages = self.list_stages(project.id)?;
                Some((Arc::new(project), Arc::new(stages)))
            }
            None => None,
        };
        let mut images = lock(&cache.images);
        if images.0 != generation || images.1.len() >= MAX_IMAGES {
            images.1.clear();
            images.0 = generation;
        }
        images.1.insert(image.to_string(), found.clone());
        Ok(found)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
