//! End-to-end: the real `motif` binary on the real fixtures, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn motif(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_motif"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run motif")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn analyze_a_directory_prints_one_object_per_file_and_exits_2_on_failures() {
    let out = motif(&["analyze", "-j", "2", &fixture("audio"), &fixture("bad")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objs = lines(&out);
    let expected_files =
        walk(&PathBuf::from(fixture("audio"))) + walk(&PathBuf::from(fixture("bad")));
    assert_eq!(objs.len(), expected_files, "one line per audio file");
    let mut kinds = std::collections::BTreeMap::new();
    for o in &objs {
        let path = o["path"].as_str().unwrap();
        if let Some(e) = o.get("error") {
            kinds.insert(
                Path::new(path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
                e["kind"].as_str().unwrap().to_string(),
            );
            assert!(!e["message"].as_str().unwrap().is_empty());
        } else {
            let a = &o["analysis"];
            assert!(path.contains("/audio/"), "{path} should have failed");
            assert!(a["attributes"]["tempo_bpm"].as_f64().unwrap() >= 30.0);
            assert!(a["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["name"].as_str().unwrap().starts_with("camelot:")));
            assert_eq!(
                a["embedding"].as_array().unwrap().len(),
                embeddings::embedding::EMBEDDING_DIM
            );
        }
    }
    assert_eq!(kinds.get("empty.mp3").map(String::as_str), Some("empty"));
    assert_eq!(
        kinds.get("random.flac").map(String::as_str),
        Some("unsupported_format")
    );
    assert_eq!(
        kinds.get("text.ogg").map(String::as_str),
        Some("unsupported_format")
    );
    assert_eq!(kinds.get("silence.wav").map(String::as_str), Some("silent"));
    assert_eq!(
        kinds.get("short.wav").map(String::as_str),
        Some("too_short")
    );
    assert!(kinds.contains_key("truncated.mp3"));
    assert_eq!(kinds.len(), 6, "only the bad inputs fail: {kinds:?}");
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                ["mp3", "flac", "ogg", "opus", "wav", "m4a"].contains(&ext) as usize
            }
        })
        .sum()
}

#[test]
fn analyze_one_good_file_exits_0_with_pretty_json() {
    let out = motif(&[
        "analyze",
        "--pretty",
        &fixture("audio/rock_d_major_140.ogg"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 20, "pretty output spans lines");
    let v: Value = serde_json::from_str(&text).unwrap();
    let at = &v["analysis"]["attributes"];
    assert_eq!(at["key"], "D");
    assert_eq!(at["mode"], "major");
    assert_eq!(at["camelot"], "10B");
    let bpm = at["tempo_bpm"].as_f64().unwrap();
    assert!((bpm / 140.0 - 1.0).abs() < 0.04, "{bpm}");
}

#[test]
fn a_missing_file_is_a_json_error_not_a_crash() {
    let out = motif(&["analyze", "/nonexistent/track.flac"]);
    assert_eq!(out.status.code(), Some(2));
    let objs = lines(&out);
    assert_eq!(objs.len(), 1);
    assert_eq!(objs[0]["error"]["kind"], "io");
}

#[test]
fn a_folder_without_audio_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("motif-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not audio").unwrap();
    let out = motif(&["analyze", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audio files"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_loop_in_a_scanned_folder_does_not_recurse_forever() {
    let dir = std::env::temp_dir().join(format!("motif-loop-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("sub/back")).unwrap();
    std::fs::copy(
        fixture("audio/pop_a_major_120.ogg"),
        dir.join("sub/song.ogg"),
    )
    .unwrap();
    let out = motif(&["analyze", "--no-vectors", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out).len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_explains_every_field_and_bad_flags_are_usage_errors() {
    let out = motif(&["analyze", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for field in [
        "tempo_bpm",
        "tempo_confidence",
        "key_strength",
        "camelot",
        "loudness_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "energy",
        "danceability",
        "brightness",
        "percussiveness",
        "acousticness",
        "syncopation",
        "harmonic_complexity",
        "repetitiveness",
        "dynamic_complexity",
        "onset_rate",
        "features",
        "embedding",
        "error.kind",
        "unsupported_codec",
        "too_short",
    ] {
        assert!(help.contains(field), "--help does not mention {field}");
    }
    let out = motif(&["analyze", "--no-such-flag", "x.mp3"]);
    assert_eq!(out.status.code(), Some(64));
    let out = motif(&["analyze"]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn bench_prints_decode_and_analysis_throughput() {
    let out = motif(&["bench", &fixture("audio/pop_a_major_120.ogg")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("decode_x_rt") && text.contains("analysis_x_rt") && text.contains("peak RSS")
    );
    // The fingerprint's share of the analysis is a number in [0, 1) (issue 15's cost bar
    // is read off this column).
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    let col = header
        .iter()
        .position(|h| *h == "fp_share")
        .expect("fp_share column");
    let all = text
        .lines()
        .find(|l| l.starts_with("all "))
        .expect("an `all` row");
    let share: f64 = all.split_whitespace().nth(col).unwrap().parse().unwrap();
    assert!((-0.5..1.0).contains(&share), "{text}");
    assert!(text.contains("vorbis 44100 Hz x2"), "{text}");
}

/// Issue 15, part 2: one `bench-index` run builds both vector engines on the same vectors
/// and prints them side by side; an unknown engine is a usage error.
#[test]
fn bench_index_prints_both_vector_engines_side_by_side() {
    let dir = std::env::temp_dir().join(format!("motif-cli-engines-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = motif(&[
        "bench-index",
        "--tracks",
        "2000",
        "--queries",
        "20",
        "--vectors-only",
        "--dir",
        &dir.display().to_string(),
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("| engine | graph | hnsw-rs |"), "{text}");
    for row in ["| build |", "| ef=128: recall@10", "| load / resident"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row: {text}"));
        // A label and one cell per engine.
        assert_eq!(line.matches(" | ").count(), 2, "{line}");
    }
    // Recall of each engine at ef=256 on 2,000 clustered vectors is high.
    let line = text.lines().find(|l| l.starts_with("| ef=256")).unwrap();
    for cell in line.split(" | ").skip(1) {
        let recall: f64 = cell
            .trim_matches('|')
            .trim()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(recall >= 0.9, "{line}");
    }
    let out = motif(&["bench-index", "--vectors-only", "--engines", "faiss"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("graph or hnsw-rs"));
}
