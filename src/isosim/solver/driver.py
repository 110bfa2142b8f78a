"""The one PETSc TS driver used by every model.

A *problem* is a :class:`isosim.models.base.Problem`: its ``kind`` says how it is integrated
and which callbacks it has (numpy-level ``ifunction``/``ijacobian``/``solve_jacobian`` for
the matrix-free kind, PETSc-level ones for the assembled kind, ``rhs`` for the explicit
kind); every problem has ``local_size``, ``global_size``, ``initial_state``,
``state_fields`` and ``load_state`` (its rows of the state, for collective checkpoints),
``gather_state``, ``check_state`` and ``absolute_tolerances`` (None: scalar). A *recorder*
says when outputs are due (``pending_times``, and ``interpolated_due`` for those taken from
the dense output), records them (``record``), describes the clock for progress lines (``describe``) and round-trips its
recordings through checkpoints (``state`` / ``load_state``).

The driver owns the TS: Python IFunction/IJacobian, tolerances from the deck, PETSc
command-line options on top (``-ts_type``, ``-ts_rtol``, ``-log_view``, ...). Two kinds of
linear algebra:

- matrix-free (grain exchange): a MATPYTHON Jacobian with an exact PCPYTHON solve (the
  problem's O(N) bordered elimination);
- none (chamber): a problem with ``explicit = True`` defines ``rhs(t, u, f)`` and is
  integrated by an explicit RK scheme (``solver.rk_type``);
- assembled (capsule): a problem that defines ``create_vector``, ``create_jacobian``,
  ``configure_ksp``, ``petsc_ifunction`` and ``petsc_ijacobian`` gets PETSc Vecs and an
  AIJ matrix, and any KSP/PC from the command line (``-ksp_type``, ``-pc_type``).

Outputs land exactly on their times: each output time is a ``TSSolve`` with
``MATCHSTEP``; only times a recorder lists as ``interpolated_times`` (the grain model's
Delta(T) series unless ``output.series_exact``) are taken from the integrator's dense
output between steps. Checkpoints are written only at such solve
boundaries too (a due checkpoint ends the current solve early), so that a restarted run
takes exactly the same steps as an uninterrupted one: bitwise with one-step methods.
"""

import contextlib
import time

import numpy as np
from petsc4py import PETSc

from ..errors import Checkpointed, SolverFailure, Stopped
from ..logs import quiet, say
from ..models.base import ASSEMBLED, EXPLICIT
from .eta import time_left
from .fpe import trap_fpe
from .stages import stage


class _JacobianShell:
    """MATPYTHON context: y = J x from the problem's last Jacobian."""

    def __init__(self, problem):
        self.problem = problem

    def mult(self, mat, x, y):
        with y as ya:
            self.problem.jacobian_mult(x.getArray(readonly=True), ya)


class _ExactSolvePC:
    """PCPYTHON context: the problem's exact solve with its last Jacobian."""

    def __init__(self, problem):
        self.problem = problem

    def setUp(self, pc):
        pass

    def apply(self, pc, x, y):
        with y as ya:
            self.problem.solve_jacobian(x.getArray(readonly=True), ya)


class Driver:
    """Integrates a problem with PETSc TS, recording outputs and writing checkpoints.

    Parameters
    ----------
    problem, recorder : objects
        See the module docstring.
    solver : dict
        The deck's ``[solver]`` table.
    checkpoint : dict
        The deck's ``[checkpoint]`` table (``every_seconds``, ``every_steps``).
    write_checkpoint : callable(driver) or None
        Called on every rank when a checkpoint is due (collective).
    progress_seconds : float
        Interval of rank-0 progress lines (0: none).
    stop_request : StopRequest or None
        Signal flag checked after each step.
    """

    def __init__(self, problem, recorder, solver, checkpoint, *, write_checkpoint=None,
                 progress_seconds=10.0, stop_request=None, options_prefix=None, log=say,
                 restart_hint="isosim restart DIR"):
        self.problem = problem
        self.recorder = recorder
        self.comm = problem.comm
        self.checkpoint_cfg = checkpoint
        self.write_checkpoint = write_checkpoint
        self.progress_seconds = progress_seconds
        self.stop_request = stop_request
        self.restart_hint = restart_hint
        self.log = log
        pcomm = PETSc.Comm(self.comm)

        assembled = problem.kind == ASSEMBLED
        explicit = problem.kind == EXPLICIT
        if assembled:
            self.u = problem.create_vector()
            self.J = problem.create_jacobian()
        else:
            self.u = PETSc.Vec().createMPI((problem.local_size, problem.global_size), comm=pcomm)
            n = (problem.local_size, problem.global_size)
            self.J = None
            if not explicit:
                self.J = PETSc.Mat().createPython((n, n), context=_JacobianShell(problem), comm=pcomm)
                self.J.setUp()
        self.f = self.u.duplicate()
        self.last_good = self.u.duplicate()
        self.sample = None           # the dense-output state at interpolated output times
        self._sampled_end = None     # (tau, values, rates) of the recorded functionals at the last step's end
        self._scalar_tolerances = None   # (rtol, atol) the per-unknown tolerances were built from

        ts = PETSc.TS().create(comm=pcomm)
        if options_prefix:
            ts.setOptionsPrefix(options_prefix)
        ts.setProblemType(PETSc.TS.ProblemType.LINEAR if problem.linear
                          else PETSc.TS.ProblemType.NONLINEAR)
        ts.setType(solver["ts_type"])
        if solver["ts_type"] == "arkimex" and solver.get("arkimex_type"):
            ts.setARKIMEXType(solver["arkimex_type"])
        # The equation type is left unspecified on purpose: declaring a DAE makes ARKIMEX
        # start every TSSolve with a cloned backward-Euler TS whose SNES converts the
        # MATPYTHON Jacobian to AIJ column by column (O(N^2); 2.7 s at N = 16000). The
        # explicit first stage then evaluates F(t, y, 0), which is exact for the unit-mass
        # rows and harmless for algebraic rows (their residual ignores y').
        if explicit:
            ts.setRHSFunction(self._rhs, self.f)
            if solver.get("rk_type"):
                ts.setRKType(solver["rk_type"])
            # Members of an ensemble share the steps: control the error of the worst one,
            # not an average that a quiet majority would dilute (unless the user says otherwise).
            opts = PETSc.Options(options_prefix or "")
            if not opts.hasName("ts_adapt_wnormtype"):
                opts.setValue("ts_adapt_wnormtype", "infinity")
        elif assembled:
            ts.setIFunction(problem.petsc_ifunction, self.f)
            ts.setIJacobian(problem.petsc_ijacobian, self.J, self.J)
        else:
            ts.setIFunction(self._ifunction, self.f)
            ts.setIJacobian(self._ijacobian, self.J, self.J)
        ts.setTolerances(rtol=solver["rtol"], atol=solver["atol"])
        ts.setTime(0.0)
        ts.setMaxTime(problem.end_time)
        ts.setTimeStep(solver["initial_dt"] * problem.end_time)
        ts.setMaxSteps(solver["max_steps"])
        ts.setExactFinalTime(PETSc.TS.ExactFinalTime.MATCHSTEP)
        ts.setErrorIfStepFails(False)
        ts.setMaxSNESFailures(-1)
        if explicit:
            pass
        elif assembled:
            problem.configure_ksp(ts.getSNES().getKSP())
        else:
            ksp = ts.getSNES().getKSP()
            ksp.setType(PETSc.KSP.Type.PREONLY)
            pc = ksp.getPC()
            pc.setType(PETSc.PC.Type.PYTHON)
            pc.setPythonContext(_ExactSolvePC(problem))
        ts.setPostStep(self._poststep)
        ts.setFromOptions()
        # Per-unknown scales (e.g. algebraic unknowns kept out of the error estimate: their
        # stage "derivatives" are not meaningful; see above), if the problem has them. Built
        # after setFromOptions so that -ts_rtol/-ts_atol are honoured.
        self.atol = self.rtol = None
        rtol, atol = ts.getTolerances()
        per_unknown = problem.absolute_tolerances(rtol, atol)
        if per_unknown is not None:
            self._scalar_tolerances = (rtol, atol)
            self.atol = self.u.duplicate()
            with self.atol as a:
                a[:] = per_unknown
            self.rtol = self.atol.duplicate()
            self.rtol.set(rtol)
            ts.setTolerances(rtol=self.rtol, atol=self.atol)
        self.ts = ts

        self._wall_start = time.monotonic()
        self._last_ckpt_wall = self._wall_start
        self._last_progress = self._wall_start
        self._solve_again = False
        self._stop_signal = ""
        self._window = None          # (step, t, dt) where the current progress window began
        self._eta_ref = None         # (wall, tau, step) where the time-left window began (eta.py)
        self._eta_rate = None        # model time per wall second, once measured
        self._trouble = None         # what _poststep found wrong, for _fail's message
        self._tau_at_start = 0.0
        self.checkpoints_written = 0

    # ------------------------------------------------------------------ callbacks
    def _ifunction(self, ts, t, u, udot, f):
        with f as fa:
            self.problem.ifunction(t, u.getArray(readonly=True), udot.getArray(readonly=True), fa)

    def _rhs(self, ts, t, u, f):
        with f as fa:
            self.problem.rhs(t, u.getArray(readonly=True), fa)

    def _ijacobian(self, ts, t, u, udot, shift, J, P):
        self.problem.ijacobian(t, u.getArray(readonly=True), shift)
        J.assemble()

    def _poststep(self, ts):
        # Check the step just accepted before it becomes the last good state: PETSc's step-size
        # controllers compare error norms with ">", which a NaN never satisfies (an explicit
        # step with a non-finite stage is accepted), and a negative concentration is no error
        # to them at all.
        bad = self._check_state(ts)
        stalled = "" if bad else self._check_progress(ts)
        now = time.monotonic()
        cfg = self.checkpoint_cfg
        due = 0
        if self.write_checkpoint is not None:
            if cfg["every_steps"] and ts.getStepNumber() % cfg["every_steps"] == 0:
                due = 1
            if cfg["every_seconds"] and now - self._last_ckpt_wall >= cfg["every_seconds"]:
                due = 1
        sig = self.stop_request.signum if self.stop_request else 0
        flags = np.array([due, sig, bool(bad), bool(stalled)], dtype=np.int64)
        if self.comm.size > 1:  # every rank must take the same decision at the same step
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        if flags[2] or flags[3]:
            found = self.comm.allgather(bad or stalled) if self.comm.size > 1 else [bad or stalled]
            rank, detail = next((r, m) for r, m in enumerate(found) if m)
            on_rank = f" (on rank {rank})" if self.comm.size > 1 and flags[2] else ""
            self._trouble = ("state" if flags[2] else "stall", detail + on_rank, ts.getTime(), ts.getStepNumber())
            # stop here; run() hands the (negative) reason to _fail, which restores the last good state
            ts.setConvergedReason(PETSc.TS.ConvergedReason.DIVERGED_STEP_REJECTED)
            return
        self._record_interpolated(ts)
        self.last_good_time = ts.getTime()
        self.last_good_step = ts.getStepNumber()
        self.last_good_dt = ts.getTimeStep()
        ts.getSolution().copy(self.last_good)
        if flags[1]:
            self._stop_signal = self.stop_request.name if self.stop_request and self.stop_request.signum \
                else "a signal on another rank"
        if flags[0] or flags[1]:
            # end this TSSolve here: the checkpoint sits on a solve boundary (see module doc)
            self._solve_again = True
            ts.setConvergedReason(PETSc.TS.ConvergedReason.CONVERGED_USER)
        if now - self._last_progress >= self.progress_seconds > 0:
            self._last_progress = now
            self._progress(ts)

    def _record_interpolated(self, ts):
        """Record the recorder's interpolated output times that the step just accepted passed,
        from the integrator's dense output (TSInterpolate). Collective (every rank has the
        same step)."""
        due = self.recorder.interpolated_due(ts.getPrevTime(), ts.getTime())
        if not len(due):
            return
        with stage("record"):
            t1 = ts.getTime()
            end = self.recorder.sample_values(t1, ts.getSolution().getArray(readonly=True))
            if end is not None:
                # the records' functionals, interpolated: a cubic Hermite through their values
                # and rates at both ends of the step (4th order in the step, as accurate as the
                # integrators' own dense output), from the state kept at the step's start; the
                # end is kept for the next step. A restart recomputes the start from the same
                # state, so a restarted run records the same numbers.
                t0 = self.last_good_time
                start = self._sampled_end
                if start is None or start[0] != t0:
                    start = (t0, *self.recorder.sample_values(t0, self.last_good.getArray(readonly=True)))
                self._sampled_end = (t1, *end)
                self.recorder.record_sampled(due, hermite(start, self._sampled_end, due))
                return
        if self.sample is None:
            self.sample = self.u.duplicate()
        # samples are recorded together, in chunks of at most ~32 MB per rank; the chunk
        # length comes from the global size, so every rank makes the same collective calls
        rows = max(1, (4 << 20) // max(1, self.u.getSize() // self.comm.size))
        with stage("record"):
            for c in range(0, len(due), rows):
                chunk = due[c:c + rows]
                states = np.empty((len(chunk), self.u.getLocalSize()))
                for r, t in enumerate(chunk):
                    ts.interpolate(float(t), self.sample)
                    states[r] = self.sample.getArray(readonly=True)
                self.recorder.record_interpolated(chunk, states)

    def _check_state(self, ts):
        """What is wrong with the state just accepted, or "": the problem's ``check_state``
        (non-finite or negative values, named by quantity, member and cell), else a plain
        finite check. Local; O(N), a few per cent of a step."""
        return self.problem.check_state(ts.getSolution().getArray(readonly=True)) or ""

    #: Steps over which progress is measured, and the margin over the step limit beyond which
    #: the run is declared stalled (a step size that later grows back is given 100x the room).
    STALL_WINDOW, STALL_MARGIN = 200, 100.0

    def _check_progress(self, ts):
        """A message if the step size has collapsed so far that the run cannot end within
        the step limit, or "". The same on every rank (TS time and steps are global).

        A tolerance below what double precision can meet (``-ts_rtol 1e-30``) does not make
        PETSc fail: the controller shrinks the step to ~1e-11 of the run and crawls for
        months. Measured over the last ``STALL_WINDOW`` steps, if the mean step would need
        ``STALL_MARGIN`` times more steps than the limit allows and the step is not growing,
        the run stops now instead (exit 3, last good state checkpointed).
        """
        step, t, dt = ts.getStepNumber(), ts.getTime(), ts.getTimeStep()
        w = self._window
        if w is None or step < w[0]:
            self._window = (step, t, dt)
            return ""
        if step - w[0] < self.STALL_WINDOW:
            return ""
        self._window = (step, t, dt)
        mean = (t - w[1]) / (step - w[0])
        left, allowed = self.problem.end_time - t, ts.getMaxSteps() - step
        if dt > 2.0 * w[2] or mean * allowed * self.STALL_MARGIN >= left:
            return ""
        need = left / mean if mean > 0 else float("inf")
        return (f"the step size has collapsed: the last {step - w[0]} steps advanced "
                f"{self.recorder.describe_dt(t - w[1])} (mean step {self.recorder.describe_dt(mean)}); at that "
                f"rate the run needs ~{need:.2g} more steps, and the step limit (solver.max_steps or "
                f"-ts_max_steps) is {ts.getMaxSteps()}")

    def _tolerances(self):
        """The relative and absolute tolerances in force, as numbers (the scalars the per-unknown
        ones were built from, where they were)."""
        if self._scalar_tolerances is not None:
            return list(self._scalar_tolerances)
        vals = []
        for x in self.ts.getTolerances():
            vals.append(x.min()[1] if isinstance(x, PETSc.Vec) else x)
        return vals

    def _progress(self, ts):
        tau = ts.getTime()
        elapsed = time.monotonic() - self._wall_start
        left = time_left(self, ts)      # at the rate measured since the last line; "?" until measured
        self.log(f"[isosim] {100 * tau / self.problem.end_time:5.1f}% | {self.recorder.describe(tau)} | "
                 f"step {ts.getStepNumber()} | dt {self.recorder.describe_dt(ts.getTimeStep())} | "
                 f"elapsed {_hms(elapsed)} | left ~{_hms(left)}", flush=True)

    # ------------------------------------------------------------------ state
    def restore(self, checkpoint):
        """Continue from a verified :class:`isosim.io.checkpoint.Checkpoint` (written on any
        number of ranks: each rank reads its own rows). Collective."""
        meta = checkpoint.meta
        with self.u as ua:
            self.problem.load_state(checkpoint.read, ua)
        self.ts.setTime(meta["time"])
        self.ts.setStepNumber(meta["step"])
        self.ts.setTimeStep(meta["dt"])
        self.recorder.load_state(checkpoint.outputs)
        self.recorder.load_fields(checkpoint.read)
        self._tau_at_start = meta["time"]

    def state_fields(self):
        """This rank's rows of the current state (see the problems' ``state_fields``). Local."""
        return self.problem.state_fields(self.u.getArray(readonly=True))

    def gather(self, vec=None):
        """The state on rank 0 in rank-independent order (collective)."""
        return self.problem.gather_state((vec or self.u).getArray(readonly=True))

    # ------------------------------------------------------------------ run
    def run(self, restarted=False):
        """Integrate to the end, recording outputs. Collective.

        Raises
        ------
        Checkpointed
            A stop signal arrived; a checkpoint was written.
        SolverFailure
            The integrator failed; the last good state was checkpointed.
        """
        ts, u = self.ts, self.u
        if not restarted:
            with u as ua:
                self.problem.initial_state(ua)
            with stage("record"):
                self.recorder.record(0.0, u.getArray(readonly=True))
        u.copy(self.last_good)
        self.last_good_time, self.last_good_step, self.last_good_dt = (
            ts.getTime(), ts.getStepNumber(), ts.getTimeStep())
        for target in self.recorder.pending_times():
            ts.setMaxTime(target)
            while ts.getTime() < target * (1 - 1e-13):
                self._solve_again = False
                with trap_fpe(self):        # floating-point failures: exit 3, last good state kept
                    ts.solve(u)
                if ts.getConvergedReason() < 0:
                    self._fail(ts.getConvergedReason())
                if self._solve_again:
                    if self.write_checkpoint is not None:
                        self.write_checkpoint(self)
                        self.checkpoints_written += 1
                        self._last_ckpt_wall = time.monotonic()
                    if self._stop_signal:
                        where = f"stopped on {self._stop_signal} at {self.recorder.describe(ts.getTime())}"
                        if self.write_checkpoint is None:    # a study's member: the study says what it kept
                            raise Stopped(where, self._stop_signal)
                        raise Checkpointed(
                            f"{where}, step {ts.getStepNumber()}; checkpoint written. Continue with: "
                            f"{self.restart_hint}")
                elif ts.getConvergedReason() != PETSc.TS.ConvergedReason.CONVERGED_TIME:
                    self._fail(ts.getConvergedReason())
            with stage("record"):
                self.recorder.record(target, u.getArray(readonly=True))
        return self.recorder

    def destroy(self):
        """Free the PETSc objects now: objects holding Python contexts must not outlive
        PETSc's finalisation at interpreter exit (that order segfaults)."""
        for obj in (self.ts, self.J, self.u, self.f, self.last_good, self.sample,
                    self.atol, self.rtol):
            if obj is not None:
                obj.destroy()
        self.problem.destroy()

    def _fail(self, reason):
        """Checkpoint the last good state (when checkpoints are written) and raise
        SolverFailure saying where and why. Collective."""
        trouble = self._trouble
        names = {v: k for k, v in vars(PETSc.TS.ConvergedReason).items() if isinstance(v, int)}
        what = names.get(reason, str(reason))
        if reason == PETSc.TS.ConvergedReason.CONVERGED_ITS:
            what = "the step limit, solver.max_steps or -ts_max_steps, was reached"
        where = self.recorder.describe(self.last_good_time)
        saved = ""
        if self.write_checkpoint is not None:
            self.last_good.copy(self.u)
            self.ts.setTime(self.last_good_time)
            self.ts.setStepNumber(self.last_good_step)
            self.ts.setTimeStep(self.last_good_dt)
            self.write_checkpoint(self)
            # the deck cannot change at a restart, but PETSc options can: name the one to change
            option = f"-ts_max_steps {10 * self.ts.getMaxSteps()}" if what.startswith("the step limit") \
                else "-ts_rtol ..."
            saved = " The last good state was checkpointed; after changing the solver settings, " \
                    f"continue with: {self.restart_hint} {option} (PETSc options may change at a restart)."
        step_size = self.recorder.describe_dt(self.last_good_dt)
        if trouble is None:
            raise SolverFailure(
                f"error: the time integrator failed ({what}) after step {self.last_good_step}, at "
                f"{where}, with step size {step_size}.{saved} Try a smaller -ts_dt, looser "
                "-ts_rtol/-ts_atol, or another -ts_type (arkimex, rosw).")
        kind, detail, t_bad, step_bad = trouble
        rtol, atol = self._tolerances()
        if kind == "state":
            head = (f"error: the solution became unphysical at step {step_bad} ({self.recorder.describe(t_bad)}): "
                    f"{detail}")
            advice = ("Try tighter tolerances (-ts_rtol, -ts_atol), adaptive steps (not -ts_adapt_type none) or "
                      "smaller ones (-ts_adapt_dt_max); if it persists, check the deck's physical values.")
        else:
            head = f"error: the run cannot finish: {detail}"
            advice = ("A tolerance below what double precision can meet does this"
                      + (f" (here rtol = {rtol:g}, atol = {atol:g})" if min(rtol, atol) < 1e-14 else "")
                      + "; try -ts_rtol/-ts_atol of 1e-13 or more, or another -ts_type (arkimex, rosw).")
        kept = (f"was checkpointed; after changing the solver settings, continue with: {self.restart_hint} "
                "-ts_... (PETSc options may change at a restart)") if saved else "was not saved"
        raise SolverFailure(f"{head}. The last good state (step {self.last_good_step}, at {where}, step size "
                            f"{step_size}) {kept}. No results were written. {advice}")


def hermite(start, end, times):
    """Cubic Hermite interpolation at ``times`` (k,) between ``start`` and ``end``, each
    ``(tau, values, rates)`` with 1-D values and rates: (k, nf)."""
    t0, f0, d0 = start
    t1, f1, d1 = end
    h = t1 - t0
    s = ((np.asarray(times, dtype=float) - t0) / h)[:, None]
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * f0 + (s3 - 2 * s2 + s) * (h * d0)
            + (3 * s2 - 2 * s3) * f1 + (s3 - s2) * (h * d1))


def _hms(seconds):
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def integrated(decks, comm, *, problem_cls=None, recorder_cls=None, progress_seconds=0.0, log=quiet, stop=None,
               options_prefix=None, run=True):
    """Build the problem and recorder of ``decks`` (resolved, one group) on ``comm``, integrate
    them (unless ``run`` is False) and yield ``(problem, recorder, driver)``; the PETSc objects
    are freed when the block ends. Collective. The one in-process way to integrate decks
    without a run directory: ensembles use it for each batch, tests and notebooks too.

    ``problem_cls``/``recorder_cls`` default to the model's (:mod:`isosim.registry`); PETSc
    options under ``options_prefix`` apply to this integration only.
    """
    from ..registry import model_spec
    spec = model_spec(decks[0]["model"])
    problem = (problem_cls or spec.problem_class)(decks, comm)
    recorder = (recorder_cls or spec.recorder_class)(problem)
    driver = Driver(problem, recorder, decks[0]["solver"], decks[0]["checkpoint"], write_checkpoint=None,
                    progress_seconds=progress_seconds, log=log, stop_request=stop, options_prefix=options_prefix)
    try:
        if run:
            driver.run()
        yield problem, recorder, driver
    finally:
        driver.destroy()
