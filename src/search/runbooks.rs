//! The runbook index: markdown files from the runbook folders, one tantivy document per
//! section, kept in step with the files by polling (portable; no OS file-watch API).
//!
//! The index lives in `DATA_DIR/index/runbooks/` and is derived: a manifest beside it
//! (`sofiia-index.json`) records the index layout version and each file's sha256. A missing,
//! damaged or older index is rebuilt from the files in the background, so start-up and
//! `/healthz` never wait for it; searches answer 503 (retry shortly) until it is ready.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::markdown;
use super::query::{self, TextFields, Vocab};
use crate::error::{Error, Result};

/// Layout version of the runbook index; bump to force a rebuild after a schema change.
pub const INDEX_VERSION: u32 = 2;
/// Manifest file inside the index folder.
pub const MANIFEST: &str = "sofiia-index.json";
/// Largest runbook file indexed.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// Deepest folder level scanned under a root.
const MAX_DEPTH: usize = 8;
/// Most results one search returns.
pub const MAX_LIMIT: usize = 50;

/// The starter runbooks shipped in the binary, written to `DATA_DIR/runbooks` on first start.
#[derive(rust_embed::Embed)]
#[folder = "data/runbooks/"]
struct Starter;

#[derive(Clone, Copy)]
struct Fields {
    path: Field,
    title: Field,
    heading: Field,
    section_path: Field,
    section: Field,
    anchor: Field,
    body: Field,
    keywords: Field,
    tag: Field,
    service: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let f = Fields {
        path: b.add_text_field("path", STRING | STORED),
        title: b.add_text_field("title", text.clone()),
        heading: b.add_text_field("heading", text.clone()),
        section_path: b.add_text_field("section_path", STORED),
        section: b.add_text_field("section", STORED),
        anchor: b.add_text_field("anchor", STORED),
        body: b.add_text_field("body", text.clone()),
        keywords: b.add_text_field("keywords", text),
        tag: b.add_text_field("tag", STRING | STORED),
        service: b.add_text_field("service", STRING | STORED),
    };
    (b.build(), f)
}

struct Engine {
    index: Index,
    reader: IndexReader,
    f: Fields,
}

/// What the last sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub files: usize,
    pub sections: u64,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub rebuilt: bool,
    pub took_ms: f64,
    /// Files that could not be read or indexed, with the reason.
    pub errors: Vec<String>,
}

/// Search parameters.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub q: String,
    pub service: Option<String>,
    pub tag: Option<String>,
    pub limit: usize,
}

/// One piece of a snippet: text, highlighted or not.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Part {
    pub text: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hl: bool,
}

/// One ranked section.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub path: String,
    pub title: String,
    /// The section's own heading.
    pub heading: String,
    /// Headings from the top of the runbook to this section.
    pub heading_path: String,
    /// Anchor of the heading (the console's element id is `md-<anchor>`).
    pub anchor: String,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub score: f32,
    pub snippet: Vec<Part>,
}

/// Search results.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub query: String,
    pub total: usize,
    pub items: Vec<Hit>,
    pub took_ms: f64,
}

/// A runbook as `GET /api/runbooks/{path}` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookDoc {
    pub path: String,
    pub title: String,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub sections: Vec<serde_json::Value>,
    /// The markdown, without front matter.
    pub markdown: String,
}

struct Inner {
    dir: PathBuf,
    roots: Vec<(String, PathBuf)>,
    poll: Duration,
    engine: OnceLock<Engine>,
    /// Set once the first sync after opening is done (searches wait for it).
    ready: std::sync::atomic::AtomicBool,
    vocab: RwLock<Arc<Vocab>>,
    manifest: Mutex<BTreeMap<String, String>>,
    /// (modified time, size) of each file when last read: unchanged files are not re-read.
    stats: Mutex<BTreeMap<String, (Option<std::time::SystemTime>, u64)>>,
    last: Mutex<Option<SyncReport>>,
    /// One sync at a time (a tantivy index has one writer).
    sync_lock: Mutex<()>,
}

/// The runbook index (cheap to clone).
#[derive(Clone)]
pub struct Runbooks {
    inner: Arc<Inner>,
}

impl Runbooks {
    /// An index in `index_dir` over `roots` (the first is `DATA_DIR/runbooks`). Nothing is
    /// read until [`Runbooks::open_or_rebuild`].
    pub fn new(index_dir: PathBuf, roots: Vec<PathBuf>, poll: Duration) -> Runbooks {
        let mut named: Vec<(String, PathBuf)> = Vec::new();
        for (i, r) in roots.into_iter().enumerate() {
            let name = if i == 0 {
                String::new()
            } else {
                let base = r
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| format!("dir{i}"));
                let mut name = base.clone();
                let mut k = 1;
                while named.iter().any(|(n, _)| *n == name) {
                    k += 1;
                    name = format!("{base}{k}");
                }
                name
            };
            named.push((name, r));
        }
        Runbooks {
            inner: Arc::new(Inner {
                dir: index_dir,
                roots: named,
                poll,
                engine: OnceLock::new(),
                ready: std::sync::atomic::AtomicBool::new(false),
                vocab: RwLock::new(Arc::new(Vocab::default())),
                manifest: Mutex::new(BTreeMap::new()),
                stats: Mutex::new(BTreeMap::new()),
                last: Mutex::new(None),
                sync_lock: Mutex::new(()),
            }),
        }
    }

    /// Write the starter runbooks into the first root if that folder does not exist yet (a
    /// folder the operator emptied on purpose is left alone). Returns how many were written.
    pub fn seed_starter(&self) -> Result<usize> {
        let root = &self.inner.roots[0].1;
        if root.exists() {
            return Ok(0);
        }
        std::fs::create_dir_all(root).map_err(|e| io(root, e))?;
        let mut n = 0;
        for name in Starter::iter().filter(|n| n.ends_with(".md")) {
            if let Some(f) = Starter::get(&name) {
                let dest = root.join(name.as_ref());
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                std::fs::write(&dest, &f.data).map_err(|e| io(&dest, e))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether searches can be answered yet.
    pub fn ready(&self) -> bool {
        self.inner.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The last sync's report.
    pub fn last_sync(&self) -> Option<SyncReport> {
        self.inner.last.lock().ok().and_then(|l| l.clone())
    }

    /// Open the index, or rebuild it when it is missing, damaged or of another layout; then
    /// bring it in step with the files. Blocking (run it off the async runtime).
    pub fn open_or_rebuild(&self) -> Result<SyncReport> {
        let _g = self.inner.sync_lock.lock().map_err(|_| poisoned())?;
        let mut rebuilt = false;
        if self.inner.engine.get().is_none() {
            let (engine, manifest, fresh) = open_engine(&self.inner.dir)?;
            rebuilt = fresh;
            *self.inner.manifest.lock().map_err(|_| poisoned())? = manifest;
            let _ = self.inner.engine.set(engine);
        }
        let mut r = self.sync_locked(false)?;
        r.rebuilt |= rebuilt;
        self.inner
            .ready
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(r)
    }

    /// Re-read the folders: index added and changed files, drop removed ones. With `full`,
    /// every file is indexed again.
    pub fn sync(&self, full: bool) -> Result<SyncReport> {
        if !self.ready() {
            let r = self.open_or_rebuild()?;
            if !full {
                return Ok(r);
            }
        }
        let _g = self.inner.sync_lock.lock().map_err(|_| poisoned())?;
        self.sync_locked(full)
    }

    fn sync_locked(&self, full: bool) -> Result<SyncReport> {
        let started = Instant::now();
        let engine = self
            .inner
            .engine
            .get()
            .ok_or_else(|| Error::Internal("runbook index not open".into()))?;
        let f = engine.f;
        let mut report = SyncReport {
            rebuilt: full,
            ..Default::default()
        };
        let files = self.scan(&mut report.errors);
        report.files = files.len();
        let old = self.inner.manifest.lock().map_err(|_| poisoned())?.clone();
        let mut new_manifest = BTreeMap::new();
        let mut to_index: Vec<(String, markdown::Runbook)> = Vec::new();
        let mut stats = self.inner.stats.lock().map_err(|_| poisoned())?.clone();
        let fresh = std::time::SystemTime::now() - Duration::from_secs(2);
        for (rel, abs) in &files {
            let stat = std::fs::metadata(abs)
                .map(|m| (m.modified().ok(), m.len()))
                .ok();
            if !full {
                if let (Some(st), Some(sha)) = (stat, old.get(rel)) {
                    if stats.get(rel) == Some(&st) {
                        new_manifest.insert(rel.clone(), sha.clone());
                        continue;
                    }
                }
            }
            // A stat taken within two seconds of a write may not see a second quick save of
            // the same size (coarse mtimes): do not trust it next time.
            match stat {
                Some(st) if st.0.is_some_and(|m| m < fresh) => {
                    stats.insert(rel.clone(), st);
                }
                _ => {
                    stats.remove(rel);
                }
            }
            let bytes = match std::fs::read(abs) {
                Ok(b) => b,
                Err(e) => {
                    report.errors.push(format!("{rel}: {e}"));
                    continue;
                }
            };
            let sha = crate::kernel::hash::sha256_hex(&bytes);
            let Ok(text) = String::from_utf8(bytes) else {
                report.errors.push(format!("{rel}: not UTF-8 text"));
                continue;
            };
            match old.get(rel) {
                Some(s) if *s == sha && !full => {}
                Some(_) => {
                    report.changed += 1;
                    to_index.push((rel.clone(), markdown::parse(&text, rel)));
                }
                None => {
                    report.added += 1;
                    to_index.push((rel.clone(), markdown::parse(&text, rel)));
                }
            }
            new_manifest.insert(rel.clone(), sha);
        }
        let removed: Vec<String> = old
            .keys()
            .filter(|k| !new_manifest.contains_key(*k))
            .cloned()
            .collect();
        stats.retain(|k, _| new_manifest.contains_key(k));
        report.removed = removed.len();
        if full || !to_index.is_empty() || !removed.is_empty() {
            let mut writer: tantivy::IndexWriter<TantivyDocument> = engine
                .index
                .writer_with_num_threads(1, 20_000_000)
                .map_err(ix)?;
            if full {
                writer.delete_all_documents().map_err(ix)?;
            }
            for path in removed.iter().chain(to_index.iter().map(|(p, _)| p)) {
                writer.delete_term(Term::from_field_text(f.path, path));
            }
            for (path, rb) in &to_index {
                for doc in section_docs(&f, path, rb) {
                    writer.add_document(doc).map_err(ix)?;
                }
            }
            writer.commit().map_err(ix)?;
            // Let the merges the commit started finish (dropping the writer would cancel them
            // and segments would pile up with every sync).
            writer.wait_merging_threads().map_err(ix)?;
            engine.reader.reload().map_err(ix)?;
            write_manifest(&self.inner.dir, &new_manifest)?;
            *self.inner.manifest.lock().map_err(|_| poisoned())? = new_manifest;
            let vocab = build_vocab(engine)?;
            *self.inner.vocab.write().map_err(|_| poisoned())? = Arc::new(vocab);
        } else if self.inner.vocab.read().map_err(|_| poisoned())?.is_empty() {
            let vocab = build_vocab(engine)?;
            *self.inner.vocab.write().map_err(|_| poisoned())? = Arc::new(vocab);
        }
        // Only now that the index holds them are the files' stats trusted.
        *self.inner.stats.lock().map_err(|_| poisoned())? = stats;
        report.sections = engine.reader.searcher().num_docs();
        report.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        if report.added + report.changed + report.removed > 0 || full {
            tracing::info!(
                files = report.files,
                added = report.added,
                changed = report.changed,
                removed = report.removed,
                sections = report.sections,
                took_ms = format!("{:.1}", report.took_ms),
                "runbooks_indexed"
            );
        }
        for e in &report.errors {
            tracing::warn!(error = %e, "runbook_skipped");
        }
        if let Ok(mut l) = self.inner.last.lock() {
            *l = Some(report.clone());
        }
        Ok(report)
    }

    /// Every `.md` file under the roots: (runbook path, file path).
    fn scan(&self, errors: &mut Vec<String>) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for (name, root) in &self.inner.roots {
            if !root.is_dir() {
                continue;
            }
            walk(root, root, name, 0, &mut out, errors);
        }
        out.sort();
        out
    }

    /// Run the background work: open or rebuild, then poll the folders until `closing`
    /// changes.
    pub fn spawn(
        &self,
        mut closing: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let m = me.clone();
            match tokio::task::spawn_blocking(move || m.open_or_rebuild()).await {
                Ok(Ok(r)) => tracing::info!(
                    sections = r.sections,
                    rebuilt = r.rebuilt,
                    took_ms = format!("{:.1}", r.took_ms),
                    "runbook_index_ready"
                ),
                Ok(Err(e)) => tracing::error!(error = %e, "runbook_index_failed"),
                Err(e) => tracing::error!(error = %e, "runbook_index_failed"),
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(me.inner.poll) => {}
                    _ = closing.changed() => return,
                }
                let m = me.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || m.sync(false)).await {
                    tracing::warn!(error = %e, "runbook_sync_failed");
                }
            }
        })
    }

    /// Ranked sections for `p`.
    pub fn search(&self, p: &SearchParams) -> Result<Results> {
        let started = Instant::now();
        let engine = self
            .inner
            .engine
            .get()
            .filter(|_| self.ready())
            .ok_or_else(|| Error::Unavailable {
                message: "the runbook index is being built; retry in a moment".into(),
                retry_after_s: 1,
            })?;
        let f = engine.f;
        let limit = if p.limit == 0 { 10 } else { p.limit };
        if limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("at most {MAX_LIMIT}")));
        }
        if p.q.chars().count() > 500 {
            return Err(Error::invalid("q", "at most 500 characters"));
        }
        let parsed = query::parse(&p.q, &["service", "tag"]);
        let mut filters: Vec<(Field, String)> = Vec::new();
        for (k, v) in &parsed.filters {
            filters.push((if k == "service" { f.service } else { f.tag }, v.clone()));
        }
        if let Some(s) = p.service.as_deref().filter(|s| !s.is_empty()) {
            filters.push((f.service, s.to_lowercase()));
        }
        if let Some(t) = p.tag.as_deref().filter(|s| !s.is_empty()) {
            filters.push((f.tag, t.to_lowercase()));
        }
        let mut analyzer = engine.index.tokenizer_for_field(f.body).map_err(ix)?;
        let vocab = self.inner.vocab.read().map_err(|_| poisoned())?.clone();
        let tf = TextFields {
            fields: vec![
                (f.heading, 2.5),
                (f.title, 0.8),
                (f.keywords, 1.0),
                (f.body, 1.0),
            ],
            phrase_fields: vec![f.body, f.heading],
        };
        let (scoring, matched) = query::build(&parsed, &mut analyzer, &vocab, &tf);
        let nothing = parsed.words.is_empty() && parsed.phrases.is_empty();
        if nothing && filters.is_empty() {
            return Err(Error::invalid("q", "type some words to search for"));
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        match scoring {
            Some(q) => clauses.push((Occur::Must, q)),
            // Words that match nothing in the index: no results (not everything).
            None if !nothing => {
                return Ok(Results {
                    query: p.q.clone(),
                    total: 0,
                    items: vec![],
                    took_ms: started.elapsed().as_secs_f64() * 1000.0,
                })
            }
            None => clauses.push((Occur::Must, Box::new(AllQuery))),
        }
        for (field, v) in filters {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(field, &v),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let q = BooleanQuery::new(clauses);
        let searcher = engine.reader.searcher();
        let (top, total) = searcher
            .search(&q, &(TopDocs::with_limit(limit).order_by_score(), Count))
            .map_err(ix)?;
        let snippets = SnippetGenerator::new(matched.clone(), analyzer.clone(), f.body, 180);
        let mut items = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr).map_err(ix)?;
            let s = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let all = |field: Field| -> Vec<String> {
                doc.get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            };
            let body = s(f.body);
            items.push(Hit {
                path: s(f.path),
                title: s(f.title),
                heading: s(f.section),
                heading_path: s(f.section_path),
                anchor: s(f.anchor),
                services: all(f.service),
                tags: all(f.tag),
                score,
                snippet: snippet_parts(&snippets, &body),
            });
        }
        Ok(Results {
            query: p.q.clone(),
            total,
            items,
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// Every runbook file with its title, services and tags, and the index state.
    pub fn list(&self) -> Result<serde_json::Value> {
        let mut errors = Vec::new();
        let files = self.scan(&mut errors);
        let mut items = Vec::with_capacity(files.len());
        for (rel, abs) in files {
            let Ok(text) = std::fs::read_to_string(&abs) else {
                continue;
            };
            let rb = markdown::parse(&text, &rel);
            items.push(json!({
                "path": rel, "title": rb.title, "services": rb.services, "tags": rb.tags,
                "sections": rb.sections.iter().filter(|s| s.level > 0).count(),
            }));
        }
        Ok(json!({
            "ready": self.ready(),
            "roots": self.inner.roots.iter().map(|(n, p)| json!({"name": n, "path": p})).collect::<Vec<_>>(),
            "last_sync": self.last_sync(),
            "items": items,
        }))
    }

    /// A runbook file by its path (as search results name it).
    pub fn get(&self, path: &str) -> Result<RunbookDoc> {
        let abs = self.resolve(path)?;
        if std::fs::metadata(&abs).is_ok_and(|m| m.len() > MAX_FILE_BYTES) {
            return Err(Error::TooLarge(format!(
                "runbook {path} is larger than {MAX_FILE_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(&abs).map_err(|_| not_found(path))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Storage(format!("runbook {path} is not UTF-8 text")))?;
        let rb = markdown::parse(&text, path);
        Ok(RunbookDoc {
            path: path.to_string(),
            title: rb.title.clone(),
            services: rb.services.clone(),
            tags: rb.tags.clone(),
            sections: rb
                .sections
                .iter()
                .filter(|s| s.level > 0)
                .map(|s| json!({"heading": s.heading(), "anchor": s.anchor, "level": s.level}))
                .collect(),
            markdown: rb.body,
        })
    }

    /// Map a runbook path to its file, refusing anything outside the roots.
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let bad = || Error::invalid("path", "must be a runbook path such as backup-restore.md");
        if path.is_empty()
            || path.len() > 512
            || !path.ends_with(".md")
            || path.contains('\\')
            || path.contains('\0')
        {
            return Err(bad());
        }
        let rel = Path::new(path);
        if rel.components().any(|c| !matches!(c, Component::Normal(_)))
            || path.split('/').any(|seg| seg.starts_with('.'))
        {
            return Err(bad());
        }
        // `<root name>/…` for extra roots, plain paths for the first.
        let (root, inner) = self
            .inner
            .roots
            .iter()
            .skip(1)
            .find_map(|(name, root)| {
                path.strip_prefix(&format!("{name}/"))
                    .map(|rest| (root.clone(), rest.to_string()))
            })
            .unwrap_or_else(|| (self.inner.roots[0].1.clone(), path.to_string()));
        let abs = root.join(&inner);
        // Symlinks must not lead out of the root.
        let (Ok(real), Ok(real_root)) = (abs.canonicalize(), root.canonicalize()) else {
            return Err(not_found(path));
        };
        if !real.starts_with(&real_root) || !real.is_file() {
            return Err(not_found(path));
        }
        Ok(real)
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    name: &str,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
    errors: &mut Vec<String>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let real_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let Ok(entries) = std::fs::read_dir(dir) else {
        errors.push(format!("{}: cannot be read", dir.display()));
        return;
    };
    for e in entries.flatten() {
        let fname = e.file_name().to_string_lossy().to_string();
        if fname.starts_with('.') {
            continue;
        }
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        // Symlinked folders are not followed (no loops, nothing outside the root).
        if ft.is_dir() {
            walk(root, &p, name, depth + 1, out, errors);
        } else if fname.ends_with(".md") && (ft.is_file() || ft.is_symlink()) {
            // A symlinked file is followed only when it stays inside the root (a link to
            // /proc/self/environ or ~/.ssh must not become searchable).
            if ft.is_symlink()
                && !p
                    .canonicalize()
                    .is_ok_and(|real| real.starts_with(&real_root) && real.is_file())
            {
                continue;
            }
            let Ok(rel) = p.strip_prefix(root) else {
                continue;
            };
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            let rel = rel.join("/");
            let rel = if name.is_empty() {
                rel
            } else {
                format!("{name}/{rel}")
            };
            match std::fs::metadata(&p) {
                Ok(m) if m.len() > MAX_FILE_BYTES => {
                    errors.push(format!("{rel}: larger than {MAX_FILE_BYTES} bytes"))
                }
                Ok(m) if m.is_file() => out.push((rel, p)),
                _ => {}
            }
        }
    }
}

fn section_docs(f: &Fields, path: &str, rb: &markdown::Runbook) -> Vec<TantivyDocument> {
    let mut docs = Vec::new();
    for s in &rb.sections {
        let mut d = TantivyDocument::new();
        d.add_text(f.path, path);
        d.add_text(f.title, &rb.title);
        // The section's own heading is what it is about; the runbook title says which
        // runbook it belongs to (weighted lower, so every section does not match it alike).
        d.add_text(f.heading, s.heading());
        d.add_text(f.section_path, s.path.join(" › "));
        d.add_text(f.section, s.heading());
        d.add_text(f.anchor, &s.anchor);
        d.add_text(f.body, markdown::plain(&s.text));
        let mut kw = rb.tags.join(" ");
        kw.push(' ');
        kw.push_str(&rb.services.join(" "));
        d.add_text(f.keywords, kw);
        for t in &rb.tags {
            d.add_text(f.tag, t);
        }
        for sv in &rb.services {
            d.add_text(f.service, sv);
        }
        docs.push(d);
    }
    docs
}

fn snippet_parts(gen: &SnippetGenerator, body: &str) -> Vec<Part> {
    let snip = gen.snippet(body);
    let frag = snip.fragment();
    if frag.is_empty() {
        // No matched word in the body (e.g. a heading match): the section's opening.
        let mut end = body.len().min(180);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let t = body[..end].trim();
        return if t.is_empty() {
            vec![]
        } else {
            vec![Part {
                text: format!("{t}{}", if end < body.len() { "…" } else { "" }),
                hl: false,
            }]
        };
    }
    let mut parts = Vec::new();
    let mut at = 0;
    for r in snip.highlighted() {
        if r.start > at {
            parts.push(Part {
                text: frag[at..r.start].to_string(),
                hl: false,
            });
        }
        parts.push(Part {
            text: frag[r.start..r.end].to_string(),
            hl: true,
        });
        at = r.end;
    }
    if at < frag.len() {
        parts.push(Part {
            text: frag[at..].to_string(),
            hl: false,
        });
    }
    parts
}

fn build_vocab(engine: &Engine) -> Result<Vocab> {
    let searcher = engine.reader.searcher();
    let mut terms = Vec::new();
    for seg in searcher.segment_readers() {
        for field in [
            engine.f.title,
            engine.f.heading,
            engine.f.body,
            engine.f.keywords,
        ] {
            let inv = seg.inverted_index(field).map_err(ix)?;
            let mut stream = inv
                .terms()
                .stream()
                .map_err(|e| Error::Storage(e.to_string()))?;
            while stream.advance() {
                if let Ok(t) = std::str::from_utf8(stream.key()) {
                    terms.push(t.to_string());
                }
            }
        }
    }
    Ok(Vocab::new(terms))
}

/// Open the index in `dir`, or create it empty (wiping whatever was there) when it is
/// missing, unreadable or of another layout. Returns the engine, the manifest, and whether
/// it was created fresh.
fn open_engine(dir: &Path) -> Result<(Engine, BTreeMap<String, String>, bool)> {
    let (schema, f) = schema();
    let manifest_path = dir.join(MANIFEST);
    let existing = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|m| m["version"] == INDEX_VERSION)
        .and_then(|m| {
            let files: BTreeMap<String, String> =
                serde_json::from_value(m["files"].clone()).ok()?;
            let index = Index::open_in_dir(dir).ok()?;
            (index.schema() == schema).then_some((index, files))
        });
    let (index, manifest, fresh) = match existing {
        Some((index, files)) => (index, files, false),
        None => {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            let index = Index::create_in_dir(dir, schema).map_err(ix)?;
            (index, BTreeMap::new(), true)
        }
    };
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(ix)?;
    Ok((Engine { index, reader, f }, manifest, fresh))
}

fn write_manifest(dir: &Path, files: &BTreeMap<String, String>) -> Result<()> {
    let body = serde_json::to_vec_pretty(&json!({"version": INDEX_VERSION, "files": files}))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, body).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, dir.join(MANIFEST)).map_err(|e| io(dir, e))
}

fn not_found(path: &str) -> Error {
    Error::NotFound(format!(
        "no runbook {}",
        crate::kernel::text::clip(path, 200)
    ))
}

fn ix(e: tantivy::TantivyError) -> Error {
    Error::Storage(format!("search index: {e}"))
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", p.display()))
}

fn poisoned() -> Error {
    Error::Internal("a search index lock was poisoned".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn fixture() -> (tempfile::TempDir, Runbooks) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("runbooks");
        write(
            &root,
            "backup.md",
            "---\ntitle: Backup and restore\nservices: [sofiia]\ntags: [backup, storage]\n---\n\
             # Backup and restore\n\n## Taking a backup\nRun the backup command while the server keeps running.\n\n\
             ## Restoring\nStop the server, then restore the snapshot folder into the data directory.\n",
        );
        write(
            &root,
            "disk.md",
            "---\ntitle: Disk full\nservices: [sofiia, router]\ntags: [disk]\n---\n\
             # Disk full\n\n## Symptoms\nWrites are refused and the write ahead log cannot grow.\n\n\
             ## Freeing space\nDelete old backups and compact the store.\n",
        );
        write(
            &root,
            "ops/keys.md",
            "# Key rotation\n\n## Rotating agent keys\nIssue a new key, switch the agent, revoke the old one.\n",
        );
        let rb = Runbooks::new(
            t.path().join("index"),
            vec![root],
            Duration::from_secs(3600),
        );
        let r = rb.open_or_rebuild().unwrap();
        assert!(r.rebuilt);
        assert_eq!(r.files, 3);
        (t, rb)
    }

    fn top(rb: &Runbooks, q: &str) -> Vec<String> {
        rb.search(&SearchParams {
            q: q.into(),
            ..Default::default()
        })
        .unwrap()
        .items
        .into_iter()
        .map(|h| format!("{}#{}", h.path, h.anchor))
        .collect()
    }

    #[test]
    fn stems_typos_prefixes_and_phrases() {
        let (_t, rb) = fixture();
        // Word forms: "restore" finds "Restoring"; "rotated keys" finds "Rotating agent keys".
        assert_eq!(top(&rb, "restore ")[0], "backup.md#restoring");
        assert_eq!(
            top(&rb, "rotated keys ")[0],
            "ops/keys.md#rotating-agent-keys"
        );
        // Typos.
        assert_eq!(top(&rb, "bakcup ")[0], "backup.md#taking-a-backup");
        assert_eq!(top(&rb, "freing spcae ")[0], "disk.md#freeing-space");
        // The word being typed is completed.
        assert_eq!(top(&rb, "freeing spa")[0], "disk.md#freeing-space");
        assert_eq!(top(&rb, "compa")[0], "disk.md#freeing-space");
        // A phrase must appear as such.
        assert_eq!(top(&rb, "\"write ahead log\"")[0], "disk.md#symptoms");
        assert!(top(&rb, "\"log ahead write\"").is_empty());
        // Nothing sensible: no results, not everything.
        assert!(top(&rb, "zzzzqqq ").is_empty());
    }

    #[test]
    fn snippets_highlight_the_matched_words() {
        let (_t, rb) = fixture();
        let r = rb
            .search(&SearchParams {
                q: "compact".into(),
                ..Default::default()
            })
            .unwrap();
        let hl: Vec<&str> = r.items[0]
            .snippet
            .iter()
            .filter(|p| p.hl)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hl, ["compact"]);
        assert_eq!(r.items[0].heading, "Freeing space");
        assert_eq!(r.items[0].heading_path, "Disk full › Freeing space");
    }

    #[test]
    fn filters_by_service_and_tag() {
        let (_t, rb) = fixture();
        let search = |q: &str, service: Option<&str>, tag: Option<&str>| {
            rb.search(&SearchParams {
                q: q.into(),
                service: service.map(String::from),
                tag: tag.map(String::from),
                limit: 10,
            })
            .unwrap()
            .items
            .into_iter()
            .map(|h| h.path)
            .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(
            search("store ", Some("router"), None)
                .into_iter()
                .collect::<Vec<_>>(),
            ["disk.md"]
        );
        assert_eq!(
            search("tag:backup", None, None)
                .into_iter()
                .collect::<Vec<_>>(),
            ["backup.md"]
        );
        assert!(search("keys ", None, Some("disk")).is_empty());
        assert!(search("restore ", Some("router"), None).is_empty());
        assert!(rb
            .search(&SearchParams::default())
            .is_err_and(|e| e.code() == "invalid_field"));
    }

    #[test]
    fn changed_added_and_deleted_files_are_picked_up() {
        let (t, rb) = fixture();
        let root = t.path().join("runbooks");
        assert!(top(&rb, "flamingo ").is_empty());
        write(
            &root,
            "disk.md",
            "# Disk full\n\n## Flamingo check\nLook for the flamingo.\n",
        );
        write(&root, "new.md", "# New\n\n## Pelican\nA pelican section.\n");
        std::fs::remove_file(root.join("ops/keys.md")).unwrap();
        let r = rb.sync(false).unwrap();
        assert_eq!((r.added, r.changed, r.removed), (1, 1, 1), "{r:?}");
        assert_eq!(top(&rb, "flamingo ")[0], "disk.md#flamingo-check");
        assert_eq!(top(&rb, "pelican ")[0], "new.md#pelican");
        assert!(top(&rb, "rotating ").is_empty());
        assert!(top(&rb, "compact ").is_empty());
        // Nothing changed: nothing is re-read.
        let r = rb.sync(false).unwrap();
        assert_eq!((r.added, r.changed, r.removed), (0, 0, 0));
    }

    #[test]
    fn a_deleted_or_outdated_index_is_rebuilt() {
        let (t, rb) = fixture();
        drop(rb);
        let root = t.path().join("runbooks");
        let index = t.path().join("index");
        std::fs::remove_dir_all(&index).unwrap();
        let rb = Runbooks::new(index.clone(), vec![root.clone()], Duration::from_secs(1));
        assert!(rb
            .search(&SearchParams {
                q: "x".into(),
                ..Default::default()
            })
            .is_err_and(|e| e.code() == "unavailable"));
        let r = rb.open_or_rebuild().unwrap();
        assert!(r.rebuilt);
        assert_eq!(top(&rb, "restore ")[0], "backup.md#restoring");
        drop(rb);
        // An index of another layout version is thrown away.
        let m = index.join(MANIFEST);
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replace("\"version\": 2", "\"version\": 0");
        std::fs::write(&m, text).unwrap();
        let rb = Runbooks::new(index.clone(), vec![root.clone()], Duration::from_secs(1));
        assert!(rb.open_or_rebuild().unwrap().rebuilt);
        drop(rb);
        // A clean reopen keeps the index.
        let rb = Runbooks::new(index, vec![root], Duration::from_secs(1));
        let r = rb.open_or_rebuild().unwrap();
        assert!(!r.rebuilt);
        assert_eq!((r.added, r.changed), (0, 0));
        assert_eq!(top(&rb, "restore ")[0], "backup.md#restoring");
    }

    #[test]
    fn get_refuses_paths_outside_the_roots() {
        let (t, rb) = fixture();
        let d = rb.get("ops/keys.md").unwrap();
        assert_eq!(d.title, "Key rotation");
        assert_eq!(d.sections[1]["anchor"], "rotating-agent-keys");
        for bad in [
            "../x.md",
            "/etc/passwd.md",
            "ops/../../x.md",
            ".hidden.md",
            "a\\b.md",
            "x.txt",
        ] {
            assert!(
                rb.get(bad).is_err_and(|e| e.code() == "invalid_field"),
                "{bad}"
            );
        }
        assert!(rb.get("missing.md").is_err_and(|e| e.code() == "not_found"));
        #[cfg(unix)]
        {
            std::fs::write(t.path().join("secret.md"), "# secret").unwrap();
            std::os::unix::fs::symlink(
                t.path().join("secret.md"),
                t.path().join("runbooks/link.md"),
            )
            .unwrap();
            assert!(rb.get("link.md").is_err_and(|e| e.code() == "not_found"));
            // Nor does the index follow it: what it points to never becomes searchable.
            std::fs::write(t.path().join("secret.md"), "# secret\n\nplatypus token\n").unwrap();
            rb.sync(true).unwrap();
            assert!(top(&rb, "platypus ").is_empty());
            // A link that stays inside the root is followed.
            std::os::unix::fs::symlink(
                t.path().join("runbooks/backup.md"),
                t.path().join("runbooks/alias.md"),
            )
            .unwrap();
            assert_eq!(rb.sync(false).unwrap().added, 1);
        }
    }
}
