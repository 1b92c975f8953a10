//! Audit records: one per tool call, in the store. Never a payload: the input is kept only as
//! a keyed hash (HMAC-SHA256 with a per-install secret, so small inputs cannot be guessed by
//! hashing candidates) and sizes.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::kernel::clock::{micros, random_hex, random_key_hex, serde_ts};
use crate::store::{AnyTable, Store, WriteTx};

/// (ts µs, id) → record JSON.
pub const AUDIT: TableDefinition<(i64, &str), &[u8]> = TableDefinition::new("audit");
/// This room's tables.
pub const TABLES: &[&dyn AnyTable] = &[&AUDIT];
/// The per-install HMAC secret, in `DATA_DIR`.
pub const SECRET_FILE: &str = "audit.key";

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub id: String,
    #[serde(with = "serde_ts")]
    pub ts: OffsetDateTime,
    /// `operator`, `agent:<id>` or `open`.
    pub principal: String,
    /// The agent the call acted as (if any).
    pub agent_id: Option<String>,
    pub role: String,
    pub tool: String,
    pub action: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// `ok`, or the error code.
    pub status: String,
    /// HMAC-SHA256 of the canonical input, hex.
    pub input_hash: String,
    pub input_size: u64,
    pub output_size: u64,
    pub elapsed_ms: u64,
    pub graph_run_id: Option<String>,
    /// The scheduler's job run the call was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_run_id: Option<String>,
}

/// The per-install audit secret in `path`, made on first start from the OS random source
/// (never a weaker one) and written readable by the owner only.
fn load_or_create_secret(path: &Path) -> Result<String> {
    let secret = match std::fs::read_to_string(path) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = random_key_hex(32)?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600); // readable by the owner only, from the first byte
            }
            let mut f = opts
                .open(path)
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            std::io::Write::write_all(&mut f, s.as_bytes())?;
            f.sync_all()?;
            s
        }
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    if secret.len() < 32 {
        return Err(Error::Io(format!(
            "{} is too short to be an audit secret",
            path.display()
        )));
    }
    Ok(secret)
}

/// The audit room.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    secret: Vec<u8>,
}

impl Audit {
    /// Open, creating the per-install secret on first start.
    pub fn open(store: Store, data_dir: &Path) -> Result<Audit> {
        let secret = load_or_create_secret(&data_dir.join(SECRET_FILE))?;
        Ok(Audit {
            store,
            secret: secret.into_bytes(),
        })
    }

    /// Keyed hash of an input.
    pub fn hash(&self, input: &[u8]) -> String {
        match Hmac::<sha2::Sha256>::new_from_slice(&self.secret) {
            Ok(mut m) => {
                m.update(input);
                crate::kernel::clock::hex(&m.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// Insert a record inside an existing write transaction.
    pub fn insert(tx: &crate::store::WriteTx, rec: &AuditRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::Internal(e.to_string()))?;
        tx.open(AUDIT)?
            .insert((micros(rec.ts), rec.id.as_str()), bytes.as_slice())?;
        Ok(())
    }

    /// Write a record durably; an error means the call must fail (fail closed).
    pub async fn write(&self, rec: AuditRecord) -> Result<()> {
        let bytes = serde_json::to_vec(&rec).map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .write(move |txn| {
                txn.open(AUDIT)?
                    .insert((micros(rec.ts), rec.id.as_str()), bytes.as_slice())?;
                Ok(())
            })
            .await
    }

    /// Newest first, filtered.
    pub async fn list(&self, q: AuditQuery) -> Result<Vec<AuditRecord>> {
        let limit = q.limit.clamp(1, 1000);
        self.store
            .read(move |txn| {
                let t = txn.open_table(AUDIT)?;
                let lo = q.since.map(micros).unwrap_or(i64::MIN);
                let hi = q.before_us.unwrap_or(i64::MAX);
                let mut out = Vec::new();
                for row in t.range((lo, "")..(hi, ""))?.rev() {
                    let r: AuditRecord = crate::store::from_json(row?.1.value())?;
                    let ok = q.tool.as_deref().is_none_or(|x| x == r.tool)
                        && q.principal.as_deref().is_none_or(|x| x == r.principal)
                        && q.decision.as_deref().is_none_or(|x| x == r.decision)
                        && q.agent_id
                            .as_deref()
                            .is_none_or(|x| r.agent_id.as_deref() == Some(x));
                    if ok {
                        out.push(r);
                        if out.len() == limit {
                            break;
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Delete records older than `cutoff`, at most `max` per call (oldest first); returns how
    /// many were removed. Bounded, so it never holds the writer for long.
    pub async fn purge_older_than(&self, cutoff: OffsetDateTime, max: usize) -> Result<usize> {
        let hi = micros(cutoff);
        self.store
            .write(move |tx| {
                let mut t = tx.open(AUDIT)?;
                let keys: Vec<(i64, String)> = t
                    .range((i64::MIN, "")..(hi, ""))?
                    .take(max)
                    .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_string())))
                    .collect::<std::result::Result<_, _>>()?;
                for (ts, id) in &keys {
                    t.remove((*ts, id.as_str()))?;
                }
                Ok(keys.len())
            })
            .await
    }

    /// Apply retention: remove allowed calls older than `cutoff` and denied ones older than
    /// `denied_cutoff` (denials are kept longer: they are what an investigation looks for).
    /// A dry run only counts. Works in bounded batches so it never holds the writer long.
    pub async fn apply_retention(
        &self,
        cutoff: OffsetDateTime,
        denied_cutoff: OffsetDateTime,
        dry_run: bool,
    ) -> Result<Retention> {
        let (hi, denied_hi) = (micros(cutoff), micros(denied_cutoff));
        let mut total = Retention::default();
        let mut from: (i64, String) = (i64::MIN, String::new());
        loop {
            let start = from.clone();
            let (r, next) = if dry_run {
                self.store
                    .read(move |txn| {
                        let t = txn.open_table(AUDIT)?;
                        let (r, _, next) = retention_scan(&t, &start, hi, denied_hi)?;
                        Ok((r, next))
                    })
                    .await?
            } else {
                self.store
                    .write(move |tx| {
                        let (r, doomed, next) = {
                            let t = tx.open(AUDIT)?;
                            retention_scan(&*t, &start, hi, denied_hi)?
                        };
                        let mut t = tx.open(AUDIT)?;
                        for (ts, id) in &doomed {
                            t.remove((*ts, id.as_str()))?;
                        }
                        Ok((r, next))
                    })
                    .await?
            };
            total.scanned += r.scanned;
            total.removed += r.removed;
            total.removed_denied += r.removed_denied;
            total.kept_denied += r.kept_denied;
            match next {
                Some(n) => from = n,
                None => return Ok(total),
            }
        }
    }

    /// A fresh record id.
    pub fn new_id() -> String {
        format!("aud_{}", random_hex(8))
    }
}

/// What [`Audit::apply_retention`] removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Retention {
    /// Records older than the cutoff that were looked at.
    pub scanned: usize,
    /// Allowed calls removed.
    pub removed: usize,
    /// Denied calls removed (past the longer retention).
    pub removed_denied: usize,
    /// Denied calls past the normal retention, kept for the longer one.
    pub kept_denied: usize,
}

type Scan = (Retention, Vec<(i64, String)>, Option<(i64, String)>);

/// One bounded batch of [`Audit::apply_retention`]: what to remove, and where the next
/// batch starts.
fn retention_scan(
    t: &impl ReadableTable<(i64, &'static str), &'static [u8]>,
    start: &(i64, String),
    hi: i64,
    denied_hi: i64,
) -> Result<Scan> {
    const BATCH: usize = 5000;
    let mut r = Retention::default();
    let mut doomed = Vec::new();
    for row in t.range((start.0, start.1.as_str())..(hi, ""))? {
        let (k, v) = row?;
        let (ts, id) = k.value();
        if r.scanned >= BATCH {
            return Ok((r, doomed, Some((ts, id.to_string()))));
        }
        r.scanned += 1;
        let denied = serde_json::from_slice::<AuditRecord>(v.value())
            .map(|rec| rec.decision == "deny")
            .unwrap_or(false);
        if denied && ts >= denied_hi {
            r.kept_denied += 1;
            continue;
        }
        if denied {
            r.removed_denied += 1;
        } else {
            r.removed += 1;
        }
        doomed.push((ts, id.to_string()));
    }
    Ok((r, doomed, None))
}

/// Filters of [`Audit::list`].
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub tool: Option<String>,
    pub principal: Option<String>,
    pub agent_id: Option<String>,
    pub decision: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Only records strictly older than this (µs), for paging.
    pub before_us: Option<i64>,
    pub limit: usize,
}

/// File name of the audit log in a JSONL export.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Write every audit record of the snapshot to `out/audit.jsonl` (oldest first).
pub fn export(txn: &redb::ReadTransaction, out: &Path) -> Result<usize> {
    let mut recs: Vec<AuditRecord> = Vec::new();
    for row in txn.open_table(AUDIT)?.iter()? {
        recs.push(crate::store::from_json(row?.1.value())?);
    }
    crate::store::jsonl::write_file(&out.join(AUDIT_FILE), &recs)
}

/// Why a line of an imported `audit.jsonl` is not an audit record (`Ok` when it is).
pub fn check_imported(r: &AuditRecord) -> std::result::Result<(), String> {
    let ok_id = r.id.starts_with("aud_")
        && r.id.len() <= 64
        && r.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let ok_decision = matches!(r.decision.as_str(), "allow" | "deny");
    if !ok_id || !ok_decision || r.input_hash.len() > 128 {
        return Err("not an audit record (id aud_…, decision allow|deny)".into());
    }
    Ok(())
}

/// Store checked imported records whose key is not there yet; returns (imported, skipped).
pub fn put_imported(tx: &WriteTx, recs: &[AuditRecord]) -> Result<(usize, usize)> {
    let mut t = tx.open(AUDIT)?;
    let (mut imported, mut skipped) = (0usize, 0usize);
    for r in recs {
        let key = (micros(r.ts), r.id.as_str());
        if t.get(key)?.is_some() {
            skipped += 1;
            continue;
        }
        let bytes = serde_json::to_vec(r).map_err(|e| Error::Internal(e.to_string()))?;
        t.insert(key, bytes.as_slice())?;
        imported += 1;
    }
    Ok((imported, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_from_the_os_source_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_FILE);
        crate::kernel::clock::fail_os_random_on_this_thread(true);
        let r = load_or_create_secret(&path);
        crate::kernel::clock::fail_os_random_on_this_thread(false);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("OS random source"), "{e}");
        assert!(!path.exists(), "no weak secret written");

        let s = load_or_create_secret(&path).unwrap();
        assert_eq!(s.len(), 64);
        assert_eq!(
            load_or_create_secret(&path).unwrap(),
            s,
            "kept across starts"
        );
    }
}
