#!/usr/bin/env bash
# Page speed of the listening room on a large catalogue, in headless Chromium on loopback
# (Debian packages `chromium` and `chromium-driver`). Not a test: it prints figures.
#
#   bash bench/web/run.sh [TRACKS] [DIR]
#
# Builds (once) the same synthetic catalogue as bench/load/run.sh (TRACKS tracks, default
# 1,000,000, in DIR, default motif-load-data, with `motif bench-index`), serves it with
# `motif serve`, and runs measure.py: the page's `motif-interactive` and `motif-map-drawn`
# performance marks over fresh navigations (docs/MEASUREMENTS.md has the figures).
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACKS="${1:-1000000}"
DIR="${2:-motif-load-data}"
PORT="${MOTIF_WEB_PORT:-7912}"
DRIVER_PORT="${MOTIF_DRIVER_PORT:-9515}"
RUNS="${MOTIF_WEB_RUNS:-5}"
command -v chromedriver >/dev/null || { echo "chromedriver is not installed (apt-get install chromium chromium-driver)"; exit 1; }
cargo build --release --quiet
MOTIF=target/release/motif
if [ ! -f "$DIR/bench.db" ] || [ ! -d "$DIR/vectors" ]; then
  "$MOTIF" bench-index --tracks "$TRACKS" --no-postgres --dir "$DIR" --queries 50 --engines graph \
    ${MOTIF_LIKE:+--like "$MOTIF_LIKE"}
fi
"$MOTIF" serve --database "sqlite://$DIR/bench.db" --data-dir "$DIR" --bind "127.0.0.1:$PORT" --workers 2 &
SERVER=$!
chromedriver --port="$DRIVER_PORT" >/dev/null 2>&1 &
DRIVER=$!
trap 'kill $SERVER $DRIVER 2>/dev/null; wait $SERVER $DRIVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/v1/health" >/dev/null && break
  sleep 1
done
echo "serving $(curl -s "http://127.0.0.1:$PORT/v1/health")"
python3 bench/web/measure.py "http://127.0.0.1:$PORT" "127.0.0.1:$DRIVER_PORT" "$RUNS"
