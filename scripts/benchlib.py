"""What the benchmark scripts share: an environment for child isosim runs, a timed run of an
isosim command that measures other processes' load, and PETSc's -log_view table parsed.

Imported by ``scripts/bench_*.py`` (run as ``python scripts/bench_X.py``, so this folder is on
``sys.path``).
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


class CpuMonitor:
    """CPU seconds used on the whole machine (/proc/stat) minus those of this process and
    its waited-for children: other processes' load during a timed phase."""

    def __enter__(self):
        self.t = time.perf_counter()
        self.busy = self._busy()
        self.own = self._own()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.machine_cpu = self._busy() - self.busy
        self.own_cpu = self._own() - self.own
        self.foreign_cpu = max(self.machine_cpu - self.own_cpu, 0.0)
        self.foreign_cores = self.foreign_cpu / self.wall if self.wall > 0 else 0.0

    @staticmethod
    def _busy():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
        except OSError:
            return float("nan")
        return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")   # user nice system irq softirq

    @staticmethod
    def _own():
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def as_dict(self):
        return {"wall_s": self.wall, "own_cpu_s": self.own_cpu, "foreign_cpu_s": self.foreign_cpu,
                "foreign_cores": self.foreign_cores}

    def note(self):
        if not np.isfinite(self.foreign_cores):
            return ""
        return f"other processes used {self.foreign_cores:.2f} core(s) on average"


def child_env(petsc_options=""):
    """The environment of child runs: Open MPI as root and oversubscribed, one thread per
    process, Debian's PETSc if none is set, and extra ``PETSC_OPTIONS``."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    deb = Path("/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real")
    if "PETSC_DIR" not in env and deb.is_dir():
        env["PETSC_DIR"] = str(deb)                           # as the Makefile does
    if petsc_options:
        env["PETSC_OPTIONS"] = (env.get("PETSC_OPTIONS", "") + " " + petsc_options).strip()
    return env


def timed_run(cmd, out, env):
    """Run ``cmd`` (an isosim command writing ``out/summary.json``) from the repository root.

    Returns (wall s, summary dict, stdout, CpuMonitor); exits with the tail of the output if
    the command fails."""
    with CpuMonitor() as cpu:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-4000:], p.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"isosim failed (exit {p.returncode}): {' '.join(map(str, cmd[:8]))} ...")
    summary = json.loads((Path(out) / "summary.json").read_text())
    return cpu.wall, summary, p.stdout, cpu


def parse_log_view(text, events=None):
    """{event: {count, time_max_s, time_ratio, percent_time}} of PETSc's -log_view table and
    '_total_s'. ``events``: the events to keep (default: every event that ran, first stage)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if line.startswith("Time (sec):") and len(f) >= 3:
            out.setdefault("_total_s", float(f[2]))
        elif len(f) >= 11 and f[0][:1].isalpha() and f[0] not in out and (events is None or f[0] in events):
            try:
                ev = {"count": int(f[1]), "time_max_s": float(f[3]), "time_ratio": float(f[4]),
                      "percent_time": float(f[10])}
            except ValueError:
                continue
            if events is not None or ev["count"] > 0:
                out[f[0]] = ev
    return out


def finish(result, json_path, workdir, keep):
    """Write ``result`` to ``json_path`` (if given) and remove ``workdir`` unless ``keep``."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {json_path}")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
