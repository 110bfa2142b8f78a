"""Deck schema of the grain-exchange model (SPEC §1).

Example (the paper's Fig. 1 case)::

    model = "grain_exchange"
    [isotopes]
    names = ["40Ca", "44Ca"]
    masses_amu = [39.962591, 43.955482]
    [temperature]
    path = "cooling"
    start_C = 1200.0
    end_C = 600.0
    rate_C_per_Myr = 10.0
    [phases.opx]
    modal_fraction = 0.7
    ...
"""

import math

from .common import CHECKPOINT, SOLVER
from .schema import Field, Table, TableOf

ZERO_C_IN_K = 273.15

PHASE = Table({
    "host": Field("bool", False, doc="the phase every partition coefficient is relative to (K = 1)"),
    "modal_fraction": Field("float", min=0.0, max=1.0, min_exclusive=True,
                            doc="volume fraction of the phase in the rock"),
    "radius_mm": Field("float", min=0.0, min_exclusive=True, max=1000.0, unit="mm",
                       doc="grain radius"),
    "D0_m2_s": Field("float", min=0.0, min_exclusive=True, max=1.0, unit="m^2/s",
                     doc="Arrhenius pre-exponential factor of the reference isotope"),
    "E_kJ_mol": Field("float", min=0.0, max=2000.0, unit="kJ/mol", doc="activation energy"),
    "beta": Field("float", 0.0, min=0.0, max=0.5,
                  doc="mass exponent: D_n = D_ref (m_ref/m_n)^beta"),
    "lnK_A": Field("float", 0.0, unit="K^2", doc="ln K(T) = A/T^2 + B/T + C relative to the host"),
    "lnK_B": Field("float", 0.0, unit="K", doc="see lnK_A"),
    "lnK_C": Field("float", 0.0, doc="see lnK_A"),
    "lnK_offset_K2": Field("float_list", [], unit="K^2",
                           doc="per isotope, added to ln K as value/T^2 (equilibrium isotope "
                               "fractionation); default zeros. The paper's eq. 5 prints 6.46e3 for "
                               "44Ca; the checked value is 646 (SPEC §1)"),
}, optional=False)

SCHEMA = Table({
    "model": Field("str", choices=("grain_exchange",)),
    "title": Field("str", "", doc="free text copied to the outputs"),
    "element": Table({
        "name": Field("str", "Ca"),
        "bulk_concentration": Field("float", 1.0, min=0.0, min_exclusive=True,
                                    doc="bulk-rock concentration used to scale output profiles"),
        "unit": Field("str", "relative to bulk rock", doc="unit of bulk_concentration"),
    }),
    "isotopes": Table({
        "names": Field("str_list", min_length=2, doc="isotope labels, e.g. [\"40Ca\", \"44Ca\"]"),
        "masses_amu": Field("float_list", min=0.0, min_exclusive=True, min_length=2, unit="amu"),
        "reference": Field("str", "", doc="isotope whose D0/E and ln K are given (default: first)"),
    }, optional=False),
    "temperature": Table({
        "path": Field("str", choices=("cooling", "heating"), doc="linear cooling or heating"),
        "start_C": Field("float", min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "end_C": Field("float", min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "rate_C_per_Myr": Field("float", min=0.0, min_exclusive=True, max=1e12, unit="degC/Myr"),
    }, optional=False),
    "grain_boundary": Table({
        "volume_fraction": Field("float", 0.0, min=0.0, max=0.5,
                                 doc="grain-boundary volume per rock volume; 0 makes the boundary "
                                     "an algebraic constraint (the paper's V_b -> 0)"),
    }),
    "phases": TableOf(PHASE, min_count=2, doc="one sub-table per mineral phase"),
    "grid": Table({
        "cells": Field("int", 100, min=4, max=100_000, doc="finite-volume cells per grain radius"),
        "stretch": Field("float", 1.0, min=1.0, max=1.5,
                         doc="ratio of neighbouring cell widths, cells shrinking toward the rim "
                             "(1 = uniform)"),
    }),
    "output": Table({
        "temperatures_C": Field("float_list", [], unit="degC",
                                doc="temperatures at which profiles are saved (the end is always)"),
        "series_points": Field("int", 121, min=2, max=100_000,
                               doc="evenly spaced samples of Delta(T) and T_app(T)"),
        "pair": Field("str_list", [], doc="[phase1, phase2] for Delta = 1000 ln(R1/R2); "
                                          "default: the first non-host phase and the host"),
    }),
    "solver": SOLVER,
    "checkpoint": CHECKPOINT,
})


def cross_check(deck):
    """Rules that involve several keys; returns a list of problems."""
    problems = []
    iso = deck["isotopes"]
    names, masses = iso["names"], iso["masses_amu"]
    if len(set(names)) != len(names):
        problems.append(f"isotopes.names = {names}: expected distinct names")
    if len(masses) != len(names):
        problems.append(f"isotopes.masses_amu has {len(masses)} entries: expected one per isotope "
                        f"({len(names)}, as in isotopes.names)")
    if iso["reference"] and iso["reference"] not in names:
        problems.append(f"isotopes.reference = {iso['reference']!r}: expected one of {names}")

    phases = deck["phases"]
    hosts = [p for p, v in phases.items() if v["host"]]
    if len(hosts) != 1:
        problems.append(f"phases: {len(hosts)} phases have host = true ({', '.join(hosts) or 'none'}); "
                        "expected exactly one (the phase partition coefficients refer to)")
    for name, ph in phases.items():
        if ph["host"] and any(ph[k] != 0.0 for k in ("lnK_A", "lnK_B", "lnK_C")):
            problems.append(f"phases.{name}: is the host, so its ln K is 0 by definition; "
                            "remove lnK_A/lnK_B/lnK_C")
        offs = ph["lnK_offset_K2"]
        if offs and len(offs) != len(names):
            problems.append(f"phases.{name}.lnK_offset_K2 has {len(offs)} entries: expected one "
                            f"per isotope ({len(names)})")
    total = sum(ph["modal_fraction"] for ph in phases.values())
    if abs(total - 1.0) > 1e-6:
        problems.append(f"phases.*.modal_fraction sum to {total:.6g}: expected 1 "
                        "(volume fractions of the rock)")

    grid = deck["grid"]
    log10_ratio = (grid["cells"] - 1) * math.log10(grid["stretch"])   # logs: no overflow
    if log10_ratio > 6.0:
        problems.append(f"grid.stretch = {grid['stretch']:g} with grid.cells = {grid['cells']}: the "
                        f"largest cell would be 1e{log10_ratio:.1f} times the smallest; expected at "
                        "most 1e6 (lower the stretch for this many cells)")

    t = deck["temperature"]
    if t["path"] == "cooling" and not t["end_C"] < t["start_C"]:
        problems.append(f"temperature.end_C = {t['end_C']:g}: a cooling path must end below "
                        f"start_C = {t['start_C']:g}")
    if t["path"] == "heating" and not t["end_C"] > t["start_C"]:
        problems.append(f"temperature.end_C = {t['end_C']:g}: a heating path must end above "
                        f"start_C = {t['start_C']:g}")
    lo, hi = sorted((t["start_C"], t["end_C"]))
    for T in deck["output"]["temperatures_C"]:
        if not lo <= T <= hi:
            problems.append(f"output.temperatures_C contains {T:g}: expected values on the path, "
                            f"between {lo:g} and {hi:g}")
    pair = deck["output"]["pair"]
    if pair and (len(pair) != 2 or pair[0] == pair[1] or any(p not in phases for p in pair)):
        problems.append(f"output.pair = {pair}: expected two different phase names from "
                        f"{sorted(phases)}")
    return problems
