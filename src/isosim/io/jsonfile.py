"""Strict JSON for every file isosim writes: no bare ``NaN``/``Infinity``, ever.

Python's :func:`json.dumps` writes a non-finite float as ``NaN``, ``Infinity`` or
``-Infinity``, which is not JSON: strict parsers (JavaScript's ``JSON.parse``, jq, Go,
``json.loads(text, parse_constant=<raise>)``) reject the whole file. :func:`dumps` writes
every non-finite float as ``null`` instead and records why, in one place:

- if the top-level object is a mapping and held any non-finite float, it gains a key
  ``"non_finite"``: a mapping from the JSON Pointer (RFC 6901, e.g.
  ``"/members/0/Delta_permil"``) of each value written as ``null`` to what it was: ``"NaN"``,
  ``"inf"`` or ``"-inf"``. Files without non-finite values are unchanged (no such key), so
  a reader tells a value that is absent by design (``null`` with no entry) from one that
  came out non-finite (``null`` with an entry);
- a top-level list or scalar has no room for the reasons: its non-finite values are still
  written as ``null`` (never as bare ``NaN``).

numpy scalars and arrays are converted to Python numbers and lists on the way (the same
rules apply to their elements). The output always parses with
``json.loads(text, parse_constant=...)`` raising on every constant.
"""

import json
import math

try:  # numpy is a dependency of isosim, but keep this module importable without it
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

#: The key holding the reasons (see the module docstring).
REASON_KEY = "non_finite"


def _escape(key):
    return str(key).replace("~", "~0").replace("/", "~1")


def _why(x):
    return "NaN" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def sanitize(obj, reasons=None, path=""):
    """A copy of ``obj`` with every non-finite float replaced by ``None`` (and numpy values
    by Python ones); ``reasons[pointer] = "NaN" | "inf" | "-inf"`` for each replaced value."""
    if isinstance(obj, float) or (_np is not None and isinstance(obj, _np.floating)):
        x = float(obj)
        if math.isfinite(x):
            return x
        if reasons is not None:
            reasons[path or "/"] = _why(x)
        return None
    if isinstance(obj, (str, bool, int)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {k: sanitize(v, reasons, f"{path}/{_escape(k)}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v, reasons, f"{path}/{i}") for i, v in enumerate(obj)]
    if _np is not None:
        if isinstance(obj, _np.ndarray):
            return sanitize(obj.tolist(), reasons, path)
        if isinstance(obj, _np.integer):
            return int(obj)
        if isinstance(obj, _np.bool_):
            return bool(obj)
    return obj      # anything else: json's ``default`` (if given) decides


def dumps(obj, **kw):
    """:func:`json.dumps` with every non-finite float written as ``null`` and the reasons
    recorded under ``"non_finite"`` (see the module docstring). Keyword arguments are
    :func:`json.dumps`'s (``allow_nan`` is always False: a non-finite value that slipped
    through, e.g. from a ``default`` hook, is a bug and raises ValueError)."""
    reasons = {}
    clean = sanitize(obj, reasons)
    if reasons and isinstance(clean, dict):
        clean = dict(clean, **{REASON_KEY: reasons})
    kw["allow_nan"] = False
    return json.dumps(clean, **kw)


def _refuse_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def loads_strict(text):
    """Parse JSON refusing ``NaN``/``Infinity``/``-Infinity`` (what a strict parser does)."""
    return json.loads(text, parse_constant=_refuse_constant)


def restore_non_finite(obj):
    """The inverse of :func:`dumps` for a parsed mapping: every ``null`` its ``non_finite`` map
    names becomes the float it was (NaN, inf, -inf), so that readers in Python see numbers."""
    reasons = obj.get(REASON_KEY) if isinstance(obj, dict) else None
    if not reasons:
        return obj
    values = {"NaN": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
    for pointer, why in reasons.items():
        parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        node = obj
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = values.get(why, float("nan"))
            else:
                node[last] = values.get(why, float("nan"))
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return obj
