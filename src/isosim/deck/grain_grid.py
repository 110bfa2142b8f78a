"""The grain-exchange grid a deck gets: the default mapping, and the cell count
``grid.accuracy_permil`` chooses from a stated accuracy (an a-priori error model measured by
scripts/grid_accuracy_study.py), with what ``isosim check`` says about it.

Deck-level code (it reads resolved deck dicts); the grid itself is
:class:`isosim.discretization.spherical.SphereGrid`.
"""

import math

import numpy as np

#: The grid of a deck that does not set ``grid.cells`` / ``grid.stretch`` (issue 20): 50 cells
#: growing 1.2x per cell toward the centre (rim cell 2.2e-5 of the radius, centre cell 0.17).
#: Measured by scripts/grid_accuracy_study.py against the grid 4x finer: within 0.2 % of Delta
#: (floor 0.05 permil) on grains of 0.1-3 mm with size ratios up to 10 at 1-1e7 degC/Myr; 100
#: uniform cells (the earlier default) were 8 % off there, 100 at stretch 1.03 1.4 %.
DEFAULT_CELLS = 50
DEFAULT_STRETCH = 1.2


def default_stretch(cells):
    """``grid.stretch`` of a deck that does not give it: the default grid's mapping on ``cells``
    cells, DEFAULT_STRETCH^(DEFAULT_CELLS/cells) (so that the ratio of the innermost to the
    outermost cell width stays about the default grid's; ``isosim converge`` refines the same way), at
    most the schema's 1.5."""
    return min(DEFAULT_STRETCH ** (DEFAULT_CELLS / cells), 1.5) if cells != DEFAULT_CELLS else DEFAULT_STRETCH


#: The error model of ``grid.accuracy_permil`` (issue 20), measured by
#: ``scripts/grid_accuracy_study.py --fit`` on the default family (cells N, stretch 1.2^(50/N);
#: N = 25, 35, 50, 70, 100) against the grid 4x finer, over the study's 1164 members (radii
#: 0.1-3 mm, ratios up to 30, 1-1e7 degC/Myr, reheating and exponential paths, the rock without
#: equilibrium offsets and without mass-dependent diffusion): the worst
#: |dDelta| / max(Delta scale, ACCURACY_FLOOR) is 2.38e-3, 1.22e-3, 6.0e-4, 3.06e-4, 1.54e-4,
#: order 1.98 overall and 2.0 on 10 of the 12 cases, but 1.1-1.4 on 0.1 mm opx beside 3 mm cpx
#: cooled slowly to 400 degC and 1.65 without mass-dependent diffusion. The model takes the
#: order ACCURACY_ORDER = 1.5 (so that it still bounds those cases when extrapolated to 1000
#: cells) and ACCURACY_E50 the smallest factor with e50 (50/N)^1.5 above every worst error
#: (8.43e-4, set by N = 25), rounded up.
ACCURACY_E50 = 8.5e-4
ACCURACY_ORDER = 1.5
#: the chosen N meets ACCURACY_SAFETY x the model: the 4x grid's own error (1/16 of the
#: candidate's at order 2, 1/8 at 1.5) and populations and paths the study does not hold
ACCURACY_SAFETY = 2.0
#: permil: a Delta scale below this is judged as this (the study's floor, the analytical precision)
ACCURACY_FLOOR = 0.05
#: weight of the kinetic term of the Delta scale (see :func:`delta_scale`)
KINETIC_WEIGHT = 0.15
#: cells grid.accuracy_permil may choose: from 25 (below ~23 the stretch cap 1.5 breaks the
#: default mapping, so fewer cells are no longer a coarsening of the same grid) to 1000 (the
#: eigen basis's limit, EIGEN_MAX_CELLS of isosim.discretization.bases)
ACCURACY_CELLS = (25, 1000)


def delta_scale(deck, T_C):
    """An a-priori size of |Delta| of the deck's output pair, in permil, from the deck alone
    (``T_C``: temperatures along the path): ``(scale, equilibrium, kinetic)``, scale = equilibrium
    + kinetic.

    equilibrium: the largest |Delta_eq| = 1000 |d offset| / T^2 between the pair's phases over the
    isotopes and the path's temperatures (the coldest point: Delta_eq grows as T falls). Delta
    relaxes toward Delta_eq and freezes in on cooling, so it lies within this bound where the
    isotopes move with the element (beta = 0: 0.88 permil measured against the bound 0.85 on
    Fig. 1's rock, the excess the mass-dependent term below).

    kinetic: isotopes diffusing at D (m_ref/m)^beta fractionate while the element's
    concentration changes, by at most about 1000 beta |ln(m/m_ref)| |d ln c| (a Rayleigh-like
    bound), and a phase's concentration changes by up to the span of its ln K over the path.
    The bound is loose (14.6 permil on Fig. 1's rock without equilibrium offsets, where Delta
    reaches 1.09) and the grid error per permil of kinetic Delta is ~2.5x that of equilibrium
    Delta (sharper rim profiles; measured 1.2e-3 against 4.6e-4 at 50 cells), so it enters with
    KINETIC_WEIGHT = 0.15, which makes the error per unit scale about equal for the two
    (scripts/grid_accuracy_study.py's cases "no equilibrium offsets" and "beta 0")."""
    from ..physics.constants import ZERO_C
    from ..physics.grain_exchange import ln_partition
    names = deck["isotopes"]["names"]
    ref = names.index(deck["isotopes"]["reference"] or names[0])
    masses = deck["isotopes"]["masses_amu"]
    phases = deck["phases"]
    host = next((p for p, v in phases.items() if v["host"]), None)
    pair = deck["output"]["pair"] or [next((p for p in phases if p != host), host), host]
    T_K = np.asarray(T_C, dtype=float) + ZERO_C
    T_min = float(T_K.min())

    def offsets(p):
        return phases[p]["lnK_offset_K2"] or [0.0] * len(names)

    o1, o2 = offsets(pair[0]), offsets(pair[1])
    eq = max((abs((o1[n] - o1[ref]) - (o2[n] - o2[ref])) for n in range(len(names)) if n != ref), default=0.0)
    equilibrium = 1000.0 * eq / T_min ** 2
    dlnm = max(abs(math.log(m / masses[ref])) for m in masses)
    beta = max(ph["beta"] for ph in phases.values())
    with np.errstate(all="ignore"):
        span = max(float(np.ptp(ln_partition(T_K, ph["lnK_A"], ph["lnK_B"], ph["lnK_C"]))) for ph in phases.values())
    kinetic = KINETIC_WEIGHT * 1000.0 * beta * dlnm * span
    return equilibrium + kinetic, equilibrium, kinetic


def accuracy_error(cells, scale):
    """The error model: the largest |dDelta| (permil) the default mapping on ``cells`` cells is
    expected to make on a deck of Delta scale ``scale``, safety factor included."""
    return (ACCURACY_SAFETY * ACCURACY_E50 * max(scale, ACCURACY_FLOOR)
            * (DEFAULT_CELLS / cells) ** ACCURACY_ORDER)


def cells_for_accuracy(accuracy_permil, scale):
    """The smallest cell count of the default mapping whose modelled error
    (:func:`accuracy_error`) is at most ``accuracy_permil``, within ACCURACY_CELLS."""
    lo, hi = ACCURACY_CELLS
    need = DEFAULT_CELLS * (accuracy_error(DEFAULT_CELLS, scale) / accuracy_permil) ** (1.0 / ACCURACY_ORDER)
    if not math.isfinite(need) or need > hi:
        return hi
    n = max(lo, math.ceil(need * (1.0 - 1e-12)))
    while n > lo and accuracy_error(n - 1, scale) <= accuracy_permil:    # rounding of the root
        n -= 1
    while n < hi and accuracy_error(n, scale) > accuracy_permil:
        n += 1
    return n


def path_temperatures(deck):
    """The path's temperatures at 2001 evenly spaced times (as cross_check samples them)."""
    from ..physics.paths import path_from_deck
    return path_from_deck(deck["temperature"]).T_C(np.linspace(0.0, 1.0, 2001))


def accuracy_choice(deck, T_C=None):
    """What ``grid.accuracy_permil`` chooses for ``deck`` (None if it is not given): a dict of
    ``cells``, ``stretch``, ``scale`` (with ``equilibrium``, ``kinetic``), the modelled
    ``error`` on those cells and whether it ``met`` the accuracy (false only at 1000 cells)."""
    acc = deck["grid"].get("accuracy_permil")
    if acc is None:
        return None
    scale, eq, kin = delta_scale(deck, path_temperatures(deck) if T_C is None else T_C)
    cells = cells_for_accuracy(acc, scale)
    error = accuracy_error(cells, scale)
    return {"cells": cells, "stretch": default_stretch(cells), "scale": scale, "equilibrium": eq,
            "kinetic": kin, "error": error, "met": error <= acc}


def choose_grid(deck, T_C, given):
    """Set the grid ``grid.accuracy_permil`` chooses; a problem if the deck also sets cells or
    stretch to something else (a resolved deck holds all three, and must validate again)."""
    grid = deck["grid"]
    choice = accuracy_choice(deck, T_C)
    agree = (grid["cells"] in (None, choice["cells"]) and
             (grid["stretch"] is None or abs(grid["stretch"] - choice["stretch"]) <= 1e-12 * choice["stretch"]))
    grid["cells"], grid["stretch"] = choice["cells"], choice["stretch"]
    if agree:
        return []
    shown = " and ".join(f"grid.{k} = {v:g}" for k, v in given.items())
    return [(f"grid.accuracy_permil = {grid['accuracy_permil']:g} is given with {shown}; give one or the other: "
            f"accuracy_permil chooses the grid itself ({choice['cells']} cells, stretch "
            f"{choice['stretch']:.6g} here), so remove {' and '.join('grid.' + k for k in given)} to let it, "
            "or remove grid.accuracy_permil to set the grid yourself")]


def grid_lines(deck, raw=None):
    """``isosim check``'s line about the grid a run will use, and where it comes from (``raw``:
    the deck as written, with ``--set`` applied)."""
    from ..discretization.bases import EIGEN_MAX_CELLS
    grid = deck["grid"]
    cells, stretch = grid["cells"], grid["stretch"]
    basis = grid["basis"]
    if basis == "auto":
        basis = f"auto: {'eigen' if cells <= EIGEN_MAX_CELLS else 'cells'}"
    widths = stretch ** -np.arange(cells, dtype=float)
    rim, centre = widths[-1] / widths.sum(), widths[0] / widths.sum()
    given = raw.get("grid", {}) if isinstance(raw, dict) else {}
    given = [k for k in ("cells", "stretch") if isinstance(given, dict) and k in given]
    choice = accuracy_choice(deck)
    if choice is not None:
        source = (f"chosen for grid.accuracy_permil = {grid['accuracy_permil']:g} (Delta scale "
                  f"{choice['scale']:.2g} permil: equilibrium {choice['equilibrium']:.2g}, kinetic "
                  f"{choice['kinetic']:.2g}; error model {100 * ACCURACY_E50:.2g} % x ({DEFAULT_CELLS}/N)"
                  f"^{ACCURACY_ORDER:g} x safety {ACCURACY_SAFETY:g}: {choice['error']:.2g} permil"
                  + (")" if choice["met"] else f", NOT within {grid['accuracy_permil']:g} at the "
                     f"{ACCURACY_CELLS[1]}-cell limit)"))
    elif not given:
        source = "the default"
    elif len(given) == 2:
        source = "as the deck sets"
    elif given == ["cells"]:
        source = f"cells as the deck sets, stretch the default grid's mapping ({DEFAULT_STRETCH:g}^({DEFAULT_CELLS}/cells))"
    else:
        source = f"stretch as the deck sets, the default {DEFAULT_CELLS} cells"
    return [f"grid: {cells} cells per radius, stretch {stretch:.6g} (rim cell {100 * rim:.2g} % of the radius, "
            f"centre cell {100 * centre:.2g} %), basis {basis}; {source}"]


#: Keys (dotted, ``*`` a phase) from which :func:`delta_scale` and so the grid chosen by
#: grid.accuracy_permil derive
_SCALE_KEYS = ("temperature.", "isotopes.", "output.pair", "grid.", "phases.*.lnK_", "phases.*.Delta_eq_A",
               "phases.*.beta", "phases.*.host")


def derives_from(base, keys):
    """Whether the resolved deck ``base`` holds values derived from any of the dotted ``keys``
    that patching a varied value into it would not redo (studies/ensemble.py's
    :class:`~isosim.studies.ensemble.Decks`: then every member is validated in full): the grid
    grid.accuracy_permil chooses."""
    from .load import split_key
    keys = list(keys)
    if any(k.replace(" ", "") == "grid.accuracy_permil" for k in keys):
        return True
    if base["grid"].get("accuracy_permil") is None:
        return False
    for key in keys:
        try:
            parts = split_key(key)
        except ValueError:
            return True
        key = ".".join(parts)
        if len(parts) > 2 and parts[0] == "phases":
            key = ".".join(["phases", "*"] + parts[2:])
        if any(key.startswith(k) for k in _SCALE_KEYS):
            return True
    return False
