"""Hostile numbers and sizes (issue 17): strict JSON, --samples 0, floating-point failures as
exit 3, stiffness/cost preflight, memory preflight."""

import json
import math
import re

import numpy as np
import pytest

from support import ROOT, load_raw, run_cli
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



# ---------------------------------------------------------------- 4. stiffness and cost
def test_equilibrium_limit_refused_at_check():
    """E = 0 and D0 = 1 m^2/s in both phases: 1.9e21 diffusion times over the 60 Myr path, above
    2^52 = 4.5e15 (relaxation shorter than double precision resolves on the path): exit 2 at check."""
    sets = ["--set", "phases.opx.E_kJ_mol=0", "--set", "phases.cpx.E_kJ_mol=0",
            "--set", "phases.opx.D0_m2_s=1", "--set", "phases.cpx.D0_m2_s=1"]
    proc = run_cli(["check", "input/xiong_fig1.toml", *sets], cwd=ROOT, timeout=60, check=2)
    assert "Traceback" not in proc.stderr
    assert "every phase re-equilibrates more than 2^52 = 4.5e+15 times over the 60 Myr path" in proc.stderr
    assert "1.9e+21 diffusion times" in proc.stderr
    assert "the result is the equilibrium partitioning at the end of the path (600 °C)" in proc.stderr
    # one phase at its normal diffusivity keeps the deck meaningful (cpx closes): not refused
    run_cli(["check", "--quiet", "input/xiong_fig1.toml", *sets[:6]], cwd=ROOT, timeout=60, check=0)


def test_timescales_of_shipped_and_hostile_decks():
    from isosim.deck import load_deck
    from isosim.physics.timescales import SLOW_LIMIT, grain_timescales, slow_warning
    ts = grain_timescales(load_deck(str(ROOT / "input/xiong_fig1.toml"), []))
    # D_cpx(1200 °C) = 1.99e-8 exp(-318800 / (8.314 * 1473.15)) = 9.9e-20 m^2/s; R = 1 mm; 60 Myr
    assert ts["phases"]["cpx"]["N_start"] == pytest.approx(1.99e-8 * np.exp(-318800 / (8.314462618 * 1473.15))
                                                           / 1e-6 * 60 * 3.15576e13, rel=1e-9)
    assert 100 < ts["phases"]["cpx"]["N_start"] < 300 and ts["phases"]["cpx"]["N_end"] < 1e-5
    assert slow_warning(load_deck(str(ROOT / "input/xiong_fig1.toml"), [])) == ""
    # the shipped deck with the most diffusion times (small grains) stays well below the warning
    worst = grain_timescales(load_deck(str(ROOT / "input/scaling_grain_population.toml"), []))
    assert max(p["N_hot"] for p in worst["phases"].values()) < SLOW_LIMIT / 1e4


def test_slow_run_says_so_in_its_first_line(tmp_path):
    """E = 0 in both phases (3.8e13 diffusion times in cpx) used to crawl in silence (29,400 steps
    reached 0.014 of the path in 120 s). Now its first line, within seconds, says why; the
    time-left estimate is '?' until a rate was measured over >= 10 steps and >= 2 s."""
    import signal
    import subprocess
    import time
    from support import CLEAN_ENV, isosim_cmd
    out = tmp_path / "slow"
    cmd = isosim_cmd(["run", "input/xiong_fig1.toml", "--out", out, "--progress", "0.5",
                      "--set", "phases.opx.E_kJ_mol=0", "--set", "phases.cpx.E_kJ_mol=0"])
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=CLEAN_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        first = proc.stdout.readline()
        t_first = time.monotonic() - t0
        while len([x for x in lines if "% |" in x]) < 3 and time.monotonic() - t0 < 60:
            lines.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert t_first < 10, f"first line after {t_first:.1f} s"
    assert first.startswith("[isosim] warning: this run will be far slower than usual: cpx"), first
    assert "re-equilibrates 6.3e+11 times per Myr at 1200 °C" in first and "3.8e+13 diffusion times" in first
    assert "the result is the equilibrium partitioning at 600 °C" in first
    progress = [x for x in lines if "% |" in x]
    assert progress[0].rstrip().endswith("left ~?"), progress[0]     # 0.5 s: nothing measured yet
    assert proc.returncode == 75                                   # SIGTERM: checkpointed


# ---------------------------------------------------------------- 5. memory preflight
def test_memory_preflight_refuses_without_allocating(tmp_path, monkeypatch):
    """capsule.cells = 1e7 (6e7 unknowns, ~29 GB by the preflight's 480 bytes per unknown) under
    ulimit -v 2 GB: refused with exit 2 and the numbers, in well under a second of work; before,
    cells = 1e8 ran 32 s to 7.1 GB and died with a numpy MemoryError traceback (exit 1). If
    anything large were allocated, the address-space limit would make it a MemoryError."""
    import subprocess
    import sys
    import time
    from support import CLEAN_ENV
    out = tmp_path / "big"
    argv = [sys.executable, "-m", "isosim", "run", "input/huang2010_zm70.toml", "--out", str(out),
            "--set", "capsule.cells=10000000"]
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "-c", 'ulimit -v 2000000; exec "$@"', "bash", *argv], cwd=ROOT, env=CLEAN_ENV,
                          capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert "the run needs ~29 GB per rank (60,000,000 unknowns on 1 rank(s)" in proc.stderr
    assert "address-space limit (ulimit -v) of 2.05 GB" in proc.stderr and "--no-memory-check" in proc.stderr
    assert not out.exists() and wall < 30
    # the machine's own memory: a need above MemAvailable/cgroup is refused the same way
    from isosim.deck import load_deck
    from isosim.preflight import memory_available, memory_need
    limits, _ = memory_available()
    need = memory_need(load_deck(str(ROOT / "input/huang2010_zm70.toml"), ["capsule.cells=99999999"]))[0]
    assert need > 2.8e11
    if limits and min(limits)[0] < need:
        proc = run_cli(["run", "input/huang2010_zm70.toml", "--out", out, "--set", "capsule.cells=99999999"],
                       cwd=ROOT, timeout=60, check=2)
        assert "more than the" in proc.stderr and "available (" in proc.stderr and "Traceback" not in proc.stderr
    # the override (--no-memory-check, ISOSIM_NO_MEMORY_CHECK=1) skips the check; the shipped deck passes it
    from isosim.preflight import MemoryRefused, check_memory
    huge = load_deck(str(ROOT / "input/huang2010_zm70.toml"), ["capsule.cells=99999999"])
    import isosim.preflight as pf
    monkeypatch.setattr(pf, "memory_available", lambda: ([(8 << 30, "a test's 8 GB")], None))
    with pytest.raises(MemoryRefused, match=r"needs ~288 GB on this node .* more than the 8.59 GB available "
                                            r"\(a test's 8 GB\)"):
        check_memory(huge)
    monkeypatch.setenv("ISOSIM_NO_MEMORY_CHECK", "1")
    check_memory(huge)
    monkeypatch.delenv("ISOSIM_NO_MEMORY_CHECK")
    check_memory(huge, skip=True)
    check_memory(load_deck(str(ROOT / "input/huang2010_zm70.toml"), []))
