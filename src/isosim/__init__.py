"""isosim: PETSc/MPI-parallel finite-volume simulator for isotope fractionation by diffusion.

Public façade::

    from isosim import load_deck
    deck = load_deck("input/xiong_fig1.toml", overrides=["temperature.rate_C_per_Myr=100"])

Running needs PETSc initialised with the right options; use the ``isosim`` command
(``isosim run DECK``), or :func:`isosim.runner.run_deck` after ``petsc4py.init``.
"""

__version__ = "0.1.0"

# One BLAS/OpenMP thread per MPI rank unless the user set a count: before numpy loads.
from .startup import limit_threads  # noqa: E402

limit_threads()

from .deck import load_deck  # noqa: E402

__all__ = ["__version__", "load_deck"]
