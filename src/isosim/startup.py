"""Start-up of an isosim process: BLAS threads, finding PETSc, initialising MPI and PETSc.

Everything that must happen in a fixed order before the first computation lives here, so
that the command line, the Python API and the tests start the same way:

1. :func:`limit_threads` (on import of :mod:`isosim`, before numpy loads): one BLAS/OpenMP
   thread per process, because isosim's parallelism is its MPI ranks; threads started by
   numpy's BLAS on top compete with the ranks (measured: a 4096-member sweep 27.8 s with
   OpenBLAS's default threads, 23.9 s with one). A variable the user set is kept.
2. :func:`find_petsc`: make ``petsc4py`` importable. Debian's petsc4py is found through
   ``PETSC_DIR`` (its ``.pth`` file falls back on ``/usr/lib/petsc``, which only the
   ``petsc-dev`` package creates); where ``PETSC_DIR`` is unset, the usual installation
   places are searched.
3. :func:`init_petsc`: MPI, then PETSc with the pass-through options.

This module imports neither numpy nor PETSc at import time.
"""

import glob
import os
import re
import sys
from pathlib import Path

from .errors import EnvironmentProblem

#: Thread-count variables of the BLAS/OpenMP libraries numpy and scipy may load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

#: Where PETSc installations with petsc4py are looked for when PETSC_DIR is unset (globs,
#: newest version first within each): Debian/Ubuntu packages, then common manual prefixes.
PETSC_PLACES = ("/usr/lib/petsc", "/usr/lib/petscdir/petsc*/*-real", "/usr/lib/petscdir/*",
                "/usr/local/petsc", "/usr/local/lib/petsc", "/opt/petsc", "/opt/petsc/*")

#: The one-line advice when no petsc4py can be found.
INSTALL_HINT = ("install it (Debian/Ubuntu: apt install python3-petsc4py; a cluster: module load "
                "py-petsc4py; PyPI: pip install petsc petsc4py) or set PETSC_DIR to a PETSc that has it")


def limit_threads():
    """Default every BLAS/OpenMP thread count to 1 (a value already set is kept).

    Effective only before numpy is imported; :mod:`isosim` calls it first thing. Set e.g.
    ``OPENBLAS_NUM_THREADS=4`` to give a serial run more threads on purpose.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def _petsc4py_site(petsc_dir):
    """The directory that holds ``petsc4py`` inside a PETSc installation, or None."""
    for sub in ("lib/python3/dist-packages", "lib/python3/site-packages",
                f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages", "lib"):
        site = Path(petsc_dir) / sub
        if (site / "petsc4py" / "__init__.py").is_file():
            return site
    return None


def _version_key(path):
    """Sort key: the numbers in a path, so that petsc3.20 comes after petsc3.18."""
    return [int(n) for n in re.findall(r"\d+", path)]


def petsc_candidates():
    """Installed PETSc directories that contain petsc4py, in the order they are tried."""
    found = []
    for pattern in PETSC_PLACES:
        for d in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            real = os.path.realpath(d)
            if _petsc4py_site(real) is not None and real not in found:
                found.append(real)
    return found


def find_petsc():
    """Make ``import petsc4py`` work, or raise :class:`EnvironmentProblem` (exit 2, one line).

    petsc4py already importable (a pip install, a module, Debian's with ``PETSC_DIR`` set):
    nothing changes. Otherwise, with ``PETSC_DIR`` unset, the first installation of
    :data:`PETSC_PLACES` that has petsc4py is used: its directory is put on ``sys.path`` and
    into ``PETSC_DIR`` (inherited by child processes). A ``PETSC_DIR`` the user set is never
    replaced: if it has no petsc4py, that is the error reported.
    """
    try:
        import petsc4py  # noqa: F401
        return
    except ImportError:
        pass
    user_dir = os.environ.get("PETSC_DIR")
    if user_dir:
        site = _petsc4py_site(user_dir)
        if site is None:
            raise EnvironmentProblem(f"error: cannot import petsc4py: PETSC_DIR={user_dir} holds no petsc4py; "
                                     "unset PETSC_DIR to use an installed PETSc, or point it at one with petsc4py")
        candidates = [user_dir]
    else:
        candidates = petsc_candidates()
        if not candidates:
            raise EnvironmentProblem(f"error: cannot import petsc4py and found no PETSc with it: {INSTALL_HINT}")
    petsc_dir = candidates[0]
    sys.path.append(str(_petsc4py_site(petsc_dir)))
    os.environ["PETSC_DIR"] = petsc_dir
    try:
        import petsc4py  # noqa: F401,F811
    except ImportError as exc:
        raise EnvironmentProblem(f"error: cannot import petsc4py from PETSC_DIR={petsc_dir} ({exc}); "
                                 f"{INSTALL_HINT}") from None


def init_petsc(options=(), model=None, solver=None):
    """Initialise MPI and PETSc with the pass-through options; return ``MPI.COMM_WORLD``.

    Collective over MPI_COMM_WORLD (MPI_Init). The options are checked first
    (:func:`isosim.solver.options.check_petsc_options`, for ``model``'s solver if given): a
    bad one is a UsageError on every rank, nothing run. A PETSc that cannot be loaded is an
    :class:`EnvironmentProblem`. Calling it again (a second run in one interpreter) only
    checks the options: PETSc's options database is then updated, not re-created.
    """
    find_petsc()
    try:
        from mpi4py import MPI  # MPI first, so PETSc joins the same world
    except ImportError as exc:
        raise EnvironmentProblem(f"error: cannot import mpi4py ({exc}); install it (Debian: apt install "
                                 "python3-mpi4py; PyPI: pip install mpi4py) built for the MPI of your PETSc") from None
    import petsc4py
    try:
        petsc4py.init([sys.argv[0] if sys.argv and sys.argv[0] else "isosim"] + list(options))
        from petsc4py import PETSc  # noqa: F401  (loads libpetsc: a broken installation fails here)
    except ImportError as exc:
        raise EnvironmentProblem(f"error: petsc4py is installed but PETSc cannot be loaded ({exc}); "
                                 f"{INSTALL_HINT}") from None
    from .solver.options import check_petsc_options
    check_petsc_options(options, model, solver)
    return MPI.COMM_WORLD


#: Variables in which mpirun/srun give each process its rank before MPI_Init.
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")


def world_rank():
    """This process's rank in MPI_COMM_WORLD, so that errors print once.

    Before MPI starts (a deck error, a missing petsc4py) the launcher's variables tell it.
    """
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized():
        return mpi.COMM_WORLD.rank
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0
