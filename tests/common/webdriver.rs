//! A small W3C WebDriver client over a raw HTTP/1.1 socket, like the API tests: enough
//! to drive headless Chromium through `chromedriver` (sessions, navigation, elements,
//! clicks, keys, pointer actions, scripts, screenshots). A crate (fantoccini, thirtyfour)
//! would bring hyper, a TLS stack and their build time for the dozen calls used here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use std::io::{BufRead, BufReader, Read, Write};

/// Where Debian's `chromium-driver` and `chromium` put their programs.
pub fn find_program(name: &str, fallback: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    from_path.or_else(|| Some(PathBuf::from(fallback)).filter(|p| p.is_file()))
}

/// A running `chromedriver`, killed on drop.
pub struct Driver {
    child: Child,
    pub addr: String,
}

impl Driver {
    /// Starts chromedriver on a free port. Panics (the test fails, it is not skipped) when
    /// chromedriver or chromium is missing: CI installs both (`.ci/run`).
    pub fn start() -> Driver {
        let driver = find_program("chromedriver", "/usr/bin/chromedriver").expect(
            "chromedriver is missing: apt-get install chromium chromium-driver (.ci/run does)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Driver {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let up = std::net::TcpStream::connect(&d.addr).is_ok()
                && exchange(&d.addr, "GET", "/status", "").1["value"]["ready"] == json!(true);
            if up {
                return d;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not become ready on {}", d.addr);
    }

    /// A new headless Chromium session with a 1280x900 window.
    pub fn session(&self) -> Session {
        let browser = find_program("chromium", "/usr/bin/chromium")
            .expect("chromium is missing: apt-get install chromium chromium-driver");
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--mute-audio",
                         "--autoplay-policy=no-user-gesture-required"],
            },
        } } });
        let v = call(&self.addr, "POST", "/session", Some(&caps));
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Session {
            driver: self.addr.clone(),
            id,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver command; an answer carrying an error panics with it.
fn call(addr: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, v) = exchange(addr, method, path, &body);
    assert!(status == 200, "WebDriver {method} {path} -> {status}: {v}");
    v
}

/// One HTTP/1.1 request, its answer read to its `Content-Length` (chromedriver keeps
/// connections open whatever the request says, so reading to the end would wait).
fn exchange(addr: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header line");
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).expect("WebDriver answer body");
    (status, serde_json::from_slice(&buf).unwrap_or(Value::Null))
}

/// A browser session, deleted (the browser closed) on drop.
pub struct Session {
    driver: String,
    id: String,
}

/// The W3C key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Session {
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.id);
        call(&self.driver, method, &p, body.as_ref())["value"].clone()
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Polls `script` until it returns something truthy (not false/null/0/""), or panics
    /// after `limit` with `what`.
    pub fn wait_for(&self, what: &str, limit: Duration, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(script, json!([]));
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if start.elapsed() > limit {
                let page = self.js(
                    "return document.getElementById('view')?.innerText.slice(0, 2000)",
                    json!([]),
                );
                panic!("waited {limit:?} for {what}; the page shows: {page}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element a CSS selector finds (panics when there is none).
    pub fn find(&self, css: &str) -> Element<'_> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        Element {
            session: self,
            id: v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {v}"))
                .to_string(),
        }
    }

    /// Moves the pointer to (x, y) CSS pixels from `el`'s centre, and clicks there when
    /// `click`.
    pub fn pointer(&self, el: &Element<'_>, x: i64, y: i64, click: bool) {
        let mut actions = vec![
            json!({ "type": "pointerMove", "duration": 0, "x": x, "y": y,
            "origin": { ELEMENT: el.id } }),
        ];
        if click {
            actions.push(json!({ "type": "pointerDown", "button": 0 }));
            actions.push(json!({ "type": "pointerUp", "button": 0 }));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "pointer", "id": "mouse",
                "parameters": { "pointerType": "mouse" }, "actions": actions }] })),
        );
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("screenshot data"));
        std::fs::write(path, png).expect("write the screenshot");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let p = format!("/session/{}", self.id);
        let _ = std::panic::catch_unwind(|| call(&self.driver, "DELETE", &p, None));
    }
}

/// An element of the page.
pub struct Element<'s> {
    session: &'s Session,
    id: String,
}

impl Element<'_> {
    /// Scrolls the element to the middle of the window (out from under the page's fixed
    /// player bar, where WebDriver's own scrolling would leave it), then clicks it.
    pub fn click(&self) {
        self.session.js(
            "arguments[0].scrollIntoView({ block: 'center' })",
            json!([{ ELEMENT: self.id }]),
        );
        self.session.cmd(
            "POST",
            &format!("/element/{}/click", self.id),
            Some(json!({})),
        );
    }

    pub fn clear(&self) {
        self.session.cmd(
            "POST",
            &format!("/element/{}/clear", self.id),
            Some(json!({})),
        );
    }

    /// Types `text` (`\u{E007}` is Enter).
    pub fn keys(&self, text: &str) {
        self.session.cmd(
            "POST",
            &format!("/element/{}/value", self.id),
            Some(json!({ "text": text })),
        );
    }
}

/// Standard base64 (WebDriver screenshots).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = s.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, d| (acc << 6) | d) << (6 * (4 - chunk.len()));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}
