"""Run ``isosim run DECK --out DIR`` with a bug planted on rank 1 only (its grain inventory
raises), for ``test_mpi.test_internal_error_on_one_rank_aborts_all``."""

import sys

from mpi4py import MPI

from isosim.cli import main
from isosim.models.grain_exchange import GrainExchangeProblem


def planted_bug(self, F):
    raise RuntimeError("planted bug")


if MPI.COMM_WORLD.rank == 1:
    GrainExchangeProblem.inventory_of = planted_bug      # every record of the inventory goes through it
sys.exit(main(sys.argv[1:]))
