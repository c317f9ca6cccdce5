#!/usr/bin/env python3
"""Spot checks for rendered songs of the evaluation set (python3 + numpy + ffmpeg).

For each file: level statistics (peak, RMS, share of samples at or above -0.1 dBFS,
leading/trailing silence), a chroma vector (STFT peaks 55 Hz-2 kHz folded onto pitch
classes) correlated with the 24 rotated Krumhansl-Kessler profiles, and a rough tempo
(spectral-flux autocorrelation, 40-240 BPM, log-normal prior at 120). Prints the
label from truth.tsv next to what was found.

    python3 eval/spotcheck.py /work/evalset [ID ...]      # e.g. 001 017 042
    python3 eval/spotcheck.py /work/evalset --all
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
SR = 22050


def decode(path, sr=SR, channels=1):
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1",
         "-i", path, "-ac", str(channels), "-ar", str(sr), "-f", "f32le", "-"],
        check=True, capture_output=True).stdout
    x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    return x.reshape(-1, channels) if channels > 1 else x


def stft_mag(x, n_fft, hop):
    nfr = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(nfr)[:, None]
    return np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1))


def chroma(x, sr=SR):
    n_fft, hop = 8192, 2048
    mag = stft_mag(x, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    peaks = np.zeros_like(mag)
    inner = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
    peaks[:, 1:-1] = np.where(inner, mag[:, 1:-1], 0)
    peaks[peaks < 0.01 * mag.max(axis=1, keepdims=True)] = 0
    sel = (freqs >= 55) & (freqs <= 2000)
    pc = np.round(69 + 12 * np.log2(freqs[sel] / 440.0)).astype(int) % 12
    m = peaks[:, sel] ** 2
    ch = np.stack([m[:, pc == k].sum(axis=1) for k in range(12)], axis=1)
    ch = np.sqrt(ch)
    ch /= ch.max(axis=1, keepdims=True) + 1e-12
    return ch.sum(axis=0)


def key_estimate(x):
    c = chroma(x)
    scores = []
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for t in range(12):
            scores.append((np.corrcoef(c, np.roll(prof, t))[0, 1], PCS[t], mode))
    scores.sort(reverse=True)
    return scores[0], scores[1]


def tempo_estimate(x, sr=SR):
    n_fft, hop = 2048, 256
    mag = stft_mag(x, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    # crude log-frequency bands
    edges = np.geomspace(40, 8000, 41)
    bands = np.stack([mag[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges, edges[1:])], axis=1)
    lb = np.log1p(100 * bands)
    flux = np.maximum(0, np.diff(lb, axis=0)).sum(axis=1)
    flux -= np.convolve(flux, np.ones(16) / 16, mode="same")
    flux = np.maximum(flux, 0)
    fps = sr / hop
    ac = np.correlate(flux, flux, mode="full")[len(flux) - 1:]
    lags = np.arange(len(ac))
    bpm = np.where(lags > 0, 60 * fps / np.maximum(lags, 1), 0)
    ok = (bpm >= 40) & (bpm <= 240)
    w = np.exp(-0.5 * (np.log2(np.maximum(bpm, 1e-9) / 120)) ** 2)
    score = np.where(ok, ac * w, -np.inf)
    lag = int(np.argmax(score))
    if 1 <= lag < len(ac) - 1:
        a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
        d = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0
        return 60 * fps / (lag + d)
    return 60 * fps / lag


def levels(path):
    x = decode(path, 44100, 2)
    peak = np.abs(x).max()
    rms = np.sqrt(np.mean(x ** 2))
    hot = np.mean(np.abs(x) >= 10 ** (-0.1 / 20))
    env = np.abs(x).max(axis=1)
    loud = np.nonzero(env > 10 ** (-50 / 20))[0]
    lead = loud[0] / 44100 if len(loud) else float("nan")
    trail = (len(env) - loud[-1]) / 44100 if len(loud) else float("nan")
    return len(x) / 44100, 20 * np.log10(peak + 1e-12), 20 * np.log10(rms + 1e-12), hot, lead, trail


def main():
    root = sys.argv[1]
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(root, "truth.tsv"))]
    head, rows = rows[0], rows[1:]
    col = {h: i for i, h in enumerate(head)}
    want = sys.argv[2:]
    if want and want != ["--all"]:
        rows = [r for r in rows if any(os.path.basename(r[0]).startswith(w) for w in want)]
    print("file                      dur   peak   rms   clip%  lead trail | truth            | key found (r)        runner-up (r)        | tempo found")
    n_key = n_t = 0
    for r in rows:
        path = os.path.join(root, r[col["path"]])
        dur, pk, rms, hot, lead, trail = levels(path)
        x = decode(path)
        (r1, k1, m1), (r2, k2, m2) = key_estimate(x)
        t = tempo_estimate(x)
        tb = float(r[col["tempo_bpm"]])
        key_ok = k1 == r[col["key"]] and m1 == r[col["mode"]]
        ratio = t / tb
        t_ok = any(abs(ratio - f) < 0.04 * f for f in (0.5, 1, 2, 1 / 3, 3, 2 / 3, 1.5))
        n_key += key_ok
        n_t += t_ok
        print(f"{os.path.basename(path):24s} {dur:5.1f} {pk:6.1f} {rms:6.1f} {100 * hot:5.2f} {lead:5.2f} {trail:5.2f} | "
              f"{r[col['key']]:2s} {r[col['mode']]:5s} {tb:6.1f} | {k1:2s} {m1:5s} ({r1:.2f}) {'OK ' if key_ok else 'NO '} "
              f"  {k2:2s} {m2:5s} ({r2:.2f}) | {t:6.1f} {'ok' if t_ok else '--'}")
    print(f"key agrees on {n_key}/{len(rows)}; tempo (x1/2/3 or /2/3, 3/2, 2/3) on {n_t}/{len(rows)}")


if __name__ == "__main__":
    main()
