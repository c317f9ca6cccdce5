#!/usr/bin/env python3
"""Deterministic composer for the Motif General-MIDI evaluation set.

Writes N songs (default 120) as Standard MIDI Files with a known tempo, key,
mode, meter and style, plus `songs.json` (full metadata per song). Everything
is composed here from a fixed seed; no MIDI or audio is read from anywhere.

    python3 compose.py OUTDIR [--n 120] [--seed 20240611]

Writes OUTDIR/midi/NNN_style.mid and OUTDIR/songs.json. `render.sh` turns them
into audio and writes truth.tsv / labels.tsv.

Musical rules (so that the labelled key is the key a listener hears):
  * harmony is diatonic (minor uses the harmonic-minor dominant V/V7 in
    cadences, as common-practice and most pop music does);
  * the song starts on the tonic chord, every section begins on the tonic or a
    strong diatonic chord, and the song ends with a cadence (IV-V-I, ii-V-I,
    iv-V-i, VI-V-i, ...) onto a held tonic chord;
  * the melody uses the scale, chord tones on strong beats, and ends on the
    tonic;
  * the only non-diatonic notes are the raised leading tone in minor (over V)
    and chromatic approach notes in the jazz walking bass.
Tempo is constant within a song (one MIDI tempo event); humanisation moves
single notes by a few milliseconds (zero-mean) and varies velocities.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random

import mido

TPB = 960
PC_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
MAJOR_SCALE = [0, 2, 4, 5, 7, 9, 11]
MINOR_SCALE = [0, 2, 3, 5, 7, 8, 10]
ROMAN = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}
KK_MAJOR = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
KK_MINOR = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]

STYLES = ["pop_rock", "ballad", "dance", "jazz", "folk", "latin_funk", "waltz"]

# Quarter-note tempo ranges per style (log-uniform inside the range).
TEMPO_RANGE = {
    "pop_rock": (84, 180),
    "ballad": (60, 82),
    "dance": (112, 176),
    "jazz": (88, 180),
    "folk": (70, 138),
    "latin_funk": (86, 132),
    "waltz": (84, 178),
}

# Arrangement variants inside a style, used in turn (balanced per style).
VARIANTS = {
    "pop_rock": ["pop_piano", "pop_guitar", "rock"],
    "ballad": ["piano_strings", "guitar_strings", "epiano"],
    "dance": ["house", "trance", "synthpop"],
    "folk": ["fingerpick", "strum"],
    "waltz": ["piano", "accordion", "strings"],
}

# Fraction of each style's songs that have no drums at all (about 15 % overall).
NO_DRUMS = {"ballad": 0.35, "folk": 0.55, "waltz": 0.15}

# --------------------------------------------------------------------------
# Progressions. "|" separates bars; several chords in a bar split it evenly.
# A-progressions start on the tonic; B-progressions are "chorus" material;
# END-progressions are cadences whose last bar is the tonic (held to the end).

PROG = {
    ("major", "A"): [
        "I | V | vi | IV", "I | vi | IV | V", "I | IV | vi | V", "I | iii | IV | V",
        "I | IV | I | V", "I | V | IV | V", "I | vi | ii | V", "I | IV | V | IV",
    ],
    ("major", "B"): [
        "IV | V | I | vi", "vi | IV | I | V", "IV | I | V | V", "ii | V | I | IV",
        "IV | V | iii | vi", "vi | IV | V | V", "IV | IV | I | V",
    ],
    ("major", "END"): [
        "IV | V | I | I", "ii | V | I | I", "vi | IV | V | I", "IV | I V | I | I",
        "ii | IV V | I | I",
    ],
    ("minor", "A"): [
        "i | VI | III | VII", "i | iv | v | i", "i | iv | V | i", "i | VII | VI | V",
        "i | VI | iv | V", "i | iv | VII | III", "i | VI | VII | i", "i | i | iv | V",
    ],
    ("minor", "B"): [
        "VI | VII | i | i", "iv | V | i | VI", "VI | III | VII | V", "iv | i | V | i",
        "VI | iv | V | V", "III | VII | i | V",
    ],
    ("minor", "END"): [
        "iv | V | i | i", "VI | V | i | i", "iv | VII V | i | i", "ii° | V | i | i",
        "VI | iv V | i | i",
    ],
    # jazz: diatonic seventh chords, ii-V-I language
    ("major_jazz", "A"): [
        "Imaj7 | vi7 | ii7 | V7", "Imaj7 | Imaj7 | ii7 | V7", "Imaj7 | IVmaj7 | iii7 vi7 | ii7 V7",
        "Imaj7 | vi7 | ii7 V7 | Imaj7", "Imaj7 | ii7 V7 | Imaj7 | vi7",
    ],
    ("major_jazz", "B"): [
        "ii7 | V7 | Imaj7 | Imaj7", "iii7 | vi7 | ii7 | V7", "IVmaj7 | iii7 vi7 | ii7 | V7",
        "ii7 | V7 | iii7 | vi7",
    ],
    ("major_jazz", "END"): [
        "ii7 | V7 | Imaj7 | Imaj7", "Imaj7 vi7 | ii7 V7 | Imaj7 | Imaj7", "IVmaj7 | ii7 V7 | Imaj7 | Imaj7",
    ],
    ("minor_jazz", "A"): [
        "i7 | iv7 | iiø7 | V7", "i7 | i7 | iiø7 | V7", "i7 | VImaj7 | iiø7 | V7",
        "i7 | iv7 | iiø7 V7 | i7",
    ],
    ("minor_jazz", "B"): [
        "iv7 | i7 | iiø7 | V7", "iiø7 | V7 | i7 | i7", "VImaj7 | iiø7 | V7 | i7",
    ],
    ("minor_jazz", "END"): [
        "iiø7 | V7 | i7 | i7", "iv7 | iiø7 V7 | i7 | i7", "VImaj7 | iiø7 V7 | i7 | i7",
    ],
}


class Chord:
    """A diatonic chord given as a roman numeral in a key."""

    def __init__(self, sym: str, tonic: int, mode: str):
        s = sym
        seventh = False
        for suf in ("maj7", "7"):
            if s.endswith(suf):
                s = s[: -len(suf)]
                seventh = True
                break
        s = s.rstrip("°ø")
        deg = ROMAN[s.lower()]
        scale = MAJOR_SCALE if mode == "major" else MINOR_SCALE
        ivs = [scale[(deg + 2 * k) % 7] for k in range(4 if seventh else 3)]
        if mode == "minor" and s == "V":
            ivs[1] = 11  # harmonic-minor dominant: raised leading tone
        if mode == "minor" and s == "vii":
            ivs[0] = 11
        self.sym = sym
        self.deg = deg
        self.root = (tonic + ivs[0]) % 12
        self.pcs = [(tonic + i) % 12 for i in ivs]
        self.third = self.pcs[1]
        self.fifth = self.pcs[2]

    def __repr__(self):
        return self.sym


def parse_prog(text: str, tonic: int, mode: str, stretch: int):
    """Returns a list of bars; each bar is a list of (fraction_start, fraction_len, Chord)."""
    bars = []
    for bar in text.split("|"):
        syms = bar.split()
        if stretch == 1:
            n = len(syms)
            bars.append([(k / n, 1 / n, Chord(s, tonic, mode)) for k, s in enumerate(syms)])
        else:
            # each bar becomes `stretch` bars; a two-chord bar gives one bar per chord
            if len(syms) == 1:
                for _ in range(stretch):
                    bars.append([(0.0, 1.0, Chord(syms[0], tonic, mode))])
            else:
                for s in syms:
                    bars.append([(0.0, 1.0, Chord(s, tonic, mode))])
    return bars


# --------------------------------------------------------------------------
# Instruments (General MIDI program numbers, 0-based)

GM = {
    "piano": 0, "bright_piano": 1, "epiano": 4, "clav": 7, "vibes": 11, "organ": 16,
    "rock_organ": 18, "accordion": 21, "harmonica": 22, "nylon": 24, "steel": 25,
    "jazz_gtr": 26, "clean_gtr": 27, "muted_gtr": 28, "overdrive": 29, "distortion": 30,
    "ac_bass": 32, "finger_bass": 33, "pick_bass": 34, "fretless": 35, "slap1": 36,
    "slap2": 37, "synbass1": 38, "synbass2": 39, "violin": 40, "cello": 42, "contrabass": 43,
    "pizz": 45, "harp": 46, "strings": 48, "strings2": 49, "synstrings": 50, "choir": 52,
    "trumpet": 56, "trombone": 57, "tuba": 58, "muted_tpt": 59, "brass": 61, "synbrass": 62,
    "alto_sax": 65, "tenor_sax": 66, "oboe": 68, "clarinet": 71, "flute": 73, "recorder": 74,
    "panflute": 75, "ocarina": 79, "square": 80, "saw": 81, "calliope": 82, "charang": 84,
    "voice_lead": 85, "bass_lead": 87, "newage_pad": 88, "warm_pad": 89, "poly_pad": 90,
    "choir_pad": 91, "bowed_pad": 92, "halo_pad": 94, "sweep_pad": 95, "fiddle": 110,
    "banjo": 105,
}

# melody register per lead instrument
LEAD_RANGE = {
    "cello": (50, 70), "tenor_sax": (55, 76), "trombone": (52, 72), "flute": (69, 91),
    "recorder": (69, 89), "panflute": (67, 88), "ocarina": (69, 88), "violin": (67, 90),
    "fiddle": (67, 88), "piano": (67, 88), "vibes": (64, 86), "jazz_gtr": (58, 79),
    "overdrive": (60, 82), "distortion": (60, 82), "clean_gtr": (60, 82), "banjo": (62, 84),
    "harmonica": (62, 84), "accordion": (64, 84), "trumpet": (62, 82), "muted_tpt": (62, 82),
}

DRUM = {
    "kick": 36, "stick": 37, "snare": 38, "clap": 39, "snare2": 40, "floor_tom": 41,
    "chh": 42, "low_tom": 45, "phh": 44, "ohh": 46, "mid_tom": 47, "hi_tom": 50,
    "crash": 49, "ride": 51, "ride_bell": 53, "tamb": 54, "cowbell": 56, "bongo_hi": 60,
    "bongo_lo": 61, "conga_mute": 62, "conga_open": 63, "conga_lo": 64, "timbale_hi": 65,
    "timbale_lo": 66, "cabasa": 69, "maracas": 70, "claves": 75, "shaker": 70,
}


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


# --------------------------------------------------------------------------
# Song context


class Part:
    def __init__(self, name, channel, program, volume=100, pan=64, reverb=40, chorus=0,
                 jitter_ms=5.0, vel_sd=6.0, bank=0):
        self.name = name
        self.channel = channel
        self.program = program
        self.bank = bank
        self.volume = volume
        self.pan = pan
        self.reverb = reverb
        self.chorus = chorus
        self.jitter_ms = jitter_ms
        self.vel_sd = vel_sd
        self.notes = []  # (start_beat, dur_beats, pitch, vel)
        self.ccs = []  # (beat, cc, value)

    def add(self, t, dur, pitch, vel):
        if dur <= 0:
            return
        pitch = int(pitch)
        while pitch < 0:
            pitch += 12
        while pitch > 127:
            pitch -= 12
        self.notes.append((float(t), float(dur), pitch, int(vel)))


class Song:
    def __init__(self, idx, style, tonic, mode, bpm, rng):
        self.idx = idx
        self.style = style
        self.tonic = tonic
        self.mode = mode
        self.bpm = bpm
        self.rng = rng
        self.beats_per_bar = 3 if style == "waltz" else 4
        self.parts: list[Part] = []
        self.bars = []
        self.variant = ""
        self.variant_hint = ""
        self.swing = 0.5
        self.meta = {}

    # timing helpers
    @property
    def bar_sec(self):
        return self.beats_per_bar * 60.0 / self.bpm

    def sw(self, t):
        """Swing: move off-beat eighths later (jazz)."""
        if self.swing == 0.5:
            return t
        b = math.floor(t + 1e-9)
        f = t - b
        if abs(f - 0.5) < 1e-6:
            return b + self.swing
        if abs(f - 0.75) < 1e-6:
            return b + self.swing + (1 - self.swing) / 2
        if abs(f - 0.25) < 1e-6:
            return b + self.swing / 2
        return t

    def scale_pcs(self, chord=None):
        scale = MAJOR_SCALE if self.mode == "major" else MINOR_SCALE
        pcs = [(self.tonic + s) % 12 for s in scale]
        if self.mode == "minor" and chord is not None and (self.tonic + 11) % 12 in chord.pcs:
            pcs = [p if p != (self.tonic + 10) % 12 else (self.tonic + 11) % 12 for p in pcs]
        return pcs

    def chord_at(self, t):
        bi = min(int((t + 1e-6) // self.beats_per_bar), len(self.bars) - 1)
        bar = self.bars[bi]
        for (s, d, c) in bar["chords"]:
            if s - 1e-6 <= t < s + d - 1e-6:
                return c
        return bar["chords"][-1][2]

    def next_chord_after(self, t):
        """Chord that starts after the chord sounding at t."""
        cur = self.chord_at(t)
        for bar in self.bars[int(t // self.beats_per_bar):]:
            for (s, d, c) in bar["chords"]:
                if s > t + 1e-6 and c is not cur:
                    return c
        return Chord("I" if self.mode == "major" else "i", self.tonic, self.mode)


def plan(song: Song):
    """Lays out bars, sections and chords."""
    rng = song.rng
    bpb = song.beats_per_bar
    tail = 2.5
    jazz = song.style == "jazz"
    key = song.mode + ("_jazz" if jazz else "")
    # harmonic rhythm: at quick bar rates, a chord may last two bars
    stretch = 1
    if song.bar_sec < 1.55 and rng.random() < 0.65:
        stretch = 2
    if song.style == "waltz" and song.bar_sec < 2.2:
        stretch = 2
    phrase_bars = 4 * stretch
    target = rng.uniform(31.0, 43.0)
    n_phr = max(2, round((target - tail) / (phrase_bars * song.bar_sec)))
    while n_phr * phrase_bars * song.bar_sec + tail > 44.5 and n_phr > 2:
        n_phr -= 1
    while n_phr * phrase_bars * song.bar_sec + tail < 30.0:
        n_phr += 1
    if n_phr * phrase_bars * song.bar_sec + tail > 44.5 and stretch == 2:
        # should not happen with the ranges above; fall back to 4-bar phrases
        stretch, phrase_bars = 1, 4
        n_phr = max(2, round((target - tail) / (phrase_bars * song.bar_sec)))
    if n_phr <= 3:
        sections = (["A", "B"][: n_phr - 1]) + ["END"]
    else:
        body = []
        cyc = ["A", "A", "B", "B"] if n_phr > 5 else ["A", "B", "B"]
        while len(body) < n_phr - 2:
            body.append(cyc[len(body) % len(cyc)])
        sections = ["INTRO"] + body + ["END"]
    progs = {
        "A": rng.choice(PROG[(key, "A")]),
        "B": rng.choice(PROG[(key, "B")]),
        "END": rng.choice(PROG[(key, "END")]),
    }
    progs["INTRO"] = progs["A"]
    song.meta["progressions"] = {k: progs[k] for k in ("A", "B", "END")}
    song.meta["sections"] = sections
    song.meta["stretch"] = stretch
    bars = []
    for pi, sec in enumerate(sections):
        pbars = parse_prog(progs[sec], song.tonic, song.mode, stretch)
        for bi, content in enumerate(pbars):
            start = len(bars) * bpb
            chords = [(start + f * bpb, l * bpb, c) for (f, l, c) in content]
            bars.append({
                "idx": len(bars), "start": start, "section": sec, "phrase": pi,
                "bar_in_phrase": bi, "phrase_bars": len(pbars), "chords": chords,
                "final": False, "fill": False, "crash": bi == 0 and pi > 0,
                "phrase_end": bi == len(pbars) - 1,
            })
    bars[-1]["final"] = True
    # fills at the ends of phrases, surely before a change of section
    for b in bars[:-1]:
        if b["phrase_end"]:
            nxt = bars[b["idx"] + 1]
            change = nxt["section"] != b["section"]
            if (change and rng.random() < 0.85) or rng.random() < 0.3:
                b["fill"] = True
        elif b["bar_in_phrase"] == b["phrase_bars"] // 2 - 1 and rng.random() < 0.08:
            b["fill"] = True
    # crash cymbal on the downbeat after a fill or at a change of section
    for b in bars[1:]:
        prev = bars[b["idx"] - 1]
        b["crash"] = b["final"] or (b["bar_in_phrase"] == 0 and (prev["fill"] or prev["section"] != b["section"]))
    song.bars = bars
    song.n_bars = len(bars)
    song.total_beats = len(bars) * bpb
    song.tail = tail


# --------------------------------------------------------------------------
# Voicing helpers


def voicing(pcs, prev, low, high, rng, max_notes=4):
    """Close-position voicing of `pcs` inside [low, high] nearest to `prev`."""
    pcs = list(dict.fromkeys(pcs))[:max_notes]
    cands = []
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        for base in range(low, low + 12):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                n = notes[-1] + 1
                while n % 12 != pc:
                    n += 1
                notes.append(n)
            for shift in (0, 12):
                v = [x + shift for x in notes]
                if v[0] >= low and v[-1] <= high:
                    cands.append(v)
    if not cands:
        base = low + ((pcs[0] - low) % 12)
        return [base + ((pc - pcs[0]) % 12) for pc in pcs]
    if prev:
        def cost(v):
            return sum(min(abs(a - b) for b in prev) for a in v) + abs(sum(v) / len(v) - (low + high) / 2) * 0.3
        cands.sort(key=cost)
        return cands[0] if rng.random() < 0.85 else cands[min(1, len(cands) - 1)]
    cands.sort(key=lambda v: abs(sum(v) / len(v) - (low + high) / 2))
    return cands[0]


def guitar_voicing(chord, low=40):
    """Six-string style voicing: root, fifth, root, third, fifth, root (7th on top if any)."""
    r = low + ((chord.root - low) % 12)
    order = [chord.root, chord.fifth, chord.root, chord.third, chord.fifth,
             chord.pcs[3] if len(chord.pcs) > 3 else chord.root]
    notes = [r]
    for pc in order[1:]:
        n = notes[-1] + 1
        while n % 12 != pc:
            n += 1
        notes.append(n)
    return notes


def bass_note(pc, low=33):
    return low + ((pc - low) % 12)


def vel(rng, base, sd=6.0):
    return max(1, min(127, int(round(rng.gauss(base, sd)))))


# --------------------------------------------------------------------------
# Melody


def melody_rhythms(song):
    """Lists of (onset, duration) within one bar; and phrase-ending bars."""
    if song.beats_per_bar == 3:
        normal = [
            [(0, 2), (2, 1)], [(0, 1), (1, 1), (2, 1)], [(0, 1.5), (1.5, 0.5), (2, 1)],
            [(0, 1), (1, 2)], [(0, 0.5), (0.5, 0.5), (1, 1), (2, 1)], [(0, 2.5), (2.5, 0.5)],
        ]
        ends = [[(0, 3)], [(0, 2)], [(0, 1), (1, 2)]]
        return normal, ends
    normal = [
        [(0, 1), (1, 1), (2, 1), (3, 1)],
        [(0, 1.5), (1.5, 0.5), (2, 2)],
        [(0, 0.5), (0.5, 0.5), (1, 1), (2, 1), (3, 1)],
        [(0, 1), (1, 0.5), (1.5, 1), (2.5, 0.5), (3, 1)],
        [(0, 2), (2, 1), (3, 1)],
        [(0, 0.5), (0.5, 1), (1.5, 0.5), (2, 1.5), (3.5, 0.5)],
        [(0, 1.5), (1.5, 1), (2.5, 1.5)],
        [(1, 1), (2, 1), (3, 1)],
        [(0, 0.5), (0.5, 0.5), (1, 0.5), (1.5, 0.5), (2, 2)],
        [(0, 3), (3, 0.5), (3.5, 0.5)],
    ]
    if song.bpm >= 145:
        normal = [r for r in normal if min(d for _, d in r) >= 1 or len(r) <= 4]
    if song.bpm < 85:
        normal += [
            [(0, 0.5), (0.5, 0.25), (0.75, 0.25), (1, 1), (2, 0.5), (2.5, 0.5), (3, 1)],
            [(0, 0.75), (0.75, 0.25), (1, 1), (2, 0.75), (2.75, 0.25), (3, 1)],
        ]
    ends = [[(0, 4)], [(0, 1), (1, 1), (2, 2)], [(0, 2), (2, 2)], [(0, 1.5), (1.5, 0.5), (2, 2)],
            [(0, 3)]]
    return normal, ends


def gen_melody(song, part, bars, low, high, rng, prev, final, legato=0.92, mrhythms=None):
    normal, ends = mrhythms or melody_rhythms(song)
    center = (low + high) / 2
    motif = [rng.choice(normal) for _ in range(2)]
    notes = []
    n = len(bars)
    for bi, bar in enumerate(bars):
        last = bi == n - 1
        if last:
            rhythm = rng.choice(ends)
        elif bi % 4 == 2 and rng.random() < 0.7:
            rhythm = motif[0]  # repetition of the opening bar's rhythm
        elif bi % 2 == 1 and rng.random() < 0.5:
            rhythm = motif[1]
        else:
            rhythm = motif[bi % 2] if bi < 2 else rng.choice(normal)
        for k, (on, dur) in enumerate(rhythm):
            t = bar["start"] + on
            ch = song.chord_at(t)
            strong = (on % 2 == 0 if song.beats_per_bar == 4 else on == 0) or dur >= 1.5
            pcs = song.scale_pcs(ch)
            pool = [p for p in range(low, high + 1) if p % 12 in pcs]
            is_last_note = last and k == len(rhythm) - 1
            if is_last_note and final:
                pool = [p for p in pool if p % 12 == song.tonic]
            elif strong or is_last_note:
                pool = [p for p in pool if p % 12 in ch.pcs[:3]] or pool
            weights = []
            for p in pool:
                iv = abs(p - prev)
                w = math.exp(-iv / 2.5)
                if iv == 0:
                    w *= 0.35
                w *= math.exp(-((p - center) / (high - low)) ** 2 * 3)
                if strong and p % 12 in (ch.root, ch.third):
                    w *= 1.4  # melodies lean on root and third of the chord
                weights.append(w)
            p = rng.choices(pool, weights)[0]
            prev = p
            ts = song.sw(t)
            end = song.sw(t + dur) if (t + dur) % 1 else t + dur
            d = (end - ts) * legato
            if is_last_note and final:
                d = song.beats_per_bar
            base = 88 if strong else 78
            notes.append((ts, d, p, vel(rng, base, 7)))
    return notes, prev


def add_melody(song, part, low, high, legato=0.92, skip_intro=True, mrhythms=None):
    rng = song.rng
    cache = {}
    prev = int((low + high) / 2)
    phrases = {}
    for b in song.bars:
        phrases.setdefault(b["phrase"], []).append(b)
    for pi in sorted(phrases):
        bars = phrases[pi]
        sec = bars[0]["section"]
        if sec == "INTRO" and skip_intro:
            continue
        final = sec == "END"
        if sec in cache and not final and rng.random() < 0.8:
            # repeat the section's melody (shifted), with a fresh last bar sometimes
            src_start, src = cache[sec]
            off = bars[0]["start"] - src_start
            for (t, d, p, v) in src:
                part.add(t + off, d, p, vel(rng, v, 4))
            continue
        notes, prev = gen_melody(song, part, bars, low, high, rng, prev, final, legato, mrhythms)
        cache.setdefault(sec, (bars[0]["start"], notes))
        for nt in notes:
            part.add(*nt)


# --------------------------------------------------------------------------
# Accompaniment patterns


def each_chord(song, skip_final=True):
    """Yields (start, dur, chord, bar) for every chord, the final bar separately handled."""
    for bar in song.bars:
        if bar["final"] and skip_final:
            continue
        for (s, d, c) in bar["chords"]:
            yield s, d, c, bar


def final_chord(song, part, low, high, velocity=70, notes=None):
    """The held tonic at the end (whole last bar + a beat)."""
    bar = song.bars[-1]
    c = bar["chords"][0][2]
    v = notes or voicing(c.pcs[:3], None, low, high, song.rng)
    for p in v:
        part.add(bar["start"], song.beats_per_bar + 0.5, p, vel(song.rng, velocity, 4))


def comp_block(song, part, low, high, hits, dur, base_vel=64, accent=(0,), maxn=4, sevenths=False):
    prev = None
    for (s, d, c, bar) in each_chord(song):
        pcs = c.pcs if sevenths else c.pcs[:3]
        v = voicing(pcs, prev, low, high, song.rng, maxn)
        prev = v
        for h in hits:
            t = bar["start"] + h
            if s - 1e-6 <= t < s + d - 1e-6:
                vv = base_vel + (8 if h in accent else 0)
                for p in v:
                    part.add(song.sw(t), dur, p, vel(song.rng, vv, 5))
    final_chord(song, part, low, high, base_vel)


def comp_pad(song, part, low, high, base_vel=60, sevenths=False):
    prev = None
    for (s, d, c, bar) in each_chord(song):
        pcs = c.pcs if sevenths else c.pcs[:3]
        v = voicing(pcs, prev, low, high, song.rng, 4)
        prev = v
        for p in v:
            part.add(s, d * 0.98, p, vel(song.rng, base_vel, 4))
    final_chord(song, part, low, high, base_vel)


def comp_strum(song, part, pattern, base_vel=70, low=40, mute=False):
    """Guitar strum; pattern = list of (onset, 'D'|'U')."""
    rng = song.rng
    for (s, d, c, bar) in each_chord(song):
        gv = guitar_voicing(c, low)
        for (on, direction) in pattern:
            t = bar["start"] + on
            if not (s - 1e-6 <= t < s + d - 1e-6):
                continue
            strings = gv if direction == "D" else list(reversed(gv[2:]))
            step = 60.0 / song.bpm
            spread = rng.uniform(0.012, 0.022) / step  # seconds between strings -> beats
            nxt = min(s + d, t + 1.0 if not mute else t + 0.35)
            for k, p in enumerate(strings):
                tt = song.sw(t) + k * spread
                vv = base_vel + (10 if on % 1 == 0 and direction == "D" else 0) - k * 2
                part.add(tt, max(0.1, nxt - tt - 0.02), p, vel(rng, vv, 5))
    bar = song.bars[-1]
    c = bar["chords"][0][2]
    for k, p in enumerate(guitar_voicing(c, low)):
        part.add(bar["start"] + k * 0.02 * song.bpm / 60, song.beats_per_bar + 0.5, p, vel(rng, base_vel + 5, 4))


def comp_arpeggio(song, part, order, step, base_vel=62, low=40, pedal=True, piano=False):
    """Broken chords: `order` indexes a 6-note guitar-style voicing, one note per `step` beats."""
    rng = song.rng
    for (s, d, c, bar) in each_chord(song):
        if piano:
            r = bass_note(c.root, 36)
            v = voicing(c.pcs[:3], None, 55, 72, rng, 3)
            gv = [r, r + ((c.fifth - c.root) % 12), r + 12] + v
        else:
            gv = guitar_voicing(c, low)
        n = int(round(d / step))
        for k in range(n):
            t = s + k * step
            p = gv[order[k % len(order)] % len(gv)]
            vv = base_vel + (8 if k == 0 else 0)
            part.add(song.sw(t), (d - k * step) if k == 0 else step * 2.2, p, vel(rng, vv, 5))
        if pedal:
            part.ccs.append((s + 0.02, 64, 0))
            part.ccs.append((s + 0.08, 64, 127))
    bar = song.bars[-1]
    c = bar["chords"][0][2]
    gv = guitar_voicing(c, low)
    for k, p in enumerate(gv):
        part.add(bar["start"] + k * step * 0.5, song.beats_per_bar + 0.5, p, vel(rng, base_vel, 4))
    if pedal:
        part.ccs.append((bar["start"] + 0.02, 64, 0))
        part.ccs.append((bar["start"] + 0.08, 64, 127))
        part.ccs.append((song.total_beats + 1.0, 64, 0))


def comp_jazz(song, part, low=50, high=72):
    """Piano comping with seventh chords on swung, syncopated hits."""
    rng = song.rng
    prev = None
    patterns = [[(0, 0.75), (1.5, 1.0)], [(0.5, 0.5), (2.5, 1.0)], [(0, 1.0), (2.5, 0.5), (3.5, 0.5)],
                [(1.5, 0.5), (3, 0.75)], [(0, 1.5), (2, 1.0)]]
    for (s, d, c, bar) in each_chord(song):
        # shell/rootless: 3rd, 5th, 7th, root above (all chord tones)
        pcs = [c.third, c.fifth, c.pcs[3] if len(c.pcs) > 3 else c.root, c.root]
        v = voicing(pcs, prev, low, high, rng, 4)
        prev = v
        pat = rng.choice(patterns)
        for (on, dur) in pat:
            t = bar["start"] + on
            if s - 1e-6 <= t < s + d - 1e-6:
                for p in v:
                    part.add(song.sw(t), dur, p, vel(rng, 62, 6))
    final_chord(song, part, low, high, 62, voicing(song.bars[-1]["chords"][0][2].pcs, prev, low, high, rng, 4))


def comp_arp16(song, part, low=60, base_vel=66):
    """Synth arpeggio in sixteenths, up over two octaves (dance)."""
    rng = song.rng
    prev = None
    for (s, d, c, bar) in each_chord(song):
        v = voicing(c.pcs[:3], prev, low, low + 12, rng, 3)
        prev = v
        seq = v + [x + 12 for x in v]
        n = int(round(d / 0.25))
        for k in range(n):
            part.add(s + k * 0.25, 0.2, seq[k % len(seq)], vel(rng, base_vel + (10 if k % 4 == 0 else 0), 5))


def comp_oompah(song, part, low=55, high=72, base_vel=58):
    """Waltz: chord on beats 2 and 3."""
    rng = song.rng
    prev = None
    for (s, d, c, bar) in each_chord(song):
        v = voicing(c.pcs[:3], prev, low, high, rng, 3)
        prev = v
        for on in (1, 2):
            t = bar["start"] + on
            if s - 1e-6 <= t < s + d - 1e-6:
                for p in v:
                    part.add(t, 0.55, p, vel(rng, base_vel, 5))
    final_chord(song, part, low, high, base_vel)


def comp_stabs(song, part, low, high, patterns, base_vel=72, dur=0.2):
    """Short syncopated chord stabs (funk clav/guitar/brass)."""
    rng = song.rng
    prev = None
    for (s, d, c, bar) in each_chord(song):
        v = voicing(c.pcs[:3], prev, low, high, rng, 3)
        prev = v
        pat = patterns[bar["idx"] % len(patterns)]
        for on in pat:
            t = bar["start"] + on
            if s - 1e-6 <= t < s + d - 1e-6:
                acc = 10 if on % 0.5 == 0 else 0
                for p in v:
                    part.add(t, dur, p, vel(rng, base_vel + acc, 6))
    final_chord(song, part, low, high, base_vel)


# --------------------------------------------------------------------------
# Bass patterns


def bass_line(song, part, kind, low=33):
    rng = song.rng
    bpb = song.beats_per_bar
    for (s, d, c, bar) in each_chord(song):
        r = bass_note(c.root, low)
        fifth = r + ((c.fifth - c.root) % 12)
        nxt = song.next_chord_after(s)
        nr = bass_note(nxt.root, low)
        scale = song.scale_pcs(c)
        # diatonic approach note to the next root (step below or above)
        approach = nr - 1
        while approach % 12 not in scale:
            approach -= 1
        if abs(approach - nr) > 2:
            approach = nr + 2 if (nr + 2) % 12 in scale else nr + 1
        notes = []
        if kind == "rock8":
            n = int(round(d / 0.5))
            for k in range(n):
                notes.append((k * 0.5, 0.45, r if k < n - 1 or rng.random() < 0.6 else approach, 92 if k % 2 == 0 else 80))
        elif kind == "pop":
            pat = [(0, 1.5, r), (1.5, 0.5, r), (2, 1.0, fifth), (3, 0.5, r + 12), (3.5, 0.5, approach)]
            notes = [(o, l, p, 90) for (o, l, p) in pat if o < d - 1e-6]
        elif kind == "ballad":
            if d >= 4 - 1e-6 and rng.random() < 0.6:
                notes = [(0, 2.9, r, 80), (3, 1.0, fifth if rng.random() < 0.5 else r, 70)]
            else:
                notes = [(0, d * 0.97, r, 80)]
        elif kind == "house":
            n = int(round(d))
            for k in range(n):
                notes.append((k + 0.5, 0.4, r + (12 if k % 2 == 1 and rng.random() < 0.5 else 0), 95))
        elif kind == "roll16":
            n = int(round(d / 0.25))
            for k in range(n):
                if k % 4 != 0:
                    notes.append((k * 0.25, 0.22, r, 88 if k % 2 else 78))
        elif kind == "walking":
            n = int(round(d))
            tones = [r, r + ((c.third - c.root) % 12), fifth, r + ((c.pcs[3] - c.root) % 12) if len(c.pcs) > 3 else r + 12]
            for k in range(n):
                if k == 0:
                    p = r
                elif k == n - 1:
                    p = nr - 1 if rng.random() < 0.5 else nr + 1  # chromatic approach
                    if abs(p - r) > 9:
                        p = approach
                else:
                    p = rng.choice(tones[1:])
                notes.append((k, 0.92, p, 88 if k % 2 == 0 else 80))
        elif kind == "folk":
            for k in range(0, int(round(d)), 2):
                notes.append((k, 1.5, r if (k // 2) % 2 == 0 else fifth - 12 if fifth - 12 >= 28 else fifth, 82))
        elif kind == "funk":
            pats = [
                [(0, 0.4, r), (0.75, 0.2, r), (1, 0.2, r + 12), (2, 0.4, r), (2.5, 0.2, fifth), (3, 0.2, r + 12), (3.5, 0.4, approach)],
                [(0, 0.4, r), (0.5, 0.2, r), (1.5, 0.2, r + 12), (2, 0.4, r), (2.75, 0.2, fifth), (3.5, 0.4, approach)],
            ]
            pat = pats[bar["idx"] % 2]
            notes = [(o, l, p, 96 if o % 1 == 0 else 84) for (o, l, p) in pat if o < d - 1e-6]
        elif kind == "bossa":
            pat = [(0, 1.4, r), (1.5, 0.45, fifth), (2, 1.4, fifth), (3.5, 0.45, r)]
            notes = [(o, l, p, 84) for (o, l, p) in pat if o < d - 1e-6]
        elif kind == "waltz":
            for k in range(0, int(round(d)), bpb):
                alt = (k // bpb + bar["idx"]) % 2
                notes.append((k, 0.9, fifth - 12 if alt and fifth - 12 >= 28 else r, 88))
        for (o, l, p, v) in notes:
            part.add(song.sw(s + o), l, p, vel(rng, v, 6))
    bar = song.bars[-1]
    part.add(bar["start"], bpb + 0.5, bass_note(song.tonic, low), vel(rng, 90, 4))


# --------------------------------------------------------------------------
# Drums


def drums(song, part, kind, light=False):
    rng = song.rng
    bpb = song.beats_per_bar
    lv = 0.7 if light else 1.0

    def hit(t, note, v, sd=6):
        part.add(song.sw(t), 0.25, DRUM[note] if isinstance(note, str) else note, vel(rng, v * lv, sd))

    for bar in song.bars:
        b0 = bar["start"]
        intro = bar["section"] == "INTRO"
        if bar["final"]:
            hit(b0, "kick", 105)
            hit(b0, "crash", 105)
            if kind in ("jazz", "brush"):
                hit(b0, "ride", 80)
            continue
        if bar["crash"] and kind not in ("folk_perc",):
            hit(b0, "crash" if kind != "jazz" else "crash", 100 if kind != "brush" else 70)
        fill_from = bpb if not bar["fill"] else (bpb - (2 if rng.random() < 0.35 else 1))
        if kind == "rock":
            kicks = rng.choice([[0, 2], [0, 2.5], [0, 1.5, 2], [0, 2, 2.5], [0, 0.5, 2]]) if bar["bar_in_phrase"] % 2 else [0, 2]
            for k in kicks:
                hit(b0 + k, "kick", 100)
            for s in (1, 3):
                hit(b0 + s, "snare", 102)
            cymbal = "ride" if bar["section"] == "B" and rng.random() < 0.4 else "chh"
            for k in range(8):
                hit(b0 + k * 0.5, cymbal, 82 if k % 2 == 0 else 62)
        elif kind == "soft":  # ballad kit
            hit(b0, "kick", 70)
            if rng.random() < 0.5:
                hit(b0 + 2.5, "kick", 60)
            for s in (1, 3):
                hit(b0 + s, "stick" if intro or rng.random() < 0.7 else "snare", 62)
            step = 0.5 if song.bpm > 68 else 0.25
            for k in range(int(4 / step)):
                hit(b0 + k * step, "chh", 48 if (k * step) % 1 else 58, 5)
        elif kind == "brush":  # brushes (waltz/ballad alt kit)
            for k in range(bpb):
                hit(b0 + k, "snare", 45 if k else 55, 5)
                hit(b0 + k + 0.5, "snare", 32, 5)
            hit(b0, "kick", 60)
        elif kind == "four":  # four on the floor
            for k in range(4):
                hit(b0 + k, "kick", 110, 3)
                hit(b0 + k + 0.5, "ohh", 70 if not intro else 55, 4)
            if not intro:
                for s in (1, 3):
                    hit(b0 + s, "clap", 95)
                    hit(b0 + s, "snare", 70)
            for k in range(16):
                if k % 4 != 2:
                    hit(b0 + k * 0.25, "chh", 55 if k % 2 else 68, 5)
        elif kind == "jazz":
            for k, v in ((0, 80), (1, 85), (1.5, 60), (2, 80), (3, 85), (3.5, 60)):
                hit(b0 + k, "ride", v, 5)
            for k in (1, 3):
                hit(b0 + k, "phh", 70, 5)
            for k in range(4):
                hit(b0 + k, "kick", 32, 4)  # feathering
            for k in range(4):
                if rng.random() < 0.22:
                    hit(b0 + k + rng.choice([0.5, 0]), "snare", rng.choice([40, 55, 70]), 5)
        elif kind == "folk_perc":
            for s in (1, 3):
                hit(b0 + s, "tamb", 70)
            for k in range(8):
                hit(b0 + k * 0.5, "shaker", 55 if k % 2 else 65, 5)
            if rng.random() < 0.7:
                hit(b0, "kick", 62)
        elif kind == "funk":
            kicks = [[0, 0.75, 2], [0, 1.75, 2.5], [0, 0.5, 2, 2.75], [0, 2.5]][bar["idx"] % 4]
            for k in kicks:
                hit(b0 + k, "kick", 102)
            for s in (1, 3):
                hit(b0 + s, "snare", 105)
            for g in (1.75, 2.25, 3.75):
                if rng.random() < 0.6:
                    hit(b0 + g, "snare", 35, 5)  # ghost notes
            for k in range(16):
                t = k * 0.25
                if t == 3.5 and rng.random() < 0.5:
                    hit(b0 + t, "ohh", 75)
                else:
                    hit(b0 + t, "chh", 80 if k % 2 == 0 else 55, 5)
        elif kind == "bossa":
            two = bar["idx"] % 2
            for k in (0, 1.5, 2, 3.5):
                hit(b0 + k, "kick", 72 if k % 2 == 0 else 58)
            clave = [0, 1.5, 3] if two == 0 else [1, 2.5]
            for k in clave:
                hit(b0 + k, "stick", 78)
            for k in range(16):
                hit(b0 + k * 0.25, "shaker", 58 if k % 2 else 48, 5)
            hit(b0 + 1, "conga_mute", 70)
            hit(b0 + 3, "conga_open", 78)
            hit(b0 + 3.5, "conga_open", 72)
            if two:
                hit(b0 + 2.5, "conga_lo", 70)
        elif kind == "waltz":
            hit(b0, "kick", 78)
            for k in (1, 2):
                hit(b0 + k, "chh", 62)
                if rng.random() < 0.5:
                    hit(b0 + k, "stick", 50)
        # fill replaces the end of the bar
        if bar["fill"] and kind in ("rock", "four", "funk", "soft", "jazz"):
            # remove notes after fill_from in this bar (except kicks on the beat)
            cut = b0 + fill_from - 1e-3
            end = b0 + bpb
            part.notes = [n for n in part.notes if not (cut <= n[0] < end - 1e-3 and n[2] not in (DRUM["kick"],))]
            if kind == "four":
                step = 0.25
                k = 0
                t = b0 + fill_from
                while t < end - 1e-6:
                    hit(t, "snare", 60 + 40 * (t - b0 - fill_from) / max(1, bpb - fill_from))
                    t += step
            elif kind == "jazz":
                t = b0 + fill_from
                while t < end - 1e-6:
                    for j in range(3):
                        part.add(t + j / 3, 0.2, DRUM["snare"], vel(rng, 60 + 10 * j, 6))
                    t += 1
            else:
                toms = ["hi_tom", "hi_tom", "mid_tom", "mid_tom", "low_tom", "low_tom", "floor_tom", "floor_tom"]
                step = 0.25 if song.bpm < 150 else 0.5
                t = b0 + fill_from
                k = 0
                n_steps = int(round((bpb - fill_from) / step))
                while t < end - 1e-6:
                    if rng.random() < 0.3 and k < n_steps // 2:
                        inst = "snare"
                    else:
                        inst = toms[min(len(toms) - 1, int(k * len(toms) / max(1, n_steps)))]
                    hit(t, inst, 92 if kind != "soft" else 60)
                    t += step
                    k += 1


# --------------------------------------------------------------------------
# Styles


def pick(rng, names):
    n = rng.choice(names)
    return n, GM[n]


def lead_part(song, names, channel=0, volume=100, pan=64, reverb=40):
    rng = song.rng
    name, prog = pick(rng, names)
    part = Part("lead:" + name, channel, prog, volume=volume, pan=pan, reverb=reverb, jitter_ms=6)
    low, high = LEAD_RANGE.get(name, (62, 84))
    return part, low, high


def arrange(song: Song, has_drums: bool):
    rng = song.rng
    st = song.style
    P = []
    if st == "pop_rock":
        song.variant = song.variant_hint
        lead, lo, hi = lead_part(song, ["overdrive", "clean_gtr", "alto_sax", "saw", "square", "voice_lead", "flute", "piano"] if song.variant != "rock" else ["overdrive", "distortion", "saw"])
        add_melody(song, lead, lo, hi)
        bass = Part("bass", 2, GM[rng.choice(["finger_bass", "pick_bass"])], volume=105, pan=64, jitter_ms=4)
        bass_line(song, bass, "rock8" if song.variant == "rock" else rng.choice(["pop", "rock8"]))
        if song.variant == "pop_piano":
            ch = Part("piano", 1, GM[rng.choice(["piano", "bright_piano", "epiano"])], volume=90, pan=50, jitter_ms=5)
            comp_block(song, ch, 52, 74, rng.choice([[0, 1, 2, 3], [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5], [0, 1.5, 2, 3]]), 0.45, 66, accent=(0, 2))
            P += [ch]
            if rng.random() < 0.5:
                pad = Part("strings", 3, GM["strings"], volume=70, pan=80, reverb=60)
                comp_pad(song, pad, 55, 76, 52)
                P.append(pad)
        elif song.variant == "pop_guitar":
            ch = Part("guitar", 1, GM[rng.choice(["steel", "clean_gtr"])], volume=92, pan=40, jitter_ms=4)
            comp_strum(song, ch, rng.choice([[(0, "D"), (1, "D"), (1.5, "U"), (2.5, "U"), (3, "D"), (3.5, "U")],
                                             [(0, "D"), (1, "D"), (2, "D"), (2.5, "U"), (3, "D")]]), 66)
            P.append(ch)
            if rng.random() < 0.6:
                org = Part("organ", 3, GM["organ"], volume=60, pan=90)
                comp_pad(song, org, 55, 74, 50)
                P.append(org)
        else:
            ch = Part("power", 1, GM[rng.choice(["overdrive", "distortion"])], volume=85, pan=36, jitter_ms=3)
            # power chords: root + fifth + octave in eighths
            for (s, d, c, bar) in each_chord(song):
                r = bass_note(c.root, 40)
                for k in range(int(round(d / 0.5))):
                    for p in (r, r + 7, r + 12):
                        ch.add(s + k * 0.5, 0.42, p, vel(rng, 84 if k % 2 == 0 else 72, 4))
            c = song.bars[-1]["chords"][0][2]
            r = bass_note(c.root, 40)
            for p in (r, r + 7, r + 12, r + 12 + ((c.third - c.root) % 12)):
                ch.add(song.bars[-1]["start"], 4.5, p, vel(rng, 95, 3))
            P.append(ch)
            gtr2 = Part("rhythm2", 3, GM["clean_gtr"], volume=70, pan=96)
            comp_arpeggio(song, gtr2, [0, 3, 4, 5, 1, 3, 4, 5], 0.5, 58, pedal=False)
            P.append(gtr2)
        if has_drums:
            kit = Part("drums", 9, rng.choice([0, 8, 16]), volume=105, jitter_ms=3, bank=128)
            drums(song, kit, "rock")
            P.append(kit)
        P += [lead, bass]
    elif st == "ballad":
        song.variant = song.variant_hint
        if song.variant == "guitar_strings":
            acc = Part("nylon", 1, GM["nylon"], volume=100, pan=50, reverb=60, jitter_ms=6)
            comp_arpeggio(song, acc, [0, 2, 3, 4, 5, 4, 3, 2], 0.5, 64, pedal=False)
        else:
            acc = Part("piano", 1, GM["piano" if song.variant != "epiano" else "epiano"], volume=100, pan=56, reverb=70, jitter_ms=7)
            comp_arpeggio(song, acc, [0, 1, 2, 3, 4, 5, 4, 3] if song.bpm < 72 else [0, 1, 2, 4, 3, 1, 2, 5], 0.5 if song.bpm < 76 else 0.5, 60, piano=True)
        pad = Part("strings", 3, GM[rng.choice(["strings", "strings2", "synstrings"])], volume=80, pan=76, reverb=80)
        comp_pad(song, pad, 55, 77, 58)
        lead, lo, hi = lead_part(song, ["piano", "violin", "cello", "flute", "clarinet", "oboe", "choir", "vibes"], reverb=70)
        add_melody(song, lead, lo, hi, legato=0.98)
        P += [acc, pad, lead]
        if rng.random() < 0.6:
            bass = Part("bass", 2, GM[rng.choice(["ac_bass", "fretless"])], volume=95, reverb=50)
            bass_line(song, bass, "ballad")
            P.append(bass)
        if has_drums:
            kit = Part("drums", 9, rng.choice([0, 40, 32]), volume=85, jitter_ms=4, bank=128, reverb=60)
            drums(song, kit, "soft" if kit.program != 40 else "brush", light=True)
            P.append(kit)
    elif st == "dance":
        song.variant = song.variant_hint
        pad = Part("pad", 3, GM[rng.choice(["warm_pad", "poly_pad", "newage_pad", "halo_pad", "sweep_pad", "choir_pad"])], volume=82, pan=64, reverb=60, chorus=40)
        comp_pad(song, pad, 55, 76, 62)
        bass = Part("synbass", 2, GM[rng.choice(["synbass1", "synbass2", "bass_lead"])], volume=100, jitter_ms=2)
        bass_line(song, bass, "roll16" if song.variant == "trance" else "house" if song.variant == "house" else rng.choice(["house", "rock8"]), low=36)
        lead, lo, hi = lead_part(song, ["saw", "square", "calliope", "charang", "synbrass", "voice_lead"], reverb=50)
        add_melody(song, lead, lo, hi, legato=0.85)
        P += [pad, bass, lead]
        if song.variant != "house" or rng.random() < 0.5:
            arp = Part("arp", 4, GM[rng.choice(["saw", "square", "poly_pad"])], volume=62, pan=90, reverb=50, jitter_ms=1)
            comp_arp16(song, arp, 60, 60)
            P.append(arp)
        if song.variant == "house":
            stab = Part("piano", 1, GM[rng.choice(["piano", "epiano", "organ"])], volume=80, pan=40)
            comp_stabs(song, stab, 55, 74, [[0.5, 1.5, 2.5, 3.5], [0.5, 1.75, 2.5, 3.5]], 70, 0.3)
            P.append(stab)
        kit = Part("drums", 9, rng.choice([24, 25, 0]), volume=108, jitter_ms=1, bank=128)
        drums(song, kit, "four")
        P.append(kit)
    elif st == "jazz":
        song.variant = "swing"
        song.swing = 0.66 if song.bpm < 125 else 0.62 if song.bpm < 155 else 0.58
        comp = Part("comp", 1, GM[rng.choice(["piano", "piano", "epiano", "jazz_gtr"])], volume=85, pan=44, reverb=40)
        comp_jazz(song, comp)
        bass = Part("bass", 2, GM["ac_bass"], volume=110, pan=70, jitter_ms=4)
        bass_line(song, bass, "walking")
        lead, lo, hi = lead_part(song, ["tenor_sax", "alto_sax", "trumpet", "muted_tpt", "vibes", "trombone", "flute", "jazz_gtr"])
        add_melody(song, lead, lo, hi, legato=0.9)
        kit = Part("drums", 9, rng.choice([32, 40, 0]), volume=95, jitter_ms=3, bank=128)
        drums(song, kit, "jazz")
        P += [comp, bass, lead, kit]
    elif st == "folk":
        song.variant = song.variant_hint
        g = Part("guitar", 1, GM[rng.choice(["steel", "nylon"])], volume=100, pan=50, reverb=45, jitter_ms=6)
        if song.variant == "fingerpick":
            comp_arpeggio(song, g, rng.choice([[0, 3, 4, 5, 1, 3, 4, 5], [0, 4, 3, 5, 1, 4, 3, 4], [0, 3, 1, 4, 0, 5, 1, 4]]), 0.5, 62, pedal=False)
        else:
            comp_strum(song, g, rng.choice([[(0, "D"), (1, "D"), (1.5, "U"), (2.5, "U"), (3, "D"), (3.5, "U")],
                                            [(0, "D"), (1, "D"), (2, "D"), (2.5, "U"), (3, "D"), (3.5, "U")]]), 62)
        lead, lo, hi = lead_part(song, ["flute", "violin", "fiddle", "harmonica", "accordion", "recorder", "panflute", "ocarina", "banjo"], reverb=45)
        add_melody(song, lead, lo, hi, legato=0.9)
        P += [g, lead]
        if rng.random() < 0.5:
            bass = Part("bass", 2, GM["ac_bass"], volume=95, pan=64)
            bass_line(song, bass, "folk")
            P.append(bass)
        if rng.random() < 0.35:
            g2 = Part("guitar2", 3, GM["steel"] if g.program != GM["steel"] else GM["nylon"], volume=70, pan=90)
            comp_arpeggio(song, g2, [5, 4, 3, 4], 1.0, 52, low=52, pedal=False)
            P.append(g2)
        if has_drums:
            kit = Part("perc", 9, 0, volume=85, jitter_ms=4, bank=128)
            drums(song, kit, "folk_perc", light=True)
            P.append(kit)
    elif st == "latin_funk":
        song.variant = "funk" if song.bpm < 112 and rng.random() < 0.75 or (song.bpm < 100) else "bossa"
        if song.variant == "funk":
            ch = Part("clav", 1, GM[rng.choice(["clav", "muted_gtr", "clav"])], volume=85, pan=40, jitter_ms=3)
            comp_stabs(song, ch, 55, 72, [[0, 0.5, 1.5, 1.75, 2.5, 3, 3.5], [0.25, 1, 1.5, 2.25, 3, 3.5]], 72, 0.15)
            bass = Part("bass", 2, GM[rng.choice(["slap1", "slap2", "finger_bass"])], volume=105, jitter_ms=3)
            bass_line(song, bass, "funk")
            brass = Part("brass", 4, GM[rng.choice(["brass", "synbrass"])], volume=78, pan=84, jitter_ms=4)
            comp_stabs(song, brass, 58, 77, [[], [1.5, 2.25], [], [0.5, 3.5]], 80, 0.3)
            lead, lo, hi = lead_part(song, ["alto_sax", "tenor_sax", "trumpet", "saw", "organ", "clean_gtr"])
            add_melody(song, lead, lo, hi, legato=0.8)
            P += [ch, bass, brass, lead]
            if rng.random() < 0.5:
                org = Part("organ", 3, GM["rock_organ"], volume=62, pan=70)
                comp_pad(song, org, 55, 74, 50)
                P.append(org)
            kit = Part("drums", 9, rng.choice([0, 8]), volume=105, jitter_ms=3, bank=128)
            drums(song, kit, "funk")
        else:
            g = Part("nylon", 1, GM["nylon"], volume=95, pan=44, jitter_ms=5)
            comp_stabs(song, g, 52, 70, [[0, 1.5, 2.5], [0.5, 2, 3]], 64, 0.45)
            bass = Part("bass", 2, GM["ac_bass"], volume=105)
            bass_line(song, bass, "bossa")
            lead, lo, hi = lead_part(song, ["flute", "alto_sax", "tenor_sax", "vibes", "trumpet"], reverb=50)
            add_melody(song, lead, lo, hi, legato=0.9)
            pad = Part("pad", 3, GM[rng.choice(["strings", "epiano", "warm_pad"])], volume=62, pan=80, reverb=60)
            comp_pad(song, pad, 55, 74, 50, sevenths=True)
            kit = Part("perc", 9, 0, volume=92, jitter_ms=3, bank=128)
            drums(song, kit, "bossa")
            P += [g, bass, lead, pad]
        P.append(kit)
    elif st == "waltz":
        song.variant = song.variant_hint
        accp = {"piano": "piano", "accordion": "accordion", "strings": "pizz"}[song.variant]
        ch = Part("oompah", 1, GM[accp], volume=85, pan=50, jitter_ms=5)
        comp_oompah(song, ch)
        bass = Part("bass", 2, GM[rng.choice(["tuba", "contrabass", "ac_bass", "piano"])], volume=100, jitter_ms=5)
        bass_line(song, bass, "waltz", low=33 if bass.program != GM["piano"] else 36)
        lead, lo, hi = lead_part(song, ["violin", "flute", "accordion", "clarinet", "oboe", "piano", "harmonica"], reverb=55)
        add_melody(song, lead, lo, hi, legato=0.95)
        P += [ch, bass, lead]
        if rng.random() < 0.5 or song.variant == "strings":
            pad = Part("strings", 3, GM["strings"], volume=68, pan=80, reverb=70)
            comp_pad(song, pad, 55, 76, 50)
            P.append(pad)
        if has_drums:
            kit = Part("drums", 9, rng.choice([40, 0, 48]), volume=80, jitter_ms=4, bank=128)
            drums(song, kit, "waltz" if kit.program != 40 else "brush", light=True)
            P.append(kit)
    song.parts = P


# --------------------------------------------------------------------------
# MIDI writing with humanisation


def write_midi(song: Song, path: str):
    rng = song.rng
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo_us = int(round(60_000_000 / song.bpm))
    song.exact_bpm = 60_000_000 / tempo_us
    conductor = mido.MidiTrack()
    conductor.append(mido.MetaMessage("track_name", name=f"motif-eval {song.idx:03d}", time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=tempo_us, time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=song.beats_per_bar, denominator=4, time=0))
    mid.tracks.append(conductor)
    beats_per_sec = song.bpm / 60.0
    end_beat = song.total_beats + song.tail * beats_per_sec
    for part in song.parts:
        tr = mido.MidiTrack()
        ev = []  # (tick, order, msg)
        ch = part.channel
        tr.append(mido.MetaMessage("track_name", name=part.name, time=0))
        init = []
        if part.channel == 9:
            init.append(mido.Message("control_change", channel=ch, control=0, value=0))
        else:
            init.append(mido.Message("control_change", channel=ch, control=0, value=part.bank))
        init += [
            mido.Message("program_change", channel=ch, program=part.program),
            mido.Message("control_change", channel=ch, control=7, value=part.volume),
            mido.Message("control_change", channel=ch, control=10, value=part.pan),
            mido.Message("control_change", channel=ch, control=91, value=part.reverb),
            mido.Message("control_change", channel=ch, control=93, value=part.chorus),
        ]
        for m in init:
            ev.append((0, 0, m))
        # humanise and resolve overlaps of the same pitch
        notes = []
        for (t, d, p, v) in part.notes:
            j = max(-3, min(3, rng.gauss(0, 1))) * part.jitter_ms / 1000.0 * beats_per_sec
            t2 = max(0.0, t + j + 0.25)  # quarter-beat lead-in so the first note isn't at 0
            d2 = max(0.05, d * (1 + rng.gauss(0, 0.03)))
            notes.append([t2, d2, p, max(1, min(127, int(round(rng.gauss(v, part.vel_sd * 0.3)))))])
        notes.sort(key=lambda n: (n[2], n[0]))
        for a, b in zip(notes, notes[1:]):
            if a[2] == b[2] and a[0] + a[1] > b[0] - 0.01:
                a[1] = max(0.02, b[0] - a[0] - 0.01)
        for (t, d, p, v) in notes:
            on = int(round(t * TPB))
            off = max(on + 1, int(round((t + d) * TPB)))
            ev.append((on, 2, mido.Message("note_on", channel=ch, note=p, velocity=v)))
            ev.append((off, 1, mido.Message("note_off", channel=ch, note=p, velocity=0)))
        for (t, cc, val) in part.ccs:
            ev.append((int(round((t + 0.25) * TPB)), 0, mido.Message("control_change", channel=ch, control=cc, value=val)))
        # a harmless event at the very end so the renderer keeps the reverb/decay tail
        ev.append((int(round((end_beat + 0.25) * TPB)), 0, mido.Message("control_change", channel=ch, control=91, value=part.reverb)))
        ev.sort(key=lambda e: (e[0], e[1]))
        last = 0
        for (tick, _, m) in ev:
            tr.append(m.copy(time=tick - last))
            last = tick
        tr.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(tr)
    mid.save(path)
    song.duration = (end_beat + 0.25) / beats_per_sec


def symbolic_key(song: Song):
    """Krumhansl-Kessler key of the note content (duration x velocity weighted), drums excluded."""
    hist = [0.0] * 12
    for part in song.parts:
        if part.channel == 9:
            continue
        for (t, d, p, v) in part.notes:
            hist[p % 12] += min(d, 4.0) * v
    best = []
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for t in range(12):
            rot = [prof[(i - t) % 12] for i in range(12)]
            best.append((corr(hist, rot), PC_NAMES[t], mode))
    best.sort(reverse=True)
    return best[0], best[1]


def corr(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return num / den if den else 0.0


# --------------------------------------------------------------------------


def assignments(n: int, rng: random.Random):
    """Style, key, mode, tempo and drums for every song, balanced by construction."""
    n_major = (n + 1) // 2
    rows = []
    for mode, count in (("major", n_major), ("minor", n - n_major)):
        pcs = []
        while len(pcs) < count:
            cyc = list(range(12))
            rng.shuffle(cyc)
            pcs += cyc
        styles = []
        while len(styles) < count:
            cyc = list(STYLES)
            rng.shuffle(cyc)
            styles += cyc
        for i in range(count):
            rows.append({"mode": mode, "tonic": pcs[i], "style": styles[i]})
    rng.shuffle(rows)
    # tempo: stratified log-uniform inside each style's range
    by_style = {}
    for r in rows:
        by_style.setdefault(r["style"], []).append(r)
    for st, rs in by_style.items():
        lo, hi = TEMPO_RANGE[st]
        k = len(rs)
        qs = [(i + rng.random()) / k for i in range(k)]
        rng.shuffle(qs)
        for r, q in zip(rs, qs):
            r["bpm"] = int(round(math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo)))))
        if st in VARIANTS:
            vs = []
            while len(vs) < k:
                cyc = list(VARIANTS[st])
                rng.shuffle(cyc)
                vs += cyc
            for r, v in zip(rs, vs):
                r["variant"] = v
        nd = round(NO_DRUMS.get(st, 0.0) * k)
        flags = [False] * nd + [True] * (k - nd)
        rng.shuffle(flags)
        for r, f in zip(rs, flags):
            r["has_drums"] = f
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.outdir, "midi"), exist_ok=True)
    master = random.Random(args.seed)
    rows = assignments(args.n, master)
    out = []
    agree = 0
    for i, r in enumerate(rows, start=1):
        rng = random.Random(args.seed * 1000 + i)
        song = Song(i, r["style"], r["tonic"], r["mode"], r["bpm"], rng)
        song.variant_hint = r.get("variant", "")
        plan(song)
        arrange(song, r["has_drums"])
        has_drums = any(p.channel == 9 for p in song.parts)
        rel = f"midi/{i:03d}_{song.style}.mid"
        write_midi(song, os.path.join(args.outdir, rel))
        (k1, k2) = symbolic_key(song)
        ok = k1[1] == PC_NAMES[song.tonic] and k1[2] == song.mode
        agree += ok
        out.append({
            "id": f"{i:03d}_{song.style}",
            "midi": rel,
            "audio": f"audio/{i:03d}_{song.style}.ogg",
            "tempo_bpm": round(song.exact_bpm, 3),
            "key": PC_NAMES[song.tonic],
            "mode": song.mode,
            "style": song.style,
            "variant": song.variant,
            "meter": f"{song.beats_per_bar}/4",
            "has_drums": has_drums,
            "swing": song.swing if song.swing != 0.5 else None,
            "bars": song.n_bars,
            "duration_s": round(song.duration, 2),
            "instruments": [f"{p.name}={'drumkit ' if p.channel == 9 else ''}{p.program}" for p in song.parts],
            "sections": song.meta["sections"],
            "progressions": song.meta["progressions"],
            "chord_bars_stretch": song.meta["stretch"],
            "symbolic_key_check": {"best": f"{k1[1]} {k1[2]}", "r": round(k1[0], 3),
                                   "second": f"{k2[1]} {k2[2]}", "r2": round(k2[0], 3), "agrees": ok},
        })
    with open(os.path.join(args.outdir, "songs.json"), "w") as f:
        json.dump({"seed": args.seed, "n": args.n, "songs": out}, f, indent=1)
        f.write("\n")
    print(f"composed {len(out)} songs into {args.outdir}/midi; symbolic KK key check agrees on {agree}/{len(out)}")


if __name__ == "__main__":
    main()
