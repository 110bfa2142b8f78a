"""Two-column CSV tables referenced by decks (a T-t path, a T-x profile).

They are read when the deck is loaded and copied into the resolved deck, so that a run
directory's ``deck.toml`` (and every checkpoint) is self-contained.

These files come from outside isosim (spreadsheets, digitised figures), so every way they
can be wrong is reported as a problem naming the file, the line, the column and what was
expected: unreadable or non-UTF-8 bytes, no header, missing, extra or misnamed columns,
units other than the declared ones (``T_K`` for ``T_C``), blank or non-numeric cells,
non-finite values, temperatures below absolute zero, a first column that does not increase,
fewer than two rows. Pure Python, no MPI: decks are read on one process.
"""

import csv
import math
import os
import re
from pathlib import Path

#: At most this many problems are listed for one file (a wrong file can have thousands).
MAX_PROBLEMS = 10

#: Readable names of the quantities and units used in column names ``<quantity>_<unit>``.
QUANTITIES = {"t": "time", "x": "position", "T": "temperature"}
UNITS = {"C": "degC", "K": "K", "F": "degF", "Myr": "Myr", "Ma": "Ma", "yr": "yr", "kyr": "kyr",
         "Gyr": "Gyr", "s": "s", "h": "h", "mm": "mm", "cm": "cm", "m": "m", "um": "um"}
# a column name with a unit: t_Myr, T_C, "T (K)", "x [cm]"
_NAME_UNIT = re.compile(r"^\s*([A-Za-z]+)\s*(?:_\s*([^\s]+)|\(\s*([^)]*?)\s*\)|\[\s*([^\]]*?)\s*\])\s*$")


def read_text_file(path):
    """The text of a UTF-8 file (a byte-order mark is accepted) and a problem, one of them None.

    A decoding failure names the line and column of the first byte that is not UTF-8: the
    usual cause is a file saved by a spreadsheet in a legacy encoding (a degree sign in
    Latin-1), which the user can find and fix from that position.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"{path}: no such file"
    except IsADirectoryError:
        return None, f"{path}: is a directory; expected a CSV file"
    except OSError as exc:
        return None, f"{path}: cannot be read ({exc.strerror or exc})"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        return None, (f"{path} line {line}, column {column}: byte 0x{data[start]:02x} is not UTF-8; "
                      "expected a UTF-8 text file (save it as UTF-8 / 'CSV UTF-8')")


def _split_name(name):
    """``(quantity, unit)`` of a column name such as ``T_C`` or ``T (K)``, or ``(name, None)``."""
    m = _NAME_UNIT.match(name)
    if not m:
        return name.strip(), None
    return m.group(1), next(g for g in m.groups()[1:] if g is not None)


def _describe(name):
    q, u = _split_name(name)
    what = QUANTITIES.get(q, q)
    return f"{what} in {UNITS.get(u, u)}" if u else what


def _header_problems(f, lineno, got, header, units):
    """Problems of a header row ``got`` against the expected column names ``header``."""
    expected = f"expected '{','.join(header)}' ({units})"
    if len(got) == 1 and any(sep in got[0] for sep in (";", "\t")):
        sep = "';'" if ";" in got[0] else "tabs"
        return [f"{f} line {lineno}: header {got[0]!r} is separated by {sep}, not commas; {expected}"]
    problems = []
    for k, want in enumerate(header):
        if k >= len(got):
            problems.append(f"{f} line {lineno}: column {k + 1} ({want}) is missing; {expected}")
            continue
        have = got[k]
        if have == want:
            continue
        (q_have, u_have), (q_want, _) = _split_name(have), _split_name(want)
        if q_have == q_want and u_have is None:
            problems.append(f"{f} line {lineno}: column {k + 1} is {have!r}, without a unit; {expected}")
        elif q_have == q_want:
            problems.append(f"{f} line {lineno}: column {k + 1} is {have!r} ({_describe(have)}), not {want!r} "
                            f"({_describe(want)}): convert the values and rename the column; {expected}")
        else:
            problems.append(f"{f} line {lineno}: column {k + 1} is {have!r}; {expected}")
    for k in range(len(header), len(got)):
        problems.append(f"{f} line {lineno}: column {k + 1} {got[k]!r} is not used (remove it); {expected}")
    return problems


def read_columns_csv(base_dir, name, key, header, units):
    """Read ``name`` (relative to ``base_dir``): a header row ``header`` then numeric rows
    whose first column strictly increases and whose temperatures are above absolute zero.

    Lines that are blank or start with ``#`` are skipped (comments). Cells may be quoted.

    Parameters
    ----------
    base_dir : Path
        Directory of the deck (relative file names are relative to it).
    name : str
        The deck's file name value.
    key : str
        The deck key holding ``name`` (for messages).
    header : tuple of str
        The expected column names, ``<quantity>_<unit>``.
    units : str
        The columns' meaning in words, quoted in messages.

    Returns
    -------
    (list of lists or None, list of str)
        The columns, and the problems found (file, line, column, what is wrong, what was
        expected); at most :data:`MAX_PROBLEMS` of them plus a count of the rest.
    """
    f = Path(base_dir) / name
    where = f"{key} {f}"
    text, problem = read_text_file(f)
    if problem:
        return None, [f"{key} = {name!r}: {problem}"]
    rows = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")]
    expected = ",".join(header)
    if not rows:
        return None, [f"{where}: empty (no header, no rows); expected a header '{expected}' ({units}) "
                      "and at least 2 rows"]
    hline, htext = rows[0]
    got = _cells(htext)
    problems = _header_problems(where, hline, got, header, units)
    if problems:
        return None, problems
    cols = [[] for _ in header]
    count = {2: "two", 3: "three"}.get(len(header), str(len(header)))
    last_line = None
    for lineno, ln in rows[1:]:
        cells = _cells(ln)
        if len(cells) != len(header):
            problems.append(f"{where} line {lineno}: {ln!r} has {len(cells)} field(s); expected {len(header)} "
                            f"({expected}: {units})")
            continue
        vals = []
        for k, (cell, col) in enumerate(zip(cells, header)):
            v = _number(cell)
            if v is None:
                problems.append(f"{where} line {lineno}, column {k + 1} ({col}): {cell!r} is not a finite number; "
                                f"expected {count} numbers ({units})")
            elif col.startswith("T_") and v <= -273.15:
                problems.append(f"{where} line {lineno}, column {k + 1} ({col}): {cell} is at or below absolute "
                                "zero; expected a temperature above -273.15 degC")
                v = None
            vals.append(v)
        if None in vals:
            continue
        if cols[0] and vals[0] <= cols[0][-1]:
            problems.append(f"{where} line {lineno}, column 1 ({header[0]}): {vals[0]:g} does not increase "
                            f"(previous {cols[0][-1]:g}, line {last_line}); expected strictly increasing "
                            f"{QUANTITIES.get(_split_name(header[0])[0], header[0])}s")
            continue
        for c, v in zip(cols, vals):
            c.append(v)
        last_line = lineno
    if not problems and len(cols[0]) < 2:
        problems.append(f"{where}: {len(cols[0])} data row(s); expected at least 2 rows under the header "
                        f"'{expected}'")
    if len(problems) > MAX_PROBLEMS:
        problems = problems[:MAX_PROBLEMS] + [f"{where}: ... and {len(problems) - MAX_PROBLEMS} more problems"]
    return (None, problems) if problems else (cols, [])


def _cells(line):
    """The stripped cells of one CSV line (quotes allowed; a malformed quote stays in the cell)."""
    try:
        return [c.strip() for c in next(csv.reader([line], skipinitialspace=True))]
    except csv.Error:       # e.g. a NUL byte: keep the raw text, which then fails as a number
        return [c.strip() for c in line.split(",")]


def _number(cell):
    """The cell as a finite float, or None."""
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------ large tables (issue 17)
#: A table read from a CSV with more rows than this is not copied into the resolved deck: the
#: deck keeps the file's absolute path and ``table_sha256``, the SHA-256 of its rows
#: (:func:`table_digest`); the rows are kept once per process here, stored once in results.h5
#: and in each checkpoint (``tables/<sha256>``), and read back by the digest. Smaller tables
#: are copied into the deck as they always were.
INLINE_ROWS = 1000

#: Deck key of the digest (in the table's section, beside ``file`` and the ``table_*`` columns).
DIGEST_KEY = "table_sha256"

_ROWS = {}        # sha256 -> tuple of read-only float64 columns (this process)
_FILES = {}       # (file, size, mtime_ns, inode, header) -> (columns, problems): one parse per file


def table_digest(columns):
    """SHA-256 of a table's values: little-endian float64, row by row (``t0, T0, t1, T1, ...``),
    so that reformatting the CSV (``1.0`` for ``1``, comments) keeps it and any changed value
    changes it. ``hashlib.sha256(np.column_stack(cols).astype('<f8').tobytes()).hexdigest()``."""
    import hashlib

    import numpy as np
    rows = np.column_stack([np.asarray(c, dtype="<f8") for c in columns])
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()


def remember(digest, columns, check=True):
    """Keep the rows of table ``digest`` for this process (from a file or a checkpoint).
    With ``check``, rows that do not match ``digest`` raise ValueError."""
    import numpy as np
    if digest in _ROWS:
        return _ROWS[digest]
    cols = []
    for c in columns:
        a = np.array(c, dtype=float)          # a contiguous copy, read-only: shared by every member
        a.setflags(write=False)
        cols.append(a)
    if check and table_digest(cols) != digest:
        raise ValueError(f"rows do not match their SHA-256 {digest}")
    _ROWS[digest] = tuple(cols)
    return _ROWS[digest]


def _read_cached(base_dir, name, key, header, units):
    """The columns (float64 arrays) and problems of :func:`read_columns_csv`, parsed once per
    version of the file (sweeps validate every member's deck; a 10^6-row file takes seconds)."""
    import numpy as np
    f = os.path.abspath(Path(base_dir) / name)
    try:
        st = os.stat(f)
        stamp = (f, st.st_size, st.st_mtime_ns, st.st_ino, tuple(header))
    except (OSError, ValueError):
        stamp = None
    if stamp is not None and stamp in _FILES:
        cols, problems = _FILES[stamp]
        return cols, list(problems)
    cols, problems = read_columns_csv(base_dir, name, key, header, units)
    if cols is not None:
        cols = [np.array(c, dtype=float) for c in cols]
    if stamp is not None:
        _FILES.clear()                        # the last file only: a deck has one table
        _FILES[stamp] = (cols, problems)
    return cols, list(problems)


def column_keys(section):
    """The deck keys holding a table's columns (``table_t_Myr``, ``table_T_C``), in order."""
    return [k for k in section if k.startswith("table_") and k != DIGEST_KEY]


def resolve_table(section, base_dir, header, units, where="temperature"):
    """Fill a table section (``file``, ``table_*`` columns, optional ``table_sha256``) of a
    resolved deck. Returns a list of problems.

    - rows given in the deck: kept (``table_sha256``, if given, must match them);
    - a CSV of at most :data:`INLINE_ROWS` rows: its rows are copied into the deck (as before);
    - a larger CSV: ``file`` becomes its absolute path, ``table_sha256`` the digest of its rows,
      the columns stay empty; the rows are kept by :func:`remember`;
    - ``table_sha256`` given (a run directory's deck.toml, or a pin): rows already kept under
      that digest (read from a checkpoint at a restart) are used as they are; otherwise the
      file is read and must have that digest, or the deck is refused naming the file.
    """
    keys = column_keys(section)
    pinned = section.get(DIGEST_KEY) or ""
    if not pinned:
        section.pop(DIGEST_KEY, None)         # absent from resolved decks that do not use it
    if section[keys[0]]:
        if pinned and table_digest([section[k] for k in keys]) != pinned:
            return [f"{where}.{DIGEST_KEY} = {pinned!r}: does not match the rows {', '.join(keys)} given in "
                    "the deck; remove it, or give the rows it was computed from"]
        return []
    if not section["file"]:
        return []
    f = os.path.abspath(Path(base_dir) / section["file"])
    if pinned and pinned in _ROWS:
        section["file"] = f
        return []
    cols, problems = _read_cached(base_dir, section["file"], f"{where}.file", header, units)
    if problems:
        return problems
    digest = table_digest(cols)
    if pinned and digest != pinned:
        return [f"{where}.file = {section['file']!r}: the rows of {f} changed since this deck was resolved "
                f"(the SHA-256 of its rows is now {digest}, the deck's {where}.{DIGEST_KEY} is {pinned}): "
                "results would differ. Restore the file; or, for a new run with the new rows, remove "
                f"{DIGEST_KEY} from the deck"]
    if len(cols[0]) <= INLINE_ROWS and not pinned:
        for k, c in zip(keys, cols):
            section[k] = c.tolist()           # the floats read, exactly
        return []
    remember(digest, cols, check=False)
    section["file"] = f
    section[DIGEST_KEY] = digest
    return []


def table_columns(section):
    """The columns of a table section as arrays: the deck's own rows, or those kept under its
    ``table_sha256`` (read from ``file`` and checked against the digest if this process has not
    kept them yet). Raises ValueError naming the file if they cannot be had."""
    import numpy as np
    keys = column_keys(section)
    digest = section.get(DIGEST_KEY) or ""
    if section[keys[0]] or not digest:
        return [np.asarray(section[k], dtype=float) for k in keys]
    if digest not in _ROWS:
        header = tuple(k[len("table_"):] for k in keys)
        cols, problems = _read_cached(".", section["file"], "file", header, ", ".join(header))
        if problems:
            raise ValueError(f"the table {section['file']} (table_sha256 = {digest}) cannot be read: "
                             + "; ".join(problems))
        try:
            remember(digest, cols)
        except ValueError:
            raise ValueError(f"the rows of {section['file']} changed since the deck was resolved (their "
                             f"SHA-256 is now {table_digest(cols)}, the deck's table_sha256 is {digest})") from None
    return list(_ROWS[digest])


def large_tables(deck):
    """``{sha256: (section key, column names, columns)}`` of every table a resolved deck holds
    by reference (what results.h5 and checkpoints store, once each)."""
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
        digest = node.get(DIGEST_KEY) if isinstance(node.get(DIGEST_KEY), str) else ""
        if digest and digest not in out:
            keys = column_keys(node)
            out[digest] = (prefix.rstrip("."), keys, table_columns(node))

    walk(deck, "")
    return out


def file_digest(section):
    """The digest of the rows ``section['file']`` holds now, or why there is none. Local."""
    keys = column_keys(section)
    header = tuple(k[len("table_"):] for k in keys)
    cols, problems = _read_cached(".", section["file"], "file", header, ", ".join(header))
    if problems:
        return "; ".join(problems)
    return table_digest(cols)
