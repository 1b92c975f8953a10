//! The incident similarity index: one tantivy document per incident (title, summary, service,
//! labels and the messages of its note, alert, mitigation and triage events; alert
//! fingerprints as exact terms).
//!
//! Derived from the store and kept in step with it: changes announced on the event bus are
//! applied within a few hundred milliseconds; at start (and whenever the bus overflowed) every
//! incident's version (`updated_at` and last event seq) is compared with the indexed one, and a
//! missing or outdated index is rebuilt in the background.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redb::ReadableTable;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};
use crate::incidents::model::{Event, Incident};
use crate::incidents::tables::{from_json, EVENTS, INCIDENTS};
use crate::store::Store;

/// Layout version; bump to force a rebuild.
pub const INDEX_VERSION: u32 = 1;
const MANIFEST: &str = "sofiia-index.json";
/// Event types whose messages describe the incident.
const TEXT_EVENTS: [&str; 5] = ["note", "alert", "mitigation", "triage", "postmortem"];
/// Most text indexed per incident.
const MAX_TEXT: usize = 20_000;

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    service: Field,
    text: Field,
    fp: Field,
    ver: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        service: b.add_text_field("service", STRING | STORED),
        text: b.add_text_field("text", text),
        fp: b.add_text_field("fp", STRING),
        ver: b.add_text_field("ver", STORED),
    };
    (b.build(), f)
}

struct Engine {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    f: Fields,
}

struct Inner {
    dir: PathBuf,
    store: Store,
    engine: OnceLock<Engine>,
    ready: AtomicBool,
    /// Set when sofiia stops: a long reconcile gives up between chunks.
    stopping: AtomicBool,
    pending: Mutex<BTreeSet<String>>,
}

/// The incident similarity index (cheap to clone).
#[derive(Clone)]
pub struct IncidentIndex {
    inner: Arc<Inner>,
}

/// An incident as the index sees it: its version and its document.
fn version(inc: &Incident, last_seq: u64) -> String {
    format!(
        "{}:{last_seq}",
        crate::kernel::clock::micros(inc.updated_at)
    )
}

impl IncidentIndex {
    pub fn new(dir: PathBuf, store: Store) -> IncidentIndex {
        IncidentIndex {
            inner: Arc::new(Inner {
                dir,
                store,
                engine: OnceLock::new(),
                ready: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                pending: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Ask background work to stop at the next chunk boundary.
    pub fn stop(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// Whether the index has caught up with the store at least once.
    pub fn ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// The engine once opened (ready or not).
    fn opened(&self) -> Result<&Engine> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| Error::Internal("incident index not open".into()))
    }

    fn engine(&self) -> Result<&Engine> {
        self.inner
            .engine
            .get()
            .filter(|_| self.ready())
            .ok_or_else(|| Error::Unavailable {
                message: "the incident index is being built; retry in a moment".into(),
                retry_after_s: 1,
            })
    }

    /// Open (or rebuild) and reconcile with the store. Blocking. Returns how many incidents
    /// were (re)indexed.
    pub fn open_and_reconcile(&self) -> Result<usize> {
        if self.inner.engine.get().is_none() {
            let e = open_engine(&self.inner.dir)?;
            let _ = self.inner.engine.set(e);
        }
        let n = self.reconcile()?;
        self.inner.ready.store(true, Ordering::Release);
        Ok(n)
    }

    /// Compare every incident's version with the indexed one; index what differs, drop what
    /// the store no longer has.
    pub fn reconcile(&self) -> Result<usize> {
        let engine = self.opened()?;
        let f = engine.f;
        let mut indexed: HashMap<String, String> = HashMap::new();
        let searcher = engine.reader.searcher();
        for seg in searcher.segment_readers() {
            let store = seg
                .get_store_reader(64)
                .map_err(|e| Error::Storage(format!("search index: {e}")))?;
            for doc in store.iter::<TantivyDocument>(seg.alive_bitset()) {
                let doc = doc.map_err(|e| Error::Storage(format!("search index: {e}")))?;
                let get = |fl: Field| {
                    doc.get_first(fl)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                indexed.insert(get(f.id), get(f.ver));
            }
        }
        let current: Vec<(String, String)> = self.inner.store.read_blocking(|txn| {
            let incs = txn.open_table(INCIDENTS)?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for row in incs.iter()? {
                let (k, v) = row?;
                // One undecodable record must not keep every other incident out of the index.
                let inc: Incident = match from_json(v.value()) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(error = %e, "incident_index_skipped_record");
                        continue;
                    }
                };
                let last = events
                    .range((k.value(), 0u64)..=(k.value(), u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map(|(k, _)| k.value().1)
                    .unwrap_or(0);
                out.push((inc.id.clone(), version(&inc, last)));
            }
            Ok(out)
        })?;
        let mut stale: Vec<String> = Vec::new();
        let mut present = BTreeSet::new();
        for (id, ver) in &current {
            present.insert(id.clone());
            if indexed.get(id) != Some(ver) {
                stale.push(id.clone());
            }
        }
        let gone: Vec<String> = indexed
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        let n = stale.len();
        for (i, chunk) in stale.chunks(2000).enumerate() {
            if self.inner.stopping.load(Ordering::Acquire) {
                return Ok(i * 2000);
            }
            self.apply(chunk, if i == 0 { &gone } else { &[] })?;
        }
        if stale.is_empty() && !gone.is_empty() {
            self.apply(&[], &gone)?;
        }
        if n > 0 || !gone.is_empty() {
            tracing::info!(
                indexed = n,
                removed = gone.len(),
                "incident_index_reconciled"
            );
        }
        Ok(n)
    }

    /// (Re)index these incidents from the store and drop `gone`.
    fn apply(&self, ids: &[String], gone: &[String]) -> Result<()> {
        let engine = self.opened()?;
        let f = engine.f;
        let ids_owned: Vec<String> = ids.to_vec();
        let docs: Vec<(String, Option<TantivyDocument>)> =
            self.inner.store.read_blocking(move |txn| {
                let incs = txn.open_table(INCIDENTS)?;
                let events = txn.open_table(EVENTS)?;
                let mut out = Vec::new();
                for id in &ids_owned {
                    let Some(g) = incs.get(id.as_str())? else {
                        out.push((id.clone(), None));
                        continue;
                    };
                    let Ok(inc) = from_json::<Incident>(g.value()) else {
                        out.push((id.clone(), None));
                        continue;
                    };
                    let mut text = format!(
                        "{}\n{}\n{}\n{}\n",
                        inc.title,
                        inc.summary,
                        inc.service,
                        inc.labels.join(" ")
                    );
                    let mut last = 0;
                    for row in events.range((id.as_str(), 0u64)..=(id.as_str(), u64::MAX))? {
                        let (k, v) = row?;
                        last = k.value().1;
                        if text.len() >= MAX_TEXT {
                            continue;
                        }
                        let Ok(ev) = from_json::<Event>(v.value()) else {
                            continue;
                        };
                        if TEXT_EVENTS.contains(&ev.kind.as_str()) {
                            text.push_str(&ev.message);
                            text.push('\n');
                        }
                    }
                    let mut d = TantivyDocument::new();
                    d.add_text(f.id, &inc.id);
                    d.add_text(f.service, &inc.service);
                    d.add_text(f.text, &text);
                    for fp in &inc.fingerprints {
                        d.add_text(f.fp, fp);
                    }
                    d.add_text(f.ver, version(&inc, last));
                    out.push((id.clone(), Some(d)));
                }
                Ok(out)
            })?;
        let mut w = engine.writer.lock().map_err(|_| poisoned())?;
        for id in gone {
            w.delete_term(Term::from_field_text(f.id, id));
        }
        for (id, doc) in docs {
            w.delete_term(Term::from_field_text(f.id, &id));
            if let Some(d) = doc {
                w.add_document(d).map_err(ix)?;
            }
        }
        w.commit().map_err(ix)?;
        drop(w);
        engine.reader.reload().map_err(ix)?;
        Ok(())
    }

    /// Mark incidents changed (applied by the background task).
    pub fn touch(&self, id: &str) {
        if let Ok(mut p) = self.inner.pending.lock() {
            p.insert(id.to_string());
        }
    }

    /// Apply pending changes now. Blocking.
    pub fn flush(&self) -> Result<()> {
        if self.inner.engine.get().is_none() {
            // Not open yet: keep them for when it is.
            return Ok(());
        }
        let ids: Vec<String> = {
            let mut p = self.inner.pending.lock().map_err(|_| poisoned())?;
            std::mem::take(&mut *p).into_iter().collect()
        };
        if ids.is_empty() {
            return Ok(());
        }
        let r = self.apply(&ids, &[]);
        if r.is_err() {
            // Try them again on the next tick.
            if let Ok(mut p) = self.inner.pending.lock() {
                p.extend(ids);
            }
        }
        r
    }

    /// Start the background work: open and reconcile, then follow the bus until `closing`.
    pub fn spawn(
        &self,
        bus: &crate::kernel::events::Bus,
        mut closing: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            let m = me.clone();
            match tokio::task::spawn_blocking(move || m.open_and_reconcile()).await {
                Ok(Ok(n)) => tracing::info!(reindexed = n, "incident_index_ready"),
                Ok(Err(e)) => tracing::error!(error = %e, "incident_index_failed"),
                Err(e) => tracing::error!(error = %e, "incident_index_failed"),
            }
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut resync = false;
            let mut retry_in: u32 = 20;
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Ok(m) => {
                            if let Some(id) = m.event.incident_id() {
                                me.touch(id);
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => resync = true,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tick.tick() => {
                        let m = me.clone();
                        // Not ready (the first open or reconcile failed): retry every ~5 s.
                        let reopen = !me.ready() && {
                            retry_in = retry_in.saturating_sub(1);
                            retry_in == 0
                        };
                        let full = resync;
                        let r = tokio::task::spawn_blocking(move || {
                            if reopen {
                                m.open_and_reconcile().map(|_| ())
                            } else if full {
                                m.reconcile().map(|_| ())
                            } else {
                                m.flush()
                            }
                        })
                        .await;
                        match r {
                            Ok(Ok(())) => {
                                if full && !reopen {
                                    resync = false;
                                }
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "incident_index_update_failed");
                                if reopen {
                                    retry_in = 20;
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "incident_index_update_failed"),
                        }
                    }
                    _ = closing.changed() => return,
                }
            }
        })
    }

    /// Incidents whose text is most like `text`, with BM25 scores (best first).
    pub fn similar(&self, text: &str, limit: usize) -> Result<Vec<(String, f32)>> {
        let engine = self.engine()?;
        let f = engine.f;
        let mut analyzer = engine.index.tokenizer_for_field(f.text).map_err(ix)?;
        let mut seen = BTreeSet::new();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in super::query::analyze(&mut analyzer, text) {
            if t.len() < 3 || !seen.insert(t.clone()) || seen.len() > 60 {
                continue;
            }
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.text, &t),
                    IndexRecordOption::WithFreqs,
                )),
            ));
        }
        if clauses.is_empty() {
            return Ok(vec![]);
        }
        self.top(engine, BooleanQuery::new(clauses), limit)
    }

    /// Incidents carrying any of these alert fingerprints.
    pub fn with_fingerprints(&self, fps: &[String], limit: usize) -> Result<Vec<String>> {
        if fps.is_empty() {
            return Ok(vec![]);
        }
        let engine = self.engine()?;
        let clauses: Vec<(Occur, Box<dyn Query>)> = fps
            .iter()
            .map(|fp| {
                (
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(engine.f.fp, fp),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                )
            })
            .collect();
        Ok(self
            .top(engine, BooleanQuery::new(clauses), limit)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    fn top(&self, engine: &Engine, q: BooleanQuery, limit: usize) -> Result<Vec<(String, f32)>> {
        let searcher = engine.reader.searcher();
        let hits = searcher
            .search(&q, &TopDocs::with_limit(limit.max(1)).order_by_score())
            .map_err(ix)?;
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let doc: TantivyDocument = searcher.doc(addr).map_err(ix)?;
            if let Some(id) = doc.get_first(engine.f.id).and_then(|v| v.as_str()) {
                out.push((id.to_string(), score));
            }
        }
        Ok(out)
    }

    /// Documents in the index.
    pub fn len(&self) -> u64 {
        self.inner
            .engine
            .get()
            .map(|e| e.reader.searcher().num_docs())
            .unwrap_or(0)
    }

    /// Whether the index holds no incident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn open_engine(dir: &Path) -> Result<Engine> {
    let (schema, f) = schema();
    let ok = std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|m| m["version"] == INDEX_VERSION);
    let existing = ok
        .then(|| Index::open_in_dir(dir).ok())
        .flatten()
        .filter(|i| i.schema() == schema);
    let index = match existing {
        Some(i) => i,
        None => {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            let i = Index::create_in_dir(dir, schema).map_err(ix)?;
            let m = serde_json::json!({"version": INDEX_VERSION});
            std::fs::write(dir.join(MANIFEST), m.to_string()).map_err(|e| io(dir, e))?;
            i
        }
    };
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(ix)?;
    let writer = index.writer_with_num_threads(1, 15_000_000).map_err(ix)?;
    Ok(Engine {
        index,
        reader,
        writer: Mutex::new(writer),
        f,
    })
}

fn ix(e: tantivy::TantivyError) -> Error {
    Error::Storage(format!("incident index: {e}"))
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", p.display()))
}

fn poisoned() -> Error {
    Error::Internal("the incident index lock was poisoned".into())
}
