//! The models' labels mapped into Motif's `facet:value` tags: `genre:*`, `mood:*`, `era:*`,
//! `instrument:*`, `vocals:*`. Synonyms merge (a tag's score is the highest of its labels'
//! scores: "female vocalist", "female vocalists", "woman", "female voice" are one
//! `vocals:female`), and a tag is given when its score reaches its threshold. Labels
//! Motif already describes better from the signal (slow, fast, beat, drums' presence as
//! "beats") are left out. Thresholds and how they were chosen: [`VOCABULARY`] and
//! docs/MEASUREMENTS.md ("Learned tags").

use crate::tags::Tag;

use super::ModelScores;

/// `MSD_musicnn`'s labels in output order (the weights file carries them too; a unit test
/// checks they agree).
pub const MSD_LABELS: [&str; 50] = [
    "rock",
    "pop",
    "alternative",
    "indie",
    "electronic",
    "female vocalists",
    "dance",
    "00s",
    "alternative rock",
    "jazz",
    "beautiful",
    "metal",
    "chillout",
    "male vocalists",
    "classic rock",
    "soul",
    "indie rock",
    "Mellow",
    "electronica",
    "80s",
    "folk",
    "90s",
    "chill",
    "instrumental",
    "punk",
    "oldies",
    "blues",
    "hard rock",
    "ambient",
    "acoustic",
    "experimental",
    "female vocalist",
    "guitar",
    "Hip-Hop",
    "70s",
    "party",
    "country",
    "easy listening",
    "sexy",
    "catchy",
    "funk",
    "electro",
    "heavy metal",
    "Progressive rock",
    "60s",
    "rnb",
    "indie pop",
    "sad",
    "House",
    "happy",
];

/// `MTT_musicnn`'s labels in output order.
pub const MTT_LABELS: [&str; 50] = [
    "guitar",
    "classical",
    "slow",
    "techno",
    "strings",
    "drums",
    "electronic",
    "rock",
    "fast",
    "piano",
    "ambient",
    "beat",
    "violin",
    "vocal",
    "synth",
    "female",
    "indian",
    "opera",
    "male",
    "singing",
    "vocals",
    "no vocals",
    "harpsichord",
    "loud",
    "quiet",
    "flute",
    "woman",
    "male vocal",
    "no vocal",
    "pop",
    "soft",
    "sitar",
    "solo",
    "man",
    "classic",
    "choir",
    "voice",
    "new age",
    "dance",
    "male voice",
    "female vocal",
    "beats",
    "harp",
    "cello",
    "no voice",
    "weird",
    "country",
    "metal",
    "female voice",
    "choral",
];

/// One Motif tag: the labels it merges (prefixed `msd:` or `mtt:`) and its threshold.
pub struct Entry {
    pub tag: &'static str,
    pub labels: &'static [&'static str],
    pub threshold: f32,
}

const fn e(tag: &'static str, labels: &'static [&'static str], threshold: f32) -> Entry {
    Entry {
        tag,
        labels,
        threshold,
    }
}

/// The threshold of every tag no labelled data here could calibrate: genres, moods,
/// eras, voice and the instruments no score-set family confirms. The models' scores run
/// low (a fully instrumental piece scores 0.1-0.4 on "instrumental"), so 0.5 would almost
/// never tag; at 0.2 a dev-corpus track gets a median of 2 learned tags and 9 of 159 get
/// none (docs/MEASUREMENTS.md, "Learned tags").
pub const UNCALIBRATED: f32 = 0.2;

/// Every learned tag. `instrument:piano`, `instrument:strings` and `instrument:guitar`
/// have thresholds chosen on rendered score set A for the best F1 against the piece's
/// instrument family (`eval/calibrate_tags.py`); the rest use [`UNCALIBRATED`].
pub const VOCABULARY: &[Entry] = &[
    e("genre:rock", &["msd:rock", "mtt:rock"], UNCALIBRATED),
    e("genre:pop", &["msd:pop", "mtt:pop"], UNCALIBRATED),
    e(
        "genre:alternative",
        &["msd:alternative", "msd:alternative rock"],
        0.5,
    ),
    e(
        "genre:indie",
        &["msd:indie", "msd:indie rock", "msd:indie pop"],
        0.5,
    ),
    e(
        "genre:electronic",
        &[
            "msd:electronic",
            "msd:electronica",
            "msd:electro",
            "mtt:electronic",
        ],
        0.5,
    ),
    e("genre:dance", &["msd:dance", "mtt:dance"], UNCALIBRATED),
    e("genre:house", &["msd:House"], UNCALIBRATED),
    e("genre:techno", &["mtt:techno"], UNCALIBRATED),
    e("genre:jazz", &["msd:jazz"], UNCALIBRATED),
    e(
        "genre:metal",
        &["msd:metal", "msd:heavy metal", "mtt:metal"],
        0.5,
    ),
    e("genre:hard-rock", &["msd:hard rock"], UNCALIBRATED),
    e("genre:classic-rock", &["msd:classic rock"], UNCALIBRATED),
    e(
        "genre:progressive-rock",
        &["msd:Progressive rock"],
        UNCALIBRATED,
    ),
    e("genre:punk", &["msd:punk"], UNCALIBRATED),
    e("genre:soul", &["msd:soul"], UNCALIBRATED),
    e("genre:rnb", &["msd:rnb"], UNCALIBRATED),
    e("genre:funk", &["msd:funk"], UNCALIBRATED),
    e("genre:blues", &["msd:blues"], UNCALIBRATED),
    e("genre:folk", &["msd:folk"], UNCALIBRATED),
    e(
        "genre:country",
        &["msd:country", "mtt:country"],
        UNCALIBRATED,
    ),
    e("genre:hip-hop", &["msd:Hip-Hop"], UNCALIBRATED),
    e(
        "genre:ambient",
        &["msd:ambient", "mtt:ambient"],
        UNCALIBRATED,
    ),
    e("genre:experimental", &["msd:experimental"], UNCALIBRATED),
    e(
        "genre:easy-listening",
        &["msd:easy listening"],
        UNCALIBRATED,
    ),
    e(
        "genre:classical",
        &["mtt:classical", "mtt:classic"],
        UNCALIBRATED,
    ),
    e("genre:new-age", &["mtt:new age"], UNCALIBRATED),
    e("genre:indian", &["mtt:indian"], UNCALIBRATED),
    e("genre:opera", &["mtt:opera"], UNCALIBRATED),
    e("mood:chill", &["msd:chill", "msd:chillout"], UNCALIBRATED),
    e("mood:mellow", &["msd:Mellow", "mtt:soft"], UNCALIBRATED),
    e("mood:beautiful", &["msd:beautiful"], UNCALIBRATED),
    e("mood:sad", &["msd:sad"], UNCALIBRATED),
    e("mood:happy", &["msd:happy"], UNCALIBRATED),
    e("mood:sexy", &["msd:sexy"], UNCALIBRATED),
    e("mood:party", &["msd:party"], UNCALIBRATED),
    e("mood:catchy", &["msd:catchy"], UNCALIBRATED),
    e("mood:quiet", &["mtt:quiet"], UNCALIBRATED),
    e("mood:loud", &["mtt:loud"], UNCALIBRATED),
    e("mood:weird", &["mtt:weird"], UNCALIBRATED),
    e("era:60s", &["msd:60s"], UNCALIBRATED),
    e("era:70s", &["msd:70s"], UNCALIBRATED),
    e("era:80s", &["msd:80s"], UNCALIBRATED),
    e("era:90s", &["msd:90s"], UNCALIBRATED),
    e("era:00s", &["msd:00s"], UNCALIBRATED),
    e("era:oldies", &["msd:oldies"], UNCALIBRATED),
    e("instrument:guitar", &["msd:guitar", "mtt:guitar"], 0.56),
    e("instrument:piano", &["mtt:piano"], 0.12),
    e(
        "instrument:strings",
        &["mtt:strings", "mtt:violin", "mtt:cello"],
        0.5,
    ),
    e("instrument:violin", &["mtt:violin"], UNCALIBRATED),
    e("instrument:cello", &["mtt:cello"], UNCALIBRATED),
    e("instrument:harpsichord", &["mtt:harpsichord"], UNCALIBRATED),
    e("instrument:flute", &["mtt:flute"], UNCALIBRATED),
    e("instrument:harp", &["mtt:harp"], UNCALIBRATED),
    e("instrument:sitar", &["mtt:sitar"], UNCALIBRATED),
    e("instrument:synth", &["mtt:synth"], UNCALIBRATED),
    e("instrument:drums", &["mtt:drums"], UNCALIBRATED),
    e(
        "vocals:female",
        &[
            "msd:female vocalists",
            "msd:female vocalist",
            "mtt:female",
            "mtt:woman",
            "mtt:female vocal",
            "mtt:female voice",
        ],
        0.5,
    ),
    e(
        "vocals:male",
        &[
            "msd:male vocalists",
            "mtt:male",
            "mtt:man",
            "mtt:male vocal",
            "mtt:male voice",
        ],
        0.5,
    ),
    e(
        "vocals:none",
        &[
            "msd:instrumental",
            "mtt:no vocals",
            "mtt:no vocal",
            "mtt:no voice",
        ],
        0.5,
    ),
    e("vocals:choir", &["mtt:choir", "mtt:choral"], UNCALIBRATED),
];

/// The facets the learned models fill.
pub const FACETS: [&str; 5] = ["genre", "mood", "era", "instrument", "vocals"];

/// Whether `tag` belongs to a facet of the learned vocabulary.
pub fn is_learned(tag: &str) -> bool {
    tag.split_once(':')
        .is_some_and(|(facet, _)| FACETS.contains(&facet))
}

/// The score of one model label (`msd:rock`), or `None` for a label no model has.
pub fn label_score(listening: &ModelScores, label: &str) -> Option<f32> {
    let (model, name) = label.split_once(':')?;
    let (labels, scores) = match model {
        "msd" => (&MSD_LABELS, &listening.msd),
        "mtt" => (&MTT_LABELS, &listening.mtt),
        _ => return None,
    };
    labels.iter().position(|l| *l == name).map(|i| scores[i])
}

/// Every vocabulary tag's score (the highest of its labels'), given or not.
pub fn scores(listening: &ModelScores) -> Vec<(&'static Entry, f32)> {
    VOCABULARY
        .iter()
        .map(|entry| {
            let score = entry
                .labels
                .iter()
                .filter_map(|l| label_score(listening, l))
                .fold(0.0f32, f32::max);
            (entry, score)
        })
        .collect()
}

/// The tags that reach their thresholds, each with its model score.
pub fn tags(listening: &ModelScores) -> Vec<Tag> {
    scores(listening)
        .into_iter()
        .filter(|(entry, score)| *score >= entry.threshold)
        .map(|(entry, score)| Tag {
            name: entry.tag.to_string(),
            score: score.clamp(0.0, 1.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_of_the_vocabulary_exists_and_every_tag_has_a_facet() {
        let l = ModelScores {
            msd: vec![0.0; 50],
            mtt: vec![0.0; 50],
            patches: 1,
        };
        for entry in VOCABULARY {
            assert!(is_learned(entry.tag), "{}", entry.tag);
            for label in entry.labels {
                assert!(label_score(&l, label).is_some(), "{label}");
            }
        }
    }

    #[test]
    fn synonyms_merge_to_their_highest_score() {
        let mut l = ModelScores {
            msd: vec![0.0; 50],
            mtt: vec![0.0; 50],
            patches: 1,
        };
        l.msd[5] = 0.3; // female vocalists
        l.mtt[26] = 0.9; // woman
        let s = scores(&l);
        let female = s.iter().find(|(e, _)| e.tag == "vocals:female").unwrap();
        assert_eq!(female.1, 0.9);
        assert!(tags(&l).iter().any(|t| t.name == "vocals:female"));
    }
}
