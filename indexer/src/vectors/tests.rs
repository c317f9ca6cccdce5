//! The vector index's tests. Every test whose answer depends on the graph is written once
//! as a function of the [`Engine`] and run for each by [`both_engines!`], so both engines
//! pass the same tests.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// Runs each named `fn(Engine)` as one test per engine (`graph::name`, `hnsw_rs::name`).
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod graph {
            $( #[test] fn $name() { super::$name(super::Engine::Graph) } )*
        }
        mod hnsw_rs {
            $( #[test] fn $name() { super::$name(super::Engine::HnswRs) } )*
        }
    };
}

both_engines!(
    search_finds_itself_and_tombstones_vanish_at_once,
    both_scans_equal_exact_search,
    save_and_load_round_trip,
    bad_parameters_are_errors_not_exits,
    plans_fill_the_answer_and_keep_the_filter,
    recall_against_exact_search,
    queries_off_the_unit_sphere_do_not_panic,
    damaged_files_are_errors,
    operations_keep_the_invariants,
);

/// A pseudo-random unit vector (also used by `graph`'s tests).
pub(super) fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    embeddings::embedding::l2_normalise(&mut v);
    v
}

/// A scratch directory of its own for one test on one engine.
fn scratch(test: &str, engine: Engine) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("motif-vec-{test}-{engine}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn ids(hits: &[(i64, f32)]) -> Vec<i64> {
    hits.iter().map(|(t, _)| *t).collect()
}

fn search_finds_itself_and_tombstones_vanish_at_once(engine: Engine) {
    let mut idx = VectorIndex::new(engine, 16, HnswParams::default(), 100).unwrap();
    assert_eq!(idx.engine(), engine);
    let items: Vec<(i64, Vec<f32>)> = (0..300).map(|i| (i, unit(i as u64, 16))).collect();
    idx.upsert(&items).unwrap();
    for (t, v) in items.iter().take(20) {
        assert_eq!(idx.search(v, 1, None)[0].0, *t);
    }
    assert!(idx.remove(5));
    assert!(!idx.remove(5));
    let hits = idx.search(&items[5].1, 10, None);
    assert!(hits.iter().all(|(t, _)| *t != 5));
    assert_eq!(idx.len(), 299);
    assert_eq!(idx.tombstones(), 1);
    // An update supersedes the old point.
    idx.upsert(&[(7, unit(999, 16))]).unwrap();
    assert_eq!(idx.search(&unit(999, 16), 1, None)[0].0, 7);
    assert_eq!(idx.vector(7).unwrap(), unit(999, 16));
    assert_eq!(idx.len(), 299);
    assert_eq!(idx.tombstones(), 2);
    // Last write wins within one call.
    idx.upsert(&[(8, unit(1, 16)), (8, unit(2, 16))]).unwrap();
    assert_eq!(idx.vector(8).unwrap(), unit(2, 16));
    assert_eq!(idx.tombstones(), 3);
    // Filters are exact.
    let even = |t: i64| t % 2 == 0;
    let hits = idx.search(&items[3].1, 10, Some(&even));
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|(t, _)| t % 2 == 0));
    let exact = idx.search_exact(&items[3].1, 10, Some(&even));
    assert!(exact.iter().all(|(t, _)| t % 2 == 0));
    // A vector of another dimension is refused.
    assert!(matches!(
        idx.upsert(&[(1, vec![1.0; 8])]),
        Err(VectorError::Dimension { got: 8, want: 16 })
    ));
}

fn both_scans_equal_exact_search(engine: Engine) {
    let mut idx = VectorIndex::new(engine, 24, HnswParams::default(), 2_000).unwrap();
    let items: Vec<(i64, Vec<f32>)> = (0..2_000).map(|i| (i, unit(i as u64, 24))).collect();
    idx.upsert(&items).unwrap();
    idx.remove(150);
    let q = unit(77_777, 24);
    // A small set (track by track, f32) and a wide one (int8 pass, rescored).
    for modulo in [50i64, 10] {
        let set: TrackSet = (0..2_000).filter(|t| t % modulo == 0).collect();
        let allow = |t: i64| t % modulo == 0;
        let want = ids(&idx.search_exact(&q, 10, Some(&allow)));
        let got = ids(&idx.scan(&q, 10, Some(&set)));
        assert_eq!(got, want, "every {modulo}th track");
        assert!(!got.contains(&150));
    }
}

fn save_and_load_round_trip(engine: Engine) {
    let dir = scratch("round-trip", engine);
    let mut idx = VectorIndex::new(engine, 8, HnswParams::default(), 10).unwrap();
    idx.save(&dir).unwrap();
    let empty = VectorIndex::load(&dir).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.engine(), engine);
    let items: Vec<(i64, Vec<f32>)> = (0..50).map(|i| (i * 3, unit(i as u64, 8))).collect();
    idx.upsert(&items).unwrap();
    idx.remove(3);
    idx.set_seq(42);
    idx.save(&dir).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["engine"], engine.name());
    let mut back = VectorIndex::load(&dir).unwrap();
    assert_eq!(back.engine(), engine);
    assert_eq!(back.seq(), 42);
    assert_eq!(back.len(), 49);
    assert_eq!(back.tombstones(), 1);
    assert!(!back.contains(3));
    assert_eq!(back.vector(6), idx.vector(6));
    assert_eq!(back.vector(6).unwrap(), items[2].1);
    assert_eq!(back.search(&items[10].1, 1, None)[0].0, 30);
    // The reloaded graph answers as the saved one did, and keeps growing.
    for (_, q) in items.iter().step_by(7) {
        assert_eq!(back.search(q, 5, None), idx.search(q, 5, None));
    }
    back.upsert(&[(1_000, unit(1_000, 8))]).unwrap();
    assert_eq!(back.search(&unit(1_000, 8), 1, None)[0].0, 1_000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `meta.json` written before engines were recorded names no engine: our graph's.
#[test]
fn an_older_meta_without_an_engine_is_our_graph() {
    let dir = scratch("older-meta", Engine::Graph);
    let mut idx = VectorIndex::new(Engine::Graph, 8, HnswParams::default(), 10).unwrap();
    let items: Vec<(i64, Vec<f32>)> = (0..20).map(|i| (i, unit(i as u64, 8))).collect();
    idx.upsert(&items).unwrap();
    idx.save(&dir).unwrap();
    let path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("engine");
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let back = VectorIndex::load(&dir).unwrap();
    assert_eq!(back.engine(), Engine::Graph);
    assert_eq!(back.len(), 20);
    let _ = std::fs::remove_dir_all(&dir);
}

fn bad_parameters_are_errors_not_exits(engine: Engine) {
    // hnsw_rs calls `process::exit` on m > 256: reaching this assertion at all is the test.
    for p in [
        HnswParams {
            m: 300,
            ..HnswParams::default()
        },
        HnswParams {
            m: 1,
            ..HnswParams::default()
        },
        HnswParams {
            ef_search: 0,
            ..HnswParams::default()
        },
    ] {
        assert!(matches!(
            VectorIndex::new(engine, 8, p, 10),
            Err(VectorError::Params(_))
        ));
    }
}

/// `search_allowed` picks its plan by the allowed set's size and always fills the answer
/// with allowed live tracks; an exact plan is the exact answer.
fn plans_fill_the_answer_and_keep_the_filter(engine: Engine) {
    let dim = 16;
    let mut idx = VectorIndex::new(engine, dim, HnswParams::default(), 3_000).unwrap();
    let items: Vec<(i64, Vec<f32>)> = (0..3_000).map(|i| (i, unit(i as u64, dim))).collect();
    idx.upsert(&items).unwrap();
    for t in (0..3_000).step_by(13) {
        idx.remove(t);
    }
    let q = unit(31_337, dim);
    let (all, plan) = idx.search_allowed(&q, 10, None, 100);
    assert_eq!((all.len(), plan), (10, Plan::Hnsw));
    let narrow: TrackSet = (0..3_000).filter(|t| t % 97 == 0).collect();
    let (got, plan) = idx.search_allowed(&q, 10, Some(&narrow), 100);
    assert_eq!(plan, Plan::Exact);
    let allow = |t: i64| t % 97 == 0;
    assert_eq!(ids(&got), ids(&idx.search_exact(&q, 10, Some(&allow))));
    let wide: TrackSet = (0..3_000).filter(|t| t % 3 == 0).collect();
    let (got, plan) = idx.search_allowed(&q, 10, Some(&wide), 100);
    assert_eq!(plan, Plan::FilteredHnsw);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(t, _)| t % 3 == 0 && t % 13 != 0));
    // A long answer is a scan, and exact.
    let (long, plan) = idx.search_allowed(&q, 300, Some(&wide), 100);
    assert_eq!(plan, Plan::Exact);
    let allow = |t: i64| t % 3 == 0;
    assert_eq!(ids(&long), ids(&idx.search_exact(&q, 300, Some(&allow))));
}

/// Recall@10 of the graph walk against exact search on clustered vectors (a blend of
/// two of 40 centres plus noise, as `bench-index` shapes its data).
fn recall_against_exact_search(engine: Engine) {
    let dim = 32;
    let centres: Vec<Vec<f32>> = (0..40).map(|i| unit(50_000 + i, dim)).collect();
    let point = |i: u64| {
        let (a, b) = (
            &centres[(i % 40) as usize],
            &centres[(i / 40 % 40) as usize],
        );
        let noise = unit(i, dim);
        let mut v: Vec<f32> = (0..dim)
            .map(|d| 0.6 * a[d] + 0.4 * b[d] + 0.3 * noise[d])
            .collect();
        embeddings::embedding::l2_normalise(&mut v);
        v
    };
    let mut idx = VectorIndex::new(engine, dim, HnswParams::default(), 5_000).unwrap();
    let items: Vec<(i64, Vec<f32>)> = (0..5_000).map(|i| (i as i64, point(i))).collect();
    for chunk in items.chunks(1_250) {
        idx.upsert(chunk).unwrap();
    }
    let mut hits = 0;
    for q in 0..100 {
        let query = point(1_000_000 + q);
        let want = ids(&idx.search_exact(&query, 10, None));
        let got = idx.search(&query, 10, None);
        assert_eq!(got.len(), 10);
        assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
        hits += got.iter().filter(|(t, _)| want.contains(t)).count();
    }
    assert!(hits >= 950, "{engine}: recall@10 {}", hits as f64 / 1000.0);
}

/// hnsw_rs's own `DistDot` asserts on a dot product above 1: a query a little longer
/// than a unit vector, or many copies of one vector, must answer, not panic. Our graph
/// must also answer with copies only; hnsw_rs is not held to that: its parallel insertion
/// builds a different graph each run, and over 200 exact copies of one vector about one
/// build in 16 (1 failing run of 16 in session 13) leaves a copy unreachable, so a farther
/// vector takes a place (our graph without its link rule for copies had the same weakness:
/// recall 0.941 on copies against 0.999 with it, docs/MEASUREMENTS.md).
fn queries_off_the_unit_sphere_do_not_panic(engine: Engine) {
    let dim = 16;
    let mut idx = VectorIndex::new(engine, dim, HnswParams::default(), 500).unwrap();
    let v = unit(7, dim);
    let mut items: Vec<(i64, Vec<f32>)> = (0..200).map(|i| (i, v.clone())).collect();
    items.extend((200..400).map(|i| (i, unit(i as u64, dim))));
    idx.upsert(&items).unwrap();
    for scale in [1.0f32, 1.001, 1.5, 0.5] {
        let q: Vec<f32> = v.iter().map(|x| x * scale).collect();
        let hits = idx.search(&q, 10, None);
        assert_eq!(hits.len(), 10, "scale {scale}");
        assert!(hits[0].0 < 200, "scale {scale}: the nearest is not a copy");
        if engine == Engine::Graph {
            assert!(hits.iter().all(|(t, _)| *t < 200), "scale {scale}");
        }
    }
}

/// A damaged or missing file fails the load with an error (the caller rebuilds), for
/// either engine's files: never a panic or an exit.
fn damaged_files_are_errors(engine: Engine) {
    let dir = scratch("damaged", engine);
    let mut idx = VectorIndex::new(engine, 8, HnswParams::default(), 100).unwrap();
    let items: Vec<(i64, Vec<f32>)> = (0..100).map(|i| (i, unit(i as u64, 8))).collect();
    idx.upsert(&items).unwrap();
    idx.save(&dir).unwrap();
    let mut engine_files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name != "meta.json" && name != "points.bin"
        })
        .collect();
    engine_files.sort();
    assert!(!engine_files.is_empty());
    for file in &engine_files {
        let good = std::fs::read(file).unwrap();
        // Cut short: an error.
        std::fs::write(file, &good[..good.len() / 3]).unwrap();
        let loaded = VectorIndex::load(&dir);
        assert!(
            matches!(loaded, Err(VectorError::Files { .. })),
            "{} cut short",
            file.display()
        );
        // One byte changed in the middle: an error for hnsw_rs (its files are hashed,
        // its loader would panic or exit); our graph checks counts and links but not
        // vector bytes, so it may load, but never panics.
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x5a;
        std::fs::write(file, &bad).unwrap();
        match (engine, VectorIndex::load(&dir)) {
            (_, Err(VectorError::Files { .. })) => {}
            (Engine::Graph, Ok(loaded)) => assert_eq!(loaded.len(), 100),
            (_, other) => panic!("{}: {:?}", file.display(), other.map(|i| i.len())),
        }
        std::fs::remove_file(file).unwrap();
        assert!(
            VectorIndex::load(&dir).is_err(),
            "{} missing",
            file.display()
        );
        std::fs::write(file, &good).unwrap();
        assert_eq!(VectorIndex::load(&dir).unwrap().len(), 100);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn int8_dot_matches_a_wide_sum_at_the_extremes() {
    for dim in [1usize, 15, 16, 75, 128] {
        let row: Vec<i8> = (0..dim)
            .map(|i| if i % 3 == 0 { -127 } else { 127 })
            .collect();
        let q: Vec<i16> = (0..dim)
            .map(|i| if i % 2 == 0 { 127 } else { -127 })
            .collect();
        let wide: i64 = row
            .iter()
            .zip(&q)
            .map(|(&a, &b)| i64::from(a) * i64::from(b))
            .sum();
        assert_eq!(i64::from(dot_i8(&row, &q)), wide);
        let v = unit(dim as u64, dim);
        let codes: Vec<i8> = quantise(&v).collect();
        let qv: Vec<i16> = quantise(&v).map(i16::from).collect();
        // A unit vector's code dotted with itself is about 127^2.
        let self_dot = f64::from(dot_i8(&codes, &qv)) / (127.0 * 127.0);
        assert!((self_dot - 1.0).abs() < 0.05, "{dim}: {self_dot}");
    }
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    /// Upsert these tracks (ids 0..60) with vectors drawn from seeds (0..40: repeats make
    /// identical vectors, as copies of one recording do).
    Upsert(Vec<(i64, u64)>),
    Remove(i64),
    /// Query seed, k, and a filter keeping tracks `t % modulo == rest` (modulo 1: all).
    Search(u64, usize, i64, i64),
    SaveAndLoad,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop::collection::vec((0i64..60, 0u64..40), 1..25).prop_map(Op::Upsert),
        1 => (0i64..60).prop_map(Op::Remove),
        3 => (0u64..1_000, 1usize..15, 1i64..5, 0i64..5)
            .prop_map(|(q, k, m, r)| Op::Search(q, k, m, r % m)),
        1 => Just(Op::SaveAndLoad),
    ]
}

/// Checks one search of `idx` against the model (track -> vector) of what is live.
fn check_search(
    idx: &VectorIndex,
    model: &HashMap<i64, Vec<f32>>,
    q: &[f32],
    k: usize,
    m: i64,
    r: i64,
) {
    let passes = |t: i64| t % m == r;
    let allowed: TrackSet = model.keys().copied().filter(|&t| passes(t)).collect();
    let mut truth: Vec<(i64, f32)> = model
        .iter()
        .filter(|(t, _)| passes(**t))
        .map(|(t, v)| (*t, dot::dot(v, q)))
        .collect();
    truth.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    truth.truncate(k);
    assert_eq!(ids(&idx.search_exact(q, k, Some(&passes))), ids(&truth));
    let everything = (m == 1).then(|| idx.search_allowed(q, k, None, 0));
    for exact_max in [0, usize::MAX] {
        let (got, plan) = idx.search_allowed(q, k, Some(&allowed), exact_max);
        // Always full (fallbacks widen, then scan), only allowed live tracks, each once,
        // best first, scored as the model scores them.
        assert_eq!(got.len(), truth.len(), "{plan:?}");
        let mut seen = std::collections::HashSet::new();
        for (t, score) in &got {
            assert!(passes(*t) && seen.insert(*t), "{plan:?}: {t}");
            let want = dot::dot(&model[t], q);
            assert!((score - want).abs() < 1e-4, "{plan:?}: {score} vs {want}");
        }
        assert!(got.windows(2).all(|w| w[0].1 >= w[1].1 - 1e-6), "{plan:?}");
        if plan == Plan::Exact {
            let scores = |v: &[(i64, f32)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
            // Ties (identical vectors) may order differently: compare scores.
            let (a, b) = (scores(&got), scores(&truth));
            assert!(
                a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4),
                "{a:?} {b:?}"
            );
        }
    }
    if let Some((got, plan)) = everything {
        assert_eq!(got.len(), truth.len(), "unfiltered {plan:?}");
        assert!(got.iter().all(|(t, _)| model.contains_key(t)));
    }
}

/// Random sequences of upserts (with repeated tracks and identical vectors), take-downs,
/// searches and reloads keep every invariant the index promises, on either engine.
fn operations_keep_the_invariants(engine: Engine) {
    let dim = 8;
    let dir = scratch("property", engine);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..30), |ops| {
        let mut idx = VectorIndex::new(engine, dim, HnswParams::default(), 0).unwrap();
        let mut model: HashMap<i64, Vec<f32>> = HashMap::new();
        for op in ops {
            match op {
                Op::Upsert(batch) => {
                    let items: Vec<(i64, Vec<f32>)> =
                        batch.iter().map(|&(t, s)| (t, unit(s, dim))).collect();
                    idx.upsert(&items).unwrap();
                    for (t, v) in items {
                        model.insert(t, v);
                    }
                }
                Op::Remove(t) => {
                    prop_assert_eq!(idx.remove(t), model.remove(&t).is_some());
                }
                Op::Search(q, k, m, r) => {
                    check_search(&idx, &model, &unit(10_000 + q, dim), k, m, r)
                }
                Op::SaveAndLoad => {
                    idx.set_seq(idx.seq() + 1);
                    idx.save(&dir).unwrap();
                    let back = VectorIndex::load(&dir).unwrap();
                    prop_assert_eq!(back.engine(), engine);
                    prop_assert_eq!(back.seq(), idx.seq());
                    prop_assert_eq!(back.tombstones(), idx.tombstones());
                    idx = back;
                }
            }
            prop_assert_eq!(idx.len(), model.len());
            for (t, v) in &model {
                prop_assert_eq!(idx.vector(*t), Some(v.clone()));
            }
            let mut live: Vec<i64> = idx.track_ids().collect();
            live.sort_unstable();
            let mut want: Vec<i64> = model.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(live, want);
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        panic!("{engine}: {e}");
    }
}
