"""Sweeps too large to hold in memory: more than :data:`STREAM_MEMBERS` members (issue 17).

An ordinary sweep (:func:`isosim.studies.run_sweep`) builds and validates every member deck
before the first step, sorts all members by stiffness into batches, keeps every member's
results in memory and writes one summary.json entry per member. At 10^7 members that is
an hour of validation, gigabytes of decks and a summary.json of gigabytes. Above
:data:`STREAM_MEMBERS` members the sweep is *streamed* instead:

- **Members are a recipe, not a list** (:class:`~isosim.studies.ensemble.Plan`): member ``i``'s values come from the
  ``--vary`` axes (``np.unravel_index``, the order of ``itertools.product``) and the Monte
  Carlo draws, the same values and order as the ordinary sweep; ``log:``/``lin:`` lists
  of more than :data:`isosim.deck.specs.SPACED_AT` values are never Python lists
  (:class:`~isosim.deck.specs.Spaced`), and the manifest and sweep digest hold their recipe.
- **Validation**: the base deck in full; every varied value against its key's field rules
  (type, bounds, finiteness; vectorised: the extremes of a spaced axis or of the draws); and
  in full (cross-field rules included) the first and last member, the members holding
  each varied key's smallest and largest value and the corners of the ``--vary`` grid,
  before anything runs. Then, window by window,
  member decks are the resolved base deck with the varied values set (each checked by its
  field's rule), and *representative* members of the window (first, last, every
  eighth of the window, each varied key's extremes) are validated in full and must
  equal their patched deck; if one differs (a varied key that other resolved values depend
  on, a table file), every member of the sweep is validated in full from then on (slower,
  still streamed). Cross-field rules are thus checked on representatives, not on every
  member: a member breaking one that no representative breaks is integrated as given.
  (:class:`~isosim.studies.ensemble.Decks`: ordinary sweeps build their members the same way.)
- **Windows**: consecutive runs of :data:`WINDOW_MEMBERS` members (rounded up to whole
  batches) are expanded, grouped, sorted by stiffness and cut into batches exactly as an
  ordinary sweep does with all its members; so a sweep of at most one window has the
  ordinary sweep's batches, and a larger one sorts within windows (a ``log:`` or ``lin:``
  axis is in stiffness order already). Each window's batches are dealt over the ranks and
  kept in ``DIR/units`` as they finish (stop and ``isosim restart`` as for any sweep); only
  one window's decks exist at a time.
- **Results are streamed out**: at the end, results.h5 is written window by window from the
  kept units (series chunked and compressed), and summary.json is compact: no per-member
  list (``"members_in": "results.h5"``), but the count, the varied keys' ranges and each
  result's min/max/mean/non-finite count.

Memory: the recipe (8 bytes per member and varied key), one window of decks, and on rank 0
the unit list (8 bytes per member): measured RSS below 400 MB for 10^7 members (README of
the issue-17 test, tests/test_large_sweeps.py). Collective over ``comm`` where it says so.
"""

import math
import os
import time
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..deck import to_toml, validate
from ..deck.specs import Spaced, encode_values
from ..errors import (
    CheckpointIOError,
    DeckError,
    IsosimError,
    SolverFailure,
    Stopped,
    UsageError,
)
from ..logs import say
from .ensemble import Decks, Plan, _label, _numbers

#: Sweeps of more members than this are streamed (ISOSIM_STREAM_MEMBERS overrides it, for tests).
STREAM_MEMBERS = 100_000
#: Members expanded, sorted and batched together (rounded up to whole batches).
WINDOW_MEMBERS = 4096


def stream_threshold():
    text = os.environ.get("ISOSIM_STREAM_MEMBERS", "")
    return int(text) if text.isdigit() else STREAM_MEMBERS


def window_members():
    """:data:`WINDOW_MEMBERS`, or ISOSIM_STREAM_WINDOW (tests: several windows in a small sweep)."""
    text = os.environ.get("ISOSIM_STREAM_WINDOW", "")
    return int(text) if text.isdigit() and int(text) > 0 else WINDOW_MEMBERS


def _manifest(run_dir):
    import json
    try:
        got = json.loads((Path(run_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return got if isinstance(got, dict) else {}


def is_streamed(n_members, run_dir=None, resume=False):
    """Whether a sweep of ``n_members`` is streamed; a resumed sweep is what its manifest says."""
    if resume and run_dir is not None:
        return bool(_manifest(run_dir).get("streamed"))
    return n_members > stream_threshold()


# ------------------------------------------------------------------------------ members
# Plan (the members as a recipe) and Decks (patched member decks) are ensemble.expand's, so
# that ordinary and streamed sweeps build and check their members one way.
class _Labels:
    """Member labels for messages (as :func:`isosim.ensemble.member_labels`), made on demand."""

    def __init__(self, plan):
        self.plan = plan

    def __getitem__(self, i):
        return _label(i, self.plan.assignments([i])[0])


def window_decks(decks_of, lo, hi):
    """{member index: resolved deck} of members ``lo`` to ``hi - 1`` of a streamed sweep
    (``decks_of``: its :class:`~isosim.studies.ensemble.Decks`); DeckError if invalid.
    Patched decks while they stay patchable, else every member validated in full."""
    idx = np.arange(lo, hi)
    assignments = decks_of.plan.assignments(idx)
    decks, problems = decks_of.patch(idx, assignments)
    if problems:
        raise DeckError(decks_of.path, problems)
    if decks is not None:
        return decks
    decks, problems = {}, []
    for i, a in zip(idx.tolist(), assignments):
        d, p = decks_of.full(i, a)
        if p:
            problems.append(p)
            if len(problems) >= 10:
                break
        decks[i] = d
    if problems:
        raise DeckError(decks_of.path, problems)
    return decks


# ------------------------------------------------------------------------------ progress
class StreamProgress:
    """Progress lines of a streamed sweep on rank 0: the first when the first batch is done,
    then every ``every`` seconds (none if ``every`` <= 0). Rank 0 counts its own batches as
    they finish and every rank's at the end of each window; time left is the members left
    over the measured rate of rank 0 times the ranks ('?' before 2 s of measurement)."""

    def __init__(self, total, every, say, size):
        self.total, self.every, self.say, self.size = total, every, say, size
        self.synced = 0         # members finished (all ranks) as of the last window's end
        self.window_own = 0     # members rank 0 finished in the current window
        self.mine = 0           # members rank 0 integrated in this command
        self.t0 = self.last = time.monotonic()
        self.first = True

    def kept(self, n):
        self.synced += n

    def sync(self, done):
        self.synced, self.window_own = done, 0

    def add(self, n, own=0):
        self.window_own += n
        self.mine += own
        now = time.monotonic()
        if self.every <= 0 or not (self.first or now - self.last >= self.every):
            return
        self.first, self.last = False, now
        elapsed = now - self.t0
        done = self.synced + self.window_own
        line = f"[isosim] {done:,}/{self.total:,} members done"
        if self.size > 1:
            line += " (rank 0's batches of the current window counted)"
        if elapsed >= 2.0 and self.mine:
            rate = self.mine / elapsed * self.size
            left = max(self.total - self.synced - self.window_own * self.size, 0)
            line += f", {rate:.3g} members/s, {_clock(elapsed)} elapsed, ~{_clock(left / rate)} left"
        else:
            line += f", {_clock(elapsed)} elapsed, time left ? (measuring)"
        self.say(line, flush=True)


def _clock(seconds):
    from .ensemble import _clock as clock
    return clock(seconds)


# ------------------------------------------------------------------------------ solving
def _units(decks, problem_cls, w):
    """[(members, name)] of a window: grouped, sorted and batched as ensemble.solve does."""
    from .ensemble import _batches, group_key
    groups = {}
    for i, d in decks.items():
        groups.setdefault(group_key(d), []).append(i)
    units = []
    for gi, idx in enumerate(groups.values()):
        mode = decks[idx[0]]["ensemble"]["mode"]
        us = _batches(decks, idx, problem_cls) if mode == "batch" else [[i] for i in idx]
        units += [(u, f"w{w:06d}-g{gi}-{k:06d}") for k, u in enumerate(us)]
    return units


def solve_streamed(plan, decks_of, lo, hi, comm, *, window, progress, journal, stop, log, progress_seconds):
    """Integrate members ``lo`` to ``hi - 1`` window by window, keeping every unit in
    ``journal``; return rank 0's list of (window's) [(unit name, member indices)]. Collective."""
    from mpi4py import MPI

    from ..models import REGISTRY
    from .ensemble import (
        _each_on_all_ranks,
        _integrate,
        _keep,
        _kept_units,
        _naming,
        _results,
        _stop_requested,
        deal,
    )

    problem_cls, recorder_cls = REGISTRY[decks_of.base["model"]]
    say = log
    labels = _Labels(plan)
    present = journal.finished() if comm.rank == 0 else set()
    index = []
    for w, start in enumerate(range(lo, hi, window)):
        if _stop_requested(stop, comm):
            raise Stopped("stopped between batches", stop.name if stop else "")
        decks = window_decks(decks_of, start, min(start + window, hi))
        units = _units(decks, problem_cls, w)
        if comm.rank == 0:
            index.append([(name, np.asarray(u, dtype=np.int64)) for u, name in units])
        names = [name for _, name in units]
        kept = {}
        if comm.size > 1 or any(n in present for n in names):
            kept = _kept_units(journal, [u for u, _ in units], names, comm)
        progress.kept(sum(len(units[k][0]) for k in kept))
        work = [units[k] for k in range(len(units)) if k not in kept]
        if len(units) >= comm.size:
            mine = [work[k] for k in deal(len(work), comm.size, comm.rank)]
            error, unit = None, []
            try:
                for unit, name in mine:
                    if stop is not None and stop.signum:
                        raise Stopped("stopped between batches", stop.name)
                    _, rec = _integrate([decks[i] for i in unit], MPI.COMM_SELF, problem_cls, recorder_cls, 0,
                                        say, stop=stop)
                    _keep(journal, name, _results(unit, rec, rec.end_profiles()))
                    progress.add(len(unit), len(unit))
            except SolverFailure as exc:
                error = _naming(exc, [labels[i] for i in unit])
            except IsosimError as exc:
                error = exc
            errors = [e for e in (comm.allgather(error) if comm.size > 1 else [error]) if e is not None]
            if errors:
                raise next((e for e in errors if not isinstance(e, Stopped)), errors[0])
        else:
            _each_on_all_ranks(work, decks, labels, comm, problem_cls, recorder_cls, progress_seconds, log,
                               journal=journal, stop=stop, progress=progress)
        progress.sync(min(start + window, hi) - lo)
        del decks
    return index


# ------------------------------------------------------------------------------ output
def write_streamed(run_dir, base, plan, lo, hi, index, journal, extra, wall, comm_size, window):
    """results.h5 from the kept units, window by window, and the compact summary.json (rank 0)."""
    from ..io.atomic import atomic_path
    from ..io.distributed import SEAL_BYTES, seal_file
    from ..io.journal import pad_stack, split_profiles
    from ..io.layout import label_ensemble
    from ..io.results import envelope, write_summary
    from ..io.tables import write_tables
    from .common import h5_name, recorder_of, unit_of
    from .output import write_end_profiles, write_slice_group

    rec = recorder_of(base["model"])
    n = hi - lo
    sliced = extra.get("slice")
    stats = {}
    try:
        with atomic_path(Path(run_dir) / "results.h5") as tmp:
            with h5py.File(tmp, "w", userblock_size=SEAL_BYTES) as h5:
                h5.attrs["isosim_version"] = __version__
                h5.attrs["model"] = base["model"]
                h5.attrs["deck"] = to_toml(base)
                write_tables(h5, base)          # a large table's rows, once (the deck refers to them)
                h5.attrs["varied"] = plan.keys
                h5.attrs["streamed"] = ("more members than the streaming threshold: members written window by "
                                        "window, series chunked and compressed")
                g = h5.create_group("members")
                g.attrs["description"] = "one row per member: varied parameters and final results"
                for k in plan.keys:
                    ds = g.create_dataset(f"params/{k}", shape=(n,), dtype=float)
                    ds.attrs["units"] = unit_of(base, k)
                    ds.attrs["description"] = f"value of deck key {k} in each member"
                    for a in range(lo, hi, 1 << 20):
                        b = min(a + (1 << 20), hi)
                        ds[a - lo:b - lo] = np.asarray(plan.columns(np.arange(a, b))[k], dtype=float)
                s = h5.create_group("series")
                s.attrs["description"] = ("per member, exact values at its output times, padded with "
                                          "NaN [member, time]")
                results, series, width = {}, {}, 0
                row = lo
                for units in index:
                    got = []
                    for name, members in units:
                        part = journal.load(name, members.tolist())
                        if part is None:
                            raise CheckpointIOError(f"error: {journal.path(name)} is missing or damaged; run "
                                                    f"'isosim restart {run_dir}' to compute it again")
                        got += part
                    got.sort(key=lambda r: r[0])
                    m = len(got)
                    if got[0][0] != row or got[-1][0] != row + m - 1:
                        raise CheckpointIOError(f"error: the kept units of {run_dir} do not cover members "
                                                f"{row} to {row + m - 1}")
                    flat = [rec.flat(h) for _, h, _ in got]
                    for k in dict.fromkeys(k for f in flat for k in f):
                        if k not in results:
                            ds = g.create_dataset(h5_name(k), shape=(n,), dtype=float, fillvalue=np.nan)
                            ds.attrs["units"] = rec.unit(k)
                            ds.attrs["description"] = f"final {k} of each member"
                            ds.attrs["key"] = k
                            results[k] = ds
                            stats[k] = {"min": math.inf, "max": -math.inf, "sum": 0.0, "finite": 0, "non_finite": 0}
                        vals = np.array([np.nan if f.get(k) is None else f.get(k) for f in flat], dtype=float)
                        results[k][row - lo:row - lo + m] = vals
                        fin = vals[np.isfinite(vals)]
                        st = stats[k]
                        st["non_finite"] += int(m - fin.size)
                        if fin.size:
                            st["min"], st["max"] = min(st["min"], float(fin.min())), max(st["max"], float(fin.max()))
                            st["sum"] += float(fin.sum())
                            st["finite"] += int(fin.size)
                    split = [split_profiles(x) for _, _, x in got]
                    length = max(len(x["tau"]) for x, _ in split)
                    if length > width:
                        width = length
                        for ds in series.values():
                            ds.resize((n, width))
                    for k in dict.fromkeys(k for x, _ in split for k in x):
                        if k not in series:
                            ds = s.create_dataset(h5_name(k), shape=(n, width), maxshape=(n, None), dtype=float,
                                                  fillvalue=np.nan, chunks=(min(n, 256), min(width, 128)),
                                                  compression="gzip", compression_opts=1, shuffle=True)
                            ds.attrs["units"] = rec.unit(k)
                            ds.attrs["description"] = f"{k} of each member at its output times [member, time]"
                            ds.attrs["key"] = k
                            series[k] = ds
                        arr = pad_stack([x.get(k, ()) for x, _ in split])
                        series[k][row - lo:row - lo + m, :arr.shape[1]] = arr
                    write_end_profiles(h5, rec, base, [p for _, p in split], row - lo, n)
                    row += m
                if row != hi:
                    raise CheckpointIOError(f"error: the kept units of {run_dir} hold {row - lo} of {n} members")
                if sliced:
                    write_slice_group(h5, sliced, extra["sweep_digest"], lo, hi)
                label_ensemble(h5, plan.keys)  # named axes for xarray (docs/outputs.md)
            seal_file(tmp)
        results_stats = {}
        for k, st in stats.items():
            results_stats[k] = {"min": st["min"] if st["finite"] else None,
                                "max": st["max"] if st["finite"] else None,
                                "mean": st["sum"] / st["finite"] if st["finite"] else None,
                                "non_finite": st["non_finite"], "unit": rec.unit(k)}
        axes = []
        for k, v in plan.axes:
            arr = v.array() if isinstance(v, Spaced) else _numbers(v)
            axes.append({"key": k, "count": len(v), "values": encode_values(v) if isinstance(v, Spaced) or len(v) <= 100
                         else None, "min": float(arr.min()) if arr is not None and arr.size else None,
                         "max": float(arr.max()) if arr is not None and arr.size else None})
        summary = {
            **envelope("sweep", base["model"], base.get("title", ""), ranks=comm_size, wall_time_s=wall),
            "varied": plan.keys, "n_members": n, **extra,
            "members_in": "results.h5",
            "streamed": {"threshold": stream_threshold(), "window_members": window,
                         "note": ("more members than the threshold: each member's parameters and results are in "
                                  "results.h5 (members/params/KEY, members/RESULT, series/KEY), not listed here")},
            "axes": axes, "results": results_stats, "deck": base,
        }
        write_summary(run_dir, summary)
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write results in {run_dir}: {exc}") from None
    return summary


# ------------------------------------------------------------------------------ the command
def run_sweep_streamed(raw, path, run_dir, comm, *, vary=(), samples=0, seed=0, slice_=None, force=False,
                       progress_seconds=10.0, log=say, petsc_options=(), resume=False):
    """:func:`isosim.studies.run_sweep` for a streamed sweep (same arguments). Collective."""
    from ..io.journal import UnitJournal
    from ..io.rundir import unlock_run_dir
    from ..parallel import collective
    from ..solver.stages import stage
    from .common import open_study_dir, stoppable
    from .slices import slice_bounds, sweep_digest

    t0 = time.monotonic()
    base = validate(dict(raw), path)
    with stage("setup"):
        plan = Plan(base, path, vary, samples, seed)
        decks_of = Decks(raw, base, path, plan)
        decks_of.check_values()
        decks_of.check_members(sorted({0, plan.n - 1} | plan.extremes()))
    lo, hi = 0, plan.n
    extra = {"samples": samples, "seed": seed} if samples else {}
    extra["sweep_digest"] = sweep_digest(base, vary, samples, seed)
    extra["petsc_options"] = list(petsc_options)
    what = f"sweep of {plan.n:,} members"
    if slice_:
        k, count = slice_
        if count > plan.n:
            raise UsageError(f"error: --slice {k}/{count}: the sweep of {path} has only {plan.n} member(s)")
        lo, hi = slice_bounds(k, count, plan.n)
        extra["slice"] = {"index": k, "count": count, "first_member": lo, "stop_member": hi,
                          "total_members": plan.n}
        what = f"slice {k}/{count} of a sweep of {plan.n:,} members: members {lo} to {hi - 1}"
    bs = base.get("ensemble", {}).get("batch_size", 1)
    window = bs * max(1, -(-window_members() // bs))
    if resume:                         # the windows (so the batches) of the sweep that stopped
        window = _manifest(run_dir).get("window", window)
    job = {"raw": raw, "deck_path": str(path), "vary": [[k, encode_values(v)] for k, v in vary],
           "samples": samples, "seed": seed, "slice": list(slice_) if slice_ else None,
           "petsc_options": list(petsc_options), "sweep_digest": extra["sweep_digest"], "n_members": hi - lo,
           "streamed": True, "window": window}
    run_dir = open_study_dir(run_dir, comm, "sweep", job, base, force=force, resume=resume, log=log)
    journal = UnitJournal(run_dir)
    try:
        if comm.rank == 0:
            log(f"[isosim] {what} over {', '.join(plan.keys) or 'nothing'}; streamed (more than "
                f"{stream_threshold():,} members): {window:,} members at a time are expanded, batched and "
                f"integrated, {comm.size} rank(s); results.h5 is written at the end", flush=True)
        say = log
        progress = StreamProgress(hi - lo, progress_seconds, say, comm.size)
        with stage("integrate"), stoppable(run_dir, comm, hi - lo) as stop:
            index = solve_streamed(plan, decks_of, lo, hi, comm, window=window, progress=progress, journal=journal,
                                   stop=stop, log=log, progress_seconds=progress_seconds)
        with stage("output"):
            return collective(comm, lambda: write_streamed(run_dir, base, plan, lo, hi, index, journal, extra,
                                                           time.monotonic() - t0, comm.size, window))
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)
