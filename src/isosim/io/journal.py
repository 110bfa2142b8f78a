"""The finished units of a study (a batch of sweep members, one member integrated alone),
kept as they complete so that a stopped or killed study resumes where it was.

Each unit is one file ``DIR/units/part-<name>.h5``, written atomically and sealed (SHA-256
of the whole file in its HDF5 user block, checked before HDF5 reads it), holding the
unit's member indices, each member's headline (JSON: floats round-trip exactly), its
series (float64, [member, time], padded with NaN to the longest) and, where the deck keeps
them (``output.sweep_profiles``), its end profiles (float64, [member, ...], padded with NaN
to the largest; each member's own shape kept beside). Headlines are stored as
the study's summary.json renders them (numpy scalars as floats), so that a resumed study
writes the same bytes. Files are only ever
added: a unit written twice (a restart after a kill in the rename) is the same unit, and a
damaged or foreign file is ignored, so that unit is computed again.

Local: whichever rank integrated a unit writes its file; names differ, so ranks never
write the same file.
"""

import json
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_path
from .distributed import SEAL_BYTES, check_seal, seal_file

FOLDER = "units"
#: keys of a member's series dict that hold one of its end profiles (an N-D array), not a series
PROFILE = "profile/"


def split_profiles(series):
    """``(series, profiles)`` of a member's series dict: the 1-D series against time, and its
    end profiles ``{name: array}`` (the keys under :data:`PROFILE`, prefix removed)."""
    if not any(k.startswith(PROFILE) for k in series):
        return series, {}           # not copied: 10^4 members' copies were a second of a sweep's output
    plain = {k: v for k, v in series.items() if not k.startswith(PROFILE)}
    return plain, {k[len(PROFILE):]: v for k, v in series.items() if k.startswith(PROFILE)}


def pad_stack(arrays):
    """One float64 array [len(arrays), *largest shape] of equally-ranked ``arrays``, each in its
    corner, the rest NaN (members of a sweep may differ in series length or class count).
    Arrays of one shape (the usual case) are stacked in one numpy call: placing 10^4 small
    arrays one by one took seconds of a sweep's serial output."""
    arrays = list(arrays)
    if arrays:
        shape = np.shape(arrays[0])
        if all((a.shape if type(a) is np.ndarray else np.shape(a)) == shape for a in arrays):
            return np.array(arrays, dtype=float).reshape(len(arrays), *shape)
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    shape = tuple(max(s) for s in zip(*(a.shape for a in arrays))) if arrays else ()
    out = np.full((len(arrays), *shape), np.nan)
    for k, a in enumerate(arrays):
        out[(k, *(slice(0, n) for n in a.shape))] = a
    return out


class UnitJournal:
    """Finished units of one study in ``run_dir/units``.

    Parameters
    ----------
    run_dir : path
    prefix : str
        Prepended to every unit name (an inversion's evaluation number, say), so that several
        passes of one study share the folder.
    """

    def __init__(self, run_dir, prefix=""):
        self.folder = Path(run_dir) / FOLDER
        self.prefix = prefix

    def with_prefix(self, prefix):
        return UnitJournal(self.folder.parent, prefix)

    def path(self, name):
        return self.folder / f"part-{self.prefix}{name}.h5"

    def load(self, name, members):
        """``[(member, headline, series)]`` of unit ``name`` if it was finished with exactly
        these ``members``, else None (missing, damaged, or another unit's file)."""
        path = self.path(name)
        if not path.is_file() or check_seal(path) is not None:
            return None
        try:
            with h5py.File(path, "r") as h5:
                if list(h5["members"][()]) != list(members):
                    return None
                heads = json.loads(h5.attrs["headlines"])
                keys = json.loads(h5.attrs["series_keys"])
                lengths = h5["series_length"][()]
                arrays = [h5[f"series/{j}"][()] for j in range(len(keys))]
                pkeys = json.loads(h5.attrs.get("profile_keys", "[]"))
                profiles = [(h5[f"profile/{j}"][()], h5[f"profile_shape/{j}"][()]) for j in range(len(pkeys))]
        except (OSError, KeyError, ValueError):
            return None
        out = []
        for k, i in enumerate(members):
            series = {key: arrays[j][k, :lengths[k]].copy() for j, key in enumerate(keys)}
            for key, (arr, shapes) in zip(pkeys, profiles):
                series[PROFILE + key] = arr[(k, *(slice(0, int(n)) for n in shapes[k]))].copy()
            out.append((i, heads[k], series))
        return out

    def save(self, name, results):
        """Keep unit ``name``: ``results`` as :meth:`load` returns them (atomic, sealed)."""
        self.folder.mkdir(exist_ok=True)
        members = [i for i, _, _ in results]
        split = [split_profiles(s) for _, _, s in results]
        keys = list(split[0][0])
        pkeys = list(split[0][1])
        lengths = np.array([len(s[keys[0]]) if keys else 0 for s, _ in split], dtype=np.int64)
        with atomic_path(self.path(name)) as tmp:
            with h5py.File(tmp, "w", userblock_size=SEAL_BYTES) as h5:
                h5.create_dataset("members", data=np.asarray(members, dtype=np.int64))
                h5.attrs["headlines"] = json.dumps([h for _, h, _ in results], default=float)
                h5.attrs["series_keys"] = json.dumps(keys)
                h5.create_dataset("series_length", data=lengths)
                for j, key in enumerate(keys):
                    h5.create_dataset(f"series/{j}", data=pad_stack([s[key] for s, _ in split]))
                if pkeys:
                    h5.attrs["profile_keys"] = json.dumps(pkeys)
                for j, key in enumerate(pkeys):
                    h5.create_dataset(f"profile/{j}", data=pad_stack([p[key] for _, p in split]))
                    h5.create_dataset(f"profile_shape/{j}", data=np.array([np.shape(p[key]) for _, p in split],
                                                                          dtype=np.int64))
            seal_file(tmp)

    def finished(self):
        """Names of the unit files present (unverified), without prefix and suffix."""
        if not self.folder.is_dir():
            return set()
        head = f"part-{self.prefix}"
        return {p.name[len(head):-3] for p in self.folder.glob(f"{head}*.h5")}

    def count_members(self):
        """Members in the intact unit files (all prefixes)."""
        n = 0
        for p in sorted(self.folder.glob("part-*.h5")) if self.folder.is_dir() else []:
            if check_seal(p) is None:
                try:
                    with h5py.File(p, "r") as h5:
                        n += h5["members"].shape[0]
                except (OSError, KeyError):
                    pass
        return n
