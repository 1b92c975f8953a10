//! Turning what an operator types into a tantivy query: English stems, typo tolerance,
//! prefix completion of the word being typed, quoted phrases, `service:` and `tag:` filters.
//!
//! Typos and prefixes are expanded against the index's own vocabulary into ordinary term
//! queries, so expanded matches are ranked by BM25 like exact ones (tantivy's fuzzy query
//! scores every match the same).

use std::collections::{BTreeMap, HashMap};

use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;

/// A parsed search string.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    pub words: Vec<String>,
    pub phrases: Vec<String>,
    /// `key:value` filters (`service:router`, `tag:backup`).
    pub filters: Vec<(String, String)>,
    /// The last word is still being typed (no space after it): complete it as a prefix.
    pub last_is_prefix: bool,
}

/// Split `q` into words, `"quoted phrases"` and `key:value` filters for `filter_keys`.
pub fn parse(q: &str, filter_keys: &[&str]) -> Parsed {
    let mut p = Parsed::default();
    let mut rest = q;
    while let Some(start) = rest.find('"') {
        let (before, after) = rest.split_at(start);
        push_words(&mut p, before, filter_keys);
        let after = &after[1..];
        match after.find('"') {
            Some(end) => {
                let phrase = after[..end].trim();
                if !phrase.is_empty() {
                    p.phrases.push(phrase.to_string());
                }
                rest = &after[end + 1..];
            }
            None => {
                // An unclosed quote: treat what follows as words.
                rest = after;
                break;
            }
        }
    }
    push_words(&mut p, rest, filter_keys);
    p.last_is_prefix =
        !p.words.is_empty() && !q.ends_with(char::is_whitespace) && !q.trim_end().ends_with('"');
    p
}

fn push_words(p: &mut Parsed, text: &str, filter_keys: &[&str]) {
    for w in text.split_whitespace() {
        if let Some((k, v)) = w.split_once(':') {
            let k = k.to_ascii_lowercase();
            if filter_keys.contains(&k.as_str()) && !v.is_empty() {
                p.filters.push((k, v.to_lowercase()));
                continue;
            }
        }
        p.words.push(w.to_string());
    }
}

/// The index's vocabulary (stemmed terms of the text fields), for typo and prefix expansion.
#[derive(Debug, Default)]
pub struct Vocab {
    /// Sorted, deduplicated.
    terms: Vec<String>,
    by_len: HashMap<usize, Vec<usize>>,
}

impl Vocab {
    pub fn new(mut terms: Vec<String>) -> Vocab {
        terms.sort();
        terms.dedup();
        let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, t) in terms.iter().enumerate() {
            by_len.entry(t.chars().count()).or_default().push(i);
        }
        Vocab { terms, by_len }
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn contains(&self, t: &str) -> bool {
        self.terms.binary_search_by(|x| x.as_str().cmp(t)).is_ok()
    }

    /// Terms starting with `prefix` (at most `max`, shortest first).
    pub fn with_prefix(&self, prefix: &str, max: usize) -> Vec<String> {
        let start = self.terms.partition_point(|t| t.as_str() < prefix);
        let mut out: Vec<String> = self.terms[start..]
            .iter()
            .take_while(|t| t.starts_with(prefix))
            .take(max * 4)
            .cloned()
            .collect();
        out.sort_by_key(|t| t.len());
        out.truncate(max);
        out
    }

    /// Terms within one edit (insert, delete, substitute, swap neighbours) of `word`; two
    /// edits for words of eight letters or more.
    pub fn near(&self, word: &str, max: usize) -> Vec<String> {
        let n = word.chars().count();
        let dist = if n >= 8 { 2 } else { 1 };
        let mut out = Vec::new();
        for len in n.saturating_sub(dist)..=n + dist {
            let Some(ids) = self.by_len.get(&len) else {
                continue;
            };
            for &i in ids {
                let t = &self.terms[i];
                if t != word && edit_distance(word, t, dist) <= dist {
                    out.push(t.clone());
                    if out.len() >= max {
                        return out;
                    }
                }
            }
        }
        out
    }
}

/// Optimal-string-alignment distance (adjacent swaps count one), stopping early above `cap`.
pub fn edit_distance(a: &str, b: &str, cap: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > cap {
        return cap + 1;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > cap {
            return cap + 1;
        }
    }
    d[a.len() * w + b.len()]
}

/// Run the analyzer over `text`, returning its tokens.
pub fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// What a built query matches, for snippets: term text → weight.
pub type MatchedTerms = BTreeMap<String, f32>;

/// Weights of the fields a word is looked up in.
pub struct TextFields {
    pub fields: Vec<(Field, f32)>,
    /// The field phrases are matched in (besides the others).
    pub phrase_fields: Vec<Field>,
}

/// Build the scoring part of a query from `parsed` (without filters). Returns None when
/// nothing searchable is left (e.g. only punctuation).
pub fn build(
    parsed: &Parsed,
    analyzer: &mut TextAnalyzer,
    vocab: &Vocab,
    tf: &TextFields,
) -> (Option<Box<dyn Query>>, MatchedTerms) {
    let mut matched = MatchedTerms::new();
    let mut groups: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let last = parsed.words.len().saturating_sub(1);
    let mut seen = std::collections::HashSet::new();
    // Typo expansion scans the vocabulary: a handful of unknown words per query at most.
    let mut fuzzy_budget = 8;
    for (i, word) in parsed.words.iter().enumerate() {
        let stems = analyze(analyzer, word);
        for stem in stems {
            let typing = parsed.last_is_prefix && i == last;
            if !seen.insert(stem.clone()) && !typing {
                continue;
            }
            let mut variants: Vec<(String, f32)> = vec![(stem.clone(), 1.0)];
            let known = vocab.contains(&stem);
            if !known && stem.chars().count() >= 4 && fuzzy_budget > 0 {
                fuzzy_budget -= 1;
                for t in vocab.near(&stem, 8) {
                    variants.push((t, 0.7));
                }
            }
            if parsed.last_is_prefix && i == last {
                // The raw word typed so far, lowercased: stems are (mostly) prefixes of it.
                let raw = word.to_lowercase();
                for t in vocab.with_prefix(&raw, 12) {
                    if t != stem {
                        variants.push((t, 0.6));
                    }
                }
            }
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (v, w) in &variants {
                if !vocab.contains(v) {
                    continue;
                }
                matched.insert(v.clone(), *w);
                for (field, fw) in &tf.fields {
                    let q = TermQuery::new(
                        Term::from_field_text(*field, v),
                        IndexRecordOption::WithFreqs,
                    );
                    clauses.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(q), fw * w)),
                    ));
                }
            }
            if !clauses.is_empty() {
                groups.push((Occur::Should, Box::new(BooleanQuery::new(clauses))));
            }
        }
    }
    for phrase in &parsed.phrases {
        let stems = analyze(analyzer, phrase);
        if stems.is_empty() {
            continue;
        }
        let mut alts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for field in &tf.phrase_fields {
            let q: Box<dyn Query> = if stems.len() == 1 {
                Box::new(TermQuery::new(
                    Term::from_field_text(*field, &stems[0]),
                    IndexRecordOption::WithFreqs,
                ))
            } else {
                Box::new(PhraseQuery::new(
                    stems
                        .iter()
                        .map(|s| Term::from_field_text(*field, s))
                        .collect(),
                ))
            };
            alts.push((Occur::Should, Box::new(BoostQuery::new(q, 2.0))));
        }
        for s in stems {
            matched.insert(s, 1.0);
        }
        groups.push((Occur::Must, Box::new(BooleanQuery::new(alts))));
    }
    if groups.is_empty() {
        return (None, matched);
    }
    (Some(Box::new(BooleanQuery::new(groups))), matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_words_phrases_filters_and_the_word_being_typed() {
        let p = parse(
            r#"restore "write ahead log" service:Sofiia tag:backup disk fu"#,
            &["service", "tag"],
        );
        assert_eq!(p.words, ["restore", "disk", "fu"]);
        assert_eq!(p.phrases, ["write ahead log"]);
        assert_eq!(
            p.filters,
            [
                ("service".into(), "sofiia".into()),
                ("tag".into(), "backup".into())
            ]
        );
        assert!(p.last_is_prefix);
        assert!(!parse("disk full ", &[]).last_is_prefix);
        assert!(!parse("\"disk full\"", &[]).last_is_prefix);
        let p = parse("unclosed \"quote here", &[]);
        assert_eq!(p.words, ["unclosed", "quote", "here"]);
        assert_eq!(parse("url:http://x", &["service"]).words, ["url:http://x"]);
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("backup", "bakcup", 2), 1);
        assert_eq!(edit_distance("restor", "restor", 1), 0);
        assert_eq!(edit_distance("rotat", "rotaet", 1), 1);
        assert_eq!(edit_distance("abc", "xyz", 1), 2);
        assert_eq!(edit_distance("a", "abcdef", 2), 3);
    }

    #[test]
    fn vocab_prefix_and_near() {
        let v = Vocab::new(
            [
                "backup", "backlog", "restor", "rotat", "disk", "full", "fulli",
            ]
            .map(String::from)
            .to_vec(),
        );
        assert_eq!(v.with_prefix("ful", 5), ["full", "fulli"]);
        assert_eq!(v.with_prefix("zz", 5), Vec::<String>::new());
        assert_eq!(v.near("bakcup", 5), ["backup"]);
        assert!(v.near("dsik", 5).contains(&"disk".to_string()));
        assert!(v.contains("rotat"));
    }
}
