//! Unit-test fixture: a store on a real SQLite file in a temporary folder, holding a
//! project `shop` with one stage, which many tests start from.

use tempfile::TempDir;

use crate::crypto::{MasterKey, Sealer};

use super::{Deploy, NewDeploy, NewProject, NewStage, Store, Trigger};

pub(crate) struct Shop {
    /// Holds the database file; the folder goes when the fixture does.
    pub dir: TempDir,
    /// The master key, to open the same file again.
    pub key: MasterKey,
    pub store: Store,
    pub project_id: i64,
    pub stage_id: i64,
}

/// A fresh store with project `shop` (image `registry.example.com/shop`) and its stage
/// `stage`, with the stage defaults.
pub(crate) fn shop(stage: &str) -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = Store::open(dir.path(), Sealer::new(key.clone())).unwrap();
    let project = store
        .create_project(&NewProject {
            name: "shop".into(),
            image: "registry.example.com/shop".into(),
            container_port: 8080,
            ..Default::default()
        })
        .unwrap();
    let stage = store
        .create_stage(&NewStage::defaults(project.id, stage))
        .unwrap();
    Shop {
        dir,
        key,
        store,
        project_id: project.id,
        stage_id: stage.id,
    }
}

impl Shop {
    /// A deploy of `tag` (digest `sha256:<tag>`) on the stage, as a manual one, pending.
    pub fn deploy(&self, tag: &str) -> Deploy {
        self.store
            .create_deploy(&NewDeploy {
                project_id: self.project_id,
                stage_id: self.stage_id,
                tag: tag.into(),
                digest: Some(format!("sha256:{tag}")),
                trigger: Trigger::Manual,
                detected_at: None,
            })
            .unwrap()
    }
}
