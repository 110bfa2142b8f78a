"""Data files from outside isosim are rejected clearly: exit 2, the file, line, column and expectation.

Two readers take such files: the two-column tables a deck refers to (``temperature.file``: a
T-t path of the grain model, a T-x profile of the capsule; ``isosim.deck.tables``) and the
CSV files of ``isosim fit-soret`` (``isosim.fitting.table1``). Each malformation below is a
way a spreadsheet export or a digitised figure really goes wrong. Most cases call the
readers in-process (milliseconds); a few go through the command line to check the exit
code and that no traceback is printed. Runtime: ~4 s.
"""

import pytest

from support import INPUT, ROOT, run_cli
from isosim.deck.tables import read_columns_csv
from isosim.errors import EXIT_USAGE, DataFileError, UsageError
from isosim.fitting.table1 import load_table1

PATH = ("t_Myr", "T_C")
PATH_UNITS = "time in Myr, temperature in degC"
SAMPLES = ROOT / "data" / "huang2010_table1_samples.csv"
EXPERIMENTS = ROOT / "data" / "huang2010_table1_experiments.csv"


def _read_path(tmp_path, content):
    f = tmp_path / "p.csv"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    return read_columns_csv(tmp_path, "p.csv", "temperature.file", PATH, PATH_UNITS)


# content -> fragments every one of which the (single) problem must contain
BAD_PATH_FILES = {
    "empty": ("", ["empty", "'t_Myr,T_C'"]),
    "only comments": ("# digitised from Fig. 3\n\n", ["empty"]),
    "missing column": ("t_Myr\n0\n1\n", ["line 1", "column 2 (T_C) is missing"]),
    "temperature in K": ("t_Myr,T_K\n0,1473\n1,873\n", ["line 1", "column 2", "'T_K' (temperature in K)",
                                                        "not 'T_C' (temperature in degC)"]),
    "time in Ma, bracketed": ("t (Ma),T_C\n0,1200\n1,600\n", ["column 1", "time in Ma", "'t_Myr'"]),
    "no units": ("time,temp\n0,1200\n1,600\n", ["line 1", "column 1 is 'time'", "expected 't_Myr,T_C'"]),
    "semicolons": ("t_Myr;T_C\n0;1200\n1;600\n", ["separated by ';'", "expected 't_Myr,T_C'"]),
    "extra column": ("t_Myr,T_C,note\n0,1200,a\n1,600,b\n", ["column 3 'note' is not used"]),
    "text cell": ("t_Myr,T_C\n0,1200\n1,hot\n", ["line 3, column 2 (T_C)", "'hot'", "expected two numbers"]),
    "blank cell": ("t_Myr,T_C\n0,1200\n1,\n", ["line 3, column 2 (T_C)", "''"]),
    "nan cell": ("t_Myr,T_C\n0,1200\nnan,600\n", ["line 3, column 1 (t_Myr)", "'nan'", "finite"]),
    "decimal comma": ('t_Myr,T_C\n0,1200\n"1,5",600\n', ["line 3, column 1", "'1,5'"]),
    "too many fields": ("t_Myr,T_C\n0,1200,5\n1,600\n", ["line 2", "3 field(s); expected 2"]),
    "time goes back": ("t_Myr,T_C\n0,1200\n2,900\n1,600\n", ["line 4, column 1 (t_Myr)", "does not increase",
                                                             "previous 2, line 3"]),
    "repeated time": ("t_Myr,T_C\n0,1200\n0,600\n", ["line 3", "does not increase"]),
    "below absolute zero": ("t_Myr,T_C\n0,1200\n1,-300\n", ["line 3, column 2", "absolute zero"]),
    "one row": ("t_Myr,T_C\n0,1200\n", ["1 data row(s)", "at least 2 rows"]),
    "latin-1 degree sign": ("t_Myr,T_C\n# 1200 °C at the start\n0,1200\n1,600\n".encode("latin-1"),
                            ["line 2, column 8", "byte 0xb0", "not UTF-8"]),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00", ["line 1, column 1: byte 0x89 is not UTF-8"]),
}


@pytest.mark.parametrize("case", BAD_PATH_FILES)
def test_bad_path_table(tmp_path, case):
    """Each malformed T-t file is refused with problems naming the file and where it is wrong
    (one problem per wrong cell: two for a header with two unknown names, one otherwise)."""
    content, fragments = BAD_PATH_FILES[case]
    columns, problems = _read_path(tmp_path, content)
    assert columns is None and len(problems) == (2 if case == "no units" else 1), problems
    assert all("temperature.file" in p and "p.csv" in p for p in problems)
    for s in fragments:
        assert s in problems[0], (s, problems[0])


def test_good_path_table_variants(tmp_path):
    """What a spreadsheet writes and is not wrong: a byte-order mark, CRLF line ends, quoted
    cells, comments and blank lines, spaces around cells. All read to the same numbers."""
    expected = [[0.0, 1.5, 60.0], [1200.0, 1100.0, 600.0]]
    for content in ("t_Myr,T_C\n0,1200\n1.5,1100\n60,600\n",
                    "\ufefft_Myr,T_C\r\n0,1200\r\n1.5,1100\r\n60,600\r\n",
                    '# path\n\n"t_Myr", "T_C"\n"0","1200"\n 1.5 , 1100 \n\n60,6e2\n'):
        columns, problems = _read_path(tmp_path, content)
        assert problems == [] and columns == expected, (content, problems)


def test_every_problem_listed_up_to_a_limit(tmp_path):
    """A file wrong on many lines lists each (line and column) up to 10, then a count."""
    rows = "\n".join(f"{k},x{k}" for k in range(25))
    columns, problems = _read_path(tmp_path, "t_Myr,T_C\n" + rows + "\n")
    assert columns is None and len(problems) == 11
    assert "line 2, column 2" in problems[0] and "line 11, column 2" in problems[9]
    assert "15 more problems" in problems[10]


def test_missing_and_directory(tmp_path):
    """A file name that is no file, or a directory, is named in the problem."""
    _, problems = read_columns_csv(tmp_path, "nope.csv", "temperature.file", PATH, PATH_UNITS)
    assert problems == [f"temperature.file = 'nope.csv': {tmp_path / 'nope.csv'}: no such file"]
    (tmp_path / "d.csv").mkdir()
    _, problems = read_columns_csv(tmp_path, "d.csv", "temperature.file", PATH, PATH_UNITS)
    assert "is a directory" in problems[0]


def _table_deck(tmp_path, csv_bytes):
    (tmp_path / "p.csv").write_bytes(csv_bytes)
    text = (INPUT / "xiong_fig1.toml").read_text().replace('path = "cooling"', 'path = "table"\nfile = "p.csv"')
    deck = tmp_path / "deck.toml"
    deck.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith(("start_C", "end_C", "rate_C"))))
    return deck


def test_cli_rejects_bad_table_with_exit_2(tmp_path):
    """Through the command line, ``run`` stops before computing anything: exit 2, the deck
    and the CSV named, the line and column, no traceback, no output directory."""
    deck = _table_deck(tmp_path, "t_Myr,T_C\n0,1200\n60,600\n30,900\n".encode())
    out = tmp_path / "out"
    proc = run_cli(["run", deck, "--out", out])
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert str(deck) in proc.stderr and str(tmp_path / "p.csv") in proc.stderr
    assert "line 4, column 1 (t_Myr): 30 does not increase" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    _table_deck(tmp_path, "t_Myr,T_C\n0,1200\n60,600\n".encode("utf-16"))
    proc = run_cli(["check", deck])
    assert proc.returncode == EXIT_USAGE and "line 1, column 1: byte 0xff is not UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------ fit-soret files
def _edit_samples(tmp_path, edit):
    f = tmp_path / "samples.csv"
    data = edit(SAMPLES.read_text())
    f.write_bytes(data if isinstance(data, bytes) else data.encode())
    return f


def _header(text):
    return next(ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))


BAD_SAMPLES = {
    "empty": (lambda t: "", DataFileError, ["no header line"]),
    "temperature in K": (lambda t: t.replace(_header(t), _header(t).replace("T_C", "T_K")), DataFileError,
                         ["line 5: required column 'T_C' is missing", "'T_K' looks like a temperature in K"]),
    "missing position column": (lambda t: t.replace(_header(t), _header(t).replace("position,", "", 1)),
                                DataFileError, ["line 6: 16 fields, but the header (line 5) has 15",
                                                "more lines whose number of fields differs"]),
    "non-numeric delta": (lambda t: t.replace("ZM70,A,1518,-2.45", "ZM70,A,1518,-2.4S"), DataFileError,
                          ["line 6 (ZM70 A), column 'd56Fe'", "'-2.4S' is not a number"]),
    "non-UTF-8": (lambda t: t.replace("ZM70,A,", "ZM7\u00b0,A,", 1).encode("latin-1"), UsageError,
                  ["samples.csv line 6, column 4: byte 0xb0 is not UTF-8"]),
}


@pytest.mark.parametrize("case", BAD_SAMPLES)
def test_bad_fit_soret_samples(tmp_path, case):
    """The samples file of ``fit-soret``: each malformation names the file, the line (and the
    column when there is one) and what was expected; exit code 2 either way."""
    edit, error, fragments = BAD_SAMPLES[case]
    f = _edit_samples(tmp_path, edit)
    with pytest.raises(error) as err:
        load_table1(f, EXPERIMENTS)
    assert err.value.exit_code == EXIT_USAGE and str(f) in str(err.value)
    if error is DataFileError:
        assert str(err.value).startswith(f"error: data file {f} has ")
    for s in fragments:
        assert s in str(err.value), (s, str(err.value))


def test_cli_fit_soret_bad_files(tmp_path):
    """Through the command line: exit 2, no traceback, nothing written, for a non-UTF-8
    samples file and for an experiments file with a text cell where a number belongs."""
    f = _edit_samples(tmp_path, BAD_SAMPLES["non-UTF-8"][0])
    out = tmp_path / "fit"
    proc = run_cli(["fit-soret", f, "--out", out, "--no-forward"])
    assert proc.returncode == EXIT_USAGE and "line 6, column 4: byte 0xb0" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    meta = tmp_path / "meta.csv"
    meta.write_text(EXPERIMENTS.read_text().replace("1531,0.0142", "1531,0.0l42"))
    proc = run_cli(["fit-soret", SAMPLES, "--experiments", meta, "--out", out, "--no-forward"])
    assert proc.returncode == EXIT_USAGE and f"data file {meta}" in proc.stderr
    assert "'Omega_Fe': '0.0l42' is not a number" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
