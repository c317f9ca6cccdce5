//! Turning request parameters into validated engine inputs: filters from a query string
//! (`tags=a,b&tempo_bpm_min=80`) or a JSON object, limits and cursors, and the `/search`
//! query syntax (`artist:`, `genre:`, `tag:`, `bpm:80-100`, `key:8A`, `year:1990-1999`,
//! quoted phrases). Every mistake is a 400 naming the parameter.

use std::collections::BTreeMap;

use embeddings::attributes::PitchClass;
use indexer::filter::{camelot_number, Filter, NumField, Range};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};

/// The most results one page may ask for.
pub const MAX_LIMIT: usize = 500;
/// Results per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 10;

/// Query-string pairs in order (repeated keys allowed).
pub type Pairs = Vec<(String, String)>;

/// Parses a raw query string.
pub fn pairs(query: &str) -> ApiResult<Pairs> {
    serde_urlencoded::from_str::<Pairs>(query)
        .map_err(|e| ApiError::bad("bad_query_string", e.to_string()))
}

/// The values of `key` (repeated or comma-separated), trimmed, empty ones dropped.
pub fn list(p: &Pairs, key: &str) -> Vec<String> {
    p.iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The single value of `key`, if present (the last one wins).
pub fn one<'a>(p: &'a Pairs, key: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn number(p: &Pairs, key: &str) -> ApiResult<Option<f64>> {
    match one(p, key) {
        None => Ok(None),
        Some(v) => parse_f64(key, v).map(Some),
    }
}

fn parse_f64(key: &str, v: &str) -> ApiResult<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| ApiError::bad_number(key, v))
}

/// `limit` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
pub fn limit(value: Option<&str>) -> ApiResult<usize> {
    let Some(v) = value else {
        return Ok(DEFAULT_LIMIT);
    };
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_number("limit", v))?;
    check_limit(n)
}

pub fn check_limit(n: usize) -> ApiResult<usize> {
    if n == 0 {
        return Err(ApiError::bad("bad_limit", "limit must be at least 1"));
    }
    if n > MAX_LIMIT {
        return Err(ApiError::bad(
            "limit_too_large",
            format!("limit {n} is above the maximum of {MAX_LIMIT}"),
        )
        .with_details(json!({ "max": MAX_LIMIT })));
    }
    Ok(n)
}

/// The deepest offset a cursor may name. Paging costs grow with the offset (a vector
/// search must find `offset + limit` neighbours), so a cursor is bounded like
/// Elasticsearch's result window: deeper pages need a narrower query.
pub const MAX_OFFSET: usize = 10_000;

/// The most seeds, tags per list, keys or Camelot codes one request may name.
pub const MAX_LIST: usize = 100;
/// The most artists one request may exclude.
pub const MAX_EXCLUDED_ARTISTS: usize = 1_000;

/// A cursor is the offset of the next page, as returned in `next_cursor`: at most
/// [`MAX_OFFSET`], so no cursor can make a request size its work from an absurd offset.
pub fn cursor(value: Option<&str>) -> ApiResult<usize> {
    let v = match value {
        None | Some("") => return Ok(0),
        Some(v) => v,
    };
    let offset: usize = v
        .strip_prefix('o')
        .filter(|n| n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::bad("bad_cursor", format!("cursor {v:?} is not one we issued")))?;
    if offset > MAX_OFFSET {
        return Err(ApiError::bad(
            "cursor_too_deep",
            format!(
                "cursor {v:?} is past the deepest page ({MAX_OFFSET} results): narrow the query"
            ),
        )
        .with_details(json!({ "max_offset": MAX_OFFSET })));
    }
    Ok(offset)
}

/// The `next_cursor` of a page that ended at `offset`: none past [`MAX_OFFSET`] (the
/// answer then ends there; the page says so in its plan or total).
pub fn encode_cursor(offset: usize) -> Option<String> {
    (offset <= MAX_OFFSET).then(|| format!("o{offset}"))
}

/// Refuses a list longer than `max` (400 `too_many`, naming the parameter).
pub fn check_len(param: &str, len: usize, max: usize) -> ApiResult<()> {
    if len > max {
        return Err(ApiError::bad(
            "too_many",
            format!("{param}: {len} values, the most one request may give is {max}"),
        )
        .with_details(json!({ "param": param, "given": len, "max": max })));
    }
    Ok(())
}

/// Parameter names that [`filter_from_pairs`] reads (other routes' names are theirs).
fn is_filter_key(k: &str) -> bool {
    matches!(
        k,
        "tags"
            | "tags_any"
            | "tags_none"
            | "key"
            | "mode"
            | "camelot"
            | "status"
            | "exclude_artist"
    ) || k.ends_with("_min")
        || k.ends_with("_max")
}

/// Filters from query parameters: `tags`, `tags_any`, `tags_none`, `<attribute>_min`,
/// `<attribute>_max` (also `year_`, `duration_`, `bpm_`), `key`, `mode`, `camelot`,
/// `status` (only `active` is searchable), `exclude_artist`. Unknown parameters that look
/// like filters are refused.
pub fn filter_from_pairs(p: &Pairs) -> ApiResult<Filter> {
    let mut spec = FilterJson {
        tags: list(p, "tags"),
        tags_any: list(p, "tags_any"),
        tags_none: list(p, "tags_none"),
        key: list(p, "key"),
        mode: one(p, "mode").map(str::to_string),
        camelot: list(p, "camelot"),
        status: one(p, "status").map(str::to_string),
        exclude_artists: list(p, "exclude_artist"),
        ..FilterJson::default()
    };
    for (k, v) in p {
        if !is_filter_key(k) || matches!(k.as_str(), "tags" | "tags_any" | "tags_none") {
            continue;
        }
        let (name, is_min) = if let Some(n) = k.strip_suffix("_min") {
            (n, true)
        } else if let Some(n) = k.strip_suffix("_max") {
            (n, false)
        } else {
            continue;
        };
        let x = parse_f64(k, v)?;
        let r = spec.ranges.entry(name.to_string()).or_default();
        if is_min {
            r.min = Some(x);
        } else {
            r.max = Some(x);
        }
    }
    spec.into_filter()
}

/// A numeric range in JSON.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeJson {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Filters in a JSON body (`"filters": {...}`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterJson {
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub tags_any: Vec<String>,
    #[serde(default)]
    pub tags_none: Vec<String>,
    /// Attribute name (or `year`, `duration_s`, `bpm`, `tempo`) -> range.
    #[serde(default)]
    pub ranges: BTreeMap<String, RangeJson>,
    #[serde(default)]
    pub key: Vec<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub camelot: Vec<String>,
    pub status: Option<String>,
    #[serde(default)]
    pub exclude_artists: Vec<String>,
}

impl FilterJson {
    /// Validates names and values into a [`Filter`].
    pub fn into_filter(self) -> ApiResult<Filter> {
        check_len("tags", self.tags.len(), MAX_LIST)?;
        check_len("tags_any", self.tags_any.len(), MAX_LIST)?;
        check_len("tags_none", self.tags_none.len(), MAX_LIST)?;
        check_len("ranges", self.ranges.len(), MAX_LIST)?;
        check_len("key", self.key.len(), MAX_LIST)?;
        check_len("camelot", self.camelot.len(), MAX_LIST)?;
        check_len(
            "exclude_artists",
            self.exclude_artists.len(),
            MAX_EXCLUDED_ARTISTS,
        )?;
        let mut f = Filter {
            tags_all: norm_tags(&self.tags)?,
            tags_any: norm_tags(&self.tags_any)?,
            tags_none: norm_tags(&self.tags_none)?,
            artists_none: self.exclude_artists,
            ..Filter::default()
        };
        for (name, r) in self.ranges {
            let field = NumField::parse(&name).ok_or_else(|| {
                ApiError::bad("unknown_field", format!("no attribute named {name:?}"))
                    .with_details(json!({ "field": name, "known": NumField::all_names() }))
            })?;
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    return Err(ApiError::bad(
                        "bad_range",
                        format!("{name}: min {lo} is above max {hi}"),
                    ));
                }
            }
            for v in [r.min, r.max].into_iter().flatten() {
                if !v.is_finite() {
                    return Err(ApiError::bad_number(&name, &v.to_string()));
                }
            }
            f.ranges.push(Range {
                field,
                min: r.min,
                max: r.max,
            });
        }
        for k in self.key {
            f.keys.push(parse_key(&k)?.name().to_string());
        }
        if let Some(m) = self.mode {
            f.mode = Some(parse_mode(&m)?.to_string());
        }
        for c in self.camelot {
            f.camelot.push(parse_camelot(&c)?);
        }
        if let Some(s) = self.status {
            if s != "active" {
                return Err(ApiError::bad(
                    "bad_status",
                    format!("status {s:?}: only active tracks are searchable"),
                ));
            }
        }
        Ok(f)
    }
}

fn norm_tags(tags: &[String]) -> ApiResult<Vec<String>> {
    tags.iter()
        .map(|t| {
            indexer::catalog::rows::normalise_tag(t)
                .ok_or_else(|| ApiError::bad("bad_tag", format!("{t:?} is not a tag")))
        })
        .collect()
}

pub fn parse_key(k: &str) -> ApiResult<PitchClass> {
    PitchClass::parse(k.trim())
        .ok_or_else(|| ApiError::bad("bad_key", format!("{k:?} is not a key (C, F#, Bb, ...)")))
}

pub fn parse_mode(m: &str) -> ApiResult<&'static str> {
    match m.trim().to_ascii_lowercase().as_str() {
        "major" => Ok("major"),
        "minor" => Ok("minor"),
        _ => Err(ApiError::bad(
            "bad_mode",
            format!("mode {m:?}: use major or minor"),
        )),
    }
}

pub fn parse_camelot(c: &str) -> ApiResult<String> {
    let code = c.trim().to_ascii_uppercase();
    if camelot_number(&code) == 0 {
        return Err(ApiError::bad(
            "bad_camelot",
            format!("{c:?} is not a Camelot code (1A..12B)"),
        ));
    }
    Ok(code)
}

/// What the `/search` query syntax yields: free text for BM25 and exact filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedQuery {
    /// Tantivy query text (words ANDed, phrases quoted, `artists:`/`genre:`/`album:`/
    /// `title:` field terms).
    pub text: String,
    pub filter: Filter,
}

/// Parses the `/search` syntax. `artist:x`, `genre:x`, `album:x`, `title:x` search that
/// field; `tag:facet:value` is an exact tag filter (`tag:chill` searches tag words);
/// `bpm:80-100`, `year:1990-1999`, `<attribute>:lo-hi` are ranges (`lo-`, `-hi`, one
/// value); `key:8A` is a Camelot code, `key:Am`/`key:C` a key (and mode); `mode:minor`.
pub fn parse_query(q: &str) -> ApiResult<ParsedQuery> {
    let mut out = ParsedQuery::default();
    let mut words: Vec<String> = Vec::new();
    for tok in tokens(q)? {
        if tok.starts_with('"') {
            words.push(tok);
            continue;
        }
        let Some((field, value)) = tok.split_once(':') else {
            words.push(escape_word(&tok));
            continue;
        };
        let value = value.trim_matches('"');
        if value.is_empty() {
            return Err(ApiError::bad("bad_query", format!("{field}: has no value")));
        }
        match field.to_ascii_lowercase().as_str() {
            "artist" | "artists" => words.push(field_terms("artists", value)),
            "genre" => words.push(field_terms("genre", value)),
            "album" => words.push(field_terms("album", value)),
            "title" => words.push(field_terms("title", value)),
            "tag" => {
                if value.contains(':') {
                    out.filter.tags_all.extend(norm_tags(&[value.to_string()])?);
                } else {
                    words.push(field_terms("tags", value));
                }
            }
            "key" => {
                if camelot_number(value) != 0 {
                    out.filter.camelot.push(parse_camelot(value)?);
                } else {
                    let (tonic, minor) = match value.strip_suffix('m') {
                        Some(t) if !t.is_empty() => (t, true),
                        _ => (value, false),
                    };
                    out.filter.keys.push(parse_key(tonic)?.name().to_string());
                    if minor {
                        out.filter.mode = Some("minor".into());
                    }
                }
            }
            "mode" => out.filter.mode = Some(parse_mode(value)?.to_string()),
            other => {
                let num = NumField::parse(other).ok_or_else(|| {
                    ApiError::bad(
                        "unknown_field",
                        format!("{other}: is not a search field or attribute"),
                    )
                    .with_details(json!({
                        "fields": ["artist", "genre", "album", "title", "tag", "key", "mode"],
                        "attributes": NumField::all_names(),
                    }))
                })?;
                out.filter.ranges.push(parse_range(other, num, value)?);
            }
        }
    }
    out.text = words.join(" ");
    Ok(out)
}

/// Splits on whitespace, keeping `"quoted phrases"` (also `field:"a phrase"`) whole.
fn tokens(q: &str) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in q.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(ApiError::bad("bad_query", "unbalanced quote"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// A bare word with tantivy's syntax characters neutralised.
fn escape_word(w: &str) -> String {
    let cleaned: String = w
        .chars()
        .map(|c| {
            if "+-^`:{}[]()~!\\*'<>=".contains(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let parts: Vec<&str> = cleaned.split_whitespace().collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].to_string(),
        _ => format!("\"{}\"", parts.join(" ")),
    }
}

/// `field:value` for each word of `value` (a multi-word value becomes a phrase).
fn field_terms(field: &str, value: &str) -> String {
    let w = escape_word(value);
    if w.is_empty() {
        String::new()
    } else {
        format!("{field}:{w}")
    }
}

fn parse_range(name: &str, field: NumField, v: &str) -> ApiResult<Range> {
    // `lo-hi`, `lo-`, `-hi` or a single value; a leading minus on a number (loudness) is
    // a sign, so split on the first '-' that follows a digit.
    let split = v
        .char_indices()
        .skip(1)
        .find(|&(i, c)| c == '-' && v[..i].ends_with(|p: char| p.is_ascii_digit() || p == '.'))
        .map(|(i, _)| i);
    let (lo, hi) = match split {
        Some(i) => (&v[..i], &v[i + 1..]),
        None if v.starts_with('-') && field != NumField::Attribute(3) => ("", &v[1..]),
        None if v.ends_with('-') => (&v[..v.len() - 1], ""),
        None => (v, v),
    };
    let num = |s: &str| -> ApiResult<Option<f64>> {
        if s.is_empty() {
            Ok(None)
        } else {
            parse_f64(name, s).map(Some)
        }
    };
    let (min, max) = (num(lo)?, num(hi)?);
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(ApiError::bad(
                "bad_range",
                format!("{name}: {a} is above {b}"),
            ));
        }
    }
    Ok(Range { field, min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_splits_text_and_filters() {
        let p = parse_query(
            r#"artist:daft "one more time" tag:mood:chill bpm:80-100 key:8A year:1990-1999 funk"#,
        )
        .unwrap();
        assert_eq!(p.text, r#"artists:daft "one more time" funk"#);
        assert_eq!(p.filter.tags_all, vec!["mood:chill"]);
        assert_eq!(p.filter.camelot, vec!["8A"]);
        assert_eq!(p.filter.ranges.len(), 2);
        assert_eq!(p.filter.ranges[0].field, NumField::Attribute(0));
        assert_eq!(
            (p.filter.ranges[0].min, p.filter.ranges[0].max),
            (Some(80.0), Some(100.0))
        );
        assert_eq!(p.filter.ranges[1].field, NumField::Year);
        let k = parse_query("key:Am").unwrap();
        assert_eq!(
            (k.filter.keys.clone(), k.filter.mode.clone()),
            (vec!["A".to_string()], Some("minor".into()))
        );
        let l = parse_query("loudness:-20--8 energy:0.5-").unwrap();
        assert_eq!(
            (l.filter.ranges[0].min, l.filter.ranges[0].max),
            (Some(-20.0), Some(-8.0))
        );
        assert_eq!(
            (l.filter.ranges[1].min, l.filter.ranges[1].max),
            (Some(0.5), None)
        );
    }

    #[test]
    fn query_syntax_errors_name_the_problem() {
        assert_eq!(parse_query("bpm:fast").unwrap_err().code, "bad_number");
        assert_eq!(parse_query("colour:red").unwrap_err().code, "unknown_field");
        assert_eq!(parse_query("bpm:120-80").unwrap_err().code, "bad_range");
        assert_eq!(parse_query("\"open").unwrap_err().code, "bad_query");
        assert_eq!(parse_query("key:H").unwrap_err().code, "bad_key");
    }

    #[test]
    fn filters_from_query_strings() {
        let p =
            pairs("tags=mood:chill,sound:acoustic&tempo_bpm_min=80&bpm_max=100&camelot=8a&limit=5")
                .unwrap();
        let f = filter_from_pairs(&p).unwrap();
        assert_eq!(f.tags_all, vec!["mood:chill", "sound:acoustic"]);
        assert_eq!(f.camelot, vec!["8A"]);
        assert_eq!(f.ranges.len(), 2);
        assert_eq!(
            filter_from_pairs(&pairs("energy_min=x").unwrap())
                .unwrap_err()
                .code,
            "bad_number"
        );
        assert_eq!(
            filter_from_pairs(&pairs("colour_min=1").unwrap())
                .unwrap_err()
                .code,
            "unknown_field"
        );
        assert_eq!(
            filter_from_pairs(&pairs("energy_min=0.9&energy_max=0.1").unwrap())
                .unwrap_err()
                .code,
            "bad_range"
        );
        assert_eq!(limit(Some("100000")).unwrap_err().code, "limit_too_large");
        assert_eq!(limit(Some("ten")).unwrap_err().code, "bad_number");
        assert_eq!(cursor(Some("o20")).unwrap(), 20);
        assert_eq!(cursor(Some("zz")).unwrap_err().code, "bad_cursor");
    }
}
