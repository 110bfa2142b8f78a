"""In-process runs of grain-exchange problems (PETSc initialises on import)."""

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc  # noqa: F401  (initialises PETSc)

from isosim.deck import validate
from isosim.models import GrainExchangeProblem, GrainRecorder
from isosim.solver.driver import Driver


def run_decks(raw_decks, problem_cls=GrainExchangeProblem, comm=MPI.COMM_WORLD):
    """Validate and integrate raw decks as one batch; return (problem, recorder)."""
    decks = [validate(r) for r in raw_decks]
    problem = problem_cls(decks, comm)
    rec = GrainRecorder(problem)
    drv = Driver(problem, rec, decks[0]["solver"], decks[0]["checkpoint"], write_checkpoint=None,
                 progress_seconds=0)
    try:
        drv.run()
    finally:
        drv.destroy()
    return problem, rec


def final_delta(rec, member=0, isotope=1):
    return float(np.asarray(rec.series["Delta_permil"])[-1, member, isotope])
