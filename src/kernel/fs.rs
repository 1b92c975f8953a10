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

/// Replace `path` atomically: write a temporary file beside it, fsync it, rename it over
/// `path` and fsync the folder. Readers see the old file or the new one, never a part; a
/// crash leaves at most a stray `.tmp-*` file. Missing folders are created.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| crate::error::Error::Io(format!("{} has no folder", path.display())))?;
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".tmp-{name}-{}",
        crate::kernel::clock::random_hex(6)
    ));
    if let Err(e) = write_synced(&tmp, bytes).and_then(|_| Ok(std::fs::rename(&tmp, path)?)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Best-effort fsync of a directory so a rename inside it is durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Open options whose new file is readable and writable by its owner only (0600 on unix),
/// from the first byte: for the database, its write-ahead log, the agent key hashes and the
/// audit secret, which sit in `DATA_DIR` beside files read-only users may see. Elsewhere the
/// folder's ACLs apply.
pub fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut o = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Make an open file owner-only (one created before this rule, or by a copy that kept the
/// source's mode).
pub fn restrict(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Make the file at `path` owner-only.
pub fn make_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            crate::error::Error::Io(format!("{}: cannot make it private: {e}", path.display()))
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// [`write_synced`] to an owner-only file (also when it existed with another mode).
pub fn write_synced_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    restrict(&f)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_are_owner_only_new_or_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_synced_private(&p, b"x").unwrap();
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_synced_private(&p, b"y").unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"y");
    }
}
