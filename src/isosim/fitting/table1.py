"""Reading thermal-diffusion isotope data laid out like Huang et al. (2010), Table 1.

Two CSV files; lines starting with ``#`` are comments, the first other line is the header,
and a blank cell means "not reported".

*samples* (required): ``experiment, position, T_C`` then, for each isotope ratio,
``d<mass><Element>`` and ``d<mass><Element>_2s`` (permil against a standard, 2 sigma) and
optionally ``N_<Element>`` (number of repeat analyses, checked but not used). The isotope
columns are found from the header; the denominator isotope is the element's usual one
(:data:`isosim.physics.isotopes.REFERENCE_ISOTOPE`). Position ``start`` is the starting material (no temperature).

*experiments* (optional): ``experiment`` and, where known, ``start_row_from`` (whose
``start`` row to use, for experiments without their own, e.g. ZM71 -> ZM70) and the
published values to compare with: ``T0_C``, ``Omega_<Element>``, ``dT_published_C``,
``dT_span`` (``A-C``: the positions the published temperature span is between), ``duration_h``.
Other columns are kept as text.

Every mistake found is reported at once, as a ``DataFileError`` naming the line, the column,
the value and what was expected.
"""

import csv
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..deck.tables import read_text_file
from ..errors import DataFileError, UsageError
from ..physics.isotopes import ISOTOPE_MASSES, REFERENCE_ISOTOPE

START = "start"
REQUIRED = ("experiment", "position", "T_C")
EXPERIMENT_NUMBERS = ("duration_h", "dT_published_C", "T0_C")
_ISOTOPE = re.compile(r"^d(\d+)([A-Z][a-z]?)$")
_TWO_SIGMA = re.compile(r"^d(\d+)([A-Z][a-z]?)_2s$")
_COUNT = re.compile(r"^N_([A-Z][a-z]?)$")
_OMEGA = re.compile(r"^Omega_([A-Z][a-z]?)$")
_OTHER_T = re.compile(r"^T_(K|F|degK|degF|kelvin|Kelvin)$")


@dataclass
class Pair:
    """One isotope ratio (e.g. 57Fe/54Fe) measured along one experiment."""

    experiment: str
    column: str                 #: the samples-file column, e.g. ``d57Fe``
    element: str
    mass_number: int
    ref_mass_number: int
    dm_amu: float               #: m(numerator) - m(reference), exact masses
    positions: list
    T_C: np.ndarray
    delta_permil: np.ndarray
    two_sigma_permil: np.ndarray
    start_permil: float
    start_two_sigma_permil: float
    start_from: str             #: the experiment whose ``start`` row gave the starting material

    @property
    def label(self):
        """The ratio as text, e.g. ``57Fe/54Fe``."""
        return f"{self.mass_number}{self.element}/{self.ref_mass_number}{self.element}"


@dataclass
class Experiment:
    """The pairs of one experiment and its row of the experiments file (``{}`` if none)."""

    name: str
    pairs: list
    start_from: str
    published: dict = field(default_factory=dict)

    @property
    def elements(self):
        """The elements measured, in column order."""
        return list(dict.fromkeys(p.element for p in self.pairs))


@dataclass
class Table1:
    """Everything read: experiments in file order, and notes on what was assumed."""

    path: str
    experiments_path: str
    experiments: dict
    notes: list


def isotope_of(column):
    """``(element, mass number, dm_amu)`` of a column ``d<mass><Element>``; ValueError if unknown."""
    m = _ISOTOPE.match(column)
    if not m:
        raise ValueError(f"column {column!r} is not of the form d<mass><Element>")
    a, el = int(m.group(1)), m.group(2)
    if a not in ISOTOPE_MASSES.get(el, {}):
        known = ", ".join(f"{n}{e}" for e, masses in ISOTOPE_MASSES.items() for n in masses)
        raise ValueError(f"column {column!r}: unknown isotope {a}{el} (known: {known})")
    ref = REFERENCE_ISOTOPE[el]
    if a == ref:
        raise ValueError(f"column {column!r}: {a}{el} is the reference isotope of {el}; its delta is always 0")
    return el, a, ISOTOPE_MASSES[el][a] - ISOTOPE_MASSES[el][ref]


def _read_csv(path):
    """Header and ``(line number, cells)`` of the non-comment, non-blank lines."""
    text, problem = read_text_file(path)
    if problem:
        raise UsageError(f"error: {problem}")
    rows = [(n, [c.strip() for c in next(csv.reader([line]), [])])
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise DataFileError(path, ["no header line (the file is empty or only comments)"])
    (hline, header), body = rows[0], rows[1:]
    problems = [f"line {hline}: header column {i + 1} is empty" for i, h in enumerate(header) if not h]
    problems += [f"line {hline}: header column {h!r} appears more than once"
                 for h in dict.fromkeys(h for h in header if h and header.count(h) > 1)]
    wrong = [(n, len(cells)) for n, cells in body if len(cells) != len(header)]
    problems += [f"line {n}: {k} fields, but the header (line {hline}) has {len(header)}" for n, k in wrong[:10]]
    if len(wrong) > 10:
        problems.append(f"... and {len(wrong) - 10} more lines whose number of fields differs from the header's")
    if problems:
        raise DataFileError(path, problems)
    return hline, header, body


def _number(cell, where, problems, positive=False, integer=False):
    """The cell as a float (None if blank); a problem naming ``where`` if it is not one."""
    if cell == "":
        return None
    try:
        x = float(cell)
    except ValueError:
        x = math.nan
    kind = "a positive number" if positive else ("a whole number >= 0" if integer else "a number")
    bad = not math.isfinite(x) or (positive and x <= 0) or (integer and (x < 0 or x != int(x)))
    if bad:
        problems.append(f"{where}: {cell!r} is not {kind} (blank = not reported)")
        return None
    return x


def _classify_header(path, hline, header):
    """The isotope columns of a samples header; DataFileError on unknown or unpaired columns."""
    problems = [f"line {hline}: required column {c!r} is missing" for c in REQUIRED if c not in header]
    if "T_C" not in header:     # a temperature column in other units: say so, not just "unknown column"
        problems += [f"line {hline}: column {h!r} looks like a temperature in {h[2:]}; expected 'T_C' (degC)"
                     for h in header if _OTHER_T.match(h)]
    isotopes = []
    for h in header:
        if h in REQUIRED or _COUNT.match(h) or _OTHER_T.match(h):
            continue
        if _TWO_SIGMA.match(h):
            if h[:-3] not in header:
                problems.append(f"line {hline}: column {h!r} has no value column {h[:-3]!r}")
            continue
        try:
            isotope_of(h)
        except ValueError as exc:
            problems.append(f"line {hline}: {exc}; expected experiment, position, T_C, "
                            "d<mass><Element>, d<mass><Element>_2s or N_<Element>")
            continue
        if h + "_2s" not in header:
            problems.append(f"line {hline}: column {h!r} has no 2-sigma column {h + '_2s'!r}")
        isotopes.append(h)
    if not isotopes:
        problems.append(f"line {hline}: no isotope columns d<mass><Element> in the header")
    if problems:
        raise DataFileError(path, problems)
    return isotopes


def read_samples(path):
    """Read a samples file.

    Returns
    -------
    records : dict
        ``{experiment: {position: {"line": n, "T_C": float or None, column: (value, 2sigma)}}}``
        with blanks as None; 2 sigma not yet filled in.
    columns : list of str
        The isotope columns, in header order.
    """
    hline, header, body = _read_csv(path)
    columns = _classify_header(path, hline, header)
    problems, records = [], {}
    for n, cells in body:
        row = dict(zip(header, cells))
        exp, pos = row["experiment"], row["position"]
        if not exp or not pos:
            problems.append(f"line {n}: column {'experiment' if not exp else 'position'!r} is blank")
            continue
        tag = f"line {n} ({exp} {pos})"
        if pos in records.get(exp, {}):
            problems.append(f"{tag}: position {pos!r} of {exp} appears twice "
                            f"(also line {records[exp][pos]['line']})")
            continue
        rec = {"line": n, "T_C": _number(row["T_C"], f"{tag}, column 'T_C'", problems)}
        if pos != START and rec["T_C"] is None and row["T_C"] == "":
            problems.append(f"{tag}, column 'T_C': blank, but a sample needs its temperature (°C); "
                            f"only position {START!r} (starting material) has none")
        for h in header:
            if _COUNT.match(h):
                _number(row[h], f"{tag}, column {h!r}", problems, integer=True)
        for c in columns:
            v = _number(row[c], f"{tag}, column {c!r}", problems)
            s = _number(row[c + "_2s"], f"{tag}, column {c + '_2s'!r}", problems, positive=True)
            if v is None and s is not None and row[c] == "":
                problems.append(f"{tag}, column {c + '_2s'!r}: {row[c + '_2s']!r} given but {c!r} is blank")
            rec[c] = (v, s)
        records.setdefault(exp, {})[pos] = rec
    if problems:
        raise DataFileError(path, problems)
    return records, columns


def read_experiments(path, records):
    """Read an experiments file; check it against the samples ``records``.

    Returns
    -------
    dict
        ``{experiment: {"line": n, "start_row_from": str or None, "T0_C", "duration_h",
        "dT_published_C": float or None, "dT_span": (hot, cold) or None,
        "Omega": {element: float}, "text": {column: str}}}``.
    notes : list of str
    """
    hline, header, body = _read_csv(path)
    if "experiment" not in header:
        raise DataFileError(path, [f"line {hline}: required column 'experiment' is missing"])
    problems, notes, meta = [], [], {}
    for h in header:
        m = _OMEGA.match(h)
        if m and m.group(1) not in REFERENCE_ISOTOPE:
            problems.append(f"line {hline}: column {h!r}: unknown element {m.group(1)!r} "
                            f"(known: {', '.join(REFERENCE_ISOTOPE)})")
    for n, cells in body:
        row = dict(zip(header, cells))
        exp = row["experiment"]
        tag = f"line {n} ({exp})"
        if not exp:
            problems.append(f"line {n}: column 'experiment' is blank")
            continue
        if exp in meta:
            problems.append(f"{tag}: experiment {exp!r} appears twice (also line {meta[exp]['line']})")
            continue
        if exp not in records:
            notes.append(f"{path} line {n}: experiment {exp} is not in the samples file; ignored")
            continue
        m = {"line": n, "Omega": {}, "text": {}}
        for k in EXPERIMENT_NUMBERS:
            m[k] = _number(row.get(k, ""), f"{tag}, column {k!r}", problems)
        for h in header:
            om = _OMEGA.match(h)
            if om and om.group(1) in REFERENCE_ISOTOPE:
                v = _number(row[h], f"{tag}, column {h!r}", problems)
                if v is not None:
                    m["Omega"][om.group(1)] = v
            elif h not in EXPERIMENT_NUMBERS + ("experiment", "start_row_from", "dT_span"):
                m["text"][h] = row[h]
        m["dT_span"] = None
        span = row.get("dT_span", "")
        if span:
            ends = span.split("-")
            if len(ends) != 2 or any(e not in records[exp] or e == START for e in ends):
                problems.append(f"{tag}, column 'dT_span': {span!r} is not two sample positions of {exp} "
                                f"joined by '-' (positions: {', '.join(p for p in records[exp] if p != START)})")
            else:
                m["dT_span"] = tuple(ends)
        src = row.get("start_row_from", "") or None
        if src is not None:
            if src not in records or START not in records[src]:
                problems.append(f"{tag}, column 'start_row_from': {src!r} is not an experiment with a "
                                f"{START!r} row in the samples file")
            elif src != exp and START in records[exp]:
                problems.append(f"{tag}, column 'start_row_from': {src!r}, but {exp} has its own {START!r} "
                                f"row (samples line {records[exp][START]['line']}); leave it blank or {exp!r}")
        m["start_row_from"] = src
        meta[exp] = m
    if problems:
        raise DataFileError(path, problems)
    return meta, notes


def _fill_two_sigma(records, columns, problems, notes):
    """Replace unreported 2 sigma by the largest one of the column in the same experiment."""
    for exp, rows in records.items():
        for c in columns:
            given = [r[c][1] for r in rows.values() if r[c][1] is not None]
            for pos, r in rows.items():
                v, s = r[c]
                if v is None or s is not None:
                    continue
                if not given:
                    problems.append(f"line {r['line']} ({exp} {pos}), column {c + '_2s'!r}: blank, and no "
                                    f"2 sigma of {c} is reported anywhere in {exp} to stand in for it")
                    continue
                r[c] = (v, max(given))
                notes.append(f"{exp} {pos} {c}: 2 sigma not reported; used {max(given):g} permil, the largest "
                             f"2 sigma of {c} in {exp} (conservative)")


def load_table1(path, experiments_path=None):
    """Read and check a samples file (and optionally an experiments file) into a ``Table1``.

    Parameters
    ----------
    path : str or Path
        The samples file.
    experiments_path : str or Path, optional
        The experiments file; without it every experiment needs its own ``start`` row.

    Raises
    ------
    DataFileError
        Naming every problem found (line, column, value, what was expected).
    UsageError
        If a file cannot be read.
    """
    records, columns = read_samples(path)
    meta, notes = read_experiments(experiments_path, records) if experiments_path else ({}, [])
    problems = []
    _fill_two_sigma(records, columns, problems, notes)
    experiments = {}
    for exp, rows in records.items():
        samples = {p: r for p, r in rows.items() if p != START}
        if not samples:
            notes.append(f"{exp} has only a starting-material row; nothing to fit")
            continue
        src = (meta.get(exp) or {}).get("start_row_from") or exp
        if START not in records[src]:
            how = (f"and the experiments file {experiments_path} names no start_row_from for it"
                   if experiments_path else "and no experiments file (--experiments) names a start_row_from")
            problems.append(f"experiment {exp} (samples line {min(r['line'] for r in rows.values())}) has no "
                            f"{START!r} row {how}")
            continue
        if src != exp:
            notes.append(f"{exp} has no starting-material row; used that of {src} (start_row_from)")
        start = records[src][START]
        if START in rows and rows[START]["T_C"] is not None:
            notes.append(f"{exp} start: T_C given for the starting material; ignored")
        pairs = []
        for c in columns:
            have = {p: r for p, r in samples.items() if r[c][0] is not None}
            if not have:
                continue
            lines = ", ".join(str(r["line"]) for r in have.values())
            if len(have) < 2:
                problems.append(f"experiment {exp}, column {c!r}: only 1 sample (line {lines}); a pair needs "
                                "at least 2 samples at different temperatures (or none)")
                continue
            T = np.array([r["T_C"] for r in have.values()])
            if np.ptp(T) == 0:
                problems.append(f"experiment {exp}, column {c!r}: all samples (lines {lines}) are at "
                                f"T_C = {T[0]:g}; a slope needs two temperatures")
                continue
            if start[c][0] is None:
                problems.append(f"line {start['line']} ({src} {START}), column {c!r}: blank, but {exp} has {c} "
                                "samples and needs the starting material's value")
                continue
            el, a, dm = isotope_of(c)
            pairs.append(Pair(exp, c, el, a, REFERENCE_ISOTOPE[el], dm, list(have), T,
                              np.array([r[c][0] for r in have.values()]),
                              np.array([r[c][1] for r in have.values()]), start[c][0], start[c][1], src))
        if not pairs and not any(p.startswith(f"experiment {exp},") for p in problems):
            problems.append(f"experiment {exp}: no isotope values in any sample row")
        experiments[exp] = Experiment(exp, pairs, src, meta.get(exp, {}))
    if problems:
        raise DataFileError(path, problems)
    return Table1(str(path), str(experiments_path) if experiments_path else None, experiments, notes)
