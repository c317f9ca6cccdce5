//! Musical relations used to explain answers and to order playlists: how two keys
//! (Camelot codes) and two tempos relate.

/// How two Camelot positions relate (numbers from [`indexer::filter::camelot_number`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRelation {
    Same,
    /// One step round the wheel, same letter (a fifth up or down).
    Adjacent,
    /// Same number, other letter (relative major/minor).
    Relative,
    Other,
    Unknown,
}

impl KeyRelation {
    pub fn between(a: u64, b: u64) -> KeyRelation {
        if a == 0 || b == 0 {
            return KeyRelation::Unknown;
        }
        let (na, la) = ((a - 1) / 2, (a - 1) % 2);
        let (nb, lb) = ((b - 1) / 2, (b - 1) % 2);
        if a == b {
            KeyRelation::Same
        } else if la == lb && ((na + 1) % 12 == nb || (nb + 1) % 12 == na) {
            KeyRelation::Adjacent
        } else if na == nb {
            KeyRelation::Relative
        } else {
            KeyRelation::Other
        }
    }

    /// Whether a DJ would call the move harmonic.
    pub fn is_compatible(self) -> bool {
        matches!(
            self,
            KeyRelation::Same | KeyRelation::Adjacent | KeyRelation::Relative
        )
    }

    /// A score for a transition: 1 same key, 0.8 adjacent/relative, 0 otherwise.
    pub fn score(self) -> f64 {
        match self {
            KeyRelation::Same => 1.0,
            KeyRelation::Adjacent | KeyRelation::Relative => 0.8,
            KeyRelation::Unknown => 0.5,
            KeyRelation::Other => 0.0,
        }
    }
}

/// How far apart two tempos are, in relative terms, allowing half and double time
/// (0.0 = the same pulse).
pub fn tempo_distance(a: f64, b: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 {
        return 1.0;
    }
    [1.0, 2.0, 0.5]
        .iter()
        .map(|m| ((b * m) / a - 1.0).abs())
        .fold(f64::INFINITY, f64::min)
}

/// A short phrase for the tempo relation of `b` to `a`.
pub fn tempo_reason(a: f64, b: f64) -> String {
    let r = b / a;
    if (r - 1.0).abs() <= 0.04 {
        format!("same tempo ({b:.0} vs {a:.0} BPM)")
    } else if (r - 2.0).abs() <= 0.08 {
        format!("double time ({b:.0} vs {a:.0} BPM)")
    } else if (r - 0.5).abs() <= 0.02 {
        format!("half time ({b:.0} vs {a:.0} BPM)")
    } else {
        format!("tempo {b:.0} vs {a:.0} BPM")
    }
}

/// A short phrase for the key relation of `b` to `a` (Camelot codes).
pub fn key_reason(a: &str, b: &str) -> Option<String> {
    use indexer::filter::camelot_number as n;
    match KeyRelation::between(n(a), n(b)) {
        KeyRelation::Same => Some(format!("same key ({b})")),
        KeyRelation::Adjacent => Some(format!("harmonically compatible key ({a} -> {b})")),
        KeyRelation::Relative => Some(format!("relative key ({a} -> {b})")),
        KeyRelation::Other => Some(format!("key {b} (seed {a})")),
        KeyRelation::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexer::filter::camelot_number as n;

    #[test]
    fn camelot_wheel_relations() {
        assert_eq!(KeyRelation::between(n("8A"), n("8A")), KeyRelation::Same);
        assert_eq!(
            KeyRelation::between(n("8A"), n("9A")),
            KeyRelation::Adjacent
        );
        assert_eq!(
            KeyRelation::between(n("12B"), n("1B")),
            KeyRelation::Adjacent
        );
        assert_eq!(
            KeyRelation::between(n("1A"), n("12A")),
            KeyRelation::Adjacent
        );
        assert_eq!(
            KeyRelation::between(n("8A"), n("8B")),
            KeyRelation::Relative
        );
        assert_eq!(KeyRelation::between(n("8A"), n("9B")), KeyRelation::Other);
        assert_eq!(KeyRelation::between(n("8A"), n("3A")), KeyRelation::Other);
        assert_eq!(KeyRelation::between(0, n("3A")), KeyRelation::Unknown);
    }

    #[test]
    fn tempo_relations_allow_half_and_double_time() {
        assert!(tempo_distance(120.0, 121.0) < 0.01);
        assert!(tempo_distance(120.0, 60.5) < 0.01);
        assert!(tempo_distance(120.0, 90.0) > 0.2);
        assert!(tempo_reason(120.0, 240.0).starts_with("double time"));
    }
}
