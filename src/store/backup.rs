//! Consistent snapshots of a data dir, taken while sofiia serves and writes, and restore.
//!
//! A backup is a folder: `sofiia.redb` (every table copied inside one read transaction, so it
//! is a single point in time, and compacted), `incidents/` (the artifact files that snapshot
//! references; files are immutable once referenced) and `backup.json` (a manifest with row
//! counts and file checksums). It is written to a temporary sibling and renamed into place,
//! so a half-written backup never looks like a finished one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{Database, ReadTransaction, ReadableDatabase};
use serde::{Deserialize, Serialize};

use super::{read_schema_version, Schema, DB_FILE};
use crate::error::{Error, Result};
use crate::kernel::clock::{random_hex, rfc3339};

/// Manifest file name inside a backup folder.
pub const MANIFEST: &str = "backup.json";
/// Folder for artifact files inside a backup (and by default inside `DATA_DIR`).
pub const ARTIFACTS: &str = "incidents";

/// One copied file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: String,
    pub sofiia_version: String,
    pub schema_version: u32,
    pub tables: BTreeMap<String, u64>,
    pub files: Vec<FileEntry>,
    /// Per-install files kept beside the database (audit secret, agent key hashes).
    #[serde(default)]
    pub install_files: Vec<FileEntry>,
}

/// Files of `DATA_DIR` that belong to the install and travel with backups.
pub const INSTALL_FILES: [&str; 2] = ["audit.key", "agent_keys.yml"];

/// What a backup wrote.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub schema_version: u32,
    pub tables: BTreeMap<String, u64>,
    pub files: usize,
    pub bytes: u64,
    pub elapsed_ms: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub data_dir: PathBuf,
    /// Where the previous data dir was moved (with `--force`).
    pub previous_moved_to: Option<PathBuf>,
    pub tables: BTreeMap<String, u64>,
    pub files: usize,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", path.display()))
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    match std::fs::read_dir(p) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(p, e)),
    }
}

fn sibling_tmp(p: &Path, tag: &str) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "data".into());
    p.with_file_name(format!(".{name}.{tag}-{}", random_hex(4)))
}

/// Snapshot `src` (a read transaction: one point in time) into the new folder `out`.
/// `files` are artifact paths relative to `artifacts_dir` that the snapshot references.
pub fn backup_snapshot(
    src: &ReadTransaction,
    schema: &Schema,
    data_dir: &Path,
    artifacts_dir: &Path,
    files: &[String],
    out: &Path,
) -> Result<BackupReport> {
    let started = Instant::now();
    if !is_empty_dir(out)? {
        return Err(Error::Conflict(format!(
            "{} exists and is not empty; choose a new folder",
            out.display()
        )));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let tmp = sibling_tmp(out, "partial");
    std::fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    let result = (|| -> Result<BackupReport> {
        let schema_version = read_schema_version(src)?;
        let mut tables = BTreeMap::new();
        {
            let db_path = tmp.join(DB_FILE);
            let file = crate::kernel::fs::private_options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&db_path)
                .map_err(|e| io(&db_path, e))?;
            let dst =
                Database::builder().create_with_backend(redb::backends::FileBackend::new(file)?)?;
            let txn = dst.begin_write()?;
            for t in schema.tables() {
                tables.insert(t.name().to_string(), t.copy(src, &txn)?);
            }
            txn.commit()?;
        }
        let mut entries = Vec::with_capacity(files.len());
        let mut bytes = std::fs::metadata(tmp.join(DB_FILE))
            .map(|m| m.len())
            .unwrap_or(0);
        for rel in files {
            let from = artifacts_dir.join(rel);
            let to = tmp.join(ARTIFACTS).join(rel);
            if let Some(d) = to.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            let data = std::fs::read(&from).map_err(|e| io(&from, e))?;
            crate::kernel::fs::write_synced(&to, &data)?;
            bytes += data.len() as u64;
            entries.push(FileEntry {
                path: format!("{ARTIFACTS}/{rel}"),
                size: data.len() as u64,
                sha256: crate::kernel::hash::sha256_hex(&data),
            });
        }
        let mut install = Vec::new();
        for name in INSTALL_FILES {
            let from = data_dir.join(name);
            let data = match std::fs::read(&from) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&from, e)),
            };
            crate::kernel::fs::write_synced(&tmp.join(name), &data)?;
            private(&tmp.join(name))?;
            install.push(FileEntry {
                path: name.to_string(),
                size: data.len() as u64,
                sha256: crate::kernel::hash::sha256_hex(&data),
            });
        }
        let manifest = Manifest {
            format: "sofiia-backup".into(),
            format_version: 1,
            created_at: rfc3339(time::OffsetDateTime::now_utc()),
            sofiia_version: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            tables: tables.clone(),
            files: entries,
            install_files: install,
        };
        let text =
            serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
        crate::kernel::fs::write_synced(&tmp.join(MANIFEST), &text)?;
        crate::kernel::fs::sync_dir(&tmp);
        Ok(BackupReport {
            path: out.to_path_buf(),
            schema_version,
            tables,
            files: files.len(),
            bytes,
            elapsed_ms: 0,
        })
    })();
    match result {
        Ok(mut r) => {
            if out.exists() {
                std::fs::remove_dir(out).map_err(|e| io(out, e))?;
            }
            std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
            if let Some(parent) = out.parent() {
                crate::kernel::fs::sync_dir(parent);
            }
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            Ok(r)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// A backup's file is present and matches its recorded sha256.
fn check_file(backup: &Path, f: &FileEntry) -> Result<()> {
    let p = backup.join(&f.path);
    let data = std::fs::read(&p).map_err(|e| io(&p, e))?;
    if crate::kernel::hash::sha256_hex(&data) != f.sha256 {
        return Err(Error::Storage(format!(
            "{} does not match its checksum",
            p.display()
        )));
    }
    Ok(())
}

/// Read and check a backup folder: manifest, database, schema version and every file's checksum.
pub fn verify(backup: &Path, schema: &Schema) -> Result<Manifest> {
    let mpath = backup.join(MANIFEST);
    let text = std::fs::read(&mpath).map_err(|e| {
        Error::NotFound(format!(
            "{} is not a sofiia backup ({MANIFEST}: {e})",
            backup.display()
        ))
    })?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Error::invalid(MANIFEST, format!("{}: {e}", mpath.display())))?;
    if m.format != "sofiia-backup" || m.format_version != 1 {
        return Err(Error::invalid(
            MANIFEST,
            format!("unknown backup format {} v{}", m.format, m.format_version),
        ));
    }
    if m.schema_version > schema.version() {
        return Err(Error::invalid(
            MANIFEST,
            format!(
                "backup has schema {}, newer than this sofiia ({})",
                m.schema_version,
                schema.version()
            ),
        ));
    }
    {
        let db = Database::builder()
            .open_read_only(backup.join(DB_FILE))
            .map_err(|e| Error::Storage(format!("{}: {e}", backup.join(DB_FILE).display())))?;
        let txn = db.begin_read()?;
        for t in schema.tables() {
            if let Some(want) = m.tables.get(t.name()) {
                let got = t.rows(&txn).unwrap_or(0);
                if got != *want {
                    return Err(Error::Storage(format!(
                        "backup table {} has {got} rows, manifest says {want}",
                        t.name()
                    )));
                }
            }
        }
    }
    for f in m.install_files.iter() {
        if !INSTALL_FILES.contains(&f.path.as_str()) {
            return Err(Error::invalid(
                MANIFEST,
                format!("unexpected install file {}", f.path),
            ));
        }
        check_file(backup, f)?;
    }
    for f in &m.files {
        if f.path.contains("..") || Path::new(&f.path).is_absolute() {
            return Err(Error::invalid(MANIFEST, format!("unsafe path {}", f.path)));
        }
        check_file(backup, f)?;
    }
    Ok(m)
}

/// Restore `backup` into `data_dir`. Refuses a non-empty `data_dir` unless `force`, in which
/// case the old folder is moved aside (never deleted). Refuses while sofiia runs on it.
pub fn restore(
    backup: &Path,
    schema: &Schema,
    data_dir: &Path,
    artifacts_dir: &Path,
    force: bool,
) -> Result<RestoreReport> {
    let manifest = verify(backup, schema)?;
    let db_path = data_dir.join(DB_FILE);
    if db_path.exists() {
        // A running sofiia holds the file: opening it exclusively fails.
        match Database::open(&db_path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::Conflict(format!(
                    "sofiia is running on {}; stop it before restoring",
                    data_dir.display()
                )))
            }
            Ok(db) => drop(db),
            Err(_) => {} // damaged: that is what --force is for
        }
    }
    if !is_empty_dir(data_dir)? && !force {
        return Err(Error::Conflict(format!(
            "{} is not empty; restore will not overwrite it. Use --force to move it aside first",
            data_dir.display()
        )));
    }
    let artifacts_inside = artifacts_dir.starts_with(data_dir);
    let stage = sibling_tmp(data_dir, "restore");
    std::fs::create_dir_all(&stage).map_err(|e| io(&stage, e))?;
    let staged = (|| -> Result<()> {
        std::fs::copy(backup.join(DB_FILE), stage.join(DB_FILE)).map_err(|e| io(&stage, e))?;
        private(&stage.join(DB_FILE))?;
        for f in &manifest.files {
            let rel = f
                .path
                .strip_prefix(&format!("{ARTIFACTS}/"))
                .unwrap_or(&f.path);
            let to = if artifacts_inside {
                let under = artifacts_dir
                    .strip_prefix(data_dir)
                    .unwrap_or(Path::new(ARTIFACTS));
                stage.join(under).join(rel)
            } else {
                artifacts_dir.join(rel)
            };
            if let Some(d) = to.parent() {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
            }
            std::fs::copy(backup.join(&f.path), &to).map_err(|e| io(&to, e))?;
        }
        for f in &manifest.install_files {
            let to = stage.join(&f.path);
            std::fs::copy(backup.join(&f.path), &to).map_err(|e| io(&stage, e))?;
            private(&to)?;
        }
        if let Ok(f) = std::fs::File::open(stage.join(DB_FILE)) {
            let _ = f.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    let mut previous = None;
    if data_dir.exists() {
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let name = data_dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "data".into());
        let aside = data_dir.with_file_name(format!("{name}.pre-restore-{stamp}"));
        if is_empty_dir(data_dir)? {
            std::fs::remove_dir(data_dir).map_err(|e| io(data_dir, e))?;
        } else {
            std::fs::rename(data_dir, &aside).map_err(|e| io(data_dir, e))?;
            previous = Some(aside);
        }
    }
    if let Err(e) = std::fs::rename(&stage, data_dir) {
        // Roll back: put the previous folder where it was.
        if let Some(p) = &previous {
            let _ = std::fs::rename(p, data_dir);
        }
        let _ = std::fs::remove_dir_all(&stage);
        return Err(io(data_dir, e));
    }
    Ok(RestoreReport {
        data_dir: data_dir.to_path_buf(),
        previous_moved_to: previous,
        tables: manifest.tables,
        files: manifest.files.len(),
    })
}

/// Keep a copied database or secret-bearing install file readable by its owner only (0600 on
/// unix), as in `DATA_DIR`; a copy would otherwise get the umask's default or the source's mode.
fn private(path: &Path) -> Result<()> {
    crate::kernel::fs::make_private(path)
}
