"""The result files of an ensemble (a sweep, a slice, a merge): ``summary.json`` with every
member's parameters and headline results, and ``results.h5``. Rank 0.
"""

import h5py
import numpy as np

from .. import __version__
from ..deck import to_toml
from ..errors import CheckpointIOError
from ..io.atomic import atomic_path
from ..io.distributed import SEAL_BYTES, seal_file
from ..io.journal import pad_stack, split_profiles
from ..io.layout import coordinates, label_ensemble, labels, mark
from ..io.results import envelope, write_summary
from ..io.tables import write_tables
from .common import h5_name, recorder_of, unit_of


def write_ensemble(run_dir, base, params, headlines, series, extra_summary, wall, comm_size):
    rec = recorder_of(base["model"])
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
                write_tables(h5, base)          # a large table's rows, once (the deck refers to them)
                h5.attrs["varied"] = keys
                g = h5.create_group("members")
                g.attrs["description"] = "one row per member: varied parameters and final results"
                for k in keys:
                    ds = g.create_dataset(f"params/{k}", data=np.asarray(params[k], dtype=float))
                    ds.attrs["units"] = unit_of(base, k)
                    ds.attrs["description"] = f"value of deck key {k} in each member"
                for k in result_keys:
                    vals = [f.get(k) for f in flat]
                    ds = g.create_dataset(h5_name(k), data=_column(vals))
                    ds.attrs["units"] = rec.unit(k)
                    ds.attrs["description"] = f"final {k} of each member"
                    ds.attrs["key"] = k
                s = h5.create_group("series")
                s.attrs["description"] = ("per member, exact values at its output times, padded with "
                                          "NaN [member, time]")
                split = [split_profiles(x) for x in series]
                for k in dict.fromkeys(k for x, _ in split for k in x):
                    ds = s.create_dataset(h5_name(k), data=pad_stack([x.get(k, ()) for x, _ in split]))
                    ds.attrs["units"] = rec.unit(k)
                    ds.attrs["description"] = f"{k} of each member at its output times [member, time]"
                    ds.attrs["key"] = k
                write_end_profiles(h5, rec, base, [p for _, p in split], 0, len(series))
                if sliced:
                    write_slice_group(h5, sliced, extra_summary["sweep_digest"], sliced["first_member"],
                                      sliced["stop_member"])
                label_ensemble(h5, keys)       # named axes for xarray (docs/outputs.md)
            seal_file(tmp)
        write_summary(run_dir, summary)
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write results in {run_dir}: {exc}") from None
    return summary


def _column(values):
    """Float array of members' scalar results, None as NaN (one numpy call when none is None)."""
    if any(v is None for v in values):
        values = [np.nan if v is None else v for v in values]
    return np.array(values, dtype=float)


def write_slice_group(h5, sliced, sweep_digest, first, stop):
    """The ``slice`` group of a slice's results.h5: which slice of which sweep, and the global
    indices of its members (what ``isosim merge`` checks)."""
    sl = h5.create_group("slice")
    sl.attrs["description"] = "this is one slice of a sweep (isosim sweep --slice K/N); isosim merge joins the slices"
    for name, value in sliced.items():
        sl.attrs[name] = value
    sl.attrs["sweep_digest"] = sweep_digest
    sl.create_dataset("member_index", data=np.arange(first, stop))


def write_end_profiles(h5, rec, base, profiles, start, n):
    """Rows ``start ..`` of the ``profiles`` group of an ensemble's results.h5 of ``n`` members:
    each member's end profiles (``profiles``: one ``{name: array}`` per member, empty when the
    deck does not keep them), padded with NaN to the largest member. Called once (a sweep) or
    window by window (a streamed sweep): the datasets grow as larger members come. Rank 0."""
    if not any(profiles):
        return
    attrs = rec.profile_attrs(base)
    first = "profiles" not in h5
    g = h5.require_group("profiles")
    if first:
        g.attrs["description"] = ("each member's profiles at the end of its path (output.sweep_profiles), "
                                  "padded with NaN where members differ in size")
        for axis, names in rec.profile_axes(base).items():
            labels(g, axis, names, f"{axis} names")
        coordinates(g, "r_um")
    for name in profiles[0]:
        block = pad_stack([p[name] for p in profiles])
        if name not in g:
            units, doc, dims = attrs[name]
            ds = g.create_dataset(name, shape=(n, *block.shape[1:]), maxshape=(n,) + (None,) * (block.ndim - 1),
                                  dtype=float, fillvalue=np.nan, chunks=True)
            ds.attrs.update(units=units, description=doc, key=name)
            mark(ds, dims)
        ds = g[name]
        grown = tuple(max(a, b) for a, b in zip(ds.shape[1:], block.shape[1:]))
        if grown != ds.shape[1:]:
            ds.resize((n, *grown))
        ds[(slice(start, start + len(profiles)), *(slice(0, k) for k in block.shape[1:]))] = block
