//! JSON Lines files, one record per line, with `file:line` errors. Writing goes through the
//! `jsonl` crate; reading is line by line here so blank and non-UTF-8 lines are reported as such.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A line that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// File name (as given).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Every line of `path` parsed as `T`, with its line number; bad lines are collected, not fatal.
/// A missing file yields no lines.
pub fn read_file<T: DeserializeOwned>(
    path: &Path,
    errors: &mut Vec<LineError>,
) -> Result<Vec<(usize, T)>> {
    let name = path.display().to_string();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(format!("{name}: {e}"))),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut line = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::Io(format!("{name}:{}: {e}", line + 1)))?;
        if n == 0 {
            break;
        }
        line += 1;
        let mut err = |reason: String| {
            errors.push(LineError {
                file: name.clone(),
                line,
                reason,
            })
        };
        let Ok(text) = std::str::from_utf8(&buf) else {
            err("not valid UTF-8".into());
            continue;
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            err("blank line".into());
            continue;
        }
        match serde_json::from_str::<T>(text) {
            Ok(v) => out.push((line, v)),
            // serde's own "line 1 column N" is noise here: the line number is ours.
            Err(e) => err(format!(
                "{} (column {})",
                strip_position(&e.to_string()),
                e.column()
            )),
        }
    }
    Ok(out)
}

fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map(|i| &msg[..i]).unwrap_or(msg)
}

/// Write `items` to `path` atomically (temp file, fsync, rename).
pub fn write_file<'a, T: Serialize + 'a>(
    path: &Path,
    items: impl IntoIterator<Item = &'a T>,
) -> Result<usize> {
    let tmp = path.with_extension("jsonl.tmp");
    let file = File::create(&tmp).map_err(|e| Error::Io(format!("{}: {e}", tmp.display())))?;
    let mut w = BufWriter::new(file);
    let mut n = 0;
    for item in items {
        jsonl::write(&mut w, item).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        n += 1;
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl");
        let items = vec![serde_json::json!({"a": 1}), serde_json::json!({"a": 2})];
        assert_eq!(write_file(&p, &items).unwrap(), 2);
        let mut errs = Vec::new();
        let back: Vec<(usize, serde_json::Value)> = read_file(&p, &mut errs).unwrap();
        assert_eq!(back.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 2]);
        assert!(errs.is_empty());

        std::fs::write(&p, "{\"a\":1}\n{oops\n\n{\"a\":3}\n").unwrap();
        let back: Vec<(usize, serde_json::Value)> = read_file(&p, &mut errs).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].0, 4);
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
        assert!(errs[0]
            .to_string()
            .starts_with(&format!("{}:2:", p.display())));
        assert_eq!(errs[1].reason, "blank line");
        assert!(
            errs[0]
                .reason
                .starts_with("key must be a string (column 2)"),
            "{}",
            errs[0].reason
        );
    }
}
