"""Solver trouble stops the run with a message saying where and why, exit 3, the last good
state checkpointed, and no results that look finished.

Three troubles: a state that becomes unphysical (NaN, inf, a negative concentration or
mass) after a step the integrator accepted; a tolerance so tight that the step size
collapses (the run would crawl for months: PETSc itself never gives up); a step limit
(``solver.max_steps``) too small. Runtime: ~25 s (five short runs, in-process checks).
"""


import h5py
import numpy as np
import pytest
from mpi4py import MPI

from support import INPUT, run_cli
from isosim.deck import load_deck
from isosim.errors import EXIT_SOLVER, SolverFailure
from isosim.models import REGISTRY
from isosim.models.base import ASSEMBLED, EXPLICIT, Problem
from isosim.solver.driver import Driver


def _stopped_cleanly(out, proc, step):
    """Exit 3, no traceback, no summary.json or results.h5, and a checkpoint of ``step``."""
    assert proc.returncode == EXIT_SOLVER, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "summary.json").exists() and not (out / "results.h5").exists()
    with h5py.File(out / "checkpoint.h5") as f:
        assert int(f.attrs["step"]) == step and int(f.attrs["complete"]) == 1


def test_negative_melt_mass_stops_the_run(tmp_path):
    """Two explicit Euler steps of half the chamber's path (fixed steps, no error control)
    drive the melt mass to -0.16 M0. Before, that ended as a 'complete' run with a negative
    melt mass in summary.json; now the step is refused: exit 3, the quantity, member, value
    and step named, step 1's state checkpointed, no results."""
    out = tmp_path / "run"
    proc = run_cli(["run", INPUT / "spera2004_afc.toml", "--out", out, "--progress", "0",
                    "--set", "thermal.T_eq_C=951", "--set", "output.points=2",
                    "-ts_rk_type", "1fe", "-ts_adapt_type", "none", "-ts_dt", "0.5"])
    _stopped_cleanly(out, proc, step=1)
    assert "became unphysical at step 2" in proc.stderr
    assert "Mm (melt mass / M0)" in proc.stderr and "scaled) is -0.163805 (negative)" in proc.stderr
    assert "The last good state (step 1, at T_m = 1135.50 °C" in proc.stderr and "checkpointed" in proc.stderr


def test_absurd_tolerance_stops_instead_of_crawling(tmp_path):
    """rtol = atol = 1e-30 (below double precision): PETSc shrinks the step to ~1e-10 of the
    run and never fails (it would take ~1e10 steps). The driver notices after 200 steps:
    exit 3, the collapse and the tolerances named, the last good state checkpointed."""
    out = tmp_path / "run"
    proc = run_cli(["run", INPUT / "xiong_fig1.toml", "--out", out, "--progress", "0",
                    "--set", "grid.cells=40", "-ts_rtol", "1e-30", "-ts_atol", "1e-30"], timeout=120)
    _stopped_cleanly(out, proc, step=200)
    assert "the run cannot finish: the step size has collapsed: the last 200 steps" in proc.stderr
    assert "(here rtol = 1e-30, atol = 1e-30)" in proc.stderr
    need = float(proc.stderr.split("needs ~")[1].split(" ")[0])
    assert need > 1e9      # 100 times the step limit of 1e7 at least


def test_step_limit_from_the_deck(tmp_path):
    """solver.max_steps = 10: exit 3 after step 10, with the PETSc option to pass at the
    restart (the deck cannot change then)."""
    out = tmp_path / "run"
    proc = run_cli(["run", INPUT / "xiong_fig1.toml", "--out", out, "--progress", "0",
                    "--set", "grid.cells=40", "--set", "solver.max_steps=10"])
    _stopped_cleanly(out, proc, step=10)
    assert "step limit, solver.max_steps or -ts_max_steps, was reached) after step 10" in proc.stderr
    assert f"isosim restart {out} -ts_max_steps 100 " in proc.stderr


def test_restart_honours_petsc_options(tmp_path):
    """After a stop at the step limit, ``isosim restart DIR -ts_max_steps 30`` must stop again
    at step 30 (the new option applies), not run to the end."""
    out = tmp_path / "run"
    run_cli(["run", INPUT / "xiong_fig1.toml", "--out", out, "--progress", "0", "--set", "grid.cells=40",
             "-ts_max_steps", "20"], check=EXIT_SOLVER)
    proc = run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "30"])
    assert proc.returncode == EXIT_SOLVER and "after step 30" in proc.stderr, proc.stdout + proc.stderr


# ------------------------------------------------------------------ in-process: the driver
class _NaNAfter(Problem):
    """du/dt = -u (4 unknowns), except that the last rate is NaN once t > t_nan: what a
    square root or a division by zero in a model's right-hand side does. Its check_state is
    the base class's plain finite check."""

    kind = EXPLICIT
    local_size = global_size = 4
    group_key = gather_state = state_fields = load_state = staticmethod(lambda *a: None)

    def __init__(self, t_nan):
        self.comm, self.t_nan = MPI.COMM_SELF, t_nan

    def initial_state(self, u):
        u[:] = 1.0

    def rhs(self, t, u, f):
        f[:] = -u
        if t > self.t_nan:
            f[-1] = np.nan


class _Recorder:
    def pending_times(self):
        return [1.0]

    def interpolated_due(self, t0, t1):
        return ()

    def record(self, t, u):
        self.final = np.array(u)

    def describe(self, t):
        return f"t = {t:.6g}"

    def describe_dt(self, dt):
        return f"{dt:.3g}"


def test_nan_accepted_by_the_controller_is_caught():
    """An explicit RK step whose stage is NaN has a NaN error estimate, which PETSc's basic
    controller accepts (NaN > 1 is false). The driver's check refuses the step: SolverFailure
    naming the unknown and the value, and the checkpoint callback gets the last finite
    state, at a time before the NaN appeared."""
    saved = []
    problem = _NaNAfter(t_nan=0.3)
    driver = Driver(problem, _Recorder(), {"ts_type": "rk", "rk_type": "5dp", "rtol": 1e-6, "atol": 1e-9,
                                           "initial_dt": 1e-3, "max_steps": 10_000},
                    {"every_seconds": 0, "every_steps": 0}, progress_seconds=0, options_prefix="nan_test_",
                    write_checkpoint=lambda d: saved.append((d.ts.getTime(), d.u.getArray().copy())))
    try:
        with pytest.raises(SolverFailure) as err:
            driver.run()
    finally:
        driver.destroy()
    msg = str(err.value)
    assert "became unphysical" in msg and "unknown 3 of this rank's 4 is nan" in msg
    (t, u), = saved
    assert t <= 0.3 + 1e-12 and np.all(np.isfinite(u))
    assert np.allclose(u, np.exp(-t), rtol=1e-5)      # the last good state really is the solution


@pytest.mark.parametrize("model, deck", [("grain_exchange", "xiong_fig1.toml"), ("capsule", "huang2010_zm70.toml"),
                                         ("chamber", "spera2004_afc.toml")])
def test_check_state_names_the_place(model, deck):
    """Each model's check_state accepts its initial state, and names the quantity and the
    place of a NaN, an infinity or a negative value put into it."""
    d = load_deck(INPUT / deck, ["grid.cells=20", "grid.basis='cells'"] if model == "grain_exchange" else [])
    # a batch of two where a model has batches: the fault is put into the second member
    problem = REGISTRY[model][0]([d] if model == "capsule" else [d, d], MPI.COMM_WORLD)
    vec = problem.create_vector() if problem.kind == ASSEMBLED else None
    u = vec.getArray() if vec is not None else np.zeros(problem.local_size)
    problem.initial_state(u)
    try:
        assert problem.check_state(u) is None
        if model == "grain_exchange":
            g, _ = problem.split(u)
            g[4, 1, 3] = np.nan                      # cell 5, isotope 44Ca, class 3 (member 2's cpx)
            expected = "concentration of 44Ca in cpx grain class 1 (member 2 of the 2 listed), cell 5 of 20"
        elif model == "capsule":
            problem.local(u)[7, 2] = -0.5            # cell 8, species 57Fe
            expected = "concentration of 57Fe (relative to its start) in cell 8 of 200, x = 0.15 mm"
        else:
            rows = u.reshape(problem.nloc, problem.width)
            rows[0, problem.layout.el0 + 1] = -5.0   # ln(Cs/Ca) of Sr: may be negative
            assert problem.check_state(u) is None
            rows[1, problem.layout.el0 + 6] = np.inf  # Cm of the second element, Nd, in member 2
            expected = "Cm of Nd (state column 10, scaled) (member 2 of the 2 listed) is inf"
        assert expected in problem.check_state(u), problem.check_state(u)
    finally:
        if vec is not None:
            vec.destroy()
        problem.destroy()


def test_grain_check_state_in_the_eigen_basis():
    """With eigenvector unknowns the rim cells and finiteness are checked at every step and
    every cell every FULL_CHECK_EVERY steps: a negative rim value is named at once, a
    negative interior value within FULL_CHECK_EVERY checks, both at the right cell."""
    d = load_deck(INPUT / "xiong_fig1.toml", ["grid.cells=20", "grid.basis='eigen'"])
    problem = REGISTRY["grain_exchange"][0]([d], MPI.COMM_WORLD)
    u = np.zeros(problem.local_size)
    problem.initial_state(u)
    g, _ = problem.split(u)
    good = g.copy()
    for _ in range(2 * problem.FULL_CHECK_EVERY):
        assert problem.check_state(u) is None
    for cell, calls in ((20, 1), (5, problem.FULL_CHECK_EVERY)):
        c = problem.basis.to_cells(good)
        c[cell - 1, 1, 0] = -0.5                         # 44Ca, class 0 (opx)
        g[:] = problem.basis.from_cells(c)
        found = [problem.check_state(u) for _ in range(calls)]
        hits = [f for f in found if f]
        assert hits and (cell != 20 or found[0]), found        # the rim: at the first check
        assert f"concentration of 44Ca in opx grain class 0, cell {cell} of 20" in hits[0], hits
