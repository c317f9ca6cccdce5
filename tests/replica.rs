//! Read replicas with real parts on one machine: a second Postgres cluster started here as
//! a streaming replica of the test cluster (`pg_basebackup -R` into a temp folder, another
//! port), one `motif serve` on the primary and two on the replica (each with its own data
//! folder): once caught up, the replica-backed servers answer exactly as the primary-backed
//! one, report their replica lag and index lag, and follow a later delivery.
//!
//! The test cluster must accept local replication connections (`host replication all
//! 127.0.0.1/32 trust` in pg_hba.conf; `.ci/run` adds it) and have `wal_level` replica or
//! higher (Postgres 15's default). Run as root, the replica is run as the `postgres` user.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const TOKEN: &str = "replica-token";
const BIN: &str = "/usr/lib/postgresql/15/bin";

fn pg_bin(name: &str) -> PathBuf {
    let from_env = std::env::var("MOTIF_PG_BIN").map(PathBuf::from);
    from_env.unwrap_or_else(|_| PathBuf::from(BIN)).join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args` as the `postgres` user when we are root (Postgres refuses root).
fn as_pg(program: &Path, args: &[&str]) -> std::process::Output {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    c.args(args).output().expect("run a Postgres tool")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A streaming replica of the test cluster in a temp folder; stopped and removed on drop.
struct Replica {
    dir: PathBuf,
    port: u16,
}

impl Replica {
    fn start() -> Replica {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("motif-replica-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let out = Command::new("chown")
                .args(["postgres:postgres", &dir.display().to_string()])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let admin = admin_url();
        let rest = admin.split_once("://").unwrap().1;
        let (user, hostport) = rest.split('/').next().unwrap().split_once('@').unwrap();
        let (host, primary_port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
        let data = dir.join("data").display().to_string();
        let out = as_pg(
            &pg_bin("pg_basebackup"),
            &[
                "-h",
                host,
                "-p",
                primary_port,
                "-U",
                user,
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        assert!(
            out.status.success(),
            "pg_basebackup (the test cluster must allow local replication connections, see \
             .ci/run): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Debian keeps postgresql.conf and pg_hba.conf outside the data folder, so a base
        // backup has neither: the replica gets its own (options come on the command line).
        let conf = dir.join("data");
        let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n";
        for (name, text) in [
            ("postgresql.conf", ""),
            ("pg_hba.conf", hba),
            ("pg_ident.conf", ""),
        ] {
            if !conf.join(name).exists() {
                std::fs::write(conf.join(name), text).unwrap();
            }
        }
        if is_root() {
            let out = Command::new("chown")
                .args(["-R", "postgres:postgres", &dir.display().to_string()])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c hot_standby=on -c hot_standby_feedback=on",
            dir.display()
        );
        let log = dir.join("log").display().to_string();
        let out = as_pg(
            &pg_bin("pg_ctl"),
            &[
                "-D", &data, "-o", &opts, "-l", &log, "-w", "-t", "60", "start",
            ],
        );
        assert!(
            out.status.success(),
            "starting the replica: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        Replica { dir, port }
    }

    /// The replica's URL for the primary's database `url`.
    fn url_of(&self, url: &str) -> String {
        let db = url.rsplit('/').next().unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Waits until the replica has replayed everything the primary wrote so far.
    fn catch_up(&self) {
        let target = psql_value(&admin_url(), "SELECT pg_current_wal_lsn()");
        let replica = self.url_of(&admin_url());
        let caught = eventually(Duration::from_secs(120), || {
            let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
            psql_value(&replica, &sql) == "t"
        });
        assert!(caught.is_some(), "the replica caught up with {target}");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = as_pg(&pg_bin("pg_ctl"), &["-D", &data, "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn psql_value(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-Atc", sql])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A delivery manifest of `songs` fixture songs (external ids prefixed `prefix`).
fn manifest(dir: &Path, name: &str, prefix: &str, songs: &[String]) -> PathBuf {
    let mut text = String::new();
    for (i, f) in songs.iter().enumerate() {
        let line = serde_json::json!({
            "external_id": format!("{prefix}-{i}"),
            "path": format!("music/{f}"),
            "title": format!("{prefix} song {i}"),
            "artists": [format!("Artist {}", i % 4)],
            "tags": [format!("mood:m{}", i % 3)],
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The answers compared between servers: a page of search, tags, and each track's
/// "more like this" (plans stripped of timings).
fn answers(s: &Server, ids: &[i64]) -> Vec<Value> {
    let mut out = Vec::new();
    for path in ["/v1/search?q=song&limit=50", "/v1/tags?limit=100"] {
        let (status, v) = s.get(path);
        assert_eq!(status, 200, "{path}: {v}");
        out.push(strip_times(v));
    }
    for id in ids {
        let (status, v) = s.get(&format!("/v1/tracks/{id}/similar?limit=10"));
        assert_eq!(status, 200, "{v}");
        out.push(strip_times(v));
    }
    out
}

/// Removes fields that measure time (they differ between any two calls).
fn strip_times(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("_ms") && !k.ends_with("_us") && k != "took");
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// The server's indexes reflect the primary's last change and health says so.
fn caught_up(s: &Server, primary_seq: i64) -> bool {
    let (status, h) = s.get("/v1/health");
    status == 200 && h["index_seq"] == primary_seq && h["lag"] == 0
}

#[test]
fn replica_backed_servers_answer_as_the_primary_does() {
    let replica = Replica::start();
    let mut place = Place::new("replica");
    let url = place.database("postgres");
    std::fs::create_dir_all(place.dir.join("music")).unwrap();
    let mut songs: Vec<String> = std::fs::read_dir(repo().join("fixtures/audio"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    songs.sort();
    for f in &songs {
        std::fs::copy(
            repo().join("fixtures/audio").join(f),
            place.dir.join("music").join(f),
        )
        .unwrap();
    }
    let first = manifest(&place.dir, "first.jsonl", "a", &songs[..20]);
    index_ok(&first, &url, &place.dir.join("index-data"), &place.dir, &[]);
    replica.catch_up();

    let rurl = replica.url_of(&url);
    let music = place.dir.join("music");
    let primary = Server::serve(&place.dir, &url, &place.dir.join("p"), TOKEN, &music, &[]);
    let on_replica: Vec<Server> = ["r1", "r2"]
        .iter()
        .map(|d| {
            Server::serve(
                &place.dir,
                &url,
                &place.dir.join(d),
                TOKEN,
                &music,
                &["--replica", &rurl],
            )
        })
        .collect();

    let seq: i64 = psql_value(&url, "SELECT MAX(change_seq) FROM tracks")
        .parse()
        .unwrap();
    for s in std::iter::once(&primary).chain(&on_replica) {
        assert!(
            eventually(Duration::from_secs(60), || caught_up(s, seq)).is_some(),
            "{:?}",
            s.get("/v1/health")
        );
    }
    let (_, h) = on_replica[0].get("/v1/health");
    assert_eq!(h["replica"]["in_recovery"], true, "{h}");
    assert!(h["replica"]["lag_bytes"].as_i64().is_some(), "{h}");
    assert!(h["replica"]["lag_seconds"].as_f64().is_some(), "{h}");
    let (_, h) = primary.get("/v1/health");
    assert!(h["replica"].is_null(), "{h}");

    let ids: Vec<i64> = psql_value(
        &url,
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tracks",
    )
    .split(',')
    .map(|x| x.parse().unwrap())
    .collect();
    let want = answers(&primary, &ids);
    assert!(want[0]["results"].as_array().is_some_and(|r| !r.is_empty()));
    for s in &on_replica {
        assert_eq!(
            answers(s, &ids),
            want,
            "a replica-backed server answers as the primary"
        );
    }

    // A later delivery (and a takedown) reaches the replica servers through the replica.
    let second = manifest(&place.dir, "second.jsonl", "b", &songs[20..]);
    index_ok(
        &second,
        &url,
        &place.dir.join("index-data"),
        &place.dir,
        &[],
    );
    std::fs::write(
        place.dir.join("down.jsonl"),
        r#"{"op": "delete", "external_id": "a-3"}"#,
    )
    .unwrap();
    index_ok(
        &place.dir.join("down.jsonl"),
        &url,
        &place.dir.join("index-data"),
        &place.dir,
        &[],
    );
    let seq: i64 = psql_value(&url, "SELECT MAX(change_seq) FROM tracks")
        .parse()
        .unwrap();
    for s in std::iter::once(&primary).chain(&on_replica) {
        assert!(
            eventually(Duration::from_secs(60), || caught_up(s, seq)).is_some(),
            "{:?}",
            s.get("/v1/health")
        );
    }
    let ids: Vec<i64> = psql_value(
        &url,
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM tracks WHERE status = 'active'",
    )
    .split(',')
    .map(|x| x.parse().unwrap())
    .collect();
    assert_eq!(ids.len(), songs.len() - 1);
    let want = answers(&primary, &ids);
    for s in &on_replica {
        assert_eq!(answers(s, &ids), want, "and still after catching up again");
    }
}

/// `--replica` refuses a store that is not a replica of the primary's schema, clearly.
#[test]
fn a_replica_without_the_schema_is_refused() {
    let mut place = Place::new("replica-bad");
    let url = place.database("postgres");
    let other = place.database("postgres"); // empty: no migrations
    let out = motif(
        &[
            "serve",
            "--database",
            &url,
            "--replica",
            &other,
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            &place.dir.join("d").display().to_string(),
        ],
        &place.dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migrations"), "{err}");
}
