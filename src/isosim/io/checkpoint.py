"""Checkpoint files: everything a run needs to continue as if it had never stopped.

The restart files of a run directory::

    checkpoint.h5            the newest checkpoint: the solution and the TS clock
    checkpoint.prev.h5       the one before it (used when the newest fails its checks)
    records/part-NNNNNN.h5   what the run has recorded (time series, profiles), one part per
                             checkpoint holding only what was recorded since the part before:
                             recordings are appended, never rewritten

Both kinds are HDF5 files written by all ranks at once, atomically (temporary name, fsync,
rename), sealed (a SHA-256 of the whole file in its HDF5 user block, checked before the HDF5
library reads a byte of it), with the same layout::

    /            attrs: format, meta (JSON), sha256, complete; a checkpoint also has the
                 scalars of its meta (isosim_version, model, deck_digest, time, step, dt,
                 nranks) for people reading it with h5dump
    /outputs/*   small arrays (a part's new time-series rows), written by rank 0; in a
                 checkpoint, ``table_<sha256>``: the rows of each large table of the deck,
                 which the deck refers to by that digest (isosim.io.tables)
    /fields/*    large arrays, each split by rows over the ranks that wrote it, in
                 rank-independent order: any number of ranks can read it back

A checkpoint's meta lists the record parts its recordings consist of (``records``: file and
SHA-256 of each), so a checkpoint and its recordings are verified together. Every field has a
64-bit checksum that does not depend on how it was split
(:func:`isosim.io.distributed.field_hash`); the SHA-256 covers the metadata (with those
checksums) and the small arrays; ``complete`` is written last. A checkpoint that fails any
check, or whose record parts do, is refused and the previous checkpoint is tried instead.
Parts are never modified once written; a part written after the checkpoint a run restarts
from (the run was killed between the two writes) is removed at the restart.
"""

import contextlib
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np

from ..errors import CheckpointIOError
from .distributed import CollectiveFile, Slab, check_seal, even_rows, field_hash, read_rows

FORMAT = "isosim-checkpoint-3"
PART_FORMAT = "isosim-records-1"
NAMES = ("checkpoint.h5", "checkpoint.prev.h5")
RECORDS = "records"
SCALARS = ("isosim_version", "model", "deck_digest", "time", "step", "dt", "nranks")


def _digest(small, meta):
    h = hashlib.sha256()
    for name in sorted(small):
        a = np.ascontiguousarray(small[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def _write_verified(path, comm, *, fmt, meta, small, fields, scalars=(), keep_previous=None):
    """Write a self-verifying file (the layout of the module doc) atomically. Collective.

    ``small`` must be identical on every rank; ``fields`` are this rank's slabs. Returns the
    file's SHA-256. Raises OSError on every rank when any rank failed (nothing replaced)."""
    names = sorted(fields)
    meta = dict(meta, field_shape={n: list(map(int, fields[n].shape)) for n in names},
                field_hash={n: f"{field_hash(comm, fields[n]):016x}" for n in names})
    checksum = _digest(small, meta)
    nbytes = sum(a.nbytes for a in small.values()) + len(json.dumps(meta)) + sum(
        int(np.prod(s.shape)) * s.data.dtype.itemsize for s in fields.values())
    with CollectiveFile(path, comm, keep_previous=keep_previous, size_hint=nbytes, seal=True) as f:
        f.attrs("/", format=fmt, meta=json.dumps(meta, sort_keys=True), **{k: meta[k] for k in scalars})
        for name in sorted(small):
            f.small(f"outputs/{name}", small[name])
        for name in names:
            f.slab(f"fields/{name}", fields[name])
        f.attrs("/", sha256=checksum, complete=1)     # last: marks the file finished
    return checksum


def _read_verified(path, fmt, what):
    """(meta, small arrays, sha256) of a file of :func:`_write_verified`, checked against its
    SHA-256 and its fields' shapes (field data is checked by :func:`verify_fields`). Local.

    The whole file is checked against its seal before the HDF5 library opens it: a damaged
    file is refused, never parsed (damaged HDF5 metadata can crash the library)."""
    damage = check_seal(path)
    if damage is not None:
        raise CheckpointIOError(f"{path} {damage}")
    try:
        with h5py.File(path, "r") as f:
            found = f.attrs.get("format")
            if found != fmt:
                kind = "an older isosim format" if str(found).startswith("isosim-") else f"not an isosim {what}"
                raise CheckpointIOError(f"{path} is {kind}")
            if int(f.attrs.get("complete", 0)) != 1:
                raise CheckpointIOError(f"{path} is incomplete (its writer was interrupted)")
            meta = json.loads(f.attrs["meta"])
            small = {k: v[()] for k, v in f["outputs"].items()} if "outputs" in f else {}
            stored = str(f.attrs["sha256"])
            shapes = {n: list(f[f"fields/{n}"].shape) for n in meta["field_shape"]}
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointIOError(f"{path} cannot be read ({exc})") from None
    if _digest(small, meta) != stored:
        raise CheckpointIOError(f"{path} fails its checksum (corrupted)")
    for n, shape in shapes.items():
        if shape != meta["field_shape"][n]:
            raise CheckpointIOError(f"{path}: fields/{n} has shape {shape}, expected {meta['field_shape'][n]}")
    return meta, small, stored


# --------------------------------------------------------------------------- recordings
def _join(pieces):
    """Rows of successive parts as one array (parts that added no rows are skipped)."""
    full = [p for p in pieces if len(p)]
    return np.concatenate(full) if full else np.zeros(0)


class RecordLog:
    """The run's recordings on disk: one part per checkpoint with only what is new. Collective
    methods; owned by the run.

    Recordings only grow: each small array along axis 0 (one row per recorded time), each
    large field along axis 1 (axis 0 is its rows, split over the ranks; axis 1 one entry per
    recorded profile).

    Parameters
    ----------
    run_dir : Path
    parts : list of dict
        The parts already written and referenced by a checkpoint ({"file", "sha256"}).
    saved : dict
        Rows (small arrays) and entries (fields) those parts hold.
    """

    def __init__(self, run_dir, parts=(), saved=None):
        self.run_dir = Path(run_dir)
        self.parts = list(parts)
        self.saved = dict(saved or {})
        self._pending = {}

    @classmethod
    def resume(cls, checkpoint):
        """The log as ``checkpoint`` left it (its later parts, if any, are superseded)."""
        saved = {k: len(v) for k, v in checkpoint.outputs.items()}
        saved.update({k: sum(shape[1] for _, shape in v) for k, v in checkpoint.record_fields.items()})
        return cls(checkpoint.path.parent, checkpoint.meta["records"], saved)

    def append(self, comm, recorder):
        """Write what ``recorder`` recorded since the last :meth:`commit` as the next part, if it
        recorded anything. Collective. Returns the list of parts a checkpoint written now must
        reference.

        ``recorder`` gives the new rows: ``state(since)`` (small arrays, rank 0's are written)
        and ``field_state(since)`` (this rank's rows of the large ones), ``since`` mapping each
        name to the rows (entries) already saved.
        """
        new_small = comm.bcast(recorder.state(self.saved) if comm.rank == 0 else None, root=0)
        new_fields = {k: s for k, s in recorder.field_state(self.saved).items() if s.shape[1] > 0}
        self._pending = {**{k: len(v) for k, v in new_small.items()},
                         **{k: s.shape[1] for k, s in new_fields.items()}}
        if not any(self._pending.values()):
            return self.parts
        name = f"{RECORDS}/part-{len(self.parts):06d}.h5"
        if comm.rank == 0:
            with contextlib.suppress(OSError):        # if it failed, so does the write below
                (self.run_dir / RECORDS).mkdir(exist_ok=True)
        comm.barrier()
        try:
            sha = _write_verified(self.run_dir / name, comm, fmt=PART_FORMAT, meta={"part": len(self.parts)},
                                  small=new_small, fields=new_fields)
        except OSError as exc:
            raise CheckpointIOError(f"error: could not write checkpoint {self.run_dir / NAMES[0]}: its "
                                    f"recordings {name}: {exc}; the previous checkpoint, if any, is "
                                    "intact") from None
        return self.parts + [{"file": name, "sha256": sha}]

    def commit(self, parts):
        """The checkpoint referencing ``parts`` is written: they are the saved recordings."""
        if len(parts) > len(self.parts):
            for k, n in self._pending.items():
                self.saved[k] = self.saved.get(k, 0) + n
        self.parts = list(parts)

    def remove_superseded(self):
        """Delete parts that no verified checkpoint references (written before a kill that came
        ahead of their checkpoint), and temporaries of interrupted part writes. Rank 0 only,
        at a (re)start. Returns their names."""
        keep = {Path(p["file"]).name for p in self.parts}
        removed = []
        for p in sorted((self.run_dir / RECORDS).glob("*part-*")):
            if p.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(f"{RECORDS}/{p.name}")
        return removed


# --------------------------------------------------------------------------- checkpoints
def write_checkpoint(path, comm, *, meta, deck_toml, fields, records=(), tables=None):
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
    records : list of dict
        The record parts holding the run's recordings (:meth:`RecordLog.append`).
    tables : dict of ndarray, optional
        The deck's large tables (``table_<sha256>``: rows), identical on every rank
        (:mod:`isosim.io.tables`): a restart needs no CSV file.

    Raises
    ------
    CheckpointIOError
        On every rank, when any rank failed to write; the previous checkpoint is intact.
    """
    path = Path(path)
    try:
        _write_verified(path, comm, fmt=FORMAT, meta=dict(meta, deck_toml=deck_toml, records=list(records)),
                        small=dict(tables or {}), fields=fields, scalars=SCALARS,
                        keep_previous=path.with_name(path.stem + ".prev.h5"))
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write checkpoint {path}: {exc}; the previous "
                                "checkpoint, if any, is intact") from None


class Checkpoint:
    """A checkpoint and its recordings, headers verified: ``meta``, ``deck_toml``, ``outputs``
    (the recorded small arrays, all parts joined) and :meth:`read` of field rows."""

    def __init__(self, path, meta, parts, tables=None):
        self.path = Path(path)
        self.tables = dict(tables or {})    # sha256: rows of the deck's large tables (verified)
        self.meta = meta
        self.deck_toml = meta["deck_toml"]
        self.parts = parts                  # [(path, meta, small arrays)]
        keys = sorted({k for _, _, small in parts for k in small})
        self.outputs = {k: _join([small[k] for _, _, small in parts if k in small]) for k in keys}
        self.record_fields = {}             # name: [(part path, shape)]
        for p, m, _ in parts:
            for n, shape in m["field_shape"].items():
                self.record_fields.setdefault(n, []).append((p, shape))

    def read(self, name, lo, hi):
        """Rows ``lo:hi`` of field ``name``: a state field, or a recorded one with the entries
        of every part joined along axis 1 (local: each rank reads its own)."""
        if name in self.meta["field_shape"]:
            return read_rows(self.path, f"fields/{name}", lo, hi)
        pieces = [read_rows(p, f"fields/{name}", lo, hi) for p, _ in self.record_fields.get(name, [])]
        return np.concatenate(pieces, axis=1) if pieces else np.zeros((hi - lo, 0))

    def files(self):
        """(path, meta) of the checkpoint and of each of its record parts."""
        return [(self.path, self.meta)] + [(p, m) for p, m, _ in self.parts]


def read_header(path):
    """A checkpoint's metadata and recordings, checked against their SHA-256 sums (no field
    data; no communication). Raises CheckpointIOError with the reason."""
    path = Path(path)
    meta, own, _ = _read_verified(path, FORMAT, "checkpoint")
    parts = []
    for entry in meta["records"]:
        part = path.parent / entry["file"]
        if not part.exists():
            raise CheckpointIOError(f"{path} needs its recordings {part}, which is missing")
        try:
            part_meta, small, sha = _read_verified(part, PART_FORMAT, "record part")
        except CheckpointIOError as exc:
            raise CheckpointIOError(f"{path}: its recordings: {exc}") from None
        if sha != entry["sha256"]:
            raise CheckpointIOError(f"{path}: its recordings {part} were replaced by others")
        parts.append((part, part_meta, small))
    tables = {k[len("table_"):]: v for k, v in own.items() if k.startswith("table_")}
    return Checkpoint(path, meta, parts, tables)


def verify_fields(ck, comm):
    """Check every field of a checkpoint and of its record parts against its checksum, each
    rank reading an even share of the rows. Collective. Raises CheckpointIOError on every
    rank if any field fails."""
    error = None
    for path, meta in ck.files():
        for name, shape in sorted(meta["field_shape"].items()):
            whose = "" if path == ck.path else f"{ck.path}: its recordings: "
            lo, hi = even_rows(shape[0], comm)
            try:
                rows = read_rows(path, f"fields/{name}", lo, hi)
            except (OSError, KeyError, ValueError) as exc:
                error = error or f"{whose}{path} cannot be read ({exc})"
                rows = np.zeros((hi - lo, *shape[1:]))
            got = field_hash(comm, Slab(tuple(shape), lo, rows))
            if f"{got:016x}" != meta["field_hash"][name]:
                error = error or f"{whose}{path} fails its checksum (fields/{name} corrupted)"
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
