"""Studies built on ensembles: ``isosim sweep`` and ``isosim invert``. Collective over ``comm``.

Outputs (docs/studies.md): ``DIR/summary.json`` (resolved base deck, version, ranks, wall time,
and every member's parameters and headline results) and ``DIR/results.h5``.
"""

import contextlib
import time
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .deck import to_toml, validate
from .deck.specs import parse_range, parse_target  # noqa: F401  (one parser for decks and the command line)
from .ensemble import expand, member_labels, solve
from .errors import AlreadyComplete, Checkpointed, CheckpointIOError, Stopped, UsageError
from .io.atomic import atomic_path, write_text
from .io.distributed import SEAL_BYTES, seal_file
from .io.journal import UnitJournal
from .io.results import envelope, write_summary
from .io.rundir import (is_complete, lock_run_dir, prepare_run_dir, remove_stale_temporaries, unlock_run_dir,
                        write_manifest)
from .parallel import collective
from .registry import model_spec
from .rootfind import brackets, illinois_step
from .solver.signals import StopRequest
from .slices import sweep_digest, take_slice
from .solver.stages import stage

def h5_name(key):
    """A result key as an HDF5 dataset name: '/' (as in 87Sr/86Sr) would make a group."""
    return key.replace("/", "_")


def _recorder(model):
    return model_spec(model).recorder_class


def _write_ensemble(run_dir, base, params, headlines, series, extra_summary, wall, comm_size):
    rec = _recorder(base["model"])
    keys = list(params)
    sliced = extra_summary.get("slice")
    # a slice's members keep their index in the whole sweep (isosim merge checks them)
    members = []
    for i, h in enumerate(headlines):
        m = {"member_index": sliced["first_member"] + i} if sliced else {}
        m["params"] = {k: params[k][i] for k in keys}
        members.append(dict(m, **h))
    summary = {
        **envelope("sweep", base["model"], base.get("title", ""), ranks=comm_size, wall_time_s=wall),
        "varied": keys, "n_members": len(members), **extra_summary,
        "members": members, "deck": base,
    }
    flat = [rec.flat(h) for h in headlines]
    result_keys = list(dict.fromkeys(k for f in flat for k in f))
    try:
        with atomic_path(run_dir / "results.h5") as tmp:
            with h5py.File(tmp, "w", userblock_size=SEAL_BYTES) as h5:
                h5.attrs["isosim_version"] = __version__
                h5.attrs["model"] = base["model"]
                h5.attrs["deck"] = to_toml(base)
                h5.attrs["varied"] = keys
                g = h5.create_group("members")
                g.attrs["description"] = "one row per member: varied parameters and final results"
                for k in keys:
                    ds = g.create_dataset(f"params/{k}", data=np.asarray(params[k], dtype=float))
                    ds.attrs["units"] = _unit_of(base, k)
                    ds.attrs["description"] = f"value of deck key {k} in each member"
                for k in result_keys:
                    vals = [f.get(k) for f in flat]
                    ds = g.create_dataset(h5_name(k), data=np.array([np.nan if v is None else v for v in vals], dtype=float))
                    ds.attrs["units"] = rec.unit(k)
                    ds.attrs["description"] = f"final {k} of each member"
                    ds.attrs["key"] = k
                s = h5.create_group("series")
                s.attrs["description"] = ("per member, exact values at its output times, padded with "
                                          "NaN [member, time]")
                n = max(len(x["tau"]) for x in series)
                for k in series[0]:
                    arr = np.full((len(series), n), np.nan)
                    for i, x in enumerate(series):
                        arr[i, :len(x[k])] = x[k]
                    ds = s.create_dataset(h5_name(k), data=arr)
                    ds.attrs["units"] = rec.unit(k)
                    ds.attrs["description"] = f"{k} of each member at its output times [member, time]"
                    ds.attrs["key"] = k
                if sliced:
                    sl = h5.create_group("slice")
                    sl.attrs["description"] = ("this is one slice of a sweep (isosim sweep --slice K/N); "
                                               "isosim merge joins the slices")
                    for name, value in sliced.items():
                        sl.attrs[name] = value
                    sl.attrs["sweep_digest"] = extra_summary["sweep_digest"]
                    sl.create_dataset("member_index", data=np.arange(sliced["first_member"], sliced["stop_member"]))
            seal_file(tmp)
        write_summary(run_dir, summary)
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write results in {run_dir}: {exc}") from None
    return summary


def run_sweep(raw, path, run_dir, comm, *, vary=(), samples=0, seed=0, slice_=None, force=False,
              progress_seconds=10.0, log=print, petsc_options=(), resume=False):
    """``isosim sweep``: expand, solve and write one summary for every member. Collective.

    ``slice_ = (K, N)`` runs only the K-th of N contiguous slices of the members (see
    :mod:`isosim.slices`); the whole sweep is expanded first, so the slice's members and
    their global indices are the direct sweep's.

    Finished units (batches) are kept in ``run_dir/units`` as they complete; a stop signal
    ends the sweep with :class:`~isosim.errors.Checkpointed` (exit 75) once they are kept,
    and ``resume=True`` (``isosim restart``, from the manifest) computes only the rest.
    """
    from .deck.specs import decode_values, member_count
    from .streaming import is_streamed, run_sweep_streamed
    vary = [(k, decode_values(v)) for k, v in vary]       # a manifest's spaced lists (isosim restart)
    if is_streamed(member_count(vary, samples), run_dir, resume):   # > 10^5 members: never all at once
        return run_sweep_streamed(raw, path, run_dir, comm, vary=vary, samples=samples, seed=seed, slice_=slice_,
                                  force=force, progress_seconds=progress_seconds, log=log,
                                  petsc_options=petsc_options, resume=resume)
    t0 = time.monotonic()
    with stage("setup"):            # -log_view: members' validation, then integration and output
        decks, params = expand(raw, path, vary, samples, seed, comm=comm)
    base = validate(dict(raw), path)
    extra = {"samples": samples, "seed": seed} if samples else {}
    extra["sweep_digest"] = sweep_digest(base, vary, samples, seed)
    extra["petsc_options"] = list(petsc_options)
    what = f"sweep of {len(decks)} member(s)"
    if slice_:
        # every rank has the same decks, so every rank raises the same error, or none
        decks, params, extra["slice"] = take_slice(decks, params, slice_, path)
        sl = extra["slice"]
        what = (f"slice {sl['index']}/{sl['count']} of a sweep of {sl['total_members']} members: "
                f"members {sl['first_member']} to {sl['stop_member'] - 1}")
    job = {"raw": raw, "deck_path": str(path), "vary": [[k, list(v)] for k, v in vary], "samples": samples,
           "seed": seed, "slice": list(slice_) if slice_ else None, "petsc_options": list(petsc_options),
           "sweep_digest": extra["sweep_digest"], "n_members": len(decks)}
    run_dir = open_study_dir(run_dir, comm, "sweep", job, base, force=force, resume=resume, log=log)
    try:
        if comm.rank == 0:
            log(f"[isosim] {what} over {', '.join(params) or 'nothing'}", flush=True)
        with stage("integrate"), stoppable(run_dir, comm, len(decks)) as stop:
            first = extra["slice"]["first_member"] if slice_ else 0
            headlines, series = solve(decks, comm, labels=member_labels(params, first),
                                      progress_seconds=progress_seconds, log=log, journal=UnitJournal(run_dir),
                                      stop=stop)
        with stage("output"):
            return collective(comm, lambda: _write_ensemble(run_dir, base, params, headlines, series, extra,
                                                            time.monotonic() - t0, comm.size))
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)


def open_study_dir(run_dir, comm, kind, job, base, *, force, resume, log=print):
    """Take ``run_dir`` for a study (locked for this command). A new study: refuse an earlier
    one without ``force``, write deck.toml and the manifest ``job`` before any work. A resumed
    one (``resume``): only the lock; a finished study is not redone (AlreadyComplete, exit 0).
    Collective."""
    def take():
        if not resume:
            prepare_run_dir(run_dir, force)
            write_text(Path(run_dir) / "deck.toml", to_toml(base))
            write_manifest(run_dir, kind, **job)
            return []
        lock_run_dir(run_dir)
        if is_complete(run_dir):
            raise AlreadyComplete(f"[isosim] the {kind} in {run_dir} is complete (summary.json); nothing to do")
        return remove_stale_temporaries(run_dir)
    removed = collective(comm, take)
    if removed and comm.rank == 0:
        log(f"[isosim] removed {len(removed)} temporary file(s) left by interrupted writes")
    return Path(run_dir)


@contextlib.contextmanager
def stoppable(run_dir, comm, n_members):
    """SIGTERM, SIGUSR1 and SIGINT stop the study once its finished units are kept: the
    :class:`~isosim.errors.Stopped` of the integration becomes the user's Checkpointed (exit
    75) saying what was kept and how to continue. Collective."""
    with StopRequest() as stop:
        try:
            yield stop
        except Stopped as exc:
            kept = collective(comm, lambda: UnitJournal(run_dir).count_members())
            sig = getattr(exc, "signal_name", "") or stop.name or "a signal"
            raise Checkpointed(f"[isosim] stopped on {sig}: {kept} of {n_members} members are finished and kept "
                               f"in {Path(run_dir) / 'units'}. Continue with: isosim restart {run_dir}") from None


# ------------------------------------------------------------------------------ inversion
def run_invert(raw, path, run_dir, comm, *, target, param, bracket, over=None, scan=11,
               tol=1e-4, max_iter=40, force=False, progress_seconds=10.0, log=print, petsc_options=(),
               resume=False):
    """``isosim invert``: the value of ``param`` in ``bracket`` giving ``target`` (key, value),
    for each value of the ``over`` parameter (key, values) if given.

    A scan of ``scan`` points over the bracket (one batched ensemble with every ``over``
    value) finds the sign change of result - target; Illinois regula falsi then refines
    every root at once, one batched ensemble per iteration, until |result - target| < tol or
    the bracket is narrower than 1e-9 of its start.
    """
    t0 = time.monotonic()
    tkey, tval = target
    base = validate(dict(raw), path)
    rec = _recorder(base["model"])
    over_key, over_vals = over if over else (None, [None])
    job = {"raw": raw, "deck_path": str(path), "target": [tkey, tval], "param": param, "bracket": list(bracket),
           "over": [over_key, list(over_vals)] if over else None, "scan": scan, "tol": tol,
           "petsc_options": list(petsc_options)}
    run_dir = open_study_dir(run_dir, comm, "invert", job, base, force=force, resume=resume, log=log)
    say = log if comm.rank == 0 else (lambda *a, **k: None)
    journal = UnitJournal(run_dir)
    calls = [0]

    def evaluate(points):
        """points: list of (over value, param value) -> residuals (result - target). Each call's
        units are kept under its call number: a resumed inversion replays the kept ones (the
        iteration is deterministic), so it ends where the uninterrupted one does."""
        extra = [{param: p, **({over_key: o} if over_key else {})} for o, p in points]
        decks, params = expand(raw, path, extra=extra, comm=comm)
        calls[0] += 1
        t_eval = time.monotonic()
        with stoppable(run_dir, comm, len(decks)) as stop:
            heads, _ = solve(decks, comm, labels=member_labels(params), progress_seconds=progress_seconds,
                             log=lambda *a, **k: None, journal=journal.with_prefix(f"e{calls[0]:03d}-"), stop=stop)
        heads = comm.bcast(heads, root=0)
        if progress_seconds > 0:
            took = time.monotonic() - t_eval
            say(f"[isosim] evaluation {calls[0]}: {len(decks)} members in {took:.1f} s "
                f"({len(decks) / max(took, 1e-9):.3g} members/s); {time.monotonic() - t0:.0f} s elapsed "
                f"(each iteration refines every unconverged root once; at most {max_iter})", flush=True)
        flat = [rec.flat(h) for h in heads]
        if tkey not in flat[0]:
            raise UsageError(f"error: --target {tkey}: not a result of this model; expected one of "
                             f"{', '.join(flat[0])}")
        return np.array([f[tkey] for f in flat]) - tval

    lo, hi = bracket
    grid = np.linspace(lo, hi, scan)
    res = evaluate([(o, p) for o in over_vals for p in grid]).reshape(len(over_vals), scan)
    say(f"[isosim] scan: {len(over_vals) * scan} members over {param} in [{lo:g}, {hi:g}]", flush=True)
    roots = brackets(grid, res)
    width0 = hi - lo
    step = lambda idx, xs: evaluate([(over_vals[i], xv) for i, xv in zip(idx, xs)])
    while roots.iterations < max_iter and illinois_step(roots, step, tol, 1e-9 * width0):
        say(f"[isosim] iteration {roots.iterations}: max |{tkey} - target| = "
            f"{np.nanmax(np.abs(roots.fx[roots.found])):.2e}", flush=True)
    a, b, x, fx, found, iters = roots.a, roots.b, roots.x, roots.fx, roots.found, roots.iterations

    rows = []
    for i, o in enumerate(over_vals):
        row = {param: float(x[i]) if found[i] else None,
               "bracket": [float(a[i]), float(b[i])] if found[i] else None,
               "residual": float(fx[i]) if found[i] else None,
               "found": bool(found[i])}
        if over_key:
            row = {over_key: o, **row}
        if not found[i]:
            row["note"] = (f"{tkey} - target does not change sign over {param} in [{lo:g}, {hi:g}] "
                           f"(from {res[i, 0]:+.4g} to {res[i, -1]:+.4g}); widen --bracket")
        rows.append(row)

    def write():
        summary = {**envelope("invert", base["model"], base.get("title", ""), ranks=comm.size,
                              wall_time_s=time.monotonic() - t0),
                   "target": {tkey: tval}, "param": param, "over": over_key, "bracket": [lo, hi],
                   "tolerance": tol, "iterations": iters, "solutions": rows,
                   "scan": {"grid": grid.tolist(), "residual": res.tolist()}, "petsc_options": list(petsc_options),
                   "deck": base}
        with atomic_path(run_dir / "results.h5") as tmp:
            with h5py.File(tmp, "w", userblock_size=SEAL_BYTES) as h5:
                h5.attrs["isosim_version"] = __version__
                h5.attrs["kind"] = "inversion"
                h5.attrs["deck"] = to_toml(base)
                h5.attrs["param"] = param
                h5.attrs["target"] = f"{tkey}={tval}"
                unit_p = _unit_of(base, param)
                tunit = rec.unit(tkey)
                datasets = [("solution", x, unit_p, f"{param} reproducing {tkey} = {tval:g}, per --over value"),
                            ("bracket", np.stack([a, b], axis=1), unit_p, "final root bracket [over value, (low, high)]"),
                            ("residual", fx, tunit, f"{tkey} - target at the solution"),
                            ("scan_grid", grid, unit_p, f"{param} values of the initial scan"),
                            ("scan_residual", res, tunit, f"{tkey} - target over the scan [over value, scan point]")]
                if over_key:
                    h5.attrs["over"] = over_key
                    datasets.append(("over_values", np.asarray(over_vals, dtype=float), _unit_of(base, over_key),
                                     f"values of {over_key}"))
                for name, data, unit, doc in datasets:
                    ds = h5.create_dataset(name, data=data)
                    ds.attrs["units"] = unit
                    ds.attrs["description"] = doc
            seal_file(tmp)
        # last: its presence (status complete) marks a finished inversion
        write_summary(run_dir, summary)
        return summary

    try:
        return collective(comm, write)
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)


def _unit_of(deck, key):
    """The unit of a deck key, from its schema (empty if none)."""
    from .deck import MODELS
    from .deck.load import split_key
    from .deck.schema import Field, lookup
    try:
        parts = split_key(key)
    except ValueError:
        return ""
    spec = lookup(MODELS[deck["model"]].SCHEMA, parts)
    return spec.unit if isinstance(spec, Field) else ""


def default_out(deck_path, kind):
    return Path("runs") / f"{Path(deck_path).stem}-{kind}"
