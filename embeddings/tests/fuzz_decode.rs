//! Property test over hostile input: random bytes, truncated and bit-flipped fixtures under
//! every audio extension. The analyser must answer with a typed error or an analysis,
//! never panic (an `internal` error is a caught panic, so it fails too) and never hang.
//!
//! `PROPTEST_CASES=100000 cargo test --release -p embeddings --test fuzz_decode` runs a
//! long session (see docs/MEASUREMENTS.md for the last 10-minute run).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use embeddings::{analyze, AnalysisConfig, ErrorKind};
use proptest::prelude::*;

const EXTENSIONS: [&str; 8] = ["mp3", "flac", "ogg", "opus", "wav", "m4a", "aac", "bin"];
const SOURCES: [&str; 7] = [
    "audio/pop_a_major_120.mp3",
    "audio/pop_a_major_120.flac",
    "audio/pop_a_major_120.ogg",
    "audio/pop_a_major_120.opus",
    "audio/pop_a_major_120.wav",
    "audio/pop_a_major_120.m4a",
    "audio/pop_a_major_120.alac.m4a",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(rel),
    )
    .unwrap()
}

/// Writes `bytes` to a fresh temp file and analyses it on a watchdog thread.
fn check(bytes: Vec<u8>, ext: &str) -> Result<(), TestCaseError> {
    let dir = std::env::temp_dir().join(format!("motif-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!(
        "case{}.{ext}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, &bytes).unwrap();
    let (tx, rx) = mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let _ = tx.send(analyze(&p, &AnalysisConfig::default()));
    });
    let r = rx.recv_timeout(Duration::from_secs(60));
    let _ = std::fs::remove_file(&path);
    match r {
        Err(_) => Err(TestCaseError::fail(format!(
            "hang: {} bytes as .{ext}",
            bytes.len()
        ))),
        Ok(Err(e)) if e.kind == ErrorKind::Internal => {
            Err(TestCaseError::fail(format!("panic: {e}")))
        }
        Ok(Err(e)) => {
            prop_assert!(!e.message.is_empty());
            Ok(())
        }
        Ok(Ok(a)) => {
            prop_assert!(a.features.iter().all(|x| x.is_finite()));
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..8192), ext in 0..EXTENSIONS.len()) {
        check(bytes, EXTENSIONS[ext])?;
    }

    #[test]
    fn truncated_fixtures(src in 0..SOURCES.len(), cut in 0.0f64..1.0) {
        let mut b = fixture(SOURCES[src]);
        b.truncate((b.len() as f64 * cut) as usize);
        let ext = SOURCES[src].rsplit('.').next().unwrap();
        check(b, ext)?;
    }

    #[test]
    fn corrupted_fixtures(src in 0..SOURCES.len(), flips in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..64)) {
        let mut b = fixture(SOURCES[src]);
        let n = b.len();
        for (pos, byte) in flips {
            b[((n as f64 * pos) as usize).min(n - 1)] = byte;
        }
        let ext = SOURCES[src].rsplit('.').next().unwrap();
        check(b, ext)?;
    }
}
