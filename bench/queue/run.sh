#!/usr/bin/env bash
# The analysis queue on this machine: one delivery (COPIES x the fixture songs under
# distinct ids) planned with `motif index --enqueue`, then worked by N `motif worker -j 1`
# processes for each N in WORKERS; prints throughput against worker count and the queue's
# own time per job (claim + complete statements) against analysis time, from the workers'
# totals. Each N gets a fresh database. Usage: bash bench/queue/run.sh [COPIES] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
COPIES=${1:-3}
WORKERS=${2:-"1 2 3"}
MOTIF=${MOTIF:-target/release/motif}
ADMIN=${MOTIF_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
BASE=${ADMIN%/*}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/audio"
cp fixtures/audio/*.* "$work/audio/"
python3 - "$work" "$COPIES" <<'PY'
import json, os, sys
work, copies = sys.argv[1], int(sys.argv[2])
files = sorted(f for f in os.listdir(os.path.join(work, "audio")))
with open(os.path.join(work, "delivery.jsonl"), "w") as out:
    for c in range(copies):
        for i, f in enumerate(files):
            out.write(json.dumps({"external_id": f"b-{c}-{i}", "path": f"audio/{f}",
                                  "title": f"Track {i} copy {c}", "artists": [f"A{i % 5}"]}) + "\n")
PY
echo "delivery: $(wc -l < "$work/delivery.jsonl") tracks; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-7s %-8s %-9s %-11s %-8s %-14s %-10s\n' workers tracks wall_s tracks/s x_realtime speedup queue/analysis queue_ms/job
one=""
for n in $WORKERS; do
  db="motif_bench_queue_$$_$n"
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
  url="$BASE/$db"
  "$MOTIF" index "$work/delivery.jsonl" --database "$url" --data-dir "$work/data-$n" --enqueue \
    --media-root "$work" --json >"$work/plan-$n.json" 2>/dev/null
  start=$(date +%s.%N)
  for i in $(seq "$n"); do
    "$MOTIF" worker --database "$url" --media-root "$work" -j 1 --exit-when-idle --json \
      >"$work/w-$n-$i.json" 2>/dev/null &
  done
  wait
  end=$(date +%s.%N)
  row=$(python3 - "$work" "$n" "$start" "$end" "$one" <<'PY'
import glob, json, sys
work, n, start, end, one = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
t = [json.load(open(f)) for f in glob.glob(f"{work}/w-{n}-*.json")]
done = sum(x["done"] for x in t); audio = sum(x["audio_seconds"] for x in t)
ana = sum(x["analysis_s"] for x in t); q = sum(x["queue_s"] for x in t)
wall = end - start; rate = done / wall
speed = rate / float(one) if one else 1.0
print(f"{n:<8} {done:<7} {wall:<8.1f} {rate:<9.2f} {audio / wall:<11.0f} {speed:<8.2f} {100 * q / ana:<13.2f}% {1000 * q / max(done, 1):<10.1f}|{rate}")
PY
)
  echo "${row%|*}"
  [ -z "$one" ] && one=${row#*|}
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
done
