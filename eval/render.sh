#!/usr/bin/env bash
# Builds the General-MIDI evaluation set: composes the songs (compose.py), renders
# each through FluidSynth with the FluidR3_GM soundfont, levels it (RMS -16 dBFS with
# a peak limiter at -1.5 dBFS) and encodes Ogg Vorbis (q4), then writes truth.tsv and labels.tsv.
#
#   bash eval/render.sh [OUTDIR]          # default OUTDIR=/work/evalset
#   N=24 SEED=7 bash eval/render.sh /tmp/small
#
# Needs: python3 with mido (pip install mido), fluidsynth, fluid-soundfont-gm, ffmpeg
#   apt-get install -y fluidsynth fluid-soundfont-gm ffmpeg && pip install mido
# Nothing is written inside the repository: OUTDIR must be outside it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=${1:-/work/evalset}
N=${N:-120}
SEED=${SEED:-20240611}
SF2=${SF2:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
NICE=${NICE:-10}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
case "$OUT/" in
  "$REPO"/*) echo "render.sh: OUTDIR $OUT is inside the repository $REPO; choose a folder outside it" >&2; exit 2 ;;
esac
for tool in fluidsynth ffmpeg python3; do
  command -v "$tool" >/dev/null || { echo "render.sh: $tool not found" >&2; exit 2; }
done
python3 -c 'import mido' 2>/dev/null || { echo "render.sh: python3 module mido missing (pip install mido)" >&2; exit 2; }
[ -f "$SF2" ] || { echo "render.sh: soundfont $SF2 not found (apt-get install fluid-soundfont-gm)" >&2; exit 2; }

rm -rf "$OUT/midi" "$OUT/audio" "$OUT/truth.tsv" "$OUT/labels.tsv" "$OUT/songs.json"
mkdir -p "$OUT/audio"
nice -n "$NICE" python3 "$HERE/compose.py" "$OUT" --n "$N" --seed "$SEED"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
START=$(date +%s)

# id, midi, audio, duration (s) for every song
python3 - "$OUT/songs.json" >"$TMP/list.tsv" <<'EOF'
import json, sys
for s in json.load(open(sys.argv[1]))["songs"]:
    print(f"{s['id']}\t{s['midi']}\t{s['audio']}\t{s['duration_s']}")
EOF

count=0
while IFS=$'\t' read -r id midi audio dur; do
  wav="$TMP/$id.wav"
  nice -n "$NICE" fluidsynth -ni -q -R 1 -C 1 -o synth.cpu-cores=1 -F "$wav" -r 44100 -O float -T wav \
    "$SF2" "$OUT/$midi" </dev/null >"$TMP/fluidsynth.log" 2>&1 \
    || { cat "$TMP/fluidsynth.log" >&2; echo "render.sh: fluidsynth failed on $midi" >&2; exit 1; }
  # level like a mastered track: RMS to -16 dBFS, but never more than 6 dB above peak
  # normalisation; a look-ahead limiter (latency-compensated) keeps peaks under -1.5 dBFS.
  stats=$(ffmpeg -nostdin -hide_banner -i "$wav" -af volumedetect -f null - 2>&1)
  peak=$(sed -n 's/.*max_volume: \(-\?[0-9.]*\) dB.*/\1/p' <<<"$stats")
  mean=$(sed -n 's/.*mean_volume: \(-\?[0-9.]*\) dB.*/\1/p' <<<"$stats")
  [ -n "$peak" ] && [ -n "$mean" ] || { echo "render.sh: no level for $id" >&2; exit 1; }
  gain=$(python3 -c "print(f'{min(-16.0 - $mean, -1.5 - $peak + 6.0):.2f}')")
  end=$(python3 -c "print(f'{$dur + 0.3:.3f}')")
  fade=$(python3 -c "print(f'{$dur - 0.2:.3f}')")
  nice -n "$NICE" ffmpeg -nostdin -hide_banner -loglevel error -y -threads 1 -i "$wav" -t "$end" \
    -af "volume=${gain}dB,alimiter=limit=0.841:attack=5:release=80:level=0:latency=1,afade=t=out:st=${fade}:d=0.5" \
    -map_metadata -1 -fflags +bitexact -flags:a +bitexact \
    -c:a libvorbis -q:a 4 "$OUT/$audio"
  rm -f "$wav"
  count=$((count + 1))
  if [ $((count % 10)) -eq 0 ]; then echo "rendered $count songs ($(( $(date +%s) - START )) s)"; fi
done <"$TMP/list.tsv"

python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
songs = json.load(open(os.path.join(out, "songs.json")))["songs"]
def num(x):
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    return s
with open(os.path.join(out, "truth.tsv"), "w") as f:
    f.write("path\ttempo_bpm\tkey\tmode\tstyle\tmeter\thas_drums\n")
    for s in songs:
        assert os.path.getsize(os.path.join(out, s["audio"])) > 10000, s["audio"]
        f.write(f"{s['audio']}\t{num(s['tempo_bpm'])}\t{s['key']}\t{s['mode']}\t{s['style']}\t{s['meter']}\t{str(s['has_drums']).lower()}\n")
with open(os.path.join(out, "labels.tsv"), "w") as f:
    for s in songs:
        f.write(f"{s['style']}\t{s['audio']}\n")
print(f"wrote {len(songs)} songs, {out}/truth.tsv and {out}/labels.tsv")
EOF
echo "render time $(( $(date +%s) - START )) s"
