#!/usr/bin/env python3
"""Adjudicate tempo/key disagreements between Motif and Essentia.

Independent of both analysers: onsets come from librosa's spectral-flux
onset envelope, keys from a CQT chroma (librosa.feature.chroma_cqt).  Nothing
here is part of the Rust build; it only reads the corpus and the two TSVs.

Usage (from the repo root; run it niced, the machine is shared):

    nice -n 10 /work/peer-venv/bin/python docs/peer/adjudicate/adjudicate.py \
        [--corpus /work/corpus] [--motif /work/motif_dev_corpus.tsv] \
        [--essentia docs/peer/essentia_dev_corpus.tsv] \
        [--wav-dir /tmp/adjudicate] [--out docs/peer/adjudicate/results.md] \
        [--only SUBSTRING] [--no-wav]

Needs numpy, scipy, librosa, soundfile (pip install librosa soundfile).
Writes the listening mixes (music + click track, music + drone) as WAVs under
--wav-dir and the results table (Markdown) to --out.  See results.md for the
method and its limits.
"""
import argparse
import csv
import os
import sys
import time

import numpy as np
import scipy.ndimage
import scipy.signal
import librosa
import soundfile as sf

SR = 22050
HOP = 256                      # 11.6 ms frames for onsets
TOL = 0.050                    # +-50 ms hit window
WIN = 20.0                     # first / last window for alignment and drift
PHASE_STEP = 0.005             # phase search resolution (s)
STRONG_Q = 70                  # strong onsets: strength >= 70th percentile (top 30 %)

PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
MAJOR = (0, 2, 4, 5, 7, 9, 11)
NAT_MINOR = (0, 2, 3, 5, 7, 8, 10)
HARM_MINOR_EXTRA = (11,)       # raised 7th added to the natural minor (brief's definition)
# Krumhansl-Kessler probe-tone profiles (third opinion only)
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# Files to adjudicate (relative to the corpus root).  Tempo: 3:2 / 4:3 style
# disagreements marked NO in peer-compare.txt.  Key: MIREX score < 1.
TEMPO_FILES = [
    "music/supertuxkart-data/overworld.ogg",
    "music/supertuxkart-data/snowmountain.ogg",
    "music/supertuxkart-data/farm_f.ogg",
    "music/supertuxkart-data/garden.ogg",
    "music/supertuxkart-data/Boom_boom_boom.ogg",
    "music/supertuxkart-data/win_theme.ogg",
    "music/supertux-data/invincible.ogg",
    "music/supertux-data/ice_music.ogg",
    "music/wesnoth-1.16-music/love_theme.ogg",
    "music/wesnoth-1.16-music/transience.ogg",
    "music/wesnoth-1.16-music/heroes_rite.ogg",
    "music/wesnoth-1.16-music/journeys_end.ogg",
    "music/wesnoth-1.16-music/silvan_sanctuary.ogg",
    "music/wesnoth-1.16-music/northerners.ogg",
]
KEY_FILES = [
    "music/extremetuxracer-data/raceintro-ks.ogg",
    "music/extremetuxracer-data/calmrace-ks.ogg",
    "music/hedgewars-data/Halloween.ogg",
    "music/hedgewars-data/olympics_sd.ogg",
    "music/supertux-data/classic.ogg",
    "music/wesnoth-1.16-music/elvish-theme.ogg",
    "music/wesnoth-1.16-music/northerners.ogg",
    "music/wesnoth-1.16-music/silvan_sanctuary.ogg",
    "music/wesnoth-1.16-music/elf-land.ogg",
]


# --------------------------------------------------------------------- I/O
def suffix(path):
    i = path.find("music/")
    return path[i:] if i >= 0 else path


def read_tsv(path, bpm_col, key_col, mode_col):
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row.get("error"):
                continue
            try:
                bpm = float(row[bpm_col])
            except (TypeError, ValueError):
                bpm = None
            out[suffix(row["path"])] = (bpm, row[key_col].strip(), row[mode_col].strip())
    return out


def load(path):
    y, _ = librosa.load(path, sr=SR, mono=True)
    return y.astype(np.float32)


def sound_span(y):
    """Start and end (s) of the audible part (40 dB below peak)."""
    _, idx = librosa.effects.trim(y, top_db=40, frame_length=2048, hop_length=512)
    return idx[0] / SR, idx[1] / SR


def write_mix(path, music, extra):
    n = max(len(music), len(extra))
    m = np.zeros(n, np.float32)
    m[:len(music)] += 0.7 * music
    m[:len(extra)] += extra
    peak = np.max(np.abs(m))
    if peak > 0.99:
        m *= 0.99 / peak
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, m, SR, subtype="PCM_16")


# ------------------------------------------------------------------- tempo
class Onsets:
    def __init__(self, y):
        self.env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)
        self.t = librosa.frames_to_time(np.arange(len(self.env)), sr=SR, hop_length=HOP)
        fr = librosa.onset.onset_detect(onset_envelope=self.env, sr=SR, hop_length=HOP,
                                        units="frames")
        self.on_t = librosa.frames_to_time(fr, sr=SR, hop_length=HOP)
        self.on_s = self.env[fr]
        thr = np.percentile(self.on_s, STRONG_Q) if len(fr) else 0.0
        self.strong_t = self.on_t[self.on_s >= thr]
        # envelope smoothed with a ~15 ms Gaussian: used to choose the phase
        self.smooth = scipy.ndimage.gaussian_filter1d(self.env, 15e-3 * SR / HOP)
        # envelope max-filtered over +-50 ms: "accent" at a click
        w = 2 * int(round(TOL * SR / HOP)) + 1
        self.maxf = scipy.ndimage.maximum_filter1d(self.env, w)

    def at(self, arr, times):
        return np.interp(times, self.t, arr)


def grid(t0, period, lo, hi):
    """Clicks t0 + k*period inside [lo, hi)."""
    k0 = np.ceil((lo - t0) / period)
    k1 = np.floor((hi - 1e-9 - t0) / period)
    if k1 < k0:
        return np.zeros(0)
    return t0 + period * np.arange(k0, k1 + 1)


def best_phase(ons, period, lo, hi):
    """Grid origin in [lo, lo+period) maximising the smoothed onset envelope at the clicks."""
    return _phase_search(ons, period, lo, hi)[0]


def _phase_search(ons, period, lo, hi):
    ph = np.arange(0.0, period, PHASE_STEP)
    kmax = int(np.floor((hi - lo) / period)) + 1
    t = lo + ph[:, None] + period * np.arange(kmax)[None, :]
    ok = t < hi
    v = np.where(ok, ons.at(ons.smooth, np.where(ok, t, lo)), 0.0)
    n = ok.sum(axis=1)
    mean = np.where(n > 0, v.sum(axis=1) / np.maximum(n, 1), -1.0)
    i = int(np.argmax(mean))
    return lo + ph[i], float(mean[i])


def fit(ons, bpm, lo, hi, rel=0.04, step=0.0025):
    """Best steady (tempo, phase) with tempo within +-rel of bpm, over [lo, hi)."""
    best = (-1.0, bpm, lo)
    for b in bpm * (1.0 + np.arange(-rel, rel + 1e-9, step)):
        t0, v = _phase_search(ons, 60.0 / b, lo, hi)
        if v > best[0]:
            best = (v, b, t0)
    return best[1], best[2]


def near(a, b, tol=TOL):
    """For each a: is there a b within tol?"""
    if len(a) == 0:
        return np.zeros(0, bool)
    if len(b) == 0:
        return np.zeros(len(a), bool)
    b = np.sort(b)
    i = np.clip(np.searchsorted(b, a), 1, len(b) - 1)
    d = np.minimum(np.abs(a - b[i - 1]), np.abs(a - b[i]))
    if len(b) == 1:
        d = np.abs(a - b[0])
    return d <= tol


def coverage(points, lo, hi, tol=TOL):
    """Share of [lo, hi] within tol of some point (= hit chance of a random time)."""
    ts = np.arange(lo, hi, 0.001)
    return float(near(ts, points, tol).mean()) if len(ts) else float("nan")


def scores(ons, t0, period, lo, hi):
    """(a) click->onset hit share, (b) strong onset->click/half-click share, accent."""
    clicks = grid(t0, period, lo, hi)
    on = ons.on_t[(ons.on_t >= lo) & (ons.on_t < hi)]
    st = ons.strong_t[(ons.strong_t >= lo) & (ons.strong_t < hi)]
    a = float(near(clicks, on).mean()) if len(clicks) else float("nan")
    a_ch = coverage(on, lo, hi)
    half = grid(t0, period / 2.0, lo - period, hi + period)
    b = float(near(st, half).mean()) if len(st) else float("nan")
    b_on = float(near(st, grid(t0, period, lo - period, hi + period)).mean()) if len(st) else float("nan")
    b_ch = min(1.0, 2 * TOL / (period / 2.0))
    # accent: mean of the +-50 ms max of the onset envelope at the clicks,
    # relative to its mean over the span (random placement -> 1.0)
    m = (ons.t >= lo) & (ons.t < hi)
    acc = float(ons.at(ons.maxf, clicks).mean() / ons.maxf[m].mean()) if len(clicks) else float("nan")
    return dict(a=a, a_ch=a_ch, b=b, b_on=b_on, b_ch=b_ch, acc=acc, n_clicks=len(clicks),
                n_strong=len(st))


def lift(x, ch):
    """Chance-corrected score: 0 = chance, 1 = perfect."""
    return (x - ch) / (1.0 - ch) if ch < 1 else float("nan")


def wrap(x, period):
    return (x + period / 2.0) % period - period / 2.0


def tempo_candidate(ons, bpm, lo, hi):
    # 1. the claimed value as is (the brief's test): phase from the first
    #    20 s, then free-running to the end.
    P = 60.0 / bpm
    w1 = min(hi, lo + WIN)
    t0 = best_phase(ons, P, lo, w1)
    whole = scores(ons, t0, P, lo, hi)
    first = scores(ons, t0, P, lo, w1)
    lw = max(lo, hi - WIN)
    last = scores(ons, t0, P, lw, hi)
    t_last = best_phase(ons, P, lw, hi)               # where the grid "should" be at the end
    drift = wrap(t_last - t0, P)
    # 2. the metrical level: every 20 s window gets its own best steady tempo
    #    within +-4 % of the claim (the usual Accuracy1 tolerance, also used by
    #    compare.py) and its own best phase.  This judges the level (beat vs
    #    2/3 or 3/2 of it) independently of a slightly imprecise value or of
    #    rubato, which make a free-running grid drift.  Both candidates get
    #    exactly the same freedom.
    loc, loc_bpm = [], []
    edges = np.arange(lo, hi, WIN)
    for s in edges:
        e = min(hi, s + WIN)
        if e - s < 0.5 * WIN and len(edges) > 1:
            continue
        b, t = fit(ons, bpm, s, e)
        loc.append(scores(ons, t, 60.0 / b, s, e))
        loc_bpm.append(b)
    local = {k: float(np.nanmean([d[k] for d in loc])) for k in ("a", "a_ch", "b", "b_ch", "acc")}
    local["bpm_min"], local["bpm_max"] = min(loc_bpm), max(loc_bpm)
    # 3. best steady tempo within +-4 % over the whole track (free-running):
    #    high scores here mean the music is steady and the level fits throughout.
    rb, rt = fit(ons, bpm, lo, hi, step=0.0003)
    w = scores(ons, rt, 60.0 / rb, lo, hi)
    refined = dict(bpm=rb, t0=rt, a_lift=lift(w["a"], w["a_ch"]), b_lift=lift(w["b"], w["b_ch"]),
                   acc=w["acc"])
    return dict(bpm=bpm, P=P, t0=t0, whole=whole, first=first, last=last, drift=drift,
                local=local, refined=refined)


RATIOS = [(3, 2), (4, 3), (5, 3), (5, 4), (7, 4), (7, 5)]   # fast : slow


def fold(ons, ce, cm, lo, hi):
    """Onset envelope folded on the common subdivision of the two tempos.

    For a fast:slow ratio p:q the tatum is 1/q of a fast beat = 1/p of a slow
    beat; the cycle shown is 2*p*q tatums.  The grid comes from the whole-track
    steady fit of the faster tempo, so it is only meaningful for steady music.
    Returns (p, q, fast who, digit string 0-9, salience fast, salience slow),
    salience = mean of the folded envelope on the candidate's beats (best
    rotation) / mean over all tatums.  None if the ratio is not a small one.
    """
    fe, fm = ce["refined"], cm["refined"]
    fast, slow, who = (fe, fm, "E") if fe["bpm"] > fm["bpm"] else (fm, fe, "M")
    r = fast["bpm"] / slow["bpm"]
    pq = next(((p_, q_) for p_, q_ in RATIOS if abs(r / (p_ / q_) - 1.0) < 0.02), None)
    if pq is None:
        return None
    p_, q_ = pq
    T = 60.0 / fast["bpm"] / q_
    n = 2 * p_ * q_
    tt = grid(fast["t0"], T, lo, hi)
    w = max(1, int(round(0.02 * SR / HOP)))
    mf = scipy.ndimage.maximum_filter1d(ons.env, 2 * w + 1)
    v = ons.at(mf, tt)
    k = len(v) // n
    if k < 2:
        return None
    M = v[:k * n].reshape(k, n).mean(axis=0)
    sal_f = max(M[i::q_].mean() for i in range(q_)) / M.mean()
    sal_s = max(M[i::p_].mean() for i in range(p_)) / M.mean()
    span = max(M.max() - M.min(), 1e-9)
    digits = "".join(str(int(round(9 * (x - M.min()) / span))) for x in M)
    return p_, q_, who, digits, sal_f, sal_s


def click_track(n, t0, period, lo, hi):
    out = np.zeros(n, np.float32)
    L = int(0.015 * SR)
    tt = np.arange(L) / SR
    burst = (0.5 * np.sin(2 * np.pi * 1500 * tt) * np.exp(-tt / 0.004)).astype(np.float32)
    for c in grid(t0, period, lo, hi):
        i = int(round(c * SR))
        j = min(n, i + L)
        if 0 <= i < n:
            out[i:j] += burst[:j - i]
    return out


def tempo_verdict(c_e, c_m):
    """Decide from the local (per-window refitted) scores.

    Primary tests, decisive when the chance-corrected difference exceeds 0.10:
      (a) click->onset hits.  If the slower tempo is the beat, the faster one
          puts every other/third click between beats (2/3 of a beat), so (a)
          catches a wrong *faster* tempo; a wrong slower tempo still clicks on
          beats or off-beats and usually scores well on (a).
      (b) strong onsets on a click or half-way.  If the faster tempo is the
          beat, the slower grid (+ half-way points) misses 2 of 3 beats, so (b)
          catches a wrong *slower* tempo; a wrong faster grid still contains
          the true beats (at clicks and half-way points).
    Secondary: accent (mean onset strength at the clicks, random = 1.0),
    decisive past 0.10.
    a and b agree (or one is neutral): that tempo; "clear" unless the accent
    contradicts it.  a and b contradict each other: the accent decides, "weak".
    Only one of a/b decisive: "clear" if its margin is >= 0.3 or the accent
    agrees, else "weak".  Only the accent decisive: "weak".  Nothing decisive:
    "unclear".  If the winner's own grid fits poorly (local lift(a) < 0.3 or
    lift(b) < 0.5: sparse onsets, rubato, free time) the verdict becomes
    "unclear (leans X)".
    """
    le, lm = c_e["local"], c_m["local"]
    val = {"a": (lift(le["a"], le["a_ch"]), lift(lm["a"], lm["a_ch"])),
           "b": (lift(le["b"], le["b_ch"]), lift(lm["b"], lm["b_ch"])),
           "acc": (le["acc"], lm["acc"])}
    vote = {}
    for k, (ve, vm) in val.items():
        vote[k] = "E" if ve - vm > 0.10 else ("M" if vm - ve > 0.10 else "=")
    prim = {vote["a"], vote["b"]} - {"="}
    weak = False
    if len(prim) == 1:
        w = prim.pop()
        big = max(abs(val[k][0] - val[k][1]) for k in ("a", "b") if vote[k] == w)
        # one primary test only: clear if its margin is large (>= 0.3) or the
        # accent agrees, weak otherwise; contradicted by the accent: weak
        weak = vote["acc"] not in ("=", w) or (vote["acc"] != w and big < 0.3)
    else:                       # none, or a and b contradict each other
        w, weak = vote["acc"], True
    detail = " ".join("%s:%s" % (k, vote[k]) for k in ("a", "b", "acc"))
    if w == "=":
        return "unclear", detail
    name = "Essentia" if w == "E" else "Motif"
    i = 0 if w == "E" else 1
    if val["a"][i] < 0.3 or val["b"][i] < 0.5:
        # the winning grid itself fits poorly (sparse onsets, rubato, free time)
        return "unclear (leans %s)" % name, detail
    return name + (" (weak)" if weak else ""), detail


# --------------------------------------------------------------------- key
def key_pc(name):
    return PCS.index(name)


def scale_set(tonic, mode, with_leading=True):
    if mode == "major":
        rel = MAJOR
    else:
        rel = NAT_MINOR + (HARM_MINOR_EXTRA if with_leading else ())
    return sorted({(tonic + r) % 12 for r in rel})


def triad(tonic, mode):
    return [(tonic + r) % 12 for r in ((0, 4, 7) if mode == "major" else (0, 3, 7))]


def chroma_of(y, **kw):
    """CQT chroma, magnitude, no per-frame normalisation (loud frames weigh more)."""
    return librosa.feature.chroma_cqt(y=y, sr=SR, hop_length=2048, norm=None, **kw)


def prof(ch):
    p = ch.sum(axis=1)
    s = p.sum()
    return p / s if s > 0 else p


def kk_best(p):
    best = None
    for t in range(12):
        for mode, tpl in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            r = np.corrcoef(p, np.roll(tpl, t))[0, 1]
            if best is None or r > best[0]:
                best = (r, PCS[t], mode)
    return best


def drone(n, tonic, level_db=-20.0):
    """Tonic + fifth in octaves 3 and 4, sine with a little 2nd harmonic, RMS = level_db."""
    t = np.arange(n) / SR
    f_t = librosa.note_to_hz(PCS[tonic] + "3")
    sig = np.zeros(n)
    for f in (f_t, f_t * 1.5, 2 * f_t, 3 * f_t):
        sig += np.sin(2 * np.pi * f * t) + 0.15 * np.sin(4 * np.pi * f * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.5) if n > SR else np.ones(n)
    sig *= fade
    rms = np.sqrt(np.mean(sig ** 2))
    return (sig * (10 ** (level_db / 20.0)) / rms).astype(np.float32)


def key_analysis(y, lo, hi):
    yh = librosa.effects.harmonic(y)
    seg = yh[int(lo * SR):int(hi * SR)]
    ch = chroma_of(seg)
    p_all = prof(ch)
    nfr = ch.shape[1]
    fr10 = max(1, int(round(min(10.0, (hi - lo) / 4.0) * SR / 2048)))
    p_first = prof(ch[:, :min(nfr, fr10)])
    p_last = prof(ch[:, max(0, nfr - fr10):])
    sos = scipy.signal.butter(8, 250.0, btype="low", fs=SR, output="sos")
    bass = scipy.signal.sosfiltfilt(sos, seg).astype(np.float32)
    p_bass = prof(chroma_of(bass, fmin=librosa.note_to_hz("C1"), n_octaves=3))
    return dict(all=p_all, first=p_first, last=p_last, bass=p_bass, kk=kk_best(p_all))


def key_scores(ka, tonic, mode):
    s8 = scale_set(tonic, mode, True)
    s7 = scale_set(tonic, mode, False)
    tr = triad(tonic, mode)
    return dict(
        inscale=float(ka["all"][s8].sum()),
        inscale7=float(ka["all"][s7].sum()),
        tri_first=float(ka["first"][tr].sum()),
        tri_last=float(ka["last"][tr].sum()),
        bass_tonic=float(ka["bass"][tonic]),
        bass_rank=int(np.argsort(-ka["bass"]).tolist().index(tonic)) + 1,
    )


def key_verdict(ka, ke, km):
    """Three tests, each decisive only past its margin; majority of decisive tests wins.

    (a) scale: mean chroma share per pitch class of the pitch classes only in
        E's scale vs only in M's scale (brief's sets: minor = natural minor +
        raised 7th; the per-pitch-class mean keeps the 8-note minor set from
        winning by size).  Decisive if one is >= 1.25x the other and at least
        0.01 higher (if one set contains the other, as for relative keys, the
        test is marked not discriminative).
    (b) tonic triad share, first and last window (10 s, or a quarter of the
        track if shorter than 40 s), averaged: decisive at 0.03.
    (c) bass weight of the tonic: decisive at ratio 1.25 if the winner's tonic
        is among the 3 strongest bass pitch classes (n/a if same tonic).
    Two or more decisive tests agree, none against: that key.  Exactly one
    decisive test: "unclear (leans X)".  Tests contradict: "unclear".
    """
    (te, me), (tm, mm) = ke, km
    se, sm = set(scale_set(te, me)), set(scale_set(tm, mm))
    only_e, only_m = sorted(se - sm), sorted(sm - se)
    ee = float(ka["all"][only_e].mean()) if only_e else 0.0
    em = float(ka["all"][only_m].mean()) if only_m else 0.0
    votes, detail = [], []
    if not only_e or not only_m:
        detail.append("a:n/d")
    elif ee >= 1.25 * em and ee - em >= 0.01:
        votes.append("E"); detail.append("a:E")
    elif em >= 1.25 * ee and em - ee >= 0.01:
        votes.append("M"); detail.append("a:M")
    else:
        detail.append("a:=")
    xe, xm = key_scores(ka, te, me), key_scores(ka, tm, mm)
    de = (xe["tri_first"] + xe["tri_last"]) / 2 - (xm["tri_first"] + xm["tri_last"]) / 2
    if de > 0.03:
        votes.append("E"); detail.append("b:E")
    elif de < -0.03:
        votes.append("M"); detail.append("b:M")
    else:
        detail.append("b:=")
    if te == tm:
        detail.append("c:n/a")
    elif xe["bass_tonic"] >= 1.25 * xm["bass_tonic"] and xe["bass_rank"] <= 3:
        votes.append("E"); detail.append("c:E")
    elif xm["bass_tonic"] >= 1.25 * xe["bass_tonic"] and xm["bass_rank"] <= 3:
        votes.append("M"); detail.append("c:M")
    else:
        detail.append("c:=")
    e, m = votes.count("E"), votes.count("M")
    if e and m:
        v = "unclear"
    elif e >= 2 or m >= 2:
        v = "Essentia" if e else "Motif"
    elif e or m:
        v = "unclear (leans %s)" % ("Essentia" if e else "Motif")
    else:
        v = "unclear"
    return v, " ".join(detail), (only_e, ee, only_m, em)


# -------------------------------------------------------------------- main
def fmt_key(t, m):
    return "%s %s" % (PCS[t], m)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corpus", default="/work/corpus")
    ap.add_argument("--motif", default="/work/motif_dev_corpus.tsv")
    ap.add_argument("--essentia", default=os.path.join(here, "..", "essentia_dev_corpus.tsv"))
    ap.add_argument("--wav-dir", default="/tmp/adjudicate")
    ap.add_argument("--out", default=os.path.join(here, "results.md"))
    ap.add_argument("--only", default=None, help="only files whose path contains this")
    ap.add_argument("--no-wav", action="store_true")
    args = ap.parse_args()

    ess = read_tsv(args.essentia, "essentia_bpm", "essentia_key", "essentia_scale")
    mot = read_tsv(args.motif, "tempo_bpm", "key", "mode")
    sel = lambda L: [f for f in L if args.only is None or args.only in f]
    t_start = time.time()

    tempo_rows, key_rows = [], []
    for f in sel(TEMPO_FILES):
        print("tempo", f, file=sys.stderr, flush=True)
        y = load(os.path.join(args.corpus, f))
        lo, hi = sound_span(y)
        ons = Onsets(y)
        bt, _ = librosa.beat.beat_track(onset_envelope=ons.env, sr=SR, hop_length=HOP)
        bt = float(np.atleast_1d(bt)[0])
        # tempogram (local autocorrelation of the onset envelope), averaged
        # over time; value at each candidate's lag (max within +-4 %)
        tg = librosa.feature.tempogram(onset_envelope=ons.env, sr=SR, hop_length=HOP,
                                       win_length=512).mean(axis=1)
        lags = np.arange(len(tg)) * HOP / SR
        acf = lambda b: float(tg[(lags >= 60.0 / b / 1.04) & (lags <= 60.0 / b * 1.04)].max())
        ce = tempo_candidate(ons, ess[f][0], lo, hi)
        cm = tempo_candidate(ons, mot[f][0], lo, hi)
        v, det = tempo_verdict(ce, cm)
        fo = fold(ons, ce, cm, lo, hi)
        if not args.no_wav:
            stem = os.path.splitext(os.path.basename(f))[0]
            for who, c in (("essentia", ce), ("motif", cm)):
                write_mix(os.path.join(args.wav_dir, "tempo", "%s_%s_%.1fbpm.wav"
                                       % (stem, who, c["bpm"])),
                          y, click_track(len(y), c["t0"], c["P"], lo, hi))
        ce["acf"], cm["acf"] = acf(ce["bpm"]), acf(cm["bpm"])
        tempo_rows.append((f, hi - lo, len(ons.on_t), bt, ce, cm, v, det, fo))

    for f in sel(KEY_FILES):
        print("key", f, file=sys.stderr, flush=True)
        y = load(os.path.join(args.corpus, f))
        lo, hi = sound_span(y)
        ka = key_analysis(y, lo, hi)
        ke = (key_pc(ess[f][1]), ess[f][2])
        km = (key_pc(mot[f][1]), mot[f][2])
        v, det, excl = key_verdict(ka, ke, km)
        if not args.no_wav:
            stem = os.path.splitext(os.path.basename(f))[0]
            for who, (t, m) in (("essentia", ke), ("motif", km)):
                write_mix(os.path.join(args.wav_dir, "key", "%s_%s_%s%s.wav"
                                       % (stem, who, PCS[t].replace("#", "s"), m)),
                          y, drone(len(y), t))
        key_rows.append((f, hi - lo, ka, ke, km, key_scores(ka, *ke), key_scores(ka, *km),
                         v, det, excl))

    write_report(args, tempo_rows, key_rows, time.time() - t_start)


def p(x, nd=2):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else ("%.*f" % (nd, x))


def write_report(args, tempo_rows, key_rows, secs):
    L = []
    L.append("## Tempo\n")
    L.append("Per candidate: BPM; whole track, free-running grid: (a) click->onset hits "
             "[chance], (b) strong onsets on click or half-way [chance], accent; "
             "(a) first 20 s / last 20 s; drift = best phase in last 20 s minus "
             "free-running phase (ms); local (tempo within +-4 % and phase refitted per 20 s) "
             "lift(a), lift(b), accent and the range of the refitted tempos; best steady BPM "
             "within +-4 % over the whole track and its lift(a) / lift(b); ACF = time-averaged "
             "tempogram (onset autocorrelation, 1 at lag 0) at the candidate's lag +-4 %.\n")
    L.append("| file | dur s | beat_track | who | BPM | (a) whole | (b) whole | accent | "
             "(a) first / last | drift ms | local lift a | local lift b | local accent | "
             "local BPM range | refined BPM (lift a / b) | ACF | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f, dur, n_on, bt, ce, cm, v, det, fo in tempo_rows:
        name = f.split("/", 1)[1]
        for who, c in (("Essentia", ce), ("Motif", cm)):
            w, lo_ = c["whole"], c["local"]
            r = c["refined"]
            L.append("| %s | %s | %s | %s | %.2f | %s [%s] | %s [%s] | %s | %s / %s | %+d | %s | %s | %s | %.1f-%.1f | %.2f (%s / %s) | %.2f | %s |" % (
                name if who == "Essentia" else "", ("%.0f" % dur) if who == "Essentia" else "",
                ("%.1f" % bt) if who == "Essentia" else "", who, c["bpm"],
                p(w["a"]), p(w["a_ch"]), p(w["b"]), p(w["b_ch"]), p(w["acc"]),
                p(c["first"]["a"]), p(c["last"]["a"]), int(round(1000 * c["drift"])),
                p(lift(lo_["a"], lo_["a_ch"])), p(lift(lo_["b"], lo_["b_ch"])), p(lo_["acc"]),
                lo_["bpm_min"], lo_["bpm_max"], r["bpm"], p(r["a_lift"]), p(r["b_lift"]), c["acf"],
                ("**%s** (%s)" % (v, det)) if who == "Essentia" else ""))
    L.append("")
    L.append("Folded onset envelope (whole track, steady grid of the faster refined tempo; "
             "digits = mean onset strength per tatum scaled min 0 .. max 9; fast beat = every q-th "
             "tatum, slow beat = every p-th; salience = mean on the candidate's beats / mean "
             "over all tatums, best rotation):\n")
    L.append("| file | fast:slow (p:q) | faster is | fold (2*p*q tatums) | salience fast | salience slow |")
    L.append("|---|---|---|---|---|---|")
    for f, dur, n_on, bt, ce, cm, v, det, fo in tempo_rows:
        if fo is None:
            L.append("| %s | (no small ratio) | | | | |" % f.split("/", 1)[1])
            continue
        p_, q_, who, digits, sf_, ss_ = fo
        L.append("| %s | %d:%d | %s | `%s` | %.2f | %.2f |" % (
            f.split("/", 1)[1], p_, q_, "Essentia" if who == "E" else "Motif", digits, sf_, ss_))
    L.append("")
    L.append("## Key\n")
    L.append("Per candidate: (a) chroma share in the scale (minor = natural + raised 7th) "
             "[natural minor only]; (b) tonic-triad share in the first / last 10 s (a quarter of "
             "the track if shorter than 40 s); "
             "(c) bass: share of the tonic in the <250 Hz chroma and its rank of 12. "
             "'excl' = mean chroma share per pitch class of the pitch classes only in that key's scale.\n")
    L.append("| file | dur s | who | key | (a) in scale | excl | (b) triad first / last | "
             "(c) bass tonic (rank) | KK on CQT | chroma top 5 | bass top 3 | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f, dur, ka, ke, km, xe, xm, v, det, excl in key_rows:
        name = f.split("/", 1)[1]
        only_e, ee, only_m, em = excl
        top3 = " ".join("%s %.2f" % (PCS[i], ka["bass"][i]) for i in np.argsort(-ka["bass"])[:3])
        kk = "%s %s (r=%.2f)" % (ka["kk"][1], ka["kk"][2], ka["kk"][0])
        top5 = " ".join("%s %.2f" % (PCS[i], ka["all"][i]) for i in np.argsort(-ka["all"])[:5])
        for who, k, x, only, ex in (("Essentia", ke, xe, only_e, ee), ("Motif", km, xm, only_m, em)):
            first = who == "Essentia"
            L.append("| %s | %s | %s | %s | %s [%s] | %s %s | %s / %s | %s (%d) | %s | %s | %s | %s |" % (
                name if first else "", ("%.0f" % dur) if first else "", who, fmt_key(*k),
                p(x["inscale"], 3), p(x["inscale7"], 3),
                ",".join(PCS[i] for i in only) or "-", p(ex, 3),
                p(x["tri_first"], 3), p(x["tri_last"], 3), p(x["bass_tonic"], 3), x["bass_rank"],
                kk if first else "", top5 if first else "", top3 if first else "",
                ("**%s** (%s)" % (v, det)) if first else ""))
    L.append("")
    L.append("(generated by adjudicate.py in %.0f s; librosa %s)" % (secs, librosa.__version__))
    text = "\n".join(L) + "\n"
    begin, end = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"
    old = open(args.out).read() if os.path.exists(args.out) else ""
    if begin in old and end in old:
        text = old[:old.index(begin) + len(begin)] + "\n" + text + old[old.index(end):]
    else:
        text = "# Tempo/key adjudication\n\n" + begin + "\n" + text + end + "\n"
    with open(args.out, "w") as fh:
        fh.write(text)
    print("wrote", args.out, file=sys.stderr)


if __name__ == "__main__":
    main()
