#!/usr/bin/env python3
"""Fits the key profiles of `embeddings/src/tonal.rs`: the textbook profiles (Krumhansl-
Kessler + Temperley) held toward what rendered scores sound like through Motif's
harmonic-summed chroma.

    MOTIF_DUMP_SIGNALS=SET/dump motif eval --corpus SET --truth SET/truth.tsv   # each set
    python3 eval/ears/key_profiles.py --train SET [SET ...] [--check SET ...] [--corpus DIR]

Per mode, the learned profile is the mean of the training pieces' `key_chroma` (unit sum)
rotated to their tonic; the profile used is (1 - lam) z(textbook) + lam z(learned), z the
standardisation (Pearson correlation, the key's measure, ignores scale and offset). lam is
chosen by 5-fold cross-validation on the training sets only (grid 0, 0.1, ..., 1; the
smaller on a tie). Prints the cross-validation, the chosen lam and the learned means for
tonal.rs; `--check` scores held-out sets (MIREX, as `motif eval`) with the textbook and
the fitted profiles; `--corpus` the agreement with Essentia's key over the dev corpus
(dumps in DIR/dump; docs/peer/essentia_dev_corpus.tsv; fifths both ways, as
docs/peer/compare.py). Needs numpy.
"""
import argparse
import csv
import json
import os

import numpy as np

from features import load_set

HERE = os.path.dirname(os.path.abspath(__file__))
PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
FLAT = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E",
        "E#": "F", "B#": "C", "D-": "C#", "E-": "D#", "G-": "F#", "A-": "G#", "B-": "A#"}
KK = [np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
      np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])]
TEMPERLEY = [np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400]),
             np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])]
TEXTBOOK = [k / k.sum() + t / t.sum() for k, t in zip(KK, TEMPERLEY)]
GRID = [round(0.1 * i, 1) for i in range(11)]


def z(p):
    p = np.asarray(p, float)
    return (p - p.mean()) / p.std()


def pitch_class(name):
    return PCS.index(FLAT.get(name, name))


def load(sets):
    X, Y = [], []
    for s in sets:
        for row, d in load_set(s):
            X.append(np.array(d["key_chroma"], float))
            tonic = row.get("tonic") or row.get("key")
            Y.append((pitch_class(tonic), row["mode"].lower().startswith("maj")))
    return np.array(X), Y


def estimate(chroma, profiles):
    """(tonic, major) of the best-correlated rotated profile, as tonal::estimate_key."""
    best = (-2.0, 0, True)
    for tonic in range(12):
        rotated = np.roll(chroma, -tonic)
        for major, p in ((True, profiles[0]), (False, profiles[1])):
            r = np.corrcoef(rotated, p)[0, 1]
            if r > best[0]:
                best = (r, tonic, major)
    return best[1], best[2]


def mirex(est, truth, fifths=(7,)):
    (et, em), (tt, tm) = est, truth
    up = (et - tt) % 12
    if em == tm:
        return 1.0 if up == 0 else 0.5 if up in fifths else 0.0
    if (tm and up == 9) or (not tm and up == 3):
        return 0.3
    return 0.2 if up == 0 else 0.0


def learned(X, Y):
    return [np.mean([np.roll(x / x.sum(), -t) for x, (t, m) in zip(X, Y) if m == major], 0)
            for major in (True, False)]


def blend(L, lam):
    return [(1 - lam) * z(TEXTBOOK[i]) + lam * z(L[i]) for i in range(2)]


def score(X, Y, profiles):
    return float(np.mean([mirex(estimate(x, profiles), y) for x, y in zip(X, Y)]))


def corpus_agreement(corpus, profiles):
    rows = csv.DictReader(open(os.path.join(HERE, "..", "..", "docs", "peer",
                                            "essentia_dev_corpus.tsv")), delimiter="\t")
    scores = []
    for r in rows:
        f = os.path.join(corpus, "dump", os.path.basename(r["path"]) + ".json")
        if r["error"] or not os.path.exists(f):
            continue
        chroma = np.array(json.load(open(f))["key_chroma"], float)
        ref = (pitch_class(r["essentia_key"]), r["essentia_scale"] == "major")
        scores.append(mirex(estimate(chroma, profiles), ref, fifths=(5, 7)))
    return float(np.mean(scores)), len(scores)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--check", nargs="*", default=[])
    ap.add_argument("--corpus")
    a = ap.parse_args()
    X, Y = load(a.train)
    idx = np.random.default_rng(0).permutation(len(X))
    folds = np.array_split(idx, 5)
    cv = {}
    for lam in GRID:
        s = []
        for f in folds:
            rest = np.setdiff1d(idx, f)
            L = learned(X[rest], [Y[i] for i in rest])
            s += [mirex(estimate(X[i], blend(L, lam)), Y[i]) for i in f]
        cv[lam] = float(np.mean(s))
    lam = max(GRID, key=lambda l: (round(cv[l], 4), -l))
    print(f"training pieces {len(X)}; 5-fold MIREX by lam: "
          + " ".join(f"{l}:{cv[l]:.4f}" for l in GRID) + f"; chosen {lam}")
    L = learned(X, Y)
    fitted = blend(L, lam)
    for name, p in zip(("LEARNED_MAJOR", "LEARNED_MINOR"), L):
        print(f"const {name}: [f32; 12] = [{', '.join(f'{v:.6f}' for v in p)}];")
    for s in a.check:
        Xs, Ys = load([s])
        print(f"{s}: {len(Xs)} pieces, MIREX textbook {score(Xs, Ys, TEXTBOOK):.4f}, "
              f"fitted {score(Xs, Ys, fitted):.4f}")
    if a.corpus:
        (t, n), (f, _) = corpus_agreement(a.corpus, TEXTBOOK), corpus_agreement(a.corpus, fitted)
        print(f"dev corpus, agreement with Essentia ({n} files): textbook {t:.4f}, fitted {f:.4f}")


if __name__ == "__main__":
    main()
