"""Two-column CSV tables referenced by decks (a T-t path, a T-x profile).

They are read when the deck is loaded and copied into the resolved deck, so that a run
directory's ``deck.toml`` (and every checkpoint) is self-contained.
"""

import math
from pathlib import Path


def read_columns_csv(base_dir, name, key, header, units):
    """Read ``name`` (relative to ``base_dir``): a header row ``header`` then numeric rows
    whose first column strictly increases and whose temperatures are above absolute zero.

    Returns
    -------
    (list of lists or None, list of str)
        The columns, and the problems found (file, line, what is wrong, what was expected).
    """
    f = Path(base_dir) / name
    expected = ",".join(header)
    try:
        lines = f.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{key} = {name!r}: cannot be read ({exc})"]
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    if not rows:
        return None, [f"{key} {f}: empty; expected a header '{expected}' and rows"]
    got = [c.strip() for c in rows[0][1].split(",")]
    if got[:len(header)] != list(header):
        return None, [f"{key} {f} line {rows[0][0]}: header {rows[0][1]!r}; expected '{expected}' ({units})"]
    cols = [[] for _ in header]
    for lineno, ln in rows[1:]:
        cells = ln.split(",")
        try:
            vals = [float(cells[k]) for k in range(len(header))]
        except (ValueError, IndexError):
            count = {2: "two", 3: "three"}.get(len(header), str(len(header)))
            return None, [f"{key} {f} line {lineno}: {ln!r}; expected {count} numbers ({units})"]
        if not all(math.isfinite(v) for v in vals) or any(
                v <= -273.15 for h, v in zip(header, vals) if h == "T_C"):
            return None, [f"{key} {f} line {lineno}: {ln!r}; expected finite numbers and T above -273.15"]
        if cols[0] and vals[0] <= cols[0][-1]:
            return None, [f"{key} {f} line {lineno}: {header[0]} {vals[0]:g} does not increase "
                          f"(previous {cols[0][-1]:g})"]
        for c, v in zip(cols, vals):
            c.append(v)
    if len(cols[0]) < 2:
        return None, [f"{key} {f}: {len(cols[0])} data row(s); expected at least 2 rows"]
    return cols, []
