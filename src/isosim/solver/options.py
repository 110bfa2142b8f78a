"""Checking the pass-through PETSc options before anything runs.

PETSc reads ``-ts_type rosw -ts_rtol 1e-9 ...`` only when a solver is set up. Left alone, a
mistake there (an unknown type, a word where a number belongs, an explicit integrator for a
model with an algebraic or stiff implicit system, a preconditioner the matrix-free Jacobian
cannot provide) ends the run with a PETSc traceback, and Open MPI's abort, after the run
directory was made. :func:`check_petsc_options` applies the options to a one-unknown
*probe* set up like the model's own solver (same TS type, same kind of function, Jacobian
and linear solver as :class:`isosim.solver.driver.Driver` uses) and turns PETSc's
complaint into a :class:`~isosim.errors.UsageError` (exit code 2) that names the options.

Not collective: every rank probes on ``PETSc.COMM_SELF``. Under mpirun every rank has the
same options, so every rank reaches the same verdict without communicating.
"""

import re

from ..deck.common import FIXED_STEP_TYPES
from ..errors import UsageError
from .unused import suggestion, unused_options
from ..registry import model_spec

#: Lines of a petsc4py error that locate it in PETSc's sources ("TSSetUp() at ts.c:2573").
_WHERE = re.compile(r"^\w+\(\) at \S+:\d+$")


class _Identity:
    """Python Mat and PC context of the probe: J = I and its exact inverse."""

    def mult(self, mat, x, y):
        x.copy(y)

    def setUp(self, pc):
        pass

    def apply(self, pc, x, y):
        x.copy(y)


def _reason(exc):
    """PETSc's own words from a petsc4py error: the message lines, not the call stack."""
    lines = [ln.split("] ", 1)[-1].strip() for ln in str(exc).splitlines()[1:]]
    said = [ln for ln in lines if ln and not _WHERE.match(ln) and not ln.startswith("See https")]
    return ("; ".join(said) or str(exc).splitlines()[0]).rstrip(".")


def _kind(model):
    """How the model's problem is integrated: 'explicit', 'assembled' or 'matrix-free'."""
    if model is None:
        return None
    return model_spec(model).problem_class.kind


def check_petsc_options(options, model=None, solver=None):
    """Raise UsageError if PETSc rejects ``options`` for the model's solver.

    Parameters
    ----------
    options : list of str
        The pass-through options (already in PETSc's options database: call after
        ``petsc4py.init``).
    model : str, optional
        Deck model; without it only the option values themselves are checked (unknown
        types, malformed numbers), as for any TS.
    solver : dict, optional
        The deck's ``[solver]`` table (``ts_type``, ``rk_type``, ``initial_dt``, ``max_steps``):
        the probe starts from the deck's settings, as the run does, and a method with fixed
        steps is refused when its steps would exceed the step limit.
    """
    if not options:
        return
    from petsc4py import PETSc
    kind = _kind(model)
    if solver is None and model is not None:
        from ..deck import MODELS
        solver = MODELS[model].SCHEMA.fields["solver"].validate("solver", {}, [])
    solver = solver or {}
    objs = []
    shown = " ".join(options)
    try:
        u = PETSc.Vec().createSeq(1, comm=PETSc.COMM_SELF)
        f = u.duplicate()
        ts = PETSc.TS().create(comm=PETSc.COMM_SELF)
        objs += [u, f, ts]
        if solver.get("ts_type"):
            ts.setType(solver["ts_type"])
        J = None
        if kind == "explicit":
            ts.setRHSFunction(lambda ts, t, x, y: y.set(0.0), f)
            if solver.get("rk_type"):
                ts.setRKType(solver["rk_type"])
        elif kind is not None:
            if kind == "assembled":
                J = PETSc.Mat().createAIJ((1, 1), nnz=1, comm=PETSc.COMM_SELF)
                J.setValue(0, 0, 1.0)
                J.assemble()
            else:
                J = PETSc.Mat().createPython((1, 1), context=_Identity(), comm=PETSc.COMM_SELF)
                J.setUp()
            objs.append(J)
            ts.setIFunction(lambda ts, t, x, xdot, y: xdot.copy(y), f)
            ts.setIJacobian(lambda ts, t, x, xdot, shift, A, P: None, J, J)
            ksp = ts.getSNES().getKSP()
            if kind == "assembled":
                ksp.setType(PETSc.KSP.Type.GMRES)
                ksp.getPC().setType(PETSc.PC.Type.BJACOBI)
            else:
                ksp.setType(PETSc.KSP.Type.PREONLY)
                ksp.getPC().setType(PETSc.PC.Type.PYTHON)
                ksp.getPC().setPythonContext(_Identity())
        end = 1.0                                # every model's TS clock runs from 0 to 1
        ts.setMaxTime(end)
        ts.setTimeStep(solver.get("initial_dt", 1e-8) * end)
        ts.setMaxSteps(solver.get("max_steps", 10_000_000))
        ts.setFromOptions()
        if kind is None:
            return
        ts.setSolution(u)
        try:
            ts.setUp()
        except PETSc.Error as exc:
            if "explicit" in str(exc):
                raise UsageError(f"error: PETSc options {shown}: TS type {ts.getType()!r} is an explicit "
                                 f"integrator; the {model} model needs an implicit one (arkimex, rosw, bdf). "
                                 "Nothing was run.") from None
            raise
        if J is not None:
            ksp = ts.getSNES().getKSP()
            ksp.setOperators(J, J)
            ksp.setUp()
        _refuse_unused(options, shown)
        rtol, atol = ts.getTolerances()
        dt, max_steps = ts.getTimeStep(), ts.getMaxSteps()
        bad = [f"{name} {value:g}" for name, value in (("-ts_rtol", rtol), ("-ts_atol", atol), ("-ts_dt", dt))
               if not 0.0 < value < float("inf")]
        if bad or max_steps < 1:
            bad += [f"-ts_max_steps {max_steps}"] if max_steps < 1 else []
            raise UsageError(f"error: PETSc options {shown}: {', '.join(bad)}; expected positive, finite "
                             "tolerances and step size and at least one step. Nothing was run.")
        # PETSc gives no step control to the theta family unless asked (TSAdapt 'none')
        adapt = PETSc.Options().getString("ts_adapt_type", "")
        fixed = adapt == "none" or (not adapt and ts.getType() in FIXED_STEP_TYPES)
        if fixed and end / dt > max_steps:
            raise UsageError(
                f"error: PETSc options {shown}: TS type {ts.getType()!r} takes fixed steps here (TSAdapt "
                f"'none') of {dt:g} of the path, {end / dt:.3g} steps, beyond the step limit {max_steps} "
                "(solver.max_steps or -ts_max_steps); give a larger -ts_dt, or -ts_adapt_type basic, or an "
                "adaptive -ts_type (arkimex, rosw, bdf). Nothing was run.")
    except PETSc.Error as exc:
        raise UsageError(f"error: PETSc rejected the options {shown}: {_reason(exc)}. Nothing was run; "
                         "PETSc options go after isosim's own, e.g. -ts_type rosw -ts_rtol 1e-9.") from None
    finally:
        for obj in reversed(objs):
            obj.destroy()


#: Options of the objects the probe sets up exactly as the run does: one of these that the
#: probe did not read is read by nothing (a misspelling, or an option of another solver).
_PROBED = ("ts_", "snes_", "ksp_", "pc_")


def _refuse_unused(options, shown):
    """UsageError naming the TS/SNES/KSP/PC options the probe did not read, with a suggestion."""
    unused = [o for o in (unused_options(options) or []) if o.lstrip("-").startswith(_PROBED)]
    if unused:
        listed = "; ".join(f"{o}{suggestion(o)}" for o in unused)
        raise UsageError(f"error: PETSc options {shown}: nothing reads {listed}. PETSc would ignore "
                         f"{'it' if len(unused) == 1 else 'them'} silently; nothing was run.")


def warn_unused(options, say):
    """After a run: name the pass-through options nothing used (any prefix), if any. Local."""
    unused = unused_options(options)
    if unused:
        say("[isosim] warning: PETSc options nothing used: "
            + "; ".join(f"{o}{suggestion(o)}" for o in unused))


def restart_solver(run_dir, model):
    """The ``[solver]`` table a restart of ``run_dir`` will use (its deck.toml), or the
    model's defaults if that deck cannot be read (the restart itself then says why)."""
    from pathlib import Path

    from ..deck import MODELS, load_deck
    from ..errors import IsosimError
    try:
        return load_deck(Path(run_dir) / "deck.toml")["solver"]
    except IsosimError:
        return MODELS[model].SCHEMA.fields["solver"].validate("solver", {}, [])
