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
    /// Ground truth (TSV with header: path relative to the corpus, tempo_bpm, key, mode):
    /// prints tempo Accuracy1/Accuracy2 and the MIREX key score.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Write path, label, tempo, key and mode per file (TSV), for comparison with a peer.
    #[arg(long)]
    pub attributes_out: Option<PathBuf>,
}

const GRID: [f32; 5] = [0.0, 0.5, 1.0, 1.5, 2.0];

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let list = args
        .list
        .clone()
        .unwrap_or_else(|| args.corpus.join("music.tsv"));
    let text =
        std::fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let items: Vec<(String, PathBuf)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(label, rel)| (label.to_string(), args.corpus.join(rel)))
        .collect();
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
            "path\tlabel\ttempo_bpm\ttempo_confidence\tkey\tmode\tkey_strength"
        )?;
        for ((l, p), a) in items
            .iter()
            .filter_map(|(l, p)| cache.get(p).map(|a| ((l, p), a)))
        {
            let at = &a.attributes;
            writeln!(
                f,
                "{}\t{l}\t{:.2}\t{:.3}\t{}\t{}\t{:.3}",
                p.display(),
                at.tempo_bpm,
                at.tempo_confidence,
                at.key.name(),
                serde_json::to_value(at.mode)?.as_str().unwrap_or(""),
                at.key_strength
            )?;
        }
    }

    if let Some(truth) = &args.truth {
        score_truth(&args.corpus, truth, &cache)?;
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
    let tune = |idx: &[usize]| -> anyhow::Result<(GroupWeights, f64)> {
        // Mean and std do not depend on the weights: fit once, vary only the weights.
        let base = fit(idx, GroupWeights::default())?;
        let mut best = (GroupWeights::default(), f64::MIN);
        for &t in &GRID {
            for &h in &GRID {
                for &r in &GRID {
                    for &d in &GRID {
                        if t + h + r + d == 0.0 {
                            continue;
                        }
                        let w = GroupWeights {
                            timbre: t,
                            harmony: h,
                            rhythm: r,
                            dynamics: d,
                        };
                        let n = Normalizer {
                            weights: w,
                            ..base.clone()
                        };
                        let p = precision_at_k(&embed(&n, idx), &pick(idx), k);
                        if p > best.1 + 1e-9 {
                            best = (w, p);
                        }
                    }
                }
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
    println!(
        "  embedding, equal weights fit here      {:.3}",
        precision_at_k(
            &embed(&fit(&all, GroupWeights::default())?, &all),
            &labels,
            k
        )
    );
    let (wa, pa) = tune(&half_a)?;
    let (wb, pb) = tune(&half_b)?;
    let cross_b = precision_at_k(&embed(&fit(&half_b, wa)?, &half_b), &pick(&half_b), k);
    let cross_a = precision_at_k(&embed(&fit(&half_a, wb)?, &half_a), &pick(&half_a), k);
    let base_a = precision_at_k(
        &standardise(&half_a.iter().map(|&i| mfcc[i].clone()).collect::<Vec<_>>()),
        &pick(&half_a),
        k,
    );
    let base_b = precision_at_k(
        &standardise(&half_b.iter().map(|&i| mfcc[i].clone()).collect::<Vec<_>>()),
        &pick(&half_b),
        k,
    );
    println!("  weights tuned on half A {wa:?} (A: {pa:.3}) -> half B {cross_b:.3} (MFCC baseline on B {base_b:.3})");
    println!("  weights tuned on half B {wb:?} (B: {pb:.3}) -> half A {cross_a:.3} (MFCC baseline on A {base_a:.3})");
    let (w_all, p_all) = tune(&all)?;
    println!("  weights tuned on all {w_all:?}: {p_all:.3} (fitted to itself: an upper bound)");

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

/// Prints tempo and key accuracy against a truth TSV.
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
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .with_context(|| format!("no `{name}` column in {}", truth.display()))
    };
    let (cp, ct, ck, cm) = (col("path")?, col("tempo_bpm")?, col("key")?, col("mode")?);
    let (mut n_t, mut a1, mut a2, mut n_k, mut ks, mut exact) = (0, 0, 0, 0, 0.0, 0);
    let mut misses = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let Some(a) = f.get(cp).and_then(|p| cache.get(&corpus.join(p))) else {
            continue;
        };
        let at = &a.attributes;
        if let Some(t) = f.get(ct).and_then(|t| t.parse::<f32>().ok()) {
            n_t += 1;
            a1 += tempo_accuracy1(at.tempo_bpm, t) as usize;
            a2 += tempo_accuracy2(at.tempo_bpm, t) as usize;
            if !tempo_accuracy1(at.tempo_bpm, t) {
                misses.push(format!("tempo {}: {:.1} for {t}", f[cp], at.tempo_bpm));
            }
        }
        if let (Some(k), Some(m)) = (f.get(ck).and_then(|k| PitchClass::parse(k)), f.get(cm)) {
            let major = m.eq_ignore_ascii_case("major");
            n_k += 1;
            let s = key_score(at.key.index(), at.mode == Mode::Major, k.index(), major);
            ks += s;
            exact += (s == 1.0) as usize;
            if s < 1.0 {
                misses.push(format!(
                    "key {}: {} {:?} for {} {m}",
                    f[cp],
                    at.key.name(),
                    at.mode,
                    k.name()
                ));
            }
        }
    }
    println!("\nagainst {}:", truth.display());
    if n_t > 0 {
        println!(
            "  tempo: {n_t} files, Accuracy1 {:.3}, Accuracy2 {:.3}",
            a1 as f64 / n_t as f64,
            a2 as f64 / n_t as f64
        );
    }
    if n_k > 0 {
        println!(
            "  key:   {n_k} files, MIREX score {:.3}, exact {:.3}",
            ks / n_k as f64,
            exact as f64 / n_k as f64
        );
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
