//! `motif eval`: how good is the analyser on a labelled corpus of real recordings?
//!
//! Reads a TSV of `label<TAB>relative/path` (the dev corpus's `music.tsv`), analyses every
//! file (cached in a JSONL file so reruns are instant), and prints leave-one-out
//! precision@k of the embedding next to a plain MFCC mean+std baseline and a random
//! ranking, on the same files. Group weights are chosen on one half of each label's files
//! and scored on the other half, so the printed figure is not fitted to itself.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use embeddings::eval::{precision_at_k, random_precision, standardise};
use embeddings::features::mfcc_baseline_dims;
use embeddings::{Analysis, AnalysisConfig, GroupWeights, Normalizer};
use rayon::prelude::*;

#[derive(clap::Args)]
pub struct Args {
    /// Corpus folder (as written by shared/corpus/fetch-dev-corpus.sh).
    #[arg(long)]
    pub corpus: PathBuf,
    /// Label list, `label<TAB>path relative to the corpus` (default: CORPUS/music.tsv).
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Analysis cache (JSONL); entries from another analyser version are redone.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Fit a normaliser on the whole corpus with the chosen weights and write it here.
    #[arg(long)]
    pub write_normalizer: Option<PathBuf>,
    /// Ground truth (TSV with header: path relative to the corpus, tempo_bpm, key or
    /// tonic, mode; optional beat_bpm, family, group, time_signature): prints tempo
    /// Accuracy1/Accuracy2, felt-beat Accuracy1 and the MIREX key score, overall and by
    /// family, group and time signature. Without a label list (no `--list`, no
    /// CORPUS/music.tsv), the truth file lists the files (a render-scores.py set).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Write path, label, tempo, key and mode per file (TSV), for comparison with a peer.
    #[arg(long)]
    pub attributes_out: Option<PathBuf>,
}

const GRID: [f32; 5] = [0.0, 0.5, 1.0, 1.5, 2.0];
/// The learned group (200 dimensions) may weigh more than one signal-processing group.
const LEARNED_GRID: [f32; 6] = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0];

/// Which feature groups a weight search may use.
#[derive(Clone, Copy)]
enum Space {
    /// The signal-processing groups alone (the embedding before the learned model).
    Dsp,
    /// The learned group alone.
    Learned,
    /// All five groups.
    Combined,
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Dsp => "dsp",
            Space::Learned => "learned",
            Space::Combined => "combined",
        }
    }

    /// Every weighting the search tries: each signal-processing group's weight from
    /// [`GRID`], the learned group's from [`LEARNED_GRID`] (alone, its weight is moot).
    fn grid(self) -> Vec<GroupWeights> {
        let learned: &[f32] = match self {
            Space::Dsp => &[0.0],
            Space::Learned => &[1.0],
            Space::Combined => &LEARNED_GRID,
        };
        let dsp: &[f32] = match self {
            Space::Learned => &[0.0],
            Space::Dsp | Space::Combined => &GRID,
        };
        let mut out = Vec::new();
        for &timbre in dsp {
            for &harmony in dsp {
                for &rhythm in dsp {
                    for &dynamics in dsp {
                        for &l in learned {
                            let w = GroupWeights {
                                timbre,
                                harmony,
                                rhythm,
                                dynamics,
                                learned: l,
                            };
                            if timbre + harmony + rhythm + dynamics + l > 0.0 {
                                out.push(w);
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

fn show(w: GroupWeights) -> String {
    format!(
        "t {} h {} r {} d {} l {}",
        w.timbre, w.harmony, w.rhythm, w.dynamics, w.learned
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let list = args
        .list
        .clone()
        .unwrap_or_else(|| args.corpus.join("music.tsv"));
    // A rendered score set has no label list: its truth file lists the files.
    let from_truth = args.truth.is_some() && args.list.is_none() && !list.exists();
    let items: Vec<(String, PathBuf)> = match &args.truth {
        Some(truth) if from_truth => items_from_truth(&args.corpus, truth)?,
        _ => std::fs::read_to_string(&list)
            .with_context(|| format!("reading {}", list.display()))?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(label, rel)| (label.to_string(), args.corpus.join(rel)))
            .collect(),
    };
    anyhow::ensure!(
        !items.is_empty(),
        "no `label<TAB>path` lines in {}",
        list.display()
    );

    let mut cache: HashMap<PathBuf, Analysis> = HashMap::new();
    if let Some(c) = &args.cache {
        if let Ok(f) = std::fs::File::open(c) {
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if let Ok((p, a)) = serde_json::from_str::<(PathBuf, Analysis)>(&line) {
                    if a.analyzer_version == embeddings::ANALYZER_VERSION {
                        cache.insert(p, a);
                    }
                }
            }
        }
    }
    let config = AnalysisConfig::default();
    let todo: Vec<&PathBuf> = items
        .iter()
        .map(|(_, p)| p)
        .filter(|p| !cache.contains_key(*p))
        .collect();
    eprintln!(
        "analysing {} files ({} cached)",
        todo.len(),
        items.len() - todo.len()
    );
    let fresh: Vec<(PathBuf, Result<Analysis, embeddings::AnalysisError>)> = todo
        .par_iter()
        .map(|p| ((*p).clone(), embeddings::analyze(p, &config)))
        .collect();
    let mut failures = Vec::new();
    for (p, r) in fresh {
        match r {
            Ok(a) => {
                cache.insert(p, a);
            }
            Err(e) => failures.push(e),
        }
    }
    if let Some(c) = &args.cache {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(c).with_context(|| format!("writing {}", c.display()))?,
        );
        for (p, a) in &cache {
            writeln!(f, "{}", serde_json::to_string(&(p, a))?)?;
        }
    }
    for e in &failures {
        println!("FAILED {}: {} {}", e.path.display(), e.kind, e.message);
    }
    let done: Vec<(&str, &Analysis)> = items
        .iter()
        .filter_map(|(l, p)| cache.get(p).map(|a| (l.as_str(), a)))
        .collect();
    println!(
        "files: {} listed, {} analysed, {} failed",
        items.len(),
        done.len(),
        failures.len()
    );

    if let Some(out) = &args.attributes_out {
        let mut f =
            std::fs::File::create(out).with_context(|| format!("writing {}", out.display()))?;
        writeln!(
            f,
            "path\tlabel\ttempo_bpm\ttempo_confidence\tkey\tmode\tkey_strength\tpulse\tbeats_per_bar\tcompound"
        )?;
        for ((l, p), a) in items
            .iter()
            .filter_map(|(l, p)| cache.get(p).map(|a| ((l, p), a)))
        {
            let at = &a.attributes;
            writeln!(
                f,
                "{}\t{l}\t{:.2}\t{:.3}\t{}\t{}\t{:.3}\t{}\t{}\t{}",
                p.display(),
                at.tempo_bpm,
                at.tempo_confidence,
                at.key.name(),
                serde_json::to_value(at.mode)?.as_str().unwrap_or(""),
                at.key_strength,
                serde_json::to_value(at.pulse)?.as_str().unwrap_or(""),
                at.metre.map_or(0, |m| m.beats_per_bar),
                at.metre.is_some_and(|m| m.compound),
            )?;
        }
    }

    if let Some(truth) = &args.truth {
        score_truth(&args.corpus, truth, &cache)?;
    }
    if from_truth {
        // A score set has no similarity labels: tempo and key are all it measures.
        return Ok(ExitCode::SUCCESS);
    }

    let labels: Vec<String> = done.iter().map(|(l, _)| l.to_string()).collect();
    let features: Vec<&[f32]> = done.iter().map(|(_, a)| a.features.as_slice()).collect();
    let k = args.k;
    let mfcc: Vec<Vec<f32>> = done
        .iter()
        .map(|(_, a)| a.features[mfcc_baseline_dims()].to_vec())
        .collect();
    let shipped = Normalizer::default_for_version();
    let embed = |n: &Normalizer, idx: &[usize]| -> Vec<Vec<f32>> {
        idx.iter().map(|&i| n.embed(features[i])).collect()
    };
    let all: Vec<usize> = (0..done.len()).collect();
    let pick = |idx: &[usize]| -> Vec<String> { idx.iter().map(|&i| labels[i].clone()).collect() };

    // Halves: alternate files within each label.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let (mut half_a, mut half_b) = (Vec::new(), Vec::new());
    for (i, l) in labels.iter().enumerate() {
        let c = seen.entry(l.as_str()).or_default();
        if c.is_multiple_of(2) {
            half_a.push(i)
        } else {
            half_b.push(i)
        }
        *c += 1;
    }
    let fit = |idx: &[usize], w: GroupWeights| -> anyhow::Result<Normalizer> {
        let f: Vec<&[f32]> = idx.iter().map(|&i| features[i]).collect();
        Ok(Normalizer::fit(&f, w, "eval")?)
    };
    let tune = |idx: &[usize], space: Space| -> anyhow::Result<(GroupWeights, f64)> {
        // Mean and std do not depend on the weights: fit once, vary only the weights.
        let base = fit(idx, GroupWeights::default())?;
        let mut best = (GroupWeights::default(), f64::MIN);
        for w in space.grid() {
            let n = Normalizer {
                weights: w,
                ..base.clone()
            };
            let p = precision_at_k(&embed(&n, idx), &pick(idx), k);
            if p > best.1 + 1e-9 {
                best = (w, p);
            }
        }
        Ok(best)
    };

    println!(
        "\nleave-one-out precision@{k} (label = {}):",
        list.display()
    );
    println!(
        "  random ranking                         {:.3}",
        random_precision(&labels)
    );
    println!(
        "  MFCC mean+std baseline (z-scored)      {:.3}",
        precision_at_k(&standardise(&mfcc), &labels, k)
    );
    println!(
        "  embedding, shipped normaliser ({})  {:.3}",
        shipped.version,
        precision_at_k(&embed(shipped, &all), &labels, k)
    );
    let mfcc_on = |idx: &[usize]| {
        precision_at_k(
            &standardise(&idx.iter().map(|&i| mfcc[i].clone()).collect::<Vec<_>>()),
            &pick(idx),
            k,
        )
    };
    println!(
        "  two-fold cross-validation (weights tuned on one half of each label's files, scored on the other; MFCC baseline A {:.3}, B {:.3}):",
        mfcc_on(&half_a),
        mfcc_on(&half_b)
    );
    let mut cross = Vec::new();
    for space in [Space::Dsp, Space::Learned, Space::Combined] {
        let (wa, pa) = tune(&half_a, space)?;
        let (wb, pb) = tune(&half_b, space)?;
        let on_b = precision_at_k(&embed(&fit(&half_b, wa)?, &half_b), &pick(&half_b), k);
        let on_a = precision_at_k(&embed(&fit(&half_a, wb)?, &half_a), &pick(&half_a), k);
        let mean = (on_a + on_b) / 2.0;
        println!(
            "    {:<9} mean {mean:.3}: A->B {on_b:.3} ({}, A itself {pa:.3}); B->A {on_a:.3} ({}, B itself {pb:.3})",
            space.name(),
            show(wa),
            show(wb)
        );
        cross.push(mean);
    }
    println!("    combined / dsp: {:.3}x", cross[2] / cross[0].max(1e-9));
    let (w_all, p_all) = tune(&all, Space::Combined)?;
    println!(
        "  combined weights tuned on all {}: {p_all:.3} (fitted to itself: an upper bound)",
        show(w_all)
    );

    if let Some(out) = &args.write_normalizer {
        let f: Vec<&[f32]> = all.iter().map(|&i| features[i]).collect();
        let version = format!("{}+dev-corpus-{}", embeddings::ANALYZER_VERSION, f.len());
        let n = Normalizer::fit(&f, w_all, &version)?;
        write_json(out, &n)?;
        println!("wrote normaliser {} to {}", n.version, out.display());
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Tempo and key hits over a set of files.
#[derive(Default)]
struct Tally {
    tempo: usize,
    a1: usize,
    a2: usize,
    beat: usize,
    beat_a1: usize,
    keys: usize,
    key_score: f64,
    key_exact: usize,
    /// Tempi reported as free (no steady pulse): counted as tempo misses.
    free: usize,
    /// Pieces with a time signature Motif's metre can name, and the hits.
    metres: usize,
    metre_exact: usize,
    /// Hits of the class alone: duple (2 or 4), triple, compound.
    metre_class: usize,
    /// Hits of always answering four simple beats to the bar (the majority baseline).
    metre_four: usize,
    /// Bar length (beats per bar x beat period) within 4 % of the score's: the bar found,
    /// whichever level is called the beat.
    bar_hits: usize,
}

impl Tally {
    fn line(&self) -> String {
        let r = |a: usize, n: usize| {
            if n == 0 {
                f64::NAN
            } else {
                a as f64 / n as f64
            }
        };
        let mut out = format!(
            "{:>4} files  tempo A1 {:.3}  A2 {:.3}",
            self.tempo,
            r(self.a1, self.tempo),
            r(self.a2, self.tempo)
        );
        if self.beat > 0 {
            out.push_str(&format!("  felt-beat A1 {:.3}", r(self.beat_a1, self.beat)));
        }
        if self.keys > 0 {
            out.push_str(&format!(
                "  key MIREX {:.3}  exact {:.3}",
                self.key_score / self.keys as f64,
                r(self.key_exact, self.keys)
            ));
        }
        if self.free > 0 {
            out.push_str(&format!("  free {}", self.free));
        }
        if self.metres > 0 {
            out.push_str(&format!(
                "  metre {:.3} (class {:.3}; always-4 {:.3})",
                r(self.metre_exact, self.metres),
                r(self.metre_class, self.metres),
                r(self.metre_four, self.metres)
            ));
            out.push_str(&format!("  bar {:.3}", r(self.bar_hits, self.metres)));
        }
        out
    }
}

/// The columns of a truth TSV: `path`, `tempo_bpm`, `key` (or `tonic`), `mode`; optional
/// `beat_bpm` (the felt beat), `family` and `group` (for breakdowns). Both the
/// `eval/compose.py` sets and `../shared/evalsets/render-scores.py` sets are read.
struct TruthColumns {
    path: usize,
    tempo: usize,
    key: usize,
    mode: usize,
    beat: Option<usize>,
    time_signature: Option<usize>,
    breakdowns: Vec<(&'static str, usize)>,
}

impl TruthColumns {
    fn of(header: &[&str], truth: &Path) -> anyhow::Result<TruthColumns> {
        let find = |name: &str| header.iter().position(|h| *h == name);
        let need = |name: &str| {
            find(name).with_context(|| format!("no `{name}` column in {}", truth.display()))
        };
        Ok(TruthColumns {
            path: need("path")?,
            tempo: need("tempo_bpm")?,
            key: find("key")
                .or_else(|| find("tonic"))
                .with_context(|| format!("no `key` or `tonic` column in {}", truth.display()))?,
            mode: need("mode")?,
            beat: find("beat_bpm"),
            time_signature: find("time_signature"),
            breakdowns: ["family", "group", "time_signature"]
                .into_iter()
                .filter_map(|n| find(n).map(|c| (n, c)))
                .collect(),
        })
    }
}

/// Beats per bar and compound division as felt for a time signature: 6/8, 9/8 and 12/8
/// (and 6/4, 9/4, 12/4) are 2, 3 and 4 compound beats; 2/x, 3/x and 4/x are simple;
/// anything else (5/4, 7/8, 3/8 felt one to the bar, ...) is a metre Motif does not name,
/// so `None`, always a miss.
fn felt_metre(ts: &str) -> Option<(u8, bool)> {
    let (num, den) = signature(ts)?;
    match (num, den) {
        (6 | 9 | 12, 4 | 8 | 16) => Some((num / 3, true)),
        (2..=4, 2 | 4) => Some((num, false)),
        _ => None,
    }
}

/// Quarter notes in a bar of a time signature (6/8: 3, 2/2: 4).
fn bar_quarters(ts: &str) -> Option<f32> {
    let (num, den) = signature(ts)?;
    (num > 0 && den > 0).then(|| f32::from(num) * 4.0 / f32::from(den))
}

/// The numerator and denominator of a time signature such as `6/8`.
fn signature(ts: &str) -> Option<(u8, u8)> {
    let (num, den) = ts.split_once('/')?;
    Some((num.trim().parse().ok()?, den.trim().parse().ok()?))
}

/// The class of a metre: duple (2 or 4 simple beats), triple, or compound.
fn metre_class((beats, compound): (u8, bool)) -> &'static str {
    match (beats, compound) {
        (_, true) => "compound",
        (3, false) => "triple",
        _ => "duple",
    }
}

/// The files a truth TSV lists, as `(label, path)` (the label is the `group` column, when
/// there is one): the item list for a set that has no `music.tsv`.
fn items_from_truth(corpus: &Path, truth: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let text =
        std::fs::read_to_string(truth).with_context(|| format!("reading {}", truth.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let path = header
        .iter()
        .position(|h| *h == "path")
        .with_context(|| format!("no `path` column in {}", truth.display()))?;
    let group = header.iter().position(|h| *h == "group");
    Ok(lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter_map(|f| {
            let p = f.get(path)?;
            let label = group.and_then(|g| f.get(g)).unwrap_or(&"all");
            Some((label.to_string(), corpus.join(p)))
        })
        .collect())
}

/// Prints tempo (Accuracy1/2, felt beat) and key (MIREX) accuracy against a truth TSV,
/// overall and by family, group and time signature where the TSV has them.
fn score_truth(
    corpus: &Path,
    truth: &Path,
    cache: &HashMap<PathBuf, Analysis>,
) -> anyhow::Result<()> {
    use embeddings::eval::{key_score, tempo_accuracy1, tempo_accuracy2};
    use embeddings::{Mode, PitchClass};
    let text =
        std::fs::read_to_string(truth).with_context(|| format!("reading {}", truth.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let cols = TruthColumns::of(&header, truth)?;
    let mut all = Tally::default();
    let mut by: std::collections::BTreeMap<(&str, String), Tally> = Default::default();
    let mut misses = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(a) = f.get(cols.path).and_then(|p| cache.get(&corpus.join(p))) else {
            continue;
        };
        let at = &a.attributes;
        let mut tallies: Vec<&mut Tally> = vec![&mut all];
        let keys: Vec<(&str, String)> = cols
            .breakdowns
            .iter()
            .map(|(n, c)| (*n, f.get(*c).unwrap_or(&"").to_string()))
            .collect();
        for k in &keys {
            by.entry(k.clone()).or_default();
        }
        for (k, t) in by.iter_mut() {
            if keys.contains(k) {
                tallies.push(t);
            }
        }
        let tempo = f.get(cols.tempo).and_then(|t| t.parse::<f32>().ok());
        let beat = cols
            .beat
            .and_then(|c| f.get(c))
            .and_then(|t| t.parse::<f32>().ok());
        let key = f.get(cols.key).and_then(|k| PitchClass::parse(k));
        let major = f.get(cols.mode).map(|m| m.eq_ignore_ascii_case("major"));
        let score = key
            .zip(major)
            .map(|(k, m)| key_score(at.key.index(), at.mode == Mode::Major, k.index(), m));
        let signature = cols.time_signature.and_then(|c| f.get(c));
        let metre_truth = signature.map(|ts| felt_metre(ts));
        let quarters = signature.and_then(|ts| bar_quarters(ts));
        for t in tallies {
            t.free += (at.pulse == embeddings::Pulse::Free) as usize;
            if let Some(want) = metre_truth {
                let got = at.metre.map(|m| (m.beats_per_bar, m.compound));
                t.metres += 1;
                t.metre_exact += (got.is_some() && got == want) as usize;
                t.metre_class += (got.map(metre_class) == want.map(metre_class)) as usize;
                t.metre_four += (want == Some((4, false))) as usize;
                if let (Some(m), Some(q), Some(bar)) = (at.metre, tempo, quarters) {
                    let got_s = f32::from(m.beats_per_bar) * 60.0 / at.tempo_bpm;
                    let want_s = bar * 60.0 / q;
                    t.bar_hits += ((got_s / want_s - 1.0).abs() <= 0.04) as usize;
                }
            }
            if let Some(truth) = tempo {
                t.tempo += 1;
                t.a1 += tempo_accuracy1(at.tempo_bpm, truth) as usize;
                t.a2 += tempo_accuracy2(at.tempo_bpm, truth) as usize;
            }
            if let Some(b) = beat {
                t.beat += 1;
                t.beat_a1 += tempo_accuracy1(at.tempo_bpm, b) as usize;
            }
            if let Some(s) = score {
                t.keys += 1;
                t.key_score += s;
                t.key_exact += (s == 1.0) as usize;
            }
        }
        if let Some(truth) = tempo.filter(|t| !tempo_accuracy1(at.tempo_bpm, *t)) {
            misses.push(format!(
                "tempo {}: {:.1} for {truth}",
                f[cols.path], at.tempo_bpm
            ));
        }
        if let (Some(k), Some(s)) = (key, score.filter(|s| *s < 1.0)) {
            let m = f.get(cols.mode).unwrap_or(&"");
            misses.push(format!(
                "key {}: {} {:?} for {} {m} (score {s})",
                f[cols.path],
                at.key.name(),
                at.mode,
                k.name()
            ));
        }
    }
    println!("\nagainst {}:", truth.display());
    println!("  {:<28} {}", "all", all.line());
    for ((column, value), t) in &by {
        println!("  {:<28} {}", format!("{column} {value}"), t.line());
    }
    for m in &misses {
        println!("  miss {m}");
    }
    Ok(())
}

fn write_json(path: &Path, n: &Normalizer) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(n)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::felt_metre;

    #[test]
    fn time_signatures_map_to_felt_metres() {
        assert_eq!(felt_metre("4/4"), Some((4, false)));
        assert_eq!(felt_metre("4/2"), Some((4, false)));
        assert_eq!(felt_metre("3/4"), Some((3, false)));
        assert_eq!(felt_metre("2/2"), Some((2, false)));
        assert_eq!(felt_metre("6/8"), Some((2, true)));
        assert_eq!(felt_metre("9/8"), Some((3, true)));
        assert_eq!(felt_metre("12/8"), Some((4, true)));
        assert_eq!(felt_metre("5/4"), None);
        assert_eq!(felt_metre("3/8"), None);
        assert_eq!(felt_metre("x"), None);
        assert_eq!(super::bar_quarters("6/8"), Some(3.0));
        assert_eq!(super::bar_quarters("2/2"), Some(4.0));
        assert_eq!(super::bar_quarters("0/4"), None);
    }
}
