"""In-process runs of grain-exchange problems (PETSc initialises on import)."""

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc  # noqa: F401  (initialises PETSc)

from isosim.deck import validate
from isosim.models import GrainExchangeProblem, GrainRecorder
from isosim.solver.driver import integrated


#: Relative inventory drift allowed over a whole run. Cell unknowns: every face flux cancels
#: in the volume sum, measured 1-2e-13. Eigenvector unknowns: the same identities hold only
#: to round-off of sums over modes whose rates span ~1e5 (lam_max / lam_min times kappa dt),
#: measured 2-5e-12 (ARK3/ARK5, exact or interpolated series) at 10-100 degC/Myr and up to
#: 2.7e-11 at 1 degC/Myr (the stiffest members). Both are round-off: the time integration
#: error of Delta is ~1e-8 relative.
DRIFT = {"cells": 1e-12, "eigen": 1e-10}


def run_decks(raw_decks, problem_cls=GrainExchangeProblem, comm=MPI.COMM_WORLD):
    """Validate and integrate raw decks as one batch; return (problem, recorder)."""
    decks = [validate(r) for r in raw_decks]
    with integrated(decks, comm, problem_cls=problem_cls, recorder_cls=GrainRecorder) as (problem, rec, _):
        return problem, rec


def final_delta(rec, member=0, isotope=1):
    return float(np.asarray(rec.series["Delta_permil"])[-1, member, isotope])
