//! Principals and keys. The operator's key is `SOFIIA_CONSOLE_API_KEY`; agent keys are bound
//! to one agent id and stored only as sha256 hashes in `DATA_DIR/agent_keys.yml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Holder of `SOFIIA_CONSOLE_API_KEY` (or the local console in open dev mode).
    Operator,
    /// An agent key, bound to this agent id (and, if issued with one, this role).
    Agent {
        agent_id: String,
        role: Option<String>,
    },
    /// Dev with no key configured: anyone on this machine; the role comes from `agent_id`.
    Open,
}

impl Principal {
    /// Name for audit and logs.
    pub fn name(&self) -> String {
        match self {
            Principal::Operator => "operator".into(),
            Principal::Agent { agent_id, .. } => format!("agent:{agent_id}"),
            Principal::Open => "open".into(),
        }
    }
}

/// One issued agent key (hash only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub agent_id: String,
    /// Role the key is bound to; none = the agent's role in `rbac_tools_matrix.yml`.
    #[serde(default)]
    pub role: Option<String>,
    pub sha256: String,
    pub created_at: String,
}

/// `DATA_DIR/agent_keys.yml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// File name of the agent key registry.
pub const KEYS_FILE: &str = "agent_keys.yml";

/// The keys sofiia accepts. The agent key file is re-read when it changes (checked at most
/// every two seconds), so an issued or deleted key takes effect without a restart.
#[derive(Debug)]
pub struct Keys {
    operator_sha: Option<String>,
    prod: bool,
    path: PathBuf,
    state: std::sync::RwLock<KeyState>,
}

#[derive(Debug)]
struct KeyState {
    agents: Vec<KeyEntry>,
    modified: Option<std::time::SystemTime>,
    checked: std::time::Instant,
}

fn sha(key: &str) -> String {
    crate::kernel::hash::sha256_hex(key.as_bytes())
}

/// Whether `presented` is `secret`, compared as sha256 digests without an early exit.
pub fn key_matches(presented: &str, secret: &str) -> bool {
    same(&sha(presented), &sha(secret))
}

/// Compare without an early exit on the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn read_keys(path: &Path) -> Result<(Vec<KeyEntry>, Option<std::time::SystemTime>)> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let file: KeyFile = match std::fs::read_to_string(path) {
        Ok(t) => crate::config::parse_yaml(path, &t).map_err(|e| Error::Io(e.0))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KeyFile::default(),
        Err(e) => return Err(Error::Io(format!("{}: {e}", path.display()))),
    };
    Ok((file.keys, modified))
}

impl Keys {
    /// Load the agent key registry and take the operator key.
    pub fn load(data_dir: &Path, operator_key: Option<&str>, prod: bool) -> Result<Keys> {
        let path = data_dir.join(KEYS_FILE);
        let (agents, modified) = read_keys(&path)?;
        // A key file from before it was written owner-only is tightened at start.
        if path.exists() {
            if let Err(e) = crate::kernel::fs::make_private(&path) {
                tracing::warn!(error = %e, "agent_keys_not_private");
            }
        }
        Ok(Keys {
            operator_sha: operator_key.filter(|k| !k.is_empty()).map(sha),
            prod,
            path,
            state: std::sync::RwLock::new(KeyState {
                agents,
                modified,
                checked: std::time::Instant::now(),
            }),
        })
    }

    /// Roles named by issued keys, as (agent, role) (checked against the RBAC matrix at start).
    pub fn roles(&self) -> Vec<(String, String)> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.agents
            .iter()
            .filter_map(|e| e.role.clone().map(|r| (e.agent_id.clone(), r)))
            .collect()
    }

    /// Re-read the key file if it changed (at most every two seconds). A file that no longer
    /// parses is reported and the keys loaded before stay in force.
    fn refresh(&self) {
        {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            if st.checked.elapsed() < std::time::Duration::from_secs(2) {
                return;
            }
        }
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        st.checked = std::time::Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == st.modified {
            return;
        }
        match read_keys(&self.path) {
            Ok((agents, modified)) => {
                tracing::info!(keys = agents.len(), "agent_keys_reloaded");
                st.agents = agents;
                st.modified = modified;
            }
            Err(e) => tracing::warn!(error = %e, "agent_keys_reload_failed"),
        }
    }

    /// Whether requests must carry a key (prod, or any operator key configured).
    pub fn required(&self) -> bool {
        self.prod || self.operator_sha.is_some()
    }

    /// Resolve a presented key (or its absence) to a principal.
    pub fn authenticate(&self, key: Option<&str>) -> Result<Principal> {
        match key.filter(|k| !k.is_empty()) {
            Some(k) => {
                let h = sha(k);
                if self.operator_sha.as_deref().is_some_and(|o| same(o, &h)) {
                    return Ok(Principal::Operator);
                }
                self.refresh();
                let st = self.state.read().unwrap_or_else(|p| p.into_inner());
                if let Some(e) = st.agents.iter().find(|e| same(&e.sha256, &h)) {
                    return Ok(Principal::Agent {
                        agent_id: e.agent_id.clone(),
                        role: e.role.clone(),
                    });
                }
                Err(Error::Unauthorized("the API key is not valid".into()))
            }
            None if self.required() => Err(Error::Unauthorized(
                "an API key is required (Authorization: Bearer <key> or X-API-Key)".into(),
            )),
            None => Ok(Principal::Open),
        }
    }
}

/// The issued keys (hashes and dates).
pub fn list_keys(data_dir: &Path) -> Result<Vec<KeyEntry>> {
    Ok(read_keys(&data_dir.join(KEYS_FILE))?.0)
}

/// Issue a new key for `agent_id`: store its hash, return the key (shown once).
pub fn issue_key(data_dir: &Path, agent_id: &str, role: Option<&str>) -> Result<(String, PathBuf)> {
    crate::kernel::text::check_token("agent_id", agent_id, 64)?;
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(KEYS_FILE);
    let mut file = KeyFile {
        keys: read_keys(&path)?.0,
    };
    let key = format!("sk_{}", crate::kernel::clock::random_key_hex(24)?);
    file.keys.push(KeyEntry {
        agent_id: agent_id.to_string(),
        role: role.map(str::to_string),
        sha256: sha(&key),
        created_at: crate::kernel::clock::rfc3339(time::OffsetDateTime::now_utc()),
    });
    let mut text = String::from("# Agent API keys: sha256 of each key, never the key itself.\n# Issue with `sofiia keys issue AGENT`; delete an entry to revoke it\n# (a running sofiia applies changes within 2 s; a file that does not parse is refused and the\n# previous keys stay in force until it is fixed).\n");
    text.push_str(&serde_saphyr::to_string(&file).map_err(|e| Error::Internal(e.to_string()))?);
    let tmp = path.with_extension("yml.tmp");
    // Owner-only, like audit.key: the hashes let anyone who reads them try keys offline.
    crate::kernel::fs::write_synced_private(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, &path)?;
    Ok((key, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_to_principals() {
        let dir = tempfile::tempdir().unwrap();
        let (k, _) = issue_key(dir.path(), "helion", None).unwrap();
        let keys = Keys::load(dir.path(), Some("op-secret"), false).unwrap();
        assert!(keys.required());
        assert_eq!(
            keys.authenticate(Some("op-secret")).unwrap(),
            Principal::Operator
        );
        assert_eq!(
            keys.authenticate(Some(&k)).unwrap(),
            Principal::Agent {
                agent_id: "helion".into(),
                role: None,
            }
        );
        assert!(matches!(
            keys.authenticate(Some("nope")),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            keys.authenticate(None),
            Err(Error::Unauthorized(_))
        ));
        let stored = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!stored.contains(&k), "only the hash is stored");
        let open = Keys::load(dir.path(), None, false).unwrap();
        assert_eq!(open.authenticate(None).unwrap(), Principal::Open);
        let prod = Keys::load(dir.path(), None, true).unwrap();
        assert!(prod.authenticate(None).is_err());
    }

    #[test]
    fn no_key_is_issued_when_the_os_random_source_fails() {
        let dir = tempfile::tempdir().unwrap();
        crate::kernel::clock::fail_os_random_on_this_thread(true);
        let r = issue_key(dir.path(), "helion", None);
        crate::kernel::clock::fail_os_random_on_this_thread(false);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("OS random source"), "{e}");
        assert!(!dir.path().join(KEYS_FILE).exists(), "nothing written");
    }
}
