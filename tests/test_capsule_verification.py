"""Verification of the capsule model (docs/models/capsule.md, 'Verification'): the exact discrete steady state, the
transient against an eigenfunction series, observed orders in space and time, conservation.

Reference transient (linear T, constant D and S_T): with s = d psi / dx constant,
c_t = D (c_x + s c)_x on [0, L] with c_x + s c = 0 at both ends and c(x, 0) = 1. Writing
c = exp(-s x / 2) w gives w_t = D w_xx - D s^2/4 w with w_x + s w / 2 = 0 at both ends, whose
eigenfunctions are w_0 = exp(-s x / 2) (the steady state) and
w_n = cos(k_n x) - s / (2 k_n) sin(k_n x), k_n = n pi / L, with decay rates
D (k_n^2 + s^2 / 4). The series coefficients are projections of w(x, 0) = exp(s x / 2).

``pytest -s`` prints the measured errors and orders.
"""

import copy
import math

import numpy as np
import pytest
from mpi4py import MPI
from petsc4py import PETSc
from scipy.integrate import quad

from isosim.deck import validate
from isosim.models import CapsuleProblem
from isosim.solver.driver import integrated

L_MM, D, S_T, T_HOT, T_COLD = 4.0, 7e-11, 5e-3, 1500.0, 1200.0

BASE = {
    "model": "capsule",
    "capsule": {"length_mm": L_MM, "cells": 50},
    "temperature": {"profile": "linear", "hot_C": T_HOT, "cold_C": T_COLD},
    "time": {"duration_h": 3.0, "series_points": 2},
    "elements": {"Fe": {"isotopes": ["54Fe", "56Fe", "57Fe"],
                        "masses_amu": [53.9396105, 55.9349375, 56.9353940],
                        "D_m2_s": D, "S_T_per_C": S_T, "Omega_permil_per_C_per_amu": 0.0125}},
    "components": {"MgO": {"D_m2_s": D / 10, "S_T_per_C": -2e-3}},
    "solver": {"rtol": 1e-11, "atol": 1e-14},
}


def deck(**changes):
    raw = copy.deepcopy(BASE)
    for key, value in changes.items():
        node = raw
        *path, last = key.split("__")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def run(raw, options=(), comm=MPI.COMM_WORLD):
    """Integrate a raw deck in-process; returns (problem, recorder, gathered final state)."""
    opts = PETSc.Options()
    prefix = "capsule_test_"
    for i in range(0, len(options), 2):
        opts.setValue(prefix + options[i].lstrip("-"), options[i + 1])
    try:
        with integrated([validate(raw)], comm, options_prefix=prefix) as (problem, rec, drv):
            final = drv.gather()
            steps = drv.ts.getStepNumber()
    finally:
        for i in range(0, len(options), 2):
            opts.delValue(prefix + options[i].lstrip("-"))
    rec.steps = steps
    return problem, rec, final


def centres_m(n):
    return (np.arange(n) + 0.5) * L_MM * 1e-3 / n


def series_solution(x, t, s, D, L, terms=400):
    """c(x, t) of the drift-diffusion problem above (starting from c = 1)."""
    a0 = L / quad(lambda y: math.exp(-s * y), 0, L)[0]
    w = a0 * np.exp(-s * x / 2)
    for n in range(1, terms + 1):
        k = n * math.pi / L
        wn = lambda y, k=k: math.cos(k * y) - s / (2 * k) * math.sin(k * y)          # noqa: E731
        num = quad(lambda y: math.exp(s * y / 2) * wn(y), 0, L, limit=400)[0]
        den = L / 2 * (1 + (s / (2 * k)) ** 2)          # int w_n^2: the cross term vanishes
        w += num / den * math.exp(-D * (k * k + s * s / 4) * t) * (np.cos(k * x) - s / (2 * k) * np.sin(k * x))
    return np.exp(-s * x / 2) * w


# ----------------------------------------------------------------------------- steady state
@pytest.mark.parametrize("profile", ["linear", "parabolic", "table"])
def test_direct_steady_state_is_the_discrete_one_and_the_analytic_profile(profile):
    """u_ss = exp(-psi) normalised; the operator's residual on it vanishes, and it equals the
    analytic exp(-int S_T dT) at the cell centres to 1e-12 (with T-dependent S_T and
    Arrhenius D too)."""
    raw = deck(capsule__cells=64, temperature__profile=profile, temperature__hot_spot_mm=1.0)
    del raw["elements"]["Fe"]["D_m2_s"]
    raw["elements"]["Fe"].update(dS_T_dT_per_C2=2e-6, D0_m2_s=1e-6, E_kJ_mol=150.0)
    if profile == "table":
        raw["temperature"].update(table_x_mm=[0.0, 1.0, 2.5, 4.0], table_T_C=[1500.0, 1480.0, 1300.0, 1250.0])
        for key in ("hot_C", "cold_C"):          # a table profile refuses the end temperatures
            raw["temperature"].pop(key, None)
    p = CapsuleProblem([validate(raw)], MPI.COMM_WORLD)
    u_ss = p.steady_state()
    # residual of the assembled operator M on u_ss, relative to |M| |u_ss|
    A = p._operator()
    x = A.createVecRight()
    x.setArray(u_ss.ravel())
    y = A.createVecLeft()
    A.mult(x, y)
    row_scale = np.abs(p.a_plus[:-1]) + np.abs(p.a_minus[:-1]) + np.abs(p.a_plus[1:]) + np.abs(p.a_minus[1:])
    rel = np.abs(y.getArray().reshape(p.nloc, p.nsp)) / (p.duration_s * row_scale * u_ss).max()
    assert rel.max() < 1e-13
    # analytic profile at the centres, normalised to the same inventory
    for k, sp in enumerate(p.species):
        exact = np.exp(-sp.psi(p.T_C))
        total = MPI.COMM_WORLD.allreduce(exact.sum())
        exact *= p.ncells / total
        err = MPI.COMM_WORLD.allreduce(np.max(np.abs(u_ss[:, k] / exact - 1.0)), op=MPI.MAX)
        assert err < 1e-12, (sp.name, err)
    for obj in (x, y):
        obj.destroy()
    p.destroy()


def test_time_integration_reaches_the_direct_steady_state():
    """Run 40 diffusion times L^2/D: the TS solution equals the direct steady state to 1e-12
    relative, and 1000 ln(R/R_start) is linear in T with slope -1000 dS_T per pair."""
    duration_h = 40 * (L_MM * 1e-3) ** 2 / D / 3600.0 * 10      # MgO is ten times slower
    p, rec, final = run(deck(time__duration_h=duration_h))
    ss = p.gather_state(rec.u_ss.ravel())
    if MPI.COMM_WORLD.rank:
        return
    ss = ss["u"]
    assert np.max(np.abs(final["u"] / ss - 1.0)) < 1e-12
    T = p.profile.T_C((np.arange(p.ncells) + 0.5) * p.h * 1e3)
    fe = p.elements[0]
    for k in fe.heavy:
        lnR = 1000 * np.log(final["u"][k] / final["u"][fe.ref])
        slope, intercept = np.polyfit(T, lnR, 1)
        dS = BASE["elements"]["Fe"]["Omega_permil_per_C_per_amu"] / 1000 * fe.dm[k]
        assert abs(slope / (-1000 * dS) - 1) < 1e-10
        assert np.max(np.abs(lnR - (slope * T + intercept))) < 1e-9      # linear to round-off
    # the recorded Omega (conventional delta, the paper's way) is within 0.5 % of the input
    om = rec.headline()[0]["Omega_permil_per_C_per_amu"]["Fe"]
    assert abs(om / 0.0125 - 1) < 5e-3


# ----------------------------------------------------------------------------- transient
def _transient_error(cells, t_h=3.0):
    p, rec, final = run(deck(capsule__cells=cells, time__duration_h=t_h))
    if MPI.COMM_WORLD.rank:
        return None
    s = S_T * (T_COLD - T_HOT) / (L_MM * 1e-3)        # d psi / dx of the element's own part
    ref = series_solution(centres_m(cells), t_h * 3600, s, D, L_MM * 1e-3)
    # the reference isotope carries only the element's S_T (no mass term)
    return np.max(np.abs(final["u"][0] - ref))


def test_transient_against_series_and_order_in_space():
    errors = [_transient_error(n) for n in (25, 50, 100, 200)]
    if MPI.COMM_WORLD.rank:
        return
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    print("\ncapsule transient, max error at 25/50/100/200 cells:", errors, "orders", orders)
    assert errors[-1] < 2e-5
    assert all(1.9 < o < 2.1 for o in orders[1:]), orders


@pytest.mark.parametrize("ts_type,scheme,order", [("arkimex", "3", 3), ("arkimex", "2e", 2), ("beuler", None, 1)])
def test_observed_order_in_time(ts_type, scheme, order):
    """Fixed steps against a tight adaptive run on the same grid (the semi-discrete solution)."""
    raw = deck(capsule__cells=40, time__duration_h=3.0)
    _, _, ref = run(raw, ["-ts_rtol", "1e-13", "-ts_atol", "1e-15"])
    errs = []
    steps = (16, 32, 64) if order > 1 else (64, 128, 256)
    for n in steps:
        opts = ["-ts_type", ts_type, "-ts_adapt_type", "none", "-ts_dt", repr(1.0 / n)]
        if scheme:
            opts += ["-ts_arkimex_type", scheme]
        _, _, fin = run(raw, opts)
        if MPI.COMM_WORLD.rank == 0:
            errs.append(np.max(np.abs(fin["u"] - ref["u"])))
    if MPI.COMM_WORLD.rank:
        return
    orders = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    print(f"\n{ts_type} {scheme or ''}: errors {errs}, orders {orders}")
    assert abs(orders[-1] - order) < 0.3, orders


# ----------------------------------------------------------------------------- conservation
def test_every_species_conserved():
    p, rec, final = run(deck(capsule__cells=100, time__duration_h=50.0, time__series_points=11))
    drift = np.max(np.abs(np.asarray(rec.series["inventory"]) - 1.0))
    print(f"\ncapsule inventory drift over 50 h: {drift:.2e}")
    assert drift < 1e-12
