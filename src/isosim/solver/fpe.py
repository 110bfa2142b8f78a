"""Floating-point failures inside a TSSolve: exit 3 with the last good state, not a traceback.

A non-finite number produced inside the integrator (a Jacobian that is singular in floating
point, a residual that overflows) reaches PETSc before isosim's per-step state check sees it:
PETSc's error-norm routine (``TSErrorWeightedNorm``) then raises error 72
(``PETSC_ERR_FP``, "Infinite or not-a-number generated in norm"), which used to escape as a
traceback with exit 1 and no checkpoint, after a screen of numpy RuntimeWarnings.

:func:`trap_fpe` wraps a ``TSSolve``: numpy's divide/invalid/overflow warnings are silenced
inside it (any non-finite value they announce is caught either by the driver's state check
after the step or here), and a PETSc error 72 or a numpy ``FloatingPointError`` becomes the
driver's ordinary failure path: the last good state is checkpointed and
:class:`isosim.errors.SolverFailure` (exit 3) says at which step and model time, in which
PETSc routine, and which of the problem's callbacks gives non-finite values at the last good
state (:func:`diagnose`). Error 72 is raised after a global reduction (a norm), so every rank
takes this path together.
"""

import contextlib

import numpy as np
from petsc4py import PETSc

from ..models.base import MATRIX_FREE

#: PETSc's error code for a floating-point exception (PETSC_ERR_FP).
PETSC_ERR_FP = 72


def _petsc_routine(exc):
    """The innermost PETSc routine and PETSc's own message of a petsc4py error, e.g.
    ("TSErrorWeightedNorm2", "Infinite or not-a-number generated in norma")."""
    routine, message = "", ""
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith("[") and "] " in line:
            text = line.split("] ", 1)[1]
            if "() at " in text:
                routine = text.split("()", 1)[0]
            elif text and text != "Floating point exception":
                message = text
    return routine, message


def _all(comm, flag):
    if comm.size == 1:
        return bool(flag)
    from mpi4py import MPI
    return bool(comm.allreduce(bool(flag), op=MPI.LAND))


def diagnose(driver):
    """Which of the problem's callbacks gives non-finite values at the last good state: the
    residual F(t, u, 0), or the exact solve with the Jacobian at shift 1/dt (the step size
    the integrator was trying). "" if both are finite, or the problem has neither (assembled
    and explicit problems). Collective."""
    p = driver.problem
    if p.kind != MATRIX_FREE:
        return ""
    u = driver.last_good.getArray(readonly=True).copy()
    t, dt = driver.last_good_time, driver.ts.getTimeStep() or driver.last_good_dt
    with np.errstate(all="ignore"):
        f = np.empty_like(u)
        p.ifunction(t, u, np.zeros_like(u), f)
        if not _all(driver.comm, np.isfinite(f).all()):
            return "the residual F(t, u, 0) of the last good state is not finite"
        shift = 1.0 / dt if dt > 0 else 1.0
        p.ijacobian(t, u, shift)
        y = np.empty_like(u)
        p.solve_jacobian(f, y)
        if not _all(driver.comm, np.isfinite(y).all()):
            return (f"the Jacobian at the last good state, with shift 1/dt = {shift:.3g}, is singular in floating "
                    "point (its exact solve gives infinite or NaN values): the fastest diffusion in the deck makes "
                    "its terms exceed the time-derivative terms by more than double precision can hold")
    return ""


@contextlib.contextmanager
def trap_fpe(driver):
    """Run one ``TSSolve`` of ``driver``; turn a floating-point failure into the driver's
    failure path (``driver._fail``: checkpoint of the last good state, SolverFailure, exit 3)."""
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            yield
        return
    except PETSc.Error as exc:
        if getattr(exc, "ierr", None) != PETSC_ERR_FP:
            raise
        routine, message = _petsc_routine(exc)
        if message.endswith(" norma"):      # PETSc appends the norm's name ("a") to its message
            message = message[:-1]
        what = f"a floating-point exception in PETSc's {routine or 'TSSolve'}" + (f" ({message})" if message else "")
    except FloatingPointError as exc:
        what = f"a floating-point exception in numpy ({exc})"
    ts = driver.ts
    why = diagnose(driver)
    detail = what + (f"; {why}" if why else "")
    driver._trouble = ("state", detail, ts.getTime(), ts.getStepNumber())
    driver._fail(PETSc.TS.ConvergedReason.DIVERGED_STEP_REJECTED)
