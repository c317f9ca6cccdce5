//! Tags derived from the attributes: namespaced `facet:value` strings with a score in 0-1,
//! the vocabulary editors and playlists filter on.

use serde::{Deserialize, Serialize};

use crate::attributes::{Attributes, Mode, Pulse};

/// One tag with how strongly it applies (0-1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub score: f32,
}

fn tag(name: impl Into<String>, score: f32) -> Tag {
    Tag {
        name: name.into(),
        score: score.clamp(0.0, 1.0),
    }
}

/// The tag of a track without a steady pulse (see [`crate::Pulse`]); BPM range filters
/// leave such tracks out.
pub const FREE_TEMPO: &str = "tempo:free";

/// Tempo classes (BPM): slow < 80 <= moderate < 110 <= fast < 140 <= very-fast.
pub fn tempo_class(bpm: f32) -> &'static str {
    match bpm {
        b if b < 80.0 => "slow",
        b if b < 110.0 => "moderate",
        b if b < 140.0 => "fast",
        _ => "very-fast",
    }
}

/// The analysis tags of a track. Always present: `tempo:*` (a class, or `tempo:free` when
/// the pulse is not steady), `key:*`, `mode:*`, `camelot:*`, `energy:*`; `meter:2`,
/// `meter:3` or `meter:4` (plus `meter:compound`) when beats were tracked; present when
/// they apply: `groove:danceable`,
/// `sound:acoustic`, `sound:electronic`, `rhythm:percussive`, `rhythm:syncopated`,
/// `timbre:bright`, `timbre:dark`, `structure:repetitive`, `dynamics:wide`. Every tag is
/// `facet:value`, so the catalogue can count and filter by facet.
pub fn derive(a: &Attributes) -> Vec<Tag> {
    let mode = match a.mode {
        Mode::Major => "major",
        Mode::Minor => "minor",
    };
    let tempo = match a.pulse {
        Pulse::Steady => tag(
            format!("tempo:{}", tempo_class(a.tempo_bpm)),
            a.tempo_confidence,
        ),
        Pulse::Free => tag(FREE_TEMPO, 1.0 - a.tempo_confidence),
    };
    let mut tags = vec![
        tempo,
        tag(format!("key:{}-{mode}", a.key.name()), a.key_strength),
        tag(format!("mode:{mode}"), a.key_strength),
        tag(format!("camelot:{}", a.camelot), a.key_strength),
    ];
    if let Some(m) = a.metre {
        tags.push(tag(format!("meter:{}", m.name()), a.tempo_confidence));
        if m.compound {
            tags.push(tag("meter:compound", a.tempo_confidence));
        }
    }
    let e = a.energy;
    tags.push(match e {
        e if e < 0.33 => tag("energy:low", 1.0 - e),
        e if e < 0.66 => tag("energy:medium", 1.0 - 2.0 * (e - 0.5).abs()),
        e => tag("energy:high", e),
    });
    let flags = [
        ("groove:danceable", a.danceability, a.danceability >= 0.5),
        ("sound:acoustic", a.acousticness, a.acousticness >= 0.6),
        (
            "sound:electronic",
            1.0 - a.acousticness,
            a.acousticness < 0.35,
        ),
        (
            "rhythm:percussive",
            a.percussiveness,
            a.percussiveness >= 0.5,
        ),
        ("timbre:bright", a.brightness, a.brightness >= 0.65),
        ("timbre:dark", 1.0 - a.brightness, a.brightness < 0.3),
        ("rhythm:syncopated", a.syncopation, a.syncopation >= 0.4),
        (
            "structure:repetitive",
            a.repetitiveness,
            a.repetitiveness >= 0.6,
        ),
        (
            "dynamics:wide",
            (a.dynamic_complexity / 10.0).min(1.0),
            a.dynamic_complexity >= 4.0,
        ),
    ];
    tags.extend(flags.into_iter().filter(|f| f.2).map(|(n, s, _)| tag(n, s)));
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::PitchClass;

    /// Every tag is `facet:value`, whichever flags fire.
    #[test]
    fn every_tag_has_a_facet() {
        for level in [0.0f32, 0.5, 1.0] {
            let a = Attributes {
                tempo_bpm: 60.0 + 100.0 * level,
                tempo_confidence: level,
                pulse: if level > 0.4 {
                    Pulse::Steady
                } else {
                    Pulse::Free
                },
                metre: Some(crate::metre::Metre {
                    beats_per_bar: 3,
                    compound: level > 0.4,
                }),
                key: PitchClass::A,
                mode: Mode::Minor,
                key_strength: level,
                camelot: "8A".into(),
                loudness_lufs: -14.0,
                loudness_range_lu: 6.0,
                true_peak_dbtp: -1.0,
                energy: level,
                danceability: level,
                brightness: level,
                percussiveness: level,
                acousticness: level,
                syncopation: level,
                harmonic_complexity: level,
                repetitiveness: level,
                dynamic_complexity: 10.0 * level,
                onset_rate: 4.0,
            };
            for t in derive(&a) {
                let (facet, value) = t.name.split_once(':').expect("facet:value");
                assert!(!facet.is_empty() && !value.is_empty(), "{}", t.name);
                assert!((0.0..=1.0).contains(&t.score), "{} {}", t.name, t.score);
            }
        }
    }
}
