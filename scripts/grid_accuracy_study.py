#!/usr/bin/env python
"""How far is a grain-exchange grid from the converged Delta? (issue 20: a default grid that is accurate)

For each candidate grid (cells, stretch) and each case (a grain population and temperature path,
the Xiong et al. opx-cpx rock with radii 0.1-3 mm, size ratios up to 10 and beyond, cooling
1-1e7 degC/Myr) it runs one ``isosim sweep`` on the candidate and one on the grid 4x finer with
the same mapping (4 x cells, stretch^(1/4): every cell split in four, as ``isosim converge``
refines), and reports the relative error of the headline result

    err = |Delta(candidate) - Delta(4x)| / max(|Delta(4x)|, FLOOR)

``FLOOR`` = 0.05 permil, the analytical precision of Delta: a Delta near 0 is then judged by an
absolute error of 5e-4 permil (1 % of what a measurement resolves) instead of an ever tighter
relative one. The 4x grid's own error is about 1/4 (first order, unresolved rim layers) to 1/16
(second order) of the candidate's, so the 4x difference slightly underestimates the error
against the limit; ``--check-reference`` also runs a 16x grid for the default candidate to show
by how much.

Usage::

    .venv/bin/python scripts/grid_accuracy_study.py                 # every candidate, every case
    .venv/bin/python scripts/grid_accuracy_study.py --candidates 100x1.0,100x1.03,50x1.08 --json runs/grid.json
    # grid.accuracy_permil's error model: the default family, then the fit (Delta scale per member)
    .venv/bin/python scripts/grid_accuracy_study.py --candidates 25x1.44,35x1.2975259902111047,50x1.2,\
        70x1.1390899833687875,100x1.0954451150103321 --json runs/family.json
    .venv/bin/python scripts/grid_accuracy_study.py --fit runs/family.json

Runs one rank per sweep (``OMP_NUM_THREADS=1``); about 10-20 minutes for every candidate.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from isosim.deck.load import to_toml
from isosim.physics.populations import lognormal_classes

ROOT = Path(__file__).resolve().parents[1]
ISOSIM = [str(ROOT / ".venv" / "bin" / "isosim")]

#: the largest ratio of grain sizes the default must handle (issue 20); larger ones are reported apart
RATIO = 10.0
#: permil: |Delta| below this is judged by the absolute error FLOOR x 1 % (see the module doc)
FLOOR = 0.05

def base_deck():
    """The Fig. 1 rock (Xiong, Huang & Van Orman; Table 1 parameters) without a [grid] table."""
    return {
        "model": "grain_exchange", "title": "grid accuracy study",
        "isotopes": {"names": ["40Ca", "44Ca"], "masses_amu": [39.962591, 43.955482], "reference": "40Ca"},
        "temperature": {"path": "cooling", "start_C": 1200.0, "end_C": 600.0, "rate_C_per_Myr": 10.0},
        "grain_boundary": {"volume_fraction": 0.0},
        "phases": {
            "opx": {"modal_fraction": 0.7, "radius_mm": 1.0, "D0_m2_s": 1.17e-10, "E_kJ_mol": 240.0,
                    "beta": 0.05, "lnK_A": 2.7635e6, "lnK_B": -1.16e4, "lnK_C": 3.84,
                    "lnK_offset_K2": [0.0, 646.0]},
            "cpx": {"host": True, "modal_fraction": 0.3, "radius_mm": 1.0, "D0_m2_s": 1.99e-8,
                    "E_kJ_mol": 318.8, "beta": 0.05},
        },
        "output": {"series_points": 11, "pair": ["opx", "cpx"]},
    }


RATES = "temperature.rate_C_per_Myr=log:1:1e7:15"
RADII = "0.1,0.3,1,3"


def _modal(opx):
    def edit(d):
        d["phases"]["opx"]["modal_fraction"] = opx
        d["phases"]["cpx"]["modal_fraction"] = round(1.0 - opx, 12)
    return edit


def _lognormal(phase, median, sigma, bins=8):
    def edit(d):
        ph = d["phases"][phase]
        del ph["radius_mm"]
        ph.update(size_distribution="lognormal", median_radius_mm=median, sigma_ln=sigma, bins=bins)
    return edit


def _bins(**phases):
    def edit(d):
        for phase, (radii, fractions) in phases.items():
            ph = d["phases"][phase]
            del ph["radius_mm"]
            ph.update(size_distribution="bins", bin_radii_mm=radii, bin_fractions=fractions)
    return edit


def _end(T):
    def edit(d):
        d["temperature"]["end_C"] = T
    return edit


def _segments(ends, rate):
    def edit(d):
        d["temperature"] = {"path": "segments", "start_C": 1200.0, "segment_end_C": ends,
                            "segment_rate_C_per_Myr": [rate] * len(ends)}
    return edit


def _exponential(asymptote):
    def edit(d):
        d["temperature"] = {"path": "exponential", "start_C": 1200.0, "end_C": 600.0,
                            "asymptote_C": asymptote, "time_constant_Myr": 1.0}
    return edit


def _offsets0(d):
    d["phases"]["opx"]["lnK_offset_K2"] = [0.0, 0.0]


def _beta0(d):
    for ph in d["phases"].values():
        ph["beta"] = 0.0


#: name -> (edit of the base deck, --vary values). Radii 0.1-3 mm on both phases (ratios up to
#: 30; the target is up to 10), both modal proportions, size distributions whose classes span a
#: factor ~10, a colder end and a reheating path.
CASES = {
    "two radii, opx:cpx 7:3": (None, [f"phases.opx.radius_mm={RADII}", f"phases.cpx.radius_mm={RADII}", RATES]),
    "two radii, opx:cpx 3:7": (_modal(0.3), [f"phases.opx.radius_mm={RADII}", f"phases.cpx.radius_mm={RADII}",
                                             RATES]),
    # 8 equal-volume classes at exp(sigma Phi^-1((k + 1/2)/8)): +-1.53 sigma, so sigma 0.75 spans
    # a factor 10 from the smallest class to the largest
    "opx lognormal sigma 0.75": (_lognormal("opx", 1.0, 0.75), [f"phases.cpx.radius_mm={RADII}", RATES]),
    "cpx lognormal sigma 0.75": (_lognormal("cpx", 1.0, 0.75), [f"phases.opx.radius_mm={RADII}", RATES]),
    "bins opx 0.3+3, cpx 0.1+1": (_bins(opx=([0.3, 3.0], [0.5, 0.5]), cpx=([0.1, 1.0], [0.2, 0.8])), [RATES]),
    "end 400 degC": (_end(400.0), ["phases.opx.radius_mm=0.1,1,3", "phases.cpx.radius_mm=0.1,1,3", RATES]),
    # a path that returns: cool to 700, reheat to 1000, cool to 600 degC, every leg at one rate
    # (--vary takes no lists, so one case per rate)
    **{f"reheat 1200>700>1000>600 at {r:g}": (_segments([700.0, 1000.0, 600.0], r),
                                              ["phases.opx.radius_mm=0.1,1,3", "phases.cpx.radius_mm=0.1,1,3"])
       for r in (1.0, 1e3, 1e6)},
    # T = 500 + 700 exp(-t/tc) down to 600 degC: cooling 700/tc degC/Myr at the start, 100/tc at the end
    "exponential to 600, tc 1e-4..100 Myr": (_exponential(500.0), [
        "phases.opx.radius_mm=0.1,1,3", "phases.cpx.radius_mm=0.1,1,3", "temperature.time_constant_Myr=log:1e-4:100:13"]),
    # the two parts of Delta apart (grid.accuracy_permil's Delta scale weighs them, --fit):
    # only the kinetic fractionation of mass-dependent diffusion, only the equilibrium one
    "no equilibrium offsets": (_offsets0, ["phases.opx.radius_mm=0.1,1,3", "phases.cpx.radius_mm=0.1,1,3", RATES]),
    "beta 0": (_beta0, ["phases.opx.radius_mm=0.1,1,3", "phases.cpx.radius_mm=0.1,1,3", RATES]),
}


def sweep(deck, varies, cells, stretch, out):
    """Run one sweep on grid (cells, stretch) (None: the deck's default); return its members."""
    cmd = ISOSIM + ["sweep", str(deck), "--out", str(out), "--force"]
    if cells is not None:
        cmd += ["--set", f"grid.cells={cells}", "--set", f"grid.stretch={stretch!r}"]
    for v in varies:
        cmd += ["--vary", v]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    members = json.loads((Path(out) / "summary.json").read_text())["members"]
    return members, wall


def rel_error(coarse, fine, floor=FLOOR):
    return abs(coarse - fine) / max(abs(fine), floor)


def _label(params):
    return ", ".join(f"{k.removeprefix('phases.').removeprefix('temperature.')}={v:g}" for k, v in params.items())


def size_ratio(raw, params):
    """Largest over smallest grain radius of a member (every class of every phase)."""
    radii = []
    for name, ph in raw["phases"].items():
        ph = dict(ph, **{k.split(".")[-1]: v for k, v in params.items() if k.startswith(f"phases.{name}.")})
        kind = ph.get("size_distribution", "single")
        if kind == "single":
            radii.append(ph["radius_mm"])
        elif kind == "lognormal":
            radii.extend(lognormal_classes(ph["median_radius_mm"], ph["sigma_ln"], ph["bins"])[0])
        else:
            radii.extend(ph["bin_radii_mm"])
    return max(radii) / min(radii)


def parse_candidates(text):
    out = []
    for item in text.split(","):
        cells, stretch = item.split("x")
        out.append((int(cells), float(stretch)))
    return out


def member_deck(case, params):
    """The resolved deck of a study member (the case's deck with the member's values)."""
    from isosim.deck import validate
    from isosim.deck.load import apply_overrides
    raw = base_deck()
    edit = CASES[case][0]
    if edit:
        edit(raw)
    problems = []
    apply_overrides(raw, [f"{k}={v!r}" for k, v in params.items()], problems)
    assert not problems, problems
    return validate(raw)


def fit(paths):
    """grid.accuracy_permil's error model from study records (--json of runs on the default family,
    cells N at stretch 1.2^(50/N)): per N, the worst |Delta - Delta(4x)| / max(Delta scale, FLOOR),
    with the deck's a-priori Delta scale (isosim.deck.grain_grid.delta_scale); the order p
    fitted to the worst errors, and e50 the smallest factor with e50 (50/N)^p above every one."""
    import math

    import numpy as np

    from isosim.deck.grain_grid import ACCURACY_FLOOR, delta_scale, path_temperatures
    worst = {}                          # N -> (err, case, params, Delta, Delta_4x, scale)
    per_case = {}                       # case -> {N: its worst error}
    scales = {}
    for path in paths:
        record = json.loads(Path(path).read_text())
        for case, cands in record["cases"].items():
            for cand, rec in cands.items():
                cells = int(cand.split("x")[0])
                per_case.setdefault(case, {})
                for m in rec["members"]:
                    key = (case, json.dumps(m["params"], sort_keys=True))
                    if key not in scales:
                        deck = member_deck(case, m["params"])
                        scales[key] = delta_scale(deck, path_temperatures(deck))[0]
                    scale = scales[key]
                    err = abs(m["Delta"] - m["Delta_4x"]) / max(scale, ACCURACY_FLOOR)
                    per_case[case][cells] = max(per_case.setdefault(case, {}).get(cells, 0.0), err)
                    if err > worst.get(cells, (-1.0,))[0]:
                        worst[cells] = (err, case, m["params"], m["Delta"], m["Delta_4x"], scale)
    ns = sorted(worst)
    x = np.log([50.0 / n for n in ns])
    y = np.log([worst[n][0] for n in ns])
    p, _ = np.polyfit(x, y, 1)
    slopes = [(y[i + 1] - y[i]) / (x[i + 1] - x[i]) for i in range(len(ns) - 1)]
    print(f"\nerror model fit over {len(scales)} members: worst |dDelta| / max(Delta scale, {ACCURACY_FLOOR})")
    print("| cells | stretch | worst error / scale | |dDelta| (permil) | Delta scale | where |")
    print("|---|---|---|---|---|---|")
    for n in ns:
        err, case, params, c, f, scale = worst[n]
        print(f"| {n} | {1.2 ** (50 / n):.4g} | {err:.3g} | {abs(c - f):.2g} | {scale:.3g} | {case}: {_label(params)} |")
    print(f"fitted order p = {p:.3f}; local orders between neighbours {', '.join(f'{q:.2f}' for q in slopes)}")
    low = min((math.log(e[a] / e[b]) / math.log(b / a), case, a, b) for case, e in per_case.items()
              for a, b in zip(sorted(e), sorted(e)[1:]))
    print(f"lowest local order of any one case's worst error: {low[0]:.2f} ({low[1]}, {low[2]} -> {low[3]} cells)")
    for q in sorted({round(p, 2), 1.8, 1.5, math.floor(min(p, low[0], *slopes) * 10) / 10}):
        e50 = max(worst[n][0] * (n / 50.0) ** q for n in ns)
        print(f"p = {q:.2f}: e50 = {e50:.3g} (the smallest with e50 (50/N)^p >= every worst error)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--candidates", default="100x1.0,100x1.03,100x1.05,60x1.06,50x1.08,40x1.1,30x1.15",
                    help="comma-separated CELLSxSTRETCH grids (default: %(default)s)")
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names (default: all)")
    ap.add_argument("--check-reference", action="store_true",
                    help="also run the 16x grid of the first candidate: the 4x grid's own error")
    ap.add_argument("--json", default="", help="write every member's numbers here")
    ap.add_argument("--work", default="", help="directory for the sweeps (default: a temporary one)")
    ap.add_argument("--fit", nargs="*", metavar="JSON",
                    help="fit grid.accuracy_permil's error model to these --json records of the default "
                         "family (25x1.44,35x1.2975,50x1.2,70x1.1391,100x1.0954) and stop")
    args = ap.parse_args(argv)
    if args.fit:
        fit(args.fit)
        return 0
    cands = parse_candidates(args.candidates)
    cases = {k: v for k, v in CASES.items()
             if not args.cases or any(s.strip() in k for s in args.cases.split(","))}
    work = Path(args.work or tempfile.mkdtemp(prefix="grid-study-"))
    work.mkdir(parents=True, exist_ok=True)
    record = {"floor_permil": FLOOR, "cases": {}}
    table = {}                               # (cells, stretch) -> [(err, case, label, coarse, fine)]
    for n, (case, (edit, varies)) in enumerate(cases.items()):
        record["cases"][case] = {}
        raw = base_deck()
        if edit:
            edit(raw)
        deck = work / f"case{n}.toml"
        deck.write_text(to_toml(raw))
        for k, (cells, stretch) in enumerate(cands):
            coarse, t_c = sweep(deck, varies, cells, stretch, work / f"c{k}")
            fine, t_f = sweep(deck, varies, 4 * cells, stretch ** 0.25, work / f"f{k}")
            errs = [rel_error(c["Delta_permil"], f["Delta_permil"]) for c, f in zip(coarse, fine)]
            ratios = [size_ratio(raw, c["params"]) for c in coarse]
            for limit in (RATIO, float("inf")):
                inside = [i for i in range(len(errs)) if ratios[i] <= limit * (1 + 1e-9)]
                if not inside:
                    continue
                worst = max(inside, key=errs.__getitem__)
                row = (errs[worst], case, _label(coarse[worst]["params"]),
                       coarse[worst]["Delta_permil"], fine[worst]["Delta_permil"])
                table.setdefault((limit, cells, stretch), []).append(row)
            worst = max(range(len(errs)), key=errs.__getitem__)
            rec = {"wall_s": [t_c, t_f], "members": [
                {"params": c["params"], "size_ratio": q, "Delta": c["Delta_permil"], "Delta_4x": f["Delta_permil"],
                 "err": e} for c, f, e, q in zip(coarse, fine, errs, ratios)]}
            if args.check_reference and k == 0:
                ref, _ = sweep(deck, varies, 16 * cells, stretch ** (1 / 16), work / "r")
                e4 = [rel_error(f["Delta_permil"], r["Delta_permil"]) for f, r in zip(fine, ref)]
                e16 = [rel_error(c["Delta_permil"], r["Delta_permil"]) for c, r in zip(coarse, ref)]
                rec["err_4x_vs_16x_max"] = max(e4)
                rec["err_vs_16x_max"] = max(e16)
                print(f"  reference check: 4x vs 16x max {max(e4):.2e}; candidate vs 16x max {max(e16):.2e}"
                      f" (vs 4x {max(errs):.2e})", flush=True)
            record["cases"][case][f"{cells}x{stretch}"] = rec
            print(f"{case:28s} {cells:4d} x {stretch:<5g}: worst {errs[worst] * 100:7.3f} % "
                  f"({_label(coarse[worst]['params'])}: {coarse[worst]['Delta_permil']:.5f} vs "
                  f"{fine[worst]['Delta_permil']:.5f} permil)  [{len(errs)} members, "
                  f"{t_c:.1f} s + {t_f:.1f} s]", flush=True)
    print(f"\nworst relative error against the 4x grid (floor {FLOOR} permil), over {len(cases)} cases")
    print(f"| grid | rim cell (% of r) | worst, size ratio <= {RATIO:g} | where | worst, any ratio | where |")
    print("|---|---|---|---|---|---|")
    for cells, stretch in cands:
        w = [stretch ** -i for i in range(cells)]
        cols = [f"{cells} x {stretch:g}", f"{100 * w[-1] / sum(w):.3g}"]
        for limit in (RATIO, float("inf")):
            err, case, label, c, f = max(table[(limit, cells, stretch)])
            cols += [f"{err * 100:.3f} %", f"{case}: {label} ({c:.4f} vs {f:.4f} permil)"]
        print("| " + " | ".join(cols) + " |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
