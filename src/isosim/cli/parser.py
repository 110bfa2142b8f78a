"""The command line's grammar: every subcommand, its options and its help.

PETSc options (single dash, e.g. ``-ts_type rosw -ts_rtol 1e-9 -log_view``) come after
isosim's own arguments; :func:`split_petsc_options` separates them and they reach PETSc
untouched.
"""

import argparse
import re

from .. import __version__
from ..argtypes import int_at_least, nonnegative_float, nonnegative_int, positive_float
from ..registry import MODELS

EPILOG = """\
PETSc options go last and are passed through, e.g.
  isosim run input/xiong_fig1.toml -ts_type rosw -ts_rtol 1e-9 -log_view
Under MPI:  mpirun -n 2 isosim run input/xiong_fig2_rate10.toml
Exit codes: 0 done (or: restart of a job already complete), 2 bad input, missing
petsc4py/mpi4py or a directory in use (nothing run), 3 solver failure (last good state
checkpointed), 4 file I/O failure, 75 stopped by SIGTERM/SIGUSR1/SIGINT after keeping
what was finished (continue with 'isosim restart DIR'), 130 Ctrl-C before anything was kept.
"""

_PETSC_OPTION = re.compile(r"^-[A-Za-z_][\w-]*$")


def split_petsc_options(argv):
    """Split argv at the first PETSc-style option (one dash, a name of two or more letters)."""
    for i, tok in enumerate(argv):
        if _PETSC_OPTION.match(tok) and len(tok) > 2:
            return argv[:i], argv[i:]
    return argv, []


def build_parser():
    p = argparse.ArgumentParser(
        prog="isosim", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Isotope fractionation by diffusion in rocks and melts, with PETSc TS "
                    "(serial or under mpirun). Models: " + "; ".join(f"{s.name} ({s.summary})" for s in MODELS.values())
                    + ".")
    p.add_argument("--version", action="version", version=f"isosim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def deck_args(sp):
        sp.add_argument("deck", metavar="DECK.toml", help="input deck (TOML)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a deck value, e.g. --set temperature.rate_C_per_Myr=100 "
                             "--set phases.opx.beta=0.1 (repeatable; values are TOML)")

    r = sub.add_parser("run", help="run a deck", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EPILOG, description="Validate DECK, integrate it, and write "
                       "DIR/summary.json and DIR/results.h5 (DIR from --out, default runs/<deck name>). "
                       "Checkpoints go to DIR/checkpoint.h5 periodically and on SIGTERM/SIGUSR1, "
                       "with the recordings since the previous one appended as DIR/records/part-*.h5.")
    deck_args(r)
    r.add_argument("--out", metavar="DIR", help="output directory (default: runs/<deck name>)")
    r.add_argument("--force", action="store_true", help="replace the results of an earlier run in DIR")
    r.add_argument("--no-memory-check", action="store_true", help="run even if the memory preflight estimates "
                   "more memory than the machine, cgroup, SLURM allocation or ulimit -v allows")
    _run_options(r)

    rs = sub.add_parser("restart", help="continue a run, sweep or inversion that stopped",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                        description="Continue the job in DIR (DIR/manifest.json says what it is), on any "
                        "number of ranks: a run from its newest good checkpoint (DIR/deck.toml and the "
                        "isosim version must match it); a sweep (or slice) or an inversion by computing only "
                        "the members not kept in DIR/units. A finished job is left as it is (exit 0).")
    rs.add_argument("run_dir", metavar="DIR")
    _run_options(rs)

    c = sub.add_parser("check", help="validate a deck without running it",
                       description="Validate DECK (and --set overrides); print the resolved deck "
                                   "with every default filled in, or the problems found.")
    deck_args(c)
    c.add_argument("--quiet", action="store_true", help="print nothing when the deck is valid")

    sw = sub.add_parser("sweep", help="run many members of a deck (cartesian or Monte Carlo)",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                        description="Run the deck for every combination of the --vary values and/or N "
                        "Monte Carlo draws of the deck's [sample] distributions, as one ensemble spread "
                        "over the MPI ranks; write one DIR/summary.json and DIR/results.h5 with every "
                        "member's parameters and results. Values: v1,v2,... (TOML), a:b[:n] or lin:a:b:n "
                        "(n evenly spaced, default 11), log:a:b:n (geometric).")
    deck_args(sw)
    sw.add_argument("--vary", action="append", default=[], metavar="KEY=VALUES",
                    help="e.g. --vary temperature.rate_C_per_Myr=log:1:1e7:8 (repeatable: cartesian product)")
    sw.add_argument("--samples", type=nonnegative_int, default=None, metavar="N",
                    help="Monte Carlo draws from [sample] (default: the deck's sweep.samples; 0: no draws, "
                         "only the --vary product)")
    sw.add_argument("--seed", type=nonnegative_int, default=None, help="random seed of the draws (default: deck, 0)")
    sw.add_argument("--out", metavar="DIR", help="output directory (default: runs/<deck>-sweep)")
    sw.add_argument("--force", action="store_true", help="replace an earlier sweep in DIR")
    sw.add_argument("--progress", type=nonnegative_float, default=10.0, metavar="SECONDS")
    sw.add_argument("--no-memory-check", action="store_true", help="run even if the memory preflight "
                    "estimates more memory than the machine or allocation has")
    sw.add_argument("--slice", metavar="K/N", help="run only the K-th of N contiguous slices of the members "
                    "(1-based; a job array's task), keeping their global indices; join with 'isosim merge'")

    mg = sub.add_parser("merge", help="join the slices of a sweep (isosim sweep --slice K/N) into one",
                        description="Check that the slice directories are every slice of one sweep (same "
                        "deck and varied values, no gaps or overlaps) and write OUT/summary.json and "
                        "OUT/results.h5 as the whole sweep run at once writes them. Serial: no mpirun.")
    mg.add_argument("out", metavar="OUT", help="directory of the merged sweep")
    mg.add_argument("dirs", nargs="*", metavar="DIR", help="slice directories, in any order")
    mg.add_argument("--from", dest="pattern", metavar="GLOB", help="slice directories matching GLOB "
                    "(quoted, e.g. --from 'runs/sweep-*'; OUT itself is skipped)")
    mg.add_argument("--force", action="store_true", help="replace an earlier sweep in OUT")

    iv = sub.add_parser("invert", help="find the parameter value that reproduces a measured result",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                        description="Find the value of --param in --bracket for which the run's --target "
                        "result is reproduced, for each value of --over (if given). A scan over the "
                        "bracket finds the sign change, then regula falsi (Illinois) refines every root "
                        "at once; each evaluation is one batched ensemble.")
    deck_args(iv)
    iv.add_argument("--target", metavar="KEY=VALUE", help="e.g. Delta_permil=1.29 (default: deck [invert])")
    iv.add_argument("--param", metavar="KEY", help="e.g. phases.opx.beta (default: deck [invert])")
    iv.add_argument("--bracket", metavar="LOW:HIGH", help="search range (default: deck [invert], 0:0.5)")
    iv.add_argument("--over", metavar="KEY=VALUES", help="e.g. phases.cpx.beta=0:0.5:6")
    iv.add_argument("--scan", type=int_at_least(2), default=11, help="scan points over the bracket (default 11)")
    iv.add_argument("--tol", type=positive_float, default=1e-4, help="tolerance on the target (default 1e-4)")
    iv.add_argument("--out", metavar="DIR", help="output directory (default: runs/<deck>-invert)")
    iv.add_argument("--force", action="store_true")
    iv.add_argument("--progress", type=nonnegative_float, default=0.0, metavar="SECONDS")

    pl = sub.add_parser("plot", help="draw the figures of a run, sweep or inversion directory",
                        description="Write PNG figures of DIR (a run: profiles, Delta and T_app against T; "
                        "a sweep: results against the varied parameters; an inversion: the solution "
                        "against the other parameter) into DIR/figures or --out. Needs matplotlib "
                        "(Debian: python3-matplotlib; pip: isosim[plot]).")
    pl.add_argument("run_dir", metavar="DIR")
    pl.add_argument("--out", metavar="FIGDIR", help="where to write the PNGs (default DIR/figures)")

    fs = sub.add_parser("fit-soret", help="fit Soret isotope sensitivities to thermal-diffusion data",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Fit Omega (permil per degC per amu), Delta S_T of each isotope pair "
                        "and T0 (where the sample equals the starting material) to measured delta values "
                        "against temperature, per experiment and pooled over experiments, by weighted least "
                        "squares with the reported 2 sigma; then simulate each experiment forward with the "
                        "fitted values and report the residuals. Reads Huang et al. (2010) Table 1 files "
                        "as shipped in data/.")
    fs.add_argument("data", metavar="DATA.csv", help="samples: experiment, position, T_C, d<mass><El>, "
                    "d<mass><El>_2s, ... (position 'start' = starting material)")
    fs.add_argument("--experiments", metavar="META.csv",
                    help="per-experiment metadata: duration_h, start_row_from, published Omega/T0 to compare")
    fs.add_argument("--out", metavar="DIR", help="output directory (default: runs/<data name>-fit)")
    fs.add_argument("--force", action="store_true", help="replace an earlier fit in DIR")
    fs.add_argument("--sigma-T", dest="sigma_T", default="auto", metavar="DEGC",
                    help="1-sigma uncertainty of each sample's temperature, added to the delta errors as an "
                         "effective variance; 'auto' (default): the value giving chi2/dof = 1 in the pooled fits")
    fs.add_argument("--no-forward", action="store_true", help="skip the forward simulations")

    cv = sub.add_parser("converge", help="convergence study: refine the grid and/or the time step",
                        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                        description="Run DECK on --levels successively refined levels (DIR/level<k>, each an "
                        "ordinary run on every rank): space multiplies the cells by --ratio (a stretched "
                        "grain grid keeps its mapping: stretch^cells fixed) with a tight time tolerance; "
                        "time divides a fixed step (-ts_adapt_type none, outputs only at the end) by "
                        "--ratio; both does the two. Reports, per headline quantity, each level's error "
                        "against the Richardson extrapolation (3+ levels) or the finest level, the "
                        "observed order and the extrapolated value; writes DIR/converge.json and "
                        "DIR/converge.png.")
    deck_args(cv)
    cv.add_argument("--refine", required=True, choices=("space", "time", "both"),
                    help="what is refined (the chamber model has no grid: time only)")
    cv.add_argument("--levels", type=int, default=3, metavar="N", help="number of levels (default 3)")
    cv.add_argument("--ratio", type=float, default=2.0, help="refinement ratio between levels (default 2)")
    cv.add_argument("--dt0", type=float, metavar="DT", help="time: fixed step of level 0 as a fraction of the "
                    "path, sets solver.initial_dt (default the deck's; 1/DT an integer lands on the end)")
    cv.add_argument("--rtol", type=float, metavar="TOL", help="space: time tolerance of every level "
                    "(sets solver.rtol; default min(deck, 1e-10))")
    cv.add_argument("--out", metavar="DIR", help="output directory (default: runs/<deck>-converge)")
    cv.add_argument("--force", action="store_true", help="replace an earlier study in DIR")
    cv.add_argument("--progress", type=nonnegative_float, default=10.0, metavar="SECONDS")

    k = sub.add_parser("keys", help="list every deck key of a model, with units and defaults")
    k.add_argument("model", nargs="?", default="grain_exchange", help="model name (default grain_exchange)")
    return p


def _run_options(sp):
    sp.add_argument("--progress", type=nonnegative_float, default=10.0, metavar="SECONDS",
                    help="seconds between progress lines on rank 0 (0: none; default 10)")
    sp.add_argument("--checkpoint-seconds", type=nonnegative_float, metavar="S",
                    help="checkpoint every S seconds of wall time (overrides checkpoint.every_seconds)")
    sp.add_argument("--checkpoint-steps", type=nonnegative_int, metavar="N",
                    help="checkpoint every N time steps (overrides checkpoint.every_steps)")


def checkpoint_overrides(args):
    """``--set`` overrides of the checkpoint intervals given as their own options."""
    out = []
    if getattr(args, "checkpoint_seconds", None) is not None:
        out.append(f"checkpoint.every_seconds={args.checkpoint_seconds!r}")
    if getattr(args, "checkpoint_steps", None) is not None:
        out.append(f"checkpoint.every_steps={args.checkpoint_steps}")
    return out
