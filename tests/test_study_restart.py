"""Every study survives a stop (issue 16): sweeps and inversions keep their finished units,
stop cleanly on SIGTERM/SIGUSR1/SIGINT (exit 75), and `isosim restart DIR` resumes exactly
the job the directory holds; a directory has one owner at a time; a finished job is never
recomputed.

The 600-member sweep (38 batches of 16) takes ~8 s on one rank; every resumed sweep must
end with every member's headline and series bitwise equal to the uninterrupted sweep's:
batches depend only on the decks and each is integrated on one rank alone, so bitwise is
the right standard on any rank count.
"""

import fcntl
import json
import os
import pty
import random
import signal
import subprocess
import termios
import time

import h5py
import numpy as np
import pytest

from support import CLEAN_ENV, INPUT, isosim_cmd, needs_mpirun, read_summary, run_cli

SWEEP = ["sweep", INPUT / "xiong_fig1.toml", "--vary", "temperature.rate_C_per_Myr=log:1:1e7:600",
         "--set", "ensemble.batch_size=16", "--set", "output.sweep_profiles=true", "--progress", "0"]
# batches of 2 members: the 18-member scan alone is 9 units, so a stop after 3 lands inside it
INVERT = ["invert", INPUT / "xiong_inversion.toml", "--over", "phases.cpx.beta=0:0.5:3", "--scan", "6",
          "--set", "ensemble.batch_size=2", "--progress", "0"]
# ~20 s on one rank: long enough to be met while running
SLOW_RUN = ["run", INPUT / "xiong_fig1.toml", "--progress", "0", "--set", "grid.cells=3000",
            "--set", "grid.stretch=1.0", "--set", "solver.rtol=1e-10"]


def _same_results(a, b):
    sa, sb = (read_summary(d) for d in (a, b))
    for key in ("members", "solutions", "scan", "n_members", "sweep_digest"):
        assert sa.get(key) == sb.get(key), key
    with h5py.File(a / "results.h5", "r") as fa, h5py.File(b / "results.h5", "r") as fb:
        names = []
        fa.visit(lambda n: names.append(n) if isinstance(fa[n], h5py.Dataset) else None)
        assert names
        for n in names:
            x, y = fa[n][()], fb[n][()]
            numeric = np.asarray(x).dtype.kind in "fc"
            assert np.array_equal(x, y, equal_nan=numeric), n


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref") / "sweep"
    run_cli([*SWEEP, "--out", d], check=0)
    return d


@pytest.fixture(scope="module")
def invert_reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref") / "invert"
    run_cli([*INVERT, "--out", d], check=0)
    return d


def _start(args, np_=None, session=True):
    return subprocess.Popen(isosim_cmd(args, np_), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=CLEAN_ENV, start_new_session=session)


def _units(out):
    return len(list((out / "units").glob("part-*.h5"))) if (out / "units").is_dir() else 0


def _wait_for_units(proc, out, n, timeout=120):
    t0 = time.monotonic()
    while _units(out) < n:
        assert proc.poll() is None, f"finished before {n} units were kept: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


def _restart_until_done(out, np_=None, limit=5):
    for _ in range(limit):
        proc = run_cli(["restart", out, "--progress", "0"], np=np_)
        if proc.returncode == 0:
            return proc
        assert proc.returncode == 75, proc.stderr
    raise AssertionError("restart did not finish")


@pytest.mark.parametrize("np_,sig", [(None, signal.SIGTERM), (None, signal.SIGINT), (None, signal.SIGUSR1),
                                     pytest.param(2, signal.SIGUSR1, marks=needs_mpirun),
                                     pytest.param(2, signal.SIGINT, marks=needs_mpirun)])
def test_sweep_stopped_and_resumed_equals_uninterrupted(tmp_path, sweep_reference, np_, sig):
    out = tmp_path / "sw"
    proc = _start([*SWEEP, "--out", out], np_)
    _wait_for_units(proc, out, 5)
    # SIGINT as a terminal sends it: to the whole process group (mpirun and its ranks)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stderr and "PETSC ERROR" not in stderr, stderr
    assert "Continue with: isosim restart" in stderr, stderr
    if np_ is None or sig == signal.SIGUSR1:
        assert proc.returncode == 75, stderr   # under mpirun, SIGINT ends mpirun with its own code
    kept = _units(out)
    assert 5 <= kept < 38, "the stop must come before the end"
    # resume on the other rank count
    done = _restart_until_done(out, None if np_ else 2)
    assert f"{kept} finished earlier, kept" in done.stdout
    _same_results(sweep_reference, out)
    assert read_summary(out)["status"] == "complete"


def test_sweep_slice_stopped_and_resumed(tmp_path, sweep_reference):
    out = tmp_path / "slice"
    proc = _start([*SWEEP, "--slice", "2/2", "--out", out])
    _wait_for_units(proc, out, 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 75
    _restart_until_done(out)
    s = read_summary(out)
    ref = read_summary(sweep_reference)
    assert s["slice"]["index"] == 2 and s["n_members"] == 300
    for m in s["members"]:
        r = ref["members"][m["member_index"]]
        assert m["params"] == r["params"]
        assert abs(m["Delta_permil"] - r["Delta_permil"]) < 1e-7   # a slice batches its own members


def test_sweep_random_kills_then_restarts(tmp_path, sweep_reference):
    """20 SIGKILLs at random instants (inside unit writes too), each followed by a restart
    (or, if killed before the manifest was written, the command again): nothing lost or
    duplicated, every result bitwise the uninterrupted sweep's."""
    rng = random.Random(16)
    out = tmp_path / "sw"
    kills = restarts = 0
    cmd = [*SWEEP, "--out", out]
    while kills < 20:
        proc = _start(cmd)
        # a random instant once the job exists (a loaded machine may take seconds to start it)
        t0 = time.monotonic()
        while not (out / "manifest.json").exists() and proc.poll() is None and time.monotonic() - t0 < 60:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 3.0))
        if proc.poll() is not None:          # finished before the kill: start over for more kills
            assert proc.returncode == 0, proc.communicate()
            _same_results(sweep_reference, out)
            cmd = [*SWEEP, "--out", out, "--force"]
            continue
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        resumable = (out / "manifest.json").exists()
        cmd = ["restart", out, "--progress", "0"] if resumable else [*SWEEP, "--out", out, "--force"]
        restarts += resumable
    final = run_cli(cmd)
    while final.returncode == 75:
        final = run_cli(["restart", out])
    assert final.returncode == 0, final.stderr
    _same_results(sweep_reference, out)
    assert restarts >= 10


def test_inversion_stopped_and_resumed(tmp_path, invert_reference):
    out = tmp_path / "inv"
    proc = _start([*INVERT, "--out", out])
    _wait_for_units(proc, out, 3)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr
    assert f"isosim restart {out}" in stderr
    _restart_until_done(out)
    _same_results(invert_reference, out)


def test_restart_refuses_what_it_cannot_resume(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    p = run_cli(["restart", empty])
    assert p.returncode == 2 and "no manifest.json" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"kind": "sweep", "raw": ')
    p = run_cli(["restart", bad])
    assert p.returncode == 2 and "is damaged" in p.stderr
    (bad / "manifest.json").write_text('{"kind": "teleport"}')
    p = run_cli(["restart", bad])
    assert p.returncode == 2 and "'teleport' is not one of" in p.stderr
    (bad / "manifest.json").write_text('{"kind": "sweep"}')
    p = run_cli(["restart", bad])
    assert p.returncode == 2 and "cannot be resumed" in p.stderr and "Traceback" not in p.stderr
    # a merge killed after it wrote its manifest: restart says to merge again, and runs nothing
    (bad / "manifest.json").write_text('{"kind": "merge", "slices": []}')
    p = run_cli(["restart", bad])
    assert p.returncode == 2 and "isosim merge" in p.stderr and "--force" in p.stderr
    assert sorted(x.name for x in bad.iterdir()) == ["manifest.json"]


def test_restart_of_a_complete_study_or_run_changes_nothing(tmp_path, sweep_reference):
    run = tmp_path / "run"
    run_cli(["run", INPUT / "xiong_fig1.toml", "--out", run, "--progress", "0", "--checkpoint-steps", "5"], check=0)
    assert (run / "checkpoint.h5").exists(), "the case of issue 16: a finished run that kept a checkpoint"
    for d in (run, sweep_reference):
        # every file but the lock (which names its latest holder) is untouched
        before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in d.iterdir()
                  if p.is_file() and p.name != ".isosim.lock"}
        p = run_cli(["restart", d])
        assert p.returncode == 0 and "complete" in p.stdout and "nothing to do" in p.stdout, p.stderr
        after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in d.iterdir()
                 if p.is_file() and p.name != ".isosim.lock"}
        assert before == after


def test_one_owner_per_directory(tmp_path):
    out = tmp_path / "r"
    first = _start([*SLOW_RUN, "--out", out])
    t0 = time.monotonic()
    while not (out / "manifest.json").exists():
        assert first.poll() is None and time.monotonic() - t0 < 60
        time.sleep(0.05)
    for args in (["restart", out], [*SLOW_RUN, "--out", out], [*SLOW_RUN, "--out", out, "--force"],
                 [*SWEEP, "--out", out, "--force"]):
        p = run_cli(args)
        assert p.returncode == 2, (args, p.stderr)
        assert "is in use by isosim (pid" in p.stderr and "nothing was changed" in p.stderr
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 75, stderr
    deck = (out / "deck.toml").read_text()
    assert "cells = 3000" in deck, "the refused commands must not have touched the directory"
    done = _restart_until_done(out)       # the lock died with its owner
    assert "restarting from step" in done.stdout


def _in_terminal(args, wait_for, timeout=120):
    """Run isosim in a new session with a pseudo-terminal as its controlling terminal; once
    ``wait_for(out)`` holds, type Ctrl-C. Returns (exit code, everything printed)."""
    master, slave = pty.openpty()

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(isosim_cmd(args), stdin=slave, stdout=slave, stderr=slave, env=CLEAN_ENV,
                            preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    t0 = time.monotonic()
    while not wait_for():
        assert proc.poll() is None and time.monotonic() - t0 < timeout
        time.sleep(0.05)
    os.write(master, b"\x03")             # the terminal's line discipline sends SIGINT to the group
    text = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        text += chunk
    proc.wait(timeout=timeout)
    os.close(master)
    return proc.returncode, text.decode(errors="replace")


def test_ctrl_c_in_a_terminal_run(tmp_path):
    out = tmp_path / "r"
    code, text = _in_terminal([*SLOW_RUN, "--out", out, "--checkpoint-steps", "20"],
                              lambda: (out / "checkpoint.h5").exists())
    assert code == 75, text
    assert "stopped on SIGINT" in text and f"isosim restart {out}" in text
    assert "Traceback" not in text and "PETSC ERROR" not in text and "KeyboardInterrupt" not in text
    assert (out / "checkpoint.h5").exists() and not (out / "summary.json").exists()


def test_ctrl_c_in_a_terminal_sweep(tmp_path, sweep_reference):
    out = tmp_path / "sw"
    code, text = _in_terminal([*SWEEP, "--out", out], lambda: _units(out) >= 3)
    assert code == 75, text
    assert "stopped on SIGINT" in text and f"isosim restart {out}" in text
    assert "Traceback" not in text and "PETSC ERROR" not in text
    _restart_until_done(out)
    _same_results(sweep_reference, out)


CONVERGE = ["converge", INPUT / "xiong_fig1.toml", "--refine", "space", "--levels", "3", "--progress", "0"]
FIT = ["fit-soret", INPUT.parent / "data" / "huang2010_table1_samples.csv", "--experiments",
       INPUT.parent / "data" / "huang2010_table1_experiments.csv"]


def _wait_for(proc, cond, timeout=120):
    t0 = time.monotonic()
    while not cond():
        assert proc.poll() is None, f"finished first: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.parametrize("np_", [None, pytest.param(2, marks=needs_mpirun)])
def test_convergence_study_stopped_in_a_level_and_resumed(tmp_path, np_):
    """Stopped inside the last level (SIGUSR1: under mpirun too), restarted: the finished levels
    are read back, the stopped one continues from its checkpoint, and converge.json (written
    only now) equals the uninterrupted study's: bitwise, since a restarted ARKIMEX run is."""
    ref = tmp_path / "ref"
    run_cli([*CONVERGE, "--out", ref], np=np_, check=0)
    out = tmp_path / "cv"
    proc = _start([*CONVERGE, "--out", out], np_)
    _wait_for(proc, lambda: (out / "level2" / "manifest.json").exists())
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr
    assert f"Continue with: isosim restart {out}" in stderr and "Traceback" not in stderr
    assert not (out / "converge.json").exists(), "converge.json only when every level is done"
    done = run_cli(["restart", out, "--progress", "0"], np=np_, check=0)
    assert "restarting from step" in done.stdout or "level 2" in done.stdout
    a, b = (json.loads((d / "converge.json").read_text()) for d in (ref, out))
    assert b["status"] == "complete"
    assert a["quantities"] == b["quantities"]
    again = run_cli(["restart", out], check=0)
    assert "nothing to do" in again.stdout


def test_fit_soret_stopped_in_the_forward_runs_and_resumed(tmp_path):
    ref = tmp_path / "ref"
    run_cli([*FIT, "--out", ref], check=0)
    out = tmp_path / "fit"
    proc = subprocess.Popen(isosim_cmd([*FIT, "--out", out]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=CLEAN_ENV)
    for line in proc.stdout:
        if "forward ZM71" in line:
            proc.send_signal(signal.SIGTERM)
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 75, stderr
    assert f"Continue with: isosim restart {out}" in stderr and "Traceback" not in stderr
    partial = json.loads((out / "fit.json").read_text())
    assert partial["status"] == "running" and "forward" not in partial and "pending" in partial
    run_cli(["restart", out], check=0)
    a, b = (json.loads((d / "fit.json").read_text()) for d in (ref, out))
    assert b["status"] == "complete" and "pending" not in b
    for name in a["forward"]:
        x, y = dict(a["forward"][name]), dict(b["forward"][name])
        assert x.pop("run_dir") != y.pop("run_dir")
        assert x == y, name
    assert "nothing to do" in run_cli(["restart", out], check=0).stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGUSR1, 75), (signal.SIGTERM, 75), (signal.SIGINT, 130)])
def test_signal_during_start_up_is_a_clean_stop(tmp_path, sig, code):
    """A signal before any integration listens (start-up, deck validation: an early scancel or
    preemption) ends the command with a message and a documented code, never the signal's
    default action (SIGUSR1: status 138, silent) or a traceback."""
    proc = _start([*SWEEP, "--out", tmp_path / "sw"])
    time.sleep(0.5)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the sweep finished before the signal (a very fast machine)")
    assert proc.returncode in (code, 75), stderr      # a signal inside the integration is a stop too
    assert "Traceback" not in stderr and "stopped on" in stderr, stderr
