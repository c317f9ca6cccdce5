//! The listening room in a real browser: `motif serve` on the indexed fixtures, headless
//! Debian Chromium driven over WebDriver (`chromedriver`). The page is opened at `/`, a
//! search is run and narrowed by a facet, a track plays (the audio element's clock moves),
//! its page shows "more like this" with reasons, a 3-track playlist with a tempo range in
//! harmonic order is built and played, a song path is walked, the map is drawn,
//! hovered and clicked, and a takedown is refused without the token (the API's message
//! shown) and done with it. Fails (never skips) when chromedriver or chromium is missing.
//!
//! With `MOTIF_SCREENSHOTS=DIR` it saves a PNG of each view there (the README's come
//! from `MOTIF_SCREENSHOTS=docs/screens cargo test --release --test browser`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::webdriver::{Driver, Session};
use common::*;
use serde_json::json;

const ARTISTS: [&str; 5] = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"];
const WAIT: Duration = Duration::from_secs(30);

/// The top-level fixture songs under `music/` with a manifest (titles, five artists in
/// turn, genre from the file name), indexed into a SQLite store, then served.
fn serve_fixtures(place: &mut Place) -> Server {
    let url = place.database("sqlite");
    let music = place.dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(repo().join("fixtures/audio"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut manifest = String::new();
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(repo().join("fixtures/audio").join(f), music.join(f)).unwrap();
        let genre = f.split('_').next().unwrap();
        let line = json!({"op": "upsert", "external_id": format!("fx-{f}"), "path": f,
            "title": format!("{genre} song {i}"), "artists": [ARTISTS[i % 5]], "genre": genre});
        manifest.push_str(&format!("{line}\n"));
    }
    std::fs::write(music.join("catalog.jsonl"), manifest).unwrap();
    let data = place.dir.join("data");
    index_ok(&music.join("catalog.jsonl"), &url, &data, &place.dir, &[]);
    Server::serve(&place.dir, &url, &data, "browser-token", &music, &[])
}

fn screenshot(s: &Session, name: &str) {
    if let Some(dir) = std::env::var_os("MOTIF_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        s.screenshot(&dir.join(format!("{name}.png")));
    }
}

/// Waits until the current view has rendered (`main[data-ready=name]`).
fn ready(s: &Session, name: &str) {
    s.wait_for(
        &format!("the {name} view"),
        WAIT,
        &format!("return document.getElementById('view').dataset.ready === '{name}'"),
    );
}

/// Track ids of the search results the page shows.
fn shown_ids(s: &Session) -> Vec<i64> {
    let v = s.js(
        "return [...document.querySelectorAll('#results .track')].map(e => Number(e.dataset.id))",
        json!([]),
    );
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// Track ids the API answers for a search (the page asks for 25).
fn api_ids(server: &Server, query: &str) -> Vec<i64> {
    let (st, v) = server.get(&format!("/v1/search?{query}&limit=25"));
    assert_eq!(st, 200, "{v}");
    ids(&v, "results")
}

/// Waits until the player is playing and its clock has passed half a second.
fn plays(s: &Session, what: &str) -> f64 {
    s.wait_for(
        &format!("{what} to play"),
        WAIT,
        "const a = document.getElementById('player'); return a.currentTime > 0.5 && !a.paused && a.currentTime",
    )
    .as_f64()
    .unwrap()
}

#[test]
fn the_page_in_a_real_browser() {
    let driver = Driver::start();
    let mut place = Place::new("browser");
    let server = serve_fixtures(&mut place);
    let base = format!("http://{}", server.addr);
    let s = driver.session();

    // Search, with suggestions, then narrowed by a facet.
    s.goto(&format!("{base}/"));
    ready(&s, "search");
    let q = s.find("#q");
    q.keys("gen");
    s.wait_for(
        "suggestions",
        WAIT,
        "return [...document.querySelectorAll('#suggestions li')].some(li => li.textContent === 'genre:')",
    );
    q.clear();
    q.keys("song\u{E007}");
    s.wait_for("search results", WAIT, "return location.hash.includes('q=song') && document.querySelectorAll('#results .track').length");
    ready(&s, "search");
    assert_eq!(shown_ids(&s), api_ids(&server, "q=song"));
    s.find("#facets .chip[data-tag='genre:rock']").click();
    s.wait_for(
        "the facet filter",
        WAIT,
        "return location.hash.includes('tags=genre%3Arock')",
    );
    ready(&s, "search");
    let rock = api_ids(&server, "q=song&tags=genre%3Arock");
    assert!(!rock.is_empty());
    assert_eq!(
        shown_ids(&s),
        rock,
        "the page shows what the API answers under the facet"
    );
    // A tempo range slider narrows further.
    s.js(
        "const i = document.querySelector(\"[data-range='tempo_bpm_min']\"); i.value = 100; i.dispatchEvent(new Event('change'));",
        json!([]),
    );
    s.wait_for(
        "the slider",
        WAIT,
        "return location.hash.includes('tempo_bpm_min=100')",
    );
    ready(&s, "search");
    assert_eq!(
        shown_ids(&s),
        api_ids(&server, "q=song&tags=genre%3Arock&tempo_bpm_min=100")
    );
    screenshot(&s, "search");

    // Play the first result: the audio element's clock moves.
    s.find("#results .track .play").click();
    let t = plays(&s, "the first result");
    assert!(t > 0.5);

    // Its track page: attributes, tags, "more like this" with reasons, each playable.
    s.find("#results .track .title").click();
    ready(&s, "track");
    let similar = s.wait_for(
        "more like this",
        WAIT,
        "return document.querySelectorAll('#similar .track').length",
    );
    assert!(similar.as_u64().unwrap() >= 3, "{similar}");
    let reasons = s.js(
        "return [...document.querySelectorAll('#similar .why')].map(e => e.textContent)",
        json!([]),
    );
    assert!(
        reasons
            .as_array()
            .is_some_and(|r| !r.is_empty() && r.iter().all(|x| !x.as_str().unwrap().is_empty())),
        "no reasons: {reasons}"
    );
    let bars = s.js(
        "return document.querySelectorAll('#attributes .bar').length",
        json!([]),
    );
    assert!(bars.as_u64().unwrap() >= 5, "{bars}");
    assert_eq!(
        s.js("return !!document.getElementById('tempo-curve')", json!([])),
        json!(true)
    );
    let similar_id = s.js(
        "return document.querySelector('#similar .track').dataset.id",
        json!([]),
    );
    s.find("#similar .track .play").click();
    s.wait_for(
        "the similar track to be the one playing",
        WAIT,
        &format!("return document.getElementById('now-playing').dataset.id === {similar_id}"),
    );
    plays(&s, "a similar track");
    screenshot(&s, "track");

    // A 3-track playlist, tempo 80-130 BPM, harmonic order.
    s.goto(&format!("{base}/#/playlist"));
    ready(&s, "playlist");
    s.find("#pl-tempo-min").keys("80");
    s.find("#pl-tempo-max").keys("130");
    let size = s.find("#pl-size");
    size.clear();
    size.keys("3");
    s.js(
        "const o = document.getElementById('pl-order'); o.value = 'harmonic';",
        json!([]),
    );
    s.find("#pl-build").click();
    s.wait_for(
        "the playlist",
        WAIT,
        "return document.querySelectorAll('#pl-tracks .track').length === 3",
    );
    let tempos = s.js(
        "return [...document.querySelectorAll('#pl-tracks .track .meta')].map(m => (m.textContent.match(/(\\d+) BPM/) || [])[1]).filter(Boolean).map(Number)",
        json!([]),
    );
    let tempos: Vec<f64> = tempos
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(tempos.len(), 3, "{tempos:?}");
    assert!(
        tempos.iter().all(|t| (80.0..=130.0).contains(t)),
        "{tempos:?}"
    );
    let transitions = s.js(
        "return document.querySelectorAll('#pl-tracks .transition').length",
        json!([]),
    );
    assert_eq!(transitions, json!(2));
    // Each transition names the tempo where one track ends and the next starts.
    let steps = s.js(
        "return [...document.querySelectorAll('#pl-tracks .transition')].map(t => /\\d+ → \\d+ BPM/.test(t.textContent))",
        json!([]),
    );
    assert_eq!(steps, json!([true, true]), "{steps}");
    let heading = s.js(
        "return document.querySelector('#playlist b').textContent",
        json!([]),
    );
    assert!(heading.as_str().unwrap().contains("harmonic"), "{heading}");
    s.find("#pl-play").click();
    plays(&s, "the playlist");
    screenshot(&s, "playlist");

    // A song path between the first and last fixture tracks.
    let (_, page) = server.get("/v1/search?q=song&limit=50&facets=false");
    let ids = ids(&page, "results");
    let (from, to) = (ids[0], ids[ids.len() - 1]);
    s.goto(&format!("{base}/#/path?from={from}&to={to}&steps=5"));
    ready(&s, "path");
    let steps = s.wait_for(
        "the path",
        WAIT,
        "return document.querySelectorAll('#path .track').length",
    );
    assert!(steps.as_u64().unwrap() >= 2, "{steps}");

    // The map: drawn, a point hovered (its title shows) and clicked (it plays).
    s.goto(&format!("{base}/#/map"));
    ready(&s, "map");
    let drawn = s.wait_for(
        "the map",
        WAIT,
        "return Number(document.getElementById('map-canvas').dataset.drawn)",
    );
    assert!(drawn.as_u64().unwrap() >= 10, "{drawn}");
    let spot = s.js(
        "const m = window.motifMap, c = m.canvas; const [x, y] = m.screenOf(0); return [Math.round(x - c.clientWidth / 2), Math.round(y - c.clientHeight / 2), m.m.points.id[0]]",
        json!([]),
    );
    let (dx, dy, id) = (
        spot[0].as_i64().unwrap(),
        spot[1].as_i64().unwrap(),
        spot[2].as_i64().unwrap(),
    );
    let canvas = s.find("#map-canvas");
    s.pointer(&canvas, dx, dy, false);
    s.wait_for("the hover card", WAIT, "const t = document.getElementById('map-tip'); return t.style.display === 'block' && t.textContent.includes('song')");
    screenshot(&s, "map");
    s.pointer(&canvas, dx, dy, true);
    s.wait_for(
        "the clicked point to play",
        WAIT,
        &format!("return document.getElementById('now-playing').dataset.id === '{id}'"),
    );
    plays(&s, "the map's point");

    // Writes: without the token, the API's own error is shown.
    s.goto(&format!("{base}/#/admin"));
    ready(&s, "admin");
    s.find("#takedown-id").keys(&from.to_string());
    s.find("#takedown-go").click();
    let err = s.wait_for(
        "the API's error",
        WAIT,
        "return document.querySelector('#admin-out .error')?.textContent",
    );
    assert!(err.as_str().unwrap().starts_with("no_token:"), "{err}");
    screenshot(&s, "admin");
    // With the token the takedown goes through, and the track's audio is gone.
    s.find("#token").keys("browser-token");
    s.find("#takedown-go").click();
    let done = s.wait_for(
        "the takedown",
        WAIT,
        "return document.querySelector('#admin-out pre')?.textContent",
    );
    assert!(done.as_str().unwrap().contains("taken_down"), "{done}");
    let gone = request(
        &server.addr,
        "GET",
        &format!("/v1/tracks/{from}/audio"),
        &[],
        b"",
    );
    assert_eq!(gone.status, 410);
}
