//! Search on tantivy: runbook sections ([`runbooks`]) and incident similarity
//! ([`incidents`]). Both indexes live under `DATA_DIR/index/`, are derived from their sources
//! (runbook files, the store) and are rebuilt in the background when missing or outdated.
//! [`query`] turns what an operator types into a query (stems, typos, prefixes, phrases).

pub mod markdown;
pub mod query;
pub mod runbooks;

/// The search rooms, as the gateway's tools and the HTTP routes reach them.
#[derive(Clone)]
pub struct Search {
    pub runbooks: runbooks::Runbooks,
}

impl Search {
    /// The indexes of a data dir (nothing is read until they are started).
    pub fn new(settings: &crate::config::Settings) -> Search {
        let index = settings.data_dir.join("index");
        Search {
            runbooks: runbooks::Runbooks::new(
                index.join("runbooks"),
                settings.runbook_roots(),
                std::time::Duration::from_millis(settings.runbooks_poll_ms),
            ),
        }
    }
}
