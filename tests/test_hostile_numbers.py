"""Hostile numbers and sizes (issue 17): strict JSON, --samples 0, floating-point failures as
exit 3, stiffness/cost preflight, memory preflight."""

import json
import math
import re

import numpy as np
import pytest

from conftest import ROOT, load_raw, run_cli
from isosim.io import jsonfile


# ---------------------------------------------------------------- 1. strict JSON
def test_dumps_writes_null_and_reasons():
    obj = {"a": 1.0, "b": [float("nan"), 2.0, float("inf")], "c": {"x/y": -math.inf, "n": np.float64("nan")},
           "d": np.array([1.0, np.inf]), "e": np.int64(3), "f": None}
    text = jsonfile.dumps(obj, indent=1)
    back = jsonfile.loads_strict(text)
    assert back["b"] == [None, 2.0, None]
    assert back["c"] == {"x/y": None, "n": None}
    assert back["d"] == [1.0, None]
    assert back["e"] == 3 and back["f"] is None
    assert back["non_finite"] == {"/b/0": "NaN", "/b/2": "inf", "/c/x~1y": "-inf", "/c/n": "NaN", "/d/1": "inf"}
    # the input is not modified, and a clean object gains no key
    assert math.isnan(obj["b"][0])
    assert "non_finite" not in json.loads(jsonfile.dumps({"a": [1.0, 2.5]}))
    # what the strict parser refuses
    with pytest.raises(ValueError, match="NaN"):
        jsonfile.loads_strict(json.dumps({"a": float("nan")}))
    # a top-level list has no room for reasons, but never holds a bare NaN
    assert jsonfile.dumps([float("nan"), 1.0]) == "[null, 1.0]"


def test_capsule_with_D_1e_30_writes_null_with_reason(tmp_path):
    """D = 1e-30 m^2/s: nothing fractionates in 46 h, the Soret fit's Omega is 0 and T0 = 0/0.
    Before issue 17 summary.json held a bare NaN."""
    out = tmp_path / "caps"
    proc = run_cli(["run", "input/huang2010_zm70.toml", "--out", out, "--set", "elements.Fe.D_m2_s=1e-30",
                    "--progress", "0"], cwd=ROOT, check=0)
    text = (out / "summary.json").read_text()
    assert not re.search(r"[:\[,]\s*-?(NaN|Infinity)", text)      # no bare constant
    s = jsonfile.loads_strict(text)
    assert s["results"]["T0_C"]["Fe"] is None
    assert s["non_finite"]["/results/T0_C/Fe"] == "NaN"
    assert s["non_finite"]["/members/0/T0_C/Fe"] == "NaN"
    # the other element is unaffected: its T0 is the mean temperature of the column, 1430 degC (+-1)
    assert abs(s["results"]["T0_C"]["Mg"] - 1430.0) < 1.0
    assert "T0 = nan" in proc.stdout


# ---------------------------------------------------------------- 2. --samples 0
def test_samples_zero_means_no_draws(tmp_path):
    """--samples 0 is zero draws (it used to mean the deck's 10,000): only the --vary product
    runs, and with nothing to vary it is the 'nothing to sweep' error (exit 2, nothing run)."""
    deck = ROOT / "input" / "spera2004_montecarlo.toml"
    assert load_raw("spera2004_montecarlo.toml")["sweep"]["samples"] == 10000
    proc = run_cli(["sweep", deck, "--samples", "0", "--out", tmp_path / "none"], timeout=60, check=2)
    assert "nothing to sweep" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "none").exists()
    out = tmp_path / "two"
    proc = run_cli(["sweep", deck, "--samples", "0", "--vary", "assimilation.chi=0,0.5", "--out", out,
                    "--progress", "0"], timeout=120, check=0)
    s = jsonfile.loads_strict((out / "summary.json").read_text())
    assert s["n_members"] == 2
    assert [m["params"]["assimilation.chi"] for m in s["members"]] == [0, 0.5]
    assert "samples" not in s
    assert "2 members" in proc.stdout
    help_text = run_cli(["sweep", "--help"], check=0).stdout
    assert "0: no draws" in " ".join(help_text.split())


# ---------------------------------------------------------------- 3. floating-point failures
FPE_SET = ["--set", "phases.opx.E_kJ_mol=0", "--set", "phases.cpx.E_kJ_mol=0", "--set", "phases.opx.D0_m2_s=1"]


def test_floating_point_exception_in_petsc_is_exit_3_with_checkpoint(tmp_path):
    """E = 0 in both phases and D0 = 1 m^2/s in opx: opx relaxes ~1e21 times over the path, the
    Jacobian is singular in floating point at the first step and PETSc's error norm raises
    error 72. It used to be a traceback (exit 1), numpy RuntimeWarnings and no checkpoint."""
    import h5py
    out = tmp_path / "fpe"
    proc = run_cli(["run", "input/xiong_fig1.toml", "--out", out, "--progress", "0", *FPE_SET], cwd=ROOT,
                   timeout=120, check=3)
    err = proc.stderr
    assert "Traceback" not in err and "RuntimeWarning" not in err and "error code 72" not in err
    assert "floating-point exception in PETSc's TSErrorWeightedNorm" in err
    assert "the Jacobian at the last good state" in err and "singular in floating point" in err
    assert "at step 0 (t = 0 of 60 Myr, T = 1200.00 °C)" in err
    assert f"was checkpointed; after changing the solver settings, continue with: isosim restart {out}" in err
    assert not (out / "summary.json").exists()
    with h5py.File(out / "checkpoint.h5", "r") as f:
        meta = json.loads(f.attrs["meta"])
    assert meta["step"] == 0 and meta["time"] == 0.0

