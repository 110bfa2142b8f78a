"""A small declarative schema for TOML input decks.

A schema is a :class:`Table` of named :class:`Field` s and nested tables. Validation
fills in defaults and returns the *resolved* deck (plain dicts, lists, numbers and
strings) or a list of problems, each naming the key, the value and what was expected.
Cross-field rules (fractions summing to one, a cooling path that cools) belong to the
model's own schema module, which runs them after this structural pass.
"""

import datetime
import math

_MISSING = object()


def describe(value):
    """Render a user value the way it would appear in a deck."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


class Field:
    """One scalar or list value in a deck.

    Parameters
    ----------
    kind : {"float", "int", "bool", "str", "float_list", "str_list"}
    default : optional
        Value used when the key is absent; without it the key is required.
    min, max : float, optional
        Inclusive bounds (``min_exclusive``/``max_exclusive`` make them strict).
    choices : sequence of str, optional
        Allowed values of a string.
    doc : str
        What the value means; listed by ``isosim keys``.
    unit : str
        Physical unit, for documentation.
    """

    def __init__(self, kind, default=_MISSING, *, min=None, max=None, min_exclusive=False,
                 max_exclusive=False, choices=None, doc="", unit="", min_length=0):
        self.kind = kind
        self.default = default
        self.min, self.max = min, max
        self.min_exclusive, self.max_exclusive = min_exclusive, max_exclusive
        self.choices = tuple(choices) if choices else None
        self.doc, self.unit = doc, unit
        self.min_length = min_length

    @property
    def required(self):
        return self.default is _MISSING

    def expectation(self):
        """A phrase telling what a valid value looks like."""
        what = {"float": "a finite number", "int": "an integer", "bool": "true or false",
                "str": "a string", "float_list": "a list of finite numbers",
                "str_list": "a list of strings"}[self.kind]
        if self.choices:
            what = "one of " + ", ".join(repr(c) for c in self.choices)
        bounds = []
        if self.min is not None:
            bounds.append(f"{'>' if self.min_exclusive else '>='} {self.min:g}")
        if self.max is not None:
            bounds.append(f"{'<' if self.max_exclusive else '<='} {self.max:g}")
        if bounds:
            what += " " + " and ".join(bounds)
        if self.unit:
            what += f" (in {self.unit})"
        return what

    def _check_number(self, x):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return False
        try:
            if not math.isfinite(float(x)):
                return False
        except OverflowError:  # an integer with hundreds of digits
            return False
        if self.min is not None and (x < self.min or (self.min_exclusive and x == self.min)):
            return False
        if self.max is not None and (x > self.max or (self.max_exclusive and x == self.max)):
            return False
        return True

    def validate(self, key, value, problems):
        """Return the checked value (converted where harmless), appending to ``problems``."""
        if self.kind == "float":
            if self._check_number(value):
                return float(value)
        elif self.kind == "int":
            if isinstance(value, int) and not isinstance(value, bool) and self._check_number(value):
                return int(value)
        elif self.kind == "bool":
            if isinstance(value, bool):
                return value
        elif self.kind == "str":
            if isinstance(value, str) and (self.choices is None or value in self.choices):
                return value
            # a choice that reads as a number (arkimex_type = 5)
            if isinstance(value, int) and not isinstance(value, bool) and self.choices and str(value) in self.choices:
                return str(value)
        elif self.kind == "float_list":
            if isinstance(value, list) and len(value) >= self.min_length and all(
                    self._check_number(v) for v in value):
                return [float(v) for v in value]
        elif self.kind == "str_list":
            if isinstance(value, list) and len(value) >= self.min_length and all(
                    isinstance(v, str) for v in value):
                return list(value)
        # the message only now: building it for every valid field was a third of validating
        bad = f"{key} = {describe(value)}: expected {self.expectation()}"
        if self.kind.endswith("_list") and isinstance(value, list) and len(value) < self.min_length:
            bad += f" with at least {self.min_length} entries"
        problems.append(bad)
        return None


class Table:
    """A TOML table with a fixed set of keys.

    Parameters
    ----------
    fields : dict
        Key name to :class:`Field`, :class:`Table` or :class:`TableOf`.
    doc : str
    optional : bool
        If true, an absent table resolves to its defaults (or is left out when
        ``omit_if_absent``).
    """

    def __init__(self, fields, doc="", optional=True, omit_if_absent=False):
        self.fields = dict(fields)
        self.doc = doc
        self.optional = optional
        self.omit_if_absent = omit_if_absent

    def validate(self, key, value, problems):
        if not isinstance(value, dict):
            problems.append(f"{key or 'the deck'} = {describe(value)}: expected a table")
            return None
        out = {}
        prefix = f"{key}." if key else ""
        for name in value:
            if name not in self.fields:
                known = ", ".join(sorted(self.fields))
                problems.append(f"{prefix}{name}: unknown key (known keys here: {known})")
        for name, spec in self.fields.items():
            full = prefix + name
            if name in value:
                out[name] = spec.validate(full, value[name], problems)
            elif isinstance(spec, Field):
                if spec.required:
                    problems.append(f"{full}: missing; expected {spec.expectation()}")
                else:
                    out[name] = spec.default
            elif isinstance(spec, Table):
                if not spec.optional:
                    problems.append(f"[{full}]: missing table")
                elif not spec.omit_if_absent:
                    out[name] = spec.validate(full, {}, problems)
            elif isinstance(spec, TableOf):
                if spec.min_count:
                    problems.append(f"[{full}]: missing; expected at least {spec.min_count} "
                                    f"sub-tables such as [{full}.NAME]")
                else:
                    out[name] = {}
        return out


class TableOf:
    """A table whose keys are user-chosen names, each holding the same kind of table
    (for example ``[phases.opx]`` and ``[phases.cpx]``)."""

    def __init__(self, item, min_count=0, doc=""):
        self.item = item
        self.min_count = min_count
        self.doc = doc

    def validate(self, key, value, problems):
        if not isinstance(value, dict):
            problems.append(f"{key} = {describe(value)}: expected sub-tables such as [{key}.NAME]")
            return None
        bad = [name for name, v in value.items() if not isinstance(v, dict)]
        for name in bad:
            problems.append(f"{key}.{name} = {describe(value[name])}: expected a table [{key}.{name}]")
        if bad:
            return None
        if len(value) < self.min_count:
            problems.append(f"[{key}]: has {len(value)} entries; expected at least {self.min_count}")
        return {name: self.item.validate(f"{key}.{name}", v, problems) for name, v in value.items()}


def lookup(spec, parts):
    """The schema node (Field, Table or TableOf) at key path ``parts`` below ``spec``, or None
    for an unknown key. A TableOf accepts any name at its level."""
    for part in parts:
        if isinstance(spec, TableOf):
            spec = spec.item
        elif isinstance(spec, Table) and part in spec.fields:
            spec = spec.fields[part]
        else:
            return None
    return spec


def describe_schema(table, prefix=""):
    """Lines documenting every key of a schema: name, type, default, unit and meaning."""
    lines = []
    for name, spec in table.fields.items():
        full = f"{prefix}{name}"
        if isinstance(spec, Field):
            # None: whether it is needed, and its value if not given, depend on other keys (the doc says)
            default = ("required" if spec.required else "no fixed default"
                       if spec.default is None else f"default {describe(spec.default)}")
            lines.append(f"{full}: {spec.expectation()}; {default}")
            if spec.doc:
                lines.append(f"    {spec.doc}")
        elif isinstance(spec, Table):
            lines.append(f"[{full}]" + (f"  # {spec.doc}" if spec.doc else ""))
            lines += describe_schema(spec, full + ".")
        elif isinstance(spec, TableOf):
            lines.append(f"[{full}.NAME]" + (f"  # {spec.doc}" if spec.doc else ""))
            lines += describe_schema(spec.item, full + ".NAME.")
    return lines
