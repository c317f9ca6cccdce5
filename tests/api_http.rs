//! The query API end to end: the real `motif` binary indexes the fixtures into real
//! Postgres or SQLite, `motif serve` answers over real HTTP, and every endpoint is
//! exercised with its validation errors, a takedown, an upload found as its own nearest
//! neighbour, duplicate collapsing, ingestion over HTTP, and freshness: changes made by
//! `motif index` in another process show in the running server within 5 seconds.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "test-token-123";

struct Setup {
    place: Place,
    url: String,
    server: Server,
}

/// Five artists in rotation, so artist rules have something to bite on.
const ARTISTS: [&str; 5] = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"];

/// The external id the catalogue manifest gives a fixture file.
fn fx_id(file: &str) -> String {
    format!("fx-{}", file.replace(['.', '/'], "-"))
}

/// Copies the 40 fixture songs into `music/` with a catalogue manifest (titles, artists,
/// genre from the file name), indexes it with `motif index`, then serves the same store
/// from another data folder (as a replica would).
fn setup(backend: &str) -> Setup {
    let mut place = Place::new(&format!("api-{backend}"));
    let url = place.database(backend);
    let music = place.dir.join("music");
    let mut files: Vec<String> = Vec::new();
    for sub in ["", "formats"] {
        let from = repo().join("fixtures/audio").join(sub);
        std::fs::create_dir_all(music.join(sub)).unwrap();
        for e in std::fs::read_dir(&from).unwrap().map(Result::unwrap) {
            if e.path().is_file() {
                let rel = if sub.is_empty() {
                    e.file_name().to_string_lossy().into_owned()
                } else {
                    format!("{sub}/{}", e.file_name().to_string_lossy())
                };
                std::fs::copy(e.path(), music.join(&rel)).unwrap();
                files.push(rel);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 40);
    let mut manifest = String::new();
    for (i, f) in files.iter().enumerate() {
        let stem = f.rsplit('/').next().unwrap();
        let genre = stem.split('_').next().unwrap();
        manifest.push_str(&json!({"op": "upsert", "external_id": fx_id(f), "path": f, "title": format!("{genre} song {i}"), "artists": [ARTISTS[i % 5]], "genre": genre}).to_string());
        manifest.push('\n');
    }
    std::fs::write(music.join("catalog.jsonl"), manifest).unwrap();
    let catalog = music.join("catalog.jsonl");
    index_ok(
        &catalog,
        &url,
        &place.dir.join("indexer"),
        &place.dir,
        &["--json"],
    );
    let server = Server::serve(
        &place.dir,
        &url,
        &place.dir.join("server"),
        TOKEN,
        &music,
        &[],
    );
    Setup { place, url, server }
}

/// `DELETE /v1/tracks/{id}` with the write token.
fn take_down(s: &Server, id: i64) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    s.send(
        "DELETE",
        &format!("/v1/tracks/{id}"),
        &[("authorization", &auth)],
        b"",
    )
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn check_error(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(error_code(&got.1), code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

fn tempo(hit: &Value) -> f64 {
    hit["attributes"]["tempo_bpm"].as_f64().unwrap()
}

fn api_end_to_end(backend: &str) {
    let Setup {
        place,
        url,
        server: s,
    } = setup(backend);

    // Health and counts.
    let (st, h) = s.get("/v1/health");
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["indexed"]["vectors"], 40, "{h}");
    assert_eq!(h["lag"], 0, "{h}");

    // Tags with counts per facet.
    let (st, tags) = s.get("/v1/tags");
    assert_eq!(st, 200);
    let tempo_tags = tags["facets"]["tempo"].as_array().expect("a tempo facet");
    let busiest = tempo_tags[0]["tag"].as_str().unwrap().to_string();
    let busiest_n = tempo_tags[0]["count"].as_u64().unwrap();
    assert!(busiest_n > 0 && busiest.starts_with("tempo:"));
    let (st, tt) = s.get(&format!("/v1/tags/{busiest}/tracks?limit=100"));
    assert_eq!(st, 200, "{tt}");
    assert_eq!(tt["total"].as_u64(), Some(busiest_n));
    assert!(tt["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["tags"].as_array().unwrap().contains(&json!(busiest))));
    check_error(
        s.get("/v1/tags/mood:nonexistent/tracks"),
        404,
        "unknown_tag",
    );

    // A track's detail view.
    let (_, all) = s.get("/v1/search?limit=100&facets=false");
    assert_eq!(all["total"], 40, "{all}");
    let all_ids = ids(&all, "results");
    let seed = all_ids[0];
    let (st, t) = s.get(&format!("/v1/tracks/{seed}"));
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["status"], "active");
    assert!(t["attributes"]["tempo_bpm"].as_f64().unwrap() > 30.0);
    let tag0 = &t["tags"][0];
    assert!(
        tag0["score"].as_f64().is_some() && tag0["source"].as_str().is_some(),
        "{t}"
    );
    check_error(s.get("/v1/tracks/987654"), 404, "unknown_track");
    check_error(s.get("/v1/tracks/abc"), 400, "bad_id");
    assert!(t.get("beats").is_none(), "beats only on request");

    // Beats on request: increasing times inside the track.
    let (st, tb) = s.get(&format!("/v1/tracks/{seed}?include=beats"));
    assert_eq!(st, 200, "{tb}");
    let beats: Vec<f64> = tb["beats"]
        .as_array()
        .expect("beats")
        .iter()
        .map(|b| b.as_f64().unwrap())
        .collect();
    let duration = tb["duration_s"].as_f64().unwrap();
    assert!(!beats.is_empty(), "{tb}");
    assert!(beats.windows(2).all(|w| w[0] < w[1]), "{beats:?}");
    assert!(
        beats.iter().all(|b| (0.0..=duration).contains(b)),
        "{beats:?}"
    );
    check_error(
        s.get(&format!("/v1/tracks/{seed}?include=waveform")),
        400,
        "unknown_include",
    );

    // Metre tags, and the song without a steady pulse: tagged tempo:free, left out of
    // BPM ranges (its number is only a likeliest period).
    assert!(
        tags["facets"]["meter"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{tags}"
    );
    let (st, free) = s.get("/v1/search?tags=tempo:free&limit=100&facets=false");
    assert_eq!(st, 200, "{free}");
    assert!(free["total"].as_u64().unwrap() >= 4, "{free}");
    assert!(
        free["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tags"].as_array().unwrap().contains(&json!("tempo:free"))),
        "{free}"
    );
    let (st, ranged) =
        s.get("/v1/search?tags=tempo:free&bpm_min=30&bpm_max=250&limit=100&facets=false");
    assert_eq!(st, 200, "{ranged}");
    assert_eq!(ranged["total"], 0, "{ranged}");

    learned_tags_work_everywhere(&s, &tags);

    // More like this: seed excluded, reasons, filters exact, paging, validation.
    let (st, sim) = s.get(&format!("/v1/tracks/{seed}/similar?limit=5"));
    assert_eq!(st, 200, "{sim}");
    let r = sim["results"].as_array().unwrap();
    assert_eq!(r.len(), 5);
    assert!(!ids(&sim, "results").contains(&seed));
    assert!(r
        .iter()
        .all(|h| h["reasons"].as_array().is_some_and(|a| !a.is_empty())
            && h["score"].as_f64().is_some()));
    let scores: Vec<f64> = r.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );
    let (st, f) = s.get(&format!(
        "/v1/tracks/{seed}/similar?limit=20&tempo_bpm_min=95&tempo_bpm_max=125"
    ));
    assert_eq!(st, 200, "{f}");
    assert!(!f["results"].as_array().unwrap().is_empty());
    assert!(
        f["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| (95.0..=125.0).contains(&tempo(h))),
        "{f}"
    );
    let (_, ft) = s.get(&format!(
        "/v1/tracks/{seed}/similar?limit=50&tags={busiest}"
    ));
    assert!(ft["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["tags"].as_array().unwrap().contains(&json!(busiest))));
    let (_, p1) = s.get(&format!("/v1/tracks/{seed}/similar?limit=3"));
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_string();
    let (_, p2) = s.get(&format!(
        "/v1/tracks/{seed}/similar?limit=3&cursor={cursor}"
    ));
    let (a, b): (HashSet<i64>, HashSet<i64>) = (
        ids(&p1, "results").into_iter().collect(),
        ids(&p2, "results").into_iter().collect(),
    );
    assert!(a.is_disjoint(&b) && b.len() == 3, "{p1} {p2}");
    let (_, capped) = s.get(&format!(
        "/v1/tracks/{seed}/similar?limit=10&max_per_artist=1"
    ));
    let artists: Vec<String> = capped["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["artists"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_lowercase())
        })
        .collect();
    let distinct: HashSet<&String> = artists.iter().collect();
    assert_eq!(
        distinct.len(),
        artists.len(),
        "max_per_artist=1: {artists:?}"
    );
    check_error(
        s.get(&format!("/v1/tracks/{seed}/similar?limit=100000")),
        400,
        "limit_too_large",
    );
    check_error(
        s.get(&format!("/v1/tracks/{seed}/similar?tempo_bpm_min=fast")),
        400,
        "bad_number",
    );
    check_error(
        s.get(&format!(
            "/v1/tracks/{seed}/similar?tags=mood:nothing_like_this"
        )),
        400,
        "unknown_tag",
    );
    check_error(
        s.get(&format!("/v1/tracks/{seed}/similar?colour_min=3")),
        400,
        "unknown_field",
    );
    check_error(
        s.get(&format!(
            "/v1/tracks/{seed}/similar?energy_min=0.9&energy_max=0.1"
        )),
        400,
        "bad_range",
    );
    check_error(s.get("/v1/tracks/987654/similar"), 404, "unknown_track");
    check_error(
        s.get(&format!("/v1/tracks/{seed}/similar?cursor=zz")),
        400,
        "bad_cursor",
    );

    // POST /similar: weighted seeds, raw vectors, uploads.
    let (st, ps) = s.post_json("/v1/similar", &json!({"seeds": [{"id": seed, "weight": 2.0}, all_ids[1]], "limit": 5, "filters": {"ranges": {"tempo_bpm": {"min": 60, "max": 200}}}}));
    assert_eq!(st, 200, "{ps}");
    assert!(!ids(&ps, "results").contains(&seed) && !ids(&ps, "results").contains(&all_ids[1]));
    check_error(
        s.post_json("/v1/similar", &json!({"vector": [1.0, 2.0], "limit": 5})),
        400,
        "bad_vector",
    );
    check_error(
        s.post_json("/v1/similar", &json!({"limit": 5})),
        400,
        "no_seed",
    );
    check_error(
        s.post_json("/v1/similar", &json!({"seeds": [seed], "bogus": 1})),
        400,
        "bad_json",
    );
    // An upload is its own nearest neighbour.
    let clip_name = "funk_e_minor_100.ogg";
    let clip = std::fs::read(repo().join("fixtures/audio").join(clip_name)).unwrap();
    // With every copy shown; by default the recording's chosen copy answers for it.
    let (ct, body) = multipart(&[
        ("audio", Some(clip_name), &clip),
        ("options", None, br#"{"limit": 3, "copies": "all"}"#),
    ]);
    let (st, up) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!(st, 200, "{up}");
    let first = &up["results"][0];
    assert_eq!(first["external_id"], json!(fx_id(clip_name)), "{up}");
    assert!(first["score"].as_f64().unwrap() > 0.999, "{up}");
    assert_eq!(up["query_audio"]["filename"], clip_name);
    let (ct, body) = multipart(&[
        ("audio", Some(clip_name), &clip),
        ("options", None, br#"{"limit": 3}"#),
    ]);
    let (st, one) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!(st, 200, "{one}");
    let shown = one["results"][0]["id"].as_i64().unwrap();
    let (_, d) = s.get(&format!("/v1/tracks/{}/duplicates", first["id"]));
    assert_eq!(d["shown"], json!(shown), "{one}\n{d}");
    let (ct, body) = multipart(&[("audio", Some("notes.txt"), b"not audio at all")]);
    check_error(
        s.send("POST", "/v1/similar", &[("content-type", &ct)], &body),
        415,
        "unsupported_format",
    );
    let junk = std::fs::read(repo().join("fixtures/bad/text.ogg")).unwrap();
    let (ct, body) = multipart(&[("audio", Some("text.ogg"), &junk)]);
    let (st, v) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!(st, 415, "{v}");

    // Search: query syntax, facets, paging.
    let (st, sr) = s.get("/v1/search?q=funk");
    assert_eq!(st, 200, "{sr}");
    assert!(sr["total"].as_u64().unwrap() >= 1, "{sr}");
    assert!(
        sr["facets"].as_object().is_some_and(|f| !f.is_empty()),
        "{sr}"
    );
    let (st, sb) = s.get("/v1/search?q=bpm:95-125&limit=100");
    assert_eq!(st, 200, "{sb}");
    assert!(sb["total"].as_u64().unwrap() >= 1);
    assert!(sb["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| (95.0..=125.0).contains(&tempo(h))));
    let camelot = t["attributes"]["camelot"].as_str().unwrap().to_string();
    let (_, sk) = s.get(&format!("/v1/search?q=key:{camelot}&limit=100"));
    assert!(
        sk["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["camelot"] == json!(camelot))
            && sk["total"].as_u64().unwrap() >= 1,
        "{sk}"
    );
    check_error(s.get("/v1/search?q=bpm:fast"), 400, "bad_number");
    check_error(s.get("/v1/search?q=colour:red"), 400, "unknown_field");
    check_error(
        s.get("/v1/search?q=tag:mood:nothing_like_this"),
        400,
        "unknown_tag",
    );
    // Paging: over every copy (40 tracks), and over recordings (one copy each: at least
    // the 7 songs; the pop song's 1-4 s excerpts are copies of it, by their fingerprints or
    // fine fingerprints).
    for (copies, limit, second_page) in [("all", 15, 15..=15), ("one", 4, 1..=4)] {
        let (_, q1) = s.get(&format!(
            "/v1/search?limit={limit}&facets=false&copies={copies}"
        ));
        let (_, q2) = s.get(&format!(
            "/v1/search?limit={limit}&facets=false&copies={copies}&cursor={}",
            q1["next_cursor"].as_str().unwrap()
        ));
        let (a, b): (HashSet<i64>, HashSet<i64>) = (
            ids(&q1, "results").into_iter().collect(),
            ids(&q2, "results").into_iter().collect(),
        );
        assert!(a.len() == limit && a.is_disjoint(&b), "{q1}\n{q2}");
        assert!(second_page.contains(&b.len()), "{copies}: {q2}");
    }

    // Hybrid: fusion with explanations, filters exact. Its seed is no funk track (the
    // seed's recording is left out of the answer, which would leave no text match).
    let not_funk = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| !r["title"].as_str().unwrap_or("").contains("funk"))
        .and_then(|r| r["id"].as_i64())
        .unwrap();
    let (st, hy) = s.post_json("/v1/search/hybrid", &json!({"q": "funk", "like": [not_funk], "limit": 10, "explain": true, "filters": {"ranges": {"tempo_bpm": {"min": 60, "max": 180}}}}));
    assert_eq!(st, 200, "{hy}");
    let hr = hy["results"].as_array().unwrap();
    assert!(!hr.is_empty());
    assert!(hr.iter().all(|h| h["explain"]["fused"].as_f64().is_some() && (60.0..=180.0).contains(&tempo(h))), "{hy}");
    assert!(
        hr.iter().any(|h| h["explain"]["text_rank"].is_number())
            && hr.iter().any(|h| h["explain"]["vector_rank"].is_number()),
        "{hy}"
    );
    assert_eq!(hy["plan"]["fusion"]["k"], 60.0);
    let (st, hw) = s.post_json("/v1/search/hybrid", &json!({"q": "funk", "like": [seed], "fusion": "weighted", "weights": {"text": 0.2, "vector": 1.0}}));
    assert_eq!(st, 200, "{hw}");
    check_error(
        s.post_json("/v1/search/hybrid", &json!({"limit": 5})),
        400,
        "no_query",
    );
    check_error(
        s.post_json(
            "/v1/search/hybrid",
            &json!({"q": "funk", "fusion": "magic"}),
        ),
        400,
        "bad_json",
    );
    check_error(
        s.post_json("/v1/search/hybrid", &json!({"q": "funk", "limit": 9999})),
        400,
        "limit_too_large",
    );

    // Playlists: every hard constraint holds or its relaxation is reported.
    let req = json!({"filters": {"ranges": {"tempo_bpm": {"min": 70, "max": 150}}}, "size": 8, "artist_gap": 1, "order": "harmonic", "seed": 7});
    let (st, pl) = s.post_json("/v1/playlists", &req);
    assert_eq!(st, 200, "{pl}");
    check_playlist(&pl, 70.0, 150.0, 1);
    let (_, again) = s.post_json("/v1/playlists", &req);
    assert_eq!(
        again["tracks"], pl["tracks"],
        "the same seed gives the same playlist"
    );
    // A harmonic playlist through the free-pulse tracks (the ambient song's four encodes,
    // every copy asked for) and the slow ones: a free tempo plays no part in a transition
    // (no tempo change reported), a steady one does.
    let (st, fp) = s.post_json(
        "/v1/playlists",
        &json!({"filters": {"tags_any": ["tempo:free", "tempo:slow"]}, "size": 8, "order": "harmonic", "seed": 3, "copies": "all"}),
    );
    assert_eq!(st, 200, "{fp}");
    let entries = fp["tracks"].as_array().unwrap();
    let free = |t: &Value| {
        t["track"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("tempo:free"))
    };
    assert!(entries.iter().filter(|t| free(t)).count() >= 4, "{fp}");
    let mut saw = (false, false);
    for w in entries.windows(2) {
        let change = &w[1]["transition"]["tempo_change_pct"];
        if free(&w[0]) || free(&w[1]) {
            assert!(change.is_null(), "{fp}");
            saw.0 = true;
        } else {
            // The tempo where the first track ends and the next starts (from their stored
            // beats): near each one's global tempo on these steady fixtures, and the
            // change reported is theirs.
            let t = &w[1]["transition"];
            let (out, into) = (
                t["tempo_out_bpm"].as_f64().unwrap(),
                t["tempo_in_bpm"].as_f64().unwrap(),
            );
            for (edge, track) in [(out, &w[0]), (into, &w[1])] {
                let global = track["track"]["attributes"]["tempo_bpm"].as_f64().unwrap();
                assert!(
                    (edge / global - 1.0).abs() < 0.1,
                    "{edge} vs {global}: {fp}"
                );
            }
            let pct = change.as_f64().unwrap();
            assert!((pct - 100.0 * (into / out - 1.0)).abs() < 0.2, "{fp}");
            saw.1 = true;
        }
    }
    assert!(saw.0, "a transition next to a free pulse: {fp}");
    for order in ["smooth", "energy_arc"] {
        let (st, p) = s.post_json("/v1/playlists", &json!({"seeds": [seed], "duration_s": 600, "tolerance_s": 90, "artist_gap": 2, "order": order, "targets": {"energy": 0.5}}));
        assert_eq!(st, 200, "{p}");
        check_playlist(&p, 0.0, 1000.0, 2);
        let total = p["duration_s"].as_f64().unwrap();
        let relaxed_duration = p["relaxed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["constraint"] == "duration_s");
        assert!((total - 600.0).abs() <= 90.0 || relaxed_duration, "{p}");
        assert!(p["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["track"]["id"] != json!(seed)));
    }
    // A constraint the catalogue cannot meet is reported, not broken.
    let (st, tight) = s.post_json("/v1/playlists", &json!({"filters": {"ranges": {"tempo_bpm": {"min": 95, "max": 125}}}, "size": 30, "artist_gap": 3}));
    assert_eq!(st, 200, "{tight}");
    check_playlist(&tight, 95.0, 125.0, 0);
    let relaxed: Vec<&str> = tight["relaxed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["constraint"].as_str())
        .collect();
    assert!(relaxed.contains(&"size"), "{tight}");
    check_error(
        s.post_json("/v1/playlists", &json!({"size": 0})),
        400,
        "bad_size",
    );
    check_error(
        s.post_json("/v1/playlists", &json!({"size": 5, "duration_s": 100})),
        400,
        "bad_playlist",
    );
    check_error(
        s.post_json(
            "/v1/playlists",
            &json!({"size": 5, "targets": {"colour": 1}}),
        ),
        400,
        "unknown_field",
    );
    check_error(
        s.post_json("/v1/playlists", &json!({"size": 5, "seeds": [987654]})),
        404,
        "unknown_track",
    );

    // Song path.
    let (st, path) = s.get(&format!("/v1/path?from={seed}&to={}&steps=5", all_ids[5]));
    assert_eq!(st, 200, "{path}");
    let steps = path["tracks"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0]["track"]["id"], json!(seed));
    assert_eq!(steps[4]["track"]["id"], json!(all_ids[5]));
    let distinct: HashSet<i64> = steps
        .iter()
        .map(|t| t["track"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(distinct.len(), 5);
    check_error(
        s.get(&format!("/v1/path?from={seed}&to=987654")),
        404,
        "unknown_track",
    );
    check_error(
        s.get(&format!("/v1/path?from={seed}&to={}&steps=1", all_ids[5])),
        400,
        "bad_steps",
    );
    check_error(s.get("/v1/path?to=1"), 400, "missing_param");

    // OpenAPI matches the routes; metrics count requests; unknown routes are JSON errors.
    let (st, doc) = s.get("/v1/openapi.json");
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/tracks/{id}",
        "/v1/tracks/{id}/similar",
        "/v1/similar",
        "/v1/search",
        "/v1/search/hybrid",
        "/v1/tags",
        "/v1/tags/{tag}/tracks",
        "/v1/playlists",
        "/v1/path",
        "/v1/map",
        "/v1/tracks/{id}/audio",
        "/v1/tracks",
        "/v1/ingest",
        "/v1/ingest/{run}",
        "/v1/health",
        "/v1/metrics",
        "/v1/openapi.json",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    for (p, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = p
                .replace("{id}", &seed.to_string())
                .replace("{tag}", &busiest)
                .replace("{run}", "1");
            let r = request(&s.addr, &method.to_uppercase(), &concrete, &[], b"");
            assert!(
                r.status != 404 || !r.text().contains("unknown_route"),
                "{method} {p} is documented but not routed"
            );
        }
    }
    check_error(s.get("/v1/nothing-here"), 404, "unknown_route");
    map_and_page(&s);
    check_error(
        s.send("PUT", "/v1/search", &[], b""),
        405,
        "method_not_allowed",
    );
    let m = request(&s.addr, "GET", "/v1/metrics", &[], b"");
    assert_eq!(m.status, 200);
    assert!(m.text().contains("motif_http_requests_total{method=\"GET\",route=\"/v1/tracks/{id}/similar\",status=\"200\"}"), "{}", m.text());
    assert!(m
        .text()
        .contains("motif_http_request_duration_seconds_bucket"));

    // Writes need the token.
    let victim = all_ids[2];
    check_error(
        s.send("DELETE", &format!("/v1/tracks/{victim}"), &[], b""),
        401,
        "no_token",
    );
    check_error(
        s.send(
            "DELETE",
            &format!("/v1/tracks/{victim}"),
            &[("authorization", "Bearer wrong")],
            b"",
        ),
        401,
        "bad_token",
    );
    let auth = format!("Bearer {TOKEN}");
    let (st, del) = take_down(&s, victim);
    assert_eq!(st, 200, "{del}");
    // Gone from every query at once.
    for other in [seed, all_ids[1], all_ids[3]] {
        let (_, v) = s.get(&format!("/v1/tracks/{other}/similar?limit=50"));
        assert!(
            !ids(&v, "results").contains(&victim),
            "taken-down track in similar"
        );
    }
    let (_, v) = s.get("/v1/search?limit=100&facets=false");
    assert!(!ids(&v, "results").contains(&victim) && v["total"] == 39);
    let (_, v) = s.post_json(
        "/v1/search/hybrid",
        &json!({"q": "song", "like": [seed], "limit": 100}),
    );
    assert!(!ids(&v, "results").contains(&victim));
    let (_, v) = s.post_json("/v1/playlists", &json!({"size": 39}));
    assert!(!v["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["track"]["id"] == json!(victim)));
    check_error(
        s.get(&format!("/v1/tracks/{victim}/similar")),
        404,
        "unknown_track",
    );
    let (_, v) = s.get(&format!("/v1/tracks/{victim}"));
    assert_eq!(v["status"], "taken_down");

    // Ingest over HTTP: the same recording delivered under two more ids.
    let manifest = "{\"op\": \"upsert\", \"external_id\": \"dup-a\", \"path\": \"pop_a_major_120.ogg\", \"title\": \"Duplicate A\"}\n\
                    {\"op\": \"upsert\", \"external_id\": \"dup-b\", \"path\": \"pop_a_major_120.ogg\", \"title\": \"Duplicate B\"}\n\
                    this line is not JSON\n";
    check_error(
        s.send("POST", "/v1/ingest", &[], manifest.as_bytes()),
        401,
        "no_token",
    );
    let (st, ing) = s.send(
        "POST",
        "/v1/ingest",
        &[("authorization", &auth)],
        manifest.as_bytes(),
    );
    assert_eq!(st, 202, "{ing}");
    let run = ing["run"].as_i64().unwrap();
    // The run's status (its errors name server files) is for token holders only.
    check_error(s.get(&format!("/v1/ingest/{run}")), 401, "no_token");
    let status = |path: &str| s.send("GET", path, &[("authorization", &auth)], b"");
    let done = eventually(Duration::from_secs(120), || {
        status(&format!("/v1/ingest/{run}")).1["run"]["status"] == "finished"
    });
    assert!(done.is_some(), "ingest run {run} did not finish");
    let (_, r) = status(&format!("/v1/ingest/{run}"));
    assert_eq!(r["run"]["new"], 2, "{r}");
    assert_eq!(r["run"]["failed"], 1, "{r}");
    assert_eq!(r["errors"][0]["line"], 3, "{r}");
    check_error(status("/v1/ingest/987654"), 404, "unknown_run");
    assert!(
        eventually(Duration::from_secs(5), || s.get("/v1/search?q=duplicate").1
            ["total"]
            == 2)
        .is_some()
    );
    let (_, dup) = s.get("/v1/search?q=%22duplicate%20a%22");
    let dup_a = ids(&dup, "results")[0];
    let (_, v) = s.get(&format!("/v1/tracks/{dup_a}/similar?limit=10"));
    let titles: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["external_id"].as_str().unwrap().to_string())
        .collect();
    let original = fx_id("pop_a_major_120.ogg");
    assert!(
        !titles.contains(&"dup-b".to_string()) && !titles.contains(&original),
        "duplicates of the seed collapsed: {titles:?}"
    );
    assert!(
        v["plan"]["collapsed_duplicates"].as_u64().unwrap() >= 1,
        "{v}"
    );
    let (_, v) = s.get(&format!("/v1/tracks/{seed}/similar?limit=45"));
    let recs: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["external_id"].as_str().unwrap())
        .filter(|e| ["dup-a", "dup-b", original.as_str()].contains(e))
        .collect();
    assert!(
        recs.len() <= 1,
        "one copy of a recording per answer: {recs:?}"
    );

    // Upload a track.
    let (ct, body) = multipart(&[("audio", Some("ballad.mp3"), &std::fs::read(repo().join("fixtures/audio/ballad_eflat_major_76.mp3")).unwrap()), ("metadata", None, br#"{"external_id": "upload-1", "title": "Uploaded Ballad", "artists": ["Test Uploader"], "tags": ["mood:tender"]}"#)]);
    let (st, up) = s.send(
        "POST",
        "/v1/tracks",
        &[("content-type", &ct), ("authorization", &auth)],
        &body,
    );
    assert_eq!(st, 201, "{up}");
    let up_id = up["id"].as_i64().unwrap();
    let (_, v) = s.get(&format!("/v1/tracks/{up_id}"));
    assert_eq!(v["title"], "Uploaded Ballad");
    assert!(
        v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "mood:tender" && t["source"] == "catalog"),
        "{v}"
    );
    let (_, v) = s.get("/v1/search?q=tag:mood:tender");
    assert_eq!(ids(&v, "results"), vec![up_id]);
    let (ct, body) = multipart(&[
        ("audio", Some("x.txt"), b"nope"),
        ("metadata", None, br#"{"external_id": "upload-2"}"#),
    ]);
    check_error(
        s.send(
            "POST",
            "/v1/tracks",
            &[("content-type", &ct), ("authorization", &auth)],
            &body,
        ),
        415,
        "unsupported_format",
    );
    let (ct, body) = multipart(&[
        ("audio", Some("x.ogg"), &junk),
        ("metadata", None, br#"{"external_id": "upload-3"}"#),
    ]);
    let (st, v) = s.send(
        "POST",
        "/v1/tracks",
        &[("content-type", &ct), ("authorization", &auth)],
        &body,
    );
    assert_eq!(st, 415, "{v}");

    // Freshness: another process writes the same store; the server follows within 5 s.
    let music = place.dir.join("fresh");
    std::fs::create_dir_all(&music).unwrap();
    std::fs::copy(
        repo().join("fixtures/audio/rock_d_major_140.ogg"),
        music.join("probe.ogg"),
    )
    .unwrap();
    std::fs::write(music.join("add.jsonl"), "{\"op\": \"upsert\", \"external_id\": \"fresh-1\", \"path\": \"probe.ogg\", \"title\": \"Freshness Probe\"}\n").unwrap();
    let d3 = place.dir.join("other-indexer").display().to_string();
    let add = music.join("add.jsonl").display().to_string();
    let out = motif(
        &["index", &add, "--database", &url, "--data-dir", &d3],
        &place.dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = eventually(Duration::from_secs(5), || {
        s.get("/v1/search?q=freshness").1["total"] == 1
    });
    assert!(
        seen.is_some(),
        "a track added by another process is searchable within 5 s"
    );
    std::fs::write(
        music.join("del.jsonl"),
        "{\"op\": \"delete\", \"external_id\": \"fresh-1\"}\n",
    )
    .unwrap();
    let del = music.join("del.jsonl").display().to_string();
    let out = motif(
        &["index", &del, "--database", &url, "--data-dir", &d3],
        &place.dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = eventually(Duration::from_secs(5), || {
        s.get("/v1/search?q=freshness").1["total"] == 0
    });
    assert!(
        gone.is_some(),
        "a takedown by another process leaves answers within 5 s"
    );
    eprintln!("freshness ({backend}): added visible after {seen:?}, takedown after {gone:?}");
}

/// The tags of one result (names).
fn tag_names(r: &Value) -> Vec<String> {
    r["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// The learned models' tags (genre, mood, era, instruments, voice) go where the analysis
/// tags go: counted by facet, searchable, filterable, in playlists and "more like this"
/// reasons, and on a clip posted to `POST /v1/similar`.
fn learned_tags_work_everywhere(s: &Server, tags: &Value) {
    let mut learned: Vec<(String, u64)> = Vec::new();
    for facet in ["genre", "mood", "era", "instrument", "vocals"] {
        for t in tags["facets"][facet].as_array().into_iter().flatten() {
            learned.push((
                t["tag"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            ));
        }
    }
    assert!(
        learned
            .iter()
            .filter(|(t, _)| t.starts_with("genre:"))
            .count()
            >= 1
            && learned.len() >= 3,
        "learned tags on the fixtures: {tags}"
    );
    // The busiest learned tag that not every track has, so a filter has work to do.
    learned.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let (tag, n) = learned
        .iter()
        .find(|(_, n)| *n < 40)
        .cloned()
        .expect("a learned tag some tracks lack");
    // Search syntax and the tags parameter agree with the count.
    let (st, q) = s.get(&format!("/v1/search?q=tag:{tag}&limit=100&facets=false"));
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["total"].as_u64(), Some(n), "{q}");
    assert!(q["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| tag_names(r).contains(&tag)));
    let (_, none) = s.get(&format!(
        "/v1/search?tags_none={tag}&limit=100&facets=false"
    ));
    assert_eq!(none["total"].as_u64(), Some(40 - n), "{none}");
    // A track's detail shows the tag with its model score, source analysis.
    let carrier = ids(&q, "results")[0];
    let (_, t) = s.get(&format!("/v1/tracks/{carrier}"));
    let shown = t["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == json!(tag))
        .unwrap_or_else(|| panic!("{t}"));
    assert_eq!(shown["source"], "analysis", "{t}");
    assert!((0.0..=1.0).contains(&shown["score"].as_f64().unwrap()));
    // Filtered "more like this": every hit carries it, and the reasons name what the seed
    // and the hit both sound like (every copy: the fixtures' scraps and excerpts are copies
    // of their songs, so one per recording would leave only a handful).
    let (st, sim) = s.get(&format!(
        "/v1/tracks/{carrier}/similar?limit=10&tags={tag}&copies=all"
    ));
    assert_eq!(st, 200, "{sim}");
    let hits = sim["results"].as_array().unwrap();
    assert_eq!(hits.len() as u64, (n - 1).min(10), "{sim}");
    for h in hits {
        assert!(tag_names(h).contains(&tag), "{h}");
        assert!(
            h["reasons"].as_array().unwrap().iter().any(|r| r
                .as_str()
                .unwrap()
                .starts_with("both sound like")
                && r.as_str().unwrap().contains(&tag)),
            "{h}"
        );
    }
    // A playlist restricted to it.
    let (st, pl) = s.post_json(
        "/v1/playlists",
        &json!({"filters": {"tags": [tag]}, "size": 3, "artist_gap": 0}),
    );
    assert_eq!(st, 200, "{pl}");
    let items = pl["tracks"].as_array().expect("tracks");
    assert_eq!(items.len() as u64, n.min(3), "{pl}");
    assert!(
        items.iter().all(|i| tag_names(&i["track"]).contains(&tag)),
        "{pl}"
    );
    // A clip posted for "more like this" is heard by the models too, and gets the tags
    // its stored copy has.
    let clip_name = "dance_fsharp_minor_128.ogg";
    let clip = std::fs::read(repo().join("fixtures/audio").join(clip_name)).unwrap();
    let (ct, body) = multipart(&[
        ("audio", Some(clip_name), &clip),
        ("options", None, br#"{"limit": 1}"#),
    ]);
    let (st, up) = s.send("POST", "/v1/similar", &[("content-type", &ct)], &body);
    assert_eq!(st, 200, "{up}");
    let clip_tags: Vec<String> = up["query_audio"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert!(clip_tags.iter().any(|t| t.starts_with("genre:")), "{up}");
    let stored = tag_names(&up["results"][0]);
    for t in clip_tags.iter().filter(|t| t.starts_with("genre:")) {
        assert!(stored.contains(t), "clip {clip_tags:?}, stored {stored:?}");
    }
}

/// Asserts a playlist's hard constraints: tempo range, no artist within `gap` (unless
/// relaxed), transitions reported.
fn check_playlist(p: &Value, lo: f64, hi: f64, gap: usize) {
    let tracks = p["tracks"].as_array().expect("tracks");
    assert!(!tracks.is_empty(), "{p}");
    let relaxed_gap = p["relaxed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["constraint"] == "artist_gap");
    for (i, t) in tracks.iter().enumerate() {
        let bpm = t["track"]["attributes"]["tempo_bpm"].as_f64().unwrap();
        assert!(
            (lo..=hi).contains(&bpm),
            "tempo {bpm} outside {lo}..{hi}: {p}"
        );
        assert_eq!(t["position"], json!(i + 1));
        if i > 0 {
            assert!(t["transition"]["score"].as_f64().is_some(), "{p}");
        }
        if !relaxed_gap {
            let mine: HashSet<String> = t["track"]["artists"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_lowercase())
                .collect();
            for prev in tracks[i.saturating_sub(gap)..i].iter() {
                let theirs: HashSet<String> = prev["track"]["artists"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_lowercase())
                    .collect();
                assert!(
                    mine.is_disjoint(&theirs),
                    "artist repeated within {gap}: {p}"
                );
            }
        }
    }
    let ids: HashSet<i64> = tracks
        .iter()
        .map(|t| t["track"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), tracks.len(), "no track twice");
}

#[test]
fn api_end_to_end_sqlite() {
    api_end_to_end("sqlite");
}

#[test]
fn api_end_to_end_postgres() {
    api_end_to_end("postgres");
}

/// Issue 15 over HTTP: the fixture songs' encodes are one recording each (found by their
/// fingerprints, in the server's own indexes, built apart from the indexer's); answers
/// show one copy, the documented one, unless `copies=all`; taking the shown copy down
/// leaves the others and the next best shows.
fn duplicates_end_to_end(backend: &str) {
    // The place (its folder and database) must outlive the server.
    let Setup {
        place: _place,
        server: s,
        ..
    } = setup(backend);
    let ids_of = |v: &Value| -> Vec<i64> { ids(v, "results") };
    let full_funk = |v: &Value| -> Vec<i64> {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["genre"] == "funk" && h["duration_s"].as_f64().unwrap() > 10.0)
            .map(|h| h["id"].as_i64().unwrap())
            .collect()
    };
    let (st, all) = s.get("/v1/search?q=funk&limit=50&copies=all");
    assert_eq!(st, 200, "{all}");
    let funk = full_funk(&all);
    assert_eq!(funk.len(), 4, "four encodes of the funk song: {all}");
    let (st, d) = s.get(&format!("/v1/tracks/{}/duplicates", funk[0]));
    assert_eq!(st, 200, "{d}");
    let copies: HashSet<i64> = d["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(copies, funk[1..].iter().copied().collect(), "{d}");
    for c in d["copies"].as_array().unwrap() {
        assert_eq!(c["evidence"]["by"], "fingerprint", "{d}");
        let ber = c["evidence"]["bit_error_rate"].as_f64().unwrap();
        assert!((0.0..0.25).contains(&ber), "{d}");
    }
    // One copy by default: the one the duplicates answer names.
    let shown = d["shown"].as_i64().unwrap();
    let (_, one) = s.get("/v1/search?q=funk&limit=50");
    assert_eq!(full_funk(&one), vec![shown], "{one}");
    // More like a non-funk track: every copy with copies=all, one without.
    let (_, everything) = s.get("/v1/search?q=&limit=100&copies=all");
    let other = ids_of(&everything)
        .into_iter()
        .find(|id| !funk.contains(id))
        .unwrap();
    let (_, many) = s.get(&format!("/v1/tracks/{other}/similar?limit=50&copies=all"));
    let (_, few) = s.get(&format!("/v1/tracks/{other}/similar?limit=50"));
    let count = |v: &Value| ids_of(v).iter().filter(|id| funk.contains(id)).count();
    assert_eq!(count(&many), 4, "{many}");
    assert_eq!(count(&few), 1, "{few}");
    assert!(
        few["plan"]["collapsed_duplicates"].as_u64().unwrap() >= 3,
        "{few}"
    );
    // Playlists and hybrid collapse too.
    let (_, p) = s.post_json("/v1/playlists", &json!({"size": 30, "seed": 3}));
    let listed: Vec<i64> = p["tracks"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["track"]["id"].as_i64().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        listed.iter().filter(|id| funk.contains(id)).count() <= 1,
        "{p}"
    );
    let (_, h) = s.post_json("/v1/search/hybrid", &json!({"q": "funk", "limit": 50}));
    assert_eq!(full_funk(&h).len(), 1, "{h}");
    // Bad input gets a clear error.
    check_error(s.get("/v1/search?q=funk&copies=some"), 400, "bad_copies");
    check_error(s.get("/v1/tracks/987654/duplicates"), 404, "unknown_track");
    // Take the shown copy down: the others stay one recording and the next best shows.
    let (st, del) = take_down(&s, shown);
    assert_eq!(st, 200, "{del}");
    let rest: Vec<i64> = funk.iter().copied().filter(|&id| id != shown).collect();
    let (_, d) = s.get(&format!("/v1/tracks/{}/duplicates", rest[0]));
    assert_eq!(d["copies"].as_array().unwrap().len(), 2, "{d}");
    let next = d["shown"].as_i64().unwrap();
    assert!(rest.contains(&next), "{d}");
    let (_, one) = s.get("/v1/search?q=funk&limit=50");
    assert_eq!(full_funk(&one), vec![next], "{one}");
}

#[test]
fn duplicates_end_to_end_sqlite() {
    duplicates_end_to_end("sqlite");
}

#[test]
fn duplicates_end_to_end_postgres() {
    duplicates_end_to_end("postgres");
}

/// The catalogue map (bounded, deterministic, versioned, coloured) and the web page's files.
fn map_and_page(s: &Server) {
    let (st, m) = s.get("/v1/map?sample=12&color=tempo_bpm");
    assert_eq!(st, 200, "{m}");
    let ids = m["points"]["id"].as_array().unwrap();
    assert_eq!(ids.len(), 12);
    for col in ["x", "y", "v"] {
        assert_eq!(m["points"][col].as_array().unwrap().len(), 12, "{col}");
    }
    assert!(m["space"].as_str().is_some_and(|v| !v.is_empty()), "{m}");
    assert!(m["seq"].as_i64().unwrap() > 0 && m["total"].as_u64().unwrap() >= 12);
    assert!(m["points"]["v"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v.as_f64().is_some_and(|t| t > 30.0)));
    let (_, again) = s.get("/v1/map?sample=12&color=tempo_bpm");
    if again["seq"] == m["seq"] {
        assert_eq!(again, m, "the same index state draws the same map");
    }
    let (st, tagged) = s.get("/v1/map?sample=500&color=genre:rock");
    assert_eq!(st, 200, "{tagged}");
    let v = tagged["points"]["v"].as_array().unwrap();
    assert!(
        v.iter().any(|x| x == 1) && v.iter().any(|x| x == 0),
        "{tagged}"
    );
    assert_eq!(
        v.len() as u64,
        tagged["total"].as_u64().unwrap(),
        "a sample over the catalogue size is all of it"
    );
    check_error(s.get("/v1/map?sample=0"), 400, "bad_sample");
    check_error(s.get("/v1/map?sample=20001"), 400, "bad_sample");
    check_error(s.get("/v1/map?color=year"), 400, "bad_color");

    let page = request(&s.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(header(&page, "content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(page.text().contains("/assets/app.js"));
    let js = request(&s.addr, "GET", "/assets/app.js", &[], b"");
    assert_eq!(js.status, 200);
    assert!(header(&js, "content-type").is_some_and(|c| c.starts_with("text/javascript")));
    let missing = request(&s.addr, "GET", "/assets/nope.js", &[], b"");
    check_error((missing.status, missing.json()), 404, "unknown_asset");
}

/// A response header's value (case-insensitive name), if present.
fn header(r: &Response, name: &str) -> Option<String> {
    r.headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// `GET /v1/tracks/{id}/audio`: the whole file with `Accept-Ranges`, byte ranges as 206
/// with the right bytes and `Content-Range`, 416 past the end, 404 for an unknown id, 410
/// after a takedown, and 403 for audio outside the media roots (a file swapped for a
/// symlink leading out after indexing; a `file://` URI under a folder that is not a
/// root); an upload plays from the data folder's `uploads/`.
fn audio_end_to_end(backend: &str) {
    let mut place = Place::new(&format!("audio-{backend}"));
    let url = place.database(backend);
    let (music, outside, elsewhere) = (
        place.dir.join("music"),
        place.dir.join("outside"),
        place.dir.join("elsewhere"),
    );
    for d in [&music, &outside, &elsewhere] {
        std::fs::create_dir_all(d).unwrap();
    }
    let fx = repo().join("fixtures/audio");
    for f in [
        "pop_a_major_120.wav",
        "rock_d_major_140.mp3",
        "funk_e_minor_100.opus",
    ] {
        std::fs::copy(fx.join(f), music.join(f)).unwrap();
    }
    let ballad = fx.join("ballad_eflat_major_76.ogg");
    std::fs::copy(&ballad, music.join("link.ogg")).unwrap();
    std::fs::copy(&ballad, outside.join("ballad.ogg")).unwrap();
    std::fs::copy(
        fx.join("dance_fsharp_minor_128.ogg"),
        elsewhere.join("dance.ogg"),
    )
    .unwrap();
    let manifest = [
        json!({"external_id": "wav", "path": "pop_a_major_120.wav", "title": "Pop"}),
        json!({"external_id": "mp3", "path": "rock_d_major_140.mp3", "title": "Rock"}),
        json!({"external_id": "opus", "path": "funk_e_minor_100.opus", "title": "Funk"}),
        json!({"external_id": "link", "path": "link.ogg", "title": "A symlink later"}),
    ]
    .map(|l| l.to_string())
    .join("\n");
    std::fs::write(music.join("catalog.jsonl"), manifest).unwrap();
    // A delivery from a folder that is not one of the server's media roots, by URI.
    let uri = format!("file://{}", elsewhere.join("dance.ogg").display());
    let other = json!({"external_id": "uri", "uri": uri, "title": "By URI"}).to_string();
    std::fs::write(elsewhere.join("catalog.jsonl"), other).unwrap();
    let data = place.dir.join("data");
    index_ok(&music.join("catalog.jsonl"), &url, &data, &place.dir, &[]);
    index_ok(
        &elsewhere.join("catalog.jsonl"),
        &url,
        &data,
        &place.dir,
        &[],
    );
    // After indexing, the file in the root becomes a symlink to the same bytes outside it.
    std::fs::remove_file(music.join("link.ogg")).unwrap();
    std::os::unix::fs::symlink(outside.join("ballad.ogg"), music.join("link.ogg")).unwrap();
    let s = Server::serve(&place.dir, &url, &data, TOKEN, &music, &[]);
    let (_, page) = s.get("/v1/search?limit=10&copies=all&facets=false");
    let id_of = |ext: &str| -> i64 {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["external_id"] == ext)
            .and_then(|r| r["id"].as_i64())
            .unwrap_or_else(|| panic!("{ext} not indexed: {page}"))
    };
    let audio = |id: i64, headers: &[(&str, &str)]| {
        request(
            &s.addr,
            "GET",
            &format!("/v1/tracks/{id}/audio"),
            headers,
            b"",
        )
    };
    let wav = std::fs::read(music.join("pop_a_major_120.wav")).unwrap();
    let len = wav.len();

    let whole = audio(id_of("wav"), &[]);
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(whole.body, wav);
    assert_eq!(header(&whole, "accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(header(&whole, "content-type").as_deref(), Some("audio/wav"));
    assert!(header(&whole, "etag").is_some());

    let part = audio(id_of("wav"), &[("range", "bytes=100-1123")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &wav[100..1124]);
    assert_eq!(
        header(&part, "content-range"),
        Some(format!("bytes 100-1123/{len}"))
    );
    let tail = audio(id_of("wav"), &[("range", "bytes=-500")]);
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, &wav[len - 500..]);
    assert_eq!(
        header(&tail, "content-range"),
        Some(format!("bytes {}-{}/{len}", len - 500, len - 1))
    );
    let open = audio(id_of("wav"), &[("range", &format!("bytes={}-", len - 10))]);
    assert_eq!((open.status, open.body.as_slice()), (206, &wav[len - 10..]));

    let beyond = audio(id_of("wav"), &[("range", &format!("bytes={len}-"))]);
    check_error((beyond.status, beyond.json()), 416, "range_not_satisfiable");
    assert_eq!(
        header(&beyond, "content-range"),
        Some(format!("bytes */{len}"))
    );

    for (ext, ct) in [("mp3", "audio/mpeg"), ("opus", "audio/ogg")] {
        let r = audio(id_of(ext), &[("range", "bytes=0-99")]);
        assert_eq!((r.status, r.body.len()), (206, 100), "{ext}");
        assert_eq!(header(&r, "content-type").as_deref(), Some(ct));
    }
    // Outside the roots: refused, and the answer names no server path.
    for ext in ["link", "uri"] {
        let r = audio(id_of(ext), &[]);
        check_error((r.status, r.json()), 403, "outside_media_roots");
        assert!(
            !r.text().contains(&place.dir.display().to_string()),
            "{}",
            r.text()
        );
    }
    check_error(s.get("/v1/tracks/987654321/audio"), 404, "unknown_track");
    check_error(s.get("/v1/tracks/abc/audio"), 400, "bad_id");

    // An upload is served from the data folder's uploads/.
    let mp3 = std::fs::read(fx.join("hiphop_g_minor_90.mp3")).unwrap();
    let (ct, body) = multipart(&[
        ("audio", Some("hiphop.mp3"), &mp3),
        (
            "metadata",
            None,
            br#"{"external_id": "up", "title": "Uploaded"}"#,
        ),
    ]);
    let auth = format!("Bearer {TOKEN}");
    let (st, up) = s.send(
        "POST",
        "/v1/tracks",
        &[("content-type", &ct), ("authorization", &auth)],
        &body,
    );
    assert_eq!(st, 201, "{up}");
    let up_id = up["id"].as_i64().unwrap_or_else(|| panic!("{up}"));
    let r = audio(up_id, &[("range", "bytes=0-")]);
    assert_eq!((r.status, r.body == mp3), (206, true));

    // Taken down: gone.
    let (st, v) = take_down(&s, id_of("wav"));
    assert_eq!(st, 200, "{v}");
    check_error(
        s.get(&format!("/v1/tracks/{}/audio", id_of("wav"))),
        410,
        "taken_down",
    );
}

#[test]
fn audio_end_to_end_sqlite() {
    audio_end_to_end("sqlite");
}

#[test]
fn audio_end_to_end_postgres() {
    audio_end_to_end("postgres");
}

/// The README's first command: `motif quickstart` indexes the fixtures, serves them and
/// prints three requests that work as printed (run here with curl, exactly as printed).
#[test]
fn quickstart_examples_work_as_printed() {
    let place = Place::new("quickstart");
    let audio = repo().join("fixtures/audio").display().to_string();
    let s = Server::start(
        &[
            "quickstart",
            &audio,
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            "qs-data",
        ],
        &place.dir,
    );
    let curls: Vec<&String> = s
        .stdout
        .iter()
        .filter(|l| l.trim_start().starts_with("curl "))
        .collect();
    assert_eq!(curls.len(), 3, "three examples: {:?}", s.stdout);
    let mut answers = Vec::new();
    for c in curls {
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("{} -w '\\n%{{http_code}}'", c.trim())])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap();
        assert_eq!(code, "200", "{c}\n{body}");
        let v: Value = serde_json::from_str(body).unwrap();
        let n = v["results"]
            .as_array()
            .or(v["tracks"].as_array())
            .map_or(0, |a| a.len());
        assert!(n > 0, "{c} answered nothing: {v}");
        answers.push(v);
    }
    assert!(place.dir.join("qs-data/motif.db").is_file());
    // Issue 15: no answer plays one recording twice. Every fixture song is there in four
    // or more encodes; each answer's tracks are checked against the others' copies.
    let base = curls_base(&s.stdout);
    for v in &answers {
        let ids: Vec<i64> = match v["results"].as_array() {
            Some(r) => r.iter().map(|h| h["id"].as_i64().unwrap()).collect(),
            None => v["tracks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["track"]["id"].as_i64().unwrap())
                .collect(),
        };
        for &id in &ids {
            let d = get_json(&format!("{base}/tracks/{id}/duplicates"));
            for copy in d["copies"].as_array().unwrap() {
                let other = copy["id"].as_i64().unwrap();
                assert!(
                    !ids.contains(&other),
                    "{id} and its copy {other} in one answer: {v}"
                );
            }
        }
    }
    // Every full-length encode of a song is one recording (the copies of track 1's song
    // and of the first full song are listed with fingerprint evidence).
    let full = get_json(&format!("{base}/search?q=funk&limit=50&copies=all"));
    let funk: Vec<i64> = full["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["duration_s"].as_f64().unwrap() > 10.0)
        .map(|h| h["id"].as_i64().unwrap())
        .collect();
    assert!(funk.len() >= 4, "{full}");
    let d = get_json(&format!("{base}/tracks/{}/duplicates", funk[0]));
    let copies: Vec<i64> = d["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    for other in &funk[1..] {
        assert!(
            copies.contains(other),
            "{other} not a copy of {}: {d}",
            funk[0]
        );
    }
    assert!(d["copies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["evidence"]["by"] == "fingerprint"
            && c["evidence"]["bit_error_rate"].as_f64().unwrap() < 0.25));
    // One copy in the default answer, all of them on request.
    let one = get_json(&format!("{base}/search?q=funk&limit=50"));
    let shown: Vec<&Value> = one["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| funk.contains(&h["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(shown.len(), 1, "{one}");
    assert_eq!(shown[0]["id"], d["shown"], "the documented copy shows: {d}");
}

/// The server's base URL, read from the first printed example.
fn curls_base(stdout: &[String]) -> String {
    let line = stdout
        .iter()
        .find(|l| l.contains("curl -s '"))
        .expect("an example with a URL");
    let url = line.split('\'').nth(1).unwrap();
    url[..url.find("/v1/").unwrap() + 3].to_string()
}

fn get_json(url: &str) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-s", url])
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{url}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}
