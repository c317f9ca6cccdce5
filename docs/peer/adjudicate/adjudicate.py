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
    best, best_v = lo, -1.0
    for ph in np.arange(0.0, period, PHASE_STEP):
        c = grid(lo + ph, period, lo, hi)
        if len(c) == 0:
            continue
        v = ons.at(ons.smooth, c).mean()
        if v > best_v:
            best, best_v = lo + ph, v
    return best


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
    P = 60.0 / bpm
    w1 = min(hi, lo + WIN)
    t0 = best_phase(ons, P, lo, w1)                   # phase from the first 20 s
    whole = scores(ons, t0, P, lo, hi)                # free-running over the whole track
    first = scores(ons, t0, P, lo, w1)
    lw = max(lo, hi - WIN)
    last = scores(ons, t0, P, lw, hi)
    t_last = best_phase(ons, P, lw, hi)               # where the grid "should" be at the end
    drift = wrap(t_last - t0, P)
    # local re-phased scores: every 20 s window gets its own best phase; this
    # measures the metrical fit of the tempo level independently of small
    # tempo errors or rubato (which make a free-running grid drift).
    loc = []
    edges = np.arange(lo, hi, WIN)
    for s in edges:
        e = min(hi, s + WIN)
        if e - s < 0.5 * WIN and len(edges) > 1:
            continue
        loc.append(scores(ons, best_phase(ons, P, s, e), P, s, e))
    local = {k: float(np.nanmean([d[k] for d in loc])) for k in ("a", "a_ch", "b", "b_ch", "acc")}
    return dict(bpm=bpm, P=P, t0=t0, whole=whole, first=first, last=last, drift=drift,
                local=local, refined=refine(ons, bpm, lo, hi))


def refine(ons, bpm, lo, hi):
    """Best-fitting steady tempo within +-1.5 % of bpm over the whole span.

    Score = mean smoothed onset envelope at the clicks of a free-running grid
    whose phase is also optimised over the whole span.  Tells whether a
    candidate is the right metrical level with a slightly imprecise value
    (its free-running grid then drifts) or whether the music itself is not
    steady (no steady grid fits the whole track)."""
    best = (-1.0, bpm, lo)
    for b in bpm * (1.0 + np.arange(-0.015, 0.015001, 0.0002)):
        P = 60.0 / b
        t0 = best_phase(ons, P, lo, hi)
        v = ons.at(ons.smooth, grid(t0, P, lo, hi)).mean()
        if v > best[0]:
            best = (v, b, t0)
    _, b, t0 = best
    w = scores(ons, t0, 60.0 / b, lo, hi)
    return dict(bpm=b, a_lift=lift(w["a"], w["a_ch"]), b_lift=lift(w["b"], w["b_ch"]))


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
    """Decide from the chance-corrected local scores and the accent ratio.

    A measure is decisive when the difference exceeds its margin:
    lift(a), lift(b): 0.10;  accent: 0.10 (10 % of the random-placement level).
    The tempo that wins more decisive measures wins; 2-of-3 without a loss
    is "clear", otherwise "weak"; a 1-1 split or no decisive measure is unclear.
    """
    wins = {"essentia": 0, "motif": 0}
    detail = []
    for name, key, margin in (("a", "a", 0.10), ("b", "b", 0.10), ("acc", "acc", 0.10)):
        le, lm = c_e["local"], c_m["local"]
        if key == "acc":
            ve, vm = le["acc"], lm["acc"]
        else:
            ve, vm = lift(le[key], le[key + "_ch"]), lift(lm[key], lm[key + "_ch"])
        if ve - vm > margin:
            wins["essentia"] += 1
            detail.append(name + ":E")
        elif vm - ve > margin:
            wins["motif"] += 1
            detail.append(name + ":M")
        else:
            detail.append(name + ":=")
    e, m = wins["essentia"], wins["motif"]
    if e > m:
        v = "Essentia" + ("" if e >= 2 and m == 0 else " (weak)")
    elif m > e:
        v = "Motif" + ("" if m >= 2 and e == 0 else " (weak)")
    else:
        v = "unclear"
    return v, " ".join(detail)


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
    fr10 = int(round(10.0 * SR / 2048))
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

    (a) scale: energy on the pitch classes only in E's scale vs only in M's scale
        (brief's sets: minor = natural minor + raised 7th).  Decisive if one is
        >= 1.25x the other and the sets differ both ways (if one set contains the
        other, as for relative keys, the test is marked not discriminative).
    (b) tonic triad share, first 10 s and last 10 s, averaged: decisive at 0.03.
    (c) bass weight of the tonic: decisive at ratio 1.25 (n/a if same tonic).
    """
    (te, me), (tm, mm) = ke, km
    se, sm = set(scale_set(te, me)), set(scale_set(tm, mm))
    only_e, only_m = sorted(se - sm), sorted(sm - se)
    ee = float(ka["all"][only_e].sum()) if only_e else 0.0
    em = float(ka["all"][only_m].sum()) if only_m else 0.0
    votes, detail = [], []
    if not only_e or not only_m:
        detail.append("a:n/d")
    elif ee >= 1.25 * em:
        votes.append("E"); detail.append("a:E")
    elif em >= 1.25 * ee:
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
    elif xe["bass_tonic"] >= 1.25 * xm["bass_tonic"]:
        votes.append("E"); detail.append("c:E")
    elif xm["bass_tonic"] >= 1.25 * xe["bass_tonic"]:
        votes.append("M"); detail.append("c:M")
    else:
        detail.append("c:=")
    e, m = votes.count("E"), votes.count("M")
    if e > m:
        v = "Essentia" + ("" if e >= 2 and m == 0 else " (weak)")
    elif m > e:
        v = "Motif" + ("" if m >= 2 and e == 0 else " (weak)")
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
        ce = tempo_candidate(ons, ess[f][0], lo, hi)
        cm = tempo_candidate(ons, mot[f][0], lo, hi)
        v, det = tempo_verdict(ce, cm)
        if not args.no_wav:
            stem = os.path.splitext(os.path.basename(f))[0]
            for who, c in (("essentia", ce), ("motif", cm)):
                write_mix(os.path.join(args.wav_dir, "tempo", "%s_%s_%.1fbpm.wav"
                                       % (stem, who, c["bpm"])),
                          y, click_track(len(y), c["t0"], c["P"], lo, hi))
        tempo_rows.append((f, hi - lo, len(ons.on_t), bt, ce, cm, v, det))

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
             "free-running phase (ms); local (re-phased per 20 s) lift(a), lift(b), accent; "
             "best steady BPM within +-1.5 %% and its whole-track lift(a) / lift(b).\n")
    L.append("| file | dur s | beat_track | who | BPM | (a) whole | (b) whole | accent | "
             "(a) first / last | drift ms | local lift a | local lift b | local accent | "
             "refined BPM (lift a / b) | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f, dur, n_on, bt, ce, cm, v, det in tempo_rows:
        name = f.split("/", 1)[1]
        for who, c in (("Essentia", ce), ("Motif", cm)):
            w, lo_ = c["whole"], c["local"]
            r = c["refined"]
            L.append("| %s | %s | %s | %s | %.2f | %s [%s] | %s [%s] | %s | %s / %s | %+d | %s | %s | %s | %.2f (%s / %s) | %s |" % (
                name if who == "Essentia" else "", ("%.0f" % dur) if who == "Essentia" else "",
                ("%.1f" % bt) if who == "Essentia" else "", who, c["bpm"],
                p(w["a"]), p(w["a_ch"]), p(w["b"]), p(w["b_ch"]), p(w["acc"]),
                p(c["first"]["a"]), p(c["last"]["a"]), int(round(1000 * c["drift"])),
                p(lift(lo_["a"], lo_["a_ch"])), p(lift(lo_["b"], lo_["b_ch"])), p(lo_["acc"]),
                r["bpm"], p(r["a_lift"]), p(r["b_lift"]),
                ("**%s** (%s)" % (v, det)) if who == "Essentia" else ""))
    L.append("")
    L.append("## Key\n")
    L.append("Per candidate: (a) chroma share in the scale (minor = natural + raised 7th) "
             "[natural minor only]; (b) tonic-triad share in the first / last 10 s; "
             "(c) bass: share of the tonic in the <250 Hz chroma and its rank of 12. "
             "'excl' = chroma share of the pitch classes only in that key's scale.\n")
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
