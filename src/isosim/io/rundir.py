"""The run directory: who owns it, what it holds, and what kind of job it is.

Every command that computes (run, sweep, invert, converge, fit-soret) writes into one
directory, and this module is the only place that decides

- which files are isosim's (:data:`RUN_FILES`, the record and unit folders): ``--force``
  removes exactly those, and a directory holding any of them is refused without it;
- who may write there: :func:`lock_run_dir` takes an exclusive ``flock`` on
  ``DIR/.isosim.lock`` for the life of the command, so a second run, sweep or restart on a
  directory in use is refused (with ``--force`` too). The kernel drops the lock when its
  holder dies, however it dies, so a killed job never leaves a stale lock behind;
- what the directory is: :func:`write_manifest` records, before the first step, the kind of
  job (``run``, ``sweep``, ``invert``, ...) and everything needed to resume it, and
  :func:`read_manifest` is what ``isosim restart`` dispatches on.

Functions here are local (rank 0 calls them, through :func:`isosim.parallel.collective`).
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from .. import __version__
from ..errors import RestartError, UsageError
from .atomic import write_text

#: The job description ``isosim restart`` reads (kind, command, options).
MANIFEST = "manifest.json"
#: Files isosim writes in a run directory (``--force`` removes exactly these).
RUN_FILES = ("deck.toml", "summary.json", "results.h5", "checkpoint.h5", "checkpoint.prev.h5",
             "checkpoint.refused.h5", MANIFEST, "run.json")
#: Folders of append-only parts: a run's recordings, a study's finished units.
PART_FOLDERS = ("records", "units")
#: The lock file (kept; only its flock matters).
LOCK = ".isosim.lock"
#: Kinds of job a directory can hold.
KINDS = ("run", "sweep", "invert", "converge", "fit-soret", "merge")

_held = {}


def lock_run_dir(run_dir):
    """Take the directory's lock for this process (creating the directory), or raise
    UsageError naming the process that holds it. Taking it twice in one process is allowed."""
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    if key in _held:
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"error: cannot create output directory {run_dir}: {exc.strerror or exc}") from None
    try:
        fh = open(run_dir / LOCK, "a+b", buffering=0)   # unbuffered: a full disk fails the write, not close
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            # nobody can write here, so nobody needs excluding: the job meets the same error at
            # its first write and reports it there (exit 4, the checkpoint it started from intact)
            return
        raise UsageError(f"error: cannot use output directory {run_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().decode(errors="replace").strip() or "another isosim process"
        fh.close()
        raise UsageError(f"error: {run_dir} is in use by {holder}; nothing was changed. Wait for it to "
                         f"finish, or stop it (kill -TERM <pid>) and continue with 'isosim restart {run_dir}'") \
            from None
    with contextlib.suppress(OSError):      # who holds it is for messages only: a full disk may refuse it
        fh.seek(0)
        fh.truncate()
        fh.write(f"isosim (pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv[1:])[:200]})\n"
                 .encode())
    _held[key] = fh


def unlock_run_dir(run_dir):
    """Release the lock (a second job in the same interpreter, e.g. from the Python API)."""
    fh = _held.pop(os.path.realpath(run_dir), None)
    if fh is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def prepare_run_dir(run_dir, force):
    """Lock and create the run directory; refuse to overwrite an earlier run without ``force``."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"error: output path {run_dir} exists and is not a directory")
    lock_run_dir(run_dir)
    existing = [f for f in RUN_FILES if (run_dir / f).exists()]
    parts = [p for folder in PART_FOLDERS for p in sorted((run_dir / folder).glob("*part-*"))]
    if (existing or parts) and not force:
        held = existing + sorted({f"{p.parent.name}/" for p in parts})
        raise UsageError(
            f"error: output directory {run_dir} already holds a run ({', '.join(held)}); "
            "nothing was overwritten. Use --force to replace it, --out for another directory, "
            f"or 'isosim restart {run_dir}' to continue it.")
    for p in [run_dir / f for f in existing] + parts:
        p.unlink()
    remove_stale_temporaries(run_dir)
    return run_dir


def remove_stale_temporaries(run_dir):
    """Remove the temporary files of writers that were killed (``.NAME.tmp.PID``). Only at a
    (re)start, when no other process writes in ``run_dir``. Returns their names."""
    removed = []
    for folder in (Path(run_dir), *(Path(run_dir) / f for f in PART_FOLDERS)):
        for p in sorted(folder.glob(".*.tmp.*")):
            name = p.name[1:].split(".tmp.")[0]
            if name in RUN_FILES or folder.name in PART_FOLDERS:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
                    removed.append(p.name)
    return removed


def write_manifest(run_dir, kind, **job):
    """Record what ``run_dir`` holds and how to resume it (atomic; before the first step)."""
    assert kind in KINDS, kind
    write_text(Path(run_dir) / MANIFEST, json.dumps(
        {"kind": kind, "isosim_version": __version__, "command": sys.argv, **job}, indent=1) + "\n")


def read_manifest(run_dir):
    """The manifest of ``run_dir`` (a dict with ``kind``), or raise RestartError (exit 2)
    saying why the directory cannot be resumed. A run directory of an isosim that wrote
    ``run.json`` instead is read as a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RestartError(f"error: {run_dir} is not a directory; expected the --out directory of a "
                           "run or study that stopped")
    path = run_dir / MANIFEST
    if not path.exists():
        if (run_dir / "run.json").exists() or (run_dir / "checkpoint.h5").exists():
            legacy = {}
            with contextlib.suppress(OSError, ValueError):
                legacy = json.loads((run_dir / "run.json").read_text())
            return {"kind": "run", "petsc_options": legacy.get("petsc_options", []) if isinstance(legacy, dict)
                    else []}
        raise RestartError(f"error: {run_dir} has no {MANIFEST}: it is not the directory of an isosim "
                           "run or study (or it stopped before it began); nothing to restart")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RestartError(f"error: {path} is damaged ({exc}); the job in {run_dir} cannot be resumed. "
                           "Start it again with --force") from None
    if not isinstance(manifest, dict) or manifest.get("kind") not in KINDS:
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        raise RestartError(f"error: {path}: kind {kind!r} is not one of {', '.join(KINDS)}; the job in "
                           f"{run_dir} cannot be resumed")
    return manifest


#: The file whose ``status`` says a job of each kind finished.
RESULT_FILE = {"run": "summary.json", "sweep": "summary.json", "invert": "summary.json", "merge": "summary.json",
               "converge": "converge.json", "fit-soret": "fit.json"}


def is_complete(run_dir, kind="run"):
    """True if ``run_dir``'s result file (summary.json; converge.json, fit.json) says the job
    finished (``"status": "complete"``)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        text = (Path(run_dir) / RESULT_FILE[kind]).read_text(encoding="utf-8")
        return json.loads(text).get("status") == "complete"
    return False
