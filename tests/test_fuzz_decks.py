"""Property-based fuzzing of input decks, every model (issue 7, item 3).

Starting from the shipped decks (``fuzz_support.BASE_DECKS``), hypothesis mutates a deck
(wrong types, missing and misspelt keys, NaN/inf, zero, negative and huge numbers, values
copied between keys, extreme values inside the schema's bounds, emptied or grown lists,
renamed and cloned sub-tables, [sweep]/[invert]/[sample] entries) or its TOML text
(truncated, bad quoting, bytes that are not UTF-8, ...). The property:

* ``validate``/``load_deck`` either return a resolved deck or raise an ``IsosimError`` with
  exit code 2 whose message names the deck file; any other exception fails the test. A
  single mutation that is rejected must be named (its key) in the message;
* an accepted deck builds its model's problem and recorder and gives finite numbers
  (``check_setup``), survives the round trip through the ``deck.toml`` of a run directory
  (a restart re-validates it), and its [sweep]/[invert]/[sample] tables expand into members;
* a sample of decks goes through the real command line as subprocesses: ``isosim check``
  (exit 0 or 2, no traceback) and, for accepted decks on a small grid, ``isosim run``
  (exit 0 or 2 within a time limit: no traceback, no hang).

Runtime (CI profile, 2 cores, quiet machine): about 55 s; 2400 decks per model in-process,
8 per model through the command line.
"""

import copy
import subprocess
import sys

import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from support import CLEAN_ENV, load_raw
from fuzz_support import (IN_SCHEMA, check_rejection, check_setup, mangled_text, mutated_decks,
                          reference_text, scaled)

from isosim.deck import deck_digest, load_deck, to_toml, validate
from isosim.deck.load import split_key, tomllib
from isosim.errors import DeckError

MODELS = ("grain_exchange", "capsule", "chamber")
#: decks fuzzed in-process per model by each property (x10 under HYPOTHESIS_PROFILE=thorough)
N_MUTATED = scaled(2000)
N_TEXT = scaled(400)
#: decks per model through the real command line (each costs a Python + PETSc start-up)
N_CLI = scaled(4)
#: a small grid for the run of an accepted deck: each run takes a second or two
SMALL = {"grain_exchange": ["grid.cells=8", "output.series_points=5"],
         "capsule": ["capsule.cells=16", "time.series_points=3"],
         "chamber": ["output.points=5"]}
RUN_TIMEOUT = 120       # s: ~10x the slowest small run seen; longer is a hang
#: (model, accepted) -> decks seen, printed at the end (pytest -s)
COUNTS = {}


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\ndecks fuzzed (model: accepted / rejected):",
          ", ".join(f"{m}: {COUNTS.get((m, True), 0)} / {COUNTS.get((m, False), 0)}" for m in MODELS))


def accept_or_reject(raw, path, model):
    """Validate; return the resolved deck, or None after checking the rejection."""
    try:
        deck = validate(copy.deepcopy(raw), str(path))
    except Exception as exc:        # noqa: BLE001 - the property is about every exception
        check_rejection(exc, path)
        deck = None
    COUNTS[model, deck is not None] = COUNTS.get((model, deck is not None), 0) + 1
    return deck


def check_accepted(deck, raw, path):
    """What must hold for an accepted deck (see the module docstring)."""
    again = validate(tomllib.loads(to_toml(deck)), str(path))
    assert deck_digest(again) == deck_digest(deck), "the resolved deck does not survive deck.toml"
    check_expansion(deck, raw, path)
    check_setup(deck)


def check_expansion(deck, raw, path):
    """An accepted deck's [sweep]/[invert] strings parse (validation checked them), and its
    members expand: valid decks, or a DeckError naming the deck (a member out of range)."""
    from isosim.deck.specs import parse_range, parse_target, parse_values
    from isosim.studies.ensemble import expand
    if "sweep" not in deck:
        return
    vary = [parse_values(v) for v in deck["sweep"]["vary"]]
    inv = deck["invert"]
    parse_range(inv["bracket"])
    if inv["target"]:
        parse_target(inv["target"])
    if inv["over"]:
        vary.append(parse_values(inv["over"]))
    vary = [(k, v[:3]) for k, v in vary][:2]            # a few members are enough
    samples = 2 if deck["sample"] else 0
    try:
        decks, _ = expand(raw, str(path), vary, samples, seed=0)
    except Exception as exc:        # noqa: BLE001
        check_rejection(exc, path)
        return
    assert all(d["model"] == deck["model"] for d in decks)


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=N_MUTATED)
@given(data=st.data())
def test_mutated_decks_are_accepted_or_cleanly_rejected(model, data, tmp_path_factory):
    raw, what, where = data.draw(mutated_decks(model))
    note("\n".join(what))
    path = tmp_path_factory.getbasetemp() / f"fuzz_{model}.toml"
    deck = accept_or_reject(raw, path, model)
    if deck is not None:
        check_accepted(deck, raw, path)
    elif len(where) == 1 and where[0]:
        check_names_key(raw, path, where[0])


def check_names_key(raw, path, key):
    """A deck rejected for one mutation: some problem names the mutated key (its last part),
    or the table it sits in when the mutation removed or renamed something there."""
    try:
        validate(copy.deepcopy(raw), str(path))
    except DeckError as exc:
        text = "\n".join(exc.problems)
        names = {str(key[-1])} | ({str(key[-2])} if len(key) > 1 else set())
        names |= {repr(n)[1:-1] for n in names}         # as a list or a repr shows it
        assert any(n in text for n in names), f"no problem names {'.'.join(map(str, key))}:\n{text}"


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=N_TEXT)
@given(data=st.data())
def test_mangled_deck_files_are_accepted_or_cleanly_rejected(model, data, tmp_path_factory):
    """Textual accidents in the file: load_deck reads it (as the CLI does)."""
    blob = data.draw(mangled_text(reference_text(model)))
    path = tmp_path_factory.getbasetemp() / f"mangled_{model}.toml"
    path.write_bytes(blob)
    try:
        deck = load_deck(path)
    except Exception as exc:        # noqa: BLE001
        check_rejection(exc, path)
        COUNTS[model, False] = COUNTS.get((model, False), 0) + 1
        return
    COUNTS[model, True] = COUNTS.get((model, True), 0) + 1
    check_accepted(deck, tomllib.loads(blob.decode("utf-8")), path)


def test_not_a_deck_file(tmp_path):
    """A directory, a missing file, a device, an empty name, a huge file: exit-2 errors."""
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as f:
        f.truncate(17 * 2**20)                # a sparse 17 MiB file: over the 16 MiB limit
    cases = {tmp_path: "directory", tmp_path / "missing.toml": "does not exist", "/dev/zero": "device",
             huge: "larger than 16 MiB", "": "empty"}
    for path, words in cases.items():
        with pytest.raises(DeckError) as err:
            load_deck(path)
        assert words in str(err.value), str(err.value)
        assert err.value.exit_code == 2


# ------------------------------------------------------------------ regressions found by the fuzzing
@pytest.mark.parametrize("model,key,value,words", [
    # a rate of 1e-300 degC/Myr: the path lasts 6e302 Myr and D t/r^2 overflowed to inf (NaN residual)
    ("grain_exchange", "temperature.rate_C_per_Myr", 1e-300, "lasts 6e+302 Myr"),
    # a grain of 5e-324 mm: D t/r^2 = inf, "singular tridiagonal block" LinAlgError at the first step
    ("grain_exchange", "phases.cpx.radius_mm", 5e-324, "D t / r^2 = inf"),
    # ln K = 1e6: K = exp(1e6) = inf, NaN initial state
    ("grain_exchange", "phases.opx.lnK_C", 1e6, "|ln K| <= 300"),
    # a boundary volume of 2e-308: its rows are scaled by 1/v_b = inf
    ("grain_exchange", "grain_boundary.volume_fraction", 2.2250738585072014e-308, "at least 1e-09"),
    # a capsule 5e-324 mm long: cells of width 0, D/h^2 = inf, NaN residual
    ("capsule", "capsule.length_mm", 5e-324, "D t / h^2 = inf"),
    # dS_T/dT = 1 /degC^2 over 300 degC: exp(-psi) underflows, the steady state is 0/0 (NaN Omega, T0)
    ("capsule", "elements.Fe.dS_T_dT_per_C2", 1.0, "Soret potential"),
    # a starting delta of -1000 permil for the reference isotope: a zero ratio, division by zero
    ("capsule", "elements.Fe.start_delta_permil", [-1000.0, 0.0, 0.0], "expected a list of finite numbers > -1000"),
    # two isotopes of one mass: the Soret fit divided by a mass difference of 0 (NaN Omega)
    ("capsule", "elements.Fe.masses_amu", [53.9396105, 53.9396105, 56.935394], "expected distinct masses"),
    # hot_C = cold_C: no gradient, the Soret fit divides 0 by 0 (NaN Omega and T0 in summary.json)
    ("capsule", "temperature.cold_C", 1528.0, "isothermal"),
    # dH = 1e7 J/mol: D = D0 exp(-1300) = 0, C_a = C_s / D_a = inf
    ("chamber", "elements.Ni.dH_wallrock_J_mol", 1e7, "|ln D| <= 300"),
    # [sweep]/[invert] strings were parsed only by 'isosim sweep/invert': 'isosim check' passed them
    ("grain_exchange", "sweep.vary", ["log:0:1:3"], "sweep.vary[0] 'log:0:1:3'"),
    ("grain_exchange", "sweep.vary", ["phases.opx.beta=0:0.5:0"], "COUNT = '0'"),
    ("grain_exchange", "sweep.vary", ["phases.opx.beta=0.1:nan"], "finite START and STOP"),
    ("grain_exchange", "sweep.vary", ["phases.ol.beta=0,0.1"], "not a key of this deck"),
    ("grain_exchange", "invert.bracket", "1:2:0", "invert.bracket '1:2:0': expected LOW:HIGH"),
    ("grain_exchange", "invert.target", "Delta_permil=inf", "finite number"),
    ("grain_exchange", "invert.param", "phases", "is a table, not a value"),
    ("chamber", "sweep.samples", 5, "expected [sample.\"KEY\"] tables"),
    # beuler, theta and cn take fixed steps of initial_dt: 1e8 steps, hours before the step limit
    ("grain_exchange", "solver.ts_type", "theta", "takes fixed steps"),
    # a table position on a parabolic profile was ignored, then extrapolated into the Soret check
    ("capsule", "temperature.table_x_mm", [-1e6], "not used by profile = 'parabolic'"),
    # wall rock starting above its liquidus: M_a° = -2.2 (negative wall rock), or with T_l,a = 1
    # degC the set-up gave inf and NaN
    ("chamber", {"thermal.T_liquidus_wallrock_C": 1000.0, "thermal.T_wallrock0_C": 1050.0}, None, "M_a° = -2.163"),
    ("chamber", {"thermal.T_liquidus_wallrock_C": 1.0, "thermal.T_solidus_C": 0.0}, None, "M_a° = -1.143"),
    # a denormal concentration: the radiogenic ratio's rate divides by M_m C_m = 4e-314 (inf)
    ("chamber", "elements.Sr.C_magma_ppm", 4.345847379902e-311, "expected 0 or at least 1e-12 of the element's"),
    # a lognormal truncated above at 0: scipy's truncnorm raised a ValueError in 'isosim sweep'
    ("spera2004_montecarlo.toml", "sample.\"elements.Sr.D_wallrock\".high", 0.0, "lognormal values are positive"),
    # b > 0: a melt fraction that falls as the temperature rises
    ("chamber", "productivity.wallrock.b", 5.0, "productivity.wallrock.b = 5.0: expected a finite number >= -1000 and < 0"),
])
def test_regressions(model, key, value, words, tmp_path):
    """``model``: the model's reference deck, or a shipped deck by file name."""
    raw = load_raw(model) if model.endswith(".toml") else copy.deepcopy(_bases(model)[0][1])
    for k, v in (key.items() if isinstance(key, dict) else [(key, value)]):
        parts = split_key(k)
        node = raw
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    path = tmp_path / "deck.toml"
    with pytest.raises(DeckError) as err:
        validate(raw, str(path))
    check_rejection(err.value, path)
    assert words in str(err.value), str(err.value)


def _bases(model):
    from fuzz_support import BASES
    return BASES[model]


def test_resolved_deck_with_awkward_names_survives_deck_toml(tmp_path):
    """to_toml wrote astral characters as JSON surrogate pairs and DEL raw: the run
    directory's deck.toml could not be read back (restart refused)."""
    raw = copy.deepcopy(_bases("capsule")[0][1])
    raw["elements"]["\U0006d0a9 J\x7f\x1b"] = raw["elements"].pop("Mg")
    raw["title"] = "tab\there, quote \" and backslash \\ \x00"
    deck = validate(raw, str(tmp_path / "d.toml"))
    again = validate(tomllib.loads(to_toml(deck)), "checkpoint")
    assert deck_digest(again) == deck_digest(deck)


# ------------------------------------------------------------------ the real command line
def _isosim(args, cwd, timeout):
    return subprocess.run([sys.executable, "-m", "isosim", *map(str, args)], cwd=cwd, env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=timeout)


def _assert_clean(proc, what):
    assert "Traceback" not in proc.stderr + proc.stdout, f"{what}:\n{proc.stderr}"
    assert proc.returncode in (0, 2), f"{what}: exit {proc.returncode}\n{proc.stderr}"
    if proc.returncode == 2:
        assert proc.stderr.startswith("error: "), f"{what}: unclear message:\n{proc.stderr}"


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=N_CLI)
@given(data=st.data())
def test_isosim_check_on_mutated_decks(model, data, tmp_path_factory):
    """``isosim check`` agrees with validate: exit 0 (resolved deck on stdout) or 2."""
    raw, what, _ = data.draw(mutated_decks(model))
    note("\n".join(what))
    d = tmp_path_factory.mktemp("check")
    path = d / "deck.toml"
    path.write_text(to_toml(raw), encoding="utf-8")
    expected = accept_or_reject(tomllib.loads(path.read_text(encoding="utf-8")), path, model)
    proc = _isosim(["check", path], d, 60)
    _assert_clean(proc, "\n".join(what))
    assert proc.returncode == (0 if expected is not None else 2), proc.stderr
    if proc.returncode == 2:
        assert str(path) in proc.stderr


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=N_CLI)
@given(data=st.data())
def test_isosim_run_on_accepted_decks(model, data, tmp_path_factory):
    """Decks with values anywhere in the schema's ranges run on a small grid: exit 0, or 2
    when the deck (or the small-grid override) is invalid; never a traceback or a hang."""
    raw, what, _ = data.draw(mutated_decks(model, ops=IN_SCHEMA))
    note("\n".join(what))
    try:                       # run only what validates: a rejection is the check test's business
        validate(copy.deepcopy(raw), "deck.toml")
    except DeckError:
        assume(False)
    d = tmp_path_factory.mktemp("run")
    path = d / "deck.toml"
    path.write_text(to_toml(raw), encoding="utf-8")
    args = ["run", path, "--out", d / "out", "--progress", "0"]
    for s in SMALL[model]:
        args += ["--set", s]
    proc = _isosim(args, d, RUN_TIMEOUT)
    _assert_clean(proc, "\n".join(what))
    if proc.returncode == 0:
        assert (d / "out" / "summary.json").is_file()
    else:
        assert not (d / "out" / "summary.json").exists()
