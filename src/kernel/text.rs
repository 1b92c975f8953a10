//! Checks and clipping of untrusted text: what a name, a line or a block of text may
//! contain, and how long a piece of it an error message may echo.

use crate::error::{Error, Result};

/// Shorten untrusted text for an error message.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// A short identifier: letters, digits and `._:-/`, 1..=max bytes.
pub fn check_token(field: &str, v: &str, max: usize) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if v.len() > max {
        return Err(Error::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-' | b'/'))
    {
        return Err(Error::invalid(
            field,
            format!(
                "'{}' may only contain letters, digits and . _ : - /",
                clip(v, 64)
            ),
        ));
    }
    Ok(())
}

/// One line of text without control characters.
pub fn check_line(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            "must not contain control characters or newlines",
        ));
    }
    Ok(())
}

/// Multi-line text: no control characters other than newline and tab.
pub fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}
