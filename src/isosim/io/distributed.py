"""HDF5 files written by all ranks at once: each rank writes its own rows of a large field.

A *slab* is a rank's share of a field split along axis 0 (grain classes, capsule cells,
ensemble members). With an MPI-enabled h5py (Debian's ``python3-h5py-mpi`` under mpirun,
or a site's parallel h5py) the file is opened with the ``mpio`` driver and every rank
writes its slab in place: no field is ever assembled on one rank. With a serial h5py on
several ranks the slabs are gathered to rank 0 instead (correct, not scalable; a warning
says so once).

Files are written atomically (temporary name, fsync, rename by rank 0) and every field
carries a rank-count-independent 64-bit checksum (:func:`field_hash`), so a reader on any
number of ranks can verify what it reads.
"""

import contextlib
import errno
import hashlib
import os
import sys
from dataclasses import dataclass

import h5py
import numpy as np

from .atomic import _fsync_dir


@dataclass
class Slab:
    """This rank's part ``start : start + data.shape[axis]`` along ``axis`` of a field of
    global ``shape`` (checkpoint fields are split along axis 0)."""

    shape: tuple
    start: int
    data: np.ndarray
    axis: int = 0

    @property
    def stop(self):
        return self.start + self.data.shape[self.axis]

    def selection(self):
        """Index of this part in the global array."""
        return (slice(None),) * self.axis + (slice(self.start, self.stop),)


def parallel_h5py():
    """True when h5py can open files with the MPI-IO driver."""
    return bool(h5py.get_config().mpi)


# ------------------------------------------------------------------------------ checksums
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 1 << 20


def _weights(first, count):
    """splitmix64 of the global element indices, forced odd (odd weights make any change of
    a single 64-bit word change the sum)."""
    z = np.arange(first, first + count, dtype=np.uint64) * _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z ^= z >> np.uint64(31)
    return z | np.uint64(1)


def partial_hash(slab):
    """This rank's term of :func:`field_hash` (local, no communication)."""
    data = np.ascontiguousarray(slab.data)
    if data.dtype.itemsize != 8:
        data = data.astype(np.float64 if data.dtype.kind == "f" else np.int64)
    words = data.view(np.uint64).ravel()
    row = int(np.prod(slab.shape[1:], dtype=np.int64))
    first = slab.start * row
    total = np.zeros(1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(0, words.size, _CHUNK):   # bounded temporaries for large fields
            w = words[i:i + _CHUNK]
            total += np.sum(w * _weights(first + i, w.size), dtype=np.uint64)
    return total


def field_hash(comm, slab):
    """Checksum of a distributed field: sum over elements of word × odd weight(global index),
    modulo 2**64. The same whatever the number of ranks and the split. Collective."""
    from mpi4py import MPI
    total = partial_hash(slab)
    if comm.size > 1:
        comm.Allreduce(MPI.IN_PLACE, total, op=MPI.SUM)
    return int(total[0])


def even_rows(nrows, comm):
    """Rows ``[lo, hi)`` of an even split of ``nrows`` over the ranks (for verification)."""
    return nrows * comm.rank // comm.size, nrows * (comm.rank + 1) // comm.size


# ------------------------------------------------------------------------------ writing
_warned = []


class CollectiveFile:
    """An HDF5 file all ranks write at once, atomically. Use as a context manager. Collective.

    Every method must be called by every rank in the same order (HDF5's parallel metadata
    rule). Small arrays and attributes must be identical on every rank (broadcast them
    first); slabs differ per rank. Write errors are agreed on at the end: every rank then
    raises ``OSError`` and the target file is untouched.

    Parameters
    ----------
    path : Path
        Final name; the data is written to a temporary file beside it first.
    comm : mpi4py communicator
    keep_previous : Path or None
        If given, an existing ``path`` is renamed to this before the new file takes its place.
    prepare : callable(h5py.File) or None
        Called on rank 0 alone, first, with the new file open serially: the place for the
        small datasets that only rank 0 holds (ensemble results, time series).
    size_hint : int or None
        Expected size in bytes (rank 0's value is used). When the file system has less
        free space than that (plus a margin), nothing is written and ``OSError(ENOSPC)`` is
        raised: HDF5 meeting a full disk in the middle of a write can crash the process.
    seal : bool
        Put a SHA-256 of the whole file in its HDF5 user block (:func:`check_seal`), so that a
        reader can refuse a damaged file before the HDF5 library parses it: damaged HDF5
        metadata can crash the library, not just make it raise.
    finish : callable(h5py.File) or None
        Called on rank 0 alone, last, with the complete file reopened serially (before the
        seal): the place for metadata over the whole file (dimension scales, isosim.io.layout).
    """

    #: free space kept beyond ``size_hint``: HDF5's own metadata and some slack
    MARGIN = 1 << 20

    def __init__(self, path, comm, keep_previous=None, prepare=None, size_hint=None, seal=False,
                 finish=None):
        self.path = path
        self.finish = finish
        self.seal = seal
        self.comm = comm
        self.keep_previous = keep_previous
        self.prepare = prepare
        self.size_hint = size_hint
        self.parallel = comm.size > 1 and parallel_h5py()
        self.root = comm.rank == 0
        self.error = None
        self.file = None

    def __enter__(self):
        tmp = f".{self.path.name}.tmp.{os.getpid()}" if self.root else None
        self.tmp = self.path.with_name(self.comm.bcast(tmp, root=0))
        if self.comm.size > 1 and not self.parallel and self.root and not _warned:
            _warned.append(1)
            print("warning: h5py has no MPI support here; large fields are gathered on rank 0 "
                  "to be written (install an MPI-enabled h5py for collective output)", file=sys.stderr)
        if self.root and self.size_hint is not None:
            self._check_space()
        self._agree()
        # a sealed file keeps room for its seal in an HDF5 user block, set when it is created
        create = {"userblock_size": SEAL_BYTES} if self.seal else {}
        mode = "w"
        if self.prepare is not None:
            mode = "r+"
            if self.root:
                try:
                    with h5py.File(self.tmp, "w", **create) as f:
                        self.prepare(f)
                except OSError as exc:
                    self.error = exc
            self._agree()
            create = {}                  # created above; reopened
        try:
            if self.parallel:
                self.file = h5py.File(self.tmp, mode, driver="mpio", comm=self.comm, **create)
            elif self.root:
                self.file = h5py.File(self.tmp, mode, **create)
        except OSError as exc:
            self.error = exc
        self._agree()
        return self

    def _check_space(self):
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return                        # unknown: let the write itself find out
        free = st.f_bavail * st.f_frsize
        need = int(self.size_hint * 1.05) + self.MARGIN
        if free < need:
            self.error = OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({need / 1e6:.1f} MB "
                                 f"needed, {free / 1e6:.1f} MB free in {self.path.parent})")

    def _guard(self, fn):
        if self.error is None and self.file is not None:
            try:
                return fn()
            except OSError as exc:      # keep calling the collective sequence; agree at the end
                self.error = exc
        return None

    def _agree(self):
        errors = self.comm.allgather(None if self.error is None else str(self.error))
        bad = [e for e in errors if e]
        if bad:
            self._discard()
            raise OSError(bad[0])

    def _discard(self):
        with contextlib.suppress(Exception):
            if self.file is not None:
                self.file.close()
        self.file = None
        if self.root:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()

    def group(self, name):
        """Create group ``name`` (with parents) if missing. Collective."""
        self._guard(lambda: self.file.require_group(name))

    def attrs(self, name="/", **values):
        """Set attributes of object ``name``; identical values on every rank. Collective."""
        def put():
            obj = self.file[name]
            for k, v in values.items():
                obj.attrs[k] = v
        self._guard(put)

    def small(self, name, data, **attrs):
        """A dataset that fits on one rank, identical on every rank. Collective."""
        data = np.asarray(data)

        def put():
            if self.parallel:
                ds = self.file.create_dataset(name, shape=data.shape, dtype=data.dtype)
                if self.root and data.size:   # one writer; the others only took part in creating it
                    ds[...] = data
            else:
                ds = self.file.create_dataset(name, data=data)
            for k, v in attrs.items():
                ds.attrs[k] = v
        self._guard(put)

    def slab(self, name, slab, **attrs):
        """A distributed field: each rank writes its part in place. Collective."""
        shape = tuple(int(s) for s in slab.shape)
        data = np.ascontiguousarray(slab.data)
        dtype = self.comm.bcast(data.dtype if self.root else None, root=0)   # empty parts may differ
        if self.parallel:
            def put():
                ds = self.file.create_dataset(name, shape=shape, dtype=dtype)
                for k, v in attrs.items():
                    ds.attrs[k] = v
                if data.size:
                    ds[slab.selection()] = data
            self._guard(put)
            return
        if self.comm.size > 1:
            parts = self.comm.gather((slab.selection(), data), root=0)
            if not self.root:
                return
            full = np.empty(shape, dtype=dtype)
            for sel, part in parts:
                full[sel] = part
            data = full

        def put_serial():
            ds = self.file.create_dataset(name, data=data)
            for k, v in attrs.items():
                ds.attrs[k] = v
        self._guard(put_serial)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._discard()
            return False
        self._guard(lambda: self.file.close())
        self.file = None
        self._agree()
        if self.root:
            try:
                if self.finish is not None:
                    with h5py.File(self.tmp, "r+") as f:
                        self.finish(f)
                with open(self.tmp, "rb+") as fh:
                    if self.seal:
                        _write_seal(fh)
                    os.fsync(fh.fileno())
                if self.keep_previous is not None and self.path.exists():
                    # at every instant one complete file exists: the old one, renamed, or the new one
                    os.replace(self.path, self.keep_previous)
                os.replace(self.tmp, self.path)
                _fsync_dir(self.path.parent)
            except (OSError, ValueError) as err:      # ValueError: from finish
                self.error = err
        errors = self.comm.bcast(None if self.error is None else str(self.error), root=0)
        if errors:
            self._discard()
            raise OSError(errors)
        return False


# ------------------------------------------------------------------------------ seals
#: bytes of the HDF5 user block holding a sealed file's SHA-256 (HDF5 skips it when reading)
SEAL_BYTES = 512
_SEAL_TAG = b"isosim-seal sha256 "
_READ_BLOCK = 1 << 24


def _body_digest(fh):
    """SHA-256 and length of everything after the user block of an open file."""
    h, n = hashlib.sha256(), 0
    fh.seek(SEAL_BYTES)
    while block := fh.read(_READ_BLOCK):
        h.update(block)
        n += len(block)
    return h.hexdigest(), n


def _write_seal(fh):
    digest, n = _body_digest(fh)
    fh.seek(0)
    fh.write((_SEAL_TAG + f"{digest} {n}\n".encode()).ljust(SEAL_BYTES, b"\0"))
    fh.flush()


def seal_file(path):
    """Seal a closed HDF5 file created with ``userblock_size=SEAL_BYTES`` (local)."""
    with open(path, "rb+") as fh:
        _write_seal(fh)


def read_seal(path):
    """The SHA-256 recorded in the seal of ``path`` (not checked: see :func:`check_seal`), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SEAL_BYTES)
    except OSError:
        return None
    if not head.startswith(_SEAL_TAG):
        return None
    fields = head[len(_SEAL_TAG):].split(b"\n")[0].decode(errors="replace").split()
    return fields[0] if fields else None


def check_seal(path):
    """Why the sealed file ``path`` (``CollectiveFile(..., seal=True)``) is not intact, or None
    if it is: every byte after its user block hashes to the SHA-256 in it. Reads the whole
    file, without the HDF5 library. Local."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SEAL_BYTES)
            if not head.startswith(_SEAL_TAG):
                return "has no isosim seal (not written by this isosim, or damaged at its start)"
            try:
                digest, n = head[len(_SEAL_TAG):].split(b"\n")[0].decode().split()
                n = int(n)
            except ValueError:
                return "has a damaged seal"
            got, size = _body_digest(fh)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size != n:
        return f"is {size + SEAL_BYTES} bytes long, {n + SEAL_BYTES} were written (truncated or extended)"
    if got != digest:
        return "fails its checksum (corrupted)"
    return None


def read_rows(path, name, lo, hi):
    """Rows ``lo:hi`` of dataset ``name`` (each rank opens the file for itself; read-only
    opens need no coordination)."""
    with h5py.File(path, "r") as f:
        return f[name][lo:hi]
