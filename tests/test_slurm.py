"""The templates in slurm/ submitted to a real one-node SLURM (tests/slurm_cluster.py).

(a) run.sbatch on 2 tasks equals ``mpirun -n 2 isosim run``; (b) submit_sweep.sh (a 3-task
array and the merge job that depends on it) equals the sweep run at once, and a failing
array cancels its merge; (c) restart_chain.sbatch with a one-minute time limit needs >= 2
requeues and ends bitwise equal to an uninterrupted run; (d) submit_sweep.sh with a one-minute
time limit: every slice stops on USR1, requeues itself and continues with ``isosim restart``,
the afterok merge waits for the requeued tasks, and the merged sweep is bitwise the direct
sweep; what array_sweep.sbatch does with an existing slice directory (continue, skip, replace).

The sweep (d) needs both CPUs for ~3 min, so it runs first, alone. The chain (c) runs ~2.5 min
of compute on one CPU, so it is submitted next (fixture ``chain``, started by (b)) and the
other tests run beside it on the second CPU; the uninterrupted references run at the same
time outside SLURM. Skipped only where SLURM cannot
be installed (not Linux, not root, no apt-get); a SLURM that is installed but does not start
is an error.
"""

import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from support import CLEAN_ENV, INPUT, ROOT, isosim_cmd, needs_mpirun, run_cli
from slurm_cluster import SlurmCluster, Unavailable, ensure_installed
from sweep_compare import _h5_items, _same, assert_same_sweep

pytestmark = [pytest.mark.slurm, needs_mpirun]

SLURM = ROOT / "slurm"
DECK = INPUT / "xiong_fig1.toml"
# (c): fine enough that the run needs ~2.5 min on one core here (> 2 one-minute segments
# anywhere twice as fast), and a tight tolerance so the path has many steps to stop between
# a run of 3-5 minutes on 2 cores: cell unknowns (over 1000 cells), ARK3, landing on every
# series sample (the slower settings: the chain needs several one-minute segments)
CHAIN_ARGS = ["--set", "grid.cells=6000", "--set", "grid.stretch=1.0", "--set", "solver.rtol=1e-10",
              "--set", "solver.arkimex_type=3", "--set", "output.series_exact=true"]
# SLURM signals when at most SECONDS + 30 s are left (its 30 s timer), so @5 gives USR1 5-35 s
# before the one-minute limit: segments of 25-55 s, and a full 30 s timer period before the kill
CHAIN_SIGNAL = "B:USR1@5"


def job_env(**settings):
    """What a job sees: the test environment (PETSc, Open MPI as root) and the template settings."""
    venv = Path(sys.prefix)
    env = dict(CLEAN_ENV, **{k: str(v) for k, v in settings.items()})
    if (venv / "bin" / "activate").exists():
        env["VENV"] = str(venv)
    else:                                   # no venv: isosim must be next to this python
        env["VENV"] = ""
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    try:
        ensure_installed()
    except Unavailable as exc:
        pytest.skip(f"no SLURM: {exc}")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _output(path):
    return path.read_text(errors="replace") if path.exists() else "(no output file)"


def _assert_completed(records, out_files):
    bad = {j: (r.get("JobState"), r.get("ExitCode")) for j, r in records.items() if r.get("JobState") != "COMPLETED"}
    assert not bad, f"{bad}\n" + "\n".join(_output(f) for f in out_files)


def test_run_sbatch_equals_direct_run(cluster, tmp_path):
    """run.sbatch, 2 tasks through mpirun: bitwise the same run as mpirun -n 2 outside SLURM."""
    args = ["--set", "grid.cells=60"]
    direct = tmp_path / "direct"
    run_cli(["run", DECK, "--out", direct, "--progress", "0", *args], np=2, check=0)
    job = cluster.sbatch("--ntasks=2", "--time=5", "--output", tmp_path / "run-%j.out", SLURM / "run.sbatch",
                         cwd=tmp_path, env=job_env(DECK=DECK, OUT="slurm-run", ISOSIM_ARGS=" ".join(args),
                                                   PROGRESS=0))
    records = cluster.wait(job, timeout=240)
    _assert_completed(records, [tmp_path / f"run-{job}.out"])
    assert "2 task(s)" in _output(tmp_path / f"run-{job}.out")
    a, b = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "slurm-run", direct))
    assert a["ranks"] == b["ranks"] == 2
    for k in ("results", "members", "deck", "steps", "ts_type"):
        assert a[k] == b[k], k
    x, y = _results(tmp_path / "slurm-run"), _results(direct)
    assert x.keys() == y.keys()
    for k in x:
        assert _same(x[k], y[k], 0.0), k


def _results(d):
    """Every dataset and attribute of DIR/results.h5, by path."""
    with h5py.File(d / "results.h5") as f:
        return _h5_items(f)


# ------------------------------------------------------------------------------ (d)
# (d): 400 members of the Fig. 1 deck in batches of 8, refined and at a tight tolerance so that
# each of the 2 slices needs ~50-110 s of compute here (the slow-cooled half, slice 1, ~1.6x
# the other), i.e. more than one one-minute segment. The batches are formed by stiffness
# order; 200 members per slice are 25 whole batches of the direct sweep's 50, so the merged
# sweep is bitwise the direct one (batch mode).
LIMIT_SWEEP = ["--vary", "temperature.rate_C_per_Myr=log:1:1e7:400", "--set", "ensemble.batch_size=8",
               "--set", "grid.cells=400", "--set", "solver.rtol=1e-10"]
# USR1 10-40 s before the one-minute limit: segments of 20-50 s, >= 40 s between USR1 and the kill
LIMIT_SIGNAL = "B:USR1@10"
SEGMENT = re.compile(r"\[sweep\] array job \d+ task (\d+) segment (\d+) \(SLURM_RESTART_COUNT=(\d+)\).* at (\d+)")


def test_array_sweep_past_time_limit_requeues_restarts_and_merges(cluster, tmp_path):
    """submit_sweep.sh with --time=1 and --signal=B:USR1@10, 2 slices that each need more than
    one segment: USR1 -> isosim keeps its finished batches, exits 75 -> the task requeues itself
    -> the next segment runs 'isosim restart' on the slice; the afterok merge waits for the
    requeued tasks, and the merged sweep is bitwise the uninterrupted direct sweep.

    Runs before the restart chain is submitted (the fixture of (b) and (c)): it needs both CPUs."""
    t0 = time.monotonic()
    ref = subprocess.Popen(isosim_cmd(["sweep", DECK, *LIMIT_SWEEP, "--out", tmp_path / "direct", "--progress", "0"]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=CLEAN_ENV)
    try:
        array, merge = _submit_sweep(cluster, tmp_path, "sw", *LIMIT_SWEEP, nslices=2,
                                     settings={"TIME": "1", "SIGNAL": LIMIT_SIGNAL})
        outs = {k: tmp_path / f"isosim-sweep-{array}_{k}.out" for k in (1, 2)}
        merge_out = tmp_path / f"isosim-merge-{merge}.out"
        tasks = cluster.wait(array, timeout=600)
        _assert_completed(tasks, [*outs.values(), merge_out])
        rec = cluster.wait(merge, timeout=120)[merge]
        _assert_completed({merge: rec}, [*outs.values(), merge_out])
        wall = time.monotonic() - t0
        assert ref.wait(timeout=300) == 0, ref.stdout.read()
    finally:
        if ref.poll() is None:
            ref.kill()
            ref.wait()
    by_task = {int(t["ArrayTaskId"]): t for t in tasks.values()}
    assert sorted(by_task) == [1, 2]
    report = []
    for k, out in outs.items():
        log = _output(out)
        segs = [(int(n), int(c), int(t)) for kk, n, c, t in SEGMENT.findall(log) if int(kk) == k]
        stops = log.count("isosim exited with 75")
        usr1 = [int(t) for t in re.findall(r"\[sweep\] USR1 at (\d+)", log)]
        starts = [t for _, _, t in segs]
        report.append(f"slice {k}: {len(segs)} segments, Restarts={by_task[k]['Restarts']}, USR1 after "
                      f"{[u - s for s, u in zip(starts, usr1)]} s of each segment, requeue gaps "
                      f"{[b - a for a, b in zip(usr1, starts[1:])]} s")
        # one output file per task (--open-mode=append): segment n has SLURM_RESTART_COUNT n-1
        assert [(n, c) for n, c, _ in segs] == [(n, n - 1) for n in range(1, len(segs) + 1)], log
        assert len(segs) >= 2, (f"slice {k} finished within one one-minute segment: this machine is fast "
                                f"enough to need a larger sweep in LIMIT_SWEEP\n{log}")
        assert int(by_task[k]["Restarts"]) == len(segs) - 1 == stops <= len(usr1), log
        assert log.count(f"requeueing array task {array}_{k}") == stops, log
        # the first segment starts the slice, every later one continues it
        assert log.count(f"isosim sweep {DECK}") == 1 and "--force" in log.split("isosim restart")[0], log
        assert log.count(f"isosim restart sw.slices/slice-{k} ") == len(segs) - 1, log
        assert log.count("members are finished and kept") == stops, log
        assert "isosim exited with 0" in log and "Traceback" not in log, log
        # every segment but the last kept more batches; a restart keeps what was kept before
        kept = [(int(a), int(b)) for a, b in re.findall(r"\[sweep\] (\d+) unit\(s\) kept in \S+, (\d+) in this", log)]
        assert len(kept) == stops and all(new > 0 for _, new in kept), log
        assert [a for a, _ in kept] == list(itertools.accumulate(new for _, new in kept)), log
    # the merge started only after the last segment of the last task had ended
    ends = [by_task[k]["EndTime"] for k in by_task]
    assert rec["StartTime"] >= max(ends), (rec["StartTime"], ends)
    print(f"\narray sweep past its time limit: {'; '.join(report)}; merge started {rec['StartTime']} "
          f"after the tasks ended {sorted(ends)}; {wall:.0f} s from submission to the merged sweep")
    assert assert_same_sweep(tmp_path / "sw", tmp_path / "direct") == 0.0
    merged = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert [m["dir"] for m in merged["merged_from"]] == ["sw.slices/slice-1", "sw.slices/slice-2"]


def test_array_sweep_continues_skips_or_replaces_a_slice(tmp_path):
    """What array_sweep.sbatch does with a slice directory that exists (the script run as the
    batch shell would run it, without SLURM): a slice of this sweep that is complete is left
    alone; one that is unfinished is continued with 'isosim restart'; one of another sweep (other
    SWEEP_ARGS) is replaced with --force."""
    sweep = ["--set", "grid.cells=20", "--vary", "temperature.rate_C_per_Myr=1,1e3,1e7,1e5"]

    def task(*args, **settings):
        env = job_env(DECK=DECK, OUT="sw", NSLICES=2, SWEEP_ARGS=" ".join(args), PROGRESS=0, LAUNCH="env",
                      SLURM_ARRAY_JOB_ID=7, SLURM_ARRAY_TASK_ID=2, **settings)
        p = subprocess.run(["bash", SLURM / "array_sweep.sbatch"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout + p.stderr

    d = tmp_path / "sw.slices" / "slice-2"
    log = task(*sweep)
    assert "isosim sweep" in log and "--slice 2/2" in log and "replacing" not in log, log
    first = json.loads((d / "summary.json").read_text())
    assert first["slice"]["first_member"] == 2 and first["status"] == "complete"
    stamp = (d / "results.h5").stat().st_mtime_ns
    log = task(*sweep)
    assert "is complete; nothing to do" in log and (d / "results.h5").stat().st_mtime_ns == stamp, log
    (d / "summary.json").unlink()                 # as if stopped after its last unit was kept
    log = task(*sweep)
    assert "isosim restart sw.slices/slice-2" in log, log
    assert json.loads((d / "summary.json").read_text())["members"] == first["members"]
    log = task(*sweep, "--set", "phases.opx.beta=0.1")    # another sweep: replaced
    assert "holds no unfinished slice of this sweep: replacing it" in log and "--force" in log, log
    assert json.loads((d / "summary.json").read_text())["sweep_digest"] != first["sweep_digest"]


# ------------------------------------------------------------------------------ (c) set-up
@pytest.fixture(scope="module")
def chain(cluster, tmp_path_factory):
    """Submit the restart chain and start the uninterrupted reference beside it."""
    tmp = tmp_path_factory.mktemp("chain")
    ref = subprocess.Popen(isosim_cmd(["run", DECK, "--out", tmp / "reference", "--progress", "0", *CHAIN_ARGS]),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=CLEAN_ENV)
    out = tmp / "chain.out"
    job = cluster.sbatch("--ntasks=1", "--time=1", f"--signal={CHAIN_SIGNAL}", "--output", out,
                         SLURM / "restart_chain.sbatch", cwd=tmp,
                         env=job_env(DECK=DECK, OUT="chain", ISOSIM_ARGS=" ".join(CHAIN_ARGS), PROGRESS=0))
    yield {"job": job, "dir": tmp, "out": out, "reference": ref, "submitted": time.monotonic()}
    if ref.poll() is None:
        ref.kill()
        ref.wait()


# ------------------------------------------------------------------------------ (b)
SWEEP = ["--set", "grid.cells=20", "--set", 'ensemble.mode="independent"',
         "--vary", "temperature.rate_C_per_Myr=1,1e3,1e7", "--vary", "phases.opx.beta=0.02,0.2"]


def _submit_sweep(cluster, tmp, out, *sweep_args, nslices=3, settings=None):
    env = job_env(**{"TIME": "5", "PROGRESS": "0", **(settings or {})})
    p = subprocess.run([SLURM / "submit_sweep.sh", DECK, str(nslices), out, *sweep_args], cwd=tmp,
                       capture_output=True, text=True, timeout=60, env=dict(env, SLURM_CONF=str(cluster.conf)))
    assert p.returncode == 0, p.stderr
    array = re.search(r"array job (\d+)", p.stdout).group(1)
    merge = re.search(r"merge job (\d+)", p.stdout).group(1)
    return array, merge


def test_array_sweep_and_merge_equal_direct_sweep(cluster, chain, tmp_path):
    """submit_sweep.sh: 3 array tasks (slices 1/3..3/3) and the afterok merge job give the
    direct sweep bitwise (independent mode: one TS per member)."""
    direct = tmp_path / "direct"
    run_cli(["sweep", DECK, "--progress", "0", *SWEEP, "--out", direct], check=0)
    array, merge = _submit_sweep(cluster, tmp_path, "sw", *SWEEP)
    outs = [tmp_path / f"isosim-sweep-{array}_{k}.out" for k in (1, 2, 3)] + [tmp_path / f"isosim-merge-{merge}.out"]
    tasks = cluster.wait(array, timeout=300)
    assert len(tasks) == 3
    _assert_completed(tasks, outs)
    _assert_completed(cluster.wait(merge, timeout=120), outs)
    assert assert_same_sweep(tmp_path / "sw", direct) == 0.0
    merged = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert [m["dir"] for m in merged["merged_from"]] == [f"sw.slices/slice-{k}" for k in (1, 2, 3)]


def test_failed_slice_cancels_the_merge(cluster, chain, tmp_path):
    """A slice that fails (here: every slice, a bad --vary value) never lets the merge run."""
    array, merge = _submit_sweep(cluster, tmp_path, "bad", "--vary", "phases.opx.beta=0.1,0.7", nslices=2)
    tasks = cluster.wait(array, timeout=120)
    assert {t["JobState"] for t in tasks.values()} == {"FAILED"}
    assert {t["ExitCode"] for t in tasks.values()} == {"2:0"}
    rec = cluster.wait(merge, timeout=60)[merge]
    assert rec["JobState"] == "CANCELLED", rec
    assert not (tmp_path / "bad" / "summary.json").exists()


# ------------------------------------------------------------------------------ (c)
def test_restart_chain_requeues_and_equals_uninterrupted_run(cluster, chain):
    """restart_chain.sbatch, --time=1: USR1 before each limit, isosim checkpoints (exit 75), the
    job requeues itself; >= 2 requeues, and the result is bitwise the uninterrupted run's."""
    records = cluster.wait(chain["job"], timeout=900)
    wall = time.monotonic() - chain["submitted"]
    log = _output(chain["out"])
    rec = records[chain["job"]]
    assert rec["JobState"] == "COMPLETED", (rec, log)
    segments = [int(n) for n in re.findall(r"\[chain\] job \d+ segment \d+ \(SLURM_RESTART_COUNT=(\d+)\)", log)]
    stops = log.count("isosim exited with 75")
    starts = [int(t) for t in re.findall(r"segment \d+ .* at (\d+)", log)]
    signals = [int(t) for t in re.findall(r"\[chain\] USR1 at (\d+)", log)]
    print(f"\nrestart chain: {len(segments)} segments, Restarts={rec['Restarts']}, "
          f"USR1 after {[s - t for s, t in zip(signals, starts)]} s of each segment, "
          f"requeue gaps {[b - a for a, b in zip(signals, starts[1:])]} s, {wall:.0f} s from submission")
    assert segments == list(range(len(segments))), log
    assert len(segments) >= 3, (f"the run needed only {len(segments)} one-minute segment(s): this machine is "
                                f"fast enough to need a finer grid in CHAIN_ARGS\n{log}")
    assert int(rec["Restarts"]) == len(segments) - 1 == stops >= 2
    assert log.count("checkpoint written") == stops and "Traceback" not in log
    ref = chain["reference"]
    assert ref.wait(timeout=300) == 0, ref.stdout.read()
    x, y = _results(chain["dir"] / "chain"), _results(chain["dir"] / "reference")
    assert x.keys() == y.keys()
    for k in x:
        assert _same(x[k], y[k], 0.0), k
    a, b = (json.loads((chain["dir"] / d / "summary.json").read_text()) for d in ("chain", "reference"))
    assert a["results"] == b["results"] and a["steps"] == b["steps"]
