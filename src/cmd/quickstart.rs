//! `motif quickstart [MUSIC_DIR]`: the whole loop on the embedded default. Indexes the
//! bundled fixtures (or a folder) into a local SQLite data folder, starts the server on
//! 127.0.0.1 and prints three example requests that work as printed.

use std::path::PathBuf;
use std::process::ExitCode;

use indexer::pipeline::{self, Options};

use super::serve;
use super::store::StoreArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Folder of audio to index (default: the bundled fixtures, `fixtures/audio`).
    pub music: Option<PathBuf>,
    /// Data folder (SQLite database and indexes).
    #[arg(long, default_value = "motif-quickstart")]
    pub data_dir: PathBuf,
    /// Address to serve on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub bind: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let music = args
        .music
        .clone()
        .unwrap_or_else(|| PathBuf::from("fixtures/audio"));
    anyhow::ensure!(
        music.is_dir(),
        "{} is not a folder (run from the repository root for the bundled fixtures, or give a music folder)",
        music.display()
    );
    let store = StoreArgs {
        database: None,
        data_dir: args.data_dir.clone(),
    };
    let token = blake3::hash(
        format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes(),
    )
    .to_hex()[..24]
        .to_string();
    let serve_args = serve::Args {
        store: store.clone(),
        vectors: Default::default(),
        replica: None,
        bind: args.bind.clone(),
        token: Some(token.clone()),
        ingest_root: Some(music.clone()),
        media_roots: Vec::new(),
        workers: 2,
        refresh_ms: 1000,
        limits: serve::LimitArgs::default(),
    };
    let config = serve_args.config()?;
    api::http::block_on(async move {
        let catalog = store.open().await?;
        eprintln!("motif: indexing {} ...", music.display());
        let summary = pipeline::run(&catalog, &store.data_dir, &music, &Options::default()).await?;
        let c = &summary.counts;
        eprintln!(
            "motif: {} seen, {} new, {} updated, {} unchanged, {} failed ({:.1} s)",
            c.seen, c.new, c.updated, c.unchanged, c.failed, summary.elapsed_s
        );
        catalog.close().await;
        let engine = serve::open_engine(&store, Default::default()).await?;
        serve::serve(engine, config, &args.bind, |addr, engine| {
            print_examples(addr, engine, &token, &store.data_dir)
        })
        .await
    })
}

/// Prints three requests built from the catalogue just indexed.
fn print_examples(
    addr: std::net::SocketAddr,
    engine: &api::Engine,
    token: &str,
    data_dir: &std::path::Path,
) {
    let base = format!("http://{addr}/v1");
    let seed = engine
        .with_indexes(|ix| Ok(ix.vectors.track_ids().min()))
        .ok()
        .flatten();
    let Some(seed) = seed else {
        println!("Motif is serving an empty catalogue at {base} (no audio went in).");
        return;
    };
    let card = engine.cards(&[seed]).ok().and_then(|mut c| c.pop());
    let word = card
        .as_ref()
        .and_then(|c| c.title.clone().or_else(|| c.artists.first().cloned()))
        .and_then(|t| {
            t.split(|ch: char| !ch.is_alphanumeric())
                .find(|w| w.len() >= 3)
                .map(str::to_lowercase)
        })
        .unwrap_or_else(|| "music".into());
    let tempo = card.as_ref().map_or(120.0, |c| c.attributes[0]).max(40.0);
    let (lo, hi) = ((tempo * 0.75).floor(), (tempo * 1.35).ceil());
    let tracks = engine.with_indexes(|ix| Ok(ix.vectors.len())).unwrap_or(0);
    println!(
        "Motif is serving {tracks} tracks at {base} (data in {}, SQLite). Try:\n",
        data_dir.display()
    );
    println!("  # more like track {seed}, with reasons");
    println!("  curl -s '{base}/tracks/{seed}/similar?limit=5'\n");
    println!("  # hybrid: the text \"{word}\" fused with the sound of track {seed}");
    println!(
        "  curl -s -X POST '{base}/search/hybrid' -H 'content-type: application/json' -d '{{\"q\": \"{word}\", \"like\": [{seed}], \"limit\": 5, \"explain\": true}}'\n"
    );
    println!("  # a 5-track harmonic playlist between {lo} and {hi} BPM, no artist twice in a row");
    println!(
        "  curl -s -X POST '{base}/playlists' -H 'content-type: application/json' -d '{{\"filters\": {{\"ranges\": {{\"tempo_bpm\": {{\"min\": {lo}, \"max\": {hi}}}}}}}, \"size\": 5, \"artist_gap\": 1, \"order\": \"harmonic\", \"seed\": 7}}'\n"
    );
    println!("Write token (POST /v1/tracks, DELETE /v1/tracks/{{id}}, POST /v1/ingest): {token}");
    println!("Listen in a browser: http://{addr}/ (search, play, playlists, the map).");
    println!("Everything else: {base}/openapi.json. Ctrl-C stops the server.");
}
