#!/usr/bin/env python3
"""Benchmark: a chamber-model (EC-E'RAχFC) Monte Carlo ensemble in isosim against a
per-member loop of scipy ``solve_ivp``.

Members: ``isosim sweep DECK --samples N --seed S`` (default ``input/spera2004_montecarlo.toml``,
N = ``--members`` = 10^4, S = the deck's ``[sweep]`` seed): chi, T_eq, the recharge and eruption
masses and the wall rock's D_Sr drawn from the deck's ``[sample]`` distributions. Every member
is a 37-column ODE in the progress s = (T_m° - T_m) / (T_m° - T_eq), from 0 to 1.

What is measured, in one run:

1. isosim, through its command line as subprocesses: the N-member sweep on 1 rank and under
   ``mpirun -n 2`` (``--ranks``); wall clock of each whole command (interpreter start, MPI
   launch, member expansion, integration, output) and the ``wall_time_s`` isosim writes to
   ``<out>/summary.json``. Every member's headline results are read from that summary.
   ``--log-view`` runs the parallel sweep with PETSc's ``-log_view`` (given through the
   ``PETSC_OPTIONS`` environment variable: see the note below) and prints its top events;
   ``--profile`` adds one 1-rank sweep under cProfile and prints isosim's costliest functions.
2. A reference: each member of an accuracy subset (``--acc-members``, default 32, drawn at
   random) integrated alone by ``solve_ivp(method="DOP853", rtol=1e-13, atol=1e-14)``; its own
   error is estimated against rtol 1e-12 and printed.
3. The same ODE in scipy, member by member: ``ChamberParameters([deck])`` (isosim's own
   vectorised parameters for one member) and its ``rates`` as the right-hand side, so both
   sides integrate exactly the same equations. Accuracy: the max relative error, over the
   subset and the headline quantities (``--quantities``, default the final Sr concentration,
   87Sr/86Sr, M_m and T_a), of isosim's timed sweep against the reference; then, for RK45 and
   DOP853, scipy's rtol is chosen on a quarter-decade ladder within 1e-6..1e-12 (atol = the
   deck's atol; whole decades first, then quarter decades below the last failing one) as the
   loosest value whose max error, and that of the next tighter ladder value, is no larger
   than isosim's (``--match`` times it, default 1): scipy is at least as accurate as isosim.
   The method with the smaller cost per member at its chosen rtol is used.
4. scipy timing: the loop (parameters, ``solve_ivp``, final headline numbers of each member)
   over ``--ref-members`` members drawn at random (default 200; the accuracy subset is among
   them), one core, extrapolated to N (mean per-member time x N). ``--ref-members 0`` runs
   the loop over all N members (no extrapolation). Member decks are generated in-process with
   ``isosim.studies.ensemble.expand`` before the clock starts (~0.1 ms/member; not counted).

Prints a table (members, ranks, wall time, members/s, scipy s/member, errors), the
throughput ratio (scipy loop time / isosim time for the N members; goal >= 50x with isosim on
2 ranks) and isosim's 1 -> 2 rank speedup, and saves every number to ``--json``.

Everything runs with OMP_NUM_THREADS=1. The CPU time other processes use during each timed
phase is measured from /proc/stat and reported: on a shared machine it inflates the times
(most of all the 2-rank run on a 2-core machine).

Note: ``isosim sweep`` imports petsc4py.PETSc (through isosim.runner -> isosim.models ->
models/capsule.py) before it calls ``petsc4py.init`` with the PETSc options of its command
line, so options such as ``-log_view`` after ``isosim sweep DECK`` are silently ignored;
``PETSC_OPTIONS`` is read by PetscInitialize whenever it happens.

Run from the repository root with the project's venv:

    .venv/bin/python scripts/bench_chamber.py --log-view --json runs/bench_chamber.json
    .venv/bin/python scripts/bench_chamber.py --members 1000 --ref-members 50   # quick look
"""

import os

# One thread per process for every BLAS/OpenMP user, set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import copy  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))   # isosim (isosim.models imports petsc4py; no PETSc calls are made here)

from isosim.deck import validate  # noqa: E402
from isosim.deck.load import read_toml  # noqa: E402
from isosim.studies.ensemble import expand  # noqa: E402
from isosim.models.chamber import ChamberParameters  # noqa: E402
from isosim.models.chamber_output import diagnostics  # noqa: E402
from benchlib import CpuMonitor, child_env, finish, parse_log_view, timed_run  # noqa: E402

DEFAULT_DECK = ROOT / "input" / "spera2004_montecarlo.toml"
DEFAULT_QUANTITIES = "Cm_ppm.Sr,eps_m.87Sr/86Sr,Mm,Ta_C"
REF_METHOD, REF_RTOL, REF_ATOL = "DOP853", 1e-13, 1e-14
CHECK_RTOL = 1e-12                    # the reference's own error: against this rtol
GOAL_RATIO, GOAL_SPEEDUP = 50.0, 1.8
METHODS = ("RK45", "DOP853")


# ============================================================================ scipy side
class Member:
    """One member's ODE, built from isosim's own parameter code, for ``solve_ivp``."""

    def __init__(self, deck):
        self.p = p = ChamberParameters([deck])
        self.W = W = p.layout.width
        self.y0 = p.initial_rows().ravel()

        def fun(s, y):
            du = np.empty((1, W))             # a new array each call (solve_ivp keeps the last f)
            p.rates(s, y.reshape(1, W), du)
            return du.ravel()

        self.fun = fun

    def solve(self, method, rtol, atol):
        r = solve_ivp(self.fun, (0.0, 1.0), self.y0, method=method, rtol=rtol, atol=atol)
        if not r.success:
            raise RuntimeError(f"solve_ivp {method} rtol {rtol:g} failed: {r.message}")
        return r.y[:, -1], {"nfev": int(r.nfev), "steps": int(r.t.size - 1)}


def headline_vector(p, row, quantities):
    """The ``quantities`` (flat summary keys such as ``Cm_ppm.Sr``) of one final state row,
    computed by isosim's own ``diagnostics`` (what the recorder writes to summary.json)."""
    d = diagnostics(p, 1.0, row.reshape(1, -1))
    out = []
    for q in quantities:
        base, _, name = q.partition(".")
        v = d[base]
        if name:
            names = {"eps_m": p.ratios, "delta_m": p.stable}.get(base, p.elements)
            v = v[:, names.index(name)]
        out.append(float(v[0]))
    return np.array(out)


def solve_member(deck, quantities, method, rtol, atol):
    """(headline vector, stats, seconds) of one member, the clock around everything a loop
    over members does: parameters, integration, final numbers."""
    t0 = time.perf_counter()
    m = Member(deck)
    y, st = m.solve(method, rtol, atol)
    h = headline_vector(m.p, y, quantities)
    return h, st, time.perf_counter() - t0


def summary_vector(member, quantities):
    flat = {}
    for k, v in member.items():
        if isinstance(v, dict) and k != "params":
            flat.update({f"{k}.{n}": x for n, x in v.items()})
        elif isinstance(v, (int, float)):
            flat[k] = v
    missing = [q for q in quantities if q not in flat]
    if missing:
        raise SystemExit(f"--quantities: {', '.join(missing)} not in summary.json members; "
                         f"available: {', '.join(flat)}")
    return np.array([flat[q] for q in quantities], dtype=float)


def rel_err(x, ref):
    return np.abs(x - ref) / np.maximum(np.abs(ref), 1e-300)


def ladder(loose, tight, per_decade=4):
    """rtol values from ``loose`` down to ``tight``, ``per_decade`` per decade (rounded)."""
    k0, k1 = np.log10(loose) * per_decade, np.log10(tight) * per_decade
    return [float(f"{10 ** (k / per_decade):.2g}") for k in np.arange(round(k0), round(k1) - 1, -1)]


def choose_rtol(evaluate, loose=1e-6, tight=1e-12, per_decade=4):
    """The loosest rtol of the quarter-decade ladder from ``loose`` to ``tight`` that meets the
    target together with the next tighter ladder value. ``evaluate(rtol)`` returns a row with
    ``ok``; rows are cached. Whole decades are tried first (loose to tight); the quarter
    decades between the last failing decade and the first passing one are then tried loose to
    tight. Returns the chosen row (the tightest tried if none meets the target)."""
    values = ladder(loose, tight, per_decade)
    rows = {}

    def row(k):
        if k not in rows:
            rows[k] = evaluate(values[k])
        return rows[k]

    first_ok = None
    for k in range(0, len(values), per_decade):
        if row(k)["ok"]:
            first_ok = k
            break
    if first_ok is None:
        return row(len(values) - 1)
    for k in range(max(first_ok - per_decade + 1, 0), len(values)):
        if row(k)["ok"] and (k + 1 >= len(values) or row(k + 1)["ok"]):
            return row(k)
    return row(len(values) - 1)


# ============================================================================ isosim side
def run_isosim(isosim, deck, members, seed, out, *, ranks=1, log_view=False, profile=None, label=""):
    """Run ``isosim sweep`` as a subprocess; return (wall s, summary, stdout, cpu)."""
    cmd = [str(isosim), "sweep", str(deck), "--samples", str(members), "--seed", str(seed),
           "--progress", "0", "--out", str(out), "--force"]
    if profile:
        cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "isosim"] + cmd[1:]
    if ranks > 1:
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            raise SystemExit("mpirun not found on PATH")
        cmd = [mpirun, "-n", str(ranks)] + cmd
    env = child_env("-log_view" if log_view else "")
    print(f"  running {label}: {'PETSC_OPTIONS=-log_view ' if log_view else ''}{' '.join(cmd)}", flush=True)
    return timed_run(cmd, out, env)


def spread_random(n_total, n, rng):
    """``n`` distinct member indices drawn at random (all of them, in order, if n <= 0 or n >= n_total)."""
    if n <= 0 or n >= n_total:
        return np.arange(n_total)
    return rng.choice(n_total, n, replace=False)


# ============================================================================ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deck", default=str(DEFAULT_DECK), help="chamber deck with [sample] tables "
                    "(default input/spera2004_montecarlo.toml)")
    ap.add_argument("--members", type=int, default=10_000, help="Monte Carlo members (default 10000)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the draws (default: the deck's [sweep] seed)")
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the parallel isosim run (default 2)")
    ap.add_argument("--no-serial", action="store_true",
                    help="skip the 1-rank isosim run (no 1 -> N rank speedup)")
    ap.add_argument("--ref-members", type=int, default=200,
                    help="scipy members timed (random), extrapolated to --members (default 200; "
                         "0: time the loop over every member)")
    ap.add_argument("--acc-members", type=int, default=32,
                    help="members of the accuracy subset (random, among the timed ones; default 32)")
    ap.add_argument("--subset-seed", type=int, default=0, help="seed of the random subsets (default 0)")
    ap.add_argument("--quantities", default=DEFAULT_QUANTITIES,
                    help=f"headline quantities compared (summary.json keys; default {DEFAULT_QUANTITIES})")
    ap.add_argument("--match", type=float, default=1.0,
                    help="scipy's max relative error may be up to this many times isosim's (default 1)")
    ap.add_argument("--method", choices=METHODS, default=None,
                    help="scipy method (default: the faster of RK45 and DOP853 at matched accuracy)")
    ap.add_argument("--scipy-rtol", type=float, default=None, help="skip the ladder: use this rtol")
    ap.add_argument("--scipy-atol", type=float, default=None, help="scipy atol (default: the deck's atol)")
    ap.add_argument("--log-view", action="store_true",
                    help="run the parallel isosim sweep with -log_view and print its top PETSc events")
    ap.add_argument("--profile", action="store_true",
                    help="also run a 1-rank sweep under cProfile and print isosim's costliest functions")
    ap.add_argument("--json", default=None, help="write every number to this JSON file")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep isosim's outputs in DIR")
    args = ap.parse_args()

    isosim = ROOT / ".venv" / "bin" / "isosim"
    if not isosim.exists():
        isosim = Path(shutil.which("isosim") or "isosim")
    deck_path = Path(args.deck).resolve()
    raw = read_toml(deck_path)
    base = validate(copy.deepcopy(raw), str(deck_path))
    if base["model"] != "chamber":
        raise SystemExit(f"{deck_path}: model {base['model']!r}; this benchmark is for chamber decks")
    seed = args.seed if args.seed is not None else base["sweep"]["seed"]
    quantities = [q.strip() for q in args.quantities.split(",") if q.strip()]
    N = args.members
    solver = base["solver"]
    scipy_atol = args.scipy_atol if args.scipy_atol is not None else solver["atol"]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="isosim-bench-chamber-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    print(f"isosim vs scipy chamber benchmark: {deck_path.name}, {N} Monte Carlo members (seed {seed}) "
          f"over {', '.join(base['sample'])}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s); python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; OMP_NUM_THREADS=1; load average "
          f"{' '.join(open('/proc/loadavg').read().split()[:3]) if Path('/proc/loadavg').exists() else '?'}")
    print(f"isosim tolerances (deck [solver]): ts_type {solver['ts_type']} {solver['rk_type']}, "
          f"rtol {solver['rtol']:g}, atol {solver['atol']:g} (infinity norm over the members)")
    print(f"compared: final {', '.join(quantities)} (relative error)\n", flush=True)

    # ---------------------------------------------------------------- 0. member decks
    t0 = time.perf_counter()
    decks, params = expand(raw, str(deck_path), samples=N, seed=seed)
    t_expand = time.perf_counter() - t0
    rng = np.random.default_rng(args.subset_seed)
    time_idx = spread_random(N, args.ref_members, rng)
    acc_idx = time_idx[:min(max(args.acc_members, 1), time_idx.size)]
    extrapolated = time_idx.size < N
    print(f"[0] {N} member decks generated in-process by isosim.studies.ensemble.expand in {t_expand:.1f} s "
          f"({t_expand / N * 1e3:.2f} ms/member; not counted in the scipy loop)\n", flush=True)

    # ---------------------------------------------------------------- 1. isosim sweeps
    print("[1] isosim sweeps (subprocess wall clock)")
    runs = {}
    rank_list = ([] if args.no_serial or args.ranks == 1 else [1]) + [args.ranks]
    for nr in rank_list:
        lv = args.log_view and nr == args.ranks
        wall, summary, stdout, cpu = run_isosim(isosim, deck_path, N, seed, workdir / f"sweep-{nr}", ranks=nr,
                                                log_view=lv, label=f"{nr} rank{'s' if nr > 1 else ''}")
        members = summary["members"]
        if len(members) != N:
            raise SystemExit(f"summary.json holds {len(members)} members, expected {N}")
        for k in params:                                   # same members, same order
            got = np.array([m["params"][k] for m in members], dtype=float)
            if not np.array_equal(got, np.asarray(params[k], dtype=float)):
                raise SystemExit(f"member parameters of the isosim sweep differ from expand()'s ({k})")
        vals = np.array([summary_vector(members[i], quantities) for i in acc_idx])
        runs[nr] = {"wall": wall, "inside": summary["wall_time_s"], "vals": vals, "stdout": stdout,
                    "cpu": cpu, "summary": summary}
        print(f"      {wall:.2f} s wall ({summary['wall_time_s']:.2f} s inside isosim, summary.json); "
              f"{cpu.note()}", flush=True)
    rank_diff = None
    if len(runs) == 2:
        allv = {nr: np.array([summary_vector(m, quantities) for m in r["summary"]["members"]])
                for nr, r in runs.items()}
        rank_diff = float(np.max(rel_err(allv[args.ranks], allv[1])))
        print(f"      max relative difference 1 rank vs {args.ranks} ranks over all {N} members: {rank_diff:.2e}")
    print()

    # ---------------------------------------------------------------- 2. reference
    print(f"[2] reference: {acc_idx.size} random members, each alone, solve_ivp {REF_METHOD} "
          f"rtol {REF_RTOL:g} atol {REF_ATOL:g}")
    t0 = time.perf_counter()
    ref = np.array([solve_member(decks[i], quantities, REF_METHOD, REF_RTOL, REF_ATOL)[0] for i in acc_idx])
    chk = np.array([solve_member(decks[i], quantities, REF_METHOD, CHECK_RTOL, REF_ATOL)[0] for i in acc_idx])
    ref_self = float(np.max(rel_err(chk, ref)))
    print(f"      {time.perf_counter() - t0:.1f} s; its own error (max relative difference to rtol "
          f"{CHECK_RTOL:g}): {ref_self:.1e}\n", flush=True)

    # ---------------------------------------------------------------- 3. accuracy matching
    print(f"[3] accuracy: max relative error over the {acc_idx.size} members against the reference")
    print(f"      {'':34}" + "".join(f"{q:>17}" for q in quantities) + f"{'max':>11}")
    iso_err = {}
    for nr, r in runs.items():
        e = rel_err(r["vals"], ref)
        iso_err[nr] = {"per_quantity": e.max(axis=0).tolist(), "max": float(e.max())}
        print(f"      {f'isosim sweep, {nr} rank(s)':34}" + "".join(f"{x:17.2e}" for x in e.max(axis=0))
              + f"{e.max():11.2e}")
    e_iso = max(v["max"] for v in iso_err.values())
    target = args.match * e_iso
    if e_iso < 10 * ref_self:
        print(f"      note: isosim's error ({e_iso:.1e}) is within 10x of the reference's own error "
              f"({ref_self:.1e}): the matching is limited by the reference")
    print(f"      target for scipy: max relative error <= {target:.2e} ({args.match:g} x isosim's)")

    ladder_rows = []

    def scipy_errors(method, rtol):
        res = [solve_member(decks[i], quantities, method, rtol, scipy_atol) for i in acc_idx]
        e = rel_err(np.array([h for h, _, _ in res]), ref)
        row = {"method": method, "rtol": rtol, "atol": scipy_atol, "max_rel_err": float(e.max()),
               "per_quantity": e.max(axis=0).tolist(), "mean_time_s": float(np.mean([t for _, _, t in res])),
               "mean_nfev": float(np.mean([s["nfev"] for _, s, _ in res])),
               "ok": bool(e.max() <= target)}
        ladder_rows.append(row)
        print(f"      scipy {method:6} rtol {rtol:7.2g} atol {scipy_atol:g}: max err {row['max_rel_err']:.2e} "
              f"{'<=' if row['ok'] else '> '} target   ({row['mean_time_s'] * 1e3:6.1f} ms/member, "
              f"nfev {row['mean_nfev']:.0f})", flush=True)
        return row

    chosen = {}
    for method in ([args.method] if args.method else METHODS):
        if args.scipy_rtol is not None:
            chosen[method] = scipy_errors(method, args.scipy_rtol)
            continue
        chosen[method] = choose_rtol(lambda rtol: scipy_errors(method, rtol))
        if not chosen[method]["ok"]:
            print(f"      note: {method} does not reach the target on the ladder; its tightest rtol is used")
    method = min(chosen, key=lambda m: (not chosen[m]["ok"], chosen[m]["mean_time_s"]))
    pick = chosen[method]
    scipy_rtol = pick["rtol"]
    print("      chosen per method: " + "; ".join(
        f"{m} rtol {c['rtol']:g} ({c['mean_time_s'] * 1e3:.1f} ms/member, max err {c['max_rel_err']:.2e})"
        for m, c in chosen.items()))
    print(f"      -> scipy {method} rtol {scipy_rtol:g} atol {scipy_atol:g}: the faster at matched accuracy; "
          f"max relative error {pick['max_rel_err']:.2e} vs isosim's {e_iso:.2e}\n", flush=True)

    # ---------------------------------------------------------------- 4. scipy timing
    what = (f"{time_idx.size} members drawn at random, extrapolated to {N}" if extrapolated
            else f"all {N} members")
    print(f"[4] scipy solve_ivp {method} loop, rtol {scipy_rtol:g}, atol {scipy_atol:g}, one core: {what}")
    times, stats, vals = [], [], []
    with CpuMonitor() as cpus:
        for i in time_idx:
            h, st, t = solve_member(decks[i], quantities, method, scipy_rtol, scipy_atol)
            times.append(t)
            stats.append(st)
            vals.append(h)
    times, vals = np.array(times), np.array(vals)
    per_scipy = float(times.mean())
    t_scipy_loop = per_scipy * N
    print(f"      timed {times.sum():.2f} s for {times.size} members: per member mean {per_scipy * 1e3:.1f} ms "
          f"(min {times.min() * 1e3:.1f}, median {np.median(times) * 1e3:.1f}, max {times.max() * 1e3:.1f}); "
          f"mean nfev {np.mean([s['nfev'] for s in stats]):.0f}, steps {np.mean([s['steps'] for s in stats]):.0f}; "
          f"{cpus.note()}")
    e_timed = float(rel_err(vals[:acc_idx.size], ref).max())
    print(f"      max relative error of these runs on the {acc_idx.size} reference members: {e_timed:.2e}")
    last = runs[args.ranks]["summary"]["members"]
    d_loop = float(np.max(rel_err(vals, np.array([summary_vector(last[i], quantities) for i in time_idx]))))
    print(f"      max relative difference scipy vs isosim sweep over the {times.size} timed members: "
          f"{d_loop:.2e}\n", flush=True)

    # ---------------------------------------------------------------- 5. results
    rows = []
    for nr, r in runs.items():
        rows.append(("isosim sweep", f"{nr}", r["wall"], r["inside"], r["wall"] / N, iso_err[nr]["max"]))
    loop_label = f"scipy {method} loop ({'extrapolated' if extrapolated else 'measured'})"
    rows.append((loop_label, "1 core", t_scipy_loop, None, per_scipy, pick["max_rel_err"]))
    print("=" * 112)
    print(f"{N} members of {deck_path.name}; max relative error of {', '.join(quantities)} over "
          f"{acc_idx.size} members vs solve_ivp {REF_METHOD} rtol {REF_RTOL:g}")
    print(f"{'method':34} {'ranks':>6} {'members':>8} {'wall [s]':>10} {'(in isosim)':>11} "
          f"{'s/member':>10} {'members/s':>10} {'max rel err':>12}")
    for name, nr, w, inner, per, err in rows:
        print(f"{name:34} {nr:>6} {N:8d} {w:10.2f} {(f'{inner:.2f}' if inner is not None else '-'):>11} "
              f"{per:10.2e} {1 / per:10.1f} {err:12.2e}")
    print("-" * 112)
    if extrapolated:
        print(f"scipy loop time = mean over {times.size} randomly drawn members ({per_scipy * 1e3:.1f} ms) x {N} "
              f"(EXTRAPOLATED, not run in full); scipy reference: {per_scipy:.4f} s/member")
    else:
        print(f"scipy loop time measured over all {N} members; scipy reference: {per_scipy:.4f} s/member")
    mark = lambda ok: "meets goal" if ok else "BELOW GOAL"  # noqa: E731
    tp, inp = runs[args.ranks]["wall"], runs[args.ranks]["inside"]
    ratio = t_scipy_loop / tp
    say = lambda label, text: print(f"{label:68}: {text}")  # noqa: E731
    say(f"throughput ratio, scipy loop (1 core) / isosim {args.ranks} ranks, whole command",
        f"{ratio:8.1f} x   (goal >= {GOAL_RATIO:g} x: {mark(ratio >= GOAL_RATIO)})")
    say("  same, with isosim's own wall_time_s (summary.json)", f"{t_scipy_loop / inp:8.1f} x")
    say(f"  same, per core (isosim uses {args.ranks} cores, scipy 1)", f"{ratio / args.ranks:8.1f} x")
    speedup = speedup_in = ratio1 = None
    if 1 in runs and args.ranks != 1:
        t1 = runs[1]["wall"]
        ratio1 = t_scipy_loop / t1
        speedup, speedup_in = t1 / tp, runs[1]["inside"] / inp
        say("throughput ratio, scipy loop (1 core) / isosim 1 rank, whole command", f"{ratio1:8.1f} x")
        say(f"isosim speedup 1 -> {args.ranks} ranks, whole command",
            f"{speedup:8.2f} x   (inside isosim {speedup_in:.2f} x; goal >= {GOAL_SPEEDUP:g} x: "
            f"{mark(speedup >= GOAL_SPEEDUP)})")
    noisy = [(f"isosim {nr} rank(s)", r["cpu"]) for nr, r in runs.items()] + [("scipy loop", cpus)]
    noisy = [(n, c) for n, c in noisy if c.foreign_cores > 0.2]
    for n, c in noisy:
        print(f"WARNING: during the {n} run other processes used {c.foreign_cores:.2f} core(s) on average; "
              "its time is inflated (rerun on a quiet machine)")

    events = {}
    if args.log_view:
        events = parse_log_view(runs[args.ranks]["stdout"])
        total = events.get("_total_s")
        evs = sorted(((k, v) for k, v in events.items() if not k.startswith("_")),
                     key=lambda kv: -kv[1]["time_max_s"])
        if not evs:
            print("\n-log_view: no event table in isosim's output")
        else:
            print(f"\nPETSc -log_view of the {args.ranks}-rank sweep, top events (time = max over ranks; "
                  f"PETSc's total {total:.1f} s):")
            print(f"{'event':18} {'count':>8} {'time [s]':>10} {'%T':>5} {'max/min':>8}")
            for k, v in evs[:8]:
                print(f"{k:18} {v['count']:8d} {v['time_max_s']:10.2f} {v['percent_time']:5.0f} "
                      f"{v['time_ratio']:8.2f}")
            ts = events.get("TSStep")
            if ts and total:
                print(f"TSStep (the integration, RHS included) is {ts['time_max_s']:.1f} s of {total:.1f} s "
                      f"({100 * ts['time_max_s'] / total:.0f} %); the rest is Python outside PETSc's events "
                      "(member expansion, parameters, recorder/diagnostics, output).")

    prof_rows = []
    if args.profile:
        print("\n[profile] one more 1-rank sweep under cProfile (slower than the timed runs)")
        pfile = workdir / "sweep.prof"
        wall, _, _, _ = run_isosim(isosim, deck_path, N, seed, workdir / "sweep-profile", profile=pfile,
                                   label="1 rank, cProfile")
        st = pstats.Stats(str(pfile))
        tot = max(v[3] for v in st.stats.values())
        items = sorted(((v[3], v[2], k) for k, v in st.stats.items() if "isosim" in k[0]), reverse=True)
        print(f"      {wall:.1f} s wall; isosim functions by cumulative time (of {tot:.1f} s):")
        print(f"      {'cumulative [s]':>14} {'%':>4} {'own [s]':>8} {'calls':>8}  function")
        for cum, own, k in items[:18]:
            calls = st.stats[k][1]
            name = f"{Path(k[0]).relative_to(ROOT) if Path(k[0]).is_relative_to(ROOT) else k[0]}:{k[1]}({k[2]})"
            print(f"      {cum:14.2f} {100 * cum / tot:4.0f} {own:8.2f} {calls:8d}  {name}")
            prof_rows.append({"function": name, "cumulative_s": cum, "own_s": own, "calls": calls})

    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")

    result = {
        "deck": str(deck_path), "members": N, "seed": seed, "quantities": quantities,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "isosim": {
            "tolerances": {"ts_type": solver["ts_type"], "rk_type": solver["rk_type"], "rtol": solver["rtol"],
                           "atol": solver["atol"]},
            "runs": {str(nr): {"wall_s": r["wall"], "wall_inside_s": r["inside"], "per_member_s": r["wall"] / N,
                               "members_per_s": N / r["wall"], "cpu": r["cpu"].as_dict(),
                               "max_rel_err": iso_err[nr]["max"], "rel_err_per_quantity": iso_err[nr]["per_quantity"]}
                     for nr, r in runs.items()},
            "max_rel_diff_between_rank_counts": rank_diff,
            "log_view": events, "profile": prof_rows,
        },
        "reference": {"method": REF_METHOD, "rtol": REF_RTOL, "atol": REF_ATOL, "indices": acc_idx.tolist(),
                      "values": ref.tolist(), "self_error_vs_rtol_%g" % CHECK_RTOL: ref_self},
        "accuracy": {"isosim_max_rel_err": e_iso, "match_factor": args.match, "target": target,
                     "ladder": ladder_rows, "chosen_per_method": chosen},
        "scipy": {"method": method, "rtol": scipy_rtol, "atol": scipy_atol, "timed_indices": time_idx.tolist(),
                  "times_s": times.tolist(), "stats": stats, "per_member_s": per_scipy, "loop_s": t_scipy_loop,
                  "extrapolated": extrapolated, "cpu": cpus.as_dict(), "max_rel_err_timed": e_timed,
                  "max_rel_diff_vs_isosim_sweep": d_loop, "expand_s": t_expand},
        "ratios": {f"throughput_{args.ranks}ranks": ratio, f"throughput_{args.ranks}ranks_inside": t_scipy_loop / inp,
                   "throughput_1rank": ratio1, "goal_throughput": GOAL_RATIO,
                   f"speedup_1_to_{args.ranks}": speedup, "speedup_inside_isosim": speedup_in},
        "warnings": [f"{n}: other processes used {c.foreign_cores:.2f} cores" for n, c in noisy],
        "total_s": time.perf_counter() - t_start,
    }
    finish(result, args.json, workdir, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
