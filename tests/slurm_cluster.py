"""A real one-node SLURM for the tests: munged, slurmctld and slurmd started in a temporary
directory, from Debian's packages (installed with apt-get when missing and we are root).

Nothing outside the directory is touched: the munge key and socket, slurm.conf, state, spool,
logs and pid files all live in it, and the daemons listen on free ports, so the cluster does
not collide with a SLURM already on the machine. ``SLURM_CONF`` in :attr:`SlurmCluster.env`
points the client commands (sbatch, squeue, scontrol) at it.

Run by hand for experiments: ``python tests/slurm_cluster.py /tmp/slurm`` starts a cluster
and prints the ``export SLURM_CONF=...`` line; Ctrl-C stops it.
"""

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
PROGRAMS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "munged")


class Unavailable(Exception):
    """SLURM cannot be installed here (the tests skip, with this reason)."""


def _which(prog):
    return shutil.which(prog) or shutil.which(prog, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_installed(log=print):
    """Install Debian's SLURM and munge if a program is missing.

    Raises :class:`Unavailable` where installing is impossible (not Linux, not root, no
    apt-get); a failing apt-get raises RuntimeError, since SLURM *should* be installable then.
    """
    missing = [p for p in PROGRAMS if _which(p) is None]
    if not missing:
        return
    if platform.system() != "Linux":
        raise Unavailable(f"SLURM programs missing ({', '.join(missing)}) and this is not Linux")
    if os.geteuid() != 0:
        raise Unavailable(f"SLURM programs missing ({', '.join(missing)}) and not root, so apt-get cannot "
                          "install them")
    if _which("apt-get") is None:
        raise Unavailable(f"SLURM programs missing ({', '.join(missing)}) and no apt-get")
    if os.stat("/").st_mode & 0o005 != 0o005:
        # munge's and slurm's package scripts run programs as their own users, who cannot reach
        # /bin/sh through a root directory only root may enter (seen in a chroot made with
        # mktemp -d, mode 0700: 'su: failed to execute /bin/sh: Permission denied'); a real
        # system's / is 0755
        raise Unavailable(f"SLURM programs missing ({', '.join(missing)}) and the root directory has mode "
                          f"{os.stat('/').st_mode & 0o777:o}: the packages' set-up cannot run as their users")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    log(f"[slurm] installing {' '.join(PACKAGES)} (missing: {', '.join(missing)})")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:      # stale package lists: update once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    still = [p for p in PROGRAMS if _which(p) is None]
    if proc.returncode != 0 or still:
        raise RuntimeError(f"apt-get could not install SLURM (exit {proc.returncode}; missing {still}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb():
    with open("/proc/meminfo") as fh:
        kib = int(re.search(r"MemTotal:\s+(\d+)", fh.read()).group(1))
    return int(kib / 1024 * 0.9)        # what jobs may use, below the total slurmd measures


class SlurmCluster:
    """One node (this host, 2 CPUs) and one partition ``test``, all state in ``root``.

    Parameters
    ----------
    root : Path
        An empty directory (mode 0700 by the caller's umask is fine: munged checks that
        its key and socket directory are not writable by others).
    """

    PARTITION = "test"

    def __init__(self, root):
        self.root = Path(root).resolve()
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.procs = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    # ------------------------------------------------------------------ set-up
    def _write_conf(self):
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        settings = {
            "ClusterName": "isosimtest",
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": _free_port(), "SlurmdPort": _free_port(),
            "SlurmUser": "root", "SlurmdUser": "root",
            "AuthType": "auth/munge", "CredType": "cred/munge",
            # cred_expire is also how long a requeued job waits before it may start again (default 120 s)
            "AuthInfo": f"socket={self.munge_socket},cred_expire=10",
            "StateSaveLocation": r / "state", "SlurmdSpoolDir": r / "spool",
            "SlurmctldPidFile": r / "slurmctld.pid", "SlurmdPidFile": r / "slurmd.pid",
            "SlurmctldLogFile": r / "log" / "slurmctld.log", "SlurmdLogFile": r / "log" / "slurmd.log",
            "SlurmctldDebug": "info", "SlurmdDebug": "info",
            # no cgroups: processes are tracked through /proc, tasks are not bound
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none", "AccountingStorageType": "accounting_storage/none",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core",
            "MpiDefault": "none", "ReturnToService": 2,
            # a node with fewer CPUs or less memory than declared is not drained (small CI machines)
            "SlurmdParameters": "config_overrides",
            "JobRequeue": 1,
            # finished jobs stay visible to scontrol for a minute (long enough to read their state)
            "MinJobAge": 60,
            # time limits: kill as soon as the limit is seen (no grace minutes), SIGKILL 5 s after
            # SIGTERM; the limit itself is checked by slurmctld every 30 s (not configurable)
            "OverTimeLimit": 0, "KillWait": 5,
            # schedule pending (e.g. requeued) jobs within seconds, not the default minute
            "SchedulerParameters": "sched_interval=2,sched_min_interval=100000",
            "SchedulerType": "sched/builtin",
        }
        lines = [f"{k}={v}" for k, v in settings.items()]
        lines += [f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_memory_mb()} State=UNKNOWN",
                  f"PartitionName={self.PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP"]
        self.conf.write_text("\n".join(lines) + "\n")

    def _start_munge(self):
        d = self.munge_socket.parent
        d.mkdir(mode=0o755, parents=True, exist_ok=True)
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._spawn("munged", ["munged", "-F", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
                               f"--pid-file={d / 'munged.pid'}", f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={d / 'munged.seed'}"])
        self._wait(lambda: self.munge_socket.exists(), 20, "munged did not create its socket")

    def _spawn(self, name, cmd):
        log = open(self.root / "log" / f"{name}.out", "w")
        # a session of its own: a Ctrl-C in the terminal does not reach the daemons directly
        self.procs[name] = subprocess.Popen([_which(cmd[0]), *cmd[1:]], stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)
        log.close()

    def _wait(self, ok, timeout, what):
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if ok():
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                break
            time.sleep(0.5)
        raise RuntimeError(f"{what} (after {timeout} s)\n{self.logs()}")

    def start(self, timeout=60):
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "log").mkdir(exist_ok=True)
        self._write_conf()
        self._start_munge()
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(lambda: self.node_state() == "idle", timeout, "the SLURM node did not become idle")
        return self

    # ------------------------------------------------------------------ use
    def run(self, *cmd, check=True, timeout=60):
        """A SLURM client command against this cluster; returns its stdout."""
        p = subprocess.run([_which(cmd[0]), *map(str, cmd[1:])], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def node_state(self):
        p = subprocess.run([_which("sinfo"), "-h", "-N", "-o", "%T"], env=self.env, capture_output=True,
                           text=True, timeout=30)
        return p.stdout.strip() if p.returncode == 0 else ""

    def sbatch(self, *args, cwd=None, env=None):
        """Submit; returns the job id. ``env`` (default: this process's) is what the job sees."""
        p = subprocess.run([_which("sbatch"), "--parsable", *map(str, args)], cwd=cwd, capture_output=True,
                           text=True, timeout=60, env=dict(env or os.environ, SLURM_CONF=str(self.conf)))
        if p.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}")
        return p.stdout.strip().split(";")[0]

    def jobs(self, job_id):
        """{job id: fields of ``scontrol show job``} of a job and, for an array, its tasks."""
        p = subprocess.run([_which("scontrol"), "-o", "show", "job", str(job_id)], env=self.env,
                           capture_output=True, text=True, timeout=30)
        out = {}
        for line in p.stdout.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "JobId" in fields:
                out[fields["JobId"]] = fields
        return out

    def wait(self, job_id, timeout):
        """Wait until the job (every task of an array) has ended; return its records."""
        done = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE"}
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            jobs = self.jobs(job_id)
            if jobs and all(j.get("JobState") in done for j in jobs.values()):
                return jobs
            time.sleep(1)
        raise RuntimeError(f"job {job_id} did not end within {timeout} s: {self.jobs(job_id)}\n{self.logs()}")

    def logs(self, tail=40):
        """The end of every daemon log (for failure messages)."""
        out = []
        for f in sorted((self.root / "log").glob("*")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    # ------------------------------------------------------------------ tear-down
    def stop(self):
        """Cancel this cluster's jobs, then stop slurmd, slurmctld and munged (ours only, by pid)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            subprocess.run([_which("scancel"), "--full", "--user", "root"], env=self.env, capture_output=True,
                           timeout=30)
            t_end = time.monotonic() + 20
            while time.monotonic() < t_end and self.run("squeue", "-h", check=False).strip():
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


if __name__ == "__main__":
    cluster = SlurmCluster(sys.argv[1] if len(sys.argv) > 1 else "/tmp/isosim-slurm")
    ensure_installed()
    try:
        cluster.start()
        print(f"export SLURM_CONF={cluster.conf}\n(Ctrl-C stops the cluster)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
