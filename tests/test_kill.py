"""Kills at any instant and damaged checkpoints lose nothing and corrupt nothing.

The kill chains (``killharness.py``) SIGKILL each model's run 20 times at seeded random
moments (a third to a half of them inside a checkpoint write), restart it each time, check
after every kill that the newest checkpoint is complete and never older than before, that
every restart resumed from exactly that checkpoint (its step and file name in the log),
and at the end that the results equal an uninterrupted run's: bitwise for the grain and
capsule models; to round-off for the chamber (its FSAL Runge-Kutta scheme; see
:func:`test_chamber_fsal_restart_bitwise`). One chain runs under ``mpirun -n 2``, killing
mpirun and both ranks. Then checkpoints are truncated and bit-flipped: the previous one
must be used, with a message saying why.

Runtime: ~2.5 min on 2 quiet cores (each chain ~25-40 s: 20-odd process start-ups; 3.5 min
when the machine is shared).
"""

import random
import shutil

import h5py
import numpy as np
import pytest

import killharness as kh
from support import CLEAN_ENV, INPUT, needs_mpirun, read_summary, run_cli

KILLS = 20


@pytest.mark.parametrize("model, seed", [("grain_exchange", 11), ("capsule", 12), ("chamber", 13)])
def test_kill_chain(tmp_path, model, seed):
    """20 SIGKILLs at random moments (in checkpoint writes, between steps, during start-up and
    checkpoint verification, in the results write) and restarts: the run completes with the
    uninterrupted run's results and no restart ever went back to an older state."""
    tally, compared, every = kh.kill_chain(model, tmp_path, KILLS, seed, env=CLEAN_ENV)
    print(f"{model} (checkpoint every {every} steps): {tally.line()}")
    assert tally.kills >= KILLS
    # half the plan aims at checkpoint writes; a write takes milliseconds, the poll 0.5 ms
    assert tally.in_checkpoint_write >= KILLS // 5, tally.line()
    assert tally.resumed >= KILLS // 2, tally.line()
    assert tally.monotone, tally.line()
    assert tally.checkpoints_checked >= KILLS // 2
    assert compared >= 10


@needs_mpirun
def test_kill_chain_under_mpirun(tmp_path):
    """The same under ``mpirun -n 2``: mpirun and both ranks are killed at once (their whole
    session); restarts on 2 ranks end bitwise equal to an uninterrupted 2-rank run."""
    tally, compared, every = kh.kill_chain("grain_exchange", tmp_path, 6, 21, np_=2, env=CLEAN_ENV)
    print(f"grain_exchange on 2 ranks (checkpoint every {every} steps): {tally.line()}")
    assert tally.kills >= 6 and tally.resumed >= 3
    assert tally.monotone, tally.line()
    assert compared >= 10


# ------------------------------------------------------------------ damaged checkpoints
SMALL = ["--set", "grid.cells=40", "--progress", "0"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run with checkpoints every 20 steps (the last two kept: steps 40 and 20
    of 54), and the uninterrupted run's results."""
    d = tmp_path_factory.mktemp("damaged") / "run"
    run_cli(["run", INPUT / "xiong_fig1.toml", "--out", d, "--checkpoint-steps", "20", *SMALL], check=0)
    steps = [kh.complete_checkpoint(d / n)[1] for n in ("checkpoint.h5", "checkpoint.prev.h5")]
    assert steps == [40, 20]
    return d


def _unfinished_copy(finished, tmp_path):
    """The finished run as it was before its results were written."""
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    (d / "summary.json").unlink()
    (d / "results.h5").unlink()
    return d


def _flip_bit(path, offset, bit):
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def _dataset_offset(path, state):
    """File offset of the middle of the data of the largest state dataset (``state``) or of
    the largest other one (the recordings)."""
    with h5py.File(path) as f:
        found = []
        f.visititems(lambda n, o: found.append((o.id.get_storage_size(), n)) if isinstance(o, h5py.Dataset)
                     and n.startswith("fields/") == state and o.id.get_offset() is not None else None)
        size, name = max(found)
        return f[name].id.get_offset() + size // 2


def _truncate_half(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _newest_part(d):
    """The record part only checkpoint.h5 refers to (checkpoint.prev.h5 refers to the others)."""
    return sorted((d / "records").glob("part-*.h5"))[-1]


#: what is damaged ("checkpoint": checkpoint.h5; "records": its newest record part) and how
DAMAGE = {
    "truncated to half": ("checkpoint", _truncate_half),
    "truncated to nothing": ("checkpoint", lambda p: p.write_bytes(b"")),
    "one bit of the state": ("checkpoint", lambda p: _flip_bit(p, _dataset_offset(p, state=True), 3)),
    "one bit of the recorded series": ("records", lambda p: _flip_bit(p, _dataset_offset(p, state=False), 0)),
    "recordings truncated": ("records", _truncate_half),
    "recordings deleted": ("records", lambda p: p.unlink()),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_checkpoint_falls_back(finished, tmp_path, damage):
    """A truncated or bit-flipped checkpoint.h5, or a damaged or missing record part that only
    it refers to, is refused with the reason, the previous checkpoint is used (the log says
    which, and its step), and the run ends bitwise equal."""
    d = _unfinished_copy(finished, tmp_path)
    target, spoil = DAMAGE[damage]
    spoil(d / "checkpoint.h5" if target == "checkpoint" else _newest_part(d))
    proc = run_cli(["restart", d, "--progress", "0"])
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {d / 'checkpoint.h5'}" in proc.stderr and "trying an older checkpoint" in proc.stderr
    assert "restarting from step 20 " in proc.stdout and "checkpoint.prev.h5" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert kh.compare_results(finished, d) >= 10
    # the refused file was set aside, so the good one it fell back to was not rotated away
    assert "kept as checkpoint.refused.h5" in proc.stdout and (d / "checkpoint.refused.h5").exists()
    assert kh.complete_checkpoint(d / "checkpoint.prev.h5") == (True, 20)


def test_random_bit_flips_are_refused(finished, tmp_path):
    """Single bits flipped anywhere in checkpoint.h5 or in its newest record part (seeded):
    each is refused before the HDF5 library reads the file (the seal: a SHA-256 of every
    byte), the restart falls back to checkpoint.prev.h5 and says so, and the results are
    bitwise equal. Never a crash (damaged HDF5 metadata can crash the library: a flip at
    byte 849 of an unsealed checkpoint did), never a silently different result."""
    rng = random.Random(5)
    outcomes = []
    for target in ("checkpoint", "checkpoint", "checkpoint", "records", "records"):
        d = _unfinished_copy(finished, tmp_path / f"flip{len(outcomes)}")
        path = d / "checkpoint.h5" if target == "checkpoint" else _newest_part(d)
        offset = rng.randrange(path.stat().st_size)
        _flip_bit(path, offset, rng.randrange(8))
        proc = run_cli(["restart", d, "--progress", "0"])
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (path, offset, proc.stderr)
        assert "trying an older checkpoint" in proc.stderr and "checkpoint.prev.h5" in proc.stdout, \
            (path, offset, proc.stdout, proc.stderr)
        assert kh.compare_results(finished, d) >= 10
        outcomes.append((path.name, offset))
    print("bit flips refused (file, offset):", outcomes)


def test_recordings_are_appended(finished):
    """Each checkpoint writes only what was recorded since the one before, as a new record
    part, and refers to all parts so far: no row is written twice, and the parts joined are
    the results file's rows up to the checkpoint's time."""
    from isosim.io.checkpoint import read_header
    ck, prev = (read_header(finished / n) for n in ("checkpoint.h5", "checkpoint.prev.h5"))
    assert [p["file"] for p in prev.meta["records"]] == ["records/part-000000.h5"]
    assert [p["file"] for p in ck.meta["records"]] == ["records/part-000000.h5", "records/part-000001.h5"]
    with h5py.File(finished / "records/part-000000.h5") as a, h5py.File(finished / "records/part-000001.h5") as b, \
            h5py.File(finished / "results.h5") as r:
        taus = [a["outputs/series_tau"][()], b["outputs/series_tau"][()]]
        assert taus[0].size > 0 and taus[1].size > 0 and taus[0][-1] < taus[1][0]
        assert taus[0][-1] <= prev.meta["time"] < taus[1][0] and taus[1][-1] <= ck.meta["time"]
        n = sum(t.size for t in taus)
        assert np.array_equal(np.concatenate(taus), r["series/tau"][:n])
        assert r["series/tau"][n] > ck.meta["time"]
        # recorded [time, member, ...] / inventory [time, isotope, member]; results.h5 [member, time, ...]
        back = {"Delta_permil": (1, 0, 2), "T_apparent_C": (1, 0), "inventory": (1, 2, 0)}
        for name in ("Delta_permil", "T_apparent_C", "inventory"):
            joined = np.concatenate([a[f"outputs/series_{name}"][()], b[f"outputs/series_{name}"][()]])
            assert np.array_equal(joined, r[f"series/{name}"][()].transpose(back[name])[:n]), name
        profiles = a["fields/profile_grains"].shape[1] + b["fields/profile_grains"].shape[1]
        assert profiles == ck.outputs["profiles_tau"].size == np.count_nonzero(r["profiles/tau"][()] <= ck.meta["time"])


def test_superseded_recordings_removed(finished, tmp_path):
    """A record part written after the checkpoint a restart uses (a kill between the part and
    its checkpoint), and a part's temporary file, are removed at the restart, with a message;
    the part is written again."""
    d = _unfinished_copy(finished, tmp_path)
    (d / "checkpoint.h5").unlink()                   # as if killed before it was renamed into place
    (d / "checkpoint.prev.h5").rename(d / "checkpoint.h5")
    stale = d / "records" / "part-000001.h5"
    stale_bytes = stale.read_bytes()
    (d / "records" / ".part-000002.h5.tmp.999999").write_bytes(b"partial")
    proc = run_cli(["restart", d, "--progress", "0"])
    assert proc.returncode == 0, proc.stderr
    assert "restarting from step 20 " in proc.stdout
    # the part's temporary file goes with the run directory's stale temporaries (io.rundir),
    # the part written after the checkpoint with the superseded parts
    assert "removed 1 temporary file(s) left by interrupted writes: .part-000002.h5.tmp.999999" in proc.stdout
    assert "removed 1 record part(s) written after checkpoint.h5: records/part-000001.h5" in proc.stdout, \
        proc.stdout
    assert sorted(p.name for p in (d / "records").iterdir()) == ["part-000000.h5", "part-000001.h5"]
    # written again (removed first, see the message), byte for byte as before: the restarted
    # run recorded the same rows
    assert stale.read_bytes() == stale_bytes
    assert kh.compare_results(finished, d) >= 10


def test_shared_recordings_damaged(finished, tmp_path):
    """The first record part belongs to both checkpoints: damaged, neither can be used. The
    restart stops (exit 4) naming the part and both checkpoints; nothing is overwritten."""
    d = _unfinished_copy(finished, tmp_path)
    part = d / "records" / "part-000000.h5"
    _flip_bit(part, part.stat().st_size // 2, 4)
    proc = run_cli(["restart", d, "--progress", "0"])
    assert proc.returncode == 4, proc.stderr
    assert "no usable checkpoint" in proc.stderr and "part-000000.h5" in proc.stderr
    assert "checkpoint.prev.h5: its recordings" in proc.stderr and "Traceback" not in proc.stderr
    assert not (d / "summary.json").exists()


def test_no_usable_checkpoint(finished, tmp_path):
    """Both checkpoints damaged: exit 4 and both reasons given, no traceback; with none at
    all, the run starts again from the beginning and says so."""
    d = _unfinished_copy(finished, tmp_path)
    _truncate_half(d / "checkpoint.h5")
    _flip_bit(d / "checkpoint.prev.h5", _dataset_offset(d / "checkpoint.prev.h5", state=True), 1)
    proc = run_cli(["restart", d])
    assert proc.returncode == 4, proc.stderr
    assert "no usable checkpoint" in proc.stderr and "checkpoint.prev.h5" in proc.stderr
    assert "checksum" in proc.stderr or "corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("checkpoint.h5", "checkpoint.prev.h5"):
        (d / name).unlink()
    # none at all (stopped before its first checkpoint): the restart starts again from deck.toml
    proc = run_cli(["restart", d, "--progress", "0"])
    assert proc.returncode == 0 and "starting again from the beginning" in proc.stdout, proc.stderr


@pytest.mark.xfail(strict=True, reason="PETSc RK 5dp reuses its last stage derivative across TSSolve "
                   "calls (FSAL); a restarted process recomputes it, and the two differ in the last bit "
                   "(VecMAXPY over 6 vs 7 vectors rounds differently). Fix: a non-FSAL default for the "
                   "chamber (rk_type 5f is bitwise) or a documented round-off guarantee.")
def test_chamber_fsal_restart_bitwise(tmp_path):
    """The chamber restarted at step 40 (a checkpoint on a solve boundary, like every
    checkpoint) should end bitwise equal to the uninterrupted run."""
    ref, out = tmp_path / "ref", tmp_path / "run"
    deck = INPUT / "spera2004_afc.toml"
    run_cli(["run", deck, "--out", ref, "--progress", "0"], check=0)
    run_cli(["run", deck, "--out", out, "--progress", "0", "--checkpoint-steps", "1", "-ts_max_steps", "40"],
            check=3)
    run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "100000000"], check=0)
    with h5py.File(ref / "results.h5") as a, h5py.File(out / "results.h5") as b:
        x, y = a["path/state"][()], b["path/state"][()]
    assert np.abs(x - y).max() <= 1e-12 * np.abs(x).max()     # round-off: holds today
    assert np.array_equal(x, y)
    assert read_summary(out)["steps"] == 200
