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
from ..io.layout import label_ensemble
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
                    write_slice_group(h5, sliced, extra_summary["sweep_digest"], sliced["first_member"],
                                      sliced["stop_member"])
                label_ensemble(h5, keys)       # named axes for xarray (docs/outputs.md)
            seal_file(tmp)
        write_summary(run_dir, summary)
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write results in {run_dir}: {exc}") from None
    return summary


def write_slice_group(h5, sliced, sweep_digest, first, stop):
    """The ``slice`` group of a slice's results.h5: which slice of which sweep, and the global
    indices of its members (what ``isosim merge`` checks)."""
    sl = h5.create_group("slice")
    sl.attrs["description"] = "this is one slice of a sweep (isosim sweep --slice K/N); isosim merge joins the slices"
    for name, value in sliced.items():
        sl.attrs[name] = value
    sl.attrs["sweep_digest"] = sweep_digest
    sl.create_dataset("member_index", data=np.arange(first, stop))
