#!/usr/bin/env bash
# Codec invariance (issue 13, part 5): the same recording decoded from other codecs must
# give the same tempo (within 2 %), key and mode, and attributes within a tolerance.
#
#   bash bench/codecs/run.sh CORPUS OUT [N]
#
# Takes N files (default 24, every k-th line of CORPUS/music.tsv, so every soundtrack is
# in), re-encodes each with ffmpeg to MP3 128k, Opus 64k, AAC 128k (M4A) and FLAC under
# OUT (outside the repo), analyses originals and encodes with the release `motif analyze`,
# and prints, per codec, the share of files whose tempo, key and mode agree with the
# original's (and pulse and metre), the largest attribute differences, and for the learned
# tags (genre, mood, era, instrument, vocals) the share of files whose tag set is
# identical, the mean Jaccard overlap of the sets and the mean absolute difference of the
# models' raw label scores. Needs ffmpeg (Debian's).
set -euo pipefail
corpus=${1:?usage: run.sh CORPUS OUT [N]}
out=${2:?usage: run.sh CORPUS OUT [N]}
n=${3:-24}
repo=$(cd "$(dirname "$0")/../.." && pwd)
case "$(cd "$(dirname "$out")" && pwd)/" in "$repo"/*) echo "OUT must be outside the repo" >&2; exit 1;; esac
mkdir -p "$out"
total=$(wc -l < "$corpus/music.tsv")
step=$(( total / n )); [ "$step" -ge 1 ] || step=1
awk -F'\t' -v s="$step" -v n="$n" 'NR % s == 1 && c < n { print $2; c++ }' "$corpus/music.tsv" > "$out/originals.txt"
while read -r rel; do
  stem=$(basename "${rel%.*}")
  src="$corpus/$rel"
  cp -f "$src" "$out/$stem.orig.${rel##*.}"
  [ -s "$out/$stem.mp3" ]  || ffmpeg -nostdin -v error -y -i "$src" -c:a libmp3lame -b:a 128k "$out/$stem.mp3"
  [ -s "$out/$stem.opus" ] || ffmpeg -nostdin -v error -y -i "$src" -c:a libopus -b:a 64k "$out/$stem.opus"
  [ -s "$out/$stem.m4a" ]  || ffmpeg -nostdin -v error -y -i "$src" -c:a aac -b:a 128k "$out/$stem.m4a"
  [ -s "$out/$stem.flac" ] || ffmpeg -nostdin -v error -y -i "$src" -c:a flac "$out/$stem.flac"
done < "$out/originals.txt"
[ -x "$repo/target/release/motif" ] || cargo build --release --manifest-path "$repo/Cargo.toml"
"$repo/target/release/motif" analyze "$out" > "$out/analysis.jsonl" 2> "$out/analyze.log" || true
python3 - "$out/analysis.jsonl" <<'PY'
import collections, json, sys
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    d = json.loads(line)
    name = d["path"].rsplit("/", 1)[-1]
    stem, codec = name.split(".", 1)
    codec = "original" if codec.startswith("orig.") else codec
    rows[stem][codec] = d.get("analysis")
attrs = ["energy", "danceability", "brightness", "acousticness", "loudness_lufs"]
per = collections.defaultdict(lambda: {"n": 0, "tempo": 0, "key": 0, "mode": 0, "pulse": 0,
                                       "metre": 0, "fail": 0, "same_tags": 0, "jaccard": 0.0,
                                       "score_diff": 0.0,
                                       "diff": collections.defaultdict(float)})
LEARNED = ("genre", "mood", "era", "instrument", "vocals")
def learned(a):
    return {t["name"] for t in a["tags"] if t["name"].split(":")[0] in LEARNED}
def scores(a):
    m = a.get("model_scores") or {"msd": [], "mtt": []}
    return m["msd"] + m["mtt"]
for stem, by in sorted(rows.items()):
    o = by.get("original")
    if not o:
        continue
    oa = o["attributes"]
    for codec, a in by.items():
        if codec == "original":
            continue
        p = per[codec]
        p["n"] += 1
        if not a:
            p["fail"] += 1
            continue
        aa = a["attributes"]
        p["tempo"] += abs(aa["tempo_bpm"] / oa["tempo_bpm"] - 1) <= 0.02
        p["key"] += aa["key"] == oa["key"]
        p["mode"] += aa["mode"] == oa["mode"]
        p["pulse"] += aa.get("pulse") == oa.get("pulse")
        p["metre"] += aa.get("metre") == oa.get("metre")
        for k in attrs:
            p["diff"][k] = max(p["diff"][k], abs(aa[k] - oa[k]))
        lo, la = learned(o), learned(a)
        p["same_tags"] += lo == la
        p["jaccard"] += len(lo & la) / len(lo | la) if lo | la else 1.0
        so, sa = scores(o), scores(a)
        if so and len(so) == len(sa):
            p["score_diff"] += sum(abs(x - y) for x, y in zip(so, sa)) / len(so)
print("%-6s %5s %8s %8s %8s %8s %8s %9s %8s %10s  largest difference: %s" % ("codec", "files", "tempo2%", "key",
      "mode", "pulse", "metre", "same_tags", "jaccard", "score_mad", ", ".join(attrs)))
for codec, p in sorted(per.items()):
    n = max(p["n"] - p["fail"], 1)
    print("%-6s %5d %8.3f %8.3f %8.3f %8.3f %8.3f %9.3f %8.3f %10.4f  %s%s" % (codec, p["n"], p["tempo"] / n,
          p["key"] / n, p["mode"] / n, p["pulse"] / n, p["metre"] / n, p["same_tags"] / n, p["jaccard"] / n,
          p["score_diff"] / n, ", ".join("%.3f" % p["diff"][k] for k in attrs),
          "  (%d failed)" % p["fail"] if p["fail"] else ""))
PY
