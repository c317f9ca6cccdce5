#!/usr/bin/env python3
"""Compare Motif's tempo/key with the Essentia peer TSV.

Usage:
    python3 docs/peer/compare.py docs/peer/essentia_dev_corpus.tsv motif.tsv [--edma]

Essentia TSV: written by peer_tempo_key.py (path, package, essentia_bpm, ...).
Motif TSV:    columns path, label, tempo_bpm, tempo_confidence, key, mode,
              key_strength (extra columns are ignored).  `path` may be
              absolute: rows are matched on the suffix music/<package>/<file>.

Prints the number of files compared and:
  * tempo Accuracy1-style: |motif - essentia| <= 4 % of essentia
  * tempo Accuracy2-style: the same allowing motif to be 2, 1/2, 3 or 1/3
    times essentia (within 4 % of the scaled essentia tempo)
  * key exact agreement (same pitch class and mode) and the MIREX weighted
    score of Motif's key against Essentia's: 1.0 same key, 0.5 perfect fifth
    above or below with the same mode, 0.3 relative major/minor, 0.2 parallel
    major/minor, else 0
  * the disagreements (file, both tempos, both keys).
Only the Python standard library is needed.  --edma compares against the
Essentia edma-profile key instead of the default profile.
"""
import argparse
import csv
import re
import sys

PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_ALIASES = {"DB": 1, "EB": 3, "GB": 6, "AB": 8, "BB": 10, "CB": 11, "FB": 4,
            "E#": 5, "B#": 0}
TOL = 0.04
FACTORS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def pitch_class(name):
    """'C#', 'Db', 'c#', 'A' ... -> 0..11, or None if empty/unknown."""
    if name is None:
        return None
    s = name.strip().replace("♯", "#").replace("♭", "b")
    if not s:
        return None
    s = s[0].upper() + s[1:]
    if s in PCS:
        return PCS.index(s)
    return _ALIASES.get(s.upper())


def norm_mode(m):
    m = (m or "").strip().lower()
    if m in ("major", "maj", "ionian"):
        return "major"
    if m in ("minor", "min", "aeolian"):
        return "minor"
    return m or None


def parse_key(key, mode):
    """Return (pc, mode) or None. Accepts key='A' mode='minor', or key='A minor'/'Am'."""
    key = (key or "").strip()
    if not key:
        return None
    m = re.match(r"^([A-Ga-g][#b♯♭]?)\s*(.*)$", key)
    if not m:
        return None
    pc = pitch_class(m.group(1))
    rest = m.group(2).strip()
    md = norm_mode(mode) if (mode or "").strip() else None
    if md is None and rest:
        md = "minor" if rest in ("m", "min") else norm_mode(rest)
    if pc is None or md not in ("major", "minor"):
        return None
    return pc, md


def key_str(k):
    return "-" if k is None else "%s %s" % (PCS[k[0]], k[1])


def mirex_score(est, ref):
    """MIREX 2005 weighted key score of est against ref."""
    if est is None or ref is None:
        return 0.0
    (pe, me), (pr, mr) = est, ref
    if pe == pr and me == mr:
        return 1.0
    if me == mr and (pe - pr) % 12 in (5, 7):
        return 0.5
    if me != mr:
        # relative: C major <-> A minor
        if mr == "major" and me == "minor" and pe == (pr + 9) % 12:
            return 0.3
        if mr == "minor" and me == "major" and pe == (pr + 3) % 12:
            return 0.3
        if pe == pr:
            return 0.2
    return 0.0


def tempo_ok(est, ref, factors):
    return any(abs(est - ref * f) <= TOL * ref * f for f in factors)


def suffix(path):
    """'/abs/corpus/music/pkg/f.ogg' -> 'music/pkg/f.ogg' (else the path as is)."""
    p = path.replace("\\", "/")
    m = re.search(r"(?:^|/)(music/[^/]+/[^/]+)$", p)
    return m.group(1) if m else p


def to_float(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and v > 0 else None


def read_tsv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("essentia_tsv")
    ap.add_argument("motif_tsv")
    ap.add_argument("--edma", action="store_true",
                    help="use the essentia_edma_* key columns as reference")
    args = ap.parse_args()

    kcol = "essentia_edma_" if args.edma else "essentia_"
    ess, ess_err = {}, set()
    for r in read_tsv(args.essentia_tsv):
        if (r.get("error") or "").strip():
            ess_err.add(suffix(r["path"]))
            continue
        ess[suffix(r["path"])] = r
    mot = {}
    for r in read_tsv(args.motif_tsv):
        mot[suffix(r["path"])] = r

    common = sorted(set(ess) & set(mot))
    only_motif = sorted(set(mot) - set(ess) - ess_err)
    print("essentia rows (no error): %d, motif rows: %d, compared: %d"
          % (len(ess), len(mot), len(common)))
    skipped = sorted(set(mot) & ess_err)
    if skipped:
        print("skipped, essentia failed on them: %d (%s)" % (len(skipped), ", ".join(skipped)))
    if only_motif:
        print("motif rows with no essentia match: %d (e.g. %s)"
              % (len(only_motif), only_motif[0]))
    if not common:
        return 1

    n_t = acc1 = acc2 = 0
    n_k = exact = 0
    mirex = 0.0
    dis = []
    for p in common:
        e, m = ess[p], mot[p]
        eb, mb = to_float(e.get("essentia_bpm")), to_float(m.get("tempo_bpm"))
        ek = parse_key(e.get(kcol + "key"), e.get(kcol + "scale"))
        mk = parse_key(m.get("key"), m.get("mode"))
        t1 = t2 = False
        if eb is not None:
            n_t += 1
            if mb is not None:
                t1 = tempo_ok(mb, eb, (1.0,))
                t2 = tempo_ok(mb, eb, FACTORS)
            acc1 += t1
            acc2 += t2
        s = 0.0
        if ek is not None:
            n_k += 1
            s = mirex_score(mk, ek)
            mirex += s
            exact += s == 1.0
        if (eb is not None and not t1) or (ek is not None and s < 1.0):
            dis.append((p, eb, mb, t1, t2, ek, mk, s))

    def pct(a, n):
        return "%d/%d = %.1f %%" % (a, n, 100.0 * a / n) if n else "n/a"

    print()
    print("tempo (files with an essentia tempo: %d; tolerance %.0f %%)" % (n_t, TOL * 100))
    print("  Accuracy1 (same tempo):              %s" % pct(acc1, n_t))
    print("  Accuracy2 (x1, x2, x1/2, x3, x1/3):  %s" % pct(acc2, n_t))
    print("key (files with an essentia key: %d; reference profile: %s)"
          % (n_k, "edma" if args.edma else "default"))
    print("  exact:                               %s" % pct(exact, n_k))
    print("  MIREX weighted score:                %.3f (sum %.1f / %d)"
          % (mirex / n_k if n_k else 0.0, mirex, n_k))
    print()
    print("disagreements (%d):" % len(dis))
    print("  %-55s %9s %9s %-6s %-10s %-10s %s"
          % ("file", "ess_bpm", "motif_bpm", "tempo", "ess_key", "motif_key", "mirex"))
    for p, eb, mb, t1, t2, ek, mk, s in dis:
        tflag = "ok" if t1 else ("x2/x3" if t2 else "NO")
        print("  %-55s %9s %9s %-6s %-10s %-10s %.1f"
              % (p, "-" if eb is None else "%.1f" % eb, "-" if mb is None else "%.1f" % mb,
                 tflag, key_str(ek), key_str(mk), s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
