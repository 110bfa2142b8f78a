"""Large tables in result and checkpoint files (issue 17): stored once, named by digest.

A deck whose CSV table has more than :data:`isosim.deck.tables.INLINE_ROWS` rows refers to
the file and the SHA-256 of its rows (``table_sha256``) instead of copying the rows into the
resolved deck, so ``deck.toml``, ``summary.json`` and the deck inside ``results.h5`` and
every checkpoint stay small. The rows themselves are written once:

- ``results.h5``: group ``tables/<sha256>``, one float64 dataset per column (``t_Myr`` and
  ``T_C``; the first is the others' axis), with the attributes ``columns``, ``deck_key``
  (``temperature``), ``file`` (the CSV it was read from) and ``sha256``;
- each checkpoint: the small array ``outputs/table_<sha256>`` (covered by the checkpoint's
  checksum), so that a restart does not depend on the CSV: it uses these rows, and warns if the
  CSV has changed since (:func:`keep_checkpoint_tables`, :func:`changed_files`).
"""

import numpy as np

from ..deck import tables as deck_tables

#: checkpoint small-array name prefix of a stored table
PREFIX = "table_"


def table_arrays(deck):
    """``{sha256: rows (n, k) float64}`` of the tables ``deck`` holds by reference."""
    return {sha: np.column_stack(cols) for sha, (_, _, cols) in deck_tables.large_tables(deck).items()}


def checkpoint_arrays(deck):
    """The small arrays of a checkpoint that store ``deck``'s large tables."""
    return {PREFIX + sha: rows for sha, rows in table_arrays(deck).items()}


def write_tables(h5, deck):
    """Write the large tables of ``deck`` into an open results file (rank 0, serial h5py): the
    group ``tables/<sha256>`` with one dataset per column, the first (``t_Myr``, ``x_mm``) the
    others' axis (its coordinate variable, so xarray reads the group as a table without an
    extra index), each with its units; the group's attributes name the deck key, the file and
    the digest."""
    from .layout import mark
    for sha, (key, names, cols) in deck_tables.large_tables(deck).items():
        columns = [n[len("table_"):] for n in names]
        g = h5.create_group(f"tables/{sha}")
        g.attrs["columns"] = columns
        g.attrs["deck_key"] = key
        g.attrs["file"] = _section(deck, key).get("file", "")
        g.attrs["sha256"] = sha
        g.attrs["description"] = (f"the rows of {key}.file; the deck refers to them by {key}.table_sha256, the "
                                  "SHA-256 of these float64 values row by row")
        for name, col in zip(columns, cols):
            ds = g.create_dataset(name, data=np.asarray(col, dtype=float))
            ds.attrs["units"] = deck_tables.UNITS.get(name.split("_", 1)[-1], "")
            ds.attrs["description"] = f"column {name} of {key}.file"
            mark(ds, [columns[0]])


def _section(deck, key):
    node = deck
    for part in key.split(".") if key else ():
        node = node[part]
    return node


def keep_checkpoint_tables(ck):
    """Make the tables stored in checkpoint ``ck`` this process's rows for their digests, so
    that its deck resolves without reading the CSV files. Local. Raises ValueError if rows do
    not match their digest."""
    for name, rows in getattr(ck, "tables", {}).items():
        deck_tables.remember(name, np.asarray(rows).T)


def changed_files(deck):
    """Messages for the CSV files of ``deck``'s large tables that no longer hold the rows of
    their ``table_sha256`` (changed, missing or unreadable). Local."""
    out = []
    for sha, (key, _, _) in deck_tables.large_tables(deck).items():
        section = _section(deck, key)
        found = deck_tables.file_digest(section)
        if found != sha:
            now = f"its rows' SHA-256 is now {found}" if found and len(found) == 64 else (found or "unreadable")
            out.append(f"{key}.file {section['file']} changed since the run started ({now}; the run's "
                       f"{key}.table_sha256 is {sha})")
    return out


def refuse_changed(run_dir, deck, what):
    """Refuse to continue the ``what`` (a sweep, an inversion) in ``run_dir`` when a large table
    of ``deck`` (resolved again from its CSV) is not the one ``run_dir/deck.toml`` recorded at
    its start: its finished members used the old rows, and a mix would be no sweep at all.
    Raises RestartError (exit 2) naming the file. Local."""
    from pathlib import Path

    from ..deck.load import read_toml
    from ..errors import IsosimError, RestartError
    from .rundir import is_complete
    if is_complete(run_dir):
        return                                # nothing left to compute: "nothing to do"
    try:
        old = read_toml(Path(run_dir) / "deck.toml")
    except IsosimError:
        return                                # the resume itself says what is wrong
    new = {key: sha for sha, (key, _, _) in deck_tables.large_tables(deck).items()}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
        sha = node.get(deck_tables.DIGEST_KEY)
        if isinstance(sha, str) and sha:
            yield prefix.rstrip("."), node.get("file", ""), sha

    for key, file, sha in walk(old, ""):
        if new.get(key) != sha:
            now = f"its rows' SHA-256 is now {new[key]}" if key in new else "it is no longer a large table"
            raise RestartError(
                f"error: {key}.file {file} changed since the {what} in {run_dir} started ({now}; the "
                f"{what}'s {key}.table_sha256 is {sha}): its finished members used the old rows, so the "
                f"restart is refused. Restore the file, or start the {what} again with --force.")
