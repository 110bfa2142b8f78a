"""Capsule decks for the thermal-diffusion experiments of Huang et al. (2010).

The paper gives each experiment's duration, the temperatures of the drilled samples
(estimated from a parabolic profile) and T0, but not the capsule's length or its end
temperatures. The decks therefore make three stated assumptions:

- a 4 mm melt column with the hot spot at its hot end, T(x) = T_hot - (T_hot - T_cold)(x/L)^2
  ("the diffusion distance in 46 h, 3.4 mm, is similar to the length of the sample");
- T_hot 10 °C above the hottest sample, and T_cold such that the column's mean temperature
  T_hot - (T_hot - T_cold)/3 equals T0: at steady state (and for an element without a
  Soret coefficient of its own) the sample equal to the starting material sits where T is
  the column's mean temperature, so this reproduces the experiment's T0;
- the isotopes diffuse with the Mg self-diffusivity 7e-11 m^2/s (paper, ref. 25) and the
  elements' own S_T is 0 (unknown; it changes concentration profiles, not isotope ratios).
"""

from ..physics.isotopes import ISOTOPE_MASSES, REFERENCE_ISOTOPE

#: assumptions shared by every experiment deck (see the module docstring)
LENGTH_MM = 4.0
HOT_MARGIN_C = 10.0
SELF_DIFFUSIVITY = 7e-11


def end_temperatures(T_hottest_sample, T0):
    """(T_hot, T_cold) of the parabolic profile whose mean temperature is ``T0``."""
    T_hot = T_hottest_sample + HOT_MARGIN_C
    return T_hot, T_hot - 3.0 * (T_hot - T0)


def experiment_deck(exp, T0, omegas, start_delta=lambda pair: pair.start_permil, cells=200):
    """A raw capsule deck (dict) for one experiment.

    Parameters
    ----------
    exp : table1.Experiment
        Its pairs give the isotopes and the hottest sample, ``published["duration_h"]`` the
        duration.
    T0 : float
        degC.
    omegas : dict
        Element -> Omega (permil per degC per amu).
    start_delta : callable(table1.Pair) -> float
        delta of the starting material (permil) for a pair: measured by default, or fitted.
    """
    name, duration_h = exp.name, exp.published["duration_h"]
    T_hottest_sample = max(float(p.T_C.max()) for p in exp.pairs)
    start_deltas = {}
    for p in exp.pairs:
        start_deltas.setdefault(p.element, {})[p.mass_number] = float(start_delta(p))
    T_hot, T_cold = end_temperatures(T_hottest_sample, T0)
    elements = {}
    for el, omega in omegas.items():
        ref = REFERENCE_ISOTOPE[el]
        deltas = start_deltas[el]
        isotopes = sorted(set(deltas) | {ref})
        elements[el] = {
            "isotopes": [f"{a}{el}" for a in isotopes],
            "masses_amu": [ISOTOPE_MASSES[el][a] for a in isotopes],
            "reference": f"{ref}{el}",
            "D_m2_s": SELF_DIFFUSIVITY,
            "S_T_per_C": 0.0,
            "Omega_permil_per_C_per_amu": float(omega),
            "start_delta_permil": [float(deltas.get(a, 0.0)) for a in isotopes],
        }
    return {
        "model": "capsule",
        "title": f"Huang et al. (2010) experiment {name}",
        "capsule": {"length_mm": LENGTH_MM, "cells": cells},
        "temperature": {"profile": "parabolic", "hot_C": round(T_hot, 3), "cold_C": round(T_cold, 3),
                        "hot_spot_mm": 0.0},
        "time": {"duration_h": float(duration_h), "series_points": 41},
        "elements": elements,
    }
