"""Shared pieces of the property-based fuzz tests (``test_fuzz_decks.py``, ``test_fuzz_cli.py``).

The property: every deck and every command line is either accepted (and then sets up and
runs) or rejected with a clear message that names the deck and exit code 2; never a
traceback, a hang or another exit code for a user mistake.

Profiles (``HYPOTHESIS_PROFILE``):

- ``ci`` (default): derandomised (the same examples on every run, so CI is reproducible),
  no deadline (the machine is shared), no example database written into the work tree;
- ``thorough``: ten times the examples, random seeds, the database kept in
  ``.hypothesis/`` so that a failure found once is replayed first.
"""

import copy
import math
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from support import INPUT, load_raw

_COMMON = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def scaled(n):
    """Example count ``n`` of the CI profile, times ten under ``HYPOTHESIS_PROFILE=thorough``."""
    return n * 10 if PROFILE == "thorough" else n


# ------------------------------------------------------------------------- base decks
#: model -> shipped decks the mutations start from (with the [sweep]/[invert]/[sample]
#: tables each model has)
BASE_DECKS = {
    "grain_exchange": ["xiong_fig1.toml", "xiong_inversion.toml", "xiong_fig2.toml", "xiong_fig7.toml"],
    "capsule": ["huang2010_zm70.toml"],
    "chamber": ["spera2004_afc.toml", "spera2004_montecarlo.toml", "spera2004_episodic_eruption_first.toml"],
}
BASES = {model: [(name, load_raw(name)) for name in names] for model, names in BASE_DECKS.items()}
REFERENCE = {"grain_exchange": "xiong_fig1.toml", "capsule": "huang2010_zm70.toml",
             "chamber": "spera2004_afc.toml"}


def reference_text(model):
    return (INPUT / REFERENCE[model]).read_text(encoding="utf-8")


# ------------------------------------------------------------------------- the schema
def schema_of(model):
    from isosim.deck import MODELS
    return MODELS[model].SCHEMA


def spec_at(model, path):
    """The schema node (Field, Table or TableOf) of a key path, or None for an unknown key."""
    from isosim.deck.schema import lookup
    return lookup(schema_of(model), path)


def walk(node, prefix=()):
    """Every (path, value) below a nested dict, tables included, depth first."""
    for k, v in node.items():
        yield prefix + (k,), v
        if isinstance(v, dict):
            yield from walk(v, prefix + (k,))


def get(raw, path):
    for p in path:
        raw = raw[p]
    return raw


def put(raw, path, value):
    node = raw
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def delete(raw, path):
    del get(raw, path[:-1])[path[-1]]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ------------------------------------------------------------------------- values
#: every kind of value TOML can hold, with the awkward ones over-represented
_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, 5e-324,
                                     math.nan, math.inf, -math.inf, 1.7976931348623157e308]))
_INTS = st.one_of(st.integers(-10, 10), st.integers(), st.sampled_from([10 ** 400, -10 ** 400, 2 ** 63, -2 ** 63]))
_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "nan", "inf", "1e3", "true", "é", "a.b",
                                                          "\x00", "87Sr/86Sr", "opx", "cpx", "Sr"]))
SCALARS = st.one_of(_FLOATS, _INTS, st.booleans(), _TEXT, st.dates(), st.times(), st.datetimes())
ANY_VALUE = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.just([]), st.just({}),
    st.dictionaries(st.sampled_from(["a", "beta", "x", "dist"]), SCALARS, max_size=2),
    st.lists(st.lists(_INTS, max_size=2), max_size=2),
)


def field_values(field, siblings):
    """Values for a schema field, mostly of its kind and near its bounds, so that the
    deck often stays valid and reaches the models' set-up with extreme settings."""
    lo = field.min if field.min is not None else -1e6
    hi = field.max if field.max is not None else 1e6
    if field.choices:
        return st.sampled_from(field.choices)
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "int":
        return st.one_of(st.integers(int(max(lo, -10 ** 7)), int(min(hi, 10 ** 7))),
                         st.sampled_from([int(lo), int(min(hi, 10 ** 7)), 0, 1, 2, -1]))
    edges = [lo, hi, 0.0, 1.0, -1.0, lo + 1e-12 * max(1.0, abs(lo)), hi - 1e-12 * max(1.0, abs(hi))]
    # magnitudes spread evenly in log10 (uniform floats would almost never be small), clamped
    magnitude = st.builds(lambda e, neg: (-1.0 if neg else 1.0) * 10.0 ** e, st.floats(-15, 15), st.booleans())
    number = st.one_of(st.floats(lo, hi, allow_nan=False), st.sampled_from(edges),
                       magnitude.map(lambda x: min(max(x, lo), hi)))
    if field.kind == "float":
        return number
    if field.kind == "float_list":
        return st.lists(number, max_size=5)
    names = st.sampled_from(sorted(siblings) or ["x"])
    if field.kind == "str_list":
        return st.lists(st.one_of(names, _TEXT), max_size=4)
    return st.one_of(names, _TEXT, STUDY_SPECS)


#: strings of the kind [sweep]/[invert] hold, some good and most not
STUDY_SPECS = st.one_of(
    st.sampled_from(["phases.opx.beta=0:0.5:3", "temperature.rate_C_per_Myr=log:1:1e7:3", "x=1,2",
                     "Delta_permil=1.29", "0:0.5", "1:0", "a:b", "log:0:1:3", "1:2:0", "=", "",
                     "phases.opx.beta", "assimilation.chi=0,0.5", "T_m_final_C=1100", "0.1:nan",
                     "phases.opx.beta=log:-1:1:3", "phases.opx.beta=0:1:1e9", "k=lin:0:1:-2",
                     "ratios.\"87Sr/86Sr\".magma=0.7,0.71", "Delta_permil=inf", "1:2:3"]),
    st.text(alphabet="abc.=:,-0123456789el\"", max_size=16))


@st.composite
def study_table_entries(draw):
    """(path, value) to put into a deck's [sweep], [invert] or [sample] tables."""
    which = draw(st.sampled_from(["sweep.vary", "sweep.samples", "sweep.seed", "invert.target",
                                  "invert.param", "invert.bracket", "invert.over", "sample"]))
    if which == "sweep.vary":
        return ("sweep", "vary"), draw(st.lists(STUDY_SPECS, max_size=3))
    if which in ("sweep.samples", "sweep.seed"):
        return tuple(which.split(".")), draw(st.one_of(st.integers(-3, 5), _INTS))
    if which.startswith("invert"):
        return tuple(which.split(".")), draw(STUDY_SPECS)
    key = draw(st.sampled_from(["phases.opx.beta", "assimilation.chi", "thermal.T_eq_C", "nope",
                                "elements.Sr.D_wallrock", "grid.cells", "title", "a..b", ""]))
    table = {"dist": draw(st.sampled_from(["uniform", "normal", "lognormal", "loguniform", "beta"]))}
    for k in draw(st.sets(st.sampled_from(["low", "high", "mean", "sd", "median", "sigma"]))):
        table[k] = draw(st.one_of(st.floats(-2, 2), st.sampled_from([0.0, 1e-300, 1e300, -1.0]), _FLOATS))
    return ("sample", key), table


# ------------------------------------------------------------------------- mutations
def typo(name, draw):
    """A misspelling of a key name (a letter dropped, doubled, swapped or recased)."""
    if not name:
        return "x"
    i = draw(st.integers(0, len(name) - 1))
    kind = draw(st.sampled_from(["drop", "double", "swap", "case", "suffix"]))
    if kind == "drop" and len(name) > 1:
        return name[:i] + name[i + 1:]
    if kind == "swap" and i + 1 < len(name):
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if kind == "case":
        return name.swapcase()
    if kind == "suffix":
        return name + draw(st.sampled_from(["s", "_C", " ", "."]))
    return name[:i] + name[i] + name[i:]


#: every kind of mutation; IN_SCHEMA keeps values of the right kind within the schema's bounds
ALL_OPS = ("wrong_type", "delete", "unknown_key", "number", "in_bounds", "list", "copy_value", "schema_key",
           "rename_table", "study", "clone_table")
IN_SCHEMA = ("in_bounds", "schema_key", "clone_table")


@st.composite
def mutation(draw, model, raw, ops=ALL_OPS):
    """Apply one random mutation of a kind in ``ops`` to ``raw`` (in place); return a short
    description and the key path it touched."""
    paths = list(walk(raw))
    op = draw(st.sampled_from(ops))
    if op == "wrong_type":
        path, _ = draw(st.sampled_from(paths))
        value = draw(ANY_VALUE)
        put(raw, path, value)
        return f"{'.'.join(path)} = {value!r}", path
    if op == "delete":
        path, _ = draw(st.sampled_from(paths))
        delete(raw, path)
        return f"delete {'.'.join(path)}", path
    if op == "unknown_key":
        tables = [((), raw)] + [(p, v) for p, v in paths if isinstance(v, dict)]
        path, table = draw(st.sampled_from(tables))
        base = draw(st.sampled_from(sorted(table) or ["x"]))
        name = typo(base, draw) if draw(st.booleans()) else draw(_TEXT)
        if name in table:
            name += "_typo"
        table[name] = draw(ANY_VALUE) if draw(st.booleans()) else copy.deepcopy(table.get(base, 1.0))
        return f"unknown key {'.'.join(path + (name,))}", path + (name,)
    numeric = [(p, v) for p, v in paths if is_number(v)]
    if op == "number" and numeric:
        path, v = draw(st.sampled_from(numeric))
        v = v if abs(v) < 1e300 else 1e300          # an integer of hundreds of digits from an earlier mutation
        new = draw(st.one_of(st.sampled_from([0, 0.0, -v, v * 1e300, v * 1e-300, -1e300, v + 1e-9 * abs(v),
                                              math.nan, math.inf, -math.inf, 10 ** 400, True, str(v)]),
                             _FLOATS))
        put(raw, path, new)
        return f"{'.'.join(path)} = {new!r} (was {v!r})", path
    if op == "in_bounds":
        fields = [(p, spec_at(model, p)) for p, v in paths if not isinstance(v, dict) and p[-1] not in ("model", "title")]
        fields = [(p, f) for p, f in fields if f is not None and not hasattr(f, "fields")
                  and not hasattr(f, "item")]
        if fields:
            path, f = draw(st.sampled_from(fields))
            value = draw(field_values(f, get(raw, path[:-1]) if len(path) > 1 else raw))
            put(raw, path, value)
            return f"{'.'.join(path)} = {value!r} (in the schema's range)", path
    lists = [(p, v) for p, v in paths if isinstance(v, list)]
    if op == "list" and lists:
        path, v = draw(st.sampled_from(lists))
        how = draw(st.sampled_from(["empty", "drop", "dup", "append", "reverse", "nan"]))
        new = {"empty": [], "drop": v[1:], "dup": v + v[:1], "reverse": v[::-1],
               "append": v + [draw(SCALARS)], "nan": v[:-1] + [math.nan]}[how]
        put(raw, path, new)
        return f"{'.'.join(path)} = {new!r}", path
    if op == "copy_value" and len(numeric) > 1:
        (a, _), (b, vb) = draw(st.lists(st.sampled_from(numeric), min_size=2, max_size=2, unique_by=lambda x: x[0]))
        put(raw, a, vb)
        return f"{'.'.join(a)} = {'.'.join(b)} = {vb!r}", a
    if op == "schema_key":
        tables = [((), raw)] + [(p, v) for p, v in paths if isinstance(v, dict)]
        path, table = draw(st.sampled_from(tables))
        spec = spec_at(model, path) if path else schema_of(model)
        spec = getattr(spec, "item", spec)
        if hasattr(spec, "fields"):
            absent = [k for k, f in spec.fields.items() if k not in table and not hasattr(f, "fields")
                      and not hasattr(f, "item")]
            if absent:
                name = draw(st.sampled_from(absent))
                table[name] = draw(field_values(spec.fields[name], table))
                return f"{'.'.join(path + (name,))} = {table[name]!r} (a schema key)", path + (name,)
    if op in ("rename_table", "clone_table"):
        groups = [(p, v) for p, v in paths if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values())
                  and p[-1] in ("phases", "elements", "components", "ratios", "stable", "sample")]
        if groups:
            path, table = draw(st.sampled_from(groups))
            old = draw(st.sampled_from(sorted(table)))
            new = draw(st.one_of(_TEXT, st.just(old.upper()), st.just(old + "2")))
            if new not in table:
                if op == "rename_table":
                    table[new] = table.pop(old)
                else:
                    table[new] = copy.deepcopy(table[old])
                return f"{op} {'.'.join(path)}.{old} -> {new!r}", path + (new,)
    if op == "study":
        path, value = draw(study_table_entries())
        node = raw
        for p in path[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[path[-1]] = value
        return f"{'.'.join(path)} = {value!r}", path
    if ops == IN_SCHEMA:
        return "nothing (the drawn mutation did not apply)", ()
    # the op did not apply to this deck: a plain wrong value instead
    path, _ = draw(st.sampled_from(paths))
    value = draw(SCALARS)
    put(raw, path, value)
    return f"{'.'.join(path)} = {value!r}", path


@st.composite
def mutated_decks(draw, model, max_mutations=3, ops=ALL_OPS):
    """(raw deck, [descriptions], [paths]): a shipped deck of ``model`` with 1 to
    ``max_mutations`` mutations of the kinds ``ops`` (single mutations drawn most often:
    they shrink best and keep more decks valid)."""
    name, base = draw(st.sampled_from(BASES[model]))
    raw = copy.deepcopy(base)
    n = draw(st.sampled_from([1, 1, 1, 2, max_mutations]))
    what, where = [f"from {name}"], []
    for _ in range(n):
        if not raw:
            break
        desc, path = draw(mutation(model, raw, ops))
        what.append(desc)
        where.append(path)
    return raw, what, where


# ------------------------------------------------------------------------- TOML text
@st.composite
def mangled_text(draw, text):
    """The deck text with one textual accident: truncated, a character inserted, deleted or
    replaced, a quote lost, a stray byte that is not UTF-8, a byte-order mark, ..."""
    data = text.encode("utf-8")
    kind = draw(st.sampled_from(["truncate", "insert", "delete", "quote", "bytes", "bom", "empty",
                                 "duplicate_line", "header", "crlf", "nul"]))
    i = draw(st.integers(0, len(data)))
    if kind == "truncate":
        return data[:i]
    if kind == "insert":
        return data[:i] + draw(st.sampled_from(list("[]{}=\"'#,.\n\\") + ["nan", "inf", "=="])).encode() + data[i:]
    if kind == "delete":
        j = draw(st.integers(i, min(len(data), i + 20)))
        return data[:i] + data[j:]
    if kind == "quote":
        k = [m for m in range(len(data)) if data[m:m + 1] == b'"']
        m = draw(st.sampled_from(k))
        return data[:m] + data[m + 1:]
    if kind == "bytes":
        return data[:i] + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\x80\x80", b"\xed\xa0\x80"])) + data[i:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + data
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"# nothing\n", b"model = \"grain_exchange\"\n"]))
    lines = data.split(b"\n")
    k = draw(st.integers(0, len(lines) - 1))
    if kind == "duplicate_line":
        lines.insert(k, lines[k])
    elif kind == "header":
        lines.insert(k, draw(st.sampled_from([b"[phases]", b"[[phases]]", b"[thermal]", b"[temperature]",
                                              b"[x.y.z]", b"[sample.\"a\"]", b"[", b"model = 3"])))
    elif kind == "crlf":
        return b"\r\n".join(lines)
    else:
        lines[k] = lines[k] + b"\x00"
    return b"\n".join(lines)


# ------------------------------------------------------------------------- the property
def check_rejection(exc, path):
    """A rejection must be an IsosimError with exit code 2 whose message names the deck."""
    from isosim.errors import DeckError, IsosimError
    assert isinstance(exc, IsosimError), f"{type(exc).__name__}: {exc}"
    assert exc.exit_code == 2, f"exit code {exc.exit_code} for a bad deck: {exc}"
    text = str(exc)
    assert str(path) in text, f"the message does not name the deck {path}:\n{text}"
    if isinstance(exc, DeckError):
        assert exc.problems, "a DeckError without problems"
        for p in exc.problems:
            assert p.strip() and "Traceback" not in p, f"unclear problem line {p!r}"
    return text


def estimated_unknowns(deck):
    """Roughly how many unknowns a deck's problem has (to keep the set-up check cheap)."""
    model = deck["model"]
    if model == "capsule":
        nsp = sum(len(e["isotopes"]) for e in deck["elements"].values()) + len(deck["components"])
        return deck["capsule"]["cells"] * nsp
    if model == "grain_exchange":
        classes = sum(1 if p["size_distribution"] == "single" else
                      p["bins"] if p["size_distribution"] == "lognormal" else len(p["bin_radii_mm"])
                      for p in deck["phases"].values())
        return deck["grid"]["cells"] * classes * len(deck["isotopes"]["names"])
    return 1


def check_setup(deck):
    """Build the model's problem and recorder for an accepted deck on one rank, as
    ``isosim run`` does, and evaluate the initial state and residual: every number must be
    finite. Returns False if the deck was too large to build cheaply (not checked)."""
    from mpi4py import MPI

    from isosim.models import REGISTRY
    from isosim.models.base import ASSEMBLED, EXPLICIT
    if estimated_unknowns(deck) > 200_000:
        return False
    problem_cls, recorder_cls = REGISTRY[deck["model"]]
    problem = problem_cls([deck], MPI.COMM_SELF)
    try:
        recorder = recorder_cls(problem)
        times = np.asarray(recorder.times, dtype=float)
        assert times.size and np.all(np.isfinite(times)) and times[-1] == problem.end_time, times
        with np.errstate(all="ignore"):
            if problem.kind == ASSEMBLED:                   # capsule: PETSc vectors
                u, f, udot = problem.create_vector(), problem.create_vector(), problem.create_vector()
                with u as ua:
                    problem.initial_state(ua)
                udot.set(0.0)
                problem.petsc_ifunction(None, 0.0, u, udot, f)
                steady = problem.steady_state()             # exp(-psi): 0 where psi spans too much
                assert np.all(steady > 0), "a zero steady-state concentration (0/0 isotope ratios)"
                values = [u.getArray(), f.getArray(), problem.a_plus, problem.a_minus, steady]
                recorder.record(0.0, u.getArray(readonly=True))
                for v in (u, f, udot):
                    v.destroy()
            else:
                u = np.zeros(problem.local_size)
                problem.initial_state(u)
                f = np.zeros_like(u)
                values = [u]
                for tau in (0.0, 0.5, 1.0):
                    if problem.kind == EXPLICIT:
                        problem.rhs(tau, u, f)
                    else:
                        problem.ifunction(tau, u, np.zeros_like(u), f)
                        problem.ijacobian(tau, u, 1.0)
                        values += list(problem.coefficients(tau))
                    values.append(f.copy())
                recorder.record(0.0, u)
        for v in values:
            assert np.all(np.isfinite(np.asarray(v))), f"non-finite numbers at set-up: {v}"
    finally:
        problem.destroy()
    return True
