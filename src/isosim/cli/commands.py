"""One handler per subcommand: check the request and the deck, start MPI and PETSc, call the
library with typed arguments, report.

Every handler takes the parsed arguments and the pass-through PETSc options and returns the
exit code; user mistakes are raised as :class:`~isosim.errors.IsosimError` (the caller
prints them once). The order is the same for every command that computes: the deck (and
every option) is validated *before* PETSc starts, so that a mistake costs no MPI start-up,
and PETSc starts *before* any module that imports ``petsc4py.PETSc`` is loaded, so that the
pass-through options are read (imports of the model classes go through the registry, on use).
"""

import sys
from pathlib import Path

from .. import api
from ..deck import MODELS, to_toml, validate
from ..deck.load import load_raw
from ..deck.schema import describe_schema
from ..deck.specs import member_count, parse_range, parse_target, parse_values
from ..errors import EXIT_OK, IsosimError, RestartError
from ..io.rundir import read_manifest
from ..io.tables import refuse_changed as refuse_changed_tables
from ..logs import say
from ..preflight import preflight
from ..registry import model_spec
from ..startup import init_petsc
from .parser import checkpoint_overrides


def check(args, petsc_options):
    """Validate; print the resolved deck, what the equilibrium fractionation means at the path's
    ends, the grid the run will use, and warnings for values minerals do not have (a unit
    mistake, most often)."""
    raw = load_raw(args.deck, args.set)          # as written: which grid keys the deck sets
    deck = validate(raw, args.deck)
    module = MODELS[deck["model"]]
    for line in getattr(module, "plausibility_warnings", lambda d: [])(deck):
        print(line, file=sys.stderr)
    if not args.quiet:
        print(f"# {args.deck}: valid ({deck['model']}); resolved deck:")
        for line in getattr(module, "equilibrium_lines", lambda d: [])(deck):
            print(f"# {line}")
        for line in getattr(module, "grid_lines", lambda d, r: [])(deck, raw):
            print(f"# {line}")
        print()
        print(to_toml(deck), end="")
    return EXIT_OK


def keys(args, petsc_options):
    if args.model not in MODELS:
        raise IsosimError(f"error: unknown model {args.model!r}; expected one of {', '.join(MODELS)}")
    print("\n".join(describe_schema(MODELS[args.model].SCHEMA)))
    return EXIT_OK


def plot(args, petsc_options):
    from ..plot import plot_run_dir          # matplotlib is optional: loaded only for this command
    for f in plot_run_dir(Path(args.run_dir), Path(args.out) if args.out else None):
        print(f"[isosim] wrote {f}")
    return EXIT_OK


def run(args, petsc_options):
    """``isosim run``: the Python API's :func:`isosim.api.run`, with the command's defaults."""
    out = Path(args.out) if args.out else Path("runs") / Path(args.deck).stem
    results = api.run(args.deck, set=args.set + checkpoint_overrides(args), out=out, petsc_options=petsc_options,
                      force=args.force, progress=args.progress, memory_check=not args.no_memory_check)
    report_run(results.summary, out)
    return EXIT_OK


def _study_deck(args, petsc_options):
    """The raw deck (``--set`` applied) and the validated base deck of a sweep or inversion,
    refused if the model has no such study. Before PETSc."""
    raw = load_raw(args.deck, args.set)
    base = validate(dict(raw), args.deck)        # the base deck alone must be valid
    if args.command not in model_spec(base["model"]).studies:
        raise IsosimError(f"error: isosim {args.command} is not available for {base['model']} decks yet "
                          f"({args.deck}); run the cases one by one with 'isosim run --set KEY=VALUE'")
    return raw, base


def _out(args, slice_=None):
    from ..studies.common import default_out
    out = Path(args.out) if args.out else default_out(args.deck, args.command)
    if slice_ and not args.out:
        out = out.with_name(f"{out.name}-{slice_[0]}of{slice_[1]}")
    return out


def sweep(args, petsc_options):
    from ..studies.slices import parse_slice
    slice_ = parse_slice(args.slice) if args.slice else None
    raw, base = _study_deck(args, petsc_options)
    try:
        vary = [parse_values(v) for v in (args.vary or base["sweep"]["vary"])]
    except ValueError as exc:
        raise IsosimError(f"error: {exc}") from None
    samples = args.samples if args.samples is not None else base["sweep"]["samples"]
    seed = args.seed if args.seed is not None else base["sweep"]["seed"]
    if not vary and not samples:
        raise IsosimError(f"error: nothing to sweep: give --vary or --samples, or a [sweep] table in {args.deck}")
    try:
        n = member_count(vary, samples)
    except ValueError as exc:
        raise IsosimError(f"error: {exc}") from None
    preflight(base, members=n, skip_memory=args.no_memory_check)
    comm = init_petsc(petsc_options, base["model"], base["solver"])
    from ..studies import run_sweep
    out = _out(args, slice_)
    summary = run_sweep(raw, args.deck, out, comm, vary=vary, samples=samples, seed=seed, slice_=slice_,
                        force=args.force, progress_seconds=args.progress, petsc_options=petsc_options)
    report_study(summary, out)
    return EXIT_OK


def invert(args, petsc_options):
    raw, base = _study_deck(args, petsc_options)
    inv = base["invert"]
    try:
        over_text = args.over or inv["over"]
        over = parse_values(over_text) if over_text else None
        target = parse_target(args.target or inv["target"])
        param = args.param or inv["param"]
        if not param:
            raise IsosimError("error: invert needs --param KEY (or invert.param in the deck)")
        bracket = parse_range(args.bracket or inv["bracket"], "--bracket")
    except ValueError as exc:
        raise IsosimError(f"error: {exc}") from None
    comm = init_petsc(petsc_options, base["model"], base["solver"])
    from ..studies import run_invert
    out = _out(args)
    summary = run_invert(raw, args.deck, out, comm, target=target, param=param, bracket=bracket, over=over,
                         scan=args.scan, tol=args.tol, force=args.force, progress_seconds=args.progress,
                         petsc_options=petsc_options)
    report_study(summary, out)
    return EXIT_OK


def merge(args, petsc_options):
    from ..studies.slices import merge_sweep, slice_dirs
    merge_sweep(Path(args.out), slice_dirs(args.out, args.dirs, args.pattern), force=args.force)
    return EXIT_OK


def converge(args, petsc_options):
    from ..studies.converge import converge_command
    return converge_command(args, petsc_options)


def fit_soret(args, petsc_options):
    from ..fitting.command import fit_soret_command
    return fit_soret_command(args, petsc_options)


def restart(args, petsc_options):
    """Resume whatever DIR holds (its manifest says what): a run, sweep, slice, inversion,
    convergence study or fit."""
    manifest = read_manifest(args.run_dir)       # exit 2 if there is nothing resumable
    if checkpoint_overrides(args):
        raise IsosimError("error: checkpoint intervals of a restart come from DIR/deck.toml; "
                          "they cannot be changed without changing the deck")
    run_dir = Path(args.run_dir)
    kind = manifest["kind"]
    if kind in ("sweep", "invert"):
        return _restart_study(run_dir, manifest, petsc_options, args.progress)
    if kind == "converge":
        from ..studies.converge import resume_study
        return resume_study(run_dir, manifest, petsc_options, args.progress)
    if kind == "fit-soret":
        from ..fitting.command import resume_fit
        return resume_fit(run_dir, manifest, petsc_options)
    if kind == "merge":
        raise RestartError(f"error: {run_dir} holds a merge that did not finish; a merge is not resumed: run "
                           f"'isosim merge {run_dir} ... --force' again (it takes seconds; the slices are unchanged)")
    from ..runner import read_restart_meta
    from ..solver.options import restart_solver
    ck = read_restart_meta(run_dir)
    options = list(ck.meta["petsc_options"]) + list(petsc_options)
    comm = init_petsc(options, ck.meta["model"], restart_solver(run_dir, ck.meta["model"]))
    from ..runner import restart_run
    summary = restart_run(run_dir, comm, petsc_options=options, progress_seconds=args.progress)
    report_run(summary, run_dir)
    return EXIT_OK


def _restart_study(run_dir, manifest, petsc_options, progress):
    """Resume the sweep or inversion in ``run_dir`` from its manifest: the same members, batches
    and PETSc options (plus any given now); only unfinished units are computed."""
    try:
        raw, path, kind = manifest["raw"], manifest["deck_path"], manifest["kind"]
        options = list(manifest["petsc_options"]) + list(petsc_options)
        base = validate(dict(raw), path)                 # before PETSc starts, like every command
        refuse_changed_tables(run_dir, base, kind)       # a large table's CSV must be the one it began with
        common = dict(petsc_options=options, progress_seconds=progress, resume=True)
        if kind == "sweep":
            call = dict(vary=[(k, v) for k, v in manifest["vary"]], samples=manifest["samples"],
                        seed=manifest["seed"], slice_=tuple(manifest["slice"]) if manifest["slice"] else None)
        else:
            call = dict(target=tuple(manifest["target"]), param=manifest["param"], bracket=tuple(manifest["bracket"]),
                        over=tuple(manifest["over"]) if manifest["over"] else None, scan=manifest["scan"],
                        tol=manifest["tol"])
    except (KeyError, TypeError) as exc:
        raise RestartError(f"error: {run_dir}/manifest.json lacks {exc}; the {manifest.get('kind')} cannot be "
                           "resumed") from None
    comm = init_petsc(options, base["model"], base["solver"])
    from ..studies import run_invert, run_sweep
    summary = (run_sweep if kind == "sweep" else run_invert)(raw, path, run_dir, comm, **call, **common)
    report_study(summary, run_dir)
    return EXIT_OK


# ------------------------------------------------------------------------------ reports
def report_run(summary, out):
    """The lines a finished run prints (rank 0, through the logger)."""
    recorder = model_spec(summary["model"]).recorder_class
    for i, m in enumerate(summary["members"]):
        tag = f"member {i}: " if len(summary["members"]) > 1 else ""
        for line in recorder.report_lines(m):
            say(f"[isosim] {tag}{line}")
    say(f"[isosim] wrote {out / 'summary.json'} and {out / 'results.h5'} "
        f"({summary['wall_time_s']:.1f} s on {summary['ranks']} rank(s))")


def report_study(summary, out):
    """The lines a finished sweep or inversion prints."""
    for row in summary.get("solutions", []):
        say("[isosim] " + ", ".join(f"{k} = {v}" for k, v in row.items()))
    if "n_members" in summary:
        say(f"[isosim] {summary['n_members']} members in {summary['wall_time_s']:.1f} s on "
            f"{summary['ranks']} rank(s); wrote {out / 'summary.json'} and {out / 'results.h5'}")
    else:
        say(f"[isosim] wrote {out / 'summary.json'}")


#: subcommand -> handler
HANDLERS = {"check": check, "keys": keys, "plot": plot, "run": run, "restart": restart, "sweep": sweep,
            "invert": invert, "merge": merge, "converge": converge, "fit-soret": fit_soret}
