//! Managed mode (`serve --projects FILE`): the projects file (or folder) is applied at
//! start, again whenever its content changes (checked every `CHECK_EVERY`, which also
//! sees a mounted ConfigMap or a `git pull` swap the file), and on SIGHUP. Secret
//! references are read from the daemon's own environment and files. A file with errors
//! changes nothing; the errors are logged with file, line and field, and the previous
//! state stays until a good file comes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::{AppState, ApplyError, apply_files};
use crate::projects_file::{SecretRef, SourceFile, read_path};

/// How often the file is read to see whether it changed.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Applies `path` once now, then keeps it applied until `shutdown`.
pub async fn start(state: AppState, path: PathBuf, shutdown: CancellationToken) {
    let mut last = apply(&state, &path, None, false).await;
    tokio::spawn(async move {
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = hup => {
                    tracing::info!(path = %path.display(), "SIGHUP: applying the projects file");
                    last = apply(&state, &path, None, false).await;
                }
                () = tokio::time::sleep(CHECK_EVERY) => {
                    // A file that could not be read was reported already.
                    let quiet = last.is_none();
                    last = apply(&state, &path, last.take(), quiet).await;
                }
            }
        }
    });
}

/// Applies the files at `path` unless they are `unchanged_from`; returns what was read
/// (so an unchanged file is not applied again every few seconds).
async fn apply(
    state: &AppState,
    path: &Path,
    unchanged_from: Option<Vec<SourceFile>>,
    quiet: bool,
) -> Option<Vec<SourceFile>> {
    let files = match read_path(path) {
        Ok(files) => files,
        Err(e) => {
            if !quiet {
                tracing::error!(path = %path.display(), "cannot read the projects file: {e}");
            }
            return None;
        }
    };
    if let Some(before) = &unchanged_from
        && same(before, &files)
    {
        return unchanged_from;
    }
    let origin = path.display().to_string();
    let resolve = |r: &SecretRef| r.read_local();
    match apply_files(state, &files, &resolve, &origin, false, false).await {
        Ok(plan) if plan.is_empty() => {
            tracing::info!(path = %origin, "projects file applied: nothing to change");
        }
        Ok(plan) => {
            for step in &plan.steps {
                tracing::info!(path = %origin, "{:?} {} {}", step.action, step.label(), step.fields.join(", "));
            }
        }
        Err(ApplyError::Invalid(errors)) => {
            for e in &errors {
                tracing::error!("projects file: {e}");
            }
            tracing::error!(path = %origin, "the projects file has errors; nothing was changed");
        }
        Err(ApplyError::Failed(e)) => {
            tracing::error!(path = %origin, "applying the projects file stopped: {e}");
        }
    }
    Some(files)
}

fn same(a: &[SourceFile], b: &[SourceFile]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.name == y.name && x.content == y.content)
}
