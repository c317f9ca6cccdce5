#!/usr/bin/env python3
"""Fits the metrical-level model of `embeddings/src/level.rs` and the metre model of
`embeddings/src/metre.rs` on rendered score sets and writes their weights
(`embeddings/src/level/weights.rs`, `embeddings/src/metre/weights.rs`).

    MOTIF_DUMP_SIGNALS=SET/dump motif eval --corpus SET --truth SET/truth.tsv   # each set (mkdir first)
    python3 eval/ears/fit.py SET [SET ...] [--c 0.3] [--cv] [--write]

Training sets only: a set used here must never be the one a figure is reported on
(docs/MEASUREMENTS.md names which is which). The label of a candidate tempo is whether it
is within 4 % of the score's quarter-note tempo (truth.tsv `tempo_bpm`); the metre's class
is the felt metre of the time signature (`time_signature`, or `meter` in eval/compose.py
sets; 6/8 is 2 compound, 2/2 is 2), measured at the tempo the level model picks. `--cv` prints
5-fold cross-validated Accuracy1/Accuracy2 on the training sets (to choose C); `--write`
writes the weights fitted on all of them. Needs numpy and scikit-learn.
"""
import argparse
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from features import CLASSES, Evidence, candidates, felt_class, load_set, metre_measures

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "..", "embeddings", "src")


def acc1(e, t):
    return abs(e / t - 1) <= 0.04


def acc2(e, t):
    return any(acc1(e, t * f) for f in (1, 2, 0.5, 3, 1 / 3))


def pieces(sets):
    out = []
    for s in sets:
        for row, d in load_set(s):
            e = Evidence(d)
            cands, feats = candidates(e, d["strongest"])
            ts = row.get("time_signature") or row.get("meter")
            # The metre's measures at every candidate, so any pick can be looked up.
            M = np.array([metre_measures(e, d["chroma"], b) for b in cands])
            out.append(dict(c=cands, F=feats, t=float(row["tempo_bpm"]), k=felt_class(ts), M=M))
    return out


def pick_index(model, p):
    mu, sd, coef = model
    return int(np.argmax(((p["F"] - mu) / sd) @ coef))


def fit_metre(P, level, c):
    rows = [(p["M"][pick_index(level, p)], p["k"]) for p in P if p["k"] is not None]
    X = np.array([r[0] for r in rows])
    mu, sd = X.mean(0), X.std(0) + 1e-9
    m = LogisticRegression(C=c, max_iter=5000).fit((X - mu) / sd, [r[1] for r in rows])
    # Every class in the Rust order; one never seen in training is never predicted.
    coef = np.zeros((len(CLASSES), X.shape[1]))
    icpt = np.full(len(CLASSES), -30.0)
    for j, k in enumerate(CLASSES):
        if k in m.classes_:
            i = list(m.classes_).index(k)
            coef[j], icpt[j] = m.coef_[i], m.intercept_[i]
    return mu, sd, coef, icpt, list(CLASSES)


def metre_of(model, level, p):
    mu, sd, coef, icpt, classes = model
    x = (p["M"][pick_index(level, p)] - mu) / sd
    return classes[int(np.argmax(coef @ x + icpt))]


def rust_array(name, v):
    return "pub(super) const %s: [f32; %d] = [\n%s\n];\n" % (
        name, len(v), "\n".join("    %s," % np.float32(x) for x in v))


def header(sets, n, c):
    return ("//! Weights written by `eval/ears/fit.py` (do not edit).\n//! Fitted on: %s (%d pieces), "
            "C = %s.\n\n" % (", ".join(os.path.basename(s.rstrip("/")) for s in sets), n, c))


def fit(P, c):
    X = np.vstack([p["F"] for p in P])
    y = np.concatenate([[acc1(b, p["t"]) for b in p["c"]] for p in P])
    mu, sd = X.mean(0), X.std(0) + 1e-9
    m = LogisticRegression(C=c, max_iter=5000).fit((X - mu) / sd, y)
    return mu, sd, m.coef_[0]


def pick(model, p):
    mu, sd, coef = model
    return p["c"][int(np.argmax(((p["F"] - mu) / sd) @ coef))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--c", type=float, default=0.3)
    ap.add_argument("--metre-c", type=float, default=0.1)
    ap.add_argument("--cv", action="store_true")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    P = pieces(a.sets)
    print("%d pieces from %s" % (len(P), ", ".join(a.sets)))
    if a.cv:
        for c in (0.03, 0.1, 0.3, 1.0, 3.0):
            res = []
            for seed in range(4):
                for tr, te in KFold(5, shuffle=True, random_state=seed).split(P):
                    m = fit([P[i] for i in tr], c)
                    res.append([np.mean([acc1(pick(m, P[i]), P[i]["t"]) for i in te]),
                                np.mean([acc2(pick(m, P[i]), P[i]["t"]) for i in te])])
            print("C %-5s cross-validated A1 %.3f A2 %.3f" % (c, *np.mean(res, 0)))
        for c in (0.03, 0.1, 0.3, 1.0):
            res = []
            for seed in range(4):
                for tr, te in KFold(5, shuffle=True, random_state=seed).split(P):
                    level = fit([P[i] for i in tr], a.c)
                    m = fit_metre([P[i] for i in tr], level, c)
                    res.append(np.mean([P[i]["k"] is not None and metre_of(m, level, P[i]) == P[i]["k"]
                                        for i in te]))
            print("metre C %-5s cross-validated exact %.3f" % (c, np.mean(res)))
    if a.write:
        level = fit(P, a.c)
        with open(os.path.join(SRC, "level", "weights.rs"), "w") as f:
            f.write(header(a.sets, len(P), a.c))
            f.write(rust_array("MEAN", level[0]) + "\n" + rust_array("SD", level[1]) + "\n"
                    + rust_array("COEF", level[2]))
        mu, sd, coef, icpt, classes = fit_metre(P, level, a.metre_c)
        assert classes == CLASSES, classes
        with open(os.path.join(SRC, "metre", "weights.rs"), "w") as f:
            f.write(header(a.sets, sum(p["k"] is not None for p in P), a.metre_c))
            f.write(rust_array("MEAN", mu) + "\n" + rust_array("SD", sd) + "\n"
                    + rust_array("COEF", coef.ravel()) + "\n" + rust_array("INTERCEPT", icpt))
        print("wrote the weights under", os.path.normpath(SRC))


if __name__ == "__main__":
    main()
