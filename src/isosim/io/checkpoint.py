"""Checkpoint files: everything a run needs to continue as if it had never stopped.

Layout of ``checkpoint.h5`` (HDF5, written by rank 0, atomically)::

    /            attrs: format, isosim_version, model, deck_digest, time, step, dt,
                        nranks, petsc_options (JSON), sha256, complete
    /deck        the resolved deck as TOML text
    /state/*     the solution in rank-independent order (any rank count can restart)
    /outputs/*   what the run had recorded so far (time series, profiles)

The SHA-256 covers every dataset and the scalar attributes; ``complete`` is written last.
A file that fails either check is refused (and the previous checkpoint, kept as
``checkpoint.prev.h5``, is tried instead).
"""

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import CheckpointIOError
from .atomic import atomic_path

FORMAT = "isosim-checkpoint-1"
SCALARS = ("time", "step", "dt", "nranks")


def _digest(arrays, meta):
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def write_checkpoint(path, *, meta, deck_toml, state, outputs):
    """Write a checkpoint atomically, keeping the previous one as ``*.prev.h5``.

    Parameters
    ----------
    path : Path
    meta : dict
        JSON-able scalars: isosim_version, model, deck_digest, time, step, dt, nranks,
        petsc_options.
    deck_toml : str
    state, outputs : dict of ndarray
    """
    path = Path(path)
    arrays = {f"state/{k}": np.asarray(v) for k, v in state.items()}
    arrays.update({f"outputs/{k}": np.asarray(v) for k, v in outputs.items()})
    meta = dict(meta, deck_toml=deck_toml)
    checksum = _digest(arrays, meta)
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = FORMAT
                f.attrs["meta"] = json.dumps(meta, sort_keys=True)
                for k in ("isosim_version", "model", "deck_digest", *SCALARS):
                    f.attrs[k] = meta[k]
                f["deck"] = deck_toml
                for name, a in arrays.items():
                    f.create_dataset(name, data=a)
                f.attrs["sha256"] = checksum
                f.attrs["complete"] = 1
            # rotate before the rename: at every instant one complete checkpoint exists
            if path.exists():
                os.replace(path, path.with_name(path.stem + ".prev.h5"))
    except OSError as exc:
        raise CheckpointIOError(f"error: could not write checkpoint {path}: {exc}; the previous "
                                "checkpoint, if any, is intact") from None


def read_checkpoint(path):
    """Read and verify a checkpoint.

    Returns
    -------
    dict
        ``meta`` (dict), ``deck_toml`` (str), ``state`` and ``outputs`` (dicts of arrays).

    Raises
    ------
    CheckpointIOError
        Missing, truncated or corrupted file (with the reason).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise CheckpointIOError(f"{path} is not an isosim checkpoint")
            if int(f.attrs.get("complete", 0)) != 1:
                raise CheckpointIOError(f"{path} is incomplete (its writer was interrupted)")
            meta = json.loads(f.attrs["meta"])
            arrays = {}
            f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) and name != "deck" else None)
            stored = f.attrs["sha256"]
    except (OSError, KeyError, ValueError) as exc:
        raise CheckpointIOError(f"{path} cannot be read ({exc})") from None
    if _digest(arrays, meta) != stored:
        raise CheckpointIOError(f"{path} fails its checksum (corrupted)")
    return {
        "meta": meta,
        "deck_toml": meta["deck_toml"],
        "state": {k[6:]: v for k, v in arrays.items() if k.startswith("state/")},
        "outputs": {k[8:]: v for k, v in arrays.items() if k.startswith("outputs/")},
    }


def latest_good_checkpoint(run_dir, say=print):
    """The newest checkpoint in ``run_dir`` that verifies, trying the previous one if not."""
    run_dir = Path(run_dir)
    errors = []
    for name in ("checkpoint.h5", "checkpoint.prev.h5"):
        p = run_dir / name
        if not p.exists():
            continue
        try:
            ck = read_checkpoint(p)
        except CheckpointIOError as exc:
            errors.append(str(exc))
            say(f"warning: {exc}; trying an older checkpoint")
            continue
        return p, ck
    detail = "; ".join(errors) if errors else "no checkpoint.h5 there"
    raise CheckpointIOError(f"error: no usable checkpoint in {run_dir} ({detail})")
