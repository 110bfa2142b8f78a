"""Diffusion time scales of a grain-exchange deck against its temperature path (pure numpy).

For each phase, with R its smallest grain radius and D(T) = D0 exp(-E/RT) (the reference
isotope's), the diffusion time is R^2/D(T), and the number of diffusion times the path
spans is

    N = t_path / (R^2 / D(T))        at one temperature (start, end, hottest, coldest), and
    N_path = integral of D(T(t)) / R^2 dt over the path.

N decides what a run can tell and what it costs:

- N << 1 at the end of the path: the grains closed (the interesting case; the shipped
  decks have N_end from ~1e-9 to ~1e-2 and N at the hottest point up to ~1e4);
- N >> 1 everywhere on the path, in every phase: the grains are in equilibrium with each
  other at every instant and the result is the equilibrium partitioning at the end
  temperature. Above :data:`EQUILIBRIUM_LIMIT` = 2^52 ~ 4.5e15 = 1/eps (eps the spacing of
  doubles at 1) the relaxation time R^2/D is shorter than the smallest time step double
  precision can represent on the path's clock (tau in [0, 1], spacing 2.2e-16 near 1) and
  the Jacobian's diffusion terms exceed its time terms by more than 1/eps: the run cannot
  compute anything but round-off. Such a deck is refused (:func:`equilibrium_limit_problems`,
  called by the deck validation: ``isosim check`` exits 2).
- N at the hottest point above :data:`SLOW_LIMIT` = 1e10 in any phase (the shipped decks
  reach at most 2.8e5, scaling_grain_population.toml): the integrator must follow grains
  that re-equilibrate that often at steps far below the usual ones. Measured on the Fig. 1
  deck with both D0 scaled up (wall time to 600 °C, one core): N = 6.9e8 0.5 s (as the
  shipped deck), 6.9e9 2.4 s, 6.9e10 17 s, 6.9e11 ~25 min and 2e12 ~1.5 h (progress
  estimates); D0 = 1 m^2/s in both phases is N = 5.9e12, E = 0 in both 3.8e13.
  :func:`slow_warning` returns one line saying so, printed before the run.
"""

import math

import numpy as np

from .constants import R_GAS, SECONDS_PER_MYR, ZERO_C
from .paths import path_from_deck

#: N (diffusion times over the path) above which every phase being this fast makes the
#: deck meaningless in double precision: 2^52 = 1/eps (see the module docstring).
EQUILIBRIUM_LIMIT = 2.0 ** 52
#: N at the hottest point of the path above which a run is announced as slow.
SLOW_LIMIT = 1e10


def _smallest_radius_m(ph):
    kind = ph.get("size_distribution", "single")
    if kind == "lognormal":
        return ph["median_radius_mm"] * math.exp(-6.0 * ph["sigma_ln"]) * 1e-3
    if kind == "bins":
        return min(ph["bin_radii_mm"]) * 1e-3
    return ph["radius_mm"] * 1e-3


def grain_timescales(deck, points=2001):
    """Per phase: the diffusion time R^2/D at the start, end, hottest and coldest points of the
    path (s), the number N of diffusion times the path spans at each, and N_path (the
    integral). Also the path's duration and temperatures. A dict ``{"duration_s", "start_C",
    "end_C", "phases": {name: {...}}}``."""
    path = path_from_deck(deck["temperature"])
    tau = np.linspace(0.0, 1.0, points)
    T_K = np.asarray(path.T_C(tau), dtype=float) + ZERO_C
    dur = path.duration_Myr * SECONDS_PER_MYR
    out = {"duration_s": dur, "duration_Myr": path.duration_Myr, "start_C": float(T_K[0] - ZERO_C),
           "end_C": float(T_K[-1] - ZERO_C), "phases": {}}
    with np.errstate(all="ignore"):
        for name, ph in deck["phases"].items():
            R = _smallest_radius_m(ph)
            D = ph["D0_m2_s"] * np.exp(-ph["E_kJ_mol"] * 1e3 / (R_GAS * T_K))
            rate = D / R ** 2                              # diffusion times per second
            hot, cold = int(np.argmax(rate)), int(np.argmin(rate))
            n_path = float(np.sum(0.5 * (rate[1:] + rate[:-1]) * np.diff(tau)) * dur)
            out["phases"][name] = {
                "radius_m": R,
                "t_diff_start_s": float(1.0 / rate[0]), "t_diff_end_s": float(1.0 / rate[-1]),
                "N_start": float(rate[0] * dur), "N_end": float(rate[-1] * dur),
                "N_hot": float(rate[hot] * dur), "T_hot_C": float(T_K[hot] - ZERO_C),
                "N_cold": float(rate[cold] * dur), "T_cold_C": float(T_K[cold] - ZERO_C),
                "N_path": n_path,
            }
    return out


def _time_text(seconds):
    for unit, s in (("Myr", SECONDS_PER_MYR), ("yr", SECONDS_PER_MYR / 1e6), ("h", 3600.0)):
        if seconds >= s:
            return f"{seconds / s:.3g} {unit}"
    return f"{seconds:.3g} s"


def equilibrium_limit_problems(deck):
    """Validation problems (a list of str, empty if none) of a grain deck in which every phase
    spans at least EQUILIBRIUM_LIMIT diffusion times even at the coldest point of its path."""
    ts = grain_timescales(deck)
    ph = ts["phases"]
    if not ph or min(p["N_cold"] for p in ph.values()) < EQUILIBRIUM_LIMIT:
        return []
    each = "; ".join(f"{n}: R^2/D = {_time_text(1.0 / (p['N_cold'] / ts['duration_s']))} at {p['T_cold_C']:g} °C, "
                     f"{p['N_cold']:.2g} diffusion times over the path (D0_m2_s = {deck['phases'][n]['D0_m2_s']:g}, "
                     f"E_kJ_mol = {deck['phases'][n]['E_kJ_mol']:g})" for n, p in ph.items())
    return [f"phases: every phase re-equilibrates more than 2^52 = {EQUILIBRIUM_LIMIT:.2g} times over the "
            f"{ts['duration_Myr']:g} Myr path even at its coldest point ({each}). The grains are in equilibrium "
            "at every instant; the result is the equilibrium partitioning at the end of the path "
            f"({ts['end_C']:g} °C), and the relaxation is faster than double precision can resolve on the path "
            "(the run could only fail or compute round-off). Use realistic diffusivities (E_kJ_mol = 0 makes D "
            "independent of temperature: no closure), or take the equilibrium value"]


def slow_warning(deck):
    """One line (str) if some phase spans more than SLOW_LIMIT diffusion times at the hottest
    point of the path (the run will crawl), else ""."""
    ts = grain_timescales(deck)
    ph = ts["phases"]
    if not ph:
        return ""
    name, p = max(ph.items(), key=lambda kv: kv[1]["N_hot"])
    if not p["N_hot"] > SLOW_LIMIT:
        return ""
    per_myr = p["N_hot"] / ts["duration_Myr"]
    closed = [n for n, q in ph.items() if q["N_cold"] < 1.0]
    outcome = ("the grains stay in equilibrium along the whole path: the result is the equilibrium partitioning "
               f"at {ts['end_C']:g} °C" if not closed else
               f"{', '.join(closed)} still close{'s' if len(closed) == 1 else ''} (fewer than one diffusion time "
               "at the coldest point), so the result is meaningful, but the integrator must follow "
               f"{name}'s re-equilibration at tiny steps")
    ph_deck = deck["phases"][name]
    return (f"[isosim] warning: this run will be far slower than usual: {name} (D0_m2_s = {ph_deck['D0_m2_s']:g}, "
            f"E_kJ_mol = {ph_deck['E_kJ_mol']:g}, R = {p['radius_m'] * 1e3:g} mm) re-equilibrates {per_myr:.2g} "
            f"times per Myr at {p['T_hot_C']:g} °C (R^2/D = {_time_text(ts['duration_s'] / p['N_hot'])}; "
            f"{p['N_hot']:.2g} diffusion times over the {ts['duration_Myr']:g} Myr path, the shipped decks at "
            f"most 2.8e5); {outcome}. Consider realistic D0_m2_s/E_kJ_mol, or stop it (Ctrl-C) and take "
            "the equilibrium value")
