"""The analytic Jacobian and the exact bordered solve, on general configurations
(3 phases with several radii, 3 isotopes, algebraic and finite-volume grain boundary)."""


import numpy as np
import pytest
from mpi4py import MPI

from support import load_raw
from grain_helpers import DRIFT, run_decks
from isosim.deck import validate
from isosim.models import GrainExchangeProblem


def three_phase_deck(v_b=0.0, cells=12, basis="auto"):
    d = load_raw("xiong_fig1.toml")
    d["isotopes"] = {"names": ["40Ca", "42Ca", "44Ca"], "masses_amu": [39.962591, 41.958618, 43.955482]}
    d["phases"]["opx"]["modal_fraction"] = 0.5
    d["phases"]["opx"]["lnK_offset_K2"] = [0.0, 323.0, 646.0]
    d["phases"]["grt"] = {"modal_fraction": 0.2, "radius_mm": 2.5, "D0_m2_s": 3e-9, "E_kJ_mol": 290.0,
                          "beta": 0.2, "lnK_A": 1.0e6, "lnK_B": -4.0e3, "lnK_C": 1.0,
                          "lnK_offset_K2": [0.0, -100.0, -200.0]}
    d["phases"]["cpx"]["radius_mm"] = 0.5
    d["grain_boundary"]["volume_fraction"] = v_b
    d["grid"] = {"cells": cells, "stretch": 1.1, "basis": basis}
    d["output"]["temperatures_C"] = [900.0]
    return d


@pytest.mark.parametrize("basis", ["cells", "eigen"])
@pytest.mark.parametrize("v_b", [0.0, 1e-3])
def test_jacobian_and_exact_solve(v_b, basis):
    problem = GrainExchangeProblem([validate(three_phase_deck(v_b, basis=basis))], MPI.COMM_SELF)
    rng = np.random.default_rng(1)
    n = problem.local_size
    for tau in (0.0, 0.37, 1.0):
        shift = 10.0 ** rng.uniform(-2, 6)
        problem.ijacobian(tau, None, shift)
        v = rng.standard_normal(n)
        # F is linear in (u, u'): F(tau, v, shift v) - F(tau, 0, 0) is exactly J v
        f1, f0 = np.zeros(n), np.zeros(n)
        problem.ifunction(tau, v, shift * v, f1)
        problem.ifunction(tau, np.zeros(n), np.zeros(n), f0)
        jv = np.zeros(n)
        problem.jacobian_mult(v, jv)
        scale = np.abs(f1).max()
        assert np.abs((f1 - f0) - jv).max() <= 1e-13 * scale
        # the O(N) bordered solve is exact: J (J^-1 r) = r to round-off
        r = rng.standard_normal(n)
        x = np.zeros(n)
        problem.solve_jacobian(r, x)
        jx = np.zeros(n)
        problem.jacobian_mult(x, jx)
        assert np.abs(jx - r).max() <= 1e-9 * np.abs(r).max(), np.abs(jx - r).max()


def test_dense_jacobian_matches_finite_differences():
    """Column-by-column J from jacobian_mult equals finite differences of the residual."""
    problem = GrainExchangeProblem([validate(three_phase_deck(0.0, cells=5))], MPI.COMM_SELF)
    n = problem.local_size
    tau, shift = 0.5, 3.0
    problem.ijacobian(tau, None, shift)
    u = np.random.default_rng(2).uniform(0.5, 1.5, n)
    J = np.zeros((n, n))
    fd = np.zeros((n, n))
    f0 = np.zeros(n)
    problem.ifunction(tau, u, shift * u, f0)
    for k in range(n):
        e = np.zeros(n)
        e[k] = 1.0
        problem.jacobian_mult(e, J[:, k])
        h = 1e-6
        f1 = np.zeros(n)
        problem.ifunction(tau, u + h * e, shift * (u + h * e), f1)
        fd[:, k] = (f1 - f0) / h
    assert np.abs(J - fd).max() <= 1e-6 * np.abs(J).max()


def test_three_phases_three_isotopes_run_conserves():
    d = three_phase_deck(0.0, cells=30)
    d["temperature"]["rate_C_per_Myr"] = 100.0
    problem, rec = run_decks([d])
    inv = np.asarray(rec.series["inventory"])
    assert np.abs(inv / inv[0] - 1).max() < DRIFT[problem.basis.name]
    delta = np.asarray(rec.series["Delta_permil"])[-1, 0]   # opx-cpx for 42Ca and 44Ca
    # mass-dependent: the 42Ca/40Ca fractionation is about half of 44Ca/40Ca
    assert 0.4 < delta[1] / delta[2] < 0.6
    assert delta[0] == 0.0


@pytest.mark.parametrize("v_b", [0.0, 1e-3])
def test_eigen_basis_is_the_cell_system(v_b):
    """The eigenvector unknowns are a change of coordinates of the same equations: for any
    state in cells, the residual, J x and the exact solve of the eigen problem, transformed
    back to cells, equal the cell problem's to round-off (1e-12 of their size; cond(Q) is
    ~10 on this grid)."""
    cells, eigen = (GrainExchangeProblem([validate(three_phase_deck(v_b, cells=24, basis=b))], MPI.COMM_SELF)
                    for b in ("cells", "eigen"))
    rng = np.random.default_rng(7)
    n = cells.local_size

    def to_eigen(u):                   # the same state in the eigen problem's coordinates
        out = u.copy()
        g, _ = eigen.split(out)
        g[:] = eigen.basis.from_cells(cells.split(u)[0])
        return out

    def to_cells(u):
        out = u.copy()
        g, _ = cells.split(out)
        g[:] = eigen.basis.to_cells(eigen.split(u)[0])
        return out

    for tau, shift in ((0.0, 1e3), (0.6, 0.5)):
        u, ud = 1.0 + rng.random(n), rng.standard_normal(n)
        fc, fe = np.zeros(n), np.zeros(n)
        cells.ifunction(tau, u, ud, fc)
        eigen.ifunction(tau, to_eigen(u), to_eigen(ud), fe)
        assert np.abs(to_cells(fe) - fc).max() <= 1e-12 * np.abs(fc).max()
        for p in (cells, eigen):
            p.ijacobian(tau, None, shift)
        r = rng.standard_normal(n)
        xc, xe = np.zeros(n), np.zeros(n)
        cells.solve_jacobian(r, xc)
        eigen.solve_jacobian(to_eigen(r), xe)
        assert np.abs(to_cells(xe) - xc).max() <= 1e-12 * np.abs(xc).max()


def test_bases_give_the_same_run():
    """The Fig. 1 case with either unknowns: Delta and T_app agree within the time
    tolerance (both runs at rtol 1e-10: their difference is the two step sequences' error,
    ~1e-9 permil; 1e-7 permil is 100x that and far below any physical difference)."""
    finals = {}
    for basis in ("cells", "eigen"):
        d = load_raw("xiong_fig1.toml")
        d["grid"].update(cells=40, basis=basis)
        d["solver"].update(rtol=1e-10, atol=1e-14)
        _, rec = run_decks([d])
        finals[basis] = (np.asarray(rec.series["Delta_permil"])[-1, 0, 1], np.asarray(rec.series["T_apparent_C"])[-1, 0])
    (dc, tc), (de, te) = finals["cells"], finals["eigen"]
    print(f"Delta cells {dc:.12f}, eigen {de:.12f}; T_app {tc:.9f}, {te:.9f}")
    assert abs(dc - de) < 1e-7 and abs(tc - te) < 1e-5
