//! Durable file writes: a file is synced before it counts as written, and the folder after a
//! rename, so a crash never leaves half a file behind a success.

use std::path::Path;

use crate::error::Result;

/// Write a file and fsync it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Best-effort fsync of a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
