#!/usr/bin/env bash
# Replica lag under ingest: starts a streaming replica of the test cluster (pg_basebackup
# -R into a temp folder, another port, run as `postgres` when root; the cluster must allow
# local replication connections, see .ci/run), ingests COPIES x the fixture songs into a
# fresh database on the primary with `motif index`, and samples the replica's lag every
# 100 ms meanwhile: WAL bytes not replayed and the age of the last replayed transaction
# while behind. Prints the samples' median, p99 and max.  Usage: bash bench/queue/replica_lag.sh [COPIES]
set -euo pipefail
cd "$(dirname "$0")/../.."
COPIES=${1:-3}
MOTIF=${MOTIF:-target/release/motif}
ADMIN=${MOTIF_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
BIN=${MOTIF_PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${PORT:-55432}
work=$(mktemp -d)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
rep="$work/replica"
mkdir -p "$rep" && [ "$(id -u)" = 0 ] && chown postgres:postgres "$rep" "$work"
cleanup() { as_pg "$BIN/pg_ctl" -D "$rep/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -U postgres -D "$rep/data" -R -X stream -c fast
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' > "$rep/data/pg_hba.conf"
touch "$rep/data/postgresql.conf" "$rep/data/pg_ident.conf"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$rep"
as_pg "$BIN/pg_ctl" -D "$rep/data" -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$rep -c hot_standby=on" -l "$rep/log" -w start >/dev/null
db="motif_lag_$$"
psql "$ADMIN" -qc "CREATE DATABASE $db" >/dev/null
mkdir -p "$work/audio" && cp fixtures/audio/*.* "$work/audio/"
python3 - "$work" "$COPIES" <<'PY'
import json, os, sys
work, copies = sys.argv[1], int(sys.argv[2])
files = sorted(os.listdir(os.path.join(work, "audio")))
with open(os.path.join(work, "delivery.jsonl"), "w") as out:
    for c in range(copies):
        for i, f in enumerate(files):
            out.write(json.dumps({"external_id": f"l-{c}-{i}", "path": f"audio/{f}", "title": f"T{i}-{c}"}) + "\n")
PY
"$MOTIF" index "$work/delivery.jsonl" --database "${ADMIN%/*}/$db" --data-dir "$work/data" --json >"$work/summary.json" 2>/dev/null &
ingest=$!
: >"$work/lag"
while kill -0 "$ingest" 2>/dev/null; do
  lsn=$(psql "postgres://postgres@127.0.0.1:$PORT/test" -Atc "SELECT pg_last_wal_replay_lsn() || ' ' || COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)")
  psql "$ADMIN" -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsn% *}') || ' ${lsn#* }'" >>"$work/lag"
  sleep 0.1
done
wait "$ingest" || true
psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
python3 - "$work/lag" "$work/summary.json" <<'PY'
import json, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
s = json.load(open(sys.argv[2]))
b = sorted(r[0] for r in rows); behind = sorted(r[1] for r in rows if r[0] > 0)
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))] if v else 0
print(f"ingest: {s['new']} tracks in {s['elapsed_s']:.1f} s; {len(rows)} samples")
print(f"lag bytes: median {q(b, .5):.0f}, p99 {q(b, .99):.0f}, max {b[-1] if b else 0:.0f}; "
      f"behind in {len(behind)} samples; seconds while behind: median {q(behind, .5):.3f}, max {behind[-1] if behind else 0:.3f}")
PY
