"""What every figure shares: labels in words with units (deck keys through key_label), the
slide-sized layout (panel grids, one shared legend), reading HDF5 axes, saving PNGs atomically.
"""

import re
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

from ..io.atomic import atomic_path

NEEDS_MPL = ("error: isosim plot needs matplotlib: apt-get install python3-matplotlib, "
             "or pip install matplotlib")


#: resolution of every PNG, and the widest figure (inches): 11.4 in x 150 dpi = 1710 px
DPI = 150


MAX_WIDTH_IN = 11.4


#: readable axis labels of deck keys; ``*`` stands for a user-chosen name (a phase, an
#: element, a ratio), written into the label as ``{p}``. Keys not listed here are labelled
#: from the deck schema's description and unit (:func:`key_label`).
KEY_LABELS = {
    # grain_exchange
    "temperature.start_C": "initial temperature (°C)", "temperature.end_C": "final temperature (°C)",
    "temperature.asymptote_C": "asymptotic temperature (°C)",
    "temperature.time_constant_Myr": "cooling time constant (Myr)",
    "grain_boundary.volume_fraction": "grain-boundary volume fraction",
    "phases.*.beta": "β {p} (diffusion mass exponent)", "phases.*.radius_mm": "{p} grain radius (mm)",
    "phases.*.median_radius_mm": "{p} median grain radius (mm)", "phases.*.sigma_ln": "{p} σ of ln(radius)",
    "phases.*.modal_fraction": "{p} modal fraction", "phases.*.D0_m2_s": "D₀ of {p} (m²/s)",
    "phases.*.E_kJ_mol": "activation energy of {p} (kJ/mol)", "phases.*.lnK_A": "ln K coefficient A of {p} (K²)",
    "phases.*.lnK_B": "ln K coefficient B of {p} (K)", "phases.*.lnK_C": "ln K coefficient C of {p}",
    "grid.cells": "cells per grain radius", "grid.stretch": "ratio of neighbouring cell widths",
    "measurement.core_fraction": "fraction of the grain radius analysed",
    "measurement.contamination_fraction": "contaminant fraction of the mineral separate",
    "element.bulk_concentration": "bulk-rock concentration",
    "output.series_points": "number of series points",
    # chamber
    "assimilation.chi": "assimilation fraction χ", "recharge.mass": "total recharge $M_r°$ / $M_0$",
    "eruption.mass": "total eruption $M_e°$ / $M_0$",
    "thermal.T_liquidus_magma_C": "magma liquidus $T_{l,m}$ (°C)",
    "thermal.T_magma0_C": "initial melt temperature $T_m°$ (°C)",
    "thermal.T_liquidus_recharge_C": "recharge liquidus $T_{l,r}$ (°C)",
    "thermal.T_liquidus_wallrock_C": "wall-rock liquidus $T_{l,a}$ (°C)",
    "thermal.T_wallrock0_C": "initial wall-rock temperature $T_a°$ (°C)",
    "thermal.T_solidus_C": "solidus $T_s$ (°C)", "thermal.T_eq_C": "equilibration temperature $T_{eq}$ (°C)",
    "elements.*.C_magma_ppm": "{p} in the initial magma (ppm)",
    "elements.*.C_recharge_ppm": "{p} in the recharge magma (ppm)",
    "elements.*.C_wallrock_ppm": "{p} in the wall rock (ppm)",
    "elements.*.D_magma": "bulk D° of {p}, magma", "elements.*.D_recharge": "bulk D° of {p}, recharge",
    "elements.*.D_wallrock": "bulk D° of {p}, wall rock",
    "ratios.*.magma": "{p} of the magma", "ratios.*.recharge": "{p} of the recharge magma",
    "ratios.*.wallrock": "{p} of the wall rock",
    "stable.*.magma": "{p} of the magma (‰)", "stable.*.recharge": "{p} of the recharge magma (‰)",
    "stable.*.wallrock": "{p} of the wall rock (‰)",
    # capsule
    "temperature.hot_C": "hot-end temperature (°C)", "temperature.cold_C": "cold-end temperature (°C)",
    "temperature.hot_spot_mm": "hot-spot position (mm)", "time.duration_h": "run duration (h)",
    "capsule.length_mm": "capsule length (mm)", "capsule.cells": "cells along the capsule",
    "elements.*.Omega_permil_per_C_per_amu": "Ω of {p} (‰/°C/amu)",
    "elements.*.dS_T_per_C_per_amu": "mass term of S_T of {p} (1/°C/amu)",
    "elements.*.S_T_per_C": "Soret coefficient S_T of {p} (1/°C)",
    "components.*.S_T_per_C": "Soret coefficient S_T of {p} (1/°C)",
    "elements.*.D_m2_s": "diffusivity of {p} (m²/s)", "components.*.D_m2_s": "diffusivity of {p} (m²/s)",
    "elements.*.beta": "β {p} (diffusion mass exponent)",
    # every model
    "solver.rtol": "solver relative tolerance", "solver.atol": "solver absolute tolerance",
    "solver.initial_dt": "first time step (fraction of the path)",
}


#: short symbols of deck keys for legends ("χ = 0.5")
KEY_SYMBOLS = {"assimilation.chi": "χ", "recharge.mass": "$M_r°$", "eruption.mass": "$M_e°$",
               "temperature.rate_C_per_Myr": "rate", "phases.*.beta": "β {p}", "phases.*.radius_mm": "R {p}"}


UNITS = {"degC": "°C", "degC/Myr": "°C/Myr", "m^2/s": "m²/s", "K^2": "K²", "1/degC": "1/°C",
         "1/degC^2": "1/°C²", "permil": "‰", "permil/degC/amu": "‰/°C/amu", "1/degC/amu": "1/°C/amu"}


MAX_CURVES = 50


MARKERS = "osD^vP<>Xph*"


SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def save_png(fig, path, dpi=DPI):
    """Write ``fig`` to ``path`` as a PNG, atomically (every isosim figure goes through here)."""
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    return Path(path)


def _context(summary, deck):
    """Deck, title, pair, isotopes and axis labels of the headline results."""
    head = summary.get("results") or (summary.get("members") or [{}])[0]
    names = deck.get("isotopes", {}).get("names", ["", ""])
    ref = deck.get("isotopes", {}).get("reference") or names[0]
    isotopes = head.get("isotopes") or f"{next((n for n in names if n != ref), '?')}/{ref}"
    phases = deck.get("phases", {})
    pair = head.get("pair") or deck.get("output", {}).get("pair") or (
        [p for p, v in phases.items() if not v.get("host")][:1] + [p for p, v in phases.items() if v.get("host")])
    m = re.fullmatch(r"(\d+)(\D+)/(\d+)(\D+)", isotopes)
    iso = f"{m[1].translate(SUP)}/{m[3].translate(SUP)}{m[2]}" if m and m[2] == m[4] else isotopes
    delta = f"Δ{iso} {'–'.join(pair)} (‰)"
    title = summary.get("title") or deck.get("title", "")
    if summary.get("varied"):
        title = sweep_title(title, deck, summary["varied"])
    return {"deck": deck, "title": title, "pair": pair,
            "heavy": f"δ{iso}", "ref": ref, "cooling": deck.get("temperature", {}).get("path") != "heating",
            "Delta_permil": delta,
            "T_apparent_C": "apparent temperature T$_{app}$ (°C)", "T_C": "temperature (°C)"}


def _pattern(key):
    """``(pattern, name)``: the KEY_LABELS pattern of ``key`` (user-chosen names as ``*``)."""
    parts = key.split(".")
    if key in KEY_LABELS or key in KEY_SYMBOLS or len(parts) != 3:
        return key, ""
    return f"{parts[0]}.*.{parts[2]}", parts[1]


def pretty_name(name):
    """``δ¹⁸O`` of ``d18O``, ``⁸⁷Sr/⁸⁶Sr`` of ``87Sr/86Sr``, ``⁴⁴Ca`` of ``44Ca``; other names as they are."""
    m = re.fullmatch(r"d(\d+)([A-Z][a-z]?)", name)
    if m:
        return f"δ{m[1].translate(SUP)}{m[2]}"
    return "/".join(re.sub(r"^\d+(?=[A-Z])", lambda g: g[0].translate(SUP), p) for p in name.split("/"))


def unit_label(unit):
    """A schema unit as printed on an axis (``degC`` -> ``°C``)."""
    return UNITS.get(unit, unit)


def key_label(key, deck=None, cooling=None):
    """Axis label of a deck key in words, with its unit, e.g. ``β opx (diffusion mass exponent)``
    for ``phases.opx.beta`` and ``assimilation fraction χ`` for ``assimilation.chi``.

    Keys missing from :data:`KEY_LABELS` are labelled from the deck schema (the description
    up to its first clause, and the unit); the label never equals the raw key.
    """
    deck = deck or {}
    if key == "temperature.rate_C_per_Myr":
        if cooling is None:
            cooling = deck.get("temperature", {}).get("path") != "heating"
        return f"{'cooling' if cooling else 'heating'} rate (°C/Myr)"
    pattern, name = _pattern(key)
    if pattern in KEY_LABELS:
        return KEY_LABELS[pattern].format(p=pretty_name(name))
    field = _schema_field(deck.get("model"), key)
    doc, unit = (getattr(field, "doc", "") or "", getattr(field, "unit", "") or "")
    doc = re.sub(r"^(linear|logistic|lognormal|bins|segments|table|exponential|parabolic|cooling/heating): ",
                 "", doc)
    doc = re.split(r"[;(]|, default| \(| e\.g\.", doc)[0].strip().rstrip(",.")
    parts = key.split(".")
    if not doc or len(doc) > 48:
        last = re.sub(r"_(C|mm|um|Myr|h|ppm|J_kg|J_kgK|J_mol|kJ_mol|m2_s|K|per_.*)$", "", parts[-1])
        doc = " ".join(p.replace("_", " ") for p in ([parts[-2]] if len(parts) > 1 else []) + [last])
    if len(parts) == 3 and parts[1] not in doc:
        doc = f"{doc} of {pretty_name(parts[1])}"
    label = f"{doc} ({unit_label(unit)})" if unit and unit != "1" else doc
    return label if label != key else f"{label} (deck value)"


def key_symbol(key, deck=None):
    """A short name of a deck key for legends and titles (``χ``, ``β opx``), else its label."""
    pattern, name = _pattern(key)
    if pattern in KEY_SYMBOLS:
        return KEY_SYMBOLS[pattern].format(p=name)
    return re.sub(r" \([^()]*\)$", "", key_label(key, deck))


def _schema_field(model, key):
    """The schema Field of ``key`` in ``model``'s deck schema, or None."""
    try:
        from ..deck import MODELS
        from ..deck.schema import lookup
        return lookup(MODELS[model].SCHEMA, key.split(".")) if model in MODELS else None
    except Exception:                # labels must never stop a figure
        return None


#: how titles write the value of a deck key (besides ``last-part = value`` and ``value unit``)
TITLE_NAMES = {"assimilation.chi": ("chi", "χ"), "recharge.mass": ("M_r°", "Mr"), "eruption.mass": ("M_e°", "Me"),
               "phases.*.beta": ("beta", "β"), "temperature.rate_C_per_Myr": ("rate",)}


def sweep_title(title, deck, keys):
    """The deck title less the parts that only state a swept key's deck value (``chi = 1``,
    ``10 °C/Myr``), which every member overrides, and a line naming what was swept."""
    parts = re.split(r",\s+", title) if title else []
    for key in keys:
        value = deck
        for k in key.split("."):
            value = value.get(k) if isinstance(value, dict) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        v = re.escape(f"{value:g}")
        unit = unit_label(getattr(_schema_field(deck.get("model"), key), "unit", "") or "")
        names = (key.split(".")[-1],) + TITLE_NAMES.get(_pattern(key)[0], ())
        alone = [rf"({'|'.join(re.escape(n) for n in names)})\s*=\s*{v}"] + ([rf"{v}\s*{re.escape(unit)}"] if unit else [])
        for i, part in enumerate(parts):
            for pat in alone:   # the whole part, or the part before a closing "(...)"
                m = re.fullmatch(rf"\s*{pat}(?![\d.])\s*(\(.*)?", part)
                if m:
                    parts[i] = m.groups()[-1] or ""
    title = ""
    for part in parts:
        if part:
            title += (" " if part.startswith("(") else ", ") + part if title else part
    swept = ", ".join(key_label(k, deck) for k in keys)
    return f"{title}\nswept: {swept}".strip()


def _num(v, digits=3):
    """A number for a legend or a tick: 3 significant digits, powers of ten as ×10ⁿ, no ``-0``."""
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    if 1e-3 <= abs(v) < 1e5:
        return np.format_float_positional(v, precision=digits, unique=False, fractional=False, trim="-")
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = (f"{mant}×" if mant not in ("1", "-1") else "-" if mant == "-1" else "") + "10" + \
            str(int(exp)).translate(SUP).replace("-", "⁻")
    return s


def _equilibrium(ctx, T_C):
    """Equilibrium Delta (permil) of the pair at ``T_C``: 1000 (offset difference) / T^2."""
    names = ctx["deck"]["isotopes"]["names"]
    r = names.index(ctx["ref"])
    h = next(i for i in range(len(names)) if i != r)
    offs = [np.array(ctx["deck"]["phases"][p].get("lnK_offset_K2") or [0.0] * len(names)) for p in ctx["pair"]]
    d = (offs[0][h] - offs[0][r]) - (offs[1][h] - offs[1][r])
    return 1000.0 * d / (np.asarray(T_C, dtype=float) + 273.15) ** 2


def grid_shape(n, max_cols=3):
    """(rows, columns) of a grid of ``n`` panels: one row up to ``max_cols``, 2 x 2 for four."""
    if n == 4 and max_cols >= 2:
        return 2, 2
    ncols = max(1, min(n, max_cols))
    return -(-n // ncols), ncols


def _new_figure(ctx, ncols=1, width=5.0, height=3.8, nrows=1):
    """A constrained-layout figure of ``nrows`` x ``ncols`` panels of ``width`` x ``height``
    inches each, scaled down to :data:`MAX_WIDTH_IN` if wider; the axes flattened."""
    from matplotlib.figure import Figure
    scale = min(1.0, MAX_WIDTH_IN / (width * ncols))
    fig = Figure(figsize=(width * ncols * scale, height * nrows * max(scale, 0.8)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if ctx.get("title"):
        fig.suptitle(ctx["title"], fontsize=10)
    return fig, axes


def panel_grid(ctx, n, width=4.2, height=3.4, max_cols=3, slot=False):
    """A figure of ``n`` panels wrapped into a grid (:func:`grid_shape`). Returns (figure, the n
    axes, a spare cell for the shared legend or None); with ``slot`` the spare cell is the first
    free cell of the grid, if it has one. Unused cells are hidden."""
    nrows, ncols = grid_shape(n, max_cols)
    fig, axes = _new_figure(ctx, ncols, width, height, nrows)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n]), (axes[n] if slot and len(axes) > n else None)


def shared_legend(fig, axes, slot=None, title=None, extra=(), fontsize=8.5):
    """One legend for all ``axes`` (labels gathered once each), in the spare panel ``slot`` if
    given, else under the panels; ``extra`` are (handle, label) pairs added at the end."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    for h, lab in extra:
        handles.append(h)
        labels.append(lab)
    if not handles:
        return None
    if slot is not None:
        slot.set_visible(True)
        slot.set_axis_off()
        return slot.legend(handles, labels, loc="center", title=title, fontsize=fontsize, frameon=False,
                           title_fontsize=fontsize)
    width_in = fig.get_figwidth()
    entry_in = 0.55 + 0.62 * fontsize / 72 * max(len(re.sub(r"\$|\\|_|\{|\}", "", lab)) for lab in labels)
    ncol = max(1, min(len(labels), int(width_in / entry_in)))
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol,
                      fontsize=fontsize, title=title, frameon=False, title_fontsize=fontsize)


def note(ax, text, loc="lower right"):
    """A small grey note in a corner of ``ax`` (e.g. which curves coincide)."""
    x = 0.98 if "right" in loc else 0.02
    y = 0.03 if "lower" in loc else 0.97
    ax.text(x, y, text, transform=ax.transAxes, ha="right" if "right" in loc else "left",
            va="bottom" if "lower" in loc else "top", fontsize=7.5, color="0.25",
            bbox=dict(boxstyle="round,pad=0.25", fc="white", ec="0.8", alpha=0.85))


def coincident(curves, tol=0.01):
    """Groups (lists of indices, two or more) of ``curves`` (equal-length arrays) that agree to
    ``tol`` times the span of all of them; the curves of a group hide each other when drawn."""
    arr = [np.asarray(c, dtype=float) for c in curves]
    finite = np.concatenate([a[np.isfinite(a)] for a in arr]) if arr else np.array([])
    span = np.ptp(finite) if finite.size else 0.0
    span = span or 1.0
    groups, seen = [], set()
    for i in range(len(arr)):
        if i in seen:
            continue
        g = [j for j in range(i, len(arr)) if j not in seen and arr[j].shape == arr[i].shape
             and np.nanmax(np.abs(arr[j] - arr[i]), initial=0.0) <= tol * span]
        seen.update(g)
        if len(g) > 1:
            groups.append(g)
    return groups


def _finish(ax, xlabel, ylabel, legend=None, **kw):
    """Label an axes, draw its grid and (given keyword arguments, or {} for none) its legend."""
    ax.set(xlabel=xlabel, ylabel=ylabel, **kw)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=8, **legend)


def time_axis(ax, T, t_Myr, label="time since the start (Myr)"):
    """A top axis giving the time (Myr) at each temperature of a monotonic path; nothing otherwise."""
    T, t = np.asarray(T, dtype=float), np.asarray(t_Myr, dtype=float)
    ok = np.isfinite(T) & np.isfinite(t)
    T, t = T[ok], t[ok]
    keep = np.concatenate([[True], np.diff(T) != 0]) if T.size else T.astype(bool)
    T, t = T[keep], t[keep]
    if T.size < 2 or not (np.all(np.diff(T) > 0) or np.all(np.diff(T) < 0)) or np.ptp(t) <= 0:
        return None
    o, p = np.argsort(T), np.argsort(t)

    def forward(x):
        return np.interp(x, T[o], t[o])

    def inverse(y):
        return np.interp(y, t[p], T[p])

    sec = ax.secondary_xaxis("top", functions=(forward, inverse))
    sec.set_xlabel(label, fontsize=9)
    return sec


def _dims(ds):
    """The axis names of an HDF5 dataset: its dimension labels or the names of its dimension
    scales (docs/outputs.md), else the ``[a, b]`` of its description."""
    try:
        names = [d.label or (d[0].name.split("/")[-1] if len(d) else "") for d in ds.dims]
    except Exception:
        names = []
    if len(names) == ds.ndim and all(names):
        return names
    for group in reversed(re.findall(r"\[([^\[\]]+)\]", str(ds.attrs.get("description", "")))):
        names = [n.strip() for n in group.split(",")]
        if len(names) == ds.ndim:
            return names
    return None


def read(ds, *order):
    """``ds`` as an array with its axes in ``order`` (names as in its description or dimension
    scales); as stored when the names are not those."""
    data = ds[()]
    names = _dims(ds)
    alias = {"profile": "time", "time": "profile"}
    if names and sorted(names) != sorted(order):
        names = [n if n in order else alias.get(n, n) for n in names]
    if not names or sorted(names) != sorted(order):
        return data
    return np.transpose(data, [names.index(o) for o in order])


def _spans(values):
    """Whether ``values`` call for a log axis: all positive and spanning more than 20x."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return v.size > 1 and v.min() > 0 and v.max() / v.min() > 20


def _param(members, key):
    return np.array([m["params"].get(key) for m in members], dtype=float)


def _headline(members, key):
    return np.array([m.get(key) for m in members], dtype=float)


def _quantities(members):
    """Delta, and T_app too if it varies over the members (it does not with beta, say)."""
    return ["Delta_permil"] + (["T_apparent_C"] if np.nanmax(_headline(members, "T_apparent_C"))
                               - np.nanmin(_headline(members, "T_apparent_C")) > 0.5 else [])


def _key_label(key, ctx):
    """Axis label of a deck key in the context of a run (see :func:`key_label`)."""
    return key_label(key, ctx.get("deck"), ctx.get("cooling"))


def deck_context(h5, summary):
    """The labelling context of an output directory (its resolved deck from results.h5)."""
    deck = tomllib.loads(h5.attrs["deck"]) if "deck" in h5.attrs else summary.get("deck") or {}
    return _context(summary, deck)
