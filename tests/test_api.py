"""The Python API (issue 19): isosim.run and isosim.sweep give what the command gives, bitwise;
a bad deck raises isosim.DeckError with the command's message; results open as xarray
datasets; the worked example runs in a plain interpreter and under mpirun -n 2."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from support import INPUT, MPIRUN, ROOT, child_env, needs_mpirun, read_summary, run_cli

EXAMPLE = ROOT / "docs" / "examples" / "api_example.py"
API_RUN = """
import sys, isosim
r = isosim.run(sys.argv[1], set={"temperature.rate_C_per_Myr": 100.0, "grid.cells": 40}, out=sys.argv[2])
s = isosim.sweep(sys.argv[1], vary={"temperature.rate_C_per_Myr": [1.0, 1e3, 1e7]}, set={"grid.cells": 40},
                 out=sys.argv[3])
assert r.kind == "run" and s.kind == "sweep" and s.summary["n_members"] == 3
print("OK", r.path, s.path)
"""


def _datasets(path):
    found = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda n, o: found.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return found


def _assert_same(a, b):
    sa, sb = read_summary(a), read_summary(b)
    for key in ("results", "members", "n_members", "sweep_digest", "petsc_options", "deck"):
        assert sa.get(key) == sb.get(key), key
    da, db = _datasets(a / "results.h5"), _datasets(b / "results.h5")
    assert da.keys() == db.keys()
    for k in da:
        assert np.array_equal(da[k], db[k], equal_nan=True) if da[k].dtype.kind in "fiu" else \
            np.array_equal(da[k], db[k]), k


@pytest.mark.parametrize("np_", [None, pytest.param(2, marks=needs_mpirun)])
def test_api_equals_the_command_bitwise(tmp_path, np_):
    deck = INPUT / "xiong_fig1.toml"
    cmd = [sys.executable, "-c", API_RUN, str(deck), str(tmp_path / "api-run"), str(tmp_path / "api-sweep")]
    if np_:
        cmd = [MPIRUN, "-n", str(np_), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("OK") == (np_ or 1), "every rank gets its Results"
    run_cli(["run", deck, "--out", tmp_path / "cli-run", "--set", "temperature.rate_C_per_Myr=100.0",
             "--set", "grid.cells=40", "--progress", "0"], np=np_, check=0)
    run_cli(["sweep", deck, "--out", tmp_path / "cli-sweep", "--vary", "temperature.rate_C_per_Myr=1.0,1e3,1e7",
             "--set", "grid.cells=40", "--progress", "0"], np=np_, check=0)
    _assert_same(tmp_path / "api-run", tmp_path / "cli-run")
    _assert_same(tmp_path / "api-sweep", tmp_path / "cli-sweep")


def test_bad_deck_raises_deck_error_with_the_commands_message(tmp_path):
    code = ("import sys, isosim\n"
            "try:\n"
            "    isosim.run(sys.argv[1], set={'phases.opx.beta': 0.9, 'grid.cells': -3}, out=sys.argv[2])\n"
            "except isosim.DeckError as e:\n"
            "    print(e)\n")
    deck = INPUT / "xiong_fig1.toml"
    api = subprocess.run([sys.executable, "-c", code, str(deck), str(tmp_path / "a")], capture_output=True,
                         text=True, env=child_env(), check=True)
    cli = run_cli(["run", deck, "--out", tmp_path / "c", "--set", "phases.opx.beta=0.9", "--set", "grid.cells=-3"])
    assert cli.returncode == 2
    assert api.stdout.strip() == cli.stderr.strip()
    assert "phases.opx.beta = 0.9" in api.stdout and "grid.cells" in api.stdout
    assert not (tmp_path / "a").exists(), "nothing is written for a bad deck"


def test_decks_as_text_and_dicts_and_open_results(tmp_path):
    code = f"""
import isosim, tomllib
raw = tomllib.loads(open({str(INPUT / 'xiong_fig1.toml')!r}).read())
raw["grid"]["cells"] = 30
a = isosim.run(raw, out={str(tmp_path / 'dict')!r})
b = isosim.run(open({str(INPUT / 'xiong_fig1.toml')!r}).read(), set=["grid.cells=30"], out={str(tmp_path / 'text')!r})
assert a.summary["results"] == b.summary["results"]
r = isosim.open_results({str(tmp_path / 'dict')!r})
ds = r.dataset("series")
assert "member" in ds.dims and "time" in ds.dims, ds.dims
assert ds["Delta_permil"].attrs["units"] == "permil"
print("OK")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(),
                          timeout=600, cwd=INPUT.parent)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr


@pytest.mark.parametrize("np_", [None, pytest.param(2, marks=needs_mpirun)])
def test_worked_example_runs(tmp_path, np_):
    cmd = [sys.executable, str(EXAMPLE)]
    if np_:
        cmd = [MPIRUN, "-n", str(np_), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "final Delta = 1.53" in proc.stdout
    assert "expected a finite number >= 0 and <= 0.5" in proc.stdout
    assert "Traceback" not in proc.stderr
