"""Reading, overriding and validating input decks.

``load_deck`` is the one entry point: it reads the TOML file, applies ``--set``
overrides, validates against the model's schema and cross-field rules, and returns the
resolved deck (every default filled in). Nothing is computed before this succeeds.
"""

import copy
import hashlib
import json
import re
import stat
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from ..errors import DeckError
from ..registry import MODELS as _SPECS
from .schema import describe

#: model name -> deck module (with ``SCHEMA`` and ``cross_check(deck) -> problems``), as the
#: registry names them (the registry imports nothing, so this is no import cycle)
MODELS = {name: spec.deck_module for name, spec in _SPECS.items()}


def split_key(key):
    """The parts of a dotted deck key, TOML quoting allowed: ``ratios."87Sr/86Sr".magma``.

    Raises ValueError if ``key`` is not a dotted TOML key."""
    key = key.strip()
    try:
        node = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        raise ValueError(f"the key {key!r} is not a dotted name such as phases.opx.beta "
                         "(quote parts with dots or slashes: ratios.\"87Sr/86Sr\".magma)") from None
    parts = []
    while isinstance(node, dict):
        (name, node), = node.items()
        parts.append(name)
    return parts


def parse_override(text):
    """Split ``key.sub=value`` and parse the value as TOML (a bare word is a string).

    Returns
    -------
    (list of str, object)
    """
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected KEY=VALUE, e.g. temperature.rate_C_per_Myr=100")
    key, raw = split_assignment(text)
    try:
        parts = split_key(key)
    except ValueError as exc:
        raise ValueError(f"--set {text!r}: {exc}") from None
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def split_assignment(text):
    """KEY=VALUE split at the first '=' outside quotes (a quoted key part may hold '=')."""
    quote = None
    for i, c in enumerate(text):
        if c in "\"'" and quote in (None, c):
            quote = None if quote else c
        elif c == "=" and quote is None:
            return text[:i], text[i + 1:]
    return text, ""


def apply_overrides(raw, overrides, problems):
    """Apply ``--set`` overrides to the raw deck (in place), recording problems."""
    for text in overrides:
        try:
            parts, value = parse_override(text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                problems.append(f"--set {text}: {'.'.join(parts[:i + 1])} is a value, not a table")
                break
            node = nxt
        else:
            node[parts[-1]] = value


#: Largest deck read, in bytes: decks are a few kB; the limit stops a wrong file (a
#: results.h5, /dev/zero) from filling the memory before it is found not to be TOML.
MAX_DECK_BYTES = 16 * 2**20


def read_toml(path):
    """Read a TOML file, turning every failure into a :class:`DeckError`."""
    if not str(path).strip():
        raise DeckError(repr(str(path)), ["the deck's file name is empty"])
    path = Path(path)
    try:
        if stat.S_ISCHR(path.stat().st_mode) or stat.S_ISBLK(path.stat().st_mode):
            raise DeckError(path, ["this is a device, not a file; expected a TOML input deck"])
        with open(path, "rb") as f:        # a pipe is fine: isosim check <(generate_deck)
            data = f.read(MAX_DECK_BYTES + 1)
    except FileNotFoundError:
        raise DeckError(path, ["the file does not exist"]) from None
    except IsADirectoryError:
        raise DeckError(path, ["this is a directory; expected a TOML input deck"]) from None
    except OSError as exc:
        raise DeckError(path, [f"cannot be read: {exc.strerror}"]) from None
    except ValueError as exc:              # a NUL in the name (possible only from Python)
        raise DeckError(repr(str(path)), [f"not a file name: {exc}"]) from None
    if len(data) > MAX_DECK_BYTES:
        raise DeckError(path, [f"larger than {MAX_DECK_BYTES // 2**20} MiB; expected a TOML input deck "
                               "(a few kB)"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeckError(path, [f"byte {exc.start} is not UTF-8; expected a UTF-8 text file"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = f"not valid TOML: {exc}"
        m = re.search(r"line (\d+)", str(exc))
        lines = text.splitlines()
        if m and 0 < int(m.group(1)) <= len(lines):
            msg += f"; the line reads: {lines[int(m.group(1)) - 1].lstrip()!r}"
        raise DeckError(path, [msg]) from None


def validate(raw, path="<deck>"):
    """Validate a raw deck dict; return the resolved deck or raise :class:`DeckError`."""
    problems = []
    model = raw.get("model")
    if not isinstance(model, str) or model not in MODELS:
        choices = ", ".join(repr(m) for m in MODELS)
        shown = "missing" if model is None else f"= {describe(model)}"
        raise DeckError(path, [f"model {shown}: expected one of {choices}"])
    module = MODELS[model]
    deck = module.SCHEMA.validate("", raw, problems)
    if not problems and hasattr(module, "resolve_files"):
        base = Path(path).parent if path not in ("<deck>", "checkpoint") else Path(".")
        problems.extend(module.resolve_files(deck, base))
    if not problems:
        problems.extend(module.cross_check(deck))
    if problems:
        raise DeckError(path, problems)
    return deck


def load_deck(path, overrides=()):
    """Read, override and validate a deck.

    Parameters
    ----------
    path : str or Path
    overrides : sequence of str
        ``KEY=VALUE`` strings from ``--set``.

    Returns
    -------
    dict
        The resolved deck.
    """
    return validate(load_raw(path, overrides), path)


def load_raw(path, overrides=()):
    """Read a deck and apply ``--set`` overrides, without validating it (a study expands its
    members from this). Raises DeckError listing every bad override."""
    raw = read_toml(path)
    problems = []
    apply_overrides(raw, overrides, problems)
    if problems:
        raise DeckError(path, problems)
    return raw


def deck_digest(deck):
    """A stable SHA-256 of a resolved deck, stored in checkpoints to refuse mismatches."""
    text = json.dumps(deck, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def to_toml(deck):
    """Write a resolved deck back as TOML text (tables after scalars, as TOML requires)."""
    lines = []

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return _toml_string(v)
        if isinstance(v, float):
            return repr(v) if v == v else "nan"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    def emit(table, prefix):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        subs = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix and (scalars or not subs):
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            if v is not None:
                lines.append(f"{_key(k)} = {value(v)}")
        for k, v in subs.items():
            emit(v, f"{prefix}.{_key(k)}" if prefix else _key(k))

    emit(copy.deepcopy(deck), "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(k):
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else _toml_string(k)


#: TOML basic strings must escape the quote, the backslash and every control character but
#: tab; JSON's escapes are not enough (it leaves DEL raw and writes astral characters as
#: surrogate pairs, which TOML rejects).
_ESCAPES = {c: f"\\u{c:04x}" for c in [*range(0x20), 0x7F]}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"})


def _toml_string(s):
    """``s`` as a TOML basic string (between double quotes)."""
    return '"' + s.translate(_ESCAPES) + '"'

