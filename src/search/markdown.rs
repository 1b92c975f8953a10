//! Splitting a markdown runbook into searchable sections.
//!
//! A runbook may open with YAML front matter (`title`, `services`/`service`, `tags`). Every
//! ATX heading outside code fences and block quotes starts a section; a section's text runs to
//! the next heading. Each section knows its heading path (`Backup and restore › Restore`) and
//! its anchor, the same slug the console's markdown renderer gives the heading, so a search
//! hit can open the runbook scrolled to its section.
//!
//! Headings and fences follow CommonMark (see [`heading`], [`fence_open`]); the console's
//! `outline()` in `ui/assets/lib/markdown.js` applies the same rule, and both are tested
//! against the shared cases in `tests/fixtures/markdown/headings.json`. A line inside a block
//! quote (`> ## x`) starts neither a heading nor a fence here: the quote's heading belongs to
//! the quote's text, not to the runbook's outline.

use serde::Deserialize;

/// Front matter fields sofiia reads (others are ignored).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct FrontMatter {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default, alias = "service")]
    pub services: OneOrMany,
    #[serde(default)]
    pub tags: OneOrMany,
}

/// A YAML scalar or list of strings.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        let raw: Vec<String> = match self {
            OneOrMany::None => vec![],
            OneOrMany::One(s) => s.split(',').map(str::to_string).collect(),
            OneOrMany::Many(v) => v.clone(),
        };
        raw.into_iter()
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// One parsed runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub title: String,
    pub services: Vec<String>,
    pub tags: Vec<String>,
    pub sections: Vec<Section>,
    /// The markdown without its front matter.
    pub body: String,
}

/// One section of a runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Headings from the top of the document down to this one.
    pub path: Vec<String>,
    pub anchor: String,
    pub level: usize,
    pub text: String,
}

impl Section {
    /// The last heading (the section's own).
    pub fn heading(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or("")
    }
}

/// Split `front matter` from the body. A malformed front matter block is kept as body text
/// (and reported by the caller via the returned error string).
pub fn split_front_matter(src: &str) -> (FrontMatter, &str, Option<String>) {
    let s = src.strip_prefix('\u{feff}').unwrap_or(src);
    let Some(rest) = s
        .strip_prefix("---\n")
        .or_else(|| s.strip_prefix("---\r\n"))
    else {
        return (FrontMatter::default(), s, None);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" || line.trim_end() == "..." {
            let yaml = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return match serde_saphyr::from_str::<FrontMatter>(yaml) {
                Ok(fm) => (fm, body, None),
                Err(e) => (FrontMatter::default(), body, Some(e.to_string())),
            };
        }
        offset += line.len();
    }
    (FrontMatter::default(), s, None)
}

/// The anchor the console gives a heading: lowercase letters, digits, spaces and dashes
/// kept, spaces turned into dashes, repeats numbered `-1`, `-2`… (see `ui/assets/lib/markdown.js`).
pub fn slug(text: &str, seen: &mut std::collections::HashMap<String, usize>) -> String {
    let kept: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '-')
        .collect();
    let mut base = kept.split_whitespace().collect::<Vec<_>>().join("-");
    if base.is_empty() {
        base = "section".into();
    }
    let n = seen.entry(base.clone()).or_insert(0);
    let out = if *n == 0 {
        base.clone()
    } else {
        format!("{base}-{n}")
    };
    *n += 1;
    out
}

/// Leading spaces of `line`, or `None` when there are more than three (an indented code line,
/// never a heading or fence opener). A tab counts as four.
fn indent(line: &str) -> Option<usize> {
    let n = line.bytes().take_while(|b| *b == b' ').count();
    (n <= 3 && !line[n..].starts_with('\t')).then_some(n)
}

/// `line` without leading and trailing spaces and tabs (CommonMark's whitespace, not Unicode's).
fn trim_st(line: &str) -> &str {
    line.trim_matches([' ', '\t'])
}

/// An ATX heading, CommonMark's rule: 0–3 spaces, 1–6 `#`, then a space, a tab or the end of
/// the line; a closing run of `#` is dropped only after a space (`## C#` is "C#", `## Foo ##`
/// is "Foo", `##` is an empty heading). `## Title ##` → (2, "Title").
fn heading(line: &str) -> Option<(usize, String)> {
    let t = &line[indent(line)?..];
    let level = t.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = trim_st(rest);
    let bare = text.trim_end_matches('#');
    let text = if bare.len() == text.len() {
        text
    } else if bare.is_empty() {
        ""
    } else if bare.ends_with([' ', '\t']) {
        trim_st(bare)
    } else {
        text
    };
    Some((level, text.to_string()))
}

/// A code fence opener: 0–3 spaces, then 3 or more backticks or tildes (a backtick fence's
/// info string has no backtick). Gives the fence character and its length.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let t = &line[indent(line)?..];
    let ch = t.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = t.chars().take_while(|c| *c == ch).count();
    if n < 3 || (ch == '`' && t[n..].contains('`')) {
        return None;
    }
    Some((ch, n))
}

/// Whether `line` closes a fence of `n` × `ch`: 0–3 spaces, at least `n` × `ch`, then only
/// spaces or tabs.
fn fence_closes(line: &str, (ch, n): (char, usize)) -> bool {
    let Some(i) = indent(line) else {
        return false;
    };
    let t = &line[i..];
    let run = t.chars().take_while(|c| *c == ch).count();
    run >= n && trim_st(&t[run..]).is_empty()
}

/// Strip inline markdown that would only add noise to the index (emphasis markers, link
/// targets), keeping the words.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '_' | '`' | '#' | '>' => out.push(' '),
            ']' if chars.peek() == Some(&'(') => {
                // `[text](target)`: keep the text, drop the target.
                for c2 in chars.by_ref() {
                    if c2 == ')' {
                        break;
                    }
                }
                out.push(' ');
            }
            '[' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Parse a runbook. `fallback_title` (the file name) is used when there is no title.
pub fn parse(src: &str, fallback_title: &str) -> Runbook {
    let (fm, body, _) = split_front_matter(src);
    let mut sections: Vec<Section> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut cur: Option<Section> = None;
    let mut preamble = String::new();
    let mut fence: Option<(char, usize)> = None;
    for line in body.lines() {
        if let Some(f) = fence {
            if fence_closes(line, f) {
                fence = None;
            }
        } else if let Some(f) = fence_open(line) {
            fence = Some(f);
        } else if let Some((level, text)) = heading(line) {
            if let Some(s) = cur.take() {
                sections.push(s);
            }
            while stack.last().is_some_and(|(l, _)| *l >= level) {
                stack.pop();
            }
            stack.push((level, text.clone()));
            cur = Some(Section {
                path: stack.iter().map(|(_, t)| t.clone()).collect(),
                anchor: slug(&text, &mut seen),
                level,
                text: String::new(),
            });
            continue;
        }
        match &mut cur {
            Some(s) => {
                s.text.push_str(line);
                s.text.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    if let Some(s) = cur.take() {
        sections.push(s);
    }
    let title = fm
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            sections
                .iter()
                .find(|s| s.level == 1 && !s.heading().is_empty())
                .map(|s| s.heading().to_string())
        })
        .unwrap_or_else(|| fallback_title.to_string());
    if !preamble.trim().is_empty() {
        sections.insert(
            0,
            Section {
                path: vec![title.clone()],
                anchor: String::new(),
                level: 0,
                text: preamble,
            },
        );
    }
    for s in &mut sections {
        s.text = s.text.trim().to_string();
    }
    Runbook {
        title,
        services: fm.services.to_vec(),
        tags: fm.tags.to_vec(),
        sections,
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_headings_and_skip_code_fences() {
        let src = "---\ntitle: Backup and restore\nservices: [sofiia]\ntags: [backup, Restore]\n---\n\
            intro line\n# Backup and restore\nwhy\n## Take a backup\n```sh\n# not a heading\nsofiia backup /x\n```\n\
            ### While running\nit works\n## Restore\ncopy back\n## Restore\nagain\n";
        let rb = parse(src, "x.md");
        assert_eq!(rb.title, "Backup and restore");
        assert_eq!(rb.services, ["sofiia"]);
        assert_eq!(rb.tags, ["backup", "restore"]);
        let heads: Vec<(String, String)> = rb
            .sections
            .iter()
            .map(|s| (s.path.join(" > "), s.anchor.clone()))
            .collect();
        assert_eq!(
            heads,
            [
                ("Backup and restore".into(), "".into()),
                ("Backup and restore".into(), "backup-and-restore".into()),
                (
                    "Backup and restore > Take a backup".into(),
                    "take-a-backup".into()
                ),
                (
                    "Backup and restore > Take a backup > While running".into(),
                    "while-running".into()
                ),
                ("Backup and restore > Restore".into(), "restore".into()),
                ("Backup and restore > Restore".into(), "restore-1".into()),
            ]
        );
        assert!(rb.sections[2].text.contains("# not a heading"));
        assert!(rb.sections[2].text.contains("sofiia backup /x"));
    }

    #[test]
    fn no_front_matter_and_odd_input() {
        let rb = parse("plain text only", "notes.md");
        assert_eq!(rb.title, "notes.md");
        assert_eq!(rb.sections.len(), 1);
        let rb = parse("---\n: : bad yaml [\n---\n# T\n", "f.md");
        assert_eq!(rb.title, "T");
        let rb = parse("---\nno end", "f.md");
        assert_eq!(rb.title, "f.md");
        assert_eq!(parse("", "e.md").sections.len(), 0);
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(heading("    # code"), None);
        assert_eq!(heading("## Title ##"), Some((2, "Title".into())));
    }

    /// The cases the console's `outline()` is tested against too (tests/browser/markdown.test.mjs).
    const SHARED_CASES: &str = include_str!("../../tests/fixtures/markdown/headings.json");

    #[test]
    fn sections_match_the_shared_heading_cases() {
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(SHARED_CASES).expect("the fixture is JSON");
        assert!(cases.len() >= 20, "the fixture has its cases");
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let md = case["markdown"].as_str().expect("markdown is a string");
            let got: Vec<serde_json::Value> = parse(md, "case.md")
                .sections
                .iter()
                .filter(|s| s.level > 0)
                .map(|s| {
                    serde_json::json!({"heading": s.heading(), "level": s.level, "anchor": s.anchor})
                })
                .collect();
            assert_eq!(
                serde_json::Value::Array(got),
                case["sections"],
                "case {name:?}"
            );
        }
    }

    #[test]
    fn fences_and_headings_by_commonmark() {
        assert_eq!(heading("## C#"), Some((2, "C#".into())));
        assert_eq!(heading("#"), Some((1, String::new())));
        assert_eq!(heading("\t# tab"), None);
        assert_eq!(heading("> ## quoted"), None);
        assert_eq!(fence_open("   ~~~~ yaml"), Some(('~', 4)));
        assert_eq!(fence_open("    ```"), None);
        assert_eq!(fence_open("``` a`b"), None);
        assert!(fence_closes("  ~~~~~  ", ('~', 4)));
        assert!(!fence_closes("~~~", ('~', 4)));
        assert!(!fence_closes("```js", ('`', 3)));
    }

    #[test]
    fn slugs_match_the_console() {
        let mut seen = Default::default();
        assert_eq!(
            slug("Disk full: what now?", &mut seen),
            "disk-full-what-now"
        );
        assert_eq!(
            slug("Disk full: what now?", &mut seen),
            "disk-full-what-now-1"
        );
        assert_eq!(slug("!!!", &mut seen), "section");
        assert_eq!(
            plain("see [the docs](http://x) and **bold**"),
            "see  the docs  and   bold  "
        );
    }
}
