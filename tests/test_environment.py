"""The environment a user has: isosim finds PETSc itself, says in one line when it cannot,
limits BLAS threads per rank, and the set-up's venv protects the Debian packages it uses."""

import subprocess
import sys
from pathlib import Path

import pytest

from support import CLEAN_ENV, INPUT, MPIRUN, ROOT, needs_mpirun

import isosim.startup as startup

SYSTEM_PYTHON = Path("/usr/bin/python3")
DEBIAN_PETSC = sorted(Path("/usr/lib/petscdir").glob("petsc*/*-real"))


def _env(**changes):
    env = {k: v for k, v in CLEAN_ENV.items() if k != "PETSC_DIR"}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _isosim(python, args, env, np_=None, timeout=300):
    cmd = [str(python), "-m", "isosim", *map(str, args)]
    if np_:
        cmd = [MPIRUN, "-n", str(np_), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def _assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "PETSC ERROR" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_run_without_petsc_dir(tmp_path):
    """The venv's interpreter (what `isosim` and the README's commands use), no PETSC_DIR."""
    proc = _isosim(sys.executable, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r"], _env())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "summary.json").is_file()


@pytest.mark.skipif(not (SYSTEM_PYTHON.exists() and DEBIAN_PETSC), reason="needs Debian's python3 and PETSc")
def test_system_python_finds_debian_petsc(tmp_path):
    """Debian's own python3 has no help from the venv (no .pth for petsc4py): isosim looks
    for PETSc in the usual places, as it must for a user who never made a venv."""
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import petsc4py"], capture_output=True, env=_env())
    assert probe.returncode != 0, "petsc4py importable without PETSC_DIR: the discovery is not exercised"
    env = _env(PYTHONPATH=str(ROOT / "src"))
    proc = _isosim(SYSTEM_PYTHON, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r"], env)
    assert proc.returncode == 0, proc.stderr
    # ... and a PETSC_DIR the user set is respected: wrong means a one-line error, not a fallback
    env = _env(PYTHONPATH=str(ROOT / "src"), PETSC_DIR=str(tmp_path / "no-petsc-here"))
    proc = _isosim(SYSTEM_PYTHON, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r2"], env)
    _assert_one_line_error(proc, "PETSC_DIR=", "no-petsc-here", "holds no petsc4py")
    assert not (tmp_path / "r2").exists(), "nothing may be written when PETSc cannot start"


def _shadow(tmp_path, init_text, petsc_text=None):
    pkg = tmp_path / "shadow" / "petsc4py"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init_text)
    if petsc_text is not None:
        (pkg / "PETSc.py").write_text(petsc_text)
    return str(tmp_path / "shadow")


def test_unimportable_petsc4py_is_one_line_exit_2(tmp_path):
    shadow = _shadow(tmp_path, "raise ImportError('libpetsc.so.3.18: cannot open shared object file')\n")
    proc = _isosim(sys.executable, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r"],
                   _env(PYTHONPATH=shadow))
    _assert_one_line_error(proc, "cannot import petsc4py", "python3-petsc4py")
    assert not (tmp_path / "r").exists()


def test_broken_petsc_library_is_one_line_exit_2(tmp_path):
    """petsc4py imports but its PETSc extension does not load (a PETSc upgraded under it)."""
    shadow = _shadow(tmp_path, "def init(args=None, comm=None):\n    pass\n",
                     "raise ImportError('undefined symbol: PetscOptionsSetValue')\n")
    proc = _isosim(sys.executable, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r"],
                   _env(PYTHONPATH=shadow))
    _assert_one_line_error(proc, "PETSc cannot be loaded", "undefined symbol")


@needs_mpirun
def test_unimportable_petsc4py_under_mpirun_prints_once(tmp_path):
    shadow = _shadow(tmp_path, "raise ImportError('no PETSc here')\n")
    proc = _isosim(sys.executable, ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r"],
                   _env(PYTHONPATH=shadow), np_=2)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("cannot import petsc4py") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_and_keys_need_no_petsc(tmp_path):
    """Validating a deck works on a machine without PETSc (a login node, a laptop)."""
    shadow = _shadow(tmp_path, "raise ImportError('no PETSc here')\n")
    proc = _isosim(sys.executable, ["check", "--quiet", INPUT / "xiong_fig1.toml"], _env(PYTHONPATH=shadow))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("user_value", [None, "3"])
def test_blas_threads_one_per_rank_unless_user_says(user_value):
    code = ("import isosim, os, numpy; from isosim.startup import THREAD_VARIABLES; "
            "print(' '.join(os.environ[v] for v in THREAD_VARIABLES))")
    env = {k: v for k, v in _env().items() if k not in startup.THREAD_VARIABLES}
    if user_value:
        env["OPENBLAS_NUM_THREADS"] = user_value
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    values = out.split()
    expected = ["1"] * len(startup.THREAD_VARIABLES)
    if user_value:
        expected[startup.THREAD_VARIABLES.index("OPENBLAS_NUM_THREADS")] = user_value
    assert values == expected


def test_petsc_candidates_prefer_newest(tmp_path, monkeypatch):
    for version in ("petsc3.18", "petsc3.20", "petsc3.9"):
        site = tmp_path / version / "x86_64-linux-gnu-real" / "lib" / "python3" / "dist-packages" / "petsc4py"
        site.mkdir(parents=True)
        (site / "__init__.py").write_text("")
    (tmp_path / "petsc3.22" / "x86_64-linux-gnu-real").mkdir(parents=True)    # no petsc4py: skipped
    monkeypatch.setattr(startup, "PETSC_PLACES", (str(tmp_path / "petsc*" / "*-real"),))
    names = [Path(p).parent.name for p in startup.petsc_candidates()]
    assert names == ["petsc3.20", "petsc3.18", "petsc3.9"]


VENV = ROOT / ".venv"


@pytest.mark.skipif(not (VENV / "pip.conf").is_file() or Path(sys.prefix) != VENV,
                    reason="tests the venv scripts/setup.sh makes")
def test_venv_pip_keeps_debian_packages():
    """The venv's pip is constrained to the Debian builds isosim runs on (so `pip install
    xarray` cannot pull numpy 2 over them) and sees h5py and petsc4py as installed."""
    from importlib.metadata import version
    config = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                            text=True, env=_env(), check=True).stdout
    assert f"install.constraint='{VENV}/constraints.txt'" in config, config
    pins = dict(line.split("==") for line in (VENV / "constraints.txt").read_text().splitlines()
                if "==" in line)
    assert set(pins) == {"numpy", "scipy", "h5py", "mpi4py", "petsc4py"}
    for dist, pinned in pins.items():
        assert version(dist) == pinned
    listed = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True, env=_env(), check=True).stdout.splitlines()
    for dist in ("h5py", "petsc4py"):
        assert f"{dist}=={pins[dist]}" in listed


@needs_mpirun
@pytest.mark.skipif(not (VENV / "bin" / "mpirun").is_file(), reason="tests the venv scripts/setup.sh makes")
def test_activated_venv_runs_mpirun(tmp_path):
    """What the README says: `. .venv/bin/activate`, then `mpirun -n 2 isosim run ...`, with
    no Open MPI variables set by the user (as root the guard would refuse without them)."""
    env = {k: v for k, v in _env().items() if not k.startswith("OMPI_")}
    script = (f". {VENV}/bin/activate && cd {tmp_path} && "
              f"mpirun -n 2 isosim run {INPUT / 'xiong_fig1.toml'} --out r --progress 0")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "on 2 rank(s)" in proc.stdout
