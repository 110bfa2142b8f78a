"""isosim: PETSc/MPI-parallel finite-volume simulator for isotope fractionation by diffusion.

The Python API (:mod:`isosim.api`; docs/api.md)::

    import isosim
    r = isosim.run("input/xiong_fig1.toml", set={"temperature.rate_C_per_Myr": 100})
    r.summary["results"]["Delta_permil"], r.dataset("series")
    s = isosim.sweep("input/xiong_fig1.toml", vary={"temperature.rate_C_per_Myr": "log:1:1e7:8"})
    isosim.open_results("runs/fig1")
    isosim.load_deck("input/xiong_fig1.toml", overrides=["temperature.rate_C_per_Myr=100"])

The same functions serve the ``isosim`` command; bad decks raise :class:`DeckError`.
"""

__version__ = "0.1.0"

# One BLAS/OpenMP thread per MPI rank unless the user set a count: before numpy loads.
from .startup import limit_threads  # noqa: E402

limit_threads()

from .api import Results, open_results, run, sweep  # noqa: E402
from .deck import load_deck  # noqa: E402
from .errors import DeckError, IsosimError  # noqa: E402

__all__ = ["__version__", "DeckError", "IsosimError", "Results", "load_deck", "open_results", "run", "sweep"]
