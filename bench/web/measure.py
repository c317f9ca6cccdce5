#!/usr/bin/env python3
"""Times the listening room in headless Chromium, through chromedriver (stdlib only).

    measure.py BASE_URL DRIVER_ADDR [RUNS]

Each run is a fresh navigation (about:blank first). Figures come from the browser's own
performance timeline, in ms from the navigation's start:
  - interactive: the page's `motif-interactive` mark (the first view rendered with its
    data: the module graph loaded, the search answered, the DOM built, handlers attached);
    the navigation's domInteractive is printed beside it;
  - map drawn: the `motif-map-drawn` mark on a fresh load of `#/map` (page, /v1/map, canvas).
The first map load of a sample size is drawn cold (the server computes and caches the
projection); later ones reuse the cache. Prints min / median / max per figure.
"""
import json
import statistics
import sys
import time
import urllib.request

BASE, DRIVER = sys.argv[1], sys.argv[2]
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{DRIVER}{path}", data=data, method=method,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium",
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1280,900", "--mute-audio"]}}}}
session = call("POST", "/session", caps)["sessionId"]


def js(script):
    return call("POST", f"/session/{session}/execute/sync", {"script": script, "args": []})


def load(url, mark, limit=60):
    call("POST", f"/session/{session}/url", {"url": "about:blank"})
    call("POST", f"/session/{session}/url", {"url": url})
    start = time.time()
    while time.time() - start < limit:
        v = js(f"const m = performance.getEntriesByName('{mark}'); if (!m.length) return null;"
               " const n = performance.getEntriesByType('navigation')[0];"
               " return [m[0].startTime, n.domInteractive, document.getElementById('map-info')?.textContent || '']")
        if v:
            return v
        time.sleep(0.05)
    raise SystemExit(f"{url}: no {mark} within {limit} s: {js('return document.body.innerText.slice(0, 500)')}")


def report(name, values):
    print(f"{name:<34} min {min(values):7.0f} ms   median {statistics.median(values):7.0f} ms   max {max(values):7.0f} ms   (n={len(values)})")


try:
    interactive, dom = [], []
    for _ in range(RUNS):
        t, d, _ = load(f"{BASE}/#/search", "motif-interactive")
        interactive.append(t)
        dom.append(d)
    report("page interactive (search view)", interactive)
    report("  navigation domInteractive", dom)
    for sample in (5000, 20000):
        url = f"{BASE}/#/map?sample={sample}&color=energy"
        cold, _, text = load(url, "motif-map-drawn")
        warm = [load(url, "motif-map-drawn")[0] for _ in range(RUNS)]
        print(f"map {sample}: {text}")
        report(f"map drawn, {sample} points, cold", [cold])
        report(f"map drawn, {sample} points, cached", warm)
finally:
    call("DELETE", f"/session/{session}")
