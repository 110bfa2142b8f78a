"""``isosim sweep --slice K/N`` and ``isosim merge``: a sweep cut into the slices of a job array
and merged back is the sweep run at once; wrong sets of slices are refused (exit 2).

Grain sweep in ``independent`` mode (one TS per member): the merge is bitwise the direct sweep,
even with one slice run on 2 ranks. Chamber Monte Carlo in the default ``batch`` mode: a slice
forms its batches from its own members, and members of a batch share time steps, so results
agree to the time tolerance only (see ``test_chamber_batch_slices_merge_to_time_tolerance``).
"""

import json
import shutil

import pytest

from support import INPUT, MPIRUN, read_summary, run_cli
from sweep_compare import assert_same_sweep

from isosim.studies.slices import slice_bounds

GRAIN = [INPUT / "xiong_fig1.toml", "--progress", "0", "--set", "grid.cells=20", "--set",
         "output.temperatures_C=[]", "--set", 'ensemble.mode="independent"',
         "--vary", "temperature.rate_C_per_Myr=1,1e3,1e7", "--vary", "phases.opx.beta=0.02,0.2"]
CHAMBER = [INPUT / "spera2004_montecarlo.toml", "--progress", "0", "--samples", "7", "--seed", "3"]


def _sliced(tmp, args, n=3, np_of=lambda k: None):
    """The direct sweep and slices 1..n of it, in ``tmp``; returns (direct, [slice dirs])."""
    run_cli(["sweep", *args, "--out", tmp / "direct"], check=0)
    dirs = []
    for k in range(1, n + 1):
        d = tmp / f"slice-{k}"
        run_cli(["sweep", *args, "--slice", f"{k}/{n}", "--out", d], np=np_of(k), check=0)
        dirs.append(d)
    return tmp / "direct", dirs


@pytest.fixture(scope="module")
def grain(tmp_path_factory):
    # slice 2 on two ranks when mpirun exists: members keep their global index whatever the ranks
    return _sliced(tmp_path_factory.mktemp("grain"), GRAIN, np_of=lambda k: 2 if k == 2 and MPIRUN else None)


@pytest.fixture(scope="module")
def chamber(tmp_path_factory):
    return _sliced(tmp_path_factory.mktemp("chamber"), CHAMBER)


@pytest.mark.parametrize("total, n", [(1, 1), (2, 1), (6, 3), (7, 3), (8, 3), (64, 64), (65, 64), (10_000, 64)])
def test_slices_partition_the_members(total, n):
    """Contiguous, in order, covering every member once, sizes differing by at most one."""
    bounds = [slice_bounds(k, n, total) for k in range(1, n + 1)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_grain_slices_merge_bitwise(grain, tmp_path):
    direct, dirs = grain
    s2 = read_summary(dirs[1])
    # 6 members in 3 slices: slice 2 holds members 2 and 3 with their global index and parameters
    assert s2["slice"] == {"index": 2, "count": 3, "first_member": 2, "stop_member": 4, "total_members": 6}
    full = read_summary(direct)
    assert [m["member_index"] for m in s2["members"]] == [2, 3]
    assert [m["params"] for m in s2["members"]] == [m["params"] for m in full["members"][2:4]]
    out = tmp_path / "merged"
    p = run_cli(["merge", out, *reversed(dirs)], check=0)      # any order on the command line
    assert "merged 3 slices, 6 members" in p.stdout
    assert assert_same_sweep(out, direct) == 0.0
    merged = read_summary(out)
    assert [m["slice"] for m in merged["merged_from"]] == [1, 2, 3]


def test_chamber_batch_slices_merge_to_time_tolerance(chamber, tmp_path):
    """Batch mode: a slice's batch differs from the direct sweep's, so members take other
    shared steps. The deck's RK5(4) at rtol 1e-9 bounds the difference by ~1e-9 of each
    quantity's scale (we allow 1e-8), plus 1e-6 absolute for quantities that are differences
    of ~1100 K temperatures (Ta - Teq: 1e-9 x 1100 K) or balance residuals (~1e-10). Member
    order, parameters (bitwise) and everything else are the direct sweep's."""
    direct, dirs = chamber
    out = tmp_path / "merged"
    run_cli(["merge", out, "--from", str(direct.parent / "slice-*")], check=0)
    used = assert_same_sweep(out, direct, rtol=1e-8, atol=1e-6)
    print(f"\nchamber batch slices vs direct: largest difference = {used:.2f} of the tolerance")
    assert used < 1.0
    with pytest.raises(AssertionError):       # and the test can tell: they are not bitwise
        assert_same_sweep(out, direct)


def _refused(args, *phrases):
    p = run_cli(args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    for phrase in phrases:
        assert phrase in p.stderr, p.stderr
    return p


def test_merge_refuses_wrong_slices(grain, chamber, tmp_path):
    gdirs, cdirs = grain[1], chamber[1]
    out = tmp_path / "out"
    _refused(["merge", out, gdirs[0], gdirs[2]], "slice(s) 2 of 3 missing")
    twin = tmp_path / "twin"
    shutil.copytree(gdirs[1], twin)
    _refused(["merge", out, *gdirs, twin], "slice 2/3 given twice")
    _refused(["merge", out, gdirs[0], cdirs[1], gdirs[2]], "slices of different sweeps")
    _refused(["merge", out, gdirs[0], grain[0]], "is not a slice of a sweep")
    _refused(["merge", out], "merge needs the slice directories")
    _refused(["merge", out, "--from", str(tmp_path / "nothing-*")], "matches nothing")
    _refused(["merge", gdirs[0], *gdirs], "is one of the slices")
    if MPIRUN:                                 # two copies would race for OUT
        p = run_cli(["merge", out, *gdirs], np=2)
        assert p.returncode == 2 and "isosim merge is serial" in p.stderr, p.stderr
    assert not out.exists()
    # another seed is another sweep, even with the same deck and slice count
    other = tmp_path / "seed4"
    run_cli(["sweep", *CHAMBER, "--seed", "4", "--slice", "2/3", "--out", other], check=0)
    _refused(["merge", out, cdirs[0], other, cdirs[2]], "slices of different sweeps")
    # a finished merge is not overwritten without --force
    run_cli(["merge", out, *gdirs], check=0)
    _refused(["merge", out, *gdirs], "already holds a run", "--force")
    run_cli(["merge", out, *gdirs, "--force"], check=0)
    assert assert_same_sweep(out, grain[0]) == 0.0


@pytest.mark.parametrize("spec, phrase", [("4/3", "K must be between 1 and N"), ("0/3", "between 1 and N"),
                                          ("two/3", "expected K/N"), ("7/7", "has only 6 member(s)")])
def test_bad_slice_is_a_usage_error(tmp_path, spec, phrase):
    _refused(["sweep", *GRAIN, "--slice", spec, "--out", tmp_path / "x"], phrase)
    assert not (tmp_path / "x" / "summary.json").exists()


def test_merge_refuses_swapped_damaged_foreign_and_mixed_options(grain, tmp_path):
    """Issue 16: a slice's results.h5 swapped in from another slice, a flipped byte in it, an
    edited summary, and slices run with different PETSc options are refused, nothing merged."""
    gdirs = grain[1]
    out = tmp_path / "out"
    copies = []
    for k, d in enumerate(gdirs):
        copies.append(tmp_path / f"c{k}")
        shutil.copytree(d, copies[-1])
    # slice 3's results.h5 in slice 2's directory
    shutil.copy(gdirs[2] / "results.h5", copies[1] / "results.h5")
    _refused(["merge", out, *copies], "is not the file its summary.json was written with")
    shutil.copy(gdirs[1] / "results.h5", copies[1] / "results.h5")
    # a flipped byte in the middle of the file (data or metadata)
    data = bytearray((copies[1] / "results.h5").read_bytes())
    data[len(data) // 2] ^= 0x40
    (copies[1] / "results.h5").write_bytes(bytes(data))
    _refused(["merge", out, *copies], "fails its checksum")
    shutil.copy(gdirs[1] / "results.h5", copies[1] / "results.h5")
    # an edited summary (a member's result changed by hand)
    s = read_summary(copies[1])
    s["members"][0]["Delta_permil"] += 0.1
    (copies[1] / "summary.json").write_text(json.dumps(s))
    _refused(["merge", out, *copies], "does not match its digest")
    shutil.copy(gdirs[1] / "summary.json", copies[1] / "summary.json")
    # slice 2 run again with other PETSc options
    mixed = tmp_path / "mixed"
    run_cli(["sweep", *GRAIN, "--slice", "2/3", "--out", mixed, "-ts_rtol", "1e-4"], check=0)
    _refused(["merge", out, copies[0], mixed, copies[2]], "PETSc options", "-ts_rtol")
    assert not out.exists()
    run_cli(["merge", out, *copies], check=0)
    assert read_summary(out)["petsc_options"] == []
