"""Kill harness: SIGKILL a run at random moments, restart it, repeat, until it completes.

A chain starts ``isosim run`` with frequent checkpoints, kills it (SIGKILL: no handler runs)
at a moment drawn from a seeded plan, restarts it with ``isosim restart``, kills the restart,
and so on; after the planned number of kills the last restart may finish. Every kill is
followed by checks that need no cooperation from isosim:

- the process (under mpirun: every process of its session) is gone;
- ``checkpoint.h5``, if present, is a complete HDF5 file (checkpoints are renamed into
  place: a kill can never leave a partial one under that name);
- the checkpoint a restart must use (the newest complete one) is never older than the one
  before it: what was computed is never lost;
- no ``summary.json`` exists unless the run really finished;

and every restart that lives long enough to report it must say it resumed from exactly
that checkpoint (step and file name). At the end the results must equal an uninterrupted
run's bitwise (same rank count: restarts happen on TSSolve boundaries).

Kill moments, drawn per attempt with the chain's seed:

- ``write``: while the k-th checkpoint of the attempt is being written (a temporary of its
  record part ``records/.part-*.tmp.*`` or of ``.checkpoint.h5.tmp.*`` exists), after a
  random delay of up to 2 ms;
- ``between``: 0-10 ms after the k-th checkpoint write of the attempt has finished (mid-step);
- ``start``: at a random instant of start-up (imports, PETSc initialisation, reading and
  verifying the checkpoint);
- ``results``: while the final results (``results.h5``, ``summary.json``) are being written.

k is drawn so that the kills spread over the whole run; in chains of 10 kills or more the last
two are ``results`` kills. Used by ``tests/test_kill.py``; run
it by hand for longer chains::

    python tests/killharness.py grain_exchange --kills 200 --seed 3
    python tests/killharness.py chamber --kills 50 --np 2 --keep /tmp/kills
"""

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from support import OPEN_MPI, read_summary

ROOT = Path(__file__).resolve().parents[1]
INPUT = ROOT / "input"

#: Small versions of one deck per model (a few seconds each with a checkpoint every step), and
#: the relative tolerance of the final comparison: 0 is bitwise. The chamber's default RK
#: scheme (5dp) reuses its last stage as the next step's first (FSAL) across TSSolve calls,
#: which a restarted process recomputes, so its restarts agree to round-off only (see
#: tests/test_kill.py::test_chamber_fsal_restart_bitwise).
CASES = {
    "grain_exchange": (INPUT / "xiong_fig1.toml", ["--set", "grid.cells=400"], 0.0),
    "capsule": (INPUT / "huang2010_zm70.toml", ["--set", "capsule.cells=1000"], 0.0),
    "chamber": (INPUT / "spera2004_afc.toml", [], 1e-12),
}
#: temporaries of a checkpoint write: its record part (written first), then the checkpoint
CKPT_TMP = (".checkpoint.h5.tmp", "records/.part-")
RESULT_TMPS = (".results.h5.tmp", ".summary.json.tmp")
_RESUMED = re.compile(r"restarting from step (\d+)\b.*?\b(checkpoint(?:\.prev)?\.h5)")


def default_env():
    """The environment for child runs: Open MPI as root and oversubscribed, one thread."""
    env = dict(os.environ)
    env.update(OPEN_MPI)     # (isosim itself keeps BLAS to one thread per rank)
    return env


@dataclass
class Tally:
    """What happened in a chain (all counts)."""

    kills: int = 0
    by_mode: dict = field(default_factory=dict)
    in_checkpoint_write: int = 0     #: a checkpoint temporary was left behind by the kill
    in_results_write: int = 0        #: a results/summary temporary was left behind
    before_resume_line: int = 0      #: restarts killed before they reported their checkpoint
    resumed: int = 0                 #: restarts that reported step and file, both checked
    from_prev: int = 0               #: of those, from checkpoint.prev.h5
    fresh_starts: int = 0            #: killed before the first checkpoint: started again
    temporaries_left: int = 0        #: temporary files the killed writers left behind
    checkpoints_checked: int = 0     #: checkpoint.h5 found complete after a kill
    resume_passes: list = field(default_factory=list)   #: steps resumed at, one list per pass
    wall_s: float = 0.0

    @property
    def monotone(self):
        """Within each pass through the run (a fresh start to the end), no restart resumed
        from an older step than the one before it."""
        return all(p == sorted(p) for p in self.resume_passes)

    def line(self):
        modes = ", ".join(f"{k} {v}" for k, v in sorted(self.by_mode.items()))
        return (f"{self.kills} kills ({modes}); {self.in_checkpoint_write} inside a checkpoint write, "
                f"{self.in_results_write} inside the results write ({self.temporaries_left} temporary files "
                f"left behind); {self.resumed} restarts checked "
                f"({self.from_prev} from checkpoint.prev.h5), {self.before_resume_line} killed before "
                f"reporting, {self.fresh_starts} fresh starts; resumed at steps {' | '.join(map(str, self.resume_passes))}; "
                f"{self.wall_s:.1f} s")


class ChainError(AssertionError):
    """A guarantee was broken; the message says which, with the attempt's output."""


def isosim(args, np_=None):
    cmd = [sys.executable, "-m", "isosim", *map(str, args)]
    if np_:
        cmd = [shutil.which("mpirun") or "mpiexec", "-n", str(np_), *cmd]
    return cmd


def _session_pids(sid):
    """Processes of session ``sid`` (the child and, under mpirun, every rank)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()   # after "pid (comm) "
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(d))
    return pids


def kill_session(proc, timeout=20.0):
    """SIGKILL the child's whole session (mpirun and its ranks) and wait until none is left."""
    with_suppress = (ProcessLookupError, PermissionError)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except with_suppress:
        pass
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in _session_pids(proc.pid) if p != proc.pid]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except with_suppress:
                pass
        proc.poll()
        if not left and proc.returncode is not None:
            return
        if time.monotonic() > deadline:
            raise ChainError(f"processes {left} of session {proc.pid} survived SIGKILL")
        time.sleep(0.01)


def complete_checkpoint(path):
    """(True, step) if ``path`` is a checkpoint whose writer finished, (False, reason) if not."""
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("complete", 0)) != 1:
                return False, "no complete flag"
            return True, int(f.attrs["step"])
    except (OSError, KeyError, ValueError) as exc:
        return False, str(exc)


def expected_resume(run_dir):
    """(file name, step) a restart must use: the newest complete checkpoint, or None."""
    for name in ("checkpoint.h5", "checkpoint.prev.h5"):
        p = run_dir / name
        if p.exists():
            ok, step = complete_checkpoint(p)
            if ok:
                return name, step
    return None


def _equal(x, y, rtol, name=""):
    if x.shape != y.shape:
        return False
    if x.dtype.kind != "f":
        return np.array_equal(x, y)
    if rtol == 0:
        return np.array_equal(x, y, equal_nan=True)
    scale = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    if name.endswith(("_balance", "residual")):
        # conservation residuals are differences of order-1 totals: their round-off is
        # relative to 1, not to their own (tiny) size
        scale = max(scale, 1.0)
    if name.endswith("_minus_Teq_K"):
        # a difference of two temperatures of ~1400 K (Ta - Teq -> 0 at equilibrium): its
        # round-off is relative to the temperatures
        scale = max(scale, 1.0e3)
    return np.allclose(x, y, rtol=0, atol=rtol * max(scale, 1e-300), equal_nan=True)


def compare_results(ref_dir, run_dir, rtol=0.0):
    """Every dataset of results.h5 and the results in summary.json are equal: bitwise if
    ``rtol`` is 0, else within ``rtol`` times each dataset's largest magnitude."""
    with h5py.File(ref_dir / "results.h5") as a, h5py.File(run_dir / "results.h5") as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        other = []
        b.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
        if sorted(names) != sorted(other):
            raise ChainError(f"results.h5 datasets differ: {sorted(set(names) ^ set(other))}")
        for n in names:
            x, y = a[n][()], b[n][()]
            if not _equal(x, y, rtol, n):
                diff = np.abs(x - y).max() if x.shape == y.shape and x.dtype.kind == "f" else "shape"
                raise ChainError(f"results.h5 {n} differs from the uninterrupted run (max |diff| {diff})")
    sa, sb = (read_summary(d) for d in (ref_dir, run_dir))
    for k in ("members", "steps", "status"):
        if sa[k] != sb[k] and (rtol == 0 or k != "members" or not _close_members(sa[k], sb[k], rtol)):
            raise ChainError(f"summary.json {k} differs: {sa[k]} != {sb[k]}")
    return len(names)


def _close_members(a, b, rtol):
    """Headline results of two summaries agree within ``rtol`` (numbers) or exactly (others)."""
    if len(a) != len(b):
        return False
    def flat(d, prefix=""):            # nested tables (Cm_ppm: {Sr: ...}) as dotted keys
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    for ma, mb in zip(a, b):
        ma, mb = flat(ma), flat(mb)
        if set(ma) != set(mb):
            return False
        for k in ma:
            x, y = np.asarray(ma[k]), np.asarray(mb[k])
            if x.dtype.kind in "fi" and not _equal(x.astype(float), y.astype(float), rtol, k):
                return False
            if x.dtype.kind not in "fi" and ma[k] != mb[k]:
                return False
    return True


class Chain:
    """One kill chain of one deck in ``run_dir``.

    Parameters
    ----------
    deck : Path
    overrides : list of str
        Extra ``isosim run`` arguments (``--set`` ...).
    run_dir : Path
    every_steps : int
        ``--checkpoint-steps``.
    total_steps : int
        Steps of the uninterrupted run (to spread the kills over the run).
    kills : int
    seed : int
    np_ : int or None
        Ranks under mpirun (None: no mpirun).
    startup_s : float
        Typical start-up time of an attempt (for ``start`` kills).
    env : dict
    """

    def __init__(self, deck, overrides, run_dir, every_steps, total_steps, kills, seed, np_=None,
                 startup_s=1.0, env=None):
        self.deck, self.overrides, self.run_dir = Path(deck), list(overrides), Path(run_dir)
        self.every, self.total, self.kills = every_steps, total_steps, kills
        self.rng = random.Random(seed)
        self.np, self.startup_s = np_, startup_s
        self.env = env or default_env()
        self.tally = Tally()
        self.logs = self.run_dir.parent / f"{self.run_dir.name}-logs"

    # -------------------------------------------------------------- one attempt
    def _plan(self, step):
        """(mode, k, delay) of the next kill, drawn from the seeded generator."""
        left = max(self.kills - self.tally.kills, 1)
        remaining = (self.total - step) // self.every      # checkpoints still to come
        if left <= 2 and self.kills >= 10:    # the last two kills: while the results are written
            mode = "results"
        elif remaining >= 3:
            mode = self.rng.choices(("write", "between", "start"), (0.5, 0.35, 0.15))[0]
        else:                  # the end of the run: no checkpoint to wait for
            mode = self.rng.choice(("start", "results"))
        # k up to 3x the even share: the chain reaches the end of the run with kills to spare
        k = self.rng.randint(1, max(1, min(remaining - 1, 3 * remaining // (left + 1))))
        delay = {"write": self.rng.uniform(0, 0.002), "between": self.rng.uniform(0, 0.010),
                 "start": self.rng.uniform(0, self.startup_s), "results": self.rng.uniform(0, 0.002)}[mode]
        return mode, k, delay

    def _attempt(self, args, plan, n):
        """Run ``isosim args``; kill it as ``plan`` says (or not, if None). Returns (killed, rc, out)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        out_path = self.logs / f"attempt{n:03d}.out"
        with open(out_path, "w") as out:
            proc = subprocess.Popen(isosim(args, self.np), stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env, start_new_session=True, cwd=ROOT)
        t0 = time.monotonic()
        started = finished = 0
        writing = False
        stale = set(self._temporaries())      # left by earlier kills: not this attempt's
        fire_at = t0 + plan[2] if plan and plan[0] == "start" else None
        ident, completed = self._checkpoint_id(), 0
        while proc.poll() is None:
            now = time.monotonic()
            if plan is not None and fire_at is None:
                names = [x for x in self._temporaries() if x not in stale]
                w = any(x.startswith(CKPT_TMP) for x in names)
                started += w and not writing
                finished += writing and not w
                writing = w
                # a write can be over between two polls: a new checkpoint.h5 (another inode)
                # still counts it, so the chain's kills do not drift towards the end of the run
                now_id = self._checkpoint_id()
                if now_id != ident:
                    ident, completed = now_id, completed + 1
                    started, finished = max(started, completed), max(finished, completed)
                mode, k, delay = plan
                if (mode == "write" and started >= k) or (mode == "between" and finished >= k) or \
                        (mode == "results" and any(x.startswith(RESULT_TMPS) for x in names)):
                    fire_at = now + delay
            if fire_at is not None and now >= fire_at:
                break
            time.sleep(0.0005)
        kill_session(proc)     # the kill, or after a normal exit: no rank may outlive mpirun
        # a run that finished just before the kill landed was not killed
        return proc.returncode == -signal.SIGKILL, proc.returncode, out_path.read_text()

    # -------------------------------------------------------------- the chain
    def run(self):
        """Kill, check and restart until the run completes. Returns the :class:`Tally`."""
        t_start = time.monotonic()
        run_args = ["run", self.deck, "--out", self.run_dir, "--progress", "0", "--force",
                    "--checkpoint-steps", self.every, *self.overrides]
        restart_args = ["restart", self.run_dir, "--progress", "0"]
        args, last = run_args, None    # last: the (name, step) the next restart must use
        n = 0
        resumed_at = []
        self.tally.resume_passes.append(resumed_at)
        while True:
            n += 1
            plan = self._plan(last[1] if last else 0) if self.tally.kills < self.kills else None
            before = set(self._temporaries())
            killed, rc, out = self._attempt(args, plan, n)
            where = f"attempt {n} ({' '.join(map(str, args[:1]))}, plan {plan}); output:\n{out[-3000:]}"
            if args is restart_args:
                m = _RESUMED.search(out)
                if m:
                    if (m.group(2), int(m.group(1))) != last:
                        raise ChainError(f"restart resumed from {m.group(2)} step {m.group(1)}, but the "
                                         f"newest complete checkpoint is {last}: {where}")
                    self.tally.resumed += 1
                    self.tally.from_prev += m.group(2) == "checkpoint.prev.h5"
                    resumed_at.append(int(m.group(1)))
                elif killed:
                    self.tally.before_resume_line += 1
                else:
                    raise ChainError(f"a restart did not say which checkpoint it used: {where}")
            if not killed:
                if rc != 0:
                    raise ChainError(f"exit code {rc}: {where}")
                break
            self._after_kill(plan, set(self._temporaries()) - before, where)
            if (self.run_dir / "summary.json").exists():   # killed after the last file was in place
                break
            now = expected_resume(self.run_dir)
            if last is not None and (now is None or now[1] < last[1]):
                raise ChainError(f"checkpoint went back from {last} to {now} after a kill: {where}")
            last = now
            if now is None:
                self._check_restart_refused(n)
                self.tally.fresh_starts += 1
                args = run_args
            else:
                args = restart_args
        self.tally.wall_s += time.monotonic() - t_start
        return self.tally

    def _check_restart_refused(self, n):
        """With checkpoint files of which none is usable, ``isosim restart`` must refuse
        clearly (exit 4), then the chain starts the run again (``run --force``). With no
        checkpoint file at all (killed before the first was written) a restart starts the run
        from the beginning (runner.restart_run): nothing to refuse, and the chain starts it
        again itself."""
        if not (self.run_dir / "deck.toml").exists():
            return
        if not any((self.run_dir / name).exists() for name in ("checkpoint.h5", "checkpoint.prev.h5")):
            return
        proc = subprocess.run(isosim(["restart", self.run_dir]), capture_output=True, text=True,
                              env=self.env, cwd=ROOT)
        if proc.returncode != 4 or "no usable checkpoint" not in proc.stderr or "Traceback" in proc.stderr:
            raise ChainError(f"attempt {n}: restart without a checkpoint gave exit {proc.returncode}:\n"
                             f"{proc.stdout}{proc.stderr}")

    def _checkpoint_id(self):
        """(inode, mtime) of checkpoint.h5: it changes with every completed write (a rename)."""
        try:
            st = os.stat(self.run_dir / "checkpoint.h5")
            return st.st_ino, st.st_mtime_ns
        except FileNotFoundError:
            return None

    def _temporaries(self):
        """Names of the temporary files in the run directory."""
        try:
            names = os.listdir(self.run_dir)
        except FileNotFoundError:
            return []
        with contextlib.suppress(FileNotFoundError):
            names += [f"records/{x}" for x in os.listdir(self.run_dir / "records")]
        return [x for x in names if x.startswith((*CKPT_TMP, *RESULT_TMPS))]

    def _after_kill(self, plan, new_tmps, where):
        """Count the kill, and check what it left (``new_tmps``: temporaries it left behind)."""
        t = self.tally
        t.kills += 1
        t.by_mode[plan[0]] = t.by_mode.get(plan[0], 0) + 1
        names = os.listdir(self.run_dir) if self.run_dir.exists() else []
        t.in_checkpoint_write += any(x.startswith(CKPT_TMP) for x in new_tmps)
        t.in_results_write += any(x.startswith(RESULT_TMPS) for x in new_tmps)
        t.temporaries_left += len(new_tmps)
        for x in new_tmps:    # garbage of a dead writer (isosim does not remove it; see the report)
            (self.run_dir / x).unlink()
        if "checkpoint.h5" in names:
            ok, why = complete_checkpoint(self.run_dir / "checkpoint.h5")
            if not ok:
                raise ChainError(f"checkpoint.h5 is not a complete checkpoint after a kill ({why}): {where}")
            t.checkpoints_checked += 1
        if "summary.json" in names:
            s = read_summary(self.run_dir)
            if s.get("status") != "complete" or "results.h5" not in names:
                raise ChainError(f"summary.json exists but the run is not complete: {where}")


def reference_run(deck, overrides, out, np_=None, env=None):
    """The uninterrupted run, without periodic checkpoints; returns (steps, wall seconds)."""
    t0 = time.monotonic()
    proc = subprocess.run(isosim(["run", deck, "--out", out, "--progress", "0", "--force", *overrides], np_),
                          capture_output=True, text=True, env=env or default_env(), cwd=ROOT)
    if proc.returncode != 0:
        raise ChainError(f"reference run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads((Path(out) / "summary.json").read_text())["steps"], time.monotonic() - t0


def kill_chain(model, workdir, kills, seed, np_=None, every_steps=None, env=None):
    """Reference run, then a kill chain of ``model``'s small case, then the bitwise comparison.

    The reference has no periodic checkpoints: the claim checked is that kills, restarts and
    checkpoints together leave the results of an undisturbed run unchanged.

    Returns
    -------
    (Tally, int, int)
        The counts, the number of result datasets compared, the checkpoint interval used.
    """
    deck, overrides, rtol = CASES[model]
    workdir = Path(workdir)
    rng = random.Random(seed)
    ref = workdir / f"{model}-ref"
    total, wall = reference_run(deck, overrides, ref, np_, env)
    # 1..5 steps, but enough checkpoints to spread the kills over
    every = every_steps or rng.randint(1, max(1, min(5, total // (2 * kills))))
    chain = Chain(deck, overrides, workdir / f"{model}-run", every, total, kills, rng.randrange(2**32),
                  np_=np_, startup_s=min(wall, 3.0 if np_ else 1.5), env=env)
    tally = chain.run()
    compared = compare_results(ref, chain.run_dir, rtol)
    for _ in range(5):
        # a fast (or loaded) machine can outrun the kill plan (writes over between two polls):
        # go through the run again, from a fresh start, until the kills asked for have
        # happened, a fifth of them inside checkpoint writes
        if tally.kills >= kills and tally.in_checkpoint_write >= kills // 5:
            break
        tally = chain.run()
        compared = compare_results(ref, chain.run_dir, rtol)
    return tally, compared, every


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", choices=sorted(CASES))
    p.add_argument("--kills", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--np", type=int, default=None, help="ranks under mpirun")
    p.add_argument("--every", type=int, default=None, help="--checkpoint-steps (default: seeded 1..5)")
    p.add_argument("--keep", metavar="DIR", help="work directory to keep (default: a temporary one)")
    a = p.parse_args(argv)
    import tempfile
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="killharness-"))
    tally, compared, every = kill_chain(a.model, work, a.kills, a.seed, a.np, a.every)
    print(f"{a.model} (checkpoint every {every} steps, {a.np or 1} rank(s)): {tally.line()}; "
          f"{compared} result datasets equal to the uninterrupted run's "
          f"({'bitwise' if CASES[a.model][2] == 0 else f'within {CASES[a.model][2]:g} relative'})")
    if not a.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
