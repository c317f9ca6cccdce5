"""The measures `embeddings/src/level.rs` (the metrical level) and `embeddings/src/metre.rs`
(beats per bar) score, computed in numpy from the signals the analyser dumps
(`MOTIF_DUMP_SIGNALS=DIR motif eval ...`). Kept line for line with the Rust: a change
there is a change here, and `fit.py` refits the weights."""
import csv
import json
import os

import numpy as np

FPS = 22050 / 256
CHROMA_FPS = 22050 / 2048
WIN = int(12 * FPS)
RATIOS = [1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1, 4 / 3, 3 / 2, 2, 3, 4]
LAGS = [0.5, 1 / 3, 2 / 3, 1, 1.5, 2, 3, 4]
COMB = [(1.0, 1.0), (2.0, 0.5), (3.0, 0.3), (4.0, 0.25)]


def novelty(onset):
    x = np.asarray(onset, dtype=np.float64)
    half = int(FPS / 2)
    c = np.concatenate([[0], np.cumsum(x)])
    t = np.arange(len(x))
    a, b = np.maximum(t - half, 0), np.minimum(t + half + 1, len(x))
    return np.maximum(x - (c[b] - c[a]) / (b - a), 0)


def window_acfs(x, win):
    n_fft = 1 << (2 * win - 1).bit_length()
    starts = list(range(0, max(len(x) - win, 0) + 1, max(win // 2, 1))) or [0]
    out = []
    for s in starts:
        seg = x[s:s + win]
        n = len(seg)
        ac = np.fft.irfft(np.abs(np.fft.rfft(seg, n_fft)) ** 2, n_fft)
        if ac[0] <= 0:
            out.append(None)
            continue
        lags = np.arange(min(n, win) // 2 + 1)
        out.append(ac[:len(lags)] / ac[0] * n / (n - lags))
    return out


def mean_of(curves):
    curves = [c for c in curves if c is not None]
    if not curves:
        return np.zeros(0)
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0)


def at(a, lag):
    i = int(np.floor(lag))
    if lag < 0 or i + 1 >= len(a):
        return 0.0
    f = lag - i
    return a[i] * (1 - f) + a[i + 1] * f


def comb(acf, lag):
    return sum(w * at(acf, m * lag) for m, w in COMB)


def refine(acf, bpm):
    best, b = (bpm, -1e30), bpm / 1.03
    while b <= bpm * 1.03:
        s = comb(acf, 60 * FPS / b)
        if s > best[1]:
            best = (b, s)
        b *= 1.002
    return best[0]


def peak_rate(nov):
    if len(nov) < 3:
        return 0.0
    thr = nov.mean() + nov.std()
    mid = nov[1:-1]
    return np.sum((mid > nov[:-2]) & (mid >= nov[2:]) & (mid > thr)) / (len(nov) / FPS)


def harmony_acf(chroma):
    ch = np.asarray(chroma, dtype=np.float64)
    if len(ch) < 3:
        return np.zeros(0)
    norm = np.linalg.norm(ch, axis=1) + 1e-9
    change = 1 - (ch[1:] * ch[:-1]).sum(1) / (norm[1:] * norm[:-1])
    local = np.maximum(change - np.convolve(change, np.ones(11) / 11, mode="same"), 0)
    return mean_of(window_acfs(local, int(12 * CHROMA_FPS)))


class Evidence:
    def __init__(self, d):
        self.full_nov, self.bass_nov = novelty(d["onset"]), novelty(d["onset_low"])
        full, bass = window_acfs(self.full_nov, WIN), window_acfs(self.bass_nov, WIN)
        mixed = [(a + b) / 2 if a is not None and b is not None else (a if a is not None else b)
                 for a, b in zip(full, bass)]
        self.full, self.bass, self.mixed = mean_of(full), mean_of(bass), mean_of(mixed)
        self.onset_rate, self.bass_onset_rate = peak_rate(self.full_nov), peak_rate(self.bass_nov)
        self.harmony = harmony_acf(d["chroma"])


def measures(e, bpm):
    period = 60 * FPS / bpm
    tempo = np.log2(bpm / 120)
    per_beat = lambda r: np.log2(max(r, 0.05) * 60 / bpm)
    o, ob = per_beat(e.onset_rate), per_beat(e.bass_onset_rate)
    cp = 60 * CHROMA_FPS / bpm
    return ([tempo, tempo * tempo] + [at(e.full, k * period) for k in LAGS]
            + [at(e.bass, k * period) for k in LAGS] + [o, o * o, ob, ob * ob]
            + [at(e.harmony, k * cp) for k in (1.0, 2.0, 0.5)])


def candidates(e, strongest):
    cands = [refine(e.mixed, strongest * r) for r in RATIOS if 30 <= strongest * r <= 250]
    base = np.array([measures(e, b) for b in cands])
    rel = base[:, 2:] - base[:, 2:].max(axis=0)
    return np.array(cands), np.hstack([base, rel])


def load_set(set_dir, dump="dump"):
    """(truth row, dumped signals) for every file of a rendered set that has a dump."""
    rows = list(csv.DictReader(open(os.path.join(set_dir, "truth.tsv")), delimiter="\t"))
    out = []
    for r in rows:
        f = os.path.join(set_dir, dump, os.path.basename(r["path"]) + ".json")
        if os.path.exists(f):
            out.append((r, json.load(open(f))))
    return out


# Metre (embeddings/src/metre.rs): beats per bar and compound division, from periodicity at
# multiples of the chosen beat, the harmony's periodicity over longer windows, and where
# onsets fall inside a beat and inside a dotted beat.
BAR_LAGS = [1.5, 2, 3, 4, 6, 8]
CLASSES = ["2", "3", "4", "2c", "3c", "4c"]


def harmony_change(chroma):
    ch = np.asarray(chroma, dtype=np.float64)
    if len(ch) < 3:
        return np.zeros(0)
    norm = np.linalg.norm(ch, axis=1) + 1e-9
    return 1 - (ch[1:] * ch[:-1]).sum(1) / (norm[1:] * norm[:-1])


def within(nov, period):
    """Mean novelty at 12 points of each period-long cell from the best grid phase, over its max."""
    n, best = len(nov), (-1.0, 0.0)
    ph = 0.0
    while ph < period:
        idx = np.round(np.arange(ph, n, period)).astype(int)
        idx = idx[idx < n]
        v = nov[idx].mean() if len(idx) else 0.0
        if v > best[0]:
            best = (v, ph)
        ph += 1.0
    cells, t = [], best[1]
    while t + period < n:
        cells.append([nov[int(t + k * period / 12)] for k in range(12)])
        t += period
    c = np.mean(cells, 0) if cells else np.zeros(12)
    return c / (c.max() + 1e-9)


def metre_measures(e, chroma, bpm):
    period, cp = 60 * FPS / bpm, 60 * CHROMA_FPS / bpm
    harmony = mean_of(window_acfs(harmony_change(chroma), int(24 * CHROMA_FPS)))
    s, s2 = within(e.full_nov, period), within(e.full_nov, 1.5 * period)
    return np.array([np.log2(bpm / 120)]
                    + [at(e.full, k * period) for k in BAR_LAGS + [0.5, 1 / 3]]
                    + [at(e.bass, k * period) for k in BAR_LAGS + [0.5, 1 / 3]]
                    + [at(harmony, k * cp) for k in BAR_LAGS]
                    + [s[4] + s[8], s[6], s[3] + s[9], s2[4] + s2[8], s2[6]])


def felt_class(ts):
    """The felt metre of a time signature as a class name, or None (as `motif eval`)."""
    try:
        num, den = (int(x) for x in ts.split("/"))
    except (ValueError, AttributeError):
        return None
    if num in (6, 9, 12) and den in (4, 8, 16):
        return "%dc" % (num // 3)
    if num in (2, 3, 4) and den in (2, 4):
        return str(num)
    return None
