//! Search on tantivy: runbook sections ([`runbooks`]) and incident similarity
//! ([`incidents`]). Both indexes live under `DATA_DIR/index/`, are derived from their sources
//! (runbook files, the store) and are rebuilt in the background when missing or outdated.
//! [`query`] turns what an operator types into a query (stems, typos, prefixes, phrases).

pub mod incidents;
pub mod markdown;
pub mod query;
pub mod runbooks;

/// The search rooms, as the gateway's tools and the HTTP routes reach them.
#[derive(Clone)]
pub struct Search {
    pub runbooks: runbooks::Runbooks,
    pub incidents: incidents::IncidentIndex,
}

impl Search {
    /// The indexes of a data dir (nothing is read until they are started).
    pub fn new(settings: &crate::config::Settings, store: crate::store::Store) -> Search {
        let index = settings.data_dir.join("index");
        Search {
            incidents: incidents::IncidentIndex::new(index.join("incidents"), store),
            runbooks: runbooks_for(settings),
        }
    }
}

/// The runbook index of a data dir (the CLI uses it without opening the store).
pub fn runbooks_for(settings: &crate::config::Settings) -> runbooks::Runbooks {
    runbooks::Runbooks::new(
        settings.data_dir.join("index").join("runbooks"),
        settings.runbook_roots(),
        std::time::Duration::from_millis(settings.runbooks_poll_ms),
    )
}
