#!/usr/bin/env python3
"""Run every shipped deck (a run each, and the sweep of every deck with a [sweep] table) into
a directory, or compare two such directories number by number.

A refactor that promises "results unchanged" proves it with this script: run it on the
commit before (in a git worktree) and after, then compare::

    git worktree add /tmp/before HEAD~1
    PYTHONPATH=/tmp/before/src python scripts/compare_outputs.py run /tmp/out-before
    python scripts/compare_outputs.py run /tmp/out-after
    python scripts/compare_outputs.py compare /tmp/out-before /tmp/out-after

``compare`` checks every number of every dataset of every ``results.h5`` and every number of
``summary.json`` under ``results``/``members``/``solutions``/``scan`` (fields that record the
run itself, such as wall time, digests, paths and the deck text, are not results) and
prints the largest difference; ``--exact`` (the default) requires them bitwise equal.
Exit code 0 if equal, 1 otherwise.
"""

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: summary fields that describe the run, not its results
RUN_FIELDS = {"wall_time_s", "ranks", "results_sha256", "summary_sha256", "deck", "isosim_version",
              "command", "run_dir", "merged_from", "petsc_options", "title", "non_finite",
              "kind", "format_version"}   # the file format's own fields (io/results.py)


def decks():
    for path in sorted((ROOT / "input").glob("*.toml")):
        yield path


def has_sweep(path):
    return any(line.strip() == "[sweep]" for line in path.read_text().splitlines())


def run_all(out, python=sys.executable, np_=1):
    """Run every deck (and its sweep) into ``out``; returns the list of failures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    failures = []
    for path in decks():
        jobs = [("run", ["run", str(path), "--out", str(out / f"{path.stem}-run"), "--force", "--progress", "0"])]
        if has_sweep(path):
            jobs.append(("sweep", ["sweep", str(path), "--out", str(out / f"{path.stem}-sweep"), "--force",
                                   "--progress", "0"]))
        for kind, args in jobs:
            cmd = [python, "-m", "isosim", *args]
            if np_ > 1:
                cmd = ["mpirun", "-n", str(np_), *cmd]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            print(f"{path.name:45s} {kind:6s} {status}", flush=True)
            if proc.returncode != 0:
                failures.append((path.name, kind, proc.stderr[-2000:]))
    return failures


def _numbers(obj, prefix=""):
    """Flatten the result numbers of a summary: {json path: value}."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if prefix == "" and k in RUN_FIELDS:
                continue
            if k in ("run_dir",):
                continue
            out.update(_numbers(v, f"{prefix}/{k}"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_numbers(v, f"{prefix}/{i}"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    elif obj is None or isinstance(obj, (str, bool)):
        out[prefix] = obj
    return out


def _datasets(path):
    import h5py
    import numpy as np
    found = {}
    with h5py.File(path, "r") as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu":
                found[name] = np.asarray(obj[()], dtype=float)
        h5.visititems(visit)
    return found


def compare(a, b):
    """Differences between two output directories: list of (where, what)."""
    import numpy as np
    problems, compared = [], 0
    a, b = Path(a), Path(b)
    for da in sorted(p for p in a.iterdir() if p.is_dir()):
        db = b / da.name
        if not db.is_dir():
            problems.append((da.name, "missing in the second directory"))
            continue
        sa = json.loads((da / "summary.json").read_text())
        sb = json.loads((db / "summary.json").read_text())
        na, nb = _numbers(sa), _numbers(sb)
        for k in sorted(set(na) | set(nb)):
            va, vb = na.get(k, "<absent>"), nb.get(k, "<absent>")
            same = (va == vb) or (isinstance(va, float) and isinstance(vb, float) and math.isnan(va) and math.isnan(vb))
            compared += 1
            if not same:
                problems.append((f"{da.name}/summary.json{k}", f"{va!r} != {vb!r}"))
        ha, hb = _datasets(da / "results.h5"), _datasets(db / "results.h5")
        for k in sorted(set(ha) | set(hb)):
            compared += 1
            if k not in ha or k not in hb:
                problems.append((f"{da.name}/results.h5:{k}", "only in one file"))
            elif ha[k].shape != hb[k].shape or not np.array_equal(ha[k], hb[k], equal_nan=True):
                diff = (np.nanmax(np.abs(ha[k] - hb[k])) if ha[k].shape == hb[k].shape else "shape")
                problems.append((f"{da.name}/results.h5:{k}", f"differs (max |diff| {diff})"))
    return problems, compared


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="run every deck into OUT")
    r.add_argument("out")
    r.add_argument("--np", type=int, default=1)
    c = sub.add_parser("compare", help="compare two output directories")
    c.add_argument("a")
    c.add_argument("b")
    args = p.parse_args(argv)
    if args.what == "run":
        failures = run_all(args.out, np_=args.np)
        for name, kind, err in failures:
            print(f"--- {name} {kind}:\n{err}")
        return 1 if failures else 0
    problems, compared = compare(args.a, args.b)
    for where, what in problems[:50]:
        print(f"{where}: {what}")
    print(f"{compared} quantities compared, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
