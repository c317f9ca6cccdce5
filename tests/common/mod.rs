//! Shared helpers for the end-to-end tests: temp folders with their own Postgres
//! databases, the real `motif` binary, a running server, and a small HTTP/1.1 client over
//! a real TCP socket (no mocks, no client library).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod webdriver;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn admin_url() -> String {
    std::env::var("MOTIF_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([&admin_url(), "-qc", sql])
        .output()
        .expect("psql (Postgres client) must be installed");
    assert!(
        out.status.success(),
        "Postgres must be reachable at {}: {}",
        admin_url(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temp folder and (for Postgres) databases of its own; removed on drop.
pub struct Place {
    pub dir: PathBuf,
    dbs: Vec<String>,
}

impl Place {
    pub fn new(tag: &str) -> Place {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("motif-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Place {
            dir,
            dbs: Vec::new(),
        }
    }

    /// A database URL for a fresh store: a SQLite file in the folder, or a new Postgres
    /// database.
    pub fn database(&mut self, backend: &str) -> String {
        self.database_named(backend, "catalog")
    }

    /// [`database`](Self::database) for a place holding several stores: a SQLite store is
    /// the file `NAME.db`; every Postgres one is a database of its own anyway.
    pub fn database_named(&mut self, backend: &str, name: &str) -> String {
        if backend == "sqlite" {
            return self.dir.join(format!("{name}.db")).display().to_string();
        }
        let db = format!(
            "motif_e_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        psql(&format!("DROP DATABASE IF EXISTS {db}"));
        psql(&format!("CREATE DATABASE {db}"));
        self.dbs.push(db.clone());
        let admin = admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        format!("{base}/{db}")
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for db in &self.dbs {
            let _ = Command::new("psql")
                .args([
                    &admin_url(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

pub fn motif_cmd(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_motif"));
    c.current_dir(cwd)
        .env_remove("MOTIF_DATABASE_URL")
        .env_remove("MOTIF_DATA_DIR")
        .env_remove("MOTIF_API_TOKEN")
        .env_remove("MOTIF_BIND");
    c
}

pub fn motif(args: &[&str], cwd: &Path) -> Output {
    motif_cmd(cwd).args(args).output().expect("run motif")
}

/// `motif index INPUT --database URL --data-dir DIR EXTRA...`, which must succeed.
pub fn index_ok(input: &Path, url: &str, data_dir: &Path, cwd: &Path, extra: &[&str]) -> Output {
    let (input, data_dir) = (input.display().to_string(), data_dir.display().to_string());
    let mut args = vec!["index", &input, "--database", url, "--data-dir", &data_dir];
    args.extend_from_slice(extra);
    let out = motif(&args, cwd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A `motif serve` (or `quickstart`) child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Lines the server printed on stdout before it was ready (quickstart's examples).
    pub stdout: Vec<String>,
}

impl Server {
    /// Starts `motif ARGS` and waits (up to 10 minutes: quickstart indexes first) for the
    /// "serving http://ADDR/v1" line on stderr.
    pub fn start(args: &[&str], cwd: &Path) -> Server {
        let mut child = motif_cmd(cwd)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start motif");
        let stderr = child.stderr.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let addr = rest.split('/').next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let (otx, orx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = otx.send(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {:?}",
                    child.wait_with_output().map(|o| o.status)
                );
            }
        };
        let mut server = Server {
            child,
            addr,
            stdout: Vec::new(),
        };
        server.wait_ready();
        // Give a quickstart a moment to print its examples.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(l) = orx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let last = l.starts_with("Everything else");
            server.stdout.push(l);
            if last {
                break;
            }
        }
        server
    }

    /// `motif serve` on `url` with its own data folder, a write token, an ingest root,
    /// a 200 ms refresh and any `extra` flags, on a free port.
    pub fn serve(
        cwd: &Path,
        url: &str,
        data_dir: &Path,
        token: &str,
        ingest_root: &Path,
        extra: &[&str],
    ) -> Server {
        let (d, root) = (
            data_dir.display().to_string(),
            ingest_root.display().to_string(),
        );
        let mut args = vec![
            "serve",
            "--database",
            url,
            "--data-dir",
            &d,
            "--bind",
            "127.0.0.1:0",
            "--token",
            token,
            "--ingest-root",
            &root,
            "--refresh-ms",
            "200",
        ];
        args.extend_from_slice(extra);
        Server::start(&args, cwd)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) =
                std::panic::catch_unwind(|| request(&self.addr, "GET", "/v1/health", &[], b""))
            {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server at {} never answered /v1/health", self.addr);
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = request(&self.addr, "GET", path, &[], b"");
        (r.status, r.json())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = request(
            &self.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        );
        (r.status, r.json())
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Value) {
        let r = request(&self.addr, method, path, headers, body);
        (r.status, r.json())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP answer.
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// A multipart/form-data body: (field, file name or None for text, bytes).
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "motif-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, filename, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes()),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Polls `f` every 100 ms until it returns true or `limit` passes; returns the time taken.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

pub fn ids(v: &Value, key: &str) -> Vec<i64> {
    v[key]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_i64()).collect())
        .unwrap_or_default()
}
