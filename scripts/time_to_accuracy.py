#!/usr/bin/env python3
"""Time to accuracy: members per second against max |Delta error| for isosim and a scipy loop.

Members: M cooling rates log-spaced over 1..1e7 degC/Myr of the Fig. 2 deck (``--members``,
default 256). The question (issue 20): how many members per second does each solver deliver
when every member's Delta must be within ``--threshold`` (default 1e-3 permil) of the converged
value? isosim at its default settings against a loop of scipy ``solve_ivp(Radau)`` at the grid
and tolerance it needs.

1. Converged reference, per member of an accuracy subset (``--subset`` rates, default 16, evenly
   spread over the M rates and exactly equal to those members' rates): isosim on a fine grid at
   a tight tolerance (``--ref-grid``, default 800 cells, stretch 1.01, rtol 1e-11, atol 1e-14).
   Its convergence is shown by comparing, on ``--check-members`` of them, with other fine grids
   (``--check-grids``); the difference is printed and must be well below 1e-4 permil.
2. isosim at its default settings: the deck with its ``[grid]`` and ``[solver]`` tables removed
   (a temporary copy), so the schema's defaults apply, whatever they are when this runs (printed,
   from ``isosim check`` and from the resolved ``deck.toml`` of the sweep). Its max |Delta error|
   over the subset (members of the timed sweep) and its members per second: M / wall time of the
   whole ``isosim sweep`` command on 1 rank (start-up included), fastest of ``--repeat``.
   Then the same for other isosim settings (``--iso-cells`` x ``--iso-rtols`` on the grid family
   below) to draw isosim's error-against-throughput curve.
3. scipy: ``ScipyGrainExchange`` of ``scripts/bench_sweep_vs_scipy.py`` (the same finite-volume
   system, analytic sparse Jacobian, Radau) on a ladder of grids (``--scipy-cells``) and of rtols
   (``--scipy-rtols``, loose to tight; a grid's ladder stops once two rtols in a row are within
   10 % of the grid's discretisation error, measured by isosim on that grid at rtol 1e-10: the
   same discretisation), on the accuracy subset; the members per second of the subset loop
   (model set-up outside the clock) are extrapolated to M members (per-member mean). The points
   on scipy's error/throughput front and every point meeting the threshold are timed again
   (``--repeat`` in all, fastest loop counts). The cheapest (grid, rtol) meeting the threshold on
   every subset member (and on the validation members, 3b) is scipy's point at the threshold.
   Family members with a stretch above the schema's 1.5 are not run.
3b. Validation: scipy's error at loose tolerances varies erratically from member to member, so a
   point can meet the threshold on the subset by luck. Every point meeting it there is checked on
   ``--validate`` members (default 64, evenly spread over the M; reference as in 1), scipy's in
   order of members/s until one passes; only points passing both count.
4. Head to head: ``--rounds`` (default 3) rounds alternating the isosim default sweep, scipy's
   loop at its cheapest point meeting the threshold and isosim's fastest setting meeting it, so
   that the compared numbers see the same machine load; every solver's fastest run counts.

Grid family: ``cells`` with stretch s0^(N0/cells), (N0, s0) the deck's ``[grid]`` (100, 1.03):
the same mapping of the radius, refined or coarsened (as ``isosim converge`` refines). If
isosim's default grid is not on that family, scipy's ladder also runs on the default's family.

Output: a table, the ratio at the threshold (isosim default members/s / scipy's best members/s
meeting it), a PNG (``--png``) and every number in ``--json``. ``--quick``: a smoke run (< 2 min);
``--replot JSON``: redraw the PNG from a ``--json`` file.

    .venv/bin/python scripts/time_to_accuracy.py --json runs/tta.json
"""

import os

# One thread per process for every BLAS/OpenMP user, set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import bench_sweep_vs_scipy as bsv  # noqa: E402  (this folder is on sys.path; adds src/)
from benchlib import ROOT, CpuMonitor, child_env, finish  # noqa: E402
from isosim.deck import load_deck  # noqa: E402
from isosim.studies.ensemble import parse_values  # noqa: E402

KEY = bsv.KEY
DATE, SESSION = "2026-12-03", "session 10"
MAX_STRETCH = 1.5        # the schema's largest grid.stretch: family members beyond it are not run


# ============================================================================ helpers
def floats(text):
    return [float(x) for x in text.split(",") if x.strip()]


def ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def grids(text):
    """'800x1.01,600x1.0125' -> [(800, 1.01), (600, 1.0125)]"""
    out = []
    for g in text.split(","):
        c, s = g.lower().split("x")
        out.append((int(c), float(s)))
    return out


def without_tables(text, names):
    """TOML text with the tables ``names`` (and their sub-tables) removed."""
    keep, skip = [], False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and not s.startswith("[["):
            head = s.strip("[]").split("]")[0].strip()
            skip = head.split(".")[0] in names
        if not skip:
            keep.append(line)
    return "\n".join(keep) + "\n"


def resolved_by_check(isosim, deck_path):
    """The resolved deck that ``isosim check`` prints (its comment lines dropped)."""
    p = subprocess.run([str(isosim), "check", str(deck_path)], cwd=ROOT, env=child_env(),
                       capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise SystemExit(f"isosim check {deck_path} failed:\n{p.stdout}\n{p.stderr}")
    body = "\n".join(ln for ln in p.stdout.splitlines() if not ln.lstrip().startswith("#"))
    return tomllib.loads(body), p.stdout


def family_stretch(cells, cells0, stretch0):
    """Stretch of the grid with ``cells`` cells mapping the radius as (cells0, stretch0) does."""
    return float(f"{stretch0 ** (cells0 / cells):.8g}")


def grid_sets(cells, stretch):
    return (f"grid.cells={int(cells)}", f"grid.stretch={float(stretch)!r}")


def pareto(points):
    """Indices of the points (err, mps) no other point beats on both (smaller error, more
    members/s), sorted by error."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def fmt_grid(cells, stretch):
    return f"{cells} x {stretch:g}"


# ============================================================================ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deck", default=str(ROOT / "input" / "xiong_fig2.toml"))
    ap.add_argument("--members", type=int, default=None, help="members of the timed isosim sweeps (256)")
    ap.add_argument("--subset", type=int, default=None,
                    help="accuracy subset: rates evenly spread over the members (16), for the errors "
                         "and the scipy timing (extrapolated per member)")
    ap.add_argument("--validate", type=int, default=None,
                    help="validation members (64; 0: none): isosim settings and scipy points meeting the "
                         "threshold on the subset must also meet it on these (a reference run on them)")
    ap.add_argument("--threshold", type=float, default=1e-3, help="max |Delta error| in permil (1e-3)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per point; fastest counts (2)")
    ap.add_argument("--ref-grid", default=None, help="reference grid CELLSxSTRETCH (800x1.01)")
    ap.add_argument("--ref-rtol", type=float, default=1e-11)
    ap.add_argument("--ref-atol", type=float, default=1e-14)
    ap.add_argument("--check-grids", default=None,
                    help="grids the reference is compared with (600x1.0125,800x1.0075)")
    ap.add_argument("--check-members", type=int, default=None, help="members of that check (4)")
    ap.add_argument("--iso-cells", default=None, help="isosim curve: cells on the grid family (25,50,100,200)")
    ap.add_argument("--iso-rtols", default=None, help="isosim curve: rtols (1e-5,1e-6,1e-7,1e-8,1e-9,1e-10)")
    ap.add_argument("--scipy-cells", default=None, help="scipy ladder: cells (10,14,20,28,40,56,80,113,160,200)")
    ap.add_argument("--scipy-rtols", default=None,
                    help="scipy ladder: rtols, loose to tight (half decades 1e-2 .. 1e-8)")
    ap.add_argument("--floor-rtol", type=float, default=1e-10,
                    help="isosim rtol of each scipy grid's discretisation-error run (1e-10)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="head-to-head rounds at the end: isosim default, scipy's best meeting the threshold "
                         "and isosim's best meeting it, alternating (3; quick 1)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (< 2 min)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "figures" / "time_to_accuracy.png"),
                    help="figure path ('' for none)")
    ap.add_argument("--json", default=None, help="write every number to this JSON file")
    ap.add_argument("--replot", default=None, metavar="JSON", help="only redraw --png from a --json file")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep isosim's outputs in DIR")
    args = ap.parse_args()
    if args.replot:
        r = json.loads(Path(args.replot).read_text())
        iso_def = next(x for x in r["isosim"] if x["default"])
        plot(args.png, r["isosim"], r["isosim_front"], r["scipy"], r["scipy_front"],
             r["scipy_best_meeting_threshold"], iso_def, r["threshold_permil"], r["ratio_default_over_scipy_best"],
             r["members"], len(r["subset_indices"]), r["default_grid"], r["isosim_best_meeting_threshold"],
             r["ratio_isosim_best_over_scipy_best"])
        return 0
    q = args.quick
    dflt = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
    M = dflt(args.members, 256, 64)
    n_sub = dflt(args.subset, 16, 4)
    repeat = max(dflt(args.repeat, 2, 1), 1)
    args.rounds = dflt(args.rounds, 3, 1)
    ref_cells, ref_stretch = grids(dflt(args.ref_grid, "800x1.01", "400x1.015"))[0]
    check_grids = grids(dflt(args.check_grids, "600x1.0125,800x1.0075", "300x1.02"))
    n_check = dflt(args.check_members, 4, 2)
    n_val = dflt(args.validate, 64, 16)
    iso_cells = ints(dflt(args.iso_cells, "25,50,100,200", "50,100"))
    iso_rtols = floats(dflt(args.iso_rtols, "1e-5,1e-6,1e-7,1e-8,1e-9,1e-10", "1e-6,1e-9"))
    sc_cells = ints(dflt(args.scipy_cells, "10,14,20,28,40,56,80,113,160,200", "28,113"))
    sc_rtols = (floats(args.scipy_rtols) if args.scipy_rtols else
                sorted(bsv.ladder(1e-8 if not q else 1e-6, 1e-2, per_decade=2), reverse=True))
    thr = args.threshold

    isosim = ROOT / ".venv" / "bin" / "isosim"
    deck_path = Path(args.deck).resolve()
    deck = load_deck(str(deck_path), [])
    cells0, stretch0 = deck["grid"]["cells"], deck["grid"]["stretch"]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="isosim-tta-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # the default deck: no [grid], no [solver]
    dpath = workdir / f"{deck_path.stem}_defaults.toml"
    dpath.write_text(f"# {deck_path.name} without its [grid] and [solver] tables (schema defaults)\n"
                     + without_tables(deck_path.read_text(), ("grid", "solver")))
    resolved, _ = resolved_by_check(isosim, dpath)
    def_grid, def_solver = resolved.get("grid", {}), resolved.get("solver", {})
    base = load_deck(str(dpath), [])                      # for scipy models (grid replaced)

    spec = f"{KEY}=log:1:1e7:{M}"
    rates = np.array(parse_values(spec)[1], dtype=float)   # exactly isosim's member values
    sub = bsv.spread(rates.size, n_sub)
    rs = rates[sub]
    la = Path("/proc/loadavg")
    load = " ".join(la.read_text().split()[:3]) if la.exists() else "?"
    print(f"time to accuracy: {deck_path.name}, {M} members ({spec}); accuracy subset {sub.size} members; "
          f"threshold {thr:g} permil")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s); python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; OMP_NUM_THREADS=1; load average {load}")
    print(f"isosim default grid (isosim check {dpath.name}): {def_grid}")
    print(f"isosim default solver: {def_solver}")
    print(f"grid family: cells with stretch {stretch0:g}^({cells0}/cells) (the deck's [grid] mapping)\n",
          flush=True)

    # ---------------------------------------------------------------- 1. reference
    print(f"[1] converged reference: isosim {fmt_grid(ref_cells, ref_stretch)} cells, rtol {args.ref_rtol:g}, "
          f"atol {args.ref_atol:g}, on the {sub.size} subset members")
    tol_ref = (f"solver.rtol={args.ref_rtol!r}", f"solver.atol={args.ref_atol!r}")
    t_ref, dref, _, _, _ = bsv.run_isosim(isosim, dpath, bsv.vary_list(rs), workdir / "reference",
                                          sets=grid_sets(ref_cells, ref_stretch) + tol_ref, label="reference")
    print(f"      {t_ref:.1f} s")
    chk = bsv.spread(sub.size, n_check)
    checks = []
    for c, s in check_grids:
        _, dchk, _, _, _ = bsv.run_isosim(isosim, dpath, bsv.vary_list(rs[chk]), workdir / f"check-{c}",
                                          sets=grid_sets(c, s) + tol_ref, label=f"check {fmt_grid(c, s)}")
        diff = dchk - dref[chk]
        checks.append({"cells": c, "stretch": s, "rates": rs[chk].tolist(), "Delta_permil": dchk.tolist(),
                       "diff_permil": diff.tolist(), "max_abs_diff_permil": float(np.abs(diff).max())})
        print(f"      {fmt_grid(c, s):>14}: max |Delta - reference| over {chk.size} members = "
              f"{np.abs(diff).max():.2e} permil", flush=True)
    ref_conv = max(ch["max_abs_diff_permil"] for ch in checks)
    print(f"      -> the reference is converged to ~{ref_conv:.1e} permil "
          f"({'well below' if ref_conv < 1e-5 else 'NOT well below'} 1e-4 permil)\n", flush=True)

    # ---------------------------------------------------------------- 2. isosim
    print(f"[2] isosim sweeps of {M} members, 1 rank, whole-command wall clock (fastest of {repeat})")
    iso_settings = [{"name": "default", "sets": (), "cells": def_grid.get("cells"),
                     "stretch": def_grid.get("stretch"), "rtol": def_solver.get("rtol"), "default": True}]
    # the grid the user's stated accuracy chooses (grid.accuracy_permil = the threshold)
    iso_settings.append({"name": f"accuracy_permil {thr:g}", "cells": None, "stretch": None,
                         "rtol": def_solver.get("rtol"), "sets": (f"grid.accuracy_permil={thr!r}",),
                         "default": False})
    for c in iso_cells:
        s = family_stretch(c, cells0, stretch0)
        for r in iso_rtols:
            iso_settings.append({"name": f"{fmt_grid(c, s)}, rtol {r:g}", "cells": c, "stretch": s, "rtol": r,
                                 "sets": grid_sets(c, s) + (f"solver.rtol={r!r}",), "default": False})
    iso_rows = []

    def iso_time(k, row):
        """One more timed run of isosim setting ``k`` (its row updated: fastest run counts)."""
        st = iso_settings[k]
        w, d, summ, _, cpu = bsv.run_isosim(isosim, dpath, spec, workdir / f"iso-{k}", sets=st["sets"],
                                            label=st["name"])
        if "Delta_permil" in row and not np.array_equal(d, np.array(row["Delta_permil"])):
            print("      note: Delta differs between repeats")
        row.setdefault("Delta_permil", d.tolist())
        g = summ.get("deck", {}).get("grid")
        if row.get("resolved_grid") not in (None, g):
            print(f"      WARNING: the resolved grid changed between runs of this setting: {row['resolved_grid']} "
                  f"-> {g} (isosim's default changed while this ran)")
        row["resolved_grid"] = g
        row.setdefault("walls_s", []).append(w)
        row.setdefault("inside_s", []).append(summ["wall_time_s"])
        row.setdefault("cpu", []).append(cpu.as_dict())
        row["wall_s"] = min(row["walls_s"])
        row["members_per_s"] = M / row["wall_s"]
        row["members_per_s_inside"] = M / min(row["inside_s"])

    for k, st in enumerate(iso_settings):
        row = {"name": st["name"], "default": st["default"], "cells": st["cells"], "stretch": st["stretch"],
               "rtol": st["rtol"], "setting": k}
        for _ in range(repeat + (1 if st["default"] else 0)):      # the default gets one more
            iso_time(k, row)
        if row["cells"] is None and row["resolved_grid"]:        # the grid accuracy_permil chose
            row["cells"], row["stretch"] = row["resolved_grid"]["cells"], row["resolved_grid"]["stretch"]
        e = np.abs(np.array(row["Delta_permil"])[sub] - dref)
        row.update({"max_err_permil": float(e.max()), "median_err_permil": float(np.median(e)),
                    "err_permil": e.tolist(), "meets": bool(e.max() <= thr)})
        iso_rows.append(row)
        walls, inside, cpus, resolved_grid = row["walls_s"], row["inside_s"], row["cpu"], row["resolved_grid"]
        print(f"      {st['name']:32} wall {min(walls):6.2f} s ({row['members_per_s']:7.1f} members/s; inside "
              f"isosim {min(inside):.2f} s)  max err {row['max_err_permil']:.2e} permil; other processes "
              f"{max(c['foreign_cores'] for c in cpus):.2f} cores", flush=True)
        if st["default"]:
            print(f"      (the default's resolved grid in its deck.toml: {resolved_grid})")
    iso_def = iso_rows[0]
    if iso_def["resolved_grid"]:
        def_grid = {**def_grid, **iso_def["resolved_grid"]}
    print()

    # ---------------------------------------------------------------- 3. scipy
    print(f"[3] scipy solve_ivp Radau loop over the {sub.size} subset members (one core; analytic sparse "
          f"Jacobian; atol {base['solver']['atol']:g}); members/s extrapolated per member")
    families = [("deck family", [(c, family_stretch(c, cells0, stretch0)) for c in sc_cells])]
    dc, ds = def_grid.get("cells"), def_grid.get("stretch")
    if isinstance(dc, int) and isinstance(ds, float):
        on_family = any(c == dc and abs(s - ds) < 1e-9 for c, s in families[0][1])
        if not on_family and abs(family_stretch(dc, cells0, stretch0) - ds) > 1e-6:
            fam = [(c, family_stretch(c, dc, ds) if ds > 1.0 else 1.0) for c in sc_cells]
            families.append(("default family", [(c, s) for c, s in fam if s <= MAX_STRETCH]))
    scipy_atol = base["solver"]["atol"]
    sc_rows, models = [], {}

    def scipy_loop(model, rtol):
        d, t = np.empty(sub.size), np.empty(sub.size)
        with CpuMonitor() as cpu:
            for k, r in enumerate(rs):
                t0 = time.perf_counter()
                d[k], _ = model.solve(r, rtol, scipy_atol)
                t[k] = time.perf_counter() - t0
        return d, t, cpu

    for fam, glist in families:
        for c, s in glist:
            key = (c, s)
            if key not in models:
                models[key] = bsv.ScipyGrainExchange({**base, "grid": {**base["grid"], "cells": c, "stretch": s}})
            model = models[key]
            # the grid's own error: isosim on the same grid (the same discretisation) at a tight
            # tolerance (scipy's Radau at rtol 1e-9 can take minutes a member on strongly stretched grids)
            _, dt, _, _, _ = bsv.run_isosim(isosim, dpath, bsv.vary_list(rs), workdir / "floor",
                                            sets=grid_sets(c, s) + (f"solver.rtol={args.floor_rtol!r}",
                                                                    f"solver.atol={args.ref_atol!r}"),
                                            label=f"discretisation error of {fmt_grid(c, s)}")
            floor = float(np.abs(dt - dref).max())
            print(f"      {fam} {fmt_grid(c, s)}: discretisation error (isosim rtol {args.floor_rtol:g}) "
                  f"{floor:.2e} permil", flush=True)
            at_floor = 0
            for rtol in sc_rtols:
                d, t, cpu = scipy_loop(model, rtol)
                e = np.abs(d - dref)
                row = {"family": fam, "cells": c, "stretch": s, "rtol": rtol, "atol": scipy_atol,
                       "discretisation_err_permil": floor, "discretisation_Delta_permil": dt.tolist(), "loop_s": [float(t.sum())],
                       "per_member_s": float(t.mean()), "members_per_s": 1.0 / float(t.mean()),
                       "member_times_s": t.tolist(), "cpu": [cpu.as_dict()],
                       "max_err_permil": float(e.max()), "median_err_permil": float(np.median(e)),
                       "err_permil": e.tolist(), "meets": bool(e.max() <= thr)}
                sc_rows.append(row)
                print(f"        rtol {rtol:8.2g}: max err {row['max_err_permil']:.2e} permil, "
                      f"{row['per_member_s'] * 1e3:7.1f} ms/member ({row['members_per_s']:6.1f} members/s); "
                      f"other processes {cpu.foreign_cores:.2f} cores", flush=True)
                # stop once two rtols in a row are at the grid's own error (a tighter rtol can be
                # faster than a loose one in Radau: the second one is tried too)
                at_floor = at_floor + 1 if e.max() <= 1.1 * floor else 0
                if at_floor == 2:
                    break
    def sc_time(r):
        """One more timed loop of scipy row ``r`` (fastest loop counts)."""
        _, t, cpu = scipy_loop(models[(r["cells"], r["stretch"])], r["rtol"])
        r["loop_s"].append(float(t.sum()))
        r["cpu"].append(cpu.as_dict())
        r["per_member_s"] = min(r["loop_s"]) / sub.size
        r["members_per_s"] = 1.0 / r["per_member_s"]

    # time the front and every point meeting the threshold again: fastest loop counts
    front = pareto([(r["max_err_permil"], r["members_per_s"]) for r in sc_rows])
    again = sorted(set(front) | {i for i, r in enumerate(sc_rows) if r["meets"]})
    if repeat > 1:
        print(f"      timing {len(again)} points again (scipy's front and every point meeting {thr:g} permil; "
              f"{repeat - 1} more loop(s) each)", flush=True)
        for i in again:
            for _ in range(repeat - 1):
                sc_time(sc_rows[i])
    print()

    # ---------------------------------------------------------------- 3b. validation
    # scipy's error at loose tolerances varies erratically from member to member: a point meeting
    # the threshold on the subset may miss it on other members. Candidates are checked on more.
    val = bsv.spread(rates.size, n_val) if n_val > 0 else np.array([], dtype=int)
    dval = None
    if val.size:
        print(f"[3b] validation on {val.size} members evenly spread over the {M} (reference "
              f"{fmt_grid(ref_cells, ref_stretch)}, rtol {args.ref_rtol:g}): every point meeting {thr:g} permil on the "
              "subset must also meet it there")
        t_val, dval, _, _, _ = bsv.run_isosim(isosim, dpath, bsv.vary_list(rates[val]), workdir / "validation",
                                              sets=grid_sets(ref_cells, ref_stretch) + tol_ref,
                                              label="validation reference")
        print(f"      {t_val:.1f} s")
        for r in iso_rows:
            e = np.abs(np.array(r["Delta_permil"])[val] - dval)
            r.update({"val_max_err_permil": float(e.max()), "val_members_over": int((e > thr).sum()),
                      "validated": bool(e.max() <= thr) if r["meets"] else None})
        iso_print = [r for r in iso_rows if r["meets"] or r["default"]]
        for r in iso_print:
            print(f"      isosim {r['name']:30}: max err {r['val_max_err_permil']:.2e} permil "
                  f"({r['val_members_over']} of {val.size} over {thr:g})")
        for r in sorted([r for r in sc_rows if r["meets"]], key=lambda r: -r["members_per_s"]):
            model = models[(r["cells"], r["stretch"])]
            d = np.array([model.solve(x, r["rtol"], scipy_atol)[0] for x in rates[val]])
            e = np.abs(d - dval)
            r.update({"val_max_err_permil": float(e.max()), "val_members_over": int((e > thr).sum()),
                      "validated": bool(e.max() <= thr)})
            print(f"      scipy {r['family']} {fmt_grid(r['cells'], r['stretch'])}, rtol {r['rtol']:g} "
                  f"({r['members_per_s']:.1f} members/s): max err {e.max():.2e} permil ({r['val_members_over']} of "
                  f"{val.size} over {thr:g}) -> {'valid' if r['validated'] else 'rejected'}", flush=True)
            if r["validated"]:
                break
        print()

    def ok(r):
        return r["meets"] and r.get("validated", True) is not False and (not val.size or "validated" in r)

    # ---------------------------------------------------------------- 4. head to head
    sc_ok = [r for r in sc_rows if ok(r)]
    sc_best = max(sc_ok, key=lambda r: r["members_per_s"]) if sc_ok else None
    iso_ok = [r for r in iso_rows if ok(r)]
    iso_best = max(iso_ok, key=lambda r: r["members_per_s"]) if iso_ok else None
    if args.rounds > 0 and sc_best:
        who = [iso_def] + ([iso_best] if iso_best and iso_best is not iso_def else [])
        print(f"[4] head to head, {args.rounds} rounds alternating: isosim default, scipy's cheapest meeting "
              f"{thr:g} permil ({fmt_grid(sc_best['cells'], sc_best['stretch'])}, rtol {sc_best['rtol']:g})"
              + (f", isosim's fastest meeting it ({iso_best['name']})" if len(who) > 1 else "")
              + "; every solver's fastest run counts")
        for _ in range(args.rounds):
            iso_time(iso_def["setting"], iso_def)
            sc_time(sc_best)
            if len(who) > 1:
                iso_time(iso_best["setting"], iso_best)
            print(f"      isosim default {iso_def['walls_s'][-1]:.2f} s; scipy loop {sc_best['loop_s'][-1]:.2f} s "
                  f"({sub.size} members)" + (f"; isosim {iso_best['walls_s'][-1]:.2f} s" if len(who) > 1 else "")
                  + f"; other processes {sc_best['cpu'][-1]['foreign_cores']:.2f} cores (scipy loop)", flush=True)
        print()

    # ---------------------------------------------------------------- 5. results
    sc_ok = [r for r in sc_rows if ok(r)]
    sc_best = max(sc_ok, key=lambda r: r["members_per_s"]) if sc_ok else None
    iso_ok = [r for r in iso_rows if ok(r)]
    iso_best = max(iso_ok, key=lambda r: r["members_per_s"]) if iso_ok else None
    front = pareto([(r["max_err_permil"], r["members_per_s"]) for r in sc_rows])
    iso_front = pareto([(r["max_err_permil"], r["members_per_s"]) for r in iso_rows])
    for r in iso_rows + sc_rows:
        r["meets_all"] = ok(r)               # on the subset and, where checked, on the validation set
    ratio_default = iso_def["members_per_s"] / sc_best["members_per_s"] if sc_best else None
    ratio_best = iso_best["members_per_s"] / sc_best["members_per_s"] if (sc_best and iso_best) else None

    def vcol(r):
        if "val_max_err_permil" not in r:
            return "-"
        return f"{r['val_max_err_permil']:.2e}" + (" ok" if r["val_max_err_permil"] <= thr else " MISS")

    print("=" * 131)
    print(f"{M} members ({spec}); max |Delta error| over {sub.size} subset members vs the converged reference "
          f"({fmt_grid(ref_cells, ref_stretch)}, rtol {args.ref_rtol:g}; converged to ~{ref_conv:.0e} permil)")
    print(f"{'solver / setting':46} {'grid':>14} {'rtol':>8} {'max err [permil]':>17} {'members/s':>10} "
          f"{'ms/member':>10}  {'<= thr':>6} {'validation max err':>18}")
    for r in iso_rows:
        g = fmt_grid(r["cells"], r["stretch"]) if r["cells"] is not None else "?"
        name = "isosim DEFAULT" if r["default"] else "isosim"
        star = " *" if iso_rows.index(r) in iso_front else ""
        print(f"{name + star:46} {g:>14} {r['rtol']:8.0e} {r['max_err_permil']:17.2e} {r['members_per_s']:10.1f} "
              f"{1e3 / r['members_per_s']:10.2f}  {'yes' if r['meets'] else 'no':>6} {vcol(r):>18}")
    for i, r in enumerate(sc_rows):
        star = " *" if i in front else ""
        print(f"{'scipy Radau loop, ' + r['family'] + ' (extrap.)' + star:46} {fmt_grid(r['cells'], r['stretch']):>14} "
              f"{r['rtol']:8.1e} {r['max_err_permil']:17.2e} {r['members_per_s']:10.1f} "
              f"{1e3 / r['members_per_s']:10.2f}  {'yes' if r['meets'] else 'no':>6} {vcol(r):>18}")
    print("-" * 131)
    print("* on the solver's front (no other setting of it both more accurate and faster). isosim: whole "
          f"command wall time / {M}, start-up included; scipy: mean over the {sub.size} subset members, "
          f"extrapolated per member (not run over all {M}). Validation: max err over the {val.size} "
          "validation members, for the points meeting the threshold that were checked (scipy's in order of speed "
          "until one passed).")
    print(f"isosim default: grid {def_grid}, rtol {iso_def['rtol']:g}: max err {iso_def['max_err_permil']:.2e} "
          f"permil on the subset, {iso_def.get('val_max_err_permil', float('nan')):.2e} on the validation set "
          f"({'meets' if iso_def['meets_all'] else 'DOES NOT meet'} {thr:g}), "
          f"{iso_def['members_per_s']:.1f} members/s ({iso_def['wall_s']:.2f} s; "
          f"{iso_def['members_per_s_inside']:.1f} members/s inside isosim)")
    if sc_best:
        print(f"scipy cheapest meeting {thr:g} permil: {sc_best['family']} {fmt_grid(sc_best['cells'], sc_best['stretch'])}, "
              f"rtol {sc_best['rtol']:g}: max err {sc_best['max_err_permil']:.2e} permil, "
              f"{sc_best['members_per_s']:.1f} members/s ({sc_best['per_member_s'] * 1e3:.1f} ms/member)")
        print(f"RATIO at {thr:g} permil: isosim default / scipy best = {ratio_default:.1f} x"
              + ("" if iso_def["meets_all"] else "   (but isosim's default does not meet the threshold)"))
    else:
        print(f"scipy: no grid/rtol of the ladder meets {thr:g} permil")
    if iso_best:
        print(f"isosim fastest setting meeting {thr:g} permil: {iso_best['name']}: {iso_best['members_per_s']:.1f} "
              f"members/s" + (f" = {ratio_best:.1f} x scipy's best" if ratio_best else ""))
    fc_iso = max(max(c["foreign_cores"] for c in r["cpu"]) for r in iso_rows)
    fc_sc = max(max(c["foreign_cores"] for c in r["cpu"]) for r in sc_rows)
    print(f"other processes' CPU use during the timed runs: up to {fc_iso:.2f} cores (isosim), "
          f"{fc_sc:.2f} cores (scipy)")
    if max(fc_iso, fc_sc) > 0.2:
        print("WARNING: the machine was shared during timed runs; times are inflated (fastest repeats kept)")
    total = time.perf_counter() - t_start
    print(f"\ntotal {total:.0f} s")

    if args.png:
        plot(args.png, iso_rows, iso_front, sc_rows, front, sc_best, iso_def, thr, ratio_default, M, sub.size,
             def_grid, iso_best, ratio_best)

    result = {
        "date": DATE, "session": SESSION, "deck": str(deck_path), "default_deck": dpath.read_text(),
        "sweep": spec, "members": M, "subset_indices": sub.tolist(), "subset_rates": rs.tolist(),
        "threshold_permil": thr, "repeat": repeat, "head_to_head_rounds": args.rounds, "quick": q,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_start": load,
                    "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "default_grid": def_grid, "default_solver": def_solver,
        "grid_family": {"cells0": cells0, "stretch0": stretch0, "law": "stretch0 ** (cells0 / cells)"},
        "reference": {"cells": ref_cells, "stretch": ref_stretch, "rtol": args.ref_rtol, "atol": args.ref_atol,
                      "wall_s": t_ref, "Delta_permil": dref.tolist(), "checks": checks,
                      "convergence_permil": ref_conv},
        "isosim": iso_rows, "isosim_front": iso_front,
        "scipy": sc_rows, "scipy_front": front,
        "validation": {"indices": val.tolist(), "rates": rates[val].tolist(),
                       "Delta_permil": None if dval is None else dval.tolist()},
        "scipy_best_meeting_threshold": sc_best, "isosim_best_meeting_threshold": iso_best,
        "ratio_default_over_scipy_best": ratio_default, "ratio_isosim_best_over_scipy_best": ratio_best,
        "max_foreign_cores": {"isosim": fc_iso, "scipy": fc_sc},
        "png": args.png, "total_s": total,
    }
    finish(result, args.json, workdir, args.keep)
    return 0


def plot(path, iso_rows, iso_front, sc_rows, sc_front, sc_best, iso_def, thr, ratio, M, n_sub, def_grid,
         iso_best=None, ratio_best=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 7), dpi=150)          # 1350 x 1050 px
    xmax = 1.5 * max(r["max_err_permil"] for r in iso_rows + sc_rows)
    for rows, fr, color, label in ((iso_rows, iso_front, "C0", "isosim sweep (1 rank, whole command)"),
                                   (sc_rows, sc_front, "C3", "scipy solve_ivp Radau loop (1 core)")):
        x = np.array([r["max_err_permil"] for r in rows])
        y = np.array([r["members_per_s"] for r in rows])
        ax.scatter(x, y, s=14, color=color, alpha=0.35, zorder=2)
        fx, fy = x[fr], y[fr]
        ax.plot(np.append(fx, xmax), np.append(fy, fy[-1]), drawstyle="steps-post", color=color, lw=2, zorder=3,
                label=f"{label}: best at each accuracy")
        ax.scatter(fx, fy, s=28, color=color, zorder=4)
    ax.axvline(thr, color="k", ls="--", lw=1, label=f"threshold |ΔΔ| = {thr:g} ‰")
    g = f"{def_grid.get('cells')} cells, stretch {def_grid.get('stretch')}"
    ax.scatter([iso_def["max_err_permil"]], [iso_def["members_per_s"]], marker="*", s=320, color="C0",
               edgecolor="k", zorder=6, label=f"isosim default ({g}, rtol {iso_def['rtol']:g})")
    if sc_best:
        ax.scatter([sc_best["max_err_permil"]], [sc_best["members_per_s"]], marker="o", s=160,
                   facecolor="none", edgecolor="k", lw=1.5, zorder=6,
                   label=f"scipy cheapest meeting {thr:g} ‰, validated ({sc_best['cells']} cells, stretch "
                         f"{sc_best['stretch']:g}, rtol {sc_best['rtol']:g})")
        if ratio:
            ax.annotate(f"default / scipy: {ratio:.1f}x" + ("" if iso_def.get("meets_all", iso_def["meets"]) else
                                                          "\n(the default misses the threshold)"),
                        xy=(thr, np.sqrt(iso_def["members_per_s"] * sc_best["members_per_s"])),
                        xytext=(6, 0), textcoords="offset points", fontsize=10, fontweight="bold")
    acc = next((r for r in iso_rows if r["name"].startswith("accuracy_permil")), None)
    if acc:
        ax.scatter([acc["max_err_permil"]], [acc["members_per_s"]], marker="P", s=150, color="C2",
                   edgecolor="k", zorder=6, label=f"isosim grid.accuracy_permil = {thr:g} ({acc['cells']} cells "
                                                  "chosen; default rtol)")
    if iso_best and iso_best["name"] != iso_def["name"]:
        ax.scatter([iso_best["max_err_permil"]], [iso_best["members_per_s"]], marker="D", s=90, color="C0",
                   edgecolor="k", zorder=6, label=f"isosim fastest meeting {thr:g} ‰ ({iso_best['cells']} cells, "
                                                  f"stretch {iso_best['stretch']:g}, rtol {iso_best['rtol']:g})"
                                                  + (f": {ratio_best:.1f}x scipy" if ratio_best else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("max |ΔΔ| against the converged Δ over the accuracy subset [‰, permil]")
    ax.set_ylabel("ensemble members per second (1 core) [1/s]")
    ax.set_title(f"Time to accuracy, Fig. 2 sweep (cooling 1–1e7 °C/Myr): isosim {M}-member sweep, "
                 f"scipy {n_sub} members extrapolated\n{DATE} ({SESSION}), shared 2-core VM", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, frameon=False)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
