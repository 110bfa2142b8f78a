"""Deck schema of the grain-exchange model (docs/models/grain_exchange.md).

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

import numpy as np

from .common import (CHECKPOINT, ENSEMBLE, INVERT, SAMPLE, SWEEP, check_sample, check_solver, solver_table,
                     check_studies)
# the grid: defaults and grid.accuracy_permil's choice; grid_lines and derives_from are the
# model's deck hooks (isosim check's grid line; sweeps' patched member decks)
from .grain_grid import (DEFAULT_CELLS, DEFAULT_STRETCH, accuracy_choice, choose_grid,  # noqa: F401
                         default_stretch, derives_from, grid_lines)
from .schema import Field, Table, TableOf
from .tables import resolve_table, table_columns


PATHS = ("cooling", "heating", "segments", "table", "exponential")

PHASE = Table({
    "host": Field("bool", False, doc="the phase every partition coefficient is relative to (K = 1)"),
    "modal_fraction": Field("float", min=0.0, max=1.0, min_exclusive=True,
                            doc="volume fraction of the phase in the rock"),
    "radius_mm": Field("float", None, min=0.0, min_exclusive=True, max=1000.0, unit="mm",
                       doc="grain radius (size_distribution = single)"),
    "size_distribution": Field("str", "single", choices=("single", "lognormal", "bins"),
                               doc="single radius, a lognormal population, or explicit bins"),
    "median_radius_mm": Field("float", None, min=0.0, min_exclusive=True, max=1000.0, unit="mm",
                              doc="lognormal: median radius of the volume-weighted distribution"),
    "sigma_ln": Field("float", None, min=0.0, max=3.0,
                      doc="lognormal: standard deviation of ln(radius)"),
    "bins": Field("int", 8, min=1, max=1000, doc="lognormal: number of equal-volume size classes"),
    "bin_radii_mm": Field("float_list", [], min=0.0, min_exclusive=True, max=1000.0, unit="mm",
                          doc="bins: radius of each size class"),
    "bin_fractions": Field("float_list", [], min=0.0, max=1.0,
                           doc="bins: volume fraction of the phase in each class (sum 1)"),
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
                               "44Ca; the checked value is 646 (docs/models/grain_exchange.md)"),
    "Delta_eq_A": Field("float_list", [], unit="permil 10^6 K^2",
                        doc="per isotope, equilibrium fractionation against the host phase in the form the "
                            "literature tabulates, 1000 ln alpha = A x 10^6 / T^2 (permil, T in K; 0 for the "
                            "reference isotope); sets lnK_offset_K2 = 1000 A (give one of the two)"),
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
        "path": Field("str", choices=PATHS,
                      doc="cooling/heating: linear at rate_C_per_Myr; segments: linear pieces "
                          "segment_end_C at segment_rate_C_per_Myr; table: (t, T) from file; "
                          "exponential: T_inf + (T_start - T_inf) exp(-t/t_c) down to end_C"),
        "start_C": Field("float", None, min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "end_C": Field("float", None, min=-273.15, min_exclusive=True, max=5000.0, unit="degC"),
        "rate_C_per_Myr": Field("float", None, min=0.0, min_exclusive=True, max=1e12, unit="degC/Myr"),
        "segment_end_C": Field("float_list", [], min=-273.15, min_exclusive=True, max=5000.0, unit="degC",
                               doc="segments: temperature at the end of each segment"),
        "segment_rate_C_per_Myr": Field("float_list", [], min=0.0, min_exclusive=True, max=1e12,
                                        unit="degC/Myr", doc="segments: |dT/dt| of each segment"),
        "asymptote_C": Field("float", None, min=-273.15, min_exclusive=True, max=5000.0, unit="degC",
                             doc="exponential: temperature approached at long times"),
        "time_constant_Myr": Field("float", None, min=0.0, min_exclusive=True, max=1e6, unit="Myr",
                                   doc="exponential: e-folding time"),
        "file": Field("str", "", doc="table: CSV file with columns t_Myr, T_C (header row), relative "
                                     "to the deck; read when the deck is loaded"),
        "table_t_Myr": Field("float_list", [], unit="Myr", doc="table: times (filled from file)"),
        "table_T_C": Field("float_list", [], min=-273.15, min_exclusive=True, max=5000.0, unit="degC",
                           doc="table: temperatures (filled from file)"),
        "table_sha256": Field("str", "", doc="table: SHA-256 of the rows of a file of more than 1000 "
                                             "rows, which the resolved deck refers to instead of "
                                             "copying them (set when the deck is loaded; a given "
                                             "value pins the file's rows)"),
    }, optional=False),
    "grain_boundary": Table({
        "volume_fraction": Field("float", 0.0, min=0.0, max=0.5,
                                 doc="grain-boundary volume per rock volume; 0 makes the boundary "
                                     "an algebraic constraint (the paper's V_b -> 0)"),
    }),
    "phases": TableOf(PHASE, min_count=2, doc="one sub-table per mineral phase"),
    "grid": Table({
        "cells": Field("int", None, min=4, max=100_000,
                       doc=f"finite-volume cells per grain radius; default {DEFAULT_CELLS}, or the "
                           "number grid.accuracy_permil chooses"),
        "stretch": Field("float", None, min=1.0, max=1.5,
                         doc="ratio of neighbouring cell widths, cells shrinking toward the rim "
                             f"(1 = uniform); default {DEFAULT_STRETCH:g} at the default {DEFAULT_CELLS} "
                             f"cells, and for other cells the same mapping, {DEFAULT_STRETCH:g}^({DEFAULT_CELLS}"
                             "/cells) (at most 1.5): within 1 % of the converged Delta for grains of "
                             "0.1-3 mm, size ratios up to 10, 1-1e7 degC/Myr (docs/user-guide.md#the-grid)"),
        "accuracy_permil": Field("float", None, min=0.0, min_exclusive=True, max=1000.0, unit="permil",
                                 doc="the largest |Delta error| from the grid you accept: isosim chooses "
                                     "the cells of the default mapping (stretch 1.2^(50/cells)) from an "
                                     "error model measured on grains of 0.1-3 mm, |dDelta| <= e50 (50/cells)^p "
                                     "x max(Delta scale, 0.05 permil) x safety, Delta scale an a-priori "
                                     "size of Delta from the deck's equilibrium and kinetic fractionation "
                                     "(docs/user-guide.md#the-grid); 25-1000 cells; give it instead of "
                                     "cells and stretch"),
        "basis": Field("str", "auto", choices=("auto", "eigen", "cells"),
                       doc="unknowns of the grain cells (the same equations either way): 'eigen' "
                           "integrates the amplitudes of the diffusion operator's eigenvectors, "
                           "diagonal and several times faster per step; 'cells' the cell values "
                           "with an O(N) tridiagonal solve, for any size; auto: eigen up to 1000 "
                           "cells"),
    }),
    "output": Table({
        "temperatures_C": Field("float_list", [], unit="degC",
                                doc="temperatures at which profiles are saved (the end is always; "
                                    "every passage on a path that returns)"),
        "times_Myr": Field("float_list", [], min=0.0, unit="Myr", doc="times at which profiles are saved"),
        "series_points": Field("int", 121, min=2, max=100_000,
                               doc="evenly spaced samples of Delta(T) and T_app(T)"),
        "series_exact": Field("bool", False,
                              doc="land the time integrator on every series sample (true) instead "
                                  "of interpolating the recorded quantities over each step (false: "
                                  "fewer steps; profiles and the end are always exact)"),
        "sweep_profiles": Field("bool", False,
                                doc="in a sweep, keep each member's grain profiles at the end of its "
                                    "path (results.h5 group profiles: concentration, delta_permil "
                                    "[member, isotope, class, cell], r_um); off by default: 4096 "
                                    "members of 4 classes of 100 cells and 2 isotopes are 26 MB"),
        "pair": Field("str_list", [], doc="[phase1, phase2] for Delta = 1000 ln(R1/R2); "
                                          "default: the first non-host phase and the host"),
    }),
    "measurement": Table({
        "core_fraction": Field("float", 1.0, min=0.0, max=1.0, min_exclusive=True,
                               doc="fraction of each grain's radius sampled (1: whole grains, "
                                   "0.5: the inner half), as when only cores are analysed"),
        "contaminant_phase": Field("str", "", doc="phase mixed into another's mineral separate"),
        "contaminated_phase": Field("str", "", doc="the separate that contains the contaminant"),
        "contamination_fraction": Field("float", 0.0, min=0.0, max=1.0, max_exclusive=True,
                                        doc="volume fraction of the contaminated separate that is "
                                            "the contaminant (e.g. cpx in an opx separate)"),
    }, doc="how a sample's Delta is measured: Delta_measured_permil"),
    "sample": SAMPLE,
    "sweep": SWEEP,
    "invert": INVERT,
    "ensemble": ENSEMBLE,
    # ARK5: at the default tolerances 2-4x fewer steps than ARK3 and ~100x more accurate, for
    # about the same time (measured on the 4096-member Fig. 2 sweep; see docs/performance.md)
    "solver": solver_table("5"),
    "checkpoint": CHECKPOINT,
})


def _equilibrium_from_permil(name, ph):
    """``Delta_eq_A`` (1000 ln alpha = A 10^6/T^2, permil) as the model's ln K offsets (A 10^6/1000
    = 1000 A, K^2), written into ``lnK_offset_K2``; both given must agree (a resolved deck holds
    both, and is validated again at a restart)."""
    a = ph["Delta_eq_A"]
    if not a:
        return []
    offsets = [1000.0 * x for x in a]
    given = ph["lnK_offset_K2"]
    if given and (len(given) != len(offsets) or
                  any(abs(g - o) > 1e-12 * max(1.0, abs(o)) for g, o in zip(given, offsets))):
        return [f"phases.{name}: Delta_eq_A = {a} and lnK_offset_K2 = {given} are both given and differ "
                f"(Delta_eq_A means lnK_offset_K2 = {offsets}); give one of them"]
    ph["lnK_offset_K2"] = offsets
    return []


#: What minerals do (plausibility warnings, not errors): |Delta_eq| at magmatic temperatures,
#: grain radii, and pre-exponential factors of solid-state diffusion.
PLAUSIBLE = {"Delta_eq_permil": 20.0, "radius_mm": (1e-3, 100.0), "D0_m2_s": (1e-16, 1.0)}


def equilibrium_lines(deck):
    """``isosim check``'s report of what the equilibrium fractionation means: Delta of each
    isotope against the reference, phase minus host, at the start and end temperatures."""
    from ..physics.constants import ZERO_C
    from ..physics.paths import path_from_deck
    names = deck["isotopes"]["names"]
    ref = names.index(deck["isotopes"]["reference"] or names[0])
    path = path_from_deck(deck["temperature"])
    temps = [float(path.T_C(0.0)), float(path.T_C(1.0))]
    host = next(p for p, v in deck["phases"].items() if v["host"])
    out = []
    for name, ph in deck["phases"].items():
        offs = ph["lnK_offset_K2"] or [0.0] * len(names)
        host_offs = deck["phases"][host]["lnK_offset_K2"] or [0.0] * len(names)
        for n, iso in enumerate(names):
            if n == ref or name == host:
                continue
            d = (offs[n] - offs[ref]) - (host_offs[n] - host_offs[ref])
            vals = ", ".join(f"{1000.0 * d / (T + ZERO_C) ** 2:.4g} permil at {T:g} degC" for T in temps)
            out.append(f"equilibrium Delta({iso}/{names[ref]}) {name}-{host}: {vals}")
    return out


def plausibility_warnings(deck):
    """Values a deck may hold but minerals do not (warnings, printed by check and at run start)."""
    from ..physics.constants import ZERO_C
    out = []
    choice = accuracy_choice(deck)
    if choice is not None and not choice["met"]:
        out.append(f"warning: grid.accuracy_permil = {deck['grid']['accuracy_permil']:g}: even "
                   f"{choice['cells']} cells, the most it chooses, are modelled to be {choice['error']:.2g} "
                   f"permil from the converged Delta (Delta scale {choice['scale']:.2g} permil); running on "
                   f"{choice['cells']} cells: accept a larger error, or set grid.cells and grid.stretch "
                   "(instead of accuracy_permil) and check them with isosim converge")
    lo_r, hi_r = PLAUSIBLE["radius_mm"]
    lo_d, hi_d = PLAUSIBLE["D0_m2_s"]
    names = deck["isotopes"]["names"]
    ref = names.index(deck["isotopes"]["reference"] or names[0])
    for name, ph in deck["phases"].items():
        offs = ph["lnK_offset_K2"] or [0.0] * len(names)
        worst = max((abs(o - offs[ref]) for o in offs), default=0.0)
        at = 1000.0 * worst / (800.0 + ZERO_C) ** 2
        if at > PLAUSIBLE["Delta_eq_permil"]:
            hint = (f"Delta_eq_A = {ph['Delta_eq_A']} is A in Delta = A x 10^6/T^2 permil (0.646, not 646?)"
                    if ph["Delta_eq_A"] else "is it A of Delta = A x 10^6/T^2 permil (then give Delta_eq_A) "
                    "rather than K^2 (lnK_offset_K2 = 1000 A)?")
            out.append(f"warning: phases.{name}: the equilibrium fractionation is {at:.3g} permil at 800 degC "
                       f"(lnK_offset_K2 = {offs}); minerals at magmatic temperatures stay within "
                       f"{PLAUSIBLE['Delta_eq_permil']:g} permil: {hint}")
        radii = [r for r in (ph.get("radius_mm"), ph.get("median_radius_mm")) if r] + list(ph.get("bin_radii_mm") or [])
        for r in radii:
            if not lo_r <= r <= hi_r:
                out.append(f"warning: phases.{name}: a grain radius of {r:g} mm; mineral grains are "
                           f"{lo_r * 1e3:g} um to {hi_r / 10:g} cm (radii are in mm: a value in m or um?)")
                break
        if not lo_d <= ph["D0_m2_s"] <= hi_d:
            out.append(f"warning: phases.{name}: D0_m2_s = {ph['D0_m2_s']:g}; solid-state diffusion has "
                       f"D0 between {lo_d:g} and {hi_d:g} m^2/s (a value in cm^2/s is 1e4 times too large)")
    return out


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
        problems.extend(_equilibrium_from_permil(name, ph))
        offs = ph["lnK_offset_K2"]
        if offs and len(offs) != len(names):
            problems.append(f"phases.{name}.lnK_offset_K2 has {len(offs)} entries: expected one "
                            f"per isotope ({len(names)})")
    total = sum(ph["modal_fraction"] for ph in phases.values())
    if abs(total - 1.0) > 1e-6:
        problems.append(f"phases.*.modal_fraction sum to {total:.6g}: expected 1 "
                        "(volume fractions of the rock)")

    grid = deck["grid"]
    accuracy = grid["accuracy_permil"]
    given = {k: grid[k] for k in ("cells", "stretch") if grid[k] is not None}
    if accuracy is None:
        del grid["accuracy_permil"]         # the resolved deck (and its digest) as before the key
        if grid["cells"] is None:
            grid["cells"] = DEFAULT_CELLS
        if grid["stretch"] is None:
            grid["stretch"] = default_stretch(grid["cells"])
    log10_ratio = (grid["cells"] - 1) * math.log10(grid["stretch"]) if accuracy is None else 0.0
    if log10_ratio > 6.0:   # logs: no overflow
        problems.append(f"grid.stretch = {grid['stretch']:g} with grid.cells = {grid['cells']}: the "
                        f"largest cell would be 1e{log10_ratio:.1f} times the smallest; expected at "
                        "most 1e6 (lower the stretch for this many cells)")

    problems.extend(_check_path(deck["temperature"]))
    if not problems:
        from ..physics.paths import path_from_deck
        path = path_from_deck(deck["temperature"])
        knots = path.T_C(np.linspace(0.0, 1.0, 2001))
        lo, hi = float(knots.min()), float(knots.max())
        for T in deck["output"]["temperatures_C"]:
            if not lo - 1e-9 <= T <= hi + 1e-9:
                problems.append(f"output.temperatures_C contains {T:g}: expected values on the path, "
                                f"between {lo:g} and {hi:g}")
        for t in deck["output"]["times_Myr"]:
            if not 0.0 <= t <= path.duration_Myr:
                problems.append(f"output.times_Myr contains {t:g}: expected times within the path, "
                                f"0 to {path.duration_Myr:g} Myr")
    for name, ph in phases.items():
        problems.extend(_check_size(name, ph))
    m = deck["measurement"]
    if m["contamination_fraction"] > 0:
        for key in ("contaminant_phase", "contaminated_phase"):
            if m[key] not in phases:
                problems.append(f"measurement.{key} = {m[key]!r}: expected one of {sorted(phases)} "
                                "when contamination_fraction > 0")
        if m["contaminant_phase"] == m["contaminated_phase"]:
            problems.append("measurement.contaminant_phase equals contaminated_phase: expected two phases")
    for key, dist in deck["sample"].items():
        problems.extend(check_sample(deck, key, dist))
    problems.extend(check_studies(deck))
    problems.extend(check_solver(deck["solver"]))
    pair = deck["output"]["pair"]
    if pair and (len(pair) != 2 or pair[0] == pair[1] or any(p not in phases for p in pair)):
        problems.append(f"output.pair = {pair}: expected two different phase names from "
                        f"{sorted(phases)}")
    if not problems:                        # needs a valid path and valid grain sizes
        problems.extend(_check_scales(deck, path, knots))
    if accuracy is not None:                # needs a valid path, finite ln K and a valid pair
        if problems:
            grid["cells"] = grid["cells"] or DEFAULT_CELLS          # the deck is refused anyway
            grid["stretch"] = grid["stretch"] or default_stretch(grid["cells"])
        else:
            problems.extend(choose_grid(deck, knots, given))
    if not problems:                        # every phase faster than double precision resolves (issue 17)
        from ..physics.timescales import equilibrium_limit_problems
        problems.extend(equilibrium_limit_problems(deck))
    return problems


_PATH_KEYS = {
    "cooling": ("start_C", "end_C", "rate_C_per_Myr"),
    "heating": ("start_C", "end_C", "rate_C_per_Myr"),
    "segments": ("start_C", "segment_end_C", "segment_rate_C_per_Myr"),
    "table": ("file", "table_t_Myr", "table_T_C"),
    "exponential": ("start_C", "end_C", "asymptote_C", "time_constant_Myr"),
}
_EMPTY = (None, "", [])
DIGEST = "table_sha256"


def _check_path(t):
    kind = t["path"]
    needed = _PATH_KEYS[kind]
    problems = []
    for key, value in t.items():
        if key != "path" and value not in _EMPTY and key not in needed and not (kind == "table" and key == DIGEST):
            problems.append(f"temperature.{key} = {value!r}: not used by path = {kind!r} "
                            f"(which takes {', '.join(needed)}); remove it")
    for key in needed:
        if t[key] in _EMPTY and not (kind == "table" and key != "file" and t["file"]):
            if kind == "table" and key == "file" and t["table_t_Myr"]:
                continue
            problems.append(f"temperature.{key}: missing; path = {kind!r} needs it")
    if problems:
        return problems
    s, e = t.get("start_C"), t.get("end_C")
    if kind == "cooling" and not e < s:
        problems.append(f"temperature.end_C = {e:g}: a cooling path must end below start_C = {s:g}")
    if kind == "heating" and not e > s:
        problems.append(f"temperature.end_C = {e:g}: a heating path must end above start_C = {s:g}")
    if kind == "segments":
        ends, rates = t["segment_end_C"], t["segment_rate_C_per_Myr"]
        if len(ends) != len(rates):
            problems.append(f"temperature.segment_rate_C_per_Myr has {len(rates)} entries: expected one "
                            f"per segment ({len(ends)}, as in segment_end_C)")
        prev = [s] + ends[:-1]
        for k, (a, b) in enumerate(zip(prev, ends)):
            if a == b:
                problems.append(f"temperature.segment_end_C[{k}] = {b:g}: equals the temperature the "
                                "segment starts from; expected a change")
    if kind == "table":
        tt, TT = table_columns(t)
        if len(tt) != len(TT) or len(tt) < 2:
            problems.append(f"temperature table: {len(tt)} times and {len(TT)} temperatures; expected "
                            "two equally long columns of at least 2 rows")
        elif np.any(np.diff(tt) <= 0):
            problems.append("temperature table: times must increase strictly")
    if kind == "exponential":
        a = t["asymptote_C"]
        if not ((s - a) * (e - a) > 0 and abs(e - a) < abs(s - a)):
            problems.append(f"temperature.end_C = {e:g}: an exponential path from {s:g} toward "
                            f"asymptote_C = {a:g} never reaches it; expected end_C between the two")
    return problems


#: Longest temperature history, in Myr (the age of the Earth is 4567 Myr). A longer one,
#: from a rate of 1e-300 degC/Myr say, only makes D t / r^2 overflow in the model's set-up.
MAX_DURATION_MYR = 1e6
#: Largest |ln K| on the path: K = exp(ln K) must be a finite number, with room for the
#: sums of phi K over phases; real mineral pairs have |ln K| of a few units.
MAX_LN_K = 300.0
#: Smallest grain-boundary volume fraction above 0: its rows are scaled by 1/volume_fraction.
MIN_BOUNDARY_FRACTION = 1e-9


def _check_scales(deck, path, T_C):
    """The numbers the model computes from the deck must be finite: the path's duration,
    each phase's D t / r^2 at the hottest point of the path, and ln K along the path
    (``T_C``: the path's temperatures at evenly spaced times)."""
    from ..physics.constants import SECONDS_PER_MYR, ZERO_C
    from ..physics.grain_exchange import diffusivity, ln_partition
    kind = deck["temperature"]["path"]
    dur = path.duration_Myr
    if not (math.isfinite(dur) and 0.0 < dur <= MAX_DURATION_MYR):
        return [f"temperature: path = {kind!r} lasts {dur:g} Myr; expected more than 0 and at most "
                f"{MAX_DURATION_MYR:g} Myr (from {', '.join(_PATH_KEYS[kind])})"]
    problems = []
    vb = deck["grain_boundary"]["volume_fraction"]
    if 0.0 < vb < MIN_BOUNDARY_FRACTION:
        problems.append(f"grain_boundary.volume_fraction = {vb:g}: expected 0 (an algebraic boundary, the "
                        f"paper's V_b -> 0) or at least {MIN_BOUNDARY_FRACTION:g}")
    masses = np.array(deck["isotopes"]["masses_amu"])
    ref = deck["isotopes"]["reference"] or deck["isotopes"]["names"][0]
    m_ref = masses[deck["isotopes"]["names"].index(ref)]
    T_K = np.asarray(T_C) + ZERO_C
    for name, ph in deck["phases"].items():
        radius = _smallest_radius_mm(ph)
        with np.errstate(all="ignore"):
            D = diffusivity(T_K.max(), ph["D0_m2_s"], ph["E_kJ_mol"] * 1e3, ph["beta"], m_ref, masses)
            kappa = np.max(D) * dur * SECONDS_PER_MYR / (np.float64(radius) * 1e-3) ** 2   # numpy: inf, not an error
            offsets = ph["lnK_offset_K2"] or [0.0]
            lnK = np.array([ln_partition(T_K, ph["lnK_A"], ph["lnK_B"], ph["lnK_C"], off) for off in offsets])
        if not math.isfinite(kappa):
            problems.append(f"phases.{name}: D t / r^2 = {kappa:g} over the path (smallest radius "
                            f"{radius:g} mm, D0_m2_s = {ph['D0_m2_s']:g}, {dur:g} Myr): expected a "
                            "finite number; use a larger radius or a shorter path")
        worst = np.unravel_index(np.argmax(np.where(np.isfinite(lnK), np.abs(lnK), np.inf)), lnK.shape)
        if not abs(lnK[worst]) <= MAX_LN_K:
            problems.append(f"phases.{name}: ln K = (lnK_A + lnK_offset_K2)/T^2 + lnK_B/T + lnK_C reaches "
                            f"{lnK[worst]:g} at {T_K[worst[1]] - ZERO_C:g} degC on the path (temperature."
                            f"{', temperature.'.join(_PATH_KEYS[kind])}); expected |ln K| <= {MAX_LN_K:g} "
                            "(K = exp(ln K) must be a finite number)")
    return problems


def _smallest_radius_mm(ph):
    """A lower bound of a phase's smallest size class (without scipy: for a lognormal, its
    classes lie within exp(+-3.3 sigma) of the median for up to 1000 bins; 6 sigma bounds it)."""
    kind = ph["size_distribution"]
    if kind == "single":
        return ph["radius_mm"]
    if kind == "lognormal":
        return ph["median_radius_mm"] * math.exp(-6.0 * ph["sigma_ln"])
    return min(ph["bin_radii_mm"])


def _check_size(name, ph):
    kind = ph["size_distribution"]
    used = {"single": ("radius_mm",), "lognormal": ("median_radius_mm", "sigma_ln", "bins"),
            "bins": ("bin_radii_mm", "bin_fractions")}[kind]
    problems = []
    for key in ("radius_mm", "median_radius_mm", "sigma_ln", "bin_radii_mm", "bin_fractions"):
        given = ph[key] not in _EMPTY
        if key in used and not given:
            problems.append(f"phases.{name}.{key}: missing; size_distribution = {kind!r} needs it")
        if key not in used and given:
            problems.append(f"phases.{name}.{key} = {ph[key]!r}: not used with size_distribution = "
                            f"{kind!r}; remove it")
    if kind == "bins" and not problems:
        r, f = ph["bin_radii_mm"], ph["bin_fractions"]
        if len(r) != len(f):
            problems.append(f"phases.{name}.bin_fractions has {len(f)} entries: expected one per radius ({len(r)})")
        elif abs(sum(f) - 1.0) > 1e-6:
            problems.append(f"phases.{name}.bin_fractions sum to {sum(f):.6g}: expected 1")
    return problems


def resolve_files(deck, base_dir):
    """Read a tabulated temperature path: into the deck (so the resolved deck is
    self-contained), or, above :data:`~isosim.deck.tables.INLINE_ROWS` rows, by reference
    (absolute ``file`` and ``table_sha256``; :func:`isosim.deck.tables.resolve_table`).

    Returns a list of problems (file, line, what is wrong)."""
    t = deck["temperature"]
    if t["path"] != "table":
        if not t.get(DIGEST):
            t.pop(DIGEST, None)
        return []
    return resolve_table(t, base_dir, ("t_Myr", "T_C"), "time in Myr, temperature in degC")
