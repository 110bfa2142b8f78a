#!/usr/bin/env python3
"""Benchmark: an isosim ensemble sweep against a loop of scipy ``solve_ivp`` (Radau).

Members: the Fig. 2 sweep, ``isosim sweep DECK --vary temperature.rate_C_per_Myr=log:1:1e7:N``
(N = ``--members``, default 4096; every other key as in the deck: 100 cells, stretch 1.03).

What is measured, in one run:

0. How this machine's cores scale at all: 1 vs 2 concurrent numpy processes, in cache and
   streaming from memory (context for the rank speedup).
1. isosim, through its command line as subprocesses: the N-member sweep on 1 rank and
   under ``mpirun -n 2`` (``--ranks``), wall clock of each subprocess (fastest of
   ``--repeat`` runs, default 2), Delta of every member read from ``<out>/summary.json``.
   Both runs get ``-log_view``; the top PETSc events are printed to show what bounds
   the run.
2. The same model in scipy: the grain cells of 2 phases x 2 isotopes as one ODE per member
   (the algebraic grain-boundary concentration eliminated: it is linear in the rim cells),
   the same finite-volume grid (isosim's ``SphereGrid``), and an analytic sparse Jacobian
   (tridiagonal blocks plus the rim-rim coupling through C_b), integrated by
   ``solve_ivp(method="Radau", jac=...)``.
3. Verification that the two are the same discretization: scipy at a tight tolerance
   against an isosim reference run at a tight tolerance on an accuracy subset
   (``--accuracy-subset`` members evenly spread over the N rates).
4. Accuracy matching: the error of isosim's timed sweep (default deck tolerances) on the
   accuracy subset, against that reference; then scipy's rtol is chosen on a ladder
   (quarter decades, tight to loose) as the loosest value before its max |Delta error|
   over the subset exceeds ``--match`` (default 3) times isosim's. scipy is therefore
   at most as accurate as isosim, or slightly less (the comparison favours scipy). The
   default accuracy subset is the timing subset: 32 members (scipy's error at loose
   tolerances varies erratically from member to member).
5. scipy timing: the loop over a timing subset (``--subset`` members evenly spread over
   the N rates, default 32; cost depends on the rate), extrapolated to N members (mean
   per-member time x N). ``--subset 0`` times the loop over all N members (no
   extrapolation) and also compares every member's Delta with isosim's.

Everything runs with OMP_NUM_THREADS=1 (one core per process; scipy runs in this
process, on one core). Other processes' CPU use during each timed phase is measured from
/proc/stat and reported: on a shared machine it inflates the times (most of all the
2-rank run on a 2-core machine).

Run from the repository root with the project's venv:

    .venv/bin/python scripts/bench_sweep_vs_scipy.py --json runs/bench.json

Prints a table and the two ratios (goals: scipy/isosim time per member >= 100x;
isosim 1 -> 2 ranks speedup >= 1.8x) and saves every number to ``--json``.
"""

import os

# One thread per process for every BLAS/OpenMP user, set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))          # isosim's deck reader and grid (no PETSc/MPI import)

from isosim.deck import load_deck  # noqa: E402
from isosim.discretization.spherical import SphereGrid  # noqa: E402
from isosim.studies.ensemble import parse_values  # noqa: E402
from isosim.physics.constants import R_GAS, SECONDS_PER_MYR, ZERO_C  # noqa: E402
from benchlib import CpuMonitor, child_env, finish, parse_log_view, timed_run  # noqa: E402

KEY = "temperature.rate_C_per_Myr"
LOG_EVENTS = ("TSStep", "SNESSolve", "PCApply", "TSFunctionEval", "TSJacobianEval", "VecMAXPY",
              "VecAXPBYCZ", "VecCopy")
REF_RTOL, REF_ATOL = 1e-11, 1e-14      # isosim reference (its error there is ~1e-10 permil)
TIGHT_RTOL, TIGHT_ATOL = 1e-9, 1e-14   # scipy verification run


# ============================================================================ scipy model
class ScipyGrainExchange:
    """The isosim grain-exchange model of a deck, as a plain ODE for ``solve_ivp``.

    Unknowns: c[n, j, i], isotope n, phase j (one size class each), cell i of isosim's
    stretched finite-volume grid, normalised by the bulk concentration. With v_b = 0 the
    grain boundary is algebraic, sum_j phi_j kappa_j rim (K_j C_b - c_rim,j) = 0, so

        C_b = sum_j w_j c_rim,j / sum_j w_j K_j,   w_j = phi_j kappa_j,

    and on the clock tau in [0, 1]:  dc/dtau = kappa_j (L c)  with the rim neighbour
    K_j C_b, kappa_j = duration D_j(T) / R_j^2 (m_ref/m_n)^beta_j. The system is linear,
    dc/dtau = A(tau) c; ``jac`` returns A(tau) as a CSC matrix with a fixed pattern.
    """

    def __init__(self, deck):
        if deck["model"] != "grain_exchange":
            raise SystemExit(f"unsupported model {deck['model']!r}")
        if deck["grain_boundary"]["volume_fraction"] != 0.0:
            raise SystemExit("this benchmark models v_b = 0 (algebraic grain boundary) only")
        t = deck["temperature"]
        if t["path"] not in ("cooling", "heating"):
            raise SystemExit("this benchmark models linear cooling/heating paths only")
        P = deck["phases"]
        phases = list(P)
        for p in phases:
            if P[p]["size_distribution"] != "single":
                raise SystemExit("this benchmark models one grain size per phase only")
        self.grid = G = SphereGrid(deck["grid"]["cells"], deck["grid"]["stretch"])
        self.N = N = G.cells
        iso = deck["isotopes"]
        masses = np.array(iso["masses_amu"], dtype=float)
        self.niso = niso = masses.size
        self.ref = iso["names"].index(iso["reference"] or iso["names"][0])
        self.out_iso = next(n for n in range(niso) if n != self.ref)   # summary's Delta_permil
        self.nph = nph = len(phases)
        host = next(p for p in phases if P[p]["host"])
        pair = deck["output"]["pair"] or [next(p for p in phases if p != host), host]
        self.p1, self.p2 = (phases.index(p) for p in pair)
        col = lambda k: np.array([P[p][k] for p in phases], dtype=float)  # noqa: E731
        self.phi = col("modal_fraction")
        R = col("radius_mm") * 1e-3
        beta = col("beta")
        self.E_over_R = col("E_kJ_mol") * 1e3 / R_GAS
        offs = np.array([P[p]["lnK_offset_K2"] or [0.0] * niso for p in phases], dtype=float).T
        self.lnA = col("lnK_A")[None, :] + offs                       # (niso, nph)
        self.lnB = np.broadcast_to(col("lnK_B"), (niso, nph)).copy()
        self.lnC = np.broadcast_to(col("lnK_C"), (niso, nph)).copy()
        # kappa / duration without the Arrhenius factor, (niso, nph)
        self.k0 = col("D0_m2_s") / R**2 * (masses[self.ref] / masses[:, None]) ** beta[None, :]
        self.T0_K, self.T1_K = t["start_C"] + ZERO_C, t["end_C"] + ZERO_C
        self.dT_C = abs(t["end_C"] - t["start_C"])

        # ---- sparsity pattern: block (n, j) occupies rows (n*nph + j)*N + i ----
        nb = niso * nph
        rows, cols = [], []
        i = np.arange(N)
        for b in range(nb):
            o = b * N
            rows += [o + i, o + i[:-1], o + i[1:]]
            cols += [o + i, o + i[1:], o + i[:-1]]
        for n in range(niso):
            for j in range(nph):
                for k in range(nph):
                    rows.append(np.array([(n * nph + j) * N + N - 1]))
                    cols.append(np.array([(n * nph + k) * N + N - 1]))
        r, c = np.concatenate(rows), np.concatenate(cols)
        pat = sp.csc_matrix((np.ones(r.size), (r, c)), shape=(nb * N, nb * N))
        pat.sum_duplicates()
        pat.sort_indices()
        self.indices, self.indptr, self.shape = pat.indices.copy(), pat.indptr.copy(), pat.shape
        er = pat.indices
        ec = np.repeat(np.arange(nb * N), np.diff(pat.indptr))
        br, bc, ir, ic = er // N, ec // N, er % N, ec % N
        same = br == bc
        L = np.zeros(er.size)                   # grid operator entries (the rim term on the diagonal)
        d = same & (ir == ic)
        L[d] = -(G.lo[ir[d]] + G.up[ir[d]])
        u = same & (ic == ir + 1)
        L[u] = G.up[ir[u]]
        lw = same & (ic == ir - 1)
        L[lw] = G.lo[ir[lw]]
        self.L, self.blk_of_entry = L, br
        self.rr = np.flatnonzero((ir == N - 1) & (ic == N - 1))         # rim-rim entries
        self.rr_n, self.rr_j = np.divmod(br[self.rr], nph)
        self.rr_k = bc[self.rr] % nph
        self.up_in, self.lo_in, self.up_rim = G.up[:-1], G.lo[1:], G.up[-1]
        self.weights = G.weights

    def make(self, rate):
        """(fun, jac, y0, delta) of the member cooling at ``rate`` (degC/Myr)."""
        duration = self.dT_C / rate * SECONDS_PER_MYR
        k0 = duration * self.k0
        EoR, lnA, lnB, lnC, phi = self.E_over_R, self.lnA, self.lnB, self.lnC, self.phi
        T0, dT = self.T0_K, self.T1_K - self.T0_K
        niso, nph, N = self.niso, self.nph, self.N
        up_in, lo_in, up_rim = self.up_in, self.lo_in, self.up_rim

        def coeffs(tau):
            T = T0 + dT * tau
            return k0 * np.exp(-EoR / T), np.exp((lnA / T + lnB) / T + lnC)

        def fun(tau, y):
            kappa, K = coeffs(tau)
            c = y.reshape(niso, nph, N)
            w = phi * kappa
            rim = c[:, :, -1]
            Cb = (w * rim).sum(axis=1) / (w * K).sum(axis=1)
            diff = c[:, :, 1:] - c[:, :, :-1]
            lap = np.empty_like(c)
            lap[:, :, :-1] = up_in * diff
            lap[:, :, -1] = up_rim * (K * Cb[:, None] - rim)
            lap[:, :, 1:] -= lo_in * diff
            lap *= kappa[:, :, None]
            return lap.ravel()

        L, blk, rr, rn, rj, rk = self.L, self.blk_of_entry, self.rr, self.rr_n, self.rr_j, self.rr_k
        indices, indptr, shape = self.indices, self.indptr, self.shape

        def jac(tau, y):
            kappa, K = coeffs(tau)
            data = L * kappa.ravel()[blk]
            w = phi * kappa
            S = (w * K).sum(axis=1)
            # d(rim_j)/d(c_rim,k) = kappa_j up_N K_j w_k / S  (through C_b)
            data[rr] += kappa[rn, rj] * up_rim * K[rn, rj] * w[rn, rk] / S[rn]
            return sp.csc_matrix((data, indices, indptr), shape=shape)

        kappa, K = coeffs(0.0)
        b = 1.0 / (phi * K).sum(axis=1)                       # equilibrium at T_start
        y0 = np.repeat((K * b[:, None]).ravel(), N)

        def delta(y):
            M = y.reshape(niso, nph, N) @ self.weights        # volume means
            lr = np.log(M[:, self.p1] / M[:, self.p2])
            return 1000.0 * (lr[self.out_iso] - lr[self.ref])

        return fun, jac, y0, delta

    def solve(self, rate, rtol, atol):
        """Delta (permil) at the end of the path, and solver statistics."""
        fun, jac, y0, delta = self.make(rate)
        r = solve_ivp(fun, (0.0, 1.0), y0, method="Radau", jac=jac, rtol=rtol, atol=atol)
        if not r.success:
            raise RuntimeError(f"solve_ivp failed at rate {rate}: {r.message}")
        return delta(r.y[:, -1]), {"nfev": r.nfev, "njev": r.njev, "nlu": r.nlu, "steps": r.t.size - 1}


# ============================================================================ helpers
def run_isosim(isosim, deck, vary, out, *, ranks=1, sets=(), log_view=False, label=""):
    """Run ``isosim sweep`` as a subprocess; return (wall s, Delta per member, summary, stdout, cpu)."""
    cmd = [str(isosim), "sweep", str(deck), "--vary", vary, "--progress", "0", "--out", str(out), "--force"]
    for s in sets:
        cmd += ["--set", s]
    if log_view:
        cmd.append("-log_view")
    if ranks > 1:
        mpirun = shutil.which("mpirun")
        if mpirun is None:
            raise SystemExit("mpirun not found on PATH")
        cmd = [mpirun, "-n", str(ranks)] + cmd
    print(f"  running {label}: {' '.join(cmd if len(vary) < 200 else cmd[:3] + ['...'])}", flush=True)
    wall, summary, stdout, cpu = timed_run(cmd, out, child_env())
    delta = np.array([m["Delta_permil"] for m in summary["members"]], dtype=float)
    return wall, delta, summary, stdout, cpu


HW_KERNEL = r"""
import sys, time, numpy as np
n, it = int(sys.argv[1]), int(sys.argv[2])
a, b, c = np.ones(n), np.ones(n), np.empty(n)
np.multiply(a, 1.0001, out=c)
t = time.perf_counter()
for _ in range(it):
    np.multiply(a, 1.0001, out=c)
    c += b
print(time.perf_counter() - t)
"""


def machine_scaling(nproc, tries=2):
    """Throughput of ``nproc`` concurrent single-threaded numpy processes relative to one,
    for an in-cache kernel and a memory-streaming kernel (vectors the size of one rank's
    share of the 4096-member sweep): how far this machine's cores scale at all."""
    out = {}
    env = child_env()
    for key, n, it in (("in_cache", 20_000, 20_000), ("streaming", 1_600_000, 250)):
        cmd = [sys.executable, "-c", HW_KERNEL, str(n), str(it)]
        one, many = [], []
        for _ in range(tries):
            one.append(float(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout))
            ps = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(nproc)]
            many.append(max(float(p.communicate()[0]) for p in ps))
        out[key] = {"n": n, "iterations": it, "one_s": min(one), "concurrent_s": min(many),
                    "throughput_scaling": nproc * min(one) / min(many)}
    return out


def spread(n_total, n):
    """``n`` indices evenly spread over range(n_total) (all of them if n >= n_total or n <= 0)."""
    if n <= 0 or n >= n_total:
        return np.arange(n_total)
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def vary_list(rates):
    return f"{KEY}=" + ",".join(repr(float(r)) for r in rates)    # repr: TOML reads back the same double


def ladder(start, stop, per_decade=4):
    """rtol values from ``start`` up to ``stop``, ``per_decade`` per decade (rounded)."""
    k0, k1 = np.log10(start) * per_decade, np.log10(stop) * per_decade
    return [float(f"{10 ** (k / per_decade):.2g}") for k in np.arange(round(k0), round(k1) + 1)]


# ============================================================================ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deck", default=str(ROOT / "input" / "xiong_fig1.toml"))
    ap.add_argument("--members", type=int, default=4096, help="sweep members (default 4096)")
    ap.add_argument("--rates", default="log:1:1e7", help="rate spec without the count (default log:1:1e7)")
    ap.add_argument("--subset", type=int, default=32,
                    help="scipy members timed, evenly spread over the rates, extrapolated to --members "
                         "(default 32; 0: time the loop over every member)")
    ap.add_argument("--accuracy-subset", type=int, default=32,
                    help="members for the reference/accuracy comparison, evenly spread over the rates "
                         "(default 32: the same members as the timing subset; scipy's error at loose "
                         "tolerances is erratic from member to member, so few members underestimate it)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="run each isosim sweep this many times (1 and N ranks alternating) and keep the "
                         "fastest of each (default 2: on a shared VM single runs vary by 10-20%%)")
    ap.add_argument("--match", type=float, default=3.0,
                    help="scipy's max |Delta error| may be up to this many times isosim's (default 3)")
    ap.add_argument("--scipy-rtol", type=float, default=None, help="skip the ladder: use this rtol")
    ap.add_argument("--scipy-atol", type=float, default=None, help="scipy atol (default: the deck's atol)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="sets",
                    help="deck override for both sides (repeatable), e.g. --set grid.cells=50 "
                         "--set grid.stretch=1.2 for the default grid")
    ap.add_argument("--ranks", type=int, default=2, help="ranks of the parallel isosim run (default 2)")
    ap.add_argument("--no-log-view", action="store_true", help="do not pass -log_view to isosim")
    ap.add_argument("--json", default=None, help="write every number to this JSON file")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep isosim's outputs in DIR")
    args = ap.parse_args()

    isosim = ROOT / ".venv" / "bin" / "isosim"
    if not isosim.exists():
        isosim = Path(shutil.which("isosim") or "isosim")
    deck_path = Path(args.deck).resolve()
    deck = load_deck(str(deck_path), args.sets)
    solver = deck["solver"]
    sweep_spec = f"{KEY}={args.rates}:{args.members}"
    rates = np.array(parse_values(sweep_spec)[1], dtype=float)   # exactly isosim's member values
    N = rates.size
    acc_idx = spread(N, args.accuracy_subset)
    time_idx = spread(N, args.subset)
    extrapolated = time_idx.size < N
    scipy_atol = args.scipy_atol if args.scipy_atol is not None else solver["atol"]
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="isosim-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log_view = not args.no_log_view
    t_start = time.perf_counter()

    print(f"isosim vs scipy benchmark: {deck_path.name}, sweep {sweep_spec} ({N} members), "
          f"{deck['grid']['cells']} cells, stretch {deck['grid']['stretch']}, "
          f"{len(deck['phases'])} phases x {len(deck['isotopes']['names'])} isotopes")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s); python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; OMP_NUM_THREADS=1; load average "
          f"{' '.join(open('/proc/loadavg').read().split()[:3]) if Path('/proc/loadavg').exists() else '?'}")
    print(f"isosim tolerances (deck [solver]): ts_type {solver['ts_type']}, rtol {solver['rtol']:g}, "
          f"atol {solver['atol']:g}\n", flush=True)

    # ---------------------------------------------------------------- 0. machine check
    with CpuMonitor() as cpuh:
        hw = machine_scaling(args.ranks)
    print(f"[0] machine: {args.ranks} concurrent single-threaded numpy processes deliver "
          f"{hw['in_cache']['throughput_scaling']:.2f} x the throughput of one in cache (160 kB vectors) and "
          f"{hw['streaming']['throughput_scaling']:.2f} x streaming from memory (13 MB vectors, the size of a "
          f"rank's share of a 4096-member sweep); "
          f"{cpuh.note()}\n", flush=True)

    # ---------------------------------------------------------------- 1. isosim sweeps
    print("[1] isosim sweeps (subprocess wall clock)")
    all_walls = {1: [], args.ranks: []}
    best = {}
    for rep in range(max(args.repeat, 1)):
        for nr in (1, args.ranks):
            res = run_isosim(isosim, deck_path, sweep_spec, workdir / f"sweep-{nr}", ranks=nr, sets=args.sets,
                             log_view=log_view, label=f"{nr} rank{'s' if nr > 1 else ''}")
            print(f"      {res[0]:.2f} s wall ({res[2]['wall_time_s']:.2f} s inside isosim); {res[4].note()}",
                  flush=True)
            all_walls[nr].append(res[0])
            if nr not in best or res[0] < best[nr][0]:
                best[nr] = res
    t1, d1, s1, out1, cpu1 = best[1]
    tp, dp, sp_, outp, cpup = best[args.ranks]
    if args.repeat > 1:
        print(f"      fastest of {args.repeat}: 1 rank {t1:.2f} s, {args.ranks} ranks {tp:.2f} s")
    rank_diff = float(np.max(np.abs(dp - d1)))
    print(f"      max |Delta(1 rank) - Delta({args.ranks} ranks)| = {rank_diff:.2e} permil\n")

    # ---------------------------------------------------------------- 2. reference + verification
    print(f"[2] reference and verification on {acc_idx.size} members spread over the rates")
    tr, dref, _, _, _ = run_isosim(isosim, deck_path, vary_list(rates[acc_idx]), workdir / "reference",
                                   sets=(*args.sets, f"solver.rtol={REF_RTOL!r}", f"solver.atol={REF_ATOL!r}"),
                                   label=f"isosim reference rtol {REF_RTOL:g} atol {REF_ATOL:g}")
    print(f"      {tr:.1f} s")
    model = ScipyGrainExchange(deck)
    tight = np.empty(acc_idx.size)
    t0 = time.perf_counter()
    for k, i in enumerate(acc_idx):
        tight[k], _ = model.solve(rates[i], TIGHT_RTOL, TIGHT_ATOL)
    t_tight = time.perf_counter() - t0
    verify = np.abs(tight - dref)
    ok = bool(verify.max() <= 1e-6)
    print(f"      scipy Radau rtol {TIGHT_RTOL:g} atol {TIGHT_ATOL:g} ({t_tight:.1f} s) vs isosim reference:")
    print(f"        {'rate C/Myr':>12} {'Delta isosim ref':>18} {'Delta scipy tight':>18} {'difference':>11}")
    for k, i in enumerate(acc_idx):
        print(f"        {rates[i]:12.4g} {dref[k]:18.12f} {tight[k]:18.12f} {tight[k] - dref[k]:11.2e}")
    print(f"      max |difference| = {verify.max():.2e} permil -> "
          f"{'same discretization (<= 1e-6 permil)' if ok else 'MISMATCH (> 1e-6 permil)'}\n", flush=True)

    # ---------------------------------------------------------------- 3. accuracy matching
    print("[3] accuracy at the benchmark tolerances (max |Delta - isosim reference| over the subset)")
    err_iso = np.abs(d1[acc_idx] - dref)
    err_iso_p = np.abs(dp[acc_idx] - dref)
    e_iso = float(err_iso.max())
    print(f"      isosim sweep, 1 rank (rtol {solver['rtol']:g}, atol {solver['atol']:g}): {e_iso:.3e} permil "
          f"(median {np.median(err_iso):.2e}); {args.ranks} ranks: {err_iso_p.max():.3e}")
    ladder_rows = []

    def scipy_errors(rtol):
        d = np.empty(acc_idx.size)
        t0 = time.perf_counter()
        for k, i in enumerate(acc_idx):
            d[k], _ = model.solve(rates[i], rtol, scipy_atol)
        e = np.abs(d - dref)
        row = {"rtol": rtol, "atol": scipy_atol, "max_err_permil": float(e.max()),
               "median_err_permil": float(np.median(e)), "ratio_to_isosim": float(e.max() / e_iso),
               "mean_time_s": (time.perf_counter() - t0) / acc_idx.size}
        ladder_rows.append(row)
        print(f"      scipy rtol {rtol:8.2g} atol {scipy_atol:g}: max err {row['max_err_permil']:.3e} permil "
              f"= {row['ratio_to_isosim']:6.2f} x isosim's   ({row['mean_time_s'] * 1e3:.0f} ms/member)",
              flush=True)
        return row

    if args.scipy_rtol is not None:
        chosen = scipy_errors(args.scipy_rtol)
    else:
        chosen = None
        for rtol in ladder(1e-8, 1e-2):
            row = scipy_errors(rtol)
            if row["max_err_permil"] > args.match * e_iso:
                break
            chosen = row
        if chosen is None:
            chosen = ladder_rows[0]
            print("      note: even the tightest ladder rtol is less accurate than the match factor allows")
    scipy_rtol = chosen["rtol"]
    print(f"      -> scipy rtol {scipy_rtol:g}, atol {scipy_atol:g}: max error {chosen['max_err_permil']:.3e} "
          f"permil = {chosen['ratio_to_isosim']:.2f} x isosim's {e_iso:.3e} (loosest ladder value within "
          f"{args.match:g}x; quarter-decade ladder)\n", flush=True)

    # ---------------------------------------------------------------- 4. scipy timing
    what = (f"{time_idx.size} members evenly spread over the {N} rates, extrapolated to {N}"
            if extrapolated else f"all {N} members")
    print(f"[4] scipy solve_ivp Radau loop, rtol {scipy_rtol:g}, atol {scipy_atol:g}, sparse analytic "
          f"Jacobian, one core: {what}")
    times, stats, dsc = [], [], []
    with CpuMonitor() as cpus:
        for i in time_idx:
            t0 = time.perf_counter()
            d, st = model.solve(rates[i], scipy_rtol, scipy_atol)
            times.append(time.perf_counter() - t0)
            stats.append(st)
            dsc.append(d)
    times, dsc = np.array(times), np.array(dsc)
    per_scipy = float(times.mean())
    t_scipy_loop = per_scipy * N
    print(f"      timed {times.sum():.2f} s for {times.size} members: per member mean "
          f"{per_scipy * 1e3:.1f} ms (min {times.min() * 1e3:.1f}, median {np.median(times) * 1e3:.1f}, "
          f"max {times.max() * 1e3:.1f}); mean nfev {np.mean([s['nfev'] for s in stats]):.0f}, "
          f"njev {np.mean([s['njev'] for s in stats]):.0f}, nlu {np.mean([s['nlu'] for s in stats]):.0f}, "
          f"steps {np.mean([s['steps'] for s in stats]):.0f}; {cpus.note()}")
    diff_loop = np.abs(dsc - d1[time_idx])
    print(f"      max |Delta scipy - Delta isosim sweep| over these members = {diff_loop.max():.2e} permil",
          flush=True)
    in_ref = np.isin(time_idx, acc_idx)
    err_timed = np.abs(dsc[in_ref] - dref[np.searchsorted(acc_idx, time_idx[in_ref])])
    if in_ref.any():
        print(f"      scipy max |Delta error| over the {in_ref.sum()} timed members with a reference: "
              f"{err_timed.max():.3e} permil (isosim over the same: "
              f"{np.abs(d1[time_idx[in_ref]] - dref[np.searchsorted(acc_idx, time_idx[in_ref])]).max():.3e})")
    print()

    # ---------------------------------------------------------------- 5. results
    per1, perp = t1 / N, tp / N
    ratio1, ratiop = per_scipy / per1, per_scipy / perp
    speedup = t1 / tp
    loop_label = f"scipy Radau loop ({'extrapolated' if extrapolated else 'measured'})"
    rows = [("isosim sweep, 1 rank", t1, s1["wall_time_s"], per1, e_iso),
            (f"isosim sweep, {args.ranks} ranks", tp, sp_["wall_time_s"], perp, float(err_iso_p.max())),
            (loop_label, t_scipy_loop, None, per_scipy, chosen["max_err_permil"])]
    print("=" * 100)
    print(f"{N} members ({sweep_spec}); max |Delta error| over {acc_idx.size} members vs isosim rtol "
          f"{REF_RTOL:g}")
    print(f"{'method':38} {'wall [s]':>10} {'(in isosim)':>11} {'per member [ms]':>16} {'members/s':>10} "
          f"{'max err [permil]':>17}")
    for name, w, inner, per, err in rows:
        print(f"{name:38} {w:10.2f} {(f'{inner:.2f}' if inner is not None else '-'):>11} {per * 1e3:16.3f} "
              f"{1 / per:10.1f} {err:17.2e}")
    print("-" * 100)
    if extrapolated:
        print(f"scipy loop time = mean over {times.size} timed members x {N} (extrapolated, not run in full)")
    mark = lambda ok: "meets goal" if ok else "BELOW GOAL"  # noqa: E731
    print(f"throughput ratio, scipy time / isosim time per member, 1 rank vs 1 core : {ratio1:8.1f} x   "
          f"(goal >= 100 x: {mark(ratio1 >= 100)})")
    print(f"throughput ratio, scipy (1 core) / isosim {args.ranks} ranks                : {ratiop:8.1f} x")
    print(f"isosim speedup 1 -> {args.ranks} ranks (wall clock)                          : {speedup:8.2f} x   "
          f"(goal >= 1.8 x: {mark(speedup >= 1.8)}; inside isosim "
          f"{s1['wall_time_s'] / sp_['wall_time_s']:.2f} x)")
    print(f"  (machine check [0]: {args.ranks} numpy processes scale {hw['in_cache']['throughput_scaling']:.2f} x "
          f"in cache, {hw['streaming']['throughput_scaling']:.2f} x streaming from memory)")
    noisy = [(n, c) for n, c in (("isosim 1 rank", cpu1), (f"isosim {args.ranks} ranks", cpup),
                                 ("scipy loop", cpus)) if c.foreign_cores > 0.2]
    for n, c in noisy:
        print(f"WARNING: during the {n} run other processes used {c.foreign_cores:.2f} core(s) on average; "
              "its time is inflated (rerun on a quiet machine)")

    events = {}
    if log_view:
        l1, lp = parse_log_view(out1, LOG_EVENTS), parse_log_view(outp, LOG_EVENTS)
        events = {"1": l1, str(args.ranks): lp}
        print(f"\nPETSc -log_view, top events (time = max over ranks; %T of the run):")
        print(f"{'event':16} {'count':>7} {'1 rank [s]':>11} {'%T':>4}   {f'{args.ranks} ranks [s]':>12} "
              f"{'%T':>4} {'ratio max/min':>13}   {'1 -> ' + str(args.ranks) + ' speedup':>15}")
        for ev in LOG_EVENTS:
            a, b = l1.get(ev), lp.get(ev)
            if not a or not b:
                continue
            print(f"{ev:16} {a['count']:7d} {a['time_max_s']:11.2f} {a['percent_time']:4.0f}   "
                  f"{b['time_max_s']:12.2f} {b['percent_time']:4.0f} {b['time_ratio']:13.2f}   "
                  f"{a['time_max_s'] / b['time_max_s']:15.2f}")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.0f} s")

    result = {
        "deck": str(deck_path), "sets": args.sets, "sweep": sweep_spec, "members": N,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "scaling_check": hw,
                    "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__},
        "isosim": {
            "tolerances": {"ts_type": solver["ts_type"], "rtol": solver["rtol"], "atol": solver["atol"]},
            "rank1": {"wall_s": t1, "wall_inside_s": s1["wall_time_s"], "per_member_s": per1,
                      "cpu": cpu1.as_dict(), "max_err_permil": e_iso},
            f"rank{args.ranks}": {"wall_s": tp, "wall_inside_s": sp_["wall_time_s"], "per_member_s": perp,
                                  "cpu": cpup.as_dict(), "max_err_permil": float(err_iso_p.max())},
            "max_abs_delta_diff_between_rank_counts_permil": rank_diff, "repeat": args.repeat,
            "all_walls_s": {str(k): v for k, v in all_walls.items()},
            "log_view": events,
        },
        "reference": {"solver": "isosim", "rtol": REF_RTOL, "atol": REF_ATOL, "wall_s": tr,
                      "indices": acc_idx.tolist(), "rates": rates[acc_idx].tolist(), "Delta_permil": dref.tolist()},
        "verification": {"scipy_rtol": TIGHT_RTOL, "scipy_atol": TIGHT_ATOL, "Delta_permil": tight.tolist(),
                         "max_abs_diff_permil": float(verify.max()), "same_discretization": ok},
        "accuracy": {"isosim_max_err_permil": e_iso, "isosim_err_permil": err_iso.tolist(),
                     "match_factor": args.match, "ladder": ladder_rows, "scipy_rtol": scipy_rtol,
                     "scipy_atol": scipy_atol, "scipy_max_err_permil": chosen["max_err_permil"],
                     "scipy_to_isosim_error_ratio": chosen["ratio_to_isosim"]},
        "scipy": {"method": "Radau", "jacobian": "analytic, scipy.sparse CSC", "rtol": scipy_rtol,
                  "atol": scipy_atol, "timed_indices": time_idx.tolist(), "timed_rates": rates[time_idx].tolist(),
                  "times_s": times.tolist(), "Delta_permil": dsc.tolist(), "stats": stats,
                  "per_member_s": per_scipy,
                  "loop_s": t_scipy_loop, "extrapolated": extrapolated, "cpu": cpus.as_dict(),
                  "max_abs_delta_diff_vs_isosim_sweep_permil": float(diff_loop.max())},
        "ratios": {"throughput_1rank": ratio1, f"throughput_{args.ranks}ranks": ratiop,
                   "goal_throughput": 100.0, "speedup_1_to_%d" % args.ranks: speedup,
                   "speedup_inside_isosim": s1["wall_time_s"] / sp_["wall_time_s"], "goal_speedup": 1.8},
        "warnings": [f"{n}: other processes used {c.foreign_cores:.2f} cores" for n, c in noisy],
        "total_s": time.perf_counter() - t_start,
    }
    finish(result, args.json, workdir, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
