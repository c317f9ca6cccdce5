#!/usr/bin/env python3
"""Peer tempo/key reference for the Motif dev corpus, computed with Essentia.

For every line `package<TAB>music/<package>/<file>` of <corpus>/music.tsv this
loads the file as 44.1 kHz mono with MonoLoader and computes

  * tempo: RhythmExtractor2013(method="multifeature") -> bpm, confidence
    (the multifeature confidence is on Essentia's 0..5.32 scale; >3.5 is
    "excellent", 1.5..3.5 "good", <1 "poor" per the Essentia docs)
  * key:   KeyExtractor() with its default profile, and with profileType="edma"
    -> key (pitch class, sharps), scale (major/minor), strength

and writes one TSV row per file (errors are recorded in the `error` column and
the run goes on).  Per-file CPU seconds and audio seconds are written too, and
the run totals (CPU s, audio s, x realtime per core) go to stderr and to a
`<out>.timing.txt` file beside the TSV.

Usage (run from anywhere; needs the venv described in README.md):
    nice -n 10 /work/peer-venv/bin/python docs/peer/peer_tempo_key.py \
        --corpus /work/corpus --out docs/peer/essentia_dev_corpus.tsv
"""
import argparse
import csv
import os
import resource
import sys
import time

import essentia
import essentia.standard as es

SAMPLE_RATE = 44100
PITCH_CLASSES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_FLAT_TO_SHARP = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#",
                  "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}

COLUMNS = [
    "path", "package",
    "essentia_bpm", "essentia_bpm_confidence",
    "essentia_key", "essentia_scale", "essentia_key_strength",
    "essentia_edma_key", "essentia_edma_scale", "essentia_edma_key_strength",
    "audio_seconds", "cpu_seconds", "error",
]


def to_sharp(key):
    """Essentia key name -> pitch class spelled with sharps (C C# ... B)."""
    k = _FLAT_TO_SHARP.get(key, key)
    if k not in PITCH_CLASSES:
        raise ValueError("unexpected key name %r" % key)
    return k


def pypi_version():
    try:
        from importlib.metadata import version
        return version("essentia")
    except Exception:  # not installed from PyPI
        return "unknown"


def cpu_now():
    """CPU seconds (user+sys) used so far by this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def analyse(abs_path, rhythm, key_default, key_edma):
    audio = es.MonoLoader(filename=abs_path, sampleRate=SAMPLE_RATE)()
    out = {"audio_seconds": "%.3f" % (len(audio) / float(SAMPLE_RATE))}
    if len(audio) == 0:
        raise RuntimeError("decoded 0 samples")
    bpm, _ticks, conf, _estimates, _intervals = rhythm(audio)
    out["essentia_bpm"] = "%.3f" % bpm
    out["essentia_bpm_confidence"] = "%.4f" % conf
    key, scale, strength = key_default(audio)
    out["essentia_key"] = to_sharp(key)
    out["essentia_scale"] = scale
    out["essentia_key_strength"] = "%.4f" % strength
    if key_edma is not None:
        key, scale, strength = key_edma(audio)
        out["essentia_edma_key"] = to_sharp(key)
        out["essentia_edma_scale"] = scale
        out["essentia_edma_key_strength"] = "%.4f" % strength
    return out, len(audio) / float(SAMPLE_RATE)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="/work/corpus",
                    help="corpus root holding music.tsv (default /work/corpus)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "essentia_dev_corpus.tsv"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (testing)")
    ap.add_argument("--no-edma", action="store_true", help="skip the edma key profile")
    args = ap.parse_args()

    essentia.log.infoActive = False
    essentia.log.warningActive = False

    with open(os.path.join(args.corpus, "music.tsv"), newline="") as f:
        entries = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if args.limit:
        entries = entries[:args.limit]

    rhythm = es.RhythmExtractor2013(method="multifeature")
    key_default = es.KeyExtractor()
    key_edma = None if args.no_edma else es.KeyExtractor(profileType="edma")

    wall0, cpu0 = time.time(), cpu_now()
    total_audio, failures = 0.0, 0
    with open(args.out, "w", newline="") as fo:
        w = csv.DictWriter(fo, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for i, (package, rel) in enumerate(entries, 1):
            row = {c: "" for c in COLUMNS}
            row["path"], row["package"] = rel, package
            c0 = cpu_now()
            try:
                res, secs = analyse(os.path.join(args.corpus, rel), rhythm, key_default, key_edma)
                row.update(res)
                total_audio += secs
            except Exception as e:  # record and continue
                failures += 1
                row["error"] = ("%s: %s" % (type(e).__name__, e)).replace("\t", " ").replace("\n", " ")
            row["cpu_seconds"] = "%.3f" % (cpu_now() - c0)
            w.writerow(row)
            fo.flush()
            print("[%d/%d] %s bpm=%s key=%s %s %s" % (
                i, len(entries), rel, row["essentia_bpm"], row["essentia_key"],
                row["essentia_scale"], row["error"]), file=sys.stderr, flush=True)

    cpu = cpu_now() - cpu0
    wall = time.time() - wall0
    summary = [
        "essentia_version\t%s" % essentia.__version__,
        "essentia_pypi_version\t%s" % pypi_version(),
        "files\t%d" % len(entries),
        "failures\t%d" % failures,
        "audio_seconds\t%.1f" % total_audio,
        "cpu_seconds\t%.1f" % cpu,
        "wall_seconds\t%.1f" % wall,
        "x_realtime_per_core\t%.1f" % (total_audio / cpu if cpu else 0.0),
        "edma\t%s" % ("no" if key_edma is None else "yes"),
    ]
    with open(args.out + ".timing.txt", "w") as ft:
        ft.write("\n".join(summary) + "\n")
    print("\n".join(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
