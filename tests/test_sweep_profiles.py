"""A sweep keeps each member's end profiles when asked (``output.sweep_profiles``, issue 19):
the same numbers as a run's last profile, independent of the rank count, kept through stops
(tests/test_study_restart.py sweeps with them on) and merges (tests/test_xarray_outputs.py)."""

import h5py
import numpy as np
import pytest

from isosim.io.journal import PROFILE, UnitJournal
from support import INPUT, needs_mpirun, read_summary, run_cli

DECK = INPUT / "xiong_fig1.toml"
RATES = "temperature.rate_C_per_Myr=1,100,1e4"
COMMON = ["--progress", "0", "--set", "output.sweep_profiles=true", "--set", "output.temperatures_C=[]"]


def _profiles(run_dir):
    with h5py.File(run_dir / "results.h5", "r") as h5:
        return {k: h5[f"profiles/{k}"][()] for k in ("concentration", "delta_permil", "r_um")}


@pytest.fixture(scope="module")
def batch_one_rank(tmp_path_factory):
    out = tmp_path_factory.mktemp("prof") / "b1"
    run_cli(["sweep", DECK, "--vary", RATES, *COMMON, "--out", out], check=0)
    return out


def test_independent_member_is_the_single_run_bitwise(tmp_path):
    run_cli(["sweep", DECK, "--vary", RATES, *COMMON, "--set", 'ensemble.mode="independent"',
             "--out", tmp_path / "sw"], check=0)
    got = _profiles(tmp_path / "sw")
    assert got["concentration"].shape == (3, 2, 2, 100)          # member, isotope, class, cell
    run_cli(["run", DECK, "--progress", "0", "--set", "temperature.rate_C_per_Myr=100",
             "--set", "output.temperatures_C=[]",
             "--out", tmp_path / "run"], check=0)
    with h5py.File(tmp_path / "run" / "results.h5", "r") as h5:
        assert np.array_equal(got["concentration"][1], h5["profiles/concentration"][-1])
        assert np.array_equal(got["delta_permil"][1], h5["profiles/delta_permil"][-1], equal_nan=True)
        assert np.array_equal(got["r_um"][1], h5["profiles/r_um"][()])


def test_batch_agrees_with_independent_to_the_time_tolerance(tmp_path, batch_one_rank):
    # members of a batch share time steps: they agree with single runs to the step-error
    # tolerance (rtol 1e-8 per step; measured 1.3e-7 of the largest value), not bitwise
    run_cli(["sweep", DECK, "--vary", RATES, *COMMON, "--set", 'ensemble.mode="independent"',
             "--out", tmp_path / "ind"], check=0)
    a, b = _profiles(batch_one_rank)["concentration"], _profiles(tmp_path / "ind")["concentration"]
    assert np.abs(a - b).max() <= 1e-6 * np.abs(b).max()
    # the end profile holds the headline: its volume-weighted mean is the phase mean the
    # series reports; check the sweep's reported Delta is unchanged by keeping profiles
    plain = tmp_path / "plain"
    run_cli(["sweep", DECK, "--vary", RATES, "--progress", "0", "--set", "output.temperatures_C=[]",
             "--out", plain], check=0)
    assert [m["Delta_permil"] for m in read_summary(plain)["members"]] == \
        [m["Delta_permil"] for m in read_summary(batch_one_rank)["members"]]
    with h5py.File(plain / "results.h5", "r") as h5:
        assert "profiles" not in h5                                 # off by default


@needs_mpirun
@pytest.mark.parametrize("np_", [2, 3])
def test_batch_shared_over_ranks_gathers_every_class(tmp_path, batch_one_rank, np_):
    # one batch of 3 members on 2 or 3 ranks: its classes are spread over the ranks and
    # gathered for the profiles; the same numbers to round-off in the step-size control
    # (measured 1.1e-10 and 2.1e-10 of the largest value)
    proc = run_cli(["sweep", DECK, "--vary", RATES, *COMMON, "--out", tmp_path / "mp"], np=np_, check=0)
    assert "each batch shared over the ranks" in proc.stdout
    a, b = _profiles(tmp_path / "mp"), _profiles(batch_one_rank)
    assert np.array_equal(a["r_um"], b["r_um"])
    assert np.abs(a["concentration"] - b["concentration"]).max() <= 1e-8 * np.abs(b["concentration"]).max()


def test_journal_keeps_profiles_of_different_shapes(tmp_path):
    rng = np.random.default_rng(1)
    results = []
    for i, (ncls, ntime) in enumerate([(2, 5), (4, 3)]):       # members of a unit may differ in size
        series = {"tau": np.linspace(0, 1, ntime), "T_C": rng.normal(size=ntime)}
        series[PROFILE + "concentration"] = rng.normal(size=(2, ncls, 7))
        series[PROFILE + "r_um"] = rng.normal(size=(ncls, 7))
        results.append((10 + i, {"Delta_permil": float(i)}, series))
    journal = UnitJournal(tmp_path)
    journal.save("g0-000001", results)
    back = journal.load("g0-000001", [10, 11])
    assert [i for i, _, _ in back] == [10, 11]
    for (_, h, s), (_, h2, s2) in zip(results, back):
        assert h == h2 and list(s) == list(s2)
        for k in s:
            assert s2[k].shape == np.shape(s[k]) and np.array_equal(s2[k], s[k]), k
