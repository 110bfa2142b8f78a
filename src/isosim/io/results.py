"""The result files every command writes: one envelope and one writer for all of them.

Every ``summary.json`` (runs, sweeps, inversions), ``converge.json`` and ``fit.json`` starts
with the same fields (:func:`envelope`): the isosim version, the file format version, the
``kind`` of job that wrote it (what ``isosim plot`` and ``isosim restart`` dispatch on), the
model, the title and the status. :func:`write_summary` writes a summary as strict JSON
(:mod:`isosim.io.jsonfile`), sealed together with its ``results.h5``
(:mod:`isosim.io.sealing`), atomically. Local (rank 0).
"""

from pathlib import Path

from .. import __version__
from ..errors import CheckpointIOError
from . import jsonfile
from .atomic import write_text
from .sealing import seal_summary

#: Version of the layout of isosim's result files. 2: ``kind`` and ``format_version`` in every
#: result file, sealed summaries (``results_sha256``, ``summary_sha256``). 3: every results.h5
#: has named axes (HDF5 dimension scales and coordinate variables that xarray/h5netcdf read as
#: they are) in one order, member first, then time (or profile), then the rest: grain series
#: and profiles, chamber paths transposed to it (docs/outputs.md).
FORMAT_VERSION = 3


def envelope(kind, model, title="", *, status="complete", ranks=None, wall_time_s=None):
    """The fields every result file starts with (a dict to extend)."""
    out = {"isosim_version": __version__, "format_version": FORMAT_VERSION, "kind": kind, "model": model,
           "title": title, "status": status}
    if ranks is not None:
        out["ranks"] = ranks
    if wall_time_s is not None:
        out["wall_time_s"] = round(wall_time_s, 3)
    return out


def write_summary(run_dir, summary):
    """Write ``run_dir/summary.json`` (strict JSON, sealed with ``results.h5``, atomic); an
    I/O failure is exit 4 naming the directory. Returns ``summary``."""
    try:
        write_text(Path(run_dir) / "summary.json", seal_summary(summary, run_dir, jsonfile.dumps))
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write results in {run_dir}: {exc}") from None
    return summary


def write_json(path, result):
    """Write another result file (``converge.json``, ``fit.json``): strict JSON, atomic."""
    write_text(Path(path), jsonfile.dumps(result, indent=1) + "\n")
