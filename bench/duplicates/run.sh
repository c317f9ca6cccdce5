#!/usr/bin/env bash
# Acoustic duplicates (issue 15): how many copies of a recording Motif finds, and how many
# distinct recordings it wrongly merges, on a constructed set.
#
#   bash bench/duplicates/run.sh CORPUS OUT [N]
#
# Takes N files of CORPUS/music.tsv (default: all; otherwise every k-th line, so every
# soundtrack is in) and makes five copies of each with ffmpeg under OUT (outside the repo):
# MP3 128k, MP3 320k, Opus 64k, AAC 128k and FLAC, each trimmed by 0-5 s at the start or
# the end and changed in gain by -3..+3 dB (a seeded draw per copy, written to plan.tsv).
# Originals, copies and the fixtures' full-length songs (7 songs, 4 encodes each, several
# sharing key or tempo) go into one catalogue with the release `motif index` (SQLite, a
# manifest); `motif serve` then answers `GET /v1/tracks/{id}/duplicates` for every track.
# Printed: per kind of copy, the share found in its original's recording (recall); the
# false merges (two originals, two fixture songs, or a copy with another original, in one
# recording), with the hard negatives counted (other tracks of the same soundtrack are
# all in the catalogue); and the index run's time. Needs ffmpeg and curl.
set -euo pipefail
corpus=${1:?usage: run.sh CORPUS OUT [N]}
out=${2:?usage: run.sh CORPUS OUT [N]}
n=${3:-0}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in "$repo"/*) echo "OUT must be outside the repo" >&2; exit 1;; esac
corpus=$(cd "$corpus" && pwd)
mkdir -p "$out/audio"
python3 - "$corpus" "$out" "$n" "$repo" <<'PY'
import json, os, random, subprocess, sys
corpus, out, n, repo = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = [l.rstrip("\n").split("\t") for l in open(os.path.join(corpus, "music.tsv")) if "\t" in l]
if n and n < len(lines):
    step = len(lines) // n
    lines = [l for k, l in enumerate(lines) if k % step == 0][:n]
rng = random.Random(15)
kinds = [("mp3_128", "mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
         ("mp3_320", "mp3", ["-c:a", "libmp3lame", "-b:a", "320k"]),
         ("opus_64", "opus", ["-c:a", "libopus", "-b:a", "64k"]),
         ("aac_128", "m4a", ["-c:a", "aac", "-b:a", "128k"]),
         ("flac", "flac", ["-c:a", "flac"])]
plan, jobs, manifest = [], [], []
for i, (label, rel) in enumerate(lines):
    src = os.path.join(corpus, rel)
    ext = rel.rsplit(".", 1)[-1]
    orig = "orig-%03d.%s" % (i, ext)
    dst = os.path.join(out, "audio", orig)
    if not os.path.exists(dst):
        os.link(src, dst)
    manifest.append({"external_id": "orig-%03d" % i, "path": "audio/" + orig,
                     "title": os.path.basename(rel), "album": label})
    for kind, ext2, args in kinds:
        start = rng.random() < 0.5
        trim = round(rng.uniform(0, 5), 2)
        gain = round(rng.uniform(-3, 3), 1)
        name = "copy-%03d-%s.%s" % (i, kind, ext2)
        path = os.path.join(out, "audio", name)
        af = "volume=%sdB" % gain
        jobs.append((path, src, trim, start, af, args))
        plan.append([name, "orig-%03d" % i, kind, label, "start" if start else "end", trim, gain])
        manifest.append({"external_id": "copy-%03d-%s" % (i, kind), "path": "audio/" + name,
                         "title": os.path.basename(rel), "album": label})
fx = json.load(open(os.path.join(repo, "fixtures", "fixtures.json")))["tracks"]
for t in fx:
    if t.get("excerpt"):
        continue
    name = "fixture-" + os.path.basename(t["path"])
    dst = os.path.join(out, "audio", name)
    if not os.path.exists(dst):
        os.link(os.path.join(repo, "fixtures", t["path"]), dst)
    manifest.append({"external_id": "fixture-%s-%s" % (t["song"], os.path.basename(t["path"])),
                     "path": "audio/" + name, "title": t["song"], "album": "fixtures"})
with open(os.path.join(out, "plan.tsv"), "w") as f:
    f.write("copy\toriginal\tkind\tlabel\ttrimmed\ttrim_s\tgain_db\n")
    for p in plan:
        f.write("\t".join(map(str, p)) + "\n")
with open(os.path.join(out, "manifest.jsonl"), "w") as f:
    for m in manifest:
        f.write(json.dumps(m) + "\n")
with open(os.path.join(out, "jobs.txt"), "w") as f:
    for path, src, trim, start, af, args in jobs:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            continue
        if start:
            cut = ["-ss", str(trim)]
        else:
            # Trim the end: keep the duration less the cut.
            d = float(subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                                      "-of", "csv=p=0", src], capture_output=True, text=True).stdout)
            cut = ["-t", "%.3f" % max(d - trim, 1.0)]
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"] + (cut if start else []) + ["-i", src] \
            + ([] if start else cut) + ["-af", af] + args + [path]
        f.write(json.dumps(cmd) + "\n")
print("%d originals, %d copies, %d fixture encodes" % (len(lines), len(plan), sum(1 for m in manifest if m["external_id"].startswith("fixture-"))))
PY
# Encode two at a time.
python3 - "$out/jobs.txt" <<'PY'
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
cmds = [json.loads(l) for l in open(sys.argv[1])]
def run(c):
    r = subprocess.run(c, capture_output=True, text=True)
    if r.returncode:
        print("encode failed:", c[-1], r.stderr[-300:], file=sys.stderr)
with ThreadPoolExecutor(2) as ex:
    list(ex.map(run, cmds))
PY
[ -x "$repo/target/release/motif" ] || cargo build --release --manifest-path "$repo/Cargo.toml"
motif="$repo/target/release/motif"
rm -rf "$out/data"
start=$(date +%s%N)
"$motif" index "$out/manifest.jsonl" --data-dir "$out/data" | tee "$out/index.log" || true
end=$(date +%s%N)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$motif" serve --data-dir "$out/data" --bind "127.0.0.1:$port" > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null && break; sleep 0.2; done
python3 - "$out" "$port" "$(( (end - start) / 1000000 ))" <<'PY'
import collections, json, sys, urllib.request
out, port, index_s = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000
base = "http://127.0.0.1:%s/v1" % port
def get(path):
    with urllib.request.urlopen(base + path) as r:
        return json.load(r)
plan = {}
for l in list(open(out + "/plan.tsv"))[1:]:
    name, orig, kind, label, trimmed, trim, gain = l.rstrip("\n").split("\t")
    plan["copy-" + name[5:].rsplit(".", 1)[0]] = (orig, kind, label, trimmed, float(trim), float(gain))
# Every track's recording: itself and its listed copies.
group, ext_of, dur = {}, {}, {}
tid = 1
missing = 0
# Walk every track id the store has (ids are dense from 1).
while True:
    try:
        t = get("/tracks/%d" % tid)
    except Exception:
        missing += 1
        if missing > 50:
            break
        tid += 1
        continue
    missing = 0
    ext_of[tid] = t["external_id"]
    dur[t["external_id"]] = t["duration_s"] or 0
    tid += 1
for tid, ext in ext_of.items():
    try:
        d = get("/tracks/%d/duplicates" % tid)
    except Exception:
        group[ext] = {ext}
        continue
    group[ext] = {ext} | {c["external_id"] for c in d["copies"]}
kinds = collections.defaultdict(lambda: [0, 0])
short = [0, 0]
for copy, (orig, kind, label, trimmed, trim, gain) in plan.items():
    if copy not in group:
        continue
    ok = orig in group[copy]
    k = kinds[kind]
    k[0] += 1; k[1] += ok
    if dur.get(orig, 0) < 30:
        short[0] += 1; short[1] += ok
def original_of(ext):
    if ext.startswith("orig-"):
        return ext
    if ext.startswith("copy-"):
        return plan[ext][0]
    if ext.startswith("fixture-"):
        return "fixture-" + ext.split("-")[1]
    return ext
false_pairs = set()
for ext, g in group.items():
    for other in g:
        if other != ext and original_of(other) != original_of(ext):
            false_pairs.add(tuple(sorted((ext, other))))
fx = [e for e in group if e.startswith("fixture-")]
fx_found = sum(1 for e in fx for o in fx if e < o and original_of(e) == original_of(o) and o in group[e])
fx_pairs = sum(1 for e in fx for o in fx if e < o and original_of(e) == original_of(o))
n_orig = sum(1 for e in group if e.startswith("orig-"))
print("tracks %d: %d originals, %d copies, %d fixture encodes; index run %.1f s" % (len(group), n_orig, sum(k[0] for k in kinds.values()), len(fx), index_s))
print("%-8s %6s %8s" % ("copy", "copies", "found"))
for kind, (n, ok) in sorted(kinds.items()):
    print("%-8s %6d %8.3f" % (kind, n, ok / max(n, 1)))
alln = sum(k[0] for k in kinds.values()); allok = sum(k[1] for k in kinds.values())
print("%-8s %6d %8.3f" % ("all", alln, allok / max(alln, 1)))
print("originals under 30 s: %d copies, %.3f found" % (short[0], short[1] / max(short[0], 1)))
print("fixture encodes of one song in one recording: %d of %d pairs" % (fx_found, fx_pairs))
print("false merges (pairs of tracks of different recordings in one recording): %d" % len(false_pairs))
for p in sorted(false_pairs)[:20]:
    print("  ", p)
# The peer: "duplicates are tracks whose embeddings are this close" (how AudioMuse-AI
# finds them), on the same catalogue. For each threshold: copies within it of their
# original (recall) and pairs of different recordings within it (false merges).
import sqlite3, struct
db = sqlite3.connect(out + "/data/motif.db")
emb = {}
for ext, blob in db.execute("SELECT t.external_id, a.embedding FROM tracks t JOIN analyses a ON a.track_id = t.id"):
    emb[ext] = struct.unpack("<%df" % (len(blob) // 4), blob)
def cos(a, b):
    return sum(x * y for x, y in zip(a, b))
originals = [e for e in emb if e.startswith("orig-")]
copy_sims = [cos(emb[c], emb[v[0]]) for c, v in plan.items() if c in emb and v[0] in emb]
other_sims = []
for i, a in enumerate(originals):
    for b in originals[i + 1:]:
        other_sims.append(cos(emb[a], emb[b]))
for c, v in plan.items():
    if c in emb:
        other_sims.extend(cos(emb[c], emb[o]) for o in originals if o != v[0])
print("peer (embedding cosine >= t is a duplicate): copy-original similarity min %.4f, median %.4f; "
      "different recordings max %.4f" % (min(copy_sims), sorted(copy_sims)[len(copy_sims) // 2], max(other_sims)))
for t in (0.99, 0.98, 0.95, 0.90, 0.85, 0.80):
    r = sum(s >= t for s in copy_sims) / max(len(copy_sims), 1)
    f = sum(s >= t for s in other_sims)
    print("  t = %.2f: copies found %.3f, false pairs %d (of %d)" % (t, r, f, len(other_sims)))
missed = [c for c, v in plan.items() if c in group and v[0] not in group[c]]
for c in missed[:20]:
    print("  missed", c, plan[c], "duration %.1f s" % dur.get(plan[c][0], 0))
PY
