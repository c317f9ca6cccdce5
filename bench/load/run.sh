#!/usr/bin/env bash
# Load benchmark of the query API on loopback with wrk (Debian package `wrk`).
#
#   [MOTIF_LIKE=sqlite:///work/corpusdata/motif.db] bash bench/load/run.sh [TRACKS] [DIR]
#
# Builds (once) a synthetic catalogue of TRACKS tracks (default 1,000,000) in DIR (default
# motif-load-data) with `motif bench-index` (SQLite store, HNSW, tantivy), serves it with
# `motif serve`, and drives each endpoint with wrk for 20 s. The baseline, measured in the
# same run, is /v1/health (routing, JSON and one store round trip); each line prints
# requests/s, p50 and p99 latency, and the p99 as a multiple of the baseline's.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACKS="${1:-1000000}"
DIR="${2:-motif-load-data}"
PORT="${MOTIF_LOAD_PORT:-7911}"
DURATION="${MOTIF_LOAD_SECONDS:-20}"
CONNS="${MOTIF_LOAD_CONNECTIONS:-2 16}"   # closed-loop connections: 2 = one per core (latency), 16 (throughput)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet
MOTIF=target/release/motif
if [ ! -f "$DIR/bench.db" ] || [ ! -d "$DIR/vectors" ]; then
  # MOTIF_LIKE=DB shapes the embeddings on a real catalogue's (e.g. the dev corpus indexed
  # with `motif index`); without it, on 500 random centres (a harder, less realistic set).
  "$MOTIF" bench-index --tracks "$TRACKS" --no-postgres --dir "$DIR" --queries 50 \
    ${MOTIF_LIKE:+--like "$MOTIF_LIKE"}
fi
"$MOTIF" serve --database "sqlite://$DIR/bench.db" --data-dir "$DIR" --bind "127.0.0.1:$PORT" --workers 2 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/v1/health" >/dev/null && break
  sleep 1
done
echo "serving $(curl -s "http://127.0.0.1:$PORT/v1/health")"
# Resident memory, split: anonymous (the process's own heap: graph, maps, caches) and
# file-backed (index files mapped from disk, mostly tantivy's; page cache the kernel can
# drop under pressure).
rss() { awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %.0f MiB  ", $1, $2 / 1024 }' "/proc/$SERVER/status"; }
echo "server memory: $(rss)"
export MOTIF_LOAD_DIR="$PWD/bench/load" MOTIF_TRACKS="$TRACKS"
# Warm up (page in the indexes).
wrk -t1 -c4 -d5s -s bench/load/similar.lua "http://127.0.0.1:$PORT" >/dev/null
for c in $CONNS; do
  echo "-- $c connections, ${DURATION} s each"
  base_p99=""
  for name in baseline similar search hybrid playlist; do
    line=$(wrk -t1 -c"$c" -d"${DURATION}s" --timeout 10s -s "bench/load/$name.lua" "http://127.0.0.1:$PORT" | grep '^RESULT' || true)
    p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")
    if [ "$name" = baseline ]; then base_p99="$p99"; fi
    ratio=$(awk -v a="$p99" -v b="$base_p99" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "-" }')
    printf '%-9s %s p99_vs_baseline=%sx\n' "$name" "${line#RESULT }" "$ratio"
  done
done
echo "server memory after load: $(rss)"
