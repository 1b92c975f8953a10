//! JSON Lines files, one record per line, with `file:line` errors. Writing goes through the
//! `jsonl` crate; reading is line by line here so blank and non-UTF-8 lines are reported as such.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
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

/// Longest line a reader accepts; a longer one is reported (and skipped) rather than held in
/// memory. Far above any valid record (the largest fields are 64 KiB of event meta and 20,000
/// characters of text, at most 6 bytes each when escaped).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Reads a JSON Lines source one line at a time, reusing one buffer, so memory does not grow
/// with the file.
pub struct LineReader<R> {
    reader: BufReader<R>,
    name: String,
    buf: Vec<u8>,
    line: usize,
    bytes: u64,
    too_long: bool,
}

impl<R: Read> LineReader<R> {
    /// A reader of `source`, named `name` in errors.
    pub fn new(name: impl Into<String>, source: R) -> Self {
        LineReader {
            reader: BufReader::with_capacity(64 * 1024, source),
            name: name.into(),
            buf: Vec::new(),
            line: 0,
            bytes: 0,
            too_long: false,
        }
    }

    /// Move to the next line and return its 1-based number; `None` at the end of the source.
    /// [`LineReader::text`] then gives the line.
    pub fn next_line(&mut self) -> Result<Option<usize>> {
        self.buf.clear();
        self.too_long = false;
        let mut any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(format!("{}:{}: {e}", self.name, self.line + 1))),
            };
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if !self.too_long && self.buf.len() + take <= MAX_LINE_BYTES + 2 {
                self.buf.extend_from_slice(&chunk[..take]);
            } else {
                self.too_long = true;
                self.buf.clear();
            }
            self.reader.consume(take);
            self.bytes += take as u64;
            if end {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(self.line))
    }

    /// The current line's text without its line end, or why it cannot be used (too long,
    /// not UTF-8, blank).
    pub fn text(&self) -> std::result::Result<&str, String> {
        if self.too_long {
            return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
        }
        let Ok(text) = std::str::from_utf8(&self.buf) else {
            return Err("not valid UTF-8".into());
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if text.len() > MAX_LINE_BYTES {
            return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
        }
        if text.trim().is_empty() {
            return Err("blank line".into());
        }
        Ok(text)
    }

    /// The bytes of the last line as read (with its line end; empty if it was too long).
    pub fn raw(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }
}

/// Parse one line's text as `T`; the error names the column, not serde's "line 1".
pub fn parse_line<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    serde_json::from_str::<T>(text)
        .map_err(|e| format!("{} (column {})", strip_position(&e.to_string()), e.column()))
}

/// Every line of `path` parsed as `T`, with its line number; bad lines are collected, not fatal.
/// A missing file yields no lines. (Holds the whole file: for small files; large imports
/// stream with [`LineReader`].)
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
    let mut reader = LineReader::new(name.clone(), file);
    let mut out = Vec::new();
    while let Some(line) = reader.next_line()? {
        match reader.text().and_then(parse_line::<T>) {
            Ok(v) => out.push((line, v)),
            Err(reason) => errors.push(LineError {
                file: name.clone(),
                line,
                reason,
            }),
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
    fn the_line_reader_bounds_lines_and_counts_bytes() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let src = format!("{{\"a\":1}}\r\n\n{long}\n\u{e9}\n{{\"b\":2}}");
        let mut bytes = src.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(b"\xff\xfe\n{\"c\":3}");
        let total = bytes.len() as u64;
        let mut r = LineReader::new("t", bytes.as_slice());
        let mut seen = Vec::new();
        while let Some(n) = r.next_line().unwrap() {
            seen.push((n, r.text().map(str::to_string)));
        }
        let too_long = format!("longer than {MAX_LINE_BYTES} bytes");
        assert_eq!(
            seen,
            vec![
                (1, Ok("{\"a\":1}".to_string())),
                (2, Err("blank line".to_string())),
                (3, Err(too_long)),
                (4, Ok("\u{e9}".to_string())),
                (5, Ok("{\"b\":2}".to_string())),
                (6, Err("not valid UTF-8".to_string())),
                // The last line needs no line end.
                (7, Ok("{\"c\":3}".to_string())),
            ]
        );
        assert_eq!(r.bytes_read(), total);
        // A long line is never held: the buffer stays within the limit.
        assert!(
            r.buf.capacity() <= 2 * MAX_LINE_BYTES,
            "{}",
            r.buf.capacity()
        );
    }

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
