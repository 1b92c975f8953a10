//! Online snapshots of `DATA_DIR` into `DATA_DIR/backups/<name>`, one at a time: the
//! console's and API's backup, and the scheduled `backup` job with its keep-last pruning.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::store::backup::BackupReport;
use crate::store::Store;

/// Snapshots of one data dir.
#[derive(Clone)]
pub struct Backups {
    store: Store,
    data_dir: PathBuf,
    artifacts_dir: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// Whether `name` is a plain folder name (no separators, not `.` or `..`).
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 120
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Backups {
    /// Backups of `store`, whose files live in `data_dir` and `artifacts_dir`.
    pub fn new(store: Store, data_dir: PathBuf, artifacts_dir: PathBuf) -> Backups {
        Backups {
            store,
            data_dir,
            artifacts_dir,
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Consistent snapshot into `DATA_DIR/backups/<name>` while serving; one backup at a
    /// time. The report's path and the errors a client sees name the folder relative to
    /// `DATA_DIR` (`backups/<name>`): a client has no business knowing where it lives.
    pub async fn snapshot(&self, name: &str) -> Result<BackupReport> {
        // The guard moves into the task: a client that disconnects does not free the slot
        // while its backup is still being written.
        let guard = self
            .lock
            .clone()
            .try_lock_owned()
            .map_err(|_| Error::Conflict("a backup is already running".into()))?;
        let rel = PathBuf::from(format!("backups/{name}"));
        let out = self.data_dir.join(&rel);
        let me = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            // With the one-backup slot held, any half-written folder is from a backup that
            // died (kill -9, power loss): remove it so it does not sit there forever.
            me.remove_stale_partials();
            use redb::ReadableDatabase;
            let txn = me.store.db().begin_read()?;
            let files = crate::transfer::artifact_paths(&txn)?;
            crate::store::backup::backup_snapshot(
                &txn,
                me.store.schema(),
                &me.data_dir,
                &me.artifacts_dir,
                &files,
                &out,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        match result {
            Ok(mut r) => {
                r.path = rel;
                Ok(r)
            }
            Err(e) => Err(relative_to(e, &self.data_dir)),
        }
    }

    fn remove_stale_partials(&self) {
        let dir = self.data_dir.join("backups");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let partial = name.starts_with('.') && name.contains(".partial-");
            if partial && e.file_type().is_ok_and(|t| t.is_dir()) {
                match std::fs::remove_dir_all(e.path()) {
                    Ok(()) => tracing::info!(folder = %name, "stale_backup_partial_removed"),
                    Err(err) => {
                        tracing::warn!(folder = %name, error = %err, "stale_backup_partial_not_removed")
                    }
                }
            }
        }
    }

    /// Folder names under `DATA_DIR/backups/` that start with `prefix`, oldest name first.
    pub fn own(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = self.data_dir.join("backups");
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::Io(format!("backups: {e}"))),
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(prefix) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove the snapshot `backups/<name>` (a plain name only).
    pub async fn remove(&self, name: &str) -> Result<()> {
        if !plain_name(name) {
            return Err(Error::invalid("name", "is not a plain folder name"));
        }
        let path = self.data_dir.join("backups").join(name);
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&path))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Io(format!("backups/{name}: {e}")))
    }
}

/// The same error with `data_dir/` dropped from the text a client may see (internal errors'
/// text goes to the log only, and keeps the full paths an operator needs there).
fn relative_to(e: Error, data_dir: &Path) -> Error {
    let prefix = format!("{}{}", data_dir.display(), std::path::MAIN_SEPARATOR);
    let fix = |m: String| m.replace(&prefix, "");
    match e {
        Error::Conflict(m) => Error::Conflict(fix(m)),
        Error::NotFound(m) => Error::NotFound(fix(m)),
        Error::Validation { code, message } => Error::Validation {
            code,
            message: fix(message),
        },
        Error::BadRequest { code, message } => Error::BadRequest {
            code,
            message: fix(message),
        },
        e => e,
    }
}
