"""Sweeps cut into slices (``isosim sweep --slice K/N``) and merged back (``isosim merge``).

A SLURM job array runs one slice per task: slice K of N holds the K-th of N contiguous ranges
of the sweep's members (sizes differ by at most one). Every slice expands the *whole* sweep
first, so Monte Carlo draws and cartesian products are the direct sweep's, and keeps each
member's global index. ``isosim merge`` checks that a set of slice directories is exactly one
sweep (same sweep digest, every slice once) and rewrites them as the direct sweep's
``summary.json`` and ``results.h5``, through the same writer.

Equality with the direct sweep: in ``ensemble.mode = "independent"`` each member is its own
TS, so the merged results are bitwise the direct sweep's. In ``"batch"`` mode the members of a
batch share time steps, and a slice forms its batches from its own members, so results agree
with the direct sweep to the time tolerance, exactly as batch members agree with single runs.

Slicing helpers run on every rank (they are cheap and deterministic); merging is serial (no
MPI, no PETSc).
"""

import glob
import hashlib
import json
import os
import time
from pathlib import Path

import h5py

from .. import __version__
from ..errors import UsageError
from ..io.journal import PROFILE
from ..io.sealing import verify_pair
from ..logs import say


def parse_slice(text):
    """``--slice K/N`` as ``(K, N)`` with ``1 <= K <= N``; UsageError otherwise."""
    try:
        k, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise UsageError(f"error: --slice {text!r}: expected K/N with whole numbers, e.g. --slice 2/8 "
                         "(slice 2 of 8; in a job array: --slice $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)"
                         ) from None
    if not 1 <= k <= n:
        raise UsageError(f"error: --slice {text!r}: K must be between 1 and N (slices are numbered from 1)")
    return k, n


def slice_bounds(k, n, total):
    """Global member range ``[start, stop)`` of slice ``k`` of ``n`` over ``total`` members.

    The first ``total % n`` slices hold one member more than the others (as numpy.array_split).
    """
    size, extra = divmod(total, n)
    start = (k - 1) * size + min(k - 1, extra)
    return start, start + size + (1 if k <= extra else 0)


def sweep_digest(base, vary, samples, seed):
    """SHA-256 naming one sweep: the resolved base deck and what varies. Slices of one sweep,
    and the direct sweep, share it; a different deck, --set, --vary, --samples or --seed does not."""
    from ..deck.specs import encode_values
    spec = {"deck": base, "vary": [[k, encode_values(v)] for k, v in vary], "samples": samples,
            "seed": seed if samples else None}
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=float)
    return hashlib.sha256(text.encode()).hexdigest()


def take_slice(decks, params, slice_, path):
    """The members of slice ``slice_ = (K, N)`` and its record for summary.json.

    Returns ``(decks, params, record)``; UsageError when there are fewer members than slices.
    """
    k, n = slice_
    total = len(decks)
    if n > total:
        raise UsageError(f"error: --slice {k}/{n}: the sweep of {path} has only {total} member(s), so it "
                         f"cannot be cut into {n} slices; use at most {total} (e.g. --array=1-{total})")
    start, stop = slice_bounds(k, n, total)
    record = {"index": k, "count": n, "first_member": start, "stop_member": stop, "total_members": total}
    return decks[start:stop], {key: v[start:stop] for key, v in params.items()}, record


# ------------------------------------------------------------------------------ merging
def _read_slice(d):
    """The summary of a finished slice directory (UsageError if it is not one)."""
    d = Path(d)
    if not d.is_dir():
        raise UsageError(f"error: {d} is not a directory")
    try:
        summary = json.loads((d / "summary.json").read_text())
    except FileNotFoundError:
        raise UsageError(f"error: {d} holds no summary.json: the slice did not finish (see its job's "
                         "output); run it again before merging") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"error: cannot read {d / 'summary.json'}: {exc}") from None
    if not isinstance(summary, dict) or "slice" not in summary:
        raise UsageError(f"error: {d} is not a slice of a sweep (its summary.json has no 'slice' record); "
                         "slices are written by 'isosim sweep DECK --slice K/N'")
    if "members" not in summary and "members_in" in summary:
        raise UsageError(f"error: {d} is a slice of {summary.get('n_members')} members, stored compactly (its "
                         "members' results only in results.h5); merging such slices is not supported yet: "
                         "run the sweep without --slice, or cut it into slices of at most "
                         f"{summary.get('streamed', {}).get('threshold', 'the streaming threshold')} members")
    record = summary["slice"]
    fields = ("index", "count", "first_member", "stop_member", "total_members")
    if (not isinstance(record, dict) or any(not isinstance(record.get(f), int) for f in fields)
            or any(k not in summary for k in ("sweep_digest", "members", "varied", "deck", "ranks", "wall_time_s"))):
        raise UsageError(f"error: {d / 'summary.json'} is not a complete slice summary (was it edited?)")
    if not (d / "results.h5").is_file():
        raise UsageError(f"error: {d} holds no results.h5; run the slice again before merging")
    damage = verify_pair(d)
    if damage:
        raise UsageError(f"error: {d}: {damage}; nothing was merged. Run the slice again "
                         f"('isosim sweep ... --slice {record['index']}/{record['count']} --force')")
    return summary


def _check_one_sweep(slices):
    """Refuse slices of different sweeps, gaps and overlaps; return them ordered by index."""
    (d0, s0), rest = slices[0], slices[1:]
    for d, s in rest:
        if s.get("sweep_digest") != s0.get("sweep_digest"):
            raise UsageError(f"error: {d} and {d0} are slices of different sweeps (different deck, --set, "
                             "--vary, --samples or --seed); nothing was merged")
        if s.get("isosim_version") != s0.get("isosim_version"):
            raise UsageError(f"error: {d} was written by isosim {s.get('isosim_version')}, {d0} by "
                             f"{s0.get('isosim_version')}; merge slices of one version")
        if s.get("petsc_options") != s0.get("petsc_options"):
            raise UsageError(f"error: {d} ran with PETSc options {s.get('petsc_options')}, {d0} with "
                             f"{s0.get('petsc_options')}: its members were integrated differently; nothing "
                             "was merged. Run the slices with the same options")
        if s["slice"]["count"] != s0["slice"]["count"]:
            raise UsageError(f"error: {d} is slice {s['slice']['index']}/{s['slice']['count']} and {d0} is "
                             f"slice {s0['slice']['index']}/{s0['slice']['count']}: the sweep was cut in "
                             "different ways; merge slices of one job array")
    if s0.get("isosim_version") != __version__:
        raise UsageError(f"error: the slices were written by isosim {s0.get('isosim_version')}, this is "
                         f"isosim {__version__}; merge them with the version that ran them")
    n, total = s0["slice"]["count"], s0["slice"]["total_members"]
    by_index = {}
    for d, s in slices:
        k = s["slice"]["index"]
        if k in by_index:
            raise UsageError(f"error: slice {k}/{n} given twice ({by_index[k][0]} and {d}); nothing was merged")
        by_index[k] = (d, s)
    missing = [k for k in range(1, n + 1) if k not in by_index]
    if missing:
        raise UsageError(f"error: slice(s) {', '.join(map(str, missing))} of {n} missing ({len(slices)} of "
                         f"{n} given); nothing was merged")
    ordered = [by_index[k] for k in range(1, n + 1)]
    for d, s in ordered:
        start, stop = slice_bounds(s["slice"]["index"], n, total)
        idx = [m.get("member_index") for m in s["members"]]
        if (s["slice"]["first_member"], s["slice"]["stop_member"]) != (start, stop) or idx != list(range(start, stop)):
            raise UsageError(f"error: {d}: its members are not those of slice {s['slice']['index']}/{n} of "
                             f"{total} members ({start} to {stop - 1}); the directory was altered")
    return ordered


def _read_series(d, n_members):
    """Per-member series of a slice's results.h5 as a list of {key: row} (rows NaN-padded)."""
    try:
        with h5py.File(d / "results.h5", "r") as h5:
            # the recorded series carry their key; coordinates (member, time, the varied values) do not
            data = {ds.attrs["key"]: ds[()] for ds in h5["series"].values() if "key" in ds.attrs}
            # kept end profiles (output.sweep_profiles) travel with the series, as in a sweep
            data.update({PROFILE + ds.attrs["key"]: ds[()] for ds in h5.get("profiles", {}).values()
                         if isinstance(ds, h5py.Dataset) and "key" in ds.attrs})
    except (OSError, KeyError) as exc:
        raise UsageError(f"error: cannot read the series of {d / 'results.h5'}: {exc}") from None
    if any(v.shape[0] != n_members for v in data.values()):
        raise UsageError(f"error: {d / 'results.h5'} does not hold {n_members} members as its summary says")
    # the rows keep the slice's NaN padding; the writer pads them again to the longest member
    # of the whole sweep, which is what the direct sweep's padding gives
    return [{k: v[i] for k, v in data.items()} for i in range(n_members)]


def slice_dirs(out, dirs, pattern):
    """The slice directories named on the command line and/or matched by ``--from`` (never OUT)."""
    found = [Path(d) for d in dirs]
    if pattern:
        matched = sorted(Path(p) for p in glob.glob(pattern))
        if not matched:
            raise UsageError(f"error: --from {pattern!r} matches nothing")
        found += [p for p in matched if p.resolve() != Path(out).resolve()]
    if not found:
        raise UsageError("error: merge needs the slice directories: isosim merge OUT DIR1 DIR2 ... "
                         "or isosim merge OUT --from 'runs/sweep-*'")
    if Path(out).resolve() in {p.resolve() for p in found}:
        raise UsageError(f"error: the output directory {out} is one of the slices; choose another OUT")
    return list(dict.fromkeys(found))


def merge_sweep(out, dirs, *, force=False, log=say):
    """``isosim merge``: write the sweep that the slices in ``dirs`` together make into ``out``.

    Serial (not collective): run it once, not under mpirun. Every input is read and checked
    before ``out`` is touched. Returns the merged summary.
    """
    from ..deck import to_toml
    from ..io.atomic import write_text
    from ..io.rundir import prepare_run_dir, write_manifest
    from .output import write_ensemble

    t0 = time.monotonic()
    # several copies under mpirun would race for OUT: merging is quick and serial
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        if int(os.environ.get(var, "1") or 1) > 1:
            raise UsageError("error: isosim merge is serial: run it once, without mpirun or srun -n")
    ordered = _check_one_sweep([(Path(d), _read_slice(d)) for d in dirs])
    s0 = ordered[0][1]
    base = s0["deck"]         # the resolved base deck, as the direct sweep writes it
    varied = s0["varied"]
    params = {k: [] for k in varied}
    headlines, series = [], []
    for d, s in ordered:
        for m in s["members"]:
            for k in varied:
                params[k].append(m["params"][k])
            headlines.append({k: v for k, v in m.items() if k not in ("member_index", "params")})
        series += _read_series(d, len(s["members"]))
    extra = {k: s0[k] for k in ("samples", "seed") if k in s0}
    extra["sweep_digest"] = s0["sweep_digest"]
    extra["petsc_options"] = s0.get("petsc_options", [])
    extra["merged_from"] = [{"dir": str(d), "slice": s["slice"]["index"], "ranks": s["ranks"],
                             "wall_time_s": s["wall_time_s"]} for d, s in ordered]
    out = prepare_run_dir(out, force)
    write_manifest(out, "merge", slices=[str(d) for d, _ in ordered])
    write_text(out / "deck.toml", to_toml(base))
    # wall time: the slices' compute time added up (they may have run in parallel), plus the merge
    wall = sum(s["wall_time_s"] for _, s in ordered) + time.monotonic() - t0
    summary = write_ensemble(out, base, params, headlines, series, extra, wall,
                              max(s["ranks"] for _, s in ordered))
    log(f"[isosim] merged {len(ordered)} slices, {summary['n_members']} members; wrote "
        f"{out / 'summary.json'} and {out / 'results.h5'}", flush=True)
    return summary
