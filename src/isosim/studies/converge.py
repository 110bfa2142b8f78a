"""Convergence studies: ``isosim converge DECK --refine space|time|both --levels N``.

Each level is an ordinary run of the deck (``DIR/level<k>``, on the whole communicator) with
the grid refined and/or the time step reduced by ``--ratio`` from the level before. The
headline numbers of the levels give, per quantity, the error of each level against a
Richardson extrapolation (three or more levels) or the finest level, the observed order and
the extrapolated value: a table on rank 0, ``DIR/converge.json`` and ``DIR/converge.png``.

- space: ``cells`` x r per level; a stretched grain grid keeps its mapping (stretch^cells
  fixed, so every level resolves the same rim layer more finely; ``stretch = 1`` stays
  uniform). The time error is made negligible with a tight ``solver.rtol`` (``--rtol``).
- time: fixed steps (``-ts_adapt_type none``) of ``solver.initial_dt`` / r^k of the path
  (``--dt0``, default the deck's), outputs only at the end so that every step is whole; on
  one grid, so the spatial error is the same at every level and cancels in the differences.
- both: the two together (the observed order is the lower of the two).

The model-specific knowledge is the table :data:`STUDIES`; everything else is generic.
"""

import copy
import math
from pathlib import Path

import numpy as np

from ..deck import validate
from ..deck.load import apply_overrides, read_toml
from ..errors import EXIT_OK, AlreadyComplete, Checkpointed, DeckError, UsageError
from ..io.results import envelope, write_json
from ..logs import say
from ..registry import MODELS

#: Per model (its registry entry's ``converge``): the grid keys refined in space (``cells``,
#: optional ``stretch``; None: no grid), the headline results compared (dicts are compared
#: entry by entry), and the deck overrides that leave only the final output (so fixed steps
#: land on every output time).
STUDIES = {name: spec.converge for name, spec in MODELS.items()}
#: Relative change below which a quantity counts as converged to round-off (no order).
ROUNDOFF = 1000 * np.finfo(float).eps
#: The finest level of a time study may take at most this many fixed steps.
MAX_FIXED_STEPS = 10**6
#: More levels than this cannot be afforded at any ratio (2^20 times the first level's work).
MAX_LEVELS = 20
DEFAULT_RTOL = 1e-10


def _get(deck, key):
    for part in key.split("."):
        deck = deck[part]
    return deck


def plan(deck_path, overrides, refine, levels, ratio=2.0, dt0=None, rtol=None, petsc_options=()):
    """Check the request and build every level's resolved deck. Local: no MPI or PETSc needed
    (every rank builds the same plan before PETSc starts, so a mistake costs no start-up).

    Returns
    -------
    dict
        ``model``, ``decks`` (one per level), ``levels`` (what each refines: ``cells``,
        ``dt``, ``h``) and ``petsc_options`` (the study's own options).

    Raises
    ------
    UsageError, DeckError
        Anything wrong with the request (exit code 2, nothing run).
    """
    raw = read_toml(deck_path)
    problems = []
    apply_overrides(raw, overrides, problems)
    if problems:
        raise DeckError(deck_path, problems)
    base = validate(copy.deepcopy(raw), deck_path)
    model = base["model"]
    study = STUDIES[model]
    space, time = refine in ("space", "both"), refine in ("time", "both")
    if levels < 2:
        raise UsageError(f"error: --levels {levels}: a convergence study needs at least 2 levels "
                         "(3 or more for an observed order and a Richardson extrapolation)")
    if levels > MAX_LEVELS:
        raise UsageError(f"error: --levels {levels}: expected at most {MAX_LEVELS} (each level costs "
                         "the previous one times the ratio, or more)")
    if not 1.0 < ratio <= 16.0:
        raise UsageError(f"error: --ratio {ratio:g}: expected a refinement ratio above 1 and at most "
                         "16, e.g. 2")
    if space and study["cells"] is None:
        raise UsageError(f"error: --refine {refine}: the {model} model has no spatial grid (it is "
                         "integrated along the melt temperature); refine the time step with --refine time")
    for name, value in (("--dt0", dt0), ("--rtol", rtol)):
        if value is not None and not 0.0 < value < 1.0:
            raise UsageError(f"error: {name} {value:g}: expected a number between 0 and 1 "
                             "(a fraction of the path; a relative tolerance)")
    if dt0 is not None and not time:
        raise UsageError("error: --dt0 sets the fixed time step of --refine time or both; "
                         "a space study uses adaptive steps (see --rtol)")
    if rtol is not None and not refine == "space":
        raise UsageError("error: --rtol is the time tolerance of a space study; a time study "
                         "uses fixed steps (see --dt0)")
    clash = [o for o in ("-ts_dt", "-ts_adapt_type") if o in petsc_options]
    if time and clash:
        raise UsageError(f"error: {' '.join(clash)}: a time study sets the step of every level "
                         "itself (fixed steps of --dt0 / ratio^level); remove the option")
    rows, sets = [], []
    for k in range(levels):
        row, s = {"level": k}, []
        if space:
            cells = _get(base, study["cells"]) * ratio**k
            if abs(cells - round(cells)) > 1e-9 * cells:
                raise UsageError(f"error: --ratio {ratio:g}: {study['cells']} = "
                                 f"{_get(base, study['cells'])} x {ratio:g}^{k} is not a whole number "
                                 "of cells; choose an integer ratio")
            row["cells"] = int(round(cells))
            s.append(f"{study['cells']}={row['cells']}")
            if study["stretch"]:
                # same mapping of the cells on the radius: stretch^cells is kept
                stretch = _get(base, study["stretch"]) ** (1.0 / ratio**k)
                s.append(f"{study['stretch']}={stretch!r}")
            row["h"] = 1.0 / row["cells"]
        if time:
            row["dt"] = (base["solver"]["initial_dt"] if dt0 is None else dt0) / ratio**k
            s.append(f"solver.initial_dt={row['dt']!r}")
            s.extend(study["end_only"])
            row["h"] = row["dt"]
        else:
            tol = min(base["solver"]["rtol"], DEFAULT_RTOL) if rtol is None else rtol
            s += [f"solver.rtol={tol!r}", f"solver.atol={min(base['solver']['atol'], 1e-2 * tol)!r}"]
        rows.append(row)
        sets.append(s)
    if time and 1.0 / rows[-1]["dt"] > MAX_FIXED_STEPS:
        raise UsageError(f"error: the finest level would take {1.0 / rows[-1]['dt']:.3g} fixed steps "
                         f"(dt = {rows[0]['dt']:g} of the path at level 0, / {ratio:g}^{levels - 1}); "
                         f"expected at most {MAX_FIXED_STEPS:g}. Give a coarser --dt0, e.g. --dt0 0.0625")
    decks = []
    for k, s in enumerate(sets):
        level_raw = copy.deepcopy(raw)
        if space and study["chooser"]:
            # the levels set the grid: refine the one the chooser picked (level 0 is it)
            table, _, key = study["chooser"].rpartition(".")
            if isinstance(level_raw.get(table), dict):
                level_raw[table].pop(key, None)
        apply_overrides(level_raw, s, problems)
        try:
            if problems:     # a user's --set made a table of a key the study sets
                raise DeckError(deck_path, problems)
            decks.append(validate(level_raw, deck_path))
        except DeckError as exc:
            where = f" (in level {k} of the study, which sets {', '.join(s)})"
            raise DeckError(deck_path, [p + where for p in exc.problems]) from None
    return {"model": model, "refine": refine, "ratio": ratio, "decks": decks, "levels": rows,
            "petsc_options": ["-ts_adapt_type", "none"] if time else []}


def flatten(results, keys):
    """The compared numbers of a headline dict: ``{"Cm_ppm.Sr": ..., "Mm": ...}``."""
    out = {}
    for key in keys:
        value = results.get(key)
        if isinstance(value, dict):
            out.update({f"{key}.{k}": float(v) for k, v in value.items() if isinstance(v, (int, float))})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def analyse(values, h, ratio):
    """Errors, observed orders and the extrapolated value of one quantity over the levels.

    Parameters
    ----------
    values : sequence of float
        The quantity at each level, coarse to fine.
    h : sequence of float
        Cell width or step of each level (for the fitted slope).
    ratio : float
        Refinement ratio between consecutive levels.

    Returns
    -------
    dict
        ``values``; ``extrapolated`` q* = q_f + (q_f - q_c)/(r^p - 1), p the order observed
        on the three finest levels (``observed_order``), when they converge monotonically;
        else q_f; ``reference`` ("richardson", "finest" or "round-off"); ``errors`` |q_k - q*|;
        ``orders`` log(e_k/e_{k+1})/log r (None where an error is at round-off);
        ``fitted_order``: the least-squares slope of log e against log h.
    """
    q = np.asarray(values, dtype=float)
    # round-off relative to the finest level: a coarse level that blew up must not set the scale
    floor = ROUNDOFF * max(abs(q[-1]), 1e-300)
    d = np.diff(q)
    p, q_star, reference = None, q[-1], "finest"
    if abs(d[-1]) <= floor:
        reference = "round-off"
    elif len(q) >= 3 and np.isfinite(q[-3:]).all() and abs(d[-2]) > floor and d[-2] / d[-1] > 0:
        p = math.log(d[-2] / d[-1]) / math.log(ratio)
        if p > 0:
            q_star, reference = q[-1] + d[-1] / (ratio**p - 1.0), "richardson"
    e = np.abs(q - q_star)
    ok = np.isfinite(e) & (e > floor)
    orders = [math.log(e[k] / e[k + 1]) / math.log(ratio) if ok[k] and ok[k + 1] else None
              for k in range(len(q) - 1)]
    fitted = None
    if ok.sum() >= 2:
        fitted = float(np.polyfit(np.log(np.asarray(h)[ok]), np.log(e[ok]), 1)[0])
    nums = lambda a: [float(x) if np.isfinite(x) else None for x in a]
    return {"values": nums(q), "extrapolated": nums([q_star])[0], "reference": reference,
            "observed_order": p, "errors": nums(e), "orders": orders, "fitted_order": fitted}


def run_study(study, deck_path, out, comm, *, force=False, petsc_options=(), progress_seconds=10.0,
              job=None, resume=False):
    """Run every level of :func:`plan`'s study into ``out/level<k>`` and analyse. Collective.

    ``job`` (the arguments of :func:`plan`) goes into ``out/manifest.json`` before the first
    level, so that ``isosim restart OUT`` can plan the same study again; with ``resume`` the
    levels that finished are read back and a stopped level continues from its checkpoint.
    ``converge.json`` is written only when every level is done (``status: complete``).

    Returns the content of ``converge.json`` (on every rank)."""
    from petsc4py import PETSc

    from ..io.rundir import (
        RUN_FILES,
        is_complete,
        lock_run_dir,
        prepare_run_dir,
        unlock_run_dir,
        write_manifest,
    )
    from ..parallel import collective
    from ..runner import run_or_resume
    from ..solver.signals import StopRequest

    out = Path(out)

    def take():
        if resume:
            lock_run_dir(out)
            if is_complete(out, "converge"):
                raise AlreadyComplete(f"[isosim] the convergence study in {out} is complete (converge.json); "
                                      "nothing to do")
            return
        taken = [out / "converge.json"] + [out / f"level{k}" / f for k in range(len(study["decks"]))
                                           for f in RUN_FILES]
        taken = [str(p) for p in taken if p.exists()]
        if taken and not force:
            raise UsageError(f"error: {out} already holds a convergence study ({taken[0]}, ...); nothing "
                             "was overwritten. Use --force to replace it or --out for another directory.")
        prepare_run_dir(out, True)
        if (out / "converge.json").exists():
            (out / "converge.json").unlink()
        write_manifest(out, "converge", **(job or {}))

    collective(comm, take)
    # the study's fixed-step option sits beside the user's (plan refused clashing ones)
    opts = PETSc.Options()
    for name, value in zip(study["petsc_options"][::2], study["petsc_options"][1::2]):
        opts.setValue(name.lstrip("-"), value)
    level_options = list(petsc_options) + study["petsc_options"]
    log = say
    summaries = []
    stop = StopRequest().__enter__()      # a signal between two levels stops the study there
    try:
        for row, deck in zip(study["levels"], study["decks"]):
            if stop.signum:
                raise Checkpointed(f"[isosim] convergence study stopped on {stop.name} before level "
                                   f"{row['level']} ({len(summaries)} of {len(study['levels'])} levels done). "
                                   f"Continue with: isosim restart {out}")
            log(f"[isosim] level {row['level']}: " + ", ".join(
                f"{k} = {row[k]:g}" for k in ("cells", "dt") if k in row), flush=True)
            try:
                summaries.append(run_or_resume(deck, out / f"level{row['level']}", comm, resume=resume,
                                               petsc_options=level_options, progress_seconds=progress_seconds))
            except Checkpointed as exc:
                raise Checkpointed(f"[isosim] convergence study stopped in level {row['level']} "
                                   f"({len(summaries)} of {len(study['levels'])} levels done, this one "
                                   f"checkpointed). Continue with: isosim restart {out}") from exc
    finally:
        stop.__exit__(None, None, None)
        for name in study["petsc_options"][::2]:
            opts.delValue(name.lstrip("-"))
        if comm.rank == 0:
            unlock_run_dir(out)
    compare = STUDIES[study["model"]]["compare"]
    flat = [flatten(s["results"], compare) for s in summaries]
    names = [n for n in flat[0] if all(n in f for f in flat)]
    h = [row["h"] for row in study["levels"]]
    levels = [dict(row, dir=f"level{row['level']}", steps=s["steps"], wall_time_s=s["wall_time_s"])
              for row, s in zip(study["levels"], summaries)]
    result = {**envelope("converge", study["model"], ranks=comm.size), "deck": str(deck_path),
              "refine": study["refine"], "ratio": study["ratio"],
              "petsc_options": level_options, "levels": levels,
              "quantities": {n: analyse([f[n] for f in flat], h, study["ratio"]) for n in names}}

    def write():
        write_json(out / "converge.json", result)
        from ..plot.converge import plot_convergence
        return plot_convergence(result, out / "converge.png")

    png = collective(comm, write)
    if comm.rank == 0:
        print("\n".join(table(result)))
        print(f"[isosim] wrote {out / 'converge.json'}" + (f" and {png}" if png else
              " (no converge.png: matplotlib is not installed)"), flush=True)
    return result


def table(result):
    """The terminal report of a study (list of lines)."""
    what = {"space": "cells", "time": "dt", "both": "dt"}[result["refine"]]
    lines = [f"[isosim] convergence in {result['refine']} of {result['deck']}: {len(result['levels'])} "
             f"levels, ratio {result['ratio']:g}, {result['ranks']} rank(s)",
             f"{'quantity':<32} {'level':>5} {what:>10} {'value':>22} {'error':>10} {'order':>6}"]
    for name, a in result["quantities"].items():
        for k, lv in enumerate(result["levels"]):
            order = a["orders"][k - 1] if k else None
            lines.append(f"{name if k == 0 else '':<32} {k:>5} {lv.get(what, lv['h']):>10.4g} "
                         f"{_num(a['values'][k], '22.15g')} {_num(a['errors'][k], '10.2e')} "
                         f"{_num(order, '6.2f')}")
        note = {"finest": "finest level", "round-off": "converged to round-off"}.get(
            a["reference"]) or f"Richardson, p = {a['observed_order']:.3f}"
        lines.append(f"{'':<32} {'q*':>5} {'':>10} {_num(a['extrapolated'], '22.15g')}  ({note})")
    return lines


def _num(x, fmt):
    width = int(fmt.split(".")[0])
    return format(x, fmt) if x is not None else " " * (width - 1) + "-"


def converge_command(args, petsc_options):
    """``isosim converge``: check the request (no PETSc), then run it. Collective."""
    job = {"deck_path": str(Path(args.deck).resolve()), "set": list(args.set), "refine": args.refine,
           "levels": args.levels, "ratio": args.ratio, "dt0": args.dt0, "rtol": args.rtol,
           "petsc_options": list(petsc_options)}
    study = plan(args.deck, args.set, args.refine, args.levels, args.ratio, args.dt0, args.rtol,
                 petsc_options)
    from ..startup import init_petsc
    # PETSc first: modules that import petsc4py.PETSc (studies, runner, models) would make it
    # start without the pass-through options. They are checked against the finest level's
    # solver (the most steps).
    comm = init_petsc(petsc_options, study["model"], study["decks"][-1]["solver"])
    from .common import default_out
    out = Path(args.out) if args.out else default_out(args.deck, "converge")
    run_study(study, args.deck, out, comm, force=args.force, petsc_options=petsc_options,
              progress_seconds=args.progress, job=job)
    return EXIT_OK


def resume_study(out, manifest, petsc_options, progress_seconds):
    """``isosim restart OUT`` of a convergence study: plan it again from its manifest (the deck
    file must be unchanged: a level whose deck differs is run anew) and run what is missing."""
    options = list(manifest["petsc_options"]) + list(petsc_options)
    study = plan(manifest["deck_path"], manifest["set"], manifest["refine"], manifest["levels"],
                 manifest["ratio"], manifest["dt0"], manifest["rtol"], options)
    from ..startup import init_petsc
    comm = init_petsc(options, study["model"], study["decks"][-1]["solver"])
    run_study(study, manifest["deck_path"], out, comm, petsc_options=options, progress_seconds=progress_seconds,
              resume=True)
    return EXIT_OK
