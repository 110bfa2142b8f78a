"""The grain-exchange model against the paper (Xiong, Huang & Van Orman) and exact properties.

Published numbers (docs/models/grain_exchange.md; 1 mm grains, opx:cpx = 7:3, beta = 0.05, 1200 -> 600 °C):
Delta = 1.52 ‰ for 1–100 °C/Myr (read off Fig. 2, ±0.06 allowed for the reading and the
figure's spread), 1.40–1.52 ‰ at 10^3 °C/Myr, 0.31 ± 0.02 ‰ at 10^7 °C/Myr.
"""

import copy

import numpy as np
import pytest

from support import load_raw
from grain_helpers import DRIFT, final_delta, run_decks
from isosim.models import GrainExchangeProblem

FIG1 = load_raw("xiong_fig1.toml")


def deck(**changes):
    d = copy.deepcopy(FIG1)
    for key, value in changes.items():
        node = d
        *parts, last = key.split("__")
        for p in parts:
            node = node[p]
        node[last] = value
    return d


@pytest.mark.parametrize("rate, lo, hi", [
    (1.0, 1.46, 1.58), (10.0, 1.46, 1.58), (100.0, 1.46, 1.58),
    (1e3, 1.40, 1.52),
    (1e7, 0.29, 0.33),
])
def test_paper_fig2_rates(rate, lo, hi):
    _, rec = run_decks([deck(temperature__rate_C_per_Myr=rate)])
    d = final_delta(rec)
    print(f"rate {rate:g} °C/Myr: Delta = {d:.4f} permil (paper range {lo}-{hi})")
    assert lo <= d <= hi


def test_closure_temperature_fig1():
    """Paper: ~850 °C read off Fig. 1b; an independent check with the printed
    parameters gives ~812 °C. Our T_app frozen at the end must match the latter (±10 °C,
    the spread between grid/tolerance choices is < 1 °C) and lie below the former."""
    _, rec = run_decks([deck()])
    tc = float(np.asarray(rec.series["T_apparent_C"])[-1, 0])
    print(f"closure temperature at 10 °C/Myr: {tc:.1f} °C (paper ~850 by eye; an independent calculation ~812)")
    assert 802.0 <= tc <= 822.0
    # nearly frozen: over the last 50 °C of cooling T_app moves by less than 2 °C
    # (measured 1.9 °C from 700 to 600 °C ... see the closing note), while T moves 50
    tapp = np.asarray(rec.series["T_apparent_C"])[:, 0]
    T = np.asarray(rec.series["T_C"])[:, 0]
    print("T_app at 700, 650, 600 °C:", tapp[T <= 700.0][0], tapp[T <= 650.0][0], tc)
    assert abs(tapp[T <= 650.0][0] - tc) < 2.0


def test_fast_cooling_resolved_in_space():
    """At 10^7 °C/Myr the exchange is confined to ~10 µm of the rim: the stretched default
    grid must agree with a 4x finer one within 0.002 permil (0.6 % of Delta)."""
    _, coarse = run_decks([deck(temperature__rate_C_per_Myr=1e7)])
    _, fine = run_decks([deck(temperature__rate_C_per_Myr=1e7, grid__cells=400, grid__stretch=1.0075)])
    assert abs(final_delta(coarse) - final_delta(fine)) < 2e-3




@pytest.mark.parametrize("basis", sorted(DRIFT))
def test_conservation_full_cooling_run(basis):
    """Every isotope's inventory (grains + boundary) is constant to round-off."""
    _, rec = run_decks([deck(grid__cells=60, grid__basis=basis)])
    inv = np.asarray(rec.series["inventory"])  # (time, isotope, member)
    drift = np.abs(inv / inv[0] - 1.0).max()
    print(f"max relative inventory drift over the cooling run ({basis}): {drift:.2e}")
    assert drift < DRIFT[basis]


@pytest.mark.parametrize("basis", sorted(DRIFT))
def test_conservation_with_finite_boundary_volume(basis):
    _, rec = run_decks([deck(grid__cells=40, grain_boundary__volume_fraction=1e-3, grid__basis=basis)])
    inv = np.asarray(rec.series["inventory"])
    assert np.abs(inv / inv[0] - 1.0).max() < DRIFT[basis]


def test_radius_rate_invariance():
    """Only q R^2 matters (paper §3.2: doubling the radii equals cooling four times
    faster): (2R, q) and (R, 4q) give the same Delta within 1e-6 permil."""
    _, a = run_decks([deck(temperature__rate_C_per_Myr=4e3)])
    b_deck = deck(temperature__rate_C_per_Myr=1e3)
    b_deck["phases"]["opx"]["radius_mm"] = 2.0
    b_deck["phases"]["cpx"]["radius_mm"] = 2.0
    _, b = run_decks([b_deck])
    da, db = final_delta(a), final_delta(b)
    print(f"Delta(R, 4q) = {da:.12f}, Delta(2R, q) = {db:.12f}")
    assert abs(da - db) < 1e-6
    # and the closure temperature too
    ta = np.asarray(a.series["T_apparent_C"])[-1, 0]
    tb = np.asarray(b.series["T_apparent_C"])[-1, 0]
    assert abs(ta - tb) < 1e-6


class _Uniform(GrainExchangeProblem):
    """Start out of equilibrium: every grain and the boundary at the bulk composition."""

    def initial_state(self, u):
        g, b = self.split(u)
        g[:] = self.basis.uniform()[:, None, None]      # cells at 1 (in the basis's coordinates)
        b[:] = 1.0


def test_isothermal_relaxation_to_equilibrium():
    """Held at ~1000 °C for 100 diffusion times, Delta -> 1000 (ln K44 - ln K40) = 646e3/T^2
    within 1e-6 permil. (A 0.001 °C ramp stands in for an isothermal hold.)"""
    d = deck(temperature__start_C=1000.0, temperature__end_C=999.999,
             temperature__rate_C_per_Myr=1e-5, grid__cells=30, output__temperatures_C=[])
    problem, rec = run_decks([d], problem_cls=_Uniform)
    got = final_delta(rec)
    T = 999.999 + 273.15
    expected = 1000.0 * 646.0 / T**2
    print(f"relaxed Delta = {got:.9f}, equilibrium = {expected:.9f}")
    assert abs(got - expected) < 1e-6
    assert abs(problem.equilibrium_delta(999.999)[1] - expected) < 1e-12
    # it really started away from equilibrium
    assert abs(final_delta(rec) - np.asarray(rec.series["Delta_permil"])[0, 0, 1]) > 0.1


def test_heating_lowers_delta():
    """Fig. 7: heating 600 -> 1200 °C drives Delta below its equilibrium value (opposite
    sense to cooling)."""
    d = deck(temperature__path="heating", temperature__start_C=600.0, temperature__end_C=1200.0,
             temperature__rate_C_per_Myr=100.0, output__temperatures_C=[])
    problem, rec = run_decks([d])
    delta = np.asarray(rec.series["Delta_permil"])[:, 0, 1]
    eq = [problem.equilibrium_delta(T)[1] for T in np.asarray(rec.series["T_C"])[:, 0]]
    assert np.min(delta - eq) < -0.1
