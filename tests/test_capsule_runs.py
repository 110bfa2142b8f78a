"""The capsule model through the command line: 1, 2 and 3 ranks agree, checkpoints restart to
the same result, the paper's time-series question, bad decks rejected."""


import h5py
import numpy as np
import pytest

from support import INPUT, needs_mpirun, read_summary, run_cli

DECK = INPUT / "huang2010_timeseries.toml"
FAST = ["--set", "capsule.cells=120", "--progress", "0"]
KEYS = ("series/inventory", "series/steady_fraction", "series/Omega_permil_per_C_per_amu",
        "profiles/concentration", "profiles/delta_permil")


def _max_rel(a_dir, b_dir):
    worst = 0.0
    with h5py.File(a_dir / "results.h5") as a, h5py.File(b_dir / "results.h5") as b:
        for k in KEYS:
            x, y = a[k][()], b[k][()]
            assert x.shape == y.shape, k
            worst = max(worst, float(np.max(np.abs(x - y)) / max(1.0, np.max(np.abs(x)))))
    return worst


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("capsule") / "np1"
    run_cli(["run", DECK, "--out", d, *FAST], check=0)
    return d


@needs_mpirun
@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_ranks_agree(reference, tmp_path, n):
    out = tmp_path / f"np{n}"
    proc = run_cli(["run", DECK, "--out", out, *FAST], np=n, check=0)
    assert f"on {n} rank(s)" in proc.stdout
    worst = _max_rel(reference, out)
    print(f"\ncapsule, 1 vs {n} ranks: max relative difference {worst:.1e}")
    assert worst < 1e-10


def test_paper_time_series(reference):
    """Huang et al. (2010) Fig. 1: isotopes at steady state within 46 h, MgO ~60 % there
    (our L2 measure, with the deck's assumed D_MgO), and > 90 % after 168 h."""
    res = read_summary(reference)["results"]
    at46, at168 = res["steady_fraction"]["46 h"], res["steady_fraction"]["168 h"]
    for k in ("24Mg", "26Mg", "delta 26Mg/24Mg", "delta 25Mg/24Mg"):
        assert at46[k] > 0.99, (k, at46[k])
    assert 0.5 < at46["MgO"] < 0.7
    assert at168["MgO"] > 0.9
    assert abs(res["Omega_permil_per_C_per_amu"]["Mg"] / 0.0307 - 1) < 0.01
    assert res["inventory_drift"] < 1e-12


def test_failure_checkpoint_then_bitwise_restart(reference, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(["run", DECK, "--out", out, *FAST, "-ts_max_steps", "40"])
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert (out / "checkpoint.h5").exists() and not (out / "summary.json").exists()
    run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"], check=0)
    assert _max_rel(reference, out) == 0.0


@needs_mpirun
@pytest.mark.mpi
def test_two_rank_checkpoint_restarts_on_one(reference, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(["run", DECK, "--out", out, *FAST, "-ts_max_steps", "40"], np=2)
    assert proc.returncode == 3
    run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"], check=0)
    assert _max_rel(reference, out) < 1e-10


BAD = [
    ("elements.Mg.D_m2_s", ["--set", "elements.Mg.D0_m2_s=1e-6"], "give either D_m2_s, or both"),
    ("time.output_h", ["--set", "time.output_h=[500.0]"], "after time.duration_h"),
    ("temperature.hot_C", ["--set", "temperature.hot_C=1000.0"], "expected >= cold_C"),
    ("Omega and dS_T", ["--set", "elements.Mg.dS_T_per_C_per_amu=1e-5"], "disagree"),
    ("capsule.cells", ["--set", "capsule.cells=2"], "capsule.cells = 2: expected an integer >= 4"),
    ("abundances", ["--set", "elements.Mg.abundances=[0.5, 0.5]"], "expected one per isotope (3)"),
    ("temperature.profile", ["--set", "temperature.profile=\"table\""], "temperature.file: missing"),
    ("unknown key", ["--set", "components.MgO.S_T=1"], "components.MgO.S_T: unknown key"),
]


@pytest.mark.parametrize("what,args,message", BAD, ids=[b[0] for b in BAD])
def test_bad_capsule_decks(tmp_path, what, args, message):
    for cmd in (["check", DECK, *args], ["run", DECK, "--out", tmp_path / "x", *args]):
        proc = run_cli(cmd)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and str(DECK) in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_table_profile_file(tmp_path):
    deck = tmp_path / "d.toml"
    text = DECK.read_text().replace('profile = "parabolic"', 'profile = "table"\nfile = "T.csv"')
    # the end temperatures belong to the analytic profiles (a table profile refuses them)
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("hot_C", "cold_C")))
    deck.write_text(text)
    (tmp_path / "T.csv").write_text("x_mm,T_C\n0,1560\n2,1450\n4,1215\n")
    run_cli(["run", deck, "--out", tmp_path / "ok", *FAST, "--set", "time.duration_h=1.0",
             "--set", "time.output_h=[]"], check=0)
    (tmp_path / "T.csv").write_text("x_mm,T_C\n0,1560\n2,1450\n1,1215\n")
    proc = run_cli(["check", deck])
    assert proc.returncode == 2 and "line 4" in proc.stderr and "does not increase" in proc.stderr
    (tmp_path / "T.csv").write_text("x,T\n0,1560\n4,1215\n")
    proc = run_cli(["check", deck])
    assert proc.returncode == 2 and "expected 'x_mm,T_C'" in proc.stderr


def test_plot_capsule_run(reference, tmp_path):
    pytest.importorskip("matplotlib")
    proc = run_cli(["plot", reference, "--out", tmp_path], check=0)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["concentration_vs_x.png", "delta_vs_T.png", "delta_vs_x.png",
                     "steady_state_approach.png"], proc.stdout
    assert all((tmp_path / n).stat().st_size > 10_000 for n in names)


def test_sweep_of_a_capsule_deck_is_refused_clearly():
    proc = run_cli(["sweep", DECK, "--vary", "components.MgO.D_m2_s=1e-12,1e-11"])
    assert proc.returncode == 2 and "not available for capsule decks" in proc.stderr
    assert "Traceback" not in proc.stderr
