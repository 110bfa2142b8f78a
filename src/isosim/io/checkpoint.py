"""Checkpoint files: everything a run needs to continue as if it had never stopped.

Layout of ``checkpoint.h5`` (HDF5, written by all ranks at once, atomically)::

    /            attrs: format, meta (JSON: isosim_version, model, deck_digest, time, step,
                        dt, nranks, petsc_options, deck_toml, field shapes and checksums),
                        the scalars of meta again (for h5dump), sha256, complete
    /state/*     the solution, each field split by rows over the ranks that wrote it, in
                 rank-independent order: any number of ranks can restart from it
    /outputs/*   what the run had recorded so far (small: time series)

Every field has a 64-bit checksum that does not depend on how it was split
(:func:`isosim.io.distributed.field_hash`); the SHA-256 covers the metadata (with those
checksums) and the outputs; ``complete`` is written last. A file that fails any check is
refused, and the previous checkpoint, kept as ``checkpoint.prev.h5``, is tried instead.
"""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from ..errors import CheckpointIOError
from .distributed import CollectiveFile, Slab, even_rows, field_hash, read_rows

FORMAT = "isosim-checkpoint-2"
NAMES = ("checkpoint.h5", "checkpoint.prev.h5")
SCALARS = ("isosim_version", "model", "deck_digest", "time", "step", "dt", "nranks")


def _digest(outputs, meta):
    h = hashlib.sha256()
    for name in sorted(outputs):
        a = np.ascontiguousarray(outputs[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def write_checkpoint(path, comm, *, meta, deck_toml, fields, outputs):
    """Write a checkpoint atomically, keeping the previous one as ``*.prev.h5``. Collective.

    Parameters
    ----------
    path : Path
    comm : mpi4py communicator
    meta : dict
        JSON-able scalars: isosim_version, model, deck_digest, time, step, dt, nranks,
        petsc_options.
    deck_toml : str
    fields : dict of Slab
        This rank's rows of each state field.
    outputs : dict of ndarray or None
        Recordings so far (rank 0's are written; other ranks may pass None).

    Raises
    ------
    CheckpointIOError
        On every rank, when any rank failed to write; the previous checkpoint is intact.
    """
    path = Path(path)
    outputs = comm.bcast({k: np.asarray(v) for k, v in outputs.items()} if comm.rank == 0 else None, root=0)
    names = sorted(fields)
    meta = dict(meta, deck_toml=deck_toml,
                field_shape={n: list(map(int, fields[n].shape)) for n in names},
                field_hash={n: f"{field_hash(comm, fields[n]):016x}" for n in names})
    checksum = _digest(outputs, meta)
    nbytes = sum(a.nbytes for a in outputs.values()) + len(json.dumps(meta)) + sum(
        int(np.prod(s.shape)) * s.data.dtype.itemsize for s in fields.values())
    try:
        with CollectiveFile(path, comm, keep_previous=path.with_name(path.stem + ".prev.h5"),
                            size_hint=nbytes) as f:
            f.attrs("/", format=FORMAT, meta=json.dumps(meta, sort_keys=True),
                    **{k: meta[k] for k in SCALARS})   # for people reading it with h5dump
            for name in sorted(outputs):
                f.small(f"outputs/{name}", outputs[name])
            for name in names:
                f.slab(f"state/{name}", fields[name])
            f.attrs("/", sha256=checksum, complete=1)     # last: marks the file finished
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write checkpoint {path}: {exc}; the previous "
                                "checkpoint, if any, is intact") from None


class Checkpoint:
    """A verified checkpoint: ``meta``, ``deck_toml``, ``outputs`` and :meth:`read` of state rows."""

    def __init__(self, path, meta, outputs):
        self.path = Path(path)
        self.meta = meta
        self.deck_toml = meta["deck_toml"]
        self.outputs = outputs

    def read(self, name, lo, hi):
        """Rows ``lo:hi`` of state field ``name`` (local: each rank reads its own)."""
        return read_rows(self.path, f"state/{name}", lo, hi)


def read_header(path):
    """Metadata and outputs of a checkpoint, checked against its SHA-256 (no field data;
    no communication). Raises CheckpointIOError with the reason."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            if fmt != FORMAT:
                what = "an older isosim checkpoint format" if str(fmt).startswith("isosim-checkpoint") \
                    else "not an isosim checkpoint"
                raise CheckpointIOError(f"{path} is {what}")
            if int(f.attrs.get("complete", 0)) != 1:
                raise CheckpointIOError(f"{path} is incomplete (its writer was interrupted)")
            meta = json.loads(f.attrs["meta"])
            outputs = {k: v[()] for k, v in f["outputs"].items()} if "outputs" in f else {}
            stored = f.attrs["sha256"]
            shapes = {n: tuple(f[f"state/{n}"].shape) for n in meta["field_shape"]}
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointIOError(f"{path} cannot be read ({exc})") from None
    if _digest(outputs, meta) != stored:
        raise CheckpointIOError(f"{path} fails its checksum (corrupted)")
    for n, shape in shapes.items():
        if list(shape) != meta["field_shape"][n]:
            raise CheckpointIOError(f"{path}: state/{n} has shape {shape}, expected {meta['field_shape'][n]}")
    return Checkpoint(path, meta, outputs)


def verify_fields(ck, comm):
    """Check every state field against its checksum, each rank reading an even share of the
    rows. Collective. Raises CheckpointIOError on every rank if any field fails."""
    error = None
    for name, shape in sorted(ck.meta["field_shape"].items()):
        lo, hi = even_rows(shape[0], comm)
        try:
            rows = ck.read(name, lo, hi)
        except (OSError, KeyError, ValueError) as exc:
            error = error or f"{ck.path} cannot be read ({exc})"
            rows = np.zeros((hi - lo, *shape[1:]))
        got = field_hash(comm, Slab(tuple(shape), lo, rows))
        if f"{got:016x}" != ck.meta["field_hash"][name]:
            error = error or f"{ck.path} fails its checksum (state/{name} corrupted)"
    errors = [e for e in comm.allgather(error) if e]
    if errors:
        raise CheckpointIOError(errors[0])


def _first_good(run_dir, verify, say):
    """The first of ``checkpoint.h5``, ``checkpoint.prev.h5`` that ``verify`` accepts."""
    run_dir = Path(run_dir)
    errors = []
    for name in NAMES:
        p = run_dir / name
        if not p.exists():
            continue
        try:
            ck = verify(p)
        except CheckpointIOError as exc:
            errors.append(str(exc))
            say(f"warning: {exc}; trying an older checkpoint")
            continue
        if errors:
            say(f"warning: restarting from the older checkpoint {p}")
        return ck
    detail = "; ".join(errors) if errors else "no checkpoint.h5 there"
    raise CheckpointIOError(f"error: no usable checkpoint in {run_dir} ({detail})")


def newest_header(run_dir, say=print):
    """The header of the newest checkpoint in ``run_dir`` that reads and verifies (without its
    fields), trying the previous one if not. Local (any rank, before MPI/PETSc start)."""
    return _first_good(run_dir, read_header, say)


def latest_good_checkpoint(run_dir, comm, say=print):
    """The newest checkpoint in ``run_dir`` whose header and fields all verify. Collective.

    Prints (through ``say``, rank 0) why a newer one was refused and which file is used.
    """
    def verify(p):
        local, ck = None, None
        try:
            ck = read_header(p)
        except CheckpointIOError as exc:
            local = str(exc)
        bad = [e for e in comm.allgather(local) if e]     # every rank takes the same decision
        if bad:
            raise CheckpointIOError(bad[0])
        verify_fields(ck, comm)
        return ck

    return _first_good(run_dir, verify, say if comm.rank == 0 else (lambda m: None))
