"""The strings that describe a study: ``--vary``/``--over`` value lists, ``--target`` and
``--bracket``, from the command line or from a deck's ``[sweep]`` and ``[invert]`` tables.

One parser for both places, so that a deck whose tables validate is a deck whose study
runs. Every function raises ``ValueError`` with a message naming where the text came from
(``what``: ``--vary`` or ``sweep.vary[0]``), the text, and what was expected. No MPI, no PETSc.
"""

import math
from collections.abc import Sequence

import numpy as np

from .load import split_assignment, split_key, tomllib

#: Most members one study may have (a cartesian product, samples, or both): a larger one
#: would only exhaust memory expanding the decks before anything runs.
MAX_MEMBERS = 10_000_000

#: Above this many values, ``lin:``/``log:`` lists are :class:`Spaced` (computed on demand):
#: 10^7 values as Python floats are 320 MB, and 200 MB more each time they are written as JSON.
SPACED_AT = 100_000


class Spaced(Sequence):
    """``n`` evenly (``kind = "lin"``) or geometrically (``"log"``) spaced values from ``a`` to
    ``b``: the values ``np.linspace``/``np.geomspace`` give, as floats, kept as their recipe.
    :meth:`array` computes them once (float64); :meth:`encode`/:func:`decode_values` write
    and read the recipe in JSON (manifests, sweep digests)."""

    def __init__(self, kind, a, b, n):
        self.kind, self.a, self.b, self.n = kind, float(a), float(b), int(n)
        self._array = None

    def array(self):
        if self._array is None:
            f = np.geomspace if self.kind == "log" else np.linspace
            self._array = f(self.a, self.b, self.n)
        return self._array

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [float(v) for v in self.array()[i]]
        return float(self.array()[i])

    def encode(self):
        return {"spaced": [self.kind, self.a, self.b, self.n]}

    def __repr__(self):
        return f"Spaced({self.kind!r}, {self.a!r}, {self.b!r}, {self.n})"


def encode_values(values):
    """A --vary value list for JSON: a :class:`Spaced` as its recipe, any other as a list."""
    return values.encode() if isinstance(values, Spaced) else list(values)


def decode_values(values):
    """The inverse of :func:`encode_values`."""
    if isinstance(values, dict) and "spaced" in values:
        return Spaced(*values["spaced"])
    return values


_VALUES_FORMS = "KEY=v1,v2,..., KEY=a:b[:n], KEY=lin:a:b:n or KEY=log:a:b:n"


def _key(text, key, what):
    if not key:
        raise ValueError(f"{what} {text!r}: the key before '=' is empty; expected e.g. phases.opx.beta")
    try:
        split_key(key)
    except ValueError as exc:
        raise ValueError(f"{what} {text!r}: {exc}") from None
    return key


def _count(text, raw, what):
    """A member count: a positive integer (written 1000 or 1e3), at most MAX_MEMBERS."""
    try:
        n = float(raw)
    except ValueError:
        n = math.nan
    if not (math.isfinite(n) and n == int(n) and 1 <= n <= MAX_MEMBERS):
        raise ValueError(f"{what} {text!r}: COUNT = {raw!r}; expected a whole number from 1 to {MAX_MEMBERS}")
    return int(n)


def parse_values(text, what="--vary"):
    """``(key, values)`` of ``KEY=v1,v2,...`` (TOML values; a bare word is a string),
    ``KEY=a:b[:n]`` or ``KEY=lin:a:b:n`` (n evenly spaced, default 11) or ``KEY=log:a:b:n``
    (geometric)."""
    if "=" not in text:
        raise ValueError(f"{what} {text!r}: expected {_VALUES_FORMS}")
    key, spec = (x.strip() for x in split_assignment(text))
    key = _key(text, key, what)
    parts = spec.split(":")
    if len(parts) in (2, 3) and parts[0] not in ("lin", "log"):
        parts = ["lin", parts[0], parts[1], parts[2] if len(parts) == 3 else "11"]   # a:b[:n]
    if parts[0] in ("lin", "log"):
        if len(parts) != 4:
            raise ValueError(f"{what} {text!r}: expected {parts[0]}:START:STOP:COUNT")
        try:
            a, b = float(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"{what} {text!r}: expected {parts[0]}:START:STOP:COUNT with numbers "
                             "START and STOP") from None
        n = _count(text, parts[3], what)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"{what} {text!r}: expected finite START and STOP")
        if parts[0] == "log" and (a <= 0 or b <= 0):
            raise ValueError(f"{what} {text!r}: log spacing needs START and STOP above 0")
        if n > SPACED_AT:
            return key, Spaced(parts[0], a, b, n)
        vals = np.geomspace(a, b, n) if parts[0] == "log" else np.linspace(a, b, n)
        return key, [float(v) for v in vals]
    values = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            raise ValueError(f"{what} {text!r}: an empty value in the list; expected {_VALUES_FORMS}")
        try:
            v = tomllib.loads(f"v = {item}")["v"]
        except tomllib.TOMLDecodeError:
            v = item
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{what} {text!r}: {item} is not a finite number")
        values.append(v)
    return key, values


def parse_target(text, what="--target"):
    """``(key, value)`` of ``KEY=VALUE``: the result an inversion must reproduce."""
    if "=" not in text:
        raise ValueError(f"{what} {text!r}: expected KEY=VALUE, e.g. Delta_permil=1.29")
    k, v = (x.strip() for x in text.split("=", 1))
    if not k:
        raise ValueError(f"{what} {text!r}: the result name before '=' is empty; expected e.g. Delta_permil=1.29")
    try:
        value = float(v)
    except ValueError:
        raise ValueError(f"{what} {text!r}: {v!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r}: expected a finite number")
    return k, value


def parse_range(text, what="--bracket"):
    """``(low, high)`` of ``LOW:HIGH``, finite numbers with LOW < HIGH."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected LOW:HIGH, e.g. 0:0.5") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{what} {text!r}: expected finite LOW and HIGH")
    if not lo < hi:
        raise ValueError(f"{what} {text!r}: LOW must be below HIGH")
    return lo, hi


def member_count(vary, samples):
    """How many members ``vary`` (list of (key, values)) and ``samples`` make; ValueError
    above MAX_MEMBERS."""
    n = math.prod(len(v) for _, v in vary) * max(samples, 1)
    if n > MAX_MEMBERS:
        raise ValueError(f"the study would have {n:,} members (the product of the --vary list lengths"
                         f"{' times --samples' if samples else ''}); expected at most {MAX_MEMBERS:,}")
    return n
