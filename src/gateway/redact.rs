//! Redaction of secrets and personal data in tool results (`data_governance.yml`).

use regex::{Regex, RegexSet};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::ConfigError;

/// One rule of `data_governance.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub regex: String,
    pub replace: String,
}

/// `data_governance.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataGovernance {
    pub audit_retention_days: u32,
    /// Denied calls are kept this long (default: a year, and never less than the above).
    #[serde(default)]
    pub audit_denied_retention_days: Option<u32>,
    pub redaction: Vec<Rule>,
}

/// Compiled redaction rules.
#[derive(Debug, Clone)]
pub struct Redactor {
    set: RegexSet,
    secret_key: Regex,
    rules: Vec<(Regex, String)>,
    /// Audit records older than this many days may be removed by the cleanup job.
    pub audit_retention_days: u32,
    /// Denied calls are kept this many days.
    pub audit_denied_retention_days: u32,
}

impl Redactor {
    /// Compile the rules; a bad regex is an error naming the rule.
    pub fn new(g: &DataGovernance, file: &str) -> Result<Redactor, ConfigError> {
        let mut rules = Vec::new();
        for (i, r) in g.redaction.iter().enumerate() {
            let re = Regex::new(&r.regex)
                .map_err(|e| ConfigError(format!("{file}: redaction[{i}] ({}): {e}", r.name)))?;
            rules.push((re, r.replace.clone()));
        }
        let set = RegexSet::new(g.redaction.iter().map(|r| r.regex.as_str()))
            .map_err(|e| ConfigError(format!("{file}: redaction: {e}")))?;
        let secret_key = Regex::new(
            r"(?i)passw(or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential",
        )
        .map_err(|e| ConfigError(format!("{file}: {e}")))?;
        Ok(Redactor {
            set,
            secret_key,
            rules,
            audit_retention_days: g.audit_retention_days,
            audit_denied_retention_days: g
                .audit_denied_retention_days
                .unwrap_or(365)
                .max(g.audit_retention_days),
        })
    }

    /// Mask every match in one string.
    pub fn text(&self, s: &str) -> Option<String> {
        let hits = self.set.matches(s);
        if !hits.matched_any() {
            return None;
        }
        let mut out = s.to_string();
        for i in hits.iter() {
            let (re, rep) = &self.rules[i];
            out = re.replace_all(&out, rep.as_str()).into_owned();
        }
        Some(out)
    }

    /// Mask every string in a JSON value (keys are left alone); returns how many changed.
    pub fn json(&self, v: &mut Json) -> usize {
        match v {
            Json::String(s) => match self.text(s) {
                Some(r) => {
                    *s = r;
                    1
                }
                None => 0,
            },
            Json::Array(a) => a.iter_mut().map(|x| self.json(x)).sum(),
            Json::Object(m) => m
                .iter_mut()
                .map(|(k, x)| match x {
                    Json::String(s) if self.secret_key.is_match(k) && !s.is_empty() => {
                        *s = "[REDACTED]".into();
                        1
                    }
                    _ => self.json(x),
                })
                .sum(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Redactor {
        let g: DataGovernance = crate::config::parse_yaml(
            std::path::Path::new("data_governance.yml"),
            super::super::policy::DEFAULT_GOVERNANCE,
        )
        .unwrap();
        Redactor::new(&g, "data_governance.yml").unwrap()
    }

    #[test]
    fn each_pattern_masks_its_secret_and_keeps_the_rest() {
        let r = shipped();
        let cases = [
            ("auth: Bearer abcdef0123456789xyz end", "Bearer [REDACTED]"),
            ("key sk_live_0123456789abcdefXYZ here", "[REDACTED:api_key]"),
            (
                "gh token ghp_0123456789abcdefghijABCDEFGHIJ0123",
                "[REDACTED:api_key]",
            ),
            (
                "postgres://app:hunter2@db:5432/x",
                "postgres://app:[REDACTED]@db",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE used", "[REDACTED:aws_key]"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "[REDACTED:private_key]",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2hlcmU",
                "[REDACTED:jwt]",
            ),
            ("mail ivan.petrenko@example.com now", "[REDACTED:email]"),
            (
                "call +380 44 123 4567 or (555) 123-4567",
                "[REDACTED:phone]",
            ),
            ("password=s3cret! and token: abc123", "password=[REDACTED]"),
            (
                "DB_PASSWORD=hunter2 client_secret=xyz",
                "DB_PASSWORD=[REDACTED]",
            ),
            (r#"{"password": "hunter2"}"#, r#""password": "[REDACTED]"#),
            ("redis://:pw0rd@cache:6379", "redis://:[REDACTED]@cache"),
            (
                "openai sk-proj-abcdefghijklmnop1234 used",
                "[REDACTED:api_key]",
            ),
            (
                "google AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "[REDACTED:api_key]",
            ),
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxyz\n-----END PGP PRIVATE KEY BLOCK-----",
                "[REDACTED:private_key]",
            ),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "AWS_SECRET_ACCESS_KEY=[REDACTED]",
            ),
        ];
        for (input, expect) in cases {
            let out = r
                .text(input)
                .unwrap_or_else(|| panic!("no match in {input:?}"));
            assert!(out.contains(expect), "{input:?} -> {out:?}");
        }
        assert!(!r
            .text("call +380 44 123 4567 or (555) 123-4567")
            .unwrap()
            .contains("4567"));
        assert!(!r
            .text("password=s3cret! and token: abc123")
            .unwrap()
            .contains("abc123"));
        // Ordinary ops text is left alone: timestamps, ids, versions, percentages.
        for plain in [
            "2026-11-23T15:19:18.41Z",
            "inc_20261123_1519_b02b32127e1f",
            "v1.2.3 rolled back",
            "5xx rate 5.2%",
            "p99 320 ms",
        ] {
            assert_eq!(r.text(plain), None, "{plain}");
        }
    }

    #[test]
    fn json_values_are_masked_recursively() {
        let r = shipped();
        let mut v = serde_json::json!({"summary": "contact a@b.io", "events": [{"message": "Bearer abcdefghijkl"}], "n": 5,
            "meta": {"db_password": "plain", "api_key": "k"}});
        assert_eq!(r.json(&mut v), 4);
        assert_eq!(v["meta"]["db_password"], "[REDACTED]");
        assert_eq!(v["summary"], "contact [REDACTED:email]");
        assert_eq!(v["n"], 5);
    }
}
