#!/usr/bin/env python3
"""Peers on a truth set: Essentia, librosa and (from a `motif eval --attributes-out` TSV)
Motif, scored on the same files with the same measures as `motif eval --truth`.

A truth set is a folder with `truth.tsv` (header: path, tempo_bpm, key or tonic, mode;
optional beat_bpm, family, group, time_signature), as written by
`../shared/evalsets/render-scores.py` or `eval/compose.py`.

Per file:
  * Essentia: RhythmExtractor2013(method="multifeature") -> bpm and beats; KeyExtractor()
    (default profile) -> key, scale; BeatsLoudness on those beats -> Beatogram -> Meter ->
    beats per bar (6, 9, 12 read as 2, 3, 4 compound beats). Audio through MonoLoader at
    44.1 kHz.
  * librosa: beat.beat_track on the default onset envelope (22.05 kHz mono) -> tempo;
    key by Krumhansl-Kessler profiles correlated with the mean chroma_cqt (librosa ships
    no key estimator; this is the textbook one); no metre (librosa has none).
  * Motif: read from the TSV `motif eval --attributes-out` wrote for the same folder.

Measures (as embeddings/src/eval.rs): tempo Accuracy1 (within 4 %), Accuracy2 (also at
x2, x1/2, x3, x1/3), felt-beat Accuracy1 against beat_bpm, MIREX key score (1 same key,
0.5 a fifth above, 0.3 relative, 0.2 parallel); metre (beats per bar and compound
division as felt: 6/8 is 2 compound, 2/2 is 2 simple; 5/4 or 3/8 count as misses) exact
and by class (duple, triple, compound), and bar length (beats per bar x beat period within
4 % of the score's bar: the bar found whichever level is called the beat), as `motif
eval`. Printed overall and by family, group and time signature; per-file rows go to --out.

    nice -n 10 /work/peer-venv/bin/python docs/peer/peer_scores.py SET_DIR [SET_DIR ...] \
        [--motif motif.tsv [--motif motif2.tsv]] [--cache peer_cache.json] [--limit N]

Several sets are scored together (one table over all their files); `--motif` and `--cache`
then name a file inside each set. A repeated `--motif` scores several Motif versions
against the same peer answers, each column named after its file.
"""
import argparse
import collections
import csv
import json
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
        bpm, ticks = rhythm(audio)[:2]
        k, scale, _ = key(audio)
        bars = None
        if len(ticks) > 4:
            loud, ratio = es.BeatsLoudness(beats=ticks)(audio)
            bars = int(round(es.Meter()(es.Beatogram()(loud, ratio))))
        return bpm, pc(k), scale == "major", felt(bars) if bars else None, bars
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
        return float(np.atleast_1d(tempo)[0]), best[1], best[2], None, None
    return run


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def felt(beats_per_bar, compound=None):
    """(beats, compound) for a number of beats per bar (6, 9, 12 as compound), or None."""
    if compound is None:
        if beats_per_bar in (6, 9, 12):
            return (beats_per_bar // 3, True)
        compound = False
    return (beats_per_bar, compound) if beats_per_bar in (2, 3, 4) else None


def felt_metre(ts):
    """As `motif eval`: 6/8, 9/8, 12/8 (and x/4, x/16) compound; 2-4 over 2 or 4 simple."""
    try:
        num, den = (int(x) for x in ts.split("/"))
    except (ValueError, AttributeError):
        return None
    if num in (6, 9, 12) and den in (4, 8, 16):
        return (num // 3, True)
    if num in (2, 3, 4) and den in (2, 4):
        return (num, False)
    return None


def bar_quarters(ts):
    """Quarter notes in a bar (6/8: 3, 2/2: 4), or None."""
    try:
        num, den = (int(x) for x in ts.split("/"))
    except (ValueError, AttributeError):
        return None
    return num * 4.0 / den if num > 0 and den > 0 else None


def metre_class(m):
    return None if m is None else ("compound" if m[1] else "triple" if m[0] == 3 else "duple")


class Tally:
    def __init__(self):
        self.n = self.a1 = self.a2 = self.beat_n = self.beat_a1 = self.keys = 0
        self.metres = self.metre_exact = self.metre_class = self.bar = 0
        self.key = 0.0

    def add(self, est, truth):
        bpm, tonic, major, metre, _ = est
        if truth["has_metre"]:
            self.metres += 1
            self.metre_exact += metre is not None and metre == truth["metre"]
            self.metre_class += metre is not None and metre_class(metre) == metre_class(truth["metre"])
            if est[4] and bpm and truth["tempo"] and truth["bar_quarters"]:
                got = est[4] * 60.0 / bpm
                want = truth["bar_quarters"] * 60.0 / truth["tempo"]
                self.bar += abs(got / want - 1.0) <= 0.04
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
        return "%4d files  A1 %.3f  A2 %.3f  beat-A1 %.3f  key %.3f  metre %.3f (class %.3f)  bar %.3f" % (
            self.n, r(self.a1, self.n), r(self.a2, self.n), r(self.beat_a1, self.beat_n),
            r(self.key, self.keys), r(self.metre_exact, self.metres),
            r(self.metre_class, self.metres), r(self.bar, self.metres))


def truth_of(row):
    num = lambda k: float(row[k]) if row.get(k) else None
    return {
        "tempo": num("tempo_bpm"),
        "beat": num("beat_bpm"),
        "tonic": pc(row.get("tonic") or row.get("key")),
        "major": (row.get("mode") or "").lower() == "major",
        "has_metre": bool(row.get("time_signature")),
        "metre": felt_metre(row.get("time_signature")),
        "bar_quarters": bar_quarters(row.get("time_signature")),
    }


def motif_rows(path, set_dir):
    """path -> (bpm, tonic, major, metre, beats per bar) from a `motif eval --attributes-out` TSV."""
    out = {}
    for r in read_tsv(path):
        # `motif eval` writes the path as it found it: absolute, or relative to where it ran.
        rel = os.path.relpath(os.path.abspath(r["path"]), os.path.abspath(set_dir))
        bars = int(r.get("beats_per_bar") or 0)
        metre = felt(bars, r.get("compound") == "true") if bars else None
        out[rel] = (float(r["tempo_bpm"]), pc(r["key"]), r["mode"] == "major", metre, bars)
    return out


def in_set(path, set_dir):
    """A path given on the command line: as it is when it names a file, else a file of
    that name inside the set (`--motif motif080.tsv` over several sets)."""
    return path if os.path.isfile(path) else os.path.join(set_dir, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir", nargs="+", help="one or more truth sets, scored together")
    ap.add_argument("--motif", action="append", default=[],
                    help="motif eval --attributes-out TSV for the set (a path, or a file name "
                    "inside each set); repeat it to score several Motif versions side by side")
    ap.add_argument("--out", help="per-file TSV (default SET_DIR/peers.tsv for each set)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--no-librosa", action="store_true")
    ap.add_argument("--cache", help="JSON of the peers' estimates per file (a path, or a file "
                    "name inside each set): read when it exists, written after the run, so a "
                    "new Motif TSV is scored against the same peer answers without running the "
                    "peers again")
    args = ap.parse_args()
    if args.out and len(args.set_dir) > 1:
        ap.error("--out names one file: give it with one set only")
    peers = [("essentia", essentia_estimator())]
    if not args.no_librosa:
        peers.append(("librosa", librosa_estimator()))
    motif_names = ["motif"] if len(args.motif) == 1 else [
        os.path.splitext(os.path.basename(m))[0] for m in args.motif]
    names = [p[0] for p in peers] + motif_names
    tallies = collections.defaultdict(lambda: {n: Tally() for n in names})
    cpu = collections.Counter()
    total = 0
    for set_dir in args.set_dir:
        total += score_set(set_dir, args, peers, motif_names, tallies, cpu)
    print("set %s (%d files)" % (" + ".join(args.set_dir), total))
    for k in sorted(tallies, key=lambda k: (k != ("all", ""), k)):
        for n in names:
            print("  %-6s %-14s %-8s %s" % (k[0], k[1][:14], n, tallies[k][n].line()))
    for name, _ in peers:
        print("  cpu %s: %.1f s" % (name, cpu[name]))


def score_set(set_dir, args, peers, motif_names, tallies, cpu):
    """Runs (or reads from the cache) the peers on one set and adds every estimate to the
    tallies; writes the set's per-file TSV. Returns the number of files."""
    cached = {}
    cache = in_set(args.cache, set_dir) if args.cache else None
    if cache and os.path.exists(cache):
        with open(cache) as f:
            cached = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
                      for k, v in json.load(f).items()}

    rows = read_tsv(os.path.join(set_dir, "truth.tsv"))
    if args.limit:
        rows = rows[:args.limit]
    motifs = [motif_rows(in_set(m, set_dir), set_dir) for m in args.motif]

    names = [p[0] for p in peers] + motif_names
    out_path = args.out or os.path.join(set_dir, "peers.tsv")
    with open(out_path, "w", newline="") as fo:
        cols = ["path"] + ["%s_%s" % (n, c) for n in names for c in ("bpm", "key", "mode")]
        w = csv.writer(fo, delimiter="\t", lineterminator="\n")
        w.writerow(cols)
        for i, row in enumerate(rows, 1):
            truth = truth_of(row)
            ests = {}
            for name, run in peers:
                hit = cached.get("%s|%s" % (name, row["path"]))
                if hit is not None:
                    ests[name] = hit
                    continue
                t0 = time.process_time()
                try:
                    ests[name] = run(os.path.join(set_dir, row["path"]))
                except Exception as e:  # a peer failing on a file is recorded, not fatal
                    print("%s failed on %s: %s" % (name, row["path"], e), file=sys.stderr)
                    ests[name] = (None, None, True, None, None)
                cpu[name] += time.process_time() - t0
                cached["%s|%s" % (name, row["path"])] = ests[name]
            for n, m in zip(motif_names, motifs):
                ests[n] = m.get(row["path"], (None, None, True, None, None))
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

    if cache:
        with open(cache, "w") as f:
            json.dump(cached, f, default=lambda o: o.item())
    return len(rows)


if __name__ == "__main__":
    main()
