"""Inputs in the field's own conventions (issue 19): equilibrium fractionation as the per-mil
A of Delta = A x 10^6/T^2, the equilibrium Delta that check prints, and warnings for values
minerals do not have (a unit mistake, most often)."""

import numpy as np

from support import INPUT, read_summary, run_cli

DECK = INPUT / "xiong_fig1.toml"


def test_permil_input_gives_the_ln_k_run(tmp_path):
    """The shipped deck's lnK_offset_K2 = [0, 646] is Delta_eq_A = [0, 0.646]."""
    a = run_cli(["run", DECK, "--out", tmp_path / "lnk", "--progress", "0"], check=0)
    b = run_cli(["run", DECK, "--out", tmp_path / "permil", "--progress", "0", "--set", "phases.opx.lnK_offset_K2=[]",
                 "--set", "phases.opx.Delta_eq_A=[0, 0.646]"], check=0)
    assert "warning" not in a.stderr + b.stderr
    ra, rb = read_summary(tmp_path / "lnk")["results"], read_summary(tmp_path / "permil")["results"]
    for key in ("Delta_permil", "T_apparent_C"):
        assert np.isclose(ra[key], rb[key], rtol=1e-12, atol=0), (key, ra[key], rb[key])


def test_both_forms_must_agree(tmp_path):
    p = run_cli(["check", DECK, "--set", "phases.opx.Delta_eq_A=[0, 0.7]"])
    assert p.returncode == 2 and "are both given and differ" in p.stderr and "give one of them" in p.stderr


def test_check_prints_the_equilibrium_delta():
    p = run_cli(["check", DECK], check=0)
    assert "# equilibrium Delta(44Ca/40Ca) opx-cpx: 0.2977 permil at 1200 degC, 0.8473 permil at 600 degC" \
        in p.stdout


def test_a_value_1000_times_too_large_draws_a_warning(tmp_path):
    p = run_cli(["check", DECK, "--quiet", "--set", "phases.opx.lnK_offset_K2=[]",
                 "--set", "phases.opx.Delta_eq_A=[0, 646]"], check=0)
    assert "warning: phases.opx: the equilibrium fractionation is 561 permil at 800 degC" in p.stderr
    assert "0.646, not 646?" in p.stderr
    run = run_cli(["run", DECK, "--out", tmp_path / "r", "--progress", "0", "--set", "phases.opx.radius_mm=500",
                   "--set", "phases.cpx.D0_m2_s=3.0e-4"], check=0)
    assert "a grain radius of 500 mm" in run.stderr and "D0_m2_s = 0.0003" not in run.stderr
    cm2 = run_cli(["check", DECK, "--quiet", "--set", "phases.cpx.D0_m2_s=1e-17"], check=0)
    assert "solid-state diffusion has D0 between 1e-16 and 1 m^2/s" in cm2.stderr
