"""A worked example of isosim's Python API (docs/api.md), as one would type it in a notebook.

Run it as it is (``python docs/examples/api_example.py``) or on several ranks
(``mpirun -n 2 python docs/examples/api_example.py``): every rank runs the same calls.
The tests run it both ways (tests/test_api.py).
"""

from pathlib import Path

import isosim

DECKS = Path(__file__).resolve().parents[2] / "input"

# One run of the paper's Fig. 1 case at 100 degC/Myr, into a temporary directory.
fig1 = isosim.run(DECKS / "xiong_fig1.toml", set={"temperature.rate_C_per_Myr": 100.0, "grid.cells": 40})
print(fig1)
print("final Delta =", round(fig1.summary["results"]["Delta_permil"], 4), "permil")

# Its time series as an xarray Dataset: dimensions member, time, isotope, ... with units.
series = fig1.dataset("series")
print(series["Delta_permil"].dims, series["Delta_permil"].attrs.get("units"))

# A sweep over the cooling rate: one vectorised ensemble.
sweep = isosim.sweep(DECKS / "xiong_fig1.toml", vary={"temperature.rate_C_per_Myr": "log:1:1e7:8"},
                     set={"grid.cells": 40})
for member in sweep.summary["members"]:
    print(f"{member['params']['temperature.rate_C_per_Myr']:>12.4g} degC/Myr: "
          f"Delta = {member['Delta_permil']:.4f} permil, T_app = {member['T_apparent_C']:.1f} degC")

# A mistake in a deck is an exception with the command line's message, before anything runs.
try:
    isosim.run(DECKS / "xiong_fig1.toml", set={"phases.opx.beta": 0.9})
except isosim.DeckError as err:
    print(str(err).splitlines()[1].strip())

# Reading back later (or what the isosim command wrote).
again = isosim.open_results(sweep.path)
print(again.kind, again.summary["n_members"], "members")
