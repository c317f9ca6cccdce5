//! The server under a hostile client (issue 12), over real HTTP against the real binary
//! on SQLite and on Postgres:
//! - each reproduction of the hardening issue as a regression test (huge and overflowing
//!   cursors, oversized and over-long bodies, copies of one recording flooding "more like
//!   this", parallel uploads of the same bytes, clips beyond the limits, the ingest
//!   status without a token, a 1e38 vector, long query strings, two `audio` parts,
//!   leftover upload files, a trickled body, a run killed -9);
//! - parallel uploads while `/v1/health` is polled: every upload succeeds or gets 503
//!   with `Retry-After`, health answers 200 throughout;
//! - property-based requests over every route of the OpenAPI document (random and
//!   extreme parameters, bodies and cursors): the server answers 2xx/4xx (or 503 with
//!   `Retry-After`) with the JSON error shape, stays up and stays under a memory ceiling.
//!
//! `MOTIF_ABUSE_CASES` (default 150 per backend) and `MOTIF_ABUSE_UPLOADS` (default 20)
//! size the run; docs/SECURITY.md gives the longer one.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

const TOKEN: &str = "abuse-token-456";

/// The server's resident memory may not pass this during the property run.
const RSS_CEILING_MB: u64 = 1_500;

struct Setup {
    place: Place,
    url: String,
    server: Server,
    music: std::path::PathBuf,
}

impl Setup {
    fn server_backend(&self) -> &'static str {
        if self.url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

/// Sixteen fixture songs (Ogg and MP3 encodes of eight songs: sixteen recordings),
/// indexed by `motif index`, served from another data folder with a short body timeout
/// and one clip analysis at a time.
fn setup(backend: &str) -> Setup {
    let mut place = Place::new(&format!("abuse-{backend}"));
    let url = place.database(backend);
    let music = place.dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    for e in std::fs::read_dir(repo().join("fixtures/audio")).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if p.is_file() && (ext == "ogg" || ext == "mp3") {
            std::fs::copy(&p, music.join(p.file_name().unwrap())).unwrap();
        }
    }
    index_ok(&music, &url, &place.dir.join("indexer"), &place.dir, &[]);
    let server = start_server(&place, &url, &music);
    Setup {
        place,
        url,
        server,
        music,
    }
}

fn start_server(place: &Place, url: &str, music: &std::path::Path) -> Server {
    let limits = [
        "--body-timeout-s",
        "3",
        "--clip-workers",
        "1",
        "--clip-queue",
        "1",
    ];
    let data_dir = place.dir.join("server");
    Server::serve(&place.dir, url, &data_dir, TOKEN, music, &limits)
}

fn auth() -> String {
    format!("Bearer {TOKEN}")
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn expect(got: (u16, Value), status: u16, want: &str) -> Value {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(code(&got.1), want, "{}", got.1);
    got.1
}

fn alive(s: &Server) {
    let (st, h) = s.get("/v1/health");
    assert_eq!(st, 200, "the server must still answer: {h}");
}

fn active_ids(s: &Server) -> Vec<i64> {
    let (st, v) = s.get("/v1/search?q=&limit=500&facets=false&copies=all");
    assert_eq!(st, 200, "{v}");
    ids(&v, "results")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("fixtures/audio").join(name)).unwrap()
}

/// Files directly in `dir` (none when it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A 16-bit WAV of `seconds` of a quiet 440 Hz tone.
fn wav(rate: u32, channels: u16, seconds: f64) -> Vec<u8> {
    let frames = (rate as f64 * seconds) as u32;
    let data = frames * channels as u32 * 2;
    let mut b = Vec::with_capacity(44 + data as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
    b.extend_from_slice(&(channels * 2).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for i in 0..frames {
        let x = ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 3000.0) as i16;
        for _ in 0..channels {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    b
}

/// Reproductions 1, 2 and 7 and the smaller findings: bounded cursors, bodies and lists,
/// the ingest status behind the token, extreme vectors, long query strings.
fn bounded_requests(s: &Server) {
    let ids = active_ids(s);
    assert!(ids.len() >= 12, "{ids:?}");
    let id = ids[0];
    // 1. Cursors: a huge offset, one near u64::MAX, garbage; every route that pages.
    for cursor in [
        "o100000000000000",
        "o18446744073709551615",
        "o99999999999999999999999",
    ] {
        let (st, v) = s.get(&format!("/v1/tracks/{id}/similar?cursor={cursor}"));
        assert_eq!(st, 400, "{v}");
        assert!(["cursor_too_deep", "bad_cursor"].contains(&code(&v)), "{v}");
        let (st, v) = s.get(&format!("/v1/search?q=&cursor={cursor}"));
        assert_eq!(st, 400, "{v}");
        let (st, v) = s.get(&format!("/v1/tags/tempo:moderate/tracks?cursor={cursor}"));
        assert_eq!(st, 400, "{v}");
        let (st, v) = s.post_json("/v1/similar", &json!({"seeds": [id], "cursor": cursor}));
        assert_eq!(st, 400, "{v}");
        let (st, v) = s.post_json("/v1/search/hybrid", &json!({"q": "song", "cursor": cursor}));
        assert_eq!(st, 400, "{v}");
    }
    expect(
        s.get(&format!("/v1/tracks/{id}/similar?cursor=o10001")),
        400,
        "cursor_too_deep",
    );
    // The deepest page allowed answers, and never hands out a cursor pointing backwards
    // or past the bound.
    for path in [
        format!("/v1/tracks/{id}/similar?cursor=o9999&limit=500"),
        "/v1/search?q=&cursor=o9999&limit=500".to_string(),
        "/v1/search?q=&cursor=o0&limit=5".to_string(),
    ] {
        let (st, v) = s.get(&path);
        assert_eq!(st, 200, "{path}: {v}");
        if let Some(c) = v["next_cursor"].as_str() {
            let next: usize = c[1..].parse().unwrap();
            assert!(next <= 10_000 && next > 0, "{path}: {c}");
        }
    }
    // 2. Bodies: JSON routes take 1 MiB (refused from Content-Length, before reading);
    // long lists get a clear 400.
    let seeds: Vec<i64> = std::iter::repeat_n(id, 700_000).collect();
    let big = json!({ "seeds": seeds }).to_string();
    assert!(big.len() > 1 << 20);
    for route in ["/v1/similar", "/v1/playlists", "/v1/search/hybrid"] {
        let json_type = [("content-type", "application/json")];
        let (st, v) = s.send("POST", route, &json_type, big.as_bytes());
        assert_eq!((st, code(&v)), (413, "too_large"), "{route}: {v}");
    }
    let many: Vec<i64> = std::iter::repeat_n(id, 101).collect();
    expect(
        s.post_json("/v1/similar", &json!({ "seeds": many })),
        400,
        "too_many",
    );
    expect(
        s.post_json("/v1/playlists", &json!({ "seeds": many })),
        400,
        "too_many",
    );
    expect(
        s.post_json("/v1/search/hybrid", &json!({ "like": many })),
        400,
        "too_many",
    );
    let artists: Vec<String> = (0..1_001).map(|i| format!("artist {i}")).collect();
    let v = expect(
        s.post_json(
            "/v1/similar",
            &json!({ "seeds": [id], "filters": { "exclude_artists": artists } }),
        ),
        400,
        "too_many",
    );
    assert_eq!(v["error"]["details"]["max"], 1000, "{v}");
    let tags: Vec<String> = (0..101).map(|i| format!("tempo:t{i}")).collect();
    expect(
        s.post_json(
            "/v1/similar",
            &json!({ "seeds": [id], "filters": { "tags": tags } }),
        ),
        400,
        "too_many",
    );
    // Repeated seeds are fine (and cheap).
    let (st, v) = s.post_json("/v1/similar", &json!({ "seeds": [id, id, id] }));
    assert_eq!(st, 200, "{v}");
    // 7. The ingest status needs the token, and says nothing of server paths without it.
    for path in ["/v1/ingest/1", "/v1/ingest/999999"] {
        let (st, v) = s.get(path);
        assert_eq!(st, 401, "{v}");
        assert!(
            !v.to_string().contains('/') || !v.to_string().contains("motif-e2e"),
            "{v}"
        );
    }
    let (st, v) = s.send(
        "GET",
        "/v1/ingest/999999",
        &[("authorization", &auth())],
        b"",
    );
    assert_eq!((st, code(&v)), (404, "unknown_run"), "{v}");
    // A 1e38 vector is a direction like any other; non-finite values are refused.
    let dim = embeddings::embedding::EMBEDDING_DIM;
    let mut huge = vec![0.0f64; dim];
    huge[0] = 1e38;
    huge[5] = -3e38;
    let (st, v) = s.post_json("/v1/similar", &json!({ "vector": huge }));
    assert_eq!(st, 200, "{v}");
    assert!(!ids_of(&v).is_empty(), "{v}");
    let tiny: Vec<f64> = (0..dim).map(|i| if i == 3 { 1e-38 } else { 0.0 }).collect();
    let (st, v) = s.post_json("/v1/similar", &json!({ "vector": tiny }));
    assert_eq!(st, 200, "{v}");
    expect(
        s.post_json("/v1/similar", &json!({ "vector": vec![0.0; dim] })),
        400,
        "bad_vector",
    );
    // Long query strings: our JSON 414 up to what the HTTP layer reads; past that the
    // HTTP layer answers on its own, and the server stays up.
    let long = "a".repeat(20_000);
    let (st, v) = s.get(&format!("/v1/search?q={long}"));
    assert_eq!((st, code(&v)), (414, "query_too_long"), "{v}");
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "GET /v1/search?q={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "b".repeat(100_000)
    );
    let _ = c.write_all(head.as_bytes());
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(raw.is_empty() || text.starts_with("HTTP/1.1 4"), "{text}");
    alive(s);
}

/// Reproductions 5 and 6, two `audio` parts, and nothing left behind by rejected clips
/// or uploads.
fn clips_and_uploads(st: &Setup) {
    let s = &st.server;
    let uploads = st.place.dir.join("server/uploads");
    let before: HashSet<String> = files_in(&uploads).into_iter().collect();
    // A clip beyond the rate x channels bound: refused before decoding.
    let six = std::fs::read(repo().join("fixtures/audio/formats/pop_a_major_120.s16.96k.6ch.wav"))
        .unwrap();
    let (ct, body) = multipart(&[("audio", Some("six.wav"), &six)]);
    let (code_, v) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!((code_, code(&v)), (415, "unsupported_format"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("samples a second"),
        "{v}"
    );
    // Longer than the clip limit (120 s by default).
    let long = wav(8_000, 1, 125.0);
    let (ct, body) = multipart(&[("audio", Some("long.wav"), &long)]);
    let (code_, v) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!((code_, code(&v)), (413, "too_long"), "{v}");
    // Over the clip size limit: refused from Content-Length.
    let r = request(
        &s.addr,
        "POST",
        "/v1/similar",
        &[("content-type", "multipart/form-data; boundary=x")],
        &vec![b'x'; (32 << 20) + 1],
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // Two audio parts: refused, not "the last one wins".
    let clip = fixture("funk_e_minor_100.ogg");
    let (ct, body) = multipart(&[
        ("audio", Some("a.ogg"), &clip),
        ("audio", Some("b.ogg"), &clip),
    ]);
    expect(
        s.send("POST", "/v1/similar", &[("content-type", &ct)], &body),
        400,
        "duplicate_field",
    );
    // Clip concurrency: one analysis at a time, one waiting; the rest get 503 at once.
    let addr = s.addr.clone();
    let (ct, body) = multipart(&[("audio", Some("funk.ogg"), &clip)]);
    let answers: Vec<(u16, String)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let (addr, ct, body) = (addr.clone(), ct.clone(), body.clone());
                sc.spawn(move || {
                    let r = request(
                        &addr,
                        "POST",
                        "/v1/similar",
                        &[("content-type", &ct)],
                        &body,
                    );
                    (r.status, r.headers.to_ascii_lowercase())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, headers) in &answers {
        assert!(
            *status == 200 || (*status == 503 && headers.contains("retry-after:")),
            "{status} {headers}"
        );
    }
    assert!(answers.iter().any(|a| a.0 == 200), "{answers:?}");
    assert!(
        answers.iter().any(|a| a.0 == 503),
        "six clips at once with one worker and a queue of one: {answers:?}"
    );
    // A rejected upload leaves no file; clip files never outlive their request.
    let junk = std::fs::read(repo().join("fixtures/bad/truncated.mp3")).unwrap();
    let rejected: [(&str, &[u8], &[u8]); 2] = [
        (
            "junk.mp3",
            &junk,
            br#"{"external_id": "junk-1", "title": "Junk"}"#,
        ),
        (
            "ok.ogg",
            &clip,
            br#"{"external_id": "bad-meta", "isrc": "not an isrc"}"#,
        ),
    ];
    for (name, audio, meta) in rejected {
        let (ct, body) = multipart(&[("audio", Some(name), audio), ("metadata", None, meta)]);
        let headers = [("content-type", ct.as_str()), ("authorization", &auth())];
        let (code_, v) = s.send("POST", "/v1/tracks", &headers, &body);
        assert!((400..500).contains(&code_), "{name}: {v}");
    }
    let after: HashSet<String> = files_in(&uploads).into_iter().collect();
    assert_eq!(after, before, "rejected uploads left files");
    assert!(
        files_in(&uploads.join("clips")).is_empty(),
        "clip files left behind"
    );
}

/// Reproductions 3, 4 and 5: `n` parallel uploads of one clip's identical bytes under new
/// ids while `/v1/health` is polled; then every track's "more like this" is full.
fn parallel_uploads_then_duplicate_flood(st: &Setup, n: usize) {
    let s = &st.server;
    let clip = fixture("ballad_eflat_major_76.ogg");
    // The baseline: health polled the same way on an idle server.
    let idle = (0..50)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(request(&s.addr, "GET", "/v1/health", &[], b"").status, 200);
            std::thread::sleep(Duration::from_millis(5));
            t.elapsed() - Duration::from_millis(5)
        })
        .max()
        .unwrap_or_default();
    let stop = Arc::new(AtomicBool::new(false));
    let health: Arc<Mutex<Vec<(u16, Duration)>>> = Arc::default();
    let poller = {
        let (stop, health, addr) = (stop.clone(), health.clone(), s.addr.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = request(&addr, "GET", "/v1/health", &[], b"");
                health.lock().unwrap().push((r.status, t.elapsed()));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let answers: Vec<(u16, String, Value)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (addr, clip) = (s.addr.clone(), clip.clone());
                sc.spawn(move || {
                    let meta = json!({"external_id": format!("copy-{i}"), "title": format!("Copy {i}"), "artists": [format!("Copier {i}")]}).to_string();
                    let (ct, body) = multipart(&[("audio", Some("copy.ogg"), &clip), ("metadata", None, meta.as_bytes())]);
                    let r = request(&addr, "POST", "/v1/tracks", &[("content-type", &ct), ("authorization", &auth())], &body);
                    (r.status, r.headers.to_ascii_lowercase(), r.json())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let created = answers.iter().filter(|a| a.0 == 201).count();
    for (status, headers, v) in &answers {
        assert!(
            *status == 201
                || (*status == 503 && headers.contains("retry-after:") && code(v) == "busy"),
            "{status}: {v}"
        );
    }
    assert!(created >= 1, "no upload went through");
    let polls = health.lock().unwrap().clone();
    assert!(
        polls.iter().all(|p| p.0 == 200),
        "health failed during uploads: {polls:?}"
    );
    let worst = polls.iter().map(|p| p.1).max().unwrap_or_default();
    eprintln!(
        "{} {n} parallel uploads: {created} created, {} shed with 503; health polled {} times, slowest {:.1} ms (idle server: slowest of 50 {:.1} ms, ratio {:.1})",
        st.server_backend(),
        n - created,
        polls.len(),
        worst.as_secs_f64() * 1e3,
        idle.as_secs_f64() * 1e3,
        worst.as_secs_f64() / idle.as_secs_f64().max(1e-6)
    );
    // Every track's "more like this" is full: the copies neither trap the walk nor make
    // a short answer pass for "no more tracks".
    // The copies share the recording of the fixture they were cut from, and each fixture
    // song's encodes are one recording: every track has the other recordings to be like.
    let ids = active_ids(s);
    let (st, one) = s.get("/v1/search?q=&limit=500&facets=false");
    assert_eq!(st, 200, "{one}");
    let recordings = ids_of(&one).len();
    assert!(recordings >= 7, "{recordings} recordings: {one}");
    let want = (recordings - 1).min(10);
    for id in &ids {
        let (st, v) = s.get(&format!("/v1/tracks/{id}/similar?limit=10"));
        assert_eq!(st, 200, "{v}");
        let got = ids_of(&v);
        assert_eq!(got.len(), want, "track {id}: {v}");
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len(), "{v}");
    }
}

fn ids_of(v: &Value) -> Vec<i64> {
    ids(v, "results")
}

/// A body trickled byte by byte is cut off at the body deadline (3 s here) with a JSON
/// 408, and the server answers others meanwhile.
fn slow_client(s: &Server) {
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = br#"{"q": "song", "limit": 5}"#;
    write!(
        c,
        "POST /v1/search/hybrid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len() + 1000
    )
    .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(8) {
        if c.write_all(&body[sent % body.len()..sent % body.len() + 1])
            .is_err()
        {
            break;
        }
        sent += 1;
        alive(s);
        std::thread::sleep(Duration::from_millis(400));
    }
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    alive(s);
}

/// A run killed -9 mid-way reads `interrupted` once a server starts again.
fn killed_run_reads_interrupted(mut st: Setup) {
    let manifest: String = files_in(&st.music)
        .iter()
        .map(|f| {
            json!({"op": "upsert", "external_id": format!("again-{f}"), "path": f, "title": f})
                .to_string()
                + "\n"
        })
        .collect();
    // An ingest the property run started may still be going: wait for our turn.
    let mut answer = (0, Value::Null);
    eventually(Duration::from_secs(120), || {
        answer = st.server.send(
            "POST",
            "/v1/ingest",
            &[
                ("content-type", "application/x-ndjson"),
                ("authorization", &auth()),
            ],
            manifest.as_bytes(),
        );
        answer.0 != 409
    });
    let (code_, v) = answer;
    assert_eq!(code_, 202, "{v}");
    let run = v["run"].as_i64().unwrap();
    // kill -9 while the run is going.
    st.server.child.kill().unwrap();
    let _ = st.server.child.wait();
    st.server = start_server(&st.place, &st.url, &st.music);
    let (code_, v) = st.server.send(
        "GET",
        &format!("/v1/ingest/{run}"),
        &[("authorization", &auth())],
        b"",
    );
    assert_eq!(code_, 200, "{v}");
    let status = v["run"]["status"].as_str().unwrap_or("");
    // A fast run may have finished before the kill; it must never read `running`.
    assert!(["interrupted", "finished"].contains(&status), "{v}");
    assert_ne!(status, "running", "{v}");
}

/// Property-based requests over every route of the OpenAPI document.
/// `private` is a server path no anonymous answer may contain.
fn fuzz_routes(s: &Server, cases: u32, private: &str) {
    let (st, doc) = s.get("/v1/openapi.json");
    assert_eq!(st, 200);
    let mut routes: Vec<(String, String, Vec<String>, bool)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<String> = op["parameters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|p| p["in"] == "query")
                        .filter_map(|p| p["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let body = op.get("requestBody").is_some();
            routes.push((method.to_uppercase(), path.clone(), params, body));
        }
    }
    assert!(routes.len() >= 16, "{routes:?}");
    let ids = active_ids(s);
    let pid = s.child.id();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = (
        0..routes.len(),
        prop::collection::vec((0usize..64, extreme_text()), 0..6),
        extreme_json(),
        any::<bool>(),
        prop::sample::select(ids.clone()),
    );
    let statuses: Mutex<std::collections::BTreeMap<u16, usize>> = Mutex::default();
    runner
        .run(&strategy, |(r, params, body, with_token, known)| {
            let (method, path, names, has_body) = &routes[r];
            let path = fill_path(path, known, &params);
            let mut query = String::new();
            for (i, (n, v)) in params.iter().enumerate() {
                let name = names
                    .get(*n % names.len().max(1))
                    .cloned()
                    .unwrap_or_else(|| "x".into());
                let name = name.replace("<attribute>", "tempo_bpm");
                query.push(if i == 0 { '?' } else { '&' });
                query.push_str(&format!("{}={}", enc(&name), enc(v)));
            }
            let body_bytes = if *has_body {
                body.to_string().into_bytes()
            } else {
                Vec::new()
            };
            let mut headers = vec![("content-type", "application/json".to_string())];
            if with_token {
                headers.push(("authorization", auth()));
            }
            let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let target = format!("{path}{query}");
            let resp = request(&s.addr, method, &target, &hs, &body_bytes);
            *statuses.lock().unwrap().entry(resp.status).or_default() += 1;
            let ok_status = (200..300).contains(&resp.status)
                || (400..500).contains(&resp.status)
                || (resp.status == 503
                    && resp.headers.to_ascii_lowercase().contains("retry-after:"));
            prop_assert!(
                ok_status,
                "{method} {target} -> {} {}",
                resp.status,
                resp.text()
            );
            if resp.status >= 400 {
                let v = resp.json();
                prop_assert!(
                    v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                    "{method} {target} -> {} without the JSON error shape: {}",
                    resp.status,
                    resp.text()
                );
            }
            if !with_token {
                prop_assert!(
                    !resp.text().contains(private),
                    "{method} {target} told an anonymous caller a server path: {}",
                    resp.text()
                );
            }
            let (hs_, _) = s.get("/v1/health");
            prop_assert_eq!(
                hs_,
                200,
                "the server stopped answering after {} {}",
                method,
                target
            );
            let rss = proc_rss_mb(pid);
            prop_assert!(
                rss < RSS_CEILING_MB,
                "RSS {} MB after {} {}",
                rss,
                method,
                target
            );
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{cases} fuzzed requests; statuses {:?}; server RSS {} MB",
        statuses.lock().unwrap(),
        proc_rss_mb(pid)
    );
}

fn proc_rss_mb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

fn fill_path(pattern: &str, known: i64, params: &[(usize, String)]) -> String {
    let pick = params.first().map_or(0, |p| p.0);
    let id = match pick % 5 {
        0 | 1 => known.to_string(),
        2 => "-1".to_string(),
        3 => "9223372036854775807".to_string(),
        _ => params.first().map_or("0".into(), |p| enc(&p.1)),
    };
    pattern.replace("{id}", &id).replace("{run}", &id).replace(
        "{tag}",
        if pick.is_multiple_of(2) {
            "tempo:moderate"
        } else {
            "no:such%20tag"
        },
    )
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Parameter values a hostile client tries: extreme numbers, cursors, long and odd text.
fn extreme_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "-1",
            "1",
            "500",
            "501",
            "1e308",
            "-1e308",
            "NaN",
            "inf",
            "1e38",
            "18446744073709551615",
            "9223372036854775808",
            "o0",
            "o10000",
            "o10001",
            "o100000000000000",
            "o18446744073709551615",
            "o-1",
            "true",
            "false",
            "tempo:moderate",
            "energy:high",
            "nope:nope",
            "C",
            "F#",
            "8A",
            "13C",
            "major",
            "minor",
            "active",
            "taken_down",
            "bpm:80-100",
            "\"unclosed",
            "tag:",
            "key:",
            "artist:\"a b\"",
            "*",
            "(",
            ")",
            "AND OR",
            "%",
            "\u{0}",
            "é",
            "🎵",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,64}",
        "\\PC{0,32}",
        (1usize..4096).prop_map(|n| "x".repeat(n)),
        any::<f64>().prop_map(|x| x.to_string()),
        any::<i64>().prop_map(|x| x.to_string()),
    ]
}

/// JSON bodies: objects over the fields the routes read, with extreme values.
fn extreme_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            0.0, -1.0, 1e38, -1e38, 1e-38, 5e-324, 1.7e308, 0.5, 10.0, 86_400.0, 86_401.0
        ])
        .prop_map(Value::from),
        extreme_text().prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            (1usize..800).prop_map(|n| Value::from(vec![Value::from(0.1); n])),
            prop::collection::btree_map(field_name(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        prop::collection::btree_map(field_name(), value.clone(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        value,
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "seeds",
        "vector",
        "filters",
        "limit",
        "cursor",
        "max_per_artist",
        "q",
        "like",
        "fusion",
        "weights",
        "explain",
        "text",
        "size",
        "duration_s",
        "tolerance_s",
        "artist_gap",
        "order",
        "seed",
        "targets",
        "tags",
        "tags_any",
        "tags_none",
        "ranges",
        "key",
        "mode",
        "camelot",
        "status",
        "exclude_artists",
        "id",
        "weight",
        "min",
        "max",
        "energy",
        "tempo_bpm",
        "op",
        "external_id",
        "path",
        "unknown",
    ])
    .prop_map(str::to_string)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hostile_client(backend: &str) {
    let st = setup(backend);
    bounded_requests(&st.server);
    clips_and_uploads(&st);
    slow_client(&st.server);
    parallel_uploads_then_duplicate_flood(&st, env_or("MOTIF_ABUSE_UPLOADS", 20));
    let private = st.place.dir.display().to_string();
    fuzz_routes(
        &st.server,
        env_or("MOTIF_ABUSE_CASES", 150) as u32,
        &private,
    );
    alive(&st.server);
    killed_run_reads_interrupted(st);
}

#[test]
fn hostile_client_sqlite() {
    hostile_client("sqlite");
}

#[test]
fn hostile_client_postgres() {
    hostile_client("postgres");
}
