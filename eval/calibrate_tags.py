#!/usr/bin/env python3
"""Calibrate and score the learned instrument tags on rendered score sets.

    motif analyze --no-vectors SET_A > a.jsonl     # the tuning set
    motif analyze --no-vectors SET_B > b.jsonl     # held out
    python3 eval/calibrate_tags.py SET_A/truth.tsv a.jsonl SET_B/truth.tsv b.jsonl

SET_A and SET_B come from ../shared/evalsets/render-scores.py with different seeds; each
piece is played by one instrument family (piano, strings, organ, guitar, brass,
woodwinds). For every instrument tag a family can confirm, the threshold is the one that
maximises F1 on the tuning set (a grid of 0.02 steps); precision, recall and F1 are then
reported on the held-out set with that threshold, next to a majority baseline (never
tagging scores F1 0). Organ and brass have no label in either model's vocabulary, so they
cannot be tagged; their pieces count as negatives for every tag.

Scores are recomputed here from `model_scores` (the raw label scores every analysis
keeps) with the synonym merging of embeddings/src/learned/vocabulary.rs, so thresholds
can be tried without analysing again. Only the Python standard library is used.
"""
import csv
import json
import os
import sys

MSD = ["rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
       "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
       "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
       "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
       "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
       "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
       "60s", "rnb", "indie pop", "sad", "House", "happy"]
MTT = ["guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
       "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera",
       "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute",
       "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic",
       "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp",
       "cello", "no voice", "weird", "country", "metal", "female voice", "choral"]

# Motif tag -> (its labels, the score-set family that confirms it).
CHECKED = {
    "instrument:piano": (["mtt:piano"], "piano"),
    "instrument:strings": (["mtt:strings", "mtt:violin", "mtt:cello"], "strings"),
    "instrument:guitar": (["msd:guitar", "mtt:guitar"], "guitar"),
    "instrument:flute": (["mtt:flute"], "woodwinds"),
}
# Tags every piece of a score set should (vocals:none, genre:classical) or should not get.
ALWAYS = {
    "vocals:none": ["msd:instrumental", "mtt:no vocals", "mtt:no vocal", "mtt:no voice"],
    "genre:classical": ["mtt:classical", "mtt:classic"],
}


def score(scores, labels):
    out = 0.0
    for label in labels:
        model, name = label.split(":", 1)
        names, values = (MSD, scores["msd"]) if model == "msd" else (MTT, scores["mtt"])
        out = max(out, values[names.index(name)])
    return out


def load(truth_path, analyses_path):
    base = os.path.dirname(os.path.abspath(truth_path))
    family = {}
    with open(truth_path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            family[os.path.normpath(os.path.join(base, row["path"]))] = row["family"]
    pieces = []
    with open(analyses_path) as f:
        for line in f:
            a = json.loads(line)
            path = os.path.normpath(os.path.abspath(a["path"]))
            if path in family and "analysis" in a and a["analysis"].get("model_scores"):
                pieces.append((family[path], a["analysis"]["model_scores"]))
    return pieces


def prf(pieces, labels, fam, threshold):
    tp = fp = fn = 0
    for family, scores in pieces:
        hit = score(scores, labels) >= threshold
        want = family == fam
        tp += hit and want
        fp += hit and not want
        fn += want and not hit
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    tune = load(sys.argv[1], sys.argv[2])
    test = load(sys.argv[3], sys.argv[4])
    print(f"tuning set: {len(tune)} pieces; held-out set: {len(test)} pieces")
    print(f"{'tag':<20} {'threshold':>9} {'tune F1':>8} | held out: {'P':>5} {'R':>5} {'F1':>5}  positives")
    grid = [i / 50 for i in range(1, 50)]
    for tag, (labels, fam) in CHECKED.items():
        best = max(grid, key=lambda t: (prf(tune, labels, fam, t)[2], -t))
        _, _, f1_tune = prf(tune, labels, fam, best)
        p, r, f1 = prf(test, labels, fam, best)
        positives = sum(f == fam for f, _ in test)
        print(f"{tag:<20} {best:>9.2f} {f1_tune:>8.3f} | {'':>9} {p:>5.3f} {r:>5.3f} {f1:>5.3f}  {positives}")
    for tag, labels in ALWAYS.items():
        values = sorted(score(s, labels) for _, s in test)
        mid = values[len(values) // 2] if values else float("nan")
        print(f"{tag:<20} held-out scores: median {mid:.3f}, min {values[0]:.3f}, max {values[-1]:.3f}")


if __name__ == "__main__":
    main()
