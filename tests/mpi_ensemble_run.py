"""Run a 4-member grain-exchange ensemble on however many ranks mpirun gives; rank 0
writes every member's final Delta, T_app and inventory to the JSON file named in argv[1].
(Members differ in rate and beta, so they have different stiffness.)"""

import copy
import json
import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from support import load_raw  # noqa: E402
from grain_helpers import run_decks  # noqa: E402

base = load_raw("xiong_fig1.toml")
base["grid"]["cells"] = 40
members = []
for rate, beta in [(1.0, 0.05), (1e3, 0.1), (1e5, 0.0), (1e7, 0.25)]:
    d = copy.deepcopy(base)
    d["temperature"]["rate_C_per_Myr"] = rate
    d["phases"]["opx"]["beta"] = beta
    members.append(d)
problem, rec = run_decks(members)
if MPI.COMM_WORLD.rank == 0:
    out = {"Delta": np.asarray(rec.series["Delta_permil"])[:, :, 1].tolist(),
           "T_app": np.asarray(rec.series["T_apparent_C"]).tolist(),
           "inventory": np.asarray(rec.series["inventory"]).tolist(),
           "class_starts": problem.class_starts.tolist()}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f)
