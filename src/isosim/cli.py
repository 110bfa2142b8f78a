"""The ``isosim`` command.

PETSc options (single dash, e.g. ``-ts_type rosw -ts_rtol 1e-9 -log_view``) come after
isosim's own arguments; they are handed to PETSc untouched. PETSc is initialised only
after the command line and the deck have been checked, so a user mistake never costs an
MPI/PETSc start-up or a traceback.
"""

import argparse
import re
import sys
from pathlib import Path

from . import __version__
from .argtypes import int_at_least, nonnegative_float, nonnegative_int, positive_float
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, IsosimError, RestartError
from .io.rundir import read_manifest
from .registry import model_spec
from .startup import init_petsc, world_rank

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
                    "(serial or under mpirun). Models: grain_exchange (mineral grains "
                    "exchanging an element and its isotopes during cooling or heating); capsule "
                    "(thermal, Soret, diffusion of isotopes in a melt held in a temperature gradient).")
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


def _checkpoint_overrides(args):
    out = []
    if getattr(args, "checkpoint_seconds", None) is not None:
        out.append(f"checkpoint.every_seconds={args.checkpoint_seconds!r}")
    if getattr(args, "checkpoint_steps", None) is not None:
        out.append(f"checkpoint.every_steps={args.checkpoint_steps}")
    return out


def main(argv=None):
    """Entry point of the ``isosim`` command; returns the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:          # Ctrl-C outside an integration (which stops cleanly, exit 75)
        if world_rank() == 0:
            print("[isosim] interrupted (Ctrl-C) outside an integration: what was finished is kept where the "
                  "command keeps it ('isosim restart DIR' continues a run or study that got that far)",
                  file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:            # `isosim keys chamber | head`: the reader left; not an error
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        _abort_other_ranks()
        raise


def _abort_other_ranks():
    """After an unexpected exception (a bug, not a user mistake: those are IsosimErrors, agreed
    on by every rank) on one rank of several, abort the job: the other ranks would wait for
    this one in their next collective call until the wall-time limit."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized() or mpi.COMM_WORLD.size == 1:
        return
    import traceback
    traceback.print_exc()
    print(f"[isosim] internal error on rank {mpi.COMM_WORLD.rank}: aborting all ranks", file=sys.stderr,
          flush=True)
    mpi.COMM_WORLD.Abort(1)


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    own, petsc_options = split_petsc_options(argv)
    parser = build_parser()
    late = [tok for tok in petsc_options if tok.startswith("--")]
    if late:   # PETSc would take them as its own options and silently ignore them
        parser.error(f"{late[0]} comes after the PETSc option {petsc_options[0]}; isosim's own arguments "
                     "go first, PETSc options last")
    args = parser.parse_args(own)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    rank = 0
    try:
        if args.command == "check":
            from .deck import load_deck, to_toml
            deck = load_deck(args.deck, args.set)
            if not args.quiet:
                print(f"# {args.deck}: valid ({deck['model']}); resolved deck:\n")
                print(to_toml(deck), end="")
            return EXIT_OK
        if args.command == "plot":
            from .plot import plot_run_dir
            for f in plot_run_dir(Path(args.run_dir), Path(args.out) if args.out else None):
                print(f"[isosim] wrote {f}")
            return EXIT_OK
        if args.command == "keys":
            from .deck import MODELS
            from .deck.schema import describe_schema
            if args.model not in MODELS:
                raise IsosimError(f"error: unknown model {args.model!r}; expected one of {', '.join(MODELS)}")
            print("\n".join(describe_schema(MODELS[args.model].SCHEMA)))
            return EXIT_OK
        if args.command == "run":
            from .deck import load_deck
            deck = load_deck(args.deck, args.set + _checkpoint_overrides(args))
            from .preflight import preflight
            preflight(deck, skip_memory=args.no_memory_check)   # memory (exit 2), cost warning
            comm = init_petsc(petsc_options, deck["model"], deck["solver"])
            rank = comm.rank
            from .runner import run_deck
            out = Path(args.out) if args.out else Path("runs") / Path(args.deck).stem
            summary = run_deck(deck, out, comm, force=args.force, petsc_options=petsc_options,
                               progress_seconds=args.progress)
            _report(summary, out, rank)
            return EXIT_OK
        if args.command == "merge":
            from .studies.slices import merge_sweep, slice_dirs
            merge_sweep(Path(args.out), slice_dirs(args.out, args.dirs, args.pattern), force=args.force)
            return EXIT_OK
        if args.command in ("sweep", "invert"):
            from .studies.slices import parse_slice
            slice_ = parse_slice(args.slice) if getattr(args, "slice", None) else None
            # PETSc first: the study modules import petsc4py.PETSc, after which the
            # pass-through options (-log_view, -ts_rtol) would be ignored
            comm = init_petsc(petsc_options)
            rank = comm.rank
            from .deck.load import apply_overrides, read_toml
            from .errors import DeckError
            from .studies import default_out, parse_range, parse_target
            raw = read_toml(args.deck)
            problems = []
            apply_overrides(raw, args.set, problems)
            if problems:
                raise DeckError(args.deck, problems)
            from .deck import validate
            from .studies.ensemble import parse_values
            base = validate(raw, args.deck)      # the base deck alone must be valid
            from .solver.options import check_petsc_options
            check_petsc_options(petsc_options, base["model"], base["solver"])
            if args.command not in model_spec(base["model"]).studies:
                raise IsosimError(f"error: isosim {args.command} is not available for {base['model']} decks yet "
                                  f"({args.deck}); run the cases one by one with 'isosim run --set KEY=VALUE'")
            try:
                if args.command == "sweep":
                    vary = [parse_values(v) for v in (args.vary or base["sweep"]["vary"])]
                    samples = args.samples if args.samples is not None else base["sweep"]["samples"]
                    seed = args.seed if args.seed is not None else base["sweep"]["seed"]
                    if not vary and not samples:
                        raise IsosimError(f"error: nothing to sweep: give --vary or --samples, or a "
                                          f"[sweep] table in {args.deck}")
                    from .deck.specs import member_count
                    from .preflight import preflight
                    preflight(base, members=member_count(vary, samples), skip_memory=args.no_memory_check)
                else:
                    inv = base["invert"]
                    over_text = args.over or inv["over"]
                    over = parse_values(over_text) if over_text else None
                    target = parse_target(args.target or inv["target"])
                    param = args.param or inv["param"]
                    if not param:
                        raise IsosimError("error: invert needs --param KEY (or invert.param in the deck)")
                    bracket = parse_range(args.bracket or inv["bracket"], "--bracket")
            except ValueError as exc:
                raise IsosimError(f"error: {exc}") from None
            out = Path(args.out) if args.out else default_out(args.deck, args.command)
            if slice_ and not args.out:
                out = out.with_name(f"{out.name}-{slice_[0]}of{slice_[1]}")
            if args.command == "sweep":
                from .studies import run_sweep
                summary = run_sweep(raw, args.deck, out, comm, vary=vary, samples=samples,
                                    seed=seed, slice_=slice_, force=args.force,
                                    progress_seconds=args.progress, petsc_options=petsc_options)
                _report_study(summary, out, rank)
            else:
                from .studies import run_invert
                summary = run_invert(raw, args.deck, out, comm, target=target, param=param,
                                     bracket=bracket, over=over, scan=args.scan, tol=args.tol,
                                     force=args.force, progress_seconds=args.progress,
                                     petsc_options=petsc_options)
                _report_study(summary, out, rank)
            return EXIT_OK
        if args.command == "converge":
            from .studies.converge import converge_command
            return converge_command(args, petsc_options)
        if args.command == "fit-soret":
            from .fitting.command import fit_soret_command
            return fit_soret_command(args, petsc_options)
        if args.command == "restart":
            manifest = read_manifest(args.run_dir)       # what DIR holds; exit 2 if nothing resumable
            if _checkpoint_overrides(args):
                raise IsosimError("error: checkpoint intervals of a restart come from DIR/deck.toml; "
                                  "they cannot be changed without changing the deck")
            if manifest["kind"] in ("sweep", "invert"):
                return _restart_study(Path(args.run_dir), manifest, petsc_options, args.progress)
            if manifest["kind"] == "converge":
                from .studies.converge import resume_study
                return resume_study(Path(args.run_dir), manifest, petsc_options, args.progress)
            if manifest["kind"] == "merge":
                raise RestartError(f"error: {args.run_dir} holds a merge that did not finish; a merge is not "
                                   f"resumed: run 'isosim merge {args.run_dir} ... --force' again (it takes "
                                   "seconds; the slices are unchanged)")
            if manifest["kind"] == "fit-soret":
                from .fitting.command import resume_fit
                return resume_fit(Path(args.run_dir), manifest, petsc_options)
            from .runner import read_restart_meta
            ck = read_restart_meta(args.run_dir)
            options = list(ck.meta["petsc_options"]) + petsc_options
            from .solver.options import restart_solver
            comm = init_petsc(options, ck.meta["model"], restart_solver(args.run_dir, ck.meta["model"]))
            rank = comm.rank
            from .runner import restart_run
            summary = restart_run(args.run_dir, comm, petsc_options=options,
                                  progress_seconds=args.progress)
            _report(summary, Path(args.run_dir), rank)
            return EXIT_OK
    except IsosimError as exc:
        if rank == 0 and world_rank() == 0:
            print(str(exc), file=sys.stdout if exc.exit_code == EXIT_OK else sys.stderr, flush=True)
        return exc.exit_code
    return EXIT_USAGE


def _restart_study(run_dir, manifest, petsc_options, progress):
    """Resume the sweep or inversion in ``run_dir`` from its manifest: the same members, batches
    and PETSc options (plus any given now); only unfinished units are computed."""
    from .deck import validate
    from .studies import run_invert, run_sweep
    try:
        raw, path, kind = manifest["raw"], manifest["deck_path"], manifest["kind"]
        options = list(manifest["petsc_options"]) + list(petsc_options)
        base = validate(dict(raw), path)                 # before PETSc starts, like every command
    except (KeyError, TypeError) as exc:
        raise RestartError(f"error: {run_dir}/manifest.json lacks {exc}; the {manifest.get('kind')} cannot be "
                           "resumed") from None
    comm = init_petsc(options, base["model"], base["solver"])
    common = dict(petsc_options=options, progress_seconds=progress, resume=True)
    if kind == "sweep":
        summary = run_sweep(raw, path, run_dir, comm, vary=[(k, v) for k, v in manifest["vary"]],
                            samples=manifest["samples"], seed=manifest["seed"],
                            slice_=tuple(manifest["slice"]) if manifest["slice"] else None, **common)
    else:
        summary = run_invert(raw, path, run_dir, comm, target=tuple(manifest["target"]), param=manifest["param"],
                             bracket=tuple(manifest["bracket"]),
                             over=tuple(manifest["over"]) if manifest["over"] else None,
                             scan=manifest["scan"], tol=manifest["tol"], **common)
    _report_study(summary, run_dir, comm.rank)
    return EXIT_OK


def _report_study(summary, out, rank):
    if rank != 0:
        return
    for row in summary.get("solutions", []):
        print("[isosim] " + ", ".join(f"{k} = {v}" for k, v in row.items()))
    if "n_members" in summary:
        print(f"[isosim] {summary['n_members']} members in {summary['wall_time_s']:.1f} s on "
              f"{summary['ranks']} rank(s); wrote {out / 'summary.json'} and {out / 'results.h5'}", flush=True)
    else:
        print(f"[isosim] wrote {out / 'summary.json'}", flush=True)


def _report(summary, out, rank):
    if rank != 0:
        return
    recorder = model_spec(summary["model"]).recorder_class
    for i, m in enumerate(summary["members"]):
        tag = f"member {i}: " if len(summary["members"]) > 1 else ""
        for line in recorder.report_lines(m):
            print(f"[isosim] {tag}{line}")
    print(f"[isosim] wrote {out / 'summary.json'} and {out / 'results.h5'} "
          f"({summary['wall_time_s']:.1f} s on {summary['ranks']} rank(s))", flush=True)


if __name__ == "__main__":
    sys.exit(main())
