"""The chamber model through the command line: ensembles over ranks, sweeps equal to single
runs, restart after a failure, bad decks rejected before anything runs."""


import h5py
import numpy as np
import pytest

from support import INPUT, needs_mpirun, read_summary, run_cli

DECK = INPUT / "spera2004_eraxfc.toml"
Q = ["--progress", "0"]
VARY = ["--vary", "assimilation.chi=0,0.3,0.7,1", "--vary", "recharge.mass=0.1,0.5"]
RESULTS = ("Mm", "Mct", "Men", "Ta_C", "chi_Ma_star", "Cm_ppm.Sr", "Cm_ppm.Ni", "eps_m.87Sr_86Sr",
           "eps_m.143Nd_144Nd", "delta_m.d18O")


def _members(d):
    with h5py.File(d / "results.h5") as h5:
        return {k: h5["members"][k][()] for k in RESULTS}


@pytest.fixture(scope="module")
def sweep1(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "np1"
    run_cli(["sweep", DECK, *VARY, "--out", out, *Q], check=0)
    return out


@needs_mpirun
@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_sweep_independent_of_rank_count(sweep1, tmp_path, n):
    out = tmp_path / f"np{n}"
    run_cli(["sweep", DECK, *VARY, "--out", out, *Q], np=n, check=0)
    a, b = _members(sweep1), _members(out)
    worst = max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), 1e-300))) for k in RESULTS)
    print(f"\nchamber sweep, 1 vs {n} ranks: max relative difference {worst:.1e}")
    assert worst < 1e-12


def test_sweep_members_equal_single_runs(sweep1, tmp_path):
    """Members share steps in a batch (the worst member sets them), so they agree with single
    runs to the time tolerance (solver.rtol = 1e-9), not bitwise."""
    summary = read_summary(sweep1)
    worst = 0.0
    for i in (0, 5, 7):
        p = summary["members"][i]["params"]
        out = tmp_path / f"m{i}"
        run_cli(["run", DECK, "--out", out, *Q, "--set", f"assimilation.chi={p['assimilation.chi']}",
                 "--set", f"recharge.mass={p['recharge.mass']}"], check=0)
        single = read_summary(out)["results"]
        flat = {**{f"Cm_ppm.{e}": v for e, v in single["Cm_ppm"].items()}, "Mm": single["Mm"],
                "eps": single["eps_m"]["87Sr/86Sr"]}
        member = summary["members"][i]
        ens = {**{f"Cm_ppm.{e}": v for e, v in member["Cm_ppm"].items()}, "Mm": member["Mm"],
               "eps": member["eps_m"]["87Sr/86Sr"]}
        worst = max(worst, max(abs(ens[k] / flat[k] - 1) for k in flat))
    print(f"\nchamber sweep member vs single run: {worst:.1e}")
    assert worst < 1e-8


def test_monte_carlo_deck_runs(tmp_path):
    out = tmp_path / "mc"
    proc = run_cli(["sweep", INPUT / "spera2004_montecarlo.toml", "--samples", "64", "--out", out, *Q], check=0)
    assert "64 members" in proc.stdout
    s = read_summary(out)
    assert s["n_members"] == 64 and len(s["varied"]) == 5
    assert max(abs(m["Ta_minus_Teq_K"]) for m in s["members"]) < 0.01
    assert max(m["element_balance"] for m in s["members"]) < 1e-8


def test_failure_checkpoint_then_bitwise_restart(tmp_path):
    ref = tmp_path / "ref"
    run_cli(["run", DECK, "--out", ref, *Q], check=0)
    out = tmp_path / "run"
    proc = run_cli(["run", DECK, "--out", out, *Q, "-ts_max_steps", "30"])
    assert proc.returncode == 3 and "Traceback" not in proc.stderr and "T_m =" in proc.stderr
    assert (out / "checkpoint.h5").exists() and not (out / "summary.json").exists()
    run_cli(["restart", out, *Q, "-ts_max_steps", "1000000"], check=0)
    with h5py.File(ref / "results.h5") as a, h5py.File(out / "results.h5") as b:
        for k in ("state", "Cm_ppm", "eps_m", "Ta_C"):
            assert np.array_equal(a["path"][k][()], b["path"][k][()]), k


@needs_mpirun
@pytest.mark.mpi
def test_single_run_on_two_ranks(tmp_path):
    """One member on two ranks: rank 1 owns no rows and must still take part."""
    a, b = tmp_path / "a", tmp_path / "b"
    run_cli(["run", DECK, "--out", a, *Q], check=0)
    run_cli(["run", DECK, "--out", b, *Q], np=2, check=0)
    ra = read_summary(a)["results"]
    rb = read_summary(b)["results"]
    assert ra["Cm_ppm"] == rb["Cm_ppm"] and ra["eps_m"] == rb["eps_m"]


BAD = [
    ("eruption limit", ["--set", "eruption.mass=0.45"], "expected below 0.4"),
    ("T_eq above T_m0", ["--set", "thermal.T_eq_C=1400.0"], "expected below the initial melt temperature"),
    ("T_eq below solidus", ["--set", "thermal.T_eq_C=900.0"], "expected above T_solidus_C"),
    ("ratio element", ["--set", "ratios.\"87Sr/86Sr\".element=\"Rb\""], "expected one of ['Nd', 'Ni', 'Sr', 'Th']"),
    ("chi", ["--set", "assimilation.chi=1.5"], "assimilation.chi = 1.5: expected a finite number >= 0 and <= 1"),
    ("pulse lists", ["--set", "recharge.form=\"pulses\"", "--set", "recharge.pulse_mass=[0.3]"],
     "recharge.pulse_T_C has 0 entries: expected one per pulse (1"),
    ("pulse off path", ["--set", "recharge.form=\"pulses\"", "--set", "recharge.pulse_mass=[0.3]",
                        "--set", "recharge.pulse_T_C=[1000.0]", "--set", "recharge.pulse_steepness_per_K=[0.1]",
                        "--set", "recharge.pulse_exponent=[1.0]"], "expected temperatures on the path"),
    ("linear with a", ["--set", "productivity.magma.form=\"linear\"", "--set", "productivity.magma.a=3.0"],
     "a and b are not used with form = 'linear'"),
    ("unknown key", ["--set", "thermal.T_liquidus=1000.0"], "thermal.T_liquidus: unknown key"),
]


@pytest.mark.parametrize("what,args,message", BAD, ids=[b[0] for b in BAD])
def test_bad_chamber_decks(tmp_path, what, args, message):
    for cmd in (["check", DECK, *args], ["run", DECK, "--out", tmp_path / "x", *args]):
        proc = run_cli(cmd)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and str(DECK) in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_eruption_beyond_the_limit_runs_when_forced(tmp_path):
    out = tmp_path / "forced"
    run_cli(["run", DECK, "--out", out, *Q, "--set", "eruption.mass=0.5", "--set", "eruption.force=true"], check=0)
    r = read_summary(out)["results"]
    assert r["Me"] == pytest.approx(0.5, abs=1e-12) and abs(r["Ta_minus_Teq_K"]) < 0.01
