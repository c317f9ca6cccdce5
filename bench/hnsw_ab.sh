#!/usr/bin/env bash
# A/B of the HNSW graph at 1M tracks: hnsw_rs (commit 621a83a, the last that used it)
# against this checkout's own graph, on the same synthetic data, back to back on one
# machine, so that the machine's speed of the day cancels out.
#
#   bash bench/hnsw_ab.sh [LIKE_DB] [TRACKS]
#
# LIKE_DB shapes the embeddings on a real catalogue's (default: the dev corpus indexed with
# `motif index /work/corpus/music --data-dir /work/corpusdata`). For each binary: build the
# graph straight from the generator (`bench-index --index-only`, M=16, ef_construction=200;
# build time, recall@10 against exact search), then load it in a fresh process
# (`bench-index --load`: load time, resident memory). The old binary is built in a git
# worktree under the same target folder (the registry crates are shared; ~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
LIKE="${1:-sqlite:///work/corpusdata/motif.db}"
TRACKS="${2:-1000000}"
OLD=621a83a
WORK="${MOTIF_AB_DIR:-/tmp/motif-hnsw-ab}"
mkdir -p "$WORK"
TARGET="$PWD/target"
cargo build --release --quiet -p motif
cp target/release/motif "$WORK/motif-new"
if [ ! -x "$WORK/motif-old" ]; then
  rm -rf "$WORK/src-old"
  git worktree add -f "$WORK/src-old" "$OLD" >/dev/null
  (cd "$WORK/src-old" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet --locked -p motif)
  cp target/release/motif "$WORK/motif-old"
  git worktree remove -f "$WORK/src-old"
  cargo build --release --quiet -p motif   # put this checkout's binary back in place
fi
for v in old new; do
  rm -rf "$WORK/index-$v"
  echo "== $v: build"
  /usr/bin/time -f "   process: wall %e s, peak %M KB" "$WORK/motif-$v" bench-index --tracks "$TRACKS" \
    --index-only --ef-construction 200 --like "$LIKE" --dir "$WORK/index-$v" --queries 200
  echo "== $v: load"
  /usr/bin/time -f "   process: wall %e s, peak %M KB" "$WORK/motif-$v" bench-index --tracks "$TRACKS" \
    --load --like "$LIKE" --dir "$WORK/index-$v" --queries 200
done
