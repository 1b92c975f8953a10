//! Policy files: `CONFIG_DIR/<name>.yml` when it exists, else the built-in default shipped in
//! `config/`; every error names the file (and serde-saphyr's line and column).

use std::path::Path;

use super::{parse_yaml, ConfigError};

/// `CONFIG_DIR/name` if it exists, else the built-in default text.
pub fn load<T: serde::de::DeserializeOwned>(
    dir: Option<&Path>,
    name: &str,
    default: &str,
) -> Result<T, ConfigError> {
    if let Some(d) = dir {
        let path = d.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse_yaml(&path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
        }
    }
    parse_yaml(Path::new(&format!("(built-in) {name}")), default)
}
