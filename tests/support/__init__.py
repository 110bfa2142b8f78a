"""What the tests share (one copy of each): paths, the environment a child process gets, the
command line run as a user runs it (optionally under mpirun), summaries read back, PNG checks.

Imported by the test files (``from support import run_cli, INPUT, ...``) and by conftest.py.
The in-process way to integrate decks is the library's own
:func:`isosim.solver.driver.integrated`, not a copy here.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INPUT = ROOT / "input"

#: Open MPI as root (containers, CI) and more ranks than cores: the variables every child gets
OPEN_MPI = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1"}
for _name, _value in OPEN_MPI.items():
    os.environ.setdefault(_name, _value)

MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")

#: The environment before any test initialises MPI in this process. Open MPI's singleton
#: initialisation adds OMPI_/PMIX_ variables that make a child mpirun fail silently (exit 1),
#: so every subprocess gets this snapshot.
CLEAN_ENV = dict(os.environ)

# isosim limits BLAS threads (importing it, before numpy loads) and finds PETSc itself, as
# for a user; the children above do the same on their own (PETSC_DIR is not in CLEAN_ENV
# unless the user set it). In-process tests import petsc4py, so it is found here too.
import isosim  # noqa: E402,F401
from isosim.startup import find_petsc  # noqa: E402

find_petsc()


def isosim_cmd(args, np=None):
    cmd = [sys.executable, "-m", "isosim", *map(str, args)]
    if np:
        cmd = [MPIRUN, "-n", str(np), *cmd]
    return cmd


def run_cli(args, np=None, cwd=None, timeout=600, check=None):
    """Run ``isosim ARGS`` (under ``mpirun -n np`` if given); return CompletedProcess."""
    proc = subprocess.run(isosim_cmd(args, np), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=CLEAN_ENV)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"exit {proc.returncode} != {check}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def load_raw(name):
    """A shipped deck as a raw dict (before validation)."""
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    return tomllib.loads((INPUT / name).read_text())


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path):
    """``path`` exists, is a PNG and is not a blank canvas."""
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 10_000, f"{path} is only {len(data)} bytes: an empty figure?"


def check_plot_dir(out, expected):
    """``isosim plot OUT`` writes exactly the ``expected`` PNGs into OUT/figures, names each
    one it wrote, and leaves no temporary file behind."""
    proc = run_cli(["plot", out], check=0)
    for name in expected:
        check_png(out / "figures" / name)
        assert str(out / "figures" / name) in proc.stdout
    assert sorted(p.name for p in (out / "figures").glob("*.png")) == sorted(expected)
    assert not list((out / "figures").glob(".*")), "a temporary file was left behind"


needs_mpirun = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found")


def child_env(**changes):
    """The environment of a child process: :data:`CLEAN_ENV` (Open MPI allowed as root and
    oversubscribed) with ``changes`` (a value of None removes the variable)."""
    env = dict(CLEAN_ENV)
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def read_summary(run_dir, name="summary.json"):
    """The ``summary.json`` (or another JSON result file) of an output directory, parsed."""
    return json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
