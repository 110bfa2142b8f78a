"""``isosim invert``: the parameter value that reproduces a measured result, for each value
of another parameter (a scan, then Illinois regula falsi, one batched ensemble per
iteration; :mod:`isosim.rootfind`). Collective over ``comm``.
"""

import time

import h5py
import numpy as np

from .. import __version__
from ..deck import to_toml, validate
from ..errors import UsageError
from ..io.atomic import atomic_path
from ..io.distributed import SEAL_BYTES, seal_file
from ..io.layout import coordinates, label, labels, mark
from ..io.journal import UnitJournal
from ..io.results import envelope, write_summary
from ..io.rundir import unlock_run_dir
from ..io.tables import write_tables
from ..logs import say
from ..parallel import collective
from ..rootfind import brackets, illinois_step
from .common import open_study_dir, recorder_of, stoppable, unit_of
from .ensemble import expand, member_labels, solve


# ------------------------------------------------------------------------------ inversion
def run_invert(raw, path, run_dir, comm, *, target, param, bracket, over=None, scan=11,
               tol=1e-4, max_iter=40, force=False, progress_seconds=10.0, log=say, petsc_options=(),
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
    rec = recorder_of(base["model"])
    over_key, over_vals = over if over else (None, [None])
    job = {"raw": raw, "deck_path": str(path), "target": [tkey, tval], "param": param, "bracket": list(bracket),
           "over": [over_key, list(over_vals)] if over else None, "scan": scan, "tol": tol,
           "petsc_options": list(petsc_options)}
    run_dir = open_study_dir(run_dir, comm, "invert", job, base, force=force, resume=resume, log=log)
    say = log
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
                write_tables(h5, base)          # a large table's rows, once (the deck refers to them)
                h5.attrs["param"] = param
                h5.attrs["target"] = f"{tkey}={tval}"
                unit_p = unit_of(base, param)
                tunit = rec.unit(tkey)
                # one member per --over value (docs/outputs.md): [member, ...]
                datasets = [("solution", x, unit_p, f"{param} reproducing {tkey} = {tval:g}, per --over value "
                             "[member]", ["member"]),
                            ("bracket", np.stack([a, b], axis=1), unit_p, "final root bracket [member, bound]",
                             ["member", "bound"]),
                            ("residual", fx, tunit, f"{tkey} - target at the solution [member]", ["member"]),
                            ("scan_grid", grid, unit_p, f"{param} values of the initial scan [scan]", ["scan"]),
                            ("scan_residual", res, tunit, f"{tkey} - target over the scan [member, scan]",
                             ["member", "scan"])]
                if over_key:
                    h5.attrs["over"] = over_key
                    datasets.append(("over_values", np.asarray(over_vals, dtype=float), unit_of(base, over_key),
                                     f"values of {over_key} [member]", ["member"]))
                for name, data, unit, doc, dims in datasets:
                    ds = h5.create_dataset(name, data=data)
                    ds.attrs["units"] = unit
                    ds.attrs["description"] = doc
                    mark(ds, dims)
                labels(h5, "bound", ["low", "high"], "ends of the root bracket")
                coordinates(h5, "scan_grid", *(["over_values"] if over_key else []))
                label(h5)
            seal_file(tmp)
        # last: its presence (status complete) marks a finished inversion
        write_summary(run_dir, summary)
        return summary

    try:
        return collective(comm, write)
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)
