"""Deck schema of the thermal-diffusion capsule model (docs/models/capsule.md).

Example (Mg isotopes and MgO in a 4 mm capsule, the paper's time-series question)::

    model = "capsule"
    [capsule]
    length_mm = 4.0
    [temperature]
    profile = "parabolic"
    hot_C = 1528.0
    cold_C = 1234.0
    [time]
    duration_h = 168.0
    output_h = [46.0]
    [elements.Mg]
    isotopes = ["24Mg", "25Mg", "26Mg"]
    masses_amu = [23.9850417, 24.9858370, 25.9825930]
    D_m2_s = 7e-11
    S_T_per_C = 1e-3
    Omega_permil_per_C_per_amu = 0.0307
    [components.MgO]
    D_m2_s = 7e-12
    S_T_per_C = 1e-3
"""

import numpy as np

from .common import CHECKPOINT, SOLVER, check_solver
from .schema import Field, Table, TableOf
from .tables import INLINE_ROWS, resolve_table, table_columns

PROFILES = ("linear", "parabolic", "table")

#: keys shared by elements and components: how fast and which way the species moves
_TRANSPORT = {
    "D_m2_s": Field("float", None, min=0.0, min_exclusive=True, max=1.0, unit="m^2/s",
                    doc="constant diffusivity (give this, or D0_m2_s and E_kJ_mol)"),
    "D0_m2_s": Field("float", None, min=0.0, min_exclusive=True, max=1e6, unit="m^2/s",
                     doc="Arrhenius pre-exponential factor: D = D0 exp(-E / R T(x))"),
    "E_kJ_mol": Field("float", None, min=0.0, max=2000.0, unit="kJ/mol", doc="activation energy"),
    "S_T_per_C": Field("float", 0.0, min=-1.0, max=1.0, unit="1/degC",
                       doc="Soret coefficient of the element or component at T_ref_C (positive: "
                           "migrates to the cold end)"),
    "dS_T_dT_per_C2": Field("float", 0.0, min=-1.0, max=1.0, unit="1/degC^2",
                            doc="temperature derivative of S_T: S_T(T) = S_T + dS_T/dT (T - T_ref)"),
    "T_ref_C": Field("float", 1400.0, min=-273.15, max=5000.0, unit="degC",
                     doc="temperature at which S_T_per_C applies"),
    "concentration": Field("float", 1.0, min=0.0, min_exclusive=True,
                           doc="uniform starting concentration (sets the scale of the profiles)"),
    "unit": Field("str", "wt%", doc="unit of concentration"),
}

ELEMENT = Table(dict(_TRANSPORT, **{
    "isotopes": Field("str_list", min_length=2, doc="isotope labels, e.g. [\"54Fe\", \"56Fe\", \"57Fe\"]"),
    "masses_amu": Field("float_list", min=0.0, min_exclusive=True, min_length=2, unit="amu"),
    "reference": Field("str", "", doc="denominator isotope of delta values (default: the first)"),
    "abundances": Field("float_list", [], min=0.0, min_exclusive=True,
                        doc="atom fractions of the isotopes in the starting material (default equal; "
                            "only the scale of isotope concentrations depends on it)"),
    "dS_T_per_C_per_amu": Field("float", None, min=-1.0, max=1.0, unit="1/degC/amu",
                                doc="mass term of S_T: S_T,i = S_T + dS_T_per_amu (m_i - m_ref)"),
    "Omega_permil_per_C_per_amu": Field("float", None, min=-1000.0, max=1000.0,
                                        unit="permil/degC/amu",
                                        doc="the same mass term as Omega = 1000 dS_T per amu"),
    "start_delta_permil": Field("float_list", [], min=-1000.0, min_exclusive=True, unit="permil",
                                doc="delta of each isotope in the starting material, against the "
                                    "standard (reference isotope 0; default all 0)"),
    "beta": Field("float", 0.0, min=0.0, max=0.5, doc="mass exponent: D_i = D (m_ref/m_i)^beta"),
}))

COMPONENT = Table(dict(_TRANSPORT))

SCHEMA = Table({
    "model": Field("str", choices=("capsule",)),
    "title": Field("str", "", doc="free text copied to the outputs"),
    "capsule": Table({
        "length_mm": Field("float", 4.0, min=0.0, min_exclusive=True, max=1e4, unit="mm",
                           doc="length of the melt column, x = 0 (hot end) to L"),
        "cells": Field("int", 200, min=4, max=100_000_000, doc="finite-volume cells along the column"),
    }),
    "temperature": Table({
        "profile": Field("str", choices=PROFILES,
                         doc="linear: hot_C at x = 0 to cold_C at L; parabolic: hot spot hot_C at "
                             "hot_spot_mm, cold_C at the farther end; table: (x, T) from file"),
        "hot_C": Field("float", None, min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "cold_C": Field("float", None, min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "hot_spot_mm": Field("float", 0.0, min=0.0, unit="mm", doc="parabolic: position of the hot spot"),
        "file": Field("str", "", doc="table: CSV with columns x_mm, T_C (header row), relative to "
                                     "the deck; read when the deck is loaded"),
        "table_x_mm": Field("float_list", [], unit="mm", doc="table: positions (filled from file)"),
        "table_T_C": Field("float_list", [], min=-273.15, min_exclusive=True, max=5000.0, unit="degC",
                           doc="table: temperatures (filled from file)"),
        "table_sha256": Field("str", "", doc="table: SHA-256 of the rows of a file of more than 1000 "
                                             "rows, which the resolved deck refers to instead of "
                                             "copying them (set when the deck is loaded; a given "
                                             "value pins the file's rows)"),
    }, optional=False),
    "time": Table({
        "duration_h": Field("float", min=0.0, min_exclusive=True, max=1e9, unit="h",
                            doc="run duration from the uniform start"),
        "output_h": Field("float_list", [], min=0.0, unit="h",
                          doc="times at which profiles and the fraction of steady state are saved"),
        "series_points": Field("int", 41, min=2, max=100_000,
                               doc="evenly spaced times of the inventories, Omega and the approach "
                                   "to steady state"),
    }, optional=False),
    "elements": TableOf(ELEMENT, doc="one sub-table per element with isotopes, e.g. [elements.Fe]"),
    "components": TableOf(COMPONENT, doc="major-element components, e.g. [components.MgO]"),
    "solver": SOLVER,
    "checkpoint": CHECKPOINT,
})


def cross_check(deck):
    """Rules that involve several keys; returns a list of problems."""
    problems = []
    if not deck["elements"] and not deck["components"]:
        problems.append("[elements] and [components]: both empty; expected at least one species, "
                        "e.g. [elements.Fe] or [components.MgO]")
    for kind in ("elements", "components"):
        for name, sp in deck[kind].items():
            key = f"{kind}.{name}"
            arrhenius = sp["D0_m2_s"] is not None or sp["E_kJ_mol"] is not None
            if (sp["D_m2_s"] is None) == (not arrhenius) or (
                    arrhenius and (sp["D0_m2_s"] is None or sp["E_kJ_mol"] is None)):
                problems.append(f"{key}: give either D_m2_s, or both D0_m2_s and E_kJ_mol (got D_m2_s = "
                                f"{sp['D_m2_s']}, D0_m2_s = {sp['D0_m2_s']}, E_kJ_mol = {sp['E_kJ_mol']})")
    for name, el in deck["elements"].items():
        problems += _check_element(f"elements.{name}", el)
    t = deck["temperature"]
    L = deck["capsule"]["length_mm"]
    table_keys = ("file", "table_x_mm", "table_T_C", "table_sha256")
    unused = [k for k in (table_keys if t["profile"] != "table" else ("hot_C", "cold_C"))
              if t.get(k) not in (None, "", [])]
    for k in unused:
        problems.append(f"temperature.{k} = {t[k]!r}: not used by profile = {t['profile']!r}; remove it")
    if t["profile"] in ("linear", "parabolic"):
        for k in ("hot_C", "cold_C"):
            if t[k] is None:
                problems.append(f"temperature.{k}: missing; expected a temperature in degC for the "
                                f"{t['profile']} profile")
        if t["hot_C"] is not None and t["cold_C"] is not None and t["hot_C"] < t["cold_C"]:
            problems.append(f"temperature.hot_C = {t['hot_C']}: expected >= cold_C = {t['cold_C']}")
        elif t["hot_C"] is not None and t["hot_C"] == t["cold_C"]:
            problems.append(f"temperature.hot_C = cold_C = {t['hot_C']}: the capsule is isothermal; expected "
                            "hot_C above cold_C (Soret diffusion needs a temperature gradient)")
        if t["hot_spot_mm"] > L:
            problems.append(f"temperature.hot_spot_mm = {t['hot_spot_mm']}: expected within the capsule "
                            f"(0 to capsule.length_mm = {L})")
    elif not t["table_x_mm"] and not t.get("table_sha256"):
        problems.append("temperature.file: missing; expected a CSV with columns x_mm, T_C for the table profile")
    else:
        x, T = table_columns(t)               # arrays (a large table's are not in the deck)
        if len(x) != len(T):
            problems.append("temperature.table_x_mm and table_T_C: expected the same length")
        elif np.any(np.diff(x) <= 0):
            problems.append(f"temperature.table_x_mm = {_shown(x)}: expected strictly increasing positions")
        elif T.min() == T.max():
            problems.append(f"temperature.table_T_C: every temperature is {T[0]:g}; the capsule is "
                            "isothermal; expected a temperature gradient (Soret diffusion needs one)")
        elif x[0] > 0.0 or x[-1] < L:
            problems.append(f"temperature table spans x = {x[0]:g} to {x[-1]:g} mm: expected it to cover "
                            f"the capsule, 0 to {L:g} mm")
    duration = deck["time"]["duration_h"]
    late = [h for h in deck["time"]["output_h"] if h > duration]
    if late:
        problems.append(f"time.output_h = {deck['time']['output_h']}: {late} after time.duration_h = "
                        f"{duration}; expected times within the run")
    problems.extend(check_solver(deck["solver"]))
    if not problems:                       # needs a valid profile and valid species
        problems.extend(_check_scales(deck))
    return problems


#: Largest span of the thermal potential psi = int S_T dT along the column: the steady state
#: is exp(-psi), so a span of 300 already means concentrations 1e130 apart (real melts: < 1).
MAX_PSI_SPAN = 300.0


def _check_scales(deck):
    """The numbers the model computes from the deck must be finite: each species' D t / h^2
    (h the cell width) and the span of its thermal potential along the column."""
    import math

    import numpy as np

    from ..physics import soret
    cap, t = deck["capsule"], deck["temperature"]
    profile = soret.TemperatureProfile.from_deck(cap, t)
    x = np.linspace(0.0, cap["length_mm"], 1001)
    T = profile.T_C(np.concatenate([x, table_columns(t)[0]]) if t["profile"] == "table" else x)
    h_m = cap["length_mm"] * 1e-3 / cap["cells"]
    duration_s = deck["time"]["duration_h"] * 3600.0
    problems = []
    for kind in ("elements", "components"):
        for name, sp in deck[kind].items():
            with np.errstate(all="ignore"):
                D = soret.diffusivity(T, sp["D_m2_s"], sp["D0_m2_s"], sp["E_kJ_mol"])
                rate = np.max(D) * duration_s / np.float64(h_m) ** 2
                dms = [0.0]
                if kind == "elements":
                    m = np.array(sp["masses_amu"])
                    ref = sp["isotopes"].index(sp["reference"]) if sp["reference"] else 0
                    dms = list(m - m[ref])
                a = mass_term_per_amu(sp) if kind == "elements" else 0.0
                span = max(float(np.ptp(soret.thermal_potential(T, sp["S_T_per_C"], sp["dS_T_dT_per_C2"],
                                                                 sp["T_ref_C"], a, dm))) for dm in dms)
            if not math.isfinite(rate):
                problems.append(f"{kind}.{name}: D t / h^2 = {rate:g} with cells of {h_m * 1e3:g} mm "
                                f"(capsule.length_mm / capsule.cells) over {deck['time']['duration_h']:g} h: "
                                "expected a finite number; use fewer cells or a longer capsule")
            if not span <= MAX_PSI_SPAN:
                problems.append(f"{kind}.{name}: the Soret potential (S_T_per_C, dS_T_dT_per_C2 and the mass "
                                f"term integrated over T) spans {span:g} along the capsule; expected at most "
                                f"{MAX_PSI_SPAN:g} (the steady state exp(-psi) must be a finite number)")
    return problems


def _check_element(key, el):
    problems = []
    n = len(el["isotopes"])
    if len(set(el["isotopes"])) != n:
        problems.append(f"{key}.isotopes = {el['isotopes']}: expected distinct names")
    if len(set(el["masses_amu"])) != len(el["masses_amu"]):
        problems.append(f"{key}.masses_amu = {el['masses_amu']}: expected distinct masses (Omega and the "
                        "delta slopes are per amu of mass difference)")
    for k in ("masses_amu", "abundances", "start_delta_permil"):
        if el[k] and len(el[k]) != n:
            problems.append(f"{key}.{k} has {len(el[k])} entries: expected one per isotope ({n})")
    if el["reference"] and el["reference"] not in el["isotopes"]:
        problems.append(f"{key}.reference = {el['reference']!r}: expected one of {el['isotopes']}")
    both = el["dS_T_per_C_per_amu"] is not None and el["Omega_permil_per_C_per_amu"] is not None
    if both and abs(el["Omega_permil_per_C_per_amu"] - 1000.0 * el["dS_T_per_C_per_amu"]) > \
            1e-9 * abs(el["Omega_permil_per_C_per_amu"]):
        problems.append(f"{key}: dS_T_per_C_per_amu = {el['dS_T_per_C_per_amu']} and "
                        f"Omega_permil_per_C_per_amu = {el['Omega_permil_per_C_per_amu']} disagree; "
                        "expected one of them (Omega = 1000 dS_T per amu)")
    return problems


def resolve_files(deck, base_dir):
    """Read a tabulated temperature profile: into the deck, or, above
    :data:`~isosim.deck.tables.INLINE_ROWS` rows, by reference (absolute ``file`` and
    ``table_sha256``; :func:`isosim.deck.tables.resolve_table`). Returns a list of problems."""
    t = deck["temperature"]
    if t["profile"] != "table":
        if not t.get("table_sha256"):
            t.pop("table_sha256", None)
        return []
    return resolve_table(t, base_dir, ("x_mm", "T_C"), "position in mm from the hot end, temperature in degC")


def _shown(values):
    """A column for a message: the whole of a table kept in the deck, the ends of a larger one."""
    values = [float(v) for v in values]
    if len(values) > INLINE_ROWS:
        return "[" + ", ".join(map(str, values[:3])) + ", ..., " + ", ".join(map(str, values[-3:])) + "]"
    return str(values)


def mass_term_per_amu(el):
    """Delta S_T per amu (1/degC/amu) of an element table, from either of its two forms."""
    if el["dS_T_per_C_per_amu"] is not None:
        return el["dS_T_per_C_per_amu"]
    if el["Omega_permil_per_C_per_amu"] is not None:
        return el["Omega_permil_per_C_per_amu"] / 1000.0
    return 0.0
