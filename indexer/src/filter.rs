//! Exact filters over the catalogue's indexed tracks: tags (all / any / none), numeric
//! ranges on every attribute, release year and duration, key, mode, Camelot code, and
//! excluded artists. A [`Filter`] is evaluated by the text index (tantivy term and
//! fast-field range queries) into a [`TrackSet`]; vector search then only returns
//! members of that set (DESIGN.md principle 4).

use crate::catalog::ATTRIBUTE_COLUMNS;

/// A numeric field a range can apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumField {
    /// An index into [`ATTRIBUTE_COLUMNS`].
    Attribute(usize),
    /// Release year.
    Year,
    /// Duration in seconds.
    Duration,
}

impl NumField {
    /// Resolves an attribute name (`tempo_bpm`, `energy`, ...), a short alias (`tempo`,
    /// `bpm`, `loudness`, `duration`) or `year`.
    pub fn parse(name: &str) -> Option<NumField> {
        let canonical = match name {
            "tempo" | "bpm" => "tempo_bpm",
            "loudness" => "loudness_lufs",
            "duration" | "duration_s" => return Some(NumField::Duration),
            "year" | "release_year" => return Some(NumField::Year),
            other => other,
        };
        ATTRIBUTE_COLUMNS
            .iter()
            .position(|c| *c == canonical)
            .map(NumField::Attribute)
    }

    /// The canonical name (an attribute column, `year` or `duration_s`).
    pub fn name(self) -> &'static str {
        match self {
            NumField::Attribute(i) => ATTRIBUTE_COLUMNS[i],
            NumField::Year => "year",
            NumField::Duration => "duration_s",
        }
    }

    /// Every field a range can name, for error messages and documentation.
    pub fn all_names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = ATTRIBUTE_COLUMNS.to_vec();
        v.extend(["year", "duration_s"]);
        v
    }
}

/// An inclusive range; an open end is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub field: NumField,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Range {
    pub fn contains(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// Hard constraints on which tracks an answer may contain. The empty filter allows every
/// active track. Tag names are `facet:value`; keys are pitch names (`C`, `F#`), modes
/// `major`/`minor`, Camelot codes `1A`..`12B`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub tags_all: Vec<String>,
    pub tags_any: Vec<String>,
    pub tags_none: Vec<String>,
    pub ranges: Vec<Range>,
    pub keys: Vec<String>,
    pub mode: Option<String>,
    pub camelot: Vec<String>,
    /// Artist names (compared case-insensitively) whose tracks are excluded.
    pub artists_none: Vec<String>,
}

impl Filter {
    /// Whether this filter allows everything.
    pub fn is_empty(&self) -> bool {
        self.tags_all.is_empty()
            && self.tags_any.is_empty()
            && self.tags_none.is_empty()
            && self
                .ranges
                .iter()
                .all(|r| r.min.is_none() && r.max.is_none())
            && self.keys.is_empty()
            && self.mode.is_none()
            && self.camelot.is_empty()
            && self.artists_none.is_empty()
    }

    /// Every tag the filter names (to check them against the catalogue's tags).
    pub fn tags(&self) -> impl Iterator<Item = &String> {
        self.tags_all
            .iter()
            .chain(&self.tags_any)
            .chain(&self.tags_none)
    }
}

/// The key artists are compared by: a hash of the trimmed, lower-cased name.
pub fn artist_key(name: &str) -> u64 {
    let norm = name.trim().to_lowercase();
    let h = blake3::hash(norm.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// A recording key (ISRC or content hash) as a number, for duplicate collapsing.
pub fn recording_key(recording: &str) -> u64 {
    let h = blake3::hash(recording.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Camelot code as a number 1..=24 (`1A` = 1, `1B` = 2, ..., `12B` = 24); 0 if invalid.
pub fn camelot_number(code: &str) -> u64 {
    let code = code.trim();
    // Split off the last character (not byte: the code may be any text a client sent).
    let Some(last) = code.chars().last() else {
        return 0;
    };
    let (num, letter) = code.split_at(code.len() - last.len_utf8());
    let Ok(n) = num.parse::<u64>() else { return 0 };
    if !(1..=12).contains(&n) {
        return 0;
    }
    match letter {
        "A" | "a" => (n - 1) * 2 + 1,
        "B" | "b" => (n - 1) * 2 + 2,
        _ => 0,
    }
}

/// A set of track ids (a bitmap; track ids are small positive integers from the store).
#[derive(Debug, Clone, Default)]
pub struct TrackSet {
    bits: Vec<u64>,
    len: usize,
}

impl TrackSet {
    pub fn insert(&mut self, id: i64) {
        if id < 0 {
            return;
        }
        let (w, b) = ((id as usize) / 64, (id as usize) % 64);
        if w >= self.bits.len() {
            self.bits.resize(w + 1, 0);
        }
        if self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.len += 1;
        }
    }

    pub fn contains(&self, id: i64) -> bool {
        if id < 0 {
            return false;
        }
        let (w, b) = ((id as usize) / 64, (id as usize) % 64);
        self.bits.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                if x == 0 {
                    return None;
                }
                let b = x.trailing_zeros() as usize;
                x &= x - 1;
                Some((w * 64 + b) as i64)
            })
        })
    }
}

impl FromIterator<i64> for TrackSet {
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut s = TrackSet::default();
        for id in iter {
            s.insert(id);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_set_iterates_members_in_order() {
        let s: TrackSet = [5, 64, 3, 1000, 64, -2].into_iter().collect();
        assert_eq!(s.len(), 4);
        assert!(s.contains(64) && !s.contains(63) && !s.contains(-2) && !s.contains(5000));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 5, 64, 1000]);
    }

    #[test]
    fn field_names_and_camelot_numbers() {
        assert_eq!(NumField::parse("bpm"), Some(NumField::Attribute(0)));
        assert_eq!(NumField::parse("energy").map(|f| f.name()), Some("energy"));
        assert_eq!(NumField::parse("year"), Some(NumField::Year));
        assert_eq!(NumField::parse("nope"), None);
        assert_eq!(camelot_number("1A"), 1);
        assert_eq!(camelot_number("12B"), 24);
        assert_eq!(camelot_number("13A"), 0);
        assert_eq!(camelot_number(""), 0);
        // Any text a client sends: multi-byte last characters are not codes (no panic).
        for odd in ["𗝮", "1𗝮", "é", "12é", "A", "🎵B", "٣A"] {
            assert_eq!(camelot_number(odd), 0, "{odd}");
        }
        assert_eq!(artist_key(" Daft Punk"), artist_key("daft punk"));
    }
}
