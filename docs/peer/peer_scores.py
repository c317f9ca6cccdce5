#!/usr/bin/env python3
"""Peers on a truth set: Essentia, librosa and (from a `motif eval --attributes-out` TSV)
Motif, scored on the same files with the same measures as `motif eval --truth`.

A truth set is a folder with `truth.tsv` (header: path, tempo_bpm, key or tonic, mode;
optional beat_bpm, family, group, time_signature), as written by
`../shared/evalsets/render-scores.py` or `eval/compose.py`.

Per file:
  * Essentia: RhythmExtractor2013(method="multifeature") -> bpm; KeyExtractor() (default
    profile) -> key, scale. Audio through MonoLoader at 44.1 kHz.
  * librosa: beat.beat_track on the default onset envelope (22.05 kHz mono) -> tempo;
    key by Krumhansl-Kessler profiles correlated with the mean chroma_cqt (librosa ships
    no key estimator; this is the textbook one).
  * Motif: read from the TSV `motif eval --attributes-out` wrote for the same folder.

Measures (as embeddings/src/eval.rs): tempo Accuracy1 (within 4 %), Accuracy2 (also at
x2, x1/2, x3, x1/3), felt-beat Accuracy1 against beat_bpm, MIREX key score (1 same key,
0.5 a fifth above, 0.3 relative, 0.2 parallel). Printed overall and by family, group and
time signature; per-file rows go to --out.

    nice -n 10 /work/peer-venv/bin/python docs/peer/peer_scores.py SET_DIR \
        [--motif SET_DIR/motif.tsv] [--out SET_DIR/peers.tsv] [--limit N]
"""
import argparse
import collections
import csv
import os
import sys
import time

PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
FLAT = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E",
        "E#": "F", "B#": "C", "D-": "C#", "E-": "D#", "G-": "F#", "A-": "G#", "B-": "A#"}
# Krumhansl-Kessler profiles (C major, C minor).
KK_MAJOR = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
KK_MINOR = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]


def pc(name):
    """Pitch class number of a key name (C, C#, Db, Bb, b-, ...), or None."""
    if not name:
        return None
    n = name.strip()
    n = n[0].upper() + n[1:]
    n = FLAT.get(n, n).replace("♯", "#")
    return PCS.index(n) if n in PCS else None


def acc1(est, truth):
    return abs(est / truth - 1.0) <= 0.04


def acc2(est, truth):
    return any(acc1(est, truth * f) for f in (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0))


def key_score(et, emaj, tt, tmaj):
    up = (et - tt) % 12
    if emaj == tmaj and up == 0:
        return 1.0
    if emaj == tmaj and up == 7:
        return 0.5
    if emaj != tmaj and ((tmaj and up == 9) or (not tmaj and up == 3)):
        return 0.3
    if emaj != tmaj and up == 0:
        return 0.2
    return 0.0


def essentia_estimator():
    import essentia
    import essentia.standard as es
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    rhythm = es.RhythmExtractor2013(method="multifeature")
    key = es.KeyExtractor()

    def run(path):
        audio = es.MonoLoader(filename=path, sampleRate=44100)()
        bpm = rhythm(audio)[0]
        k, scale, _ = key(audio)
        return bpm, pc(k), scale == "major"
    return run


def librosa_estimator():
    import numpy as np
    import librosa

    def rotate(p, n):
        return p[-n:] + p[:-n] if n else p

    def run(path):
        y, sr = librosa.load(path, sr=22050, mono=True)
        tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
        chroma = librosa.feature.chroma_cqt(y=y, sr=sr).mean(axis=1)
        best = None
        for t in range(12):
            for major, prof in ((True, KK_MAJOR), (False, KK_MINOR)):
                r = float(np.corrcoef(chroma, rotate(prof, t))[0, 1])
                if best is None or r > best[0]:
                    best = (r, t, major)
        return float(np.atleast_1d(tempo)[0]), best[1], best[2]
    return run


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


class Tally:
    def __init__(self):
        self.n = self.a1 = self.a2 = self.beat_n = self.beat_a1 = self.keys = 0
        self.key = 0.0

    def add(self, est, truth):
        bpm, tonic, major = est
        if bpm and truth["tempo"]:
            self.n += 1
            self.a1 += acc1(bpm, truth["tempo"])
            self.a2 += acc2(bpm, truth["tempo"])
        if bpm and truth["beat"]:
            self.beat_n += 1
            self.beat_a1 += acc1(bpm, truth["beat"])
        if tonic is not None and truth["tonic"] is not None:
            self.keys += 1
            self.key += key_score(tonic, major, truth["tonic"], truth["major"])

    def line(self):
        r = lambda a, n: a / n if n else float("nan")
        return "%4d files  A1 %.3f  A2 %.3f  beat-A1 %.3f  key %.3f" % (
            self.n, r(self.a1, self.n), r(self.a2, self.n), r(self.beat_a1, self.beat_n),
            r(self.key, self.keys))


def truth_of(row):
    num = lambda k: float(row[k]) if row.get(k) else None
    return {
        "tempo": num("tempo_bpm"),
        "beat": num("beat_bpm"),
        "tonic": pc(row.get("tonic") or row.get("key")),
        "major": (row.get("mode") or "").lower() == "major",
    }


def motif_rows(path, set_dir):
    """path -> (bpm, tonic, major) from a `motif eval --attributes-out` TSV."""
    out = {}
    for r in read_tsv(path):
        rel = os.path.relpath(r["path"], set_dir) if os.path.isabs(r["path"]) else r["path"]
        out[rel] = (float(r["tempo_bpm"]), pc(r["key"]), r["mode"] == "major")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir")
    ap.add_argument("--motif", help="motif eval --attributes-out TSV for the same set")
    ap.add_argument("--out", help="per-file TSV (default SET_DIR/peers.tsv)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-librosa", action="store_true")
    args = ap.parse_args()

    rows = read_tsv(os.path.join(args.set_dir, "truth.tsv"))
    if args.limit:
        rows = rows[:args.limit]
    peers = [("essentia", essentia_estimator())]
    if not args.no_librosa:
        peers.append(("librosa", librosa_estimator()))
    motif = motif_rows(args.motif, args.set_dir) if args.motif else {}

    names = [p[0] for p in peers] + (["motif"] if motif else [])
    tallies = collections.defaultdict(lambda: {n: Tally() for n in names})
    out_path = args.out or os.path.join(args.set_dir, "peers.tsv")
    cpu = collections.Counter()
    with open(out_path, "w", newline="") as fo:
        cols = ["path"] + ["%s_%s" % (n, c) for n in names for c in ("bpm", "key", "mode")]
        w = csv.writer(fo, delimiter="\t", lineterminator="\n")
        w.writerow(cols)
        for i, row in enumerate(rows, 1):
            truth = truth_of(row)
            ests = {}
            for name, run in peers:
                t0 = time.process_time()
                try:
                    ests[name] = run(os.path.join(args.set_dir, row["path"]))
                except Exception as e:  # a peer failing on a file is recorded, not fatal
                    print("%s failed on %s: %s" % (name, row["path"], e), file=sys.stderr)
                    ests[name] = (None, None, True)
                cpu[name] += time.process_time() - t0
            if motif:
                ests["motif"] = motif.get(row["path"], (None, None, True))
            keys = [("all", "")] + [(c, row[c]) for c in ("family", "group", "time_signature")
                                    if row.get(c)]
            for k in keys:
                for n in names:
                    tallies[k][n].add(ests[n], truth)
            w.writerow([row["path"]] + [
                x for n in names for x in (
                    "%.2f" % ests[n][0] if ests[n][0] else "",
                    PCS[ests[n][1]] if ests[n][1] is not None else "",
                    "major" if ests[n][2] else "minor")])
            if i % 20 == 0:
                print("%d/%d" % (i, len(rows)), file=sys.stderr)

    print("set %s (%d files)" % (args.set_dir, len(rows)))
    for k in sorted(tallies, key=lambda k: (k != ("all", ""), k)):
        for n in names:
            print("  %-6s %-14s %-8s %s" % (k[0], k[1][:14], n, tallies[k][n].line()))
    for name, _ in peers:
        print("  cpu %s: %.1f s" % (name, cpu[name]))


if __name__ == "__main__":
    main()
