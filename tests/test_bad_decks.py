"""Bad input decks: a clear one-paragraph error and exit code 2, before anything is computed.

Every case starts from the valid reference deck ``input/xiong_fig1.toml`` and breaks it
once, by a text edit of the file and/or by ``--set KEY=VALUE`` overrides. Each case is run
through ``isosim check DECK`` and ``isosim run DECK --out DIR`` as a subprocess, and must

* exit with code 2,
* print nothing on stdout and no Python traceback anywhere,
* print one paragraph on stderr: ``error: input deck PATH has N problem(s); nothing was
  run:`` followed by one ``  - `` line per problem,
* name the deck path, the offending key, the bad value as the user wrote it, and what
  was expected,
* (``run``) leave no results in DIR.

For mistakes in the file as a whole (unreadable, not UTF-8, not TOML) there is no key;
the location in the file (line, byte) stands in for it.

Cases marked ``xfail(strict=True)`` are isosim bugs found by these tests; the test states
the behaviour that should hold, so it starts passing (and strict xfail fails) once fixed.
"""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import child_env

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "input" / "xiong_fig1.toml"
REF_TEXT = REFERENCE.read_text(encoding="utf-8")

ENV = child_env()

HEADER = "error: input deck "
BULLET = "  - "
HUGE_INT = "1" + "0" * 400          # a valid TOML integer too large for a float


# --------------------------------------------------------------------------- helpers

def isosim(args, cwd, timeout=120):
    """Run ``python -m isosim ARGS`` in ``cwd``; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "isosim", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def in_table(table, old, new):
    """An edit replacing the one occurrence of ``old`` inside ``[table]`` of the deck text."""
    def edit(text):
        start = text.index(f"\n[{table}]\n") + 1
        end = text.find("\n[", start + 1)
        end = len(text) if end < 0 else end
        section = text[start:end]
        assert section.count(old) == 1, f"{old!r} is not unique in [{table}] of the reference deck"
        return text[:start] + section.replace(old, new) + text[end:]
    return edit


def top(old, new):
    """An edit replacing the one occurrence of ``old`` anywhere in the deck text."""
    def edit(text):
        assert text.count(old) == 1, f"{old!r} is not unique in the reference deck"
        return text.replace(old, new)
    return edit


def latin1_title(text):
    """The deck, UTF-8 except for a Latin-1 word ("été") at the start of its title."""
    assert text.count('title = "') == 1
    before, after = text.split('title = "')
    return (before + 'title = "').encode("utf-8") + "été ".encode("latin-1") + after.encode("utf-8")


def _line_of_opx_beta():
    lines = REF_TEXT.splitlines()
    start = lines.index("[phases.opx]")
    return next(i for i, line in enumerate(lines[start:], start + 1) if line.startswith("beta ="))


OPX_BETA_LINE = _line_of_opx_beta()
LATIN1_BYTE = latin1_title(REF_TEXT).index("é".encode("latin-1"))   # the first bad byte


@dataclass
class Case:
    """One mistake: how to make it, and what the message must say about it.

    ``key``, ``shown`` and ``expect`` are substrings the error message must contain: the
    offending key, the bad value as the user wrote it, and what a valid value looks like.
    """

    id: str
    key: str
    shown: str
    expect: str
    edit: object = None          # deck text -> str or bytes; None keeps the reference deck
    sets: tuple = ()             # --set overrides
    deck: str = "deck.toml"      # name of the deck under tmp_path
    write: bool = True           # False: the deck path does not exist (or is made by make)
    make: object = None          # tmp_path -> None, creating something at the deck path
    bug: str = ""                # non-empty: a known isosim bug (strict xfail)


CASES = [
    Case("negative-D0", "phases.opx.D0_m2_s", "-1e-10", "expected a finite number > 0",
         sets=("phases.opx.D0_m2_s=-1e-10",)),
    Case("beta-above-0.5", "phases.opx.beta", "0.7", "expected a finite number >= 0 and <= 0.5",
         sets=("phases.opx.beta=0.7",)),
    Case("modal-fractions-not-1", "phases.*.modal_fraction", "1.1", "expected 1",
         edit=in_table("phases.opx", "modal_fraction = 0.7", "modal_fraction = 0.8")),
    Case("cooling-path-heats", "temperature.end_C", "1300", "must end below start_C = 1200",
         edit=in_table("temperature", "end_C = 600.0", "end_C = 1300.0")),
    Case("heating-path-cools", "temperature.end_C", "600", "must end above start_C = 1200",
         sets=('temperature.path="heating"',)),
    Case("unknown-key-typo", "phases.opx.radus_mm", "unknown key", "known keys here",
         edit=in_table("phases.opx", "radius_mm = 1.0", "radus_mm = 1.0")),
    Case("string-for-number", "temperature.rate_C_per_Myr", "'fast'", "expected a finite number > 0",
         edit=in_table("temperature", "rate_C_per_Myr = 10.0", 'rate_C_per_Myr = "fast"')),
    Case("bare-word-set-for-number", "grid.stretch", "'steep'", "expected a finite number >= 1",
         sets=("grid.stretch=steep",)),
    Case("float-for-integer", "grid.cells", "2.5", "expected an integer >= 4",
         sets=("grid.cells=2.5",)),
    Case("missing-required-key", "phases.opx.radius_mm", "missing",
         "size_distribution = 'single' needs it",
         edit=in_table("phases.opx", "radius_mm = 1.0\n", "")),
    Case("nan", "phases.opx.beta", "nan", "expected a finite number",
         edit=in_table("phases.opx", "beta = 0.05", "beta = nan")),
    Case("inf", "phases.cpx.D0_m2_s", "inf", "expected a finite number",
         edit=in_table("phases.cpx", "D0_m2_s = 1.99e-8", "D0_m2_s = inf")),
    Case("minus-inf-set", "temperature.start_C", "-inf", "expected a finite number",
         sets=("temperature.start_C=-inf",)),
    Case("nan-in-list", "output.temperatures_C", "nan", "expected a list of finite numbers",
         sets=("output.temperatures_C=[1100.0, nan]",)),
    Case("malformed-toml", f"line {OPX_BETA_LINE}", "Invalid value", "not valid TOML",
         edit=in_table("phases.opx", "beta = 0.05", "beta = ")),
    Case("not-utf8", f"byte {LATIN1_BYTE}", "is not UTF-8", "expected a UTF-8 text file",
         edit=latin1_title),
    Case("nonexistent-file", "no_such_deck.toml", "does not exist", "the file does not exist",
         deck="no_such_deck.toml", write=False),
    Case("directory-as-deck", "a_directory", "is a directory", "expected a TOML input deck",
         deck="a_directory", write=False, make=lambda p: (p / "a_directory").mkdir()),
    Case("two-host-phases", "host = true", "(opx, cpx)", "expected exactly one",
         sets=("phases.opx.host=true",)),
    Case("unknown-model", "model", "'grain_exchnage'", "expected one of 'grain_exchange'",
         edit=top('model = "grain_exchange"', 'model = "grain_exchnage"')),
    Case("masses-wrong-length", "isotopes.masses_amu", "has 3 entries",
         "expected one per isotope (2",
         sets=("isotopes.masses_amu=[39.962591, 43.955482, 47.952534]",)),
    Case("reference-isotope-unknown", "isotopes.reference", "'42Ca'",
         "expected one of ['40Ca', '44Ca']", sets=('isotopes.reference="42Ca"',)),
    Case("output-temperature-off-path", "output.temperatures_C", "1300",
         "expected values on the path, between 600 and 1200",
         edit=in_table("output", "temperatures_C = [1100.0,", "temperatures_C = [1300.0, 1100.0,")),
    Case("output-pair-unknown-phase", "output.pair", "'ol'",
         "expected two different phase names", sets=('output.pair=["opx", "ol"]',)),
    Case("unknown-ts-type", "solver.ts_type", "'rk4'", "expected one of 'arkimex'",
         edit=in_table("solver", 'ts_type = "arkimex"', 'ts_type = "rk4"')),
    Case("grid-too-stretched", "grid.stretch", "1.5", "expected at most 1e6",
         sets=("grid.stretch=1.5",)),
    Case("accuracy-with-cells-and-stretch", "grid.accuracy_permil = 0.001",
         "grid.cells = 100 and grid.stretch = 1.03", "give one or the other",
         sets=("grid.accuracy_permil=1e-3",)),
    Case("set-without-equals", "phases.opx.beta", "--set 'phases.opx.beta'", "expected KEY=VALUE",
         sets=("phases.opx.beta",)),
    Case("set-empty-key-part", "phases..beta", "--set 'phases..beta=0.1'", "not a dotted name",
         sets=("phases..beta=0.1",)),
    Case("set-through-a-value", "temperature.start_C", "--set temperature.start_C.x=1",
         "is a value, not a table", sets=("temperature.start_C.x=1",)),

    # --- bugs these tests found (fixed) -----------------------------------------------
    Case("many-cells-with-stretch", "grid.cells = 100000", "grid.stretch = 1.03",
         "expected at most 1e6", sets=("grid.cells=100000",)),
    Case("model-is-a-list", "model", "['grain_exchange']", "expected one of 'grain_exchange'",
         edit=top('model = "grain_exchange"', 'model = ["grain_exchange"]')),
    Case("integer-too-large-for-float", "phases.opx.beta", HUGE_INT, "<= 0.5",
         sets=(f"phases.opx.beta={HUGE_INT}",)),
    Case("phase-is-a-value", "phases.opx", "0.7", "expected a table", sets=("phases.opx=0.7",)),
    Case("date-for-number", "temperature.start_C", "1979-05-27", "expected a finite number",
         edit=in_table("temperature", "start_C = 1200.0", "start_C = 1979-05-27")),
    Case("malformed-toml-names-key", "beta", "beta = ", "not valid TOML",
         edit=in_table("phases.opx", "beta = 0.05", "beta = ")),
]


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


def make_deck(case, tmp_path):
    """Create the case's deck under ``tmp_path``; return its path."""
    path = tmp_path / case.deck
    if case.make:
        case.make(tmp_path)
    if case.write:
        content = case.edit(REF_TEXT) if case.edit else REF_TEXT
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return path


def assert_refused(proc, deck, *must_contain):
    """Exit 2, no traceback, empty stdout, one paragraph naming the deck and ``must_contain``."""
    out, err = proc.stdout, proc.stderr
    report = f"exit {proc.returncode}\n--- stdout:\n{out}\n--- stderr:\n{err}"
    assert "Traceback" not in out + err, report
    assert proc.returncode == 2, report
    assert out == "", report
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith(HEADER + str(deck)), report
    assert lines[0].endswith("nothing was run:"), report
    assert len(lines) >= 2 and all(line.startswith(BULLET) for line in lines[1:]), report
    for text in must_contain:
        assert text in err, f"{text!r} missing from the message\n{report}"
    return lines[1:]


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_deck_is_refused(case, command, tmp_path):
    deck = make_deck(case, tmp_path)
    out_dir = tmp_path / "out"
    args = [command, deck]
    for s in case.sets:
        args += ["--set", s]
    if command == "run":
        args += ["--out", out_dir]
    proc = isosim(args, cwd=tmp_path)
    assert_refused(proc, deck, case.key, case.shown, case.expect)
    for name in ("results.h5", "summary.json", "checkpoint.h5"):
        assert not (out_dir / name).exists(), f"{name} written for a refused deck"


MANY_STRUCTURAL = [
    in_table("phases.opx", "beta = 0.05", "beta = 0.7"),
    in_table("phases.opx", "D0_m2_s = 1.17e-10", "D0_m2_s = -1e-10"),
    in_table("temperature", "rate_C_per_Myr = 10.0", 'rate_C_per_Myr = "fast"'),
    in_table("solver", 'ts_type = "arkimex"', 'ts_type = "rk4"'),
    in_table("phases.cpx", "beta = 0.05", 'beta = 0.05\ncolour = "green"'),
]
MANY_CROSS = [                     # each key valid alone, inconsistent together
    in_table("phases.opx", "modal_fraction = 0.7", "modal_fraction = 0.8"),
    in_table("phases.opx", "beta = 0.05", "beta = 0.05\nhost = true"),
    in_table("isotopes", "masses_amu = [39.962591, 43.955482]",
             "masses_amu = [39.962591, 43.955482, 47.952534]"),
    in_table("output", 'pair = ["opx", "cpx"]', 'pair = ["opx", "ol"]'),
]


@pytest.mark.parametrize("edits, keys, n", [
    pytest.param(MANY_STRUCTURAL, ["phases.opx.beta = 0.7", "phases.opx.D0_m2_s = -1e-10",
                                   "temperature.rate_C_per_Myr = 'fast'", "solver.ts_type = 'rk4'",
                                   "phases.cpx.colour: unknown key"], 5, id="structural"),
    # opx as a second host also (rightly) flags opx's ln K: 5 problems from 4 edits
    pytest.param(MANY_CROSS, ["phases.*.modal_fraction sum to 1.1", "host = true (opx, cpx)",
                              "phases.opx: is the host", "isotopes.masses_amu has 3 entries",
                              "output.pair = ['opx', 'ol']"], 5, id="cross-field"),
])
def test_several_mistakes_are_all_listed(edits, keys, n, tmp_path):
    text = REF_TEXT
    for edit in edits:
        text = edit(text)
    deck = tmp_path / "deck.toml"
    deck.write_text(text, encoding="utf-8")
    proc = isosim(["check", deck], cwd=tmp_path)
    problems = assert_refused(proc, deck, *keys)
    assert len(problems) == n, proc.stderr
    assert f"has {n} problems" in proc.stderr


def test_valid_deck_checks_and_prints_resolved_deck(tmp_path):
    proc = isosim(["check", REFERENCE], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "valid" in proc.stdout
    assert "every_seconds = 1800.0" in proc.stdout        # a default, absent from the deck
    assert 'ts_type = "arkimex"' in proc.stdout
    # the printed resolved deck is itself a valid deck
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(proc.stdout, encoding="utf-8")
    again = isosim(["check", "--quiet", resolved], cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "", again.stderr
