"""The contract between a model and the one TS driver (:mod:`isosim.solver.driver`).

A model's *problem* subclasses :class:`Problem` and declares how it is integrated
(:attr:`Problem.kind`):

- ``"matrix-free"``: ``ifunction(t, u, udot, f)``, ``ijacobian(t, u, shift)``,
  ``jacobian_mult(x, y)`` and ``solve_jacobian(rhs, x)`` on numpy arrays; the driver wraps
  them in a MATPYTHON Jacobian and an exact PCPYTHON solve (grain exchange);
- ``"assembled"``: ``create_vector()``, ``create_jacobian()``, ``configure_ksp(ksp)``,
  ``petsc_ifunction`` and ``petsc_ijacobian`` (PETSc's own signatures): PETSc Vecs, an AIJ
  matrix and any KSP/PC from the command line (capsule);
- ``"explicit"``: ``rhs(t, u, f)``, integrated by an explicit Runge-Kutta scheme (chamber).

Every problem also provides the state's layout and life cycle (:data:`COMMON`); the other
hooks have working defaults here, so the driver calls them unconditionally. A subclass that
forgets a required hook fails when it is defined, not in the middle of a run.

A model's *recorder* subclasses :class:`isosim.models.recording.Recorder`
(:data:`RECORDER_REQUIRED`; a model that supports sweeps adds :data:`RECORDER_FOR_STUDIES`).
"""

import numpy as np

MATRIX_FREE = "matrix-free"
ASSEMBLED = "assembled"
EXPLICIT = "explicit"

#: the callbacks each kind of problem must define
REQUIRED = {
    MATRIX_FREE: ("ifunction", "ijacobian", "jacobian_mult", "solve_jacobian"),
    ASSEMBLED: ("create_vector", "create_jacobian", "configure_ksp", "petsc_ifunction", "petsc_ijacobian"),
    EXPLICIT: ("rhs",),
}
#: what every problem defines: its ensemble grouping and the state's layout and life cycle
COMMON = ("group_key", "initial_state", "state_fields", "load_state", "gather_state")
#: what every recorder defines
RECORDER_REQUIRED = ("record", "describe", "describe_dt", "headline", "report_lines", "write_results")
#: what a recorder of a model with sweeps and inversions defines besides
RECORDER_FOR_STUDIES = ("flat", "unit", "member_series")


class Problem:
    """Base of every model's problem. Subclasses set :attr:`name`, :attr:`kind`, and in their
    constructor ``comm``, ``local_size`` and ``global_size``.

    Collective only where a method says so; everything else is local to a rank.
    """

    #: the deck's model name
    name = None
    #: how the driver integrates it: MATRIX_FREE, ASSEMBLED or EXPLICIT
    kind = None
    #: the equations are linear in the state (PETSc may skip Newton iterations)
    linear = False
    #: the end of the TS clock (isosim's models run on tau in [0, 1])
    end_time = 1.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind not in REQUIRED:
            raise TypeError(f"{cls.__name__}.kind = {cls.kind!r}: expected one of {', '.join(REQUIRED)}")
        missing = [m for m in COMMON + REQUIRED[cls.kind] if getattr(cls, m, None) is None]
        if missing:
            raise TypeError(f"{cls.__name__} ({cls.kind}) does not define {', '.join(missing)}")

    #: ``group_key(deck)`` (static): members with equal keys form one vectorised system
    group_key = None
    initial_state = None
    state_fields = None
    load_state = None
    gather_state = None

    @staticmethod
    def stiffness_key(deck):
        """How early diffusion acts in this member (sorting an ensemble's members by it keeps
        each batch's transients together). Default: all equal, members keep their order."""
        return 0.0

    def absolute_tolerances(self, rtol, atol):
        """Per-unknown absolute tolerances of this rank's unknowns, or None for the scalar
        ``atol`` (the default)."""
        return None

    def check_state(self, u):
        """What is wrong with this rank's part ``u`` of an accepted state ("" if nothing): by
        default, the first non-finite value. Models name quantities, members and cells."""
        if np.isfinite(u).all():
            return ""
        i = int(np.argmin(np.isfinite(u)))
        return f"unknown {i} of this rank's {u.size} is {u[i]}"

    def profile_fields(self, u):
        """The fields recorded as profiles (default: the state fields; ``u = None``: their
        layout only)."""
        return self.state_fields(np.empty(self.local_size) if u is None else u)

    def destroy(self):
        """Free PETSc objects the problem holds (before PETSc finalises). Default: none."""
