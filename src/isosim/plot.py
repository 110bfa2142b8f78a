"""Figures of an isosim output directory: ``isosim plot DIR [--out FIGDIR]``.

The kind of directory is told by its ``summary.json``: a run has ``results``, a sweep has
``varied`` and an inversion has ``solutions``. Figures are PNGs written atomically; they
use matplotlib's ``Figure`` directly (Agg backend, no pyplot state).

Every figure is meant to be shown on a slide: at most :data:`MAX_WIDTH_IN` inches wide at
:data:`DPI` (≤ 1800 px), panels wrapped into a grid with one shared legend, every axis
labelled in words with its unit (deck keys through :func:`key_label`), and curves that lie
on top of each other told apart by markers and a note.
"""

import json
import re
from pathlib import Path

import numpy as np

from .errors import UsageError
from .io.atomic import atomic_path
from .registry import MODELS

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

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


def plot_run_dir(run_dir, out_dir=None):
    """Draw the figures of an isosim output directory.

    Parameters
    ----------
    run_dir : Path
        A directory written by ``isosim run``, ``sweep`` or ``invert``.
    out_dir : Path, optional
        Where to write the PNGs (default ``run_dir/figures``, created).

    Returns
    -------
    list of Path
        The figures written.
    """
    run_dir = Path(run_dir)
    figs = figures_of(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "figures"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"error: cannot create the figure directory {out_dir}: {exc}") from None
    written = []
    for name, fig in figs:
        save_png(fig, out_dir / name)
        written.append(out_dir / name)
    return written


def figures_of(run_dir):
    """The (file name, matplotlib Figure) pairs :func:`plot_run_dir` writes, not yet saved."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"error: {run_dir}: no such directory (expected an isosim output directory)")
    missing = [f for f in ("summary.json", "results.h5") if not (run_dir / f).is_file()]
    if missing:
        raise UsageError(f"error: {run_dir} is not an isosim output directory (no {' or '.join(missing)})")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"error: {run_dir}/summary.json is unreadable: {exc}") from None
    if isinstance(summary, dict) and "members_in" in summary and "members" not in summary:
        raise UsageError(f"error: {run_dir} is a sweep of {summary.get('n_members')} members stored compactly "
                         "(streamed; the members are in results.h5 only): isosim plot cannot draw it yet; read "
                         "results.h5 (members/params/KEY, members/RESULT) with h5py")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import h5py
    except ImportError:
        raise UsageError(NEEDS_MPL) from None
    kind = output_kind(summary)
    spec = MODELS.get(summary.get("model"))
    draw = spec.figures_function(kind) if spec is not None and kind else None
    if draw is None:
        raise UsageError(f"error: {run_dir}/summary.json is not of a run, sweep or inversion isosim can draw "
                         f"(model {summary.get('model')!r}, {kind or 'unknown kind'})")
    with h5py.File(run_dir / "results.h5", "r") as h5:
        return draw(h5, summary)


def output_kind(summary):
    """``run``, ``sweep`` or ``invert``: the summary's ``kind``, or (files written before it
    was recorded) told from its keys."""
    if summary.get("kind"):
        return summary["kind"]
    if "solutions" in summary and "param" in summary:
        return "invert"
    if "varied" in summary:
        return "sweep"
    if "results" in summary and "members" in summary:
        return "run"
    return None


def _deck_context(h5, summary):
    deck = tomllib.loads(h5.attrs["deck"]) if "deck" in h5.attrs else summary.get("deck") or {}
    return _context(summary, deck)


def grain_run_figures(h5, summary):
    """Figures of a grain-exchange run (the registry's ``run`` figures)."""
    return _run(h5, summary, _deck_context(h5, summary))


def sweep_figures(h5, summary):
    """Figures of a sweep: results against the varied keys (maps, lines, histograms)."""
    return _sweep(h5, summary, _deck_context(h5, summary))


def inversion_figures(h5, summary):
    """Figures of an inversion: the solution against the ``over`` key, and the scan."""
    return _inversion(summary, _deck_context(h5, summary))


def save_png(fig, path, dpi=DPI):
    """Write ``fig`` to ``path`` as a PNG, atomically (every isosim figure goes through here)."""
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    return Path(path)


# ------------------------------------------------------------------------------ labels
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
        from .deck import MODELS
        from .deck.schema import lookup
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


# ------------------------------------------------------------------------------ layout
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
    """The axis names of an HDF5 dataset: its dimension-scale labels, else the ``[a, b]`` of its description."""
    try:
        names = [d.label for d in ds.dims]
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


# ------------------------------------------------------------------------------ a run
#: at most this many grain classes get a profile panel (the smallest and largest of each phase beyond)
MAX_PROFILE_PANELS = 6


def _run(h5, summary, ctx):
    """Profiles of each phase, Delta(T) and T_app(T) of a single run."""
    names = list(h5.attrs["isotopes"])
    r = names.index(ctx["ref"])
    h = next(i for i in range(len(names)) if i != r)
    se = h5["series"]
    ctx = dict(ctx, T_series=read(se["T_C"], "time", "member")[:, 0],
               t_series=read(se["t_Myr"], "time", "member")[:, 0] if "t_Myr" in se else None,
               tau_series=se["tau"][:] if "tau" in se else None)
    iso = re.sub(r"^\d+", lambda m: m[0].translate(SUP), names[r])
    units = h5["profiles/concentration"].attrs["units"]
    units = units.decode() if isinstance(units, bytes) else str(units)
    conc = f"{iso} concentration ({units})"
    return [("concentration_profiles.png", _profiles(h5, ctx, "concentration", r, conc)),
            ("delta_profiles.png",
             _profiles(h5, ctx, "delta_permil", h, f"{ctx['heavy']} (‰, relative to bulk)")),
            ("Delta_vs_T.png", _run_delta(h5, ctx, h)), ("Tapp_vs_T.png", _run_tapp(h5, ctx))]


def _profile_classes(pr):
    """The grain classes drawn: all of member 0's, or the smallest and largest of each phase if many."""
    classes = [c for c, m in enumerate(pr.attrs["class_member"]) if m == 0]
    if len(classes) <= MAX_PROFILE_PANELS:
        return classes
    radii, phase = pr["radius_mm"][:], list(pr.attrs["class_phase"])
    keep = []
    for p in dict.fromkeys(phase[c] for c in classes):
        mine = sorted((c for c in classes if phase[c] == p), key=lambda c: radii[c])
        keep += [mine[0], mine[-1]] if len(mine) > 1 else mine
    return sorted(keep)[:MAX_PROFILE_PANELS]


def _profiles(h5, ctx, name, iso, ylabel):
    """One panel per grain class (phase) of ``profiles/name`` at each saved temperature, against
    the distance from the grain centre in µm (r/R on the top axis); the legend gives each
    profile's temperature and time (Myr)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    pr = h5["profiles"]
    x, radii = pr["r_over_R"][:], pr["radius_mm"][:]
    T = read(pr["T_C"], "profile", "member")[:, 0]
    data = read(pr[name], "profile", "isotope", "class", "cell")[:, iso]
    t = None
    if ctx.get("t_series") is not None and ctx.get("tau_series") is not None and "tau" in pr:
        t = np.interp(pr["tau"][:], ctx["tau_series"], ctx["t_series"])
    classes = _profile_classes(pr)
    fig, axes, _ = panel_grid(ctx, len(classes), width=4.6, height=3.6, max_cols=3)
    norm = Normalize(T.min(), T.max() if T.max() > T.min() else T.min() + 1)
    for ax, c in zip(axes, classes):
        R_um = 1000.0 * radii[c]
        for k in range(len(T)):     # plasma from dark blue (cold) to orange (hot), no pale yellow
            when = f"{T[k]:.0f} °C" + (f", {_num(t[k])} Myr" if t is not None else "")
            ax.plot(x * R_um, data[k, c], color=colormaps["plasma"](0.85 * norm(T[k])),
                    ls="--" if k == 0 else "-", label=when)
        _finish(ax, "distance from the grain centre r (µm)", ylabel, xlim=(0, R_um),
                title=f"{pr.attrs['class_phase'][c]}, radius {_num(R_um)} µm")
        ax.title.set_fontsize(10)
        top = ax.secondary_xaxis("top", functions=(lambda r, R=R_um: r / R, lambda q, R=R_um: q * R))
        top.set_xlabel("r / R (centre to rim)", fontsize=8)
        top.tick_params(labelsize=7)
    title = "profile at temperature" + (", time since the start" if t is not None else "")
    if len(classes) < len([m for m in pr.attrs["class_member"] if m == 0]):
        title += " (smallest and largest grains of each phase)"
    shared_legend(fig, axes, title=title)
    return fig


def _run_delta(h5, ctx, h):
    """Delta of the pair and its equilibrium value against temperature (time on the top axis)."""
    se = h5["series"]
    T = ctx["T_series"]
    D = read(se["Delta_permil"], "time", "member", "isotope")[:, 0, h]
    Dm = read(se["Delta_measured_permil"], "time", "member", "isotope")[:, 0, h]
    fig, (ax,) = _new_figure(ctx, width=6.4, height=4.4)
    ax.plot(T, D, color="C0", lw=2, label="model (whole grains)")
    if not np.allclose(Dm, D, equal_nan=True):
        ax.plot(T, Dm, color="C2", ls="-.", label="as measured")
    ax.plot(T, _equilibrium(ctx, T), "k--", lw=1, label="equilibrium")
    ax.plot(T[-1], D[-1], "o", color="C0", label=f"final: {D[-1]:.3g} ‰ at {T[-1]:.0f} °C")
    _finish(ax, ctx["T_C"], ctx["Delta_permil"], {})
    if T[-1] < T[0]:
        ax.invert_xaxis()
    if ctx.get("t_series") is not None:
        time_axis(ax, T, ctx["t_series"])
    return fig


def _run_tapp(h5, ctx):
    """Apparent (exchange) temperature against the real temperature, with the 1:1 line."""
    T = ctx["T_series"]
    Ta = read(h5["series/T_apparent_C"], "time", "member")[:, 0]
    fig, (ax,) = _new_figure(ctx, width=5.6, height=4.8)
    lim = [np.nanmin([T, Ta]), np.nanmax([T, Ta])]
    ax.plot(lim, lim, "k--", lw=1, label="1:1 (equilibrium)")
    ax.plot(T, Ta, color="C3", lw=2, label="T$_{app}$ (bulk grains)")
    ax.axhline(Ta[-1], color="C3", ls=":", lw=1, label=f"final T$_{{app}}$ = {Ta[-1]:.0f} °C")
    _finish(ax, ctx["T_C"], ctx["T_apparent_C"], {})
    if T[-1] < T[0]:
        ax.invert_xaxis()
    if ctx.get("t_series") is not None:
        time_axis(ax, T, ctx["t_series"])
    return fig


# ------------------------------------------------------------------------------ sweeps
def _sweep(h5, summary, ctx):
    """Figures of a sweep, chosen by the number of varied keys."""
    varied, members = summary["varied"], summary["members"]
    if len(varied) == 1 and not summary.get("samples"):
        figs = [("sweep_results.png", _sweep_one(members, varied[0], ctx))]
        if len(members) <= MAX_CURVES:
            figs.append(("sweep_Delta_vs_T.png", _sweep_curves(h5, members, varied[0], ctx)))
        return figs
    if len(varied) == 2 and not summary.get("samples"):
        figs = [("sweep_lines.png", _sweep_lines(members, varied, ctx))]
        u = [np.unique(_param(members, k)) for k in varied]
        pairs = {tuple(p) for p in zip(*(_param(members, k) for k in varied))}
        if len(pairs) == len(members) == len(u[0]) * len(u[1]) and min(map(len, u)) > 1:
            figs.append(("sweep_map.png", _sweep_map(members, varied, ctx)))
        return figs
    figs = []
    if np.isfinite(_headline(members, "Delta_permil")).any():
        figs.append(("sweep_histogram.png", _histogram(members, ctx)))
    if varied:
        figs.append(("sweep_scatter.png", _scatter(members, varied, ctx)))
    return figs


def _sweep_one(members, key, ctx):
    """Delta and T_app at the end of the path against the varied key."""
    x = _param(members, key)
    o = np.argsort(x)
    fig, axes = _new_figure(ctx, 2, width=5.0, height=4.0)
    for ax, k, ref, rlabel in ((axes[0], "Delta_permil", "Delta_equilibrium_at_T_C_permil",
                                "equilibrium at final T"), (axes[1], "T_apparent_C", "T_C", "final temperature")):
        ax.plot(x[o], _headline(members, k)[o], "o-", label="model")
        if k == "Delta_permil" and not np.allclose(_headline(members, "Delta_measured_permil"),
                                                   _headline(members, k), equal_nan=True):
            ax.plot(x[o], _headline(members, "Delta_measured_permil")[o], "s-.", mfc="none", label="as measured")
        ax.plot(x[o], _headline(members, ref)[o], "k--", lw=1, label=rlabel)
        _finish(ax, _key_label(key, ctx), ("final " if k == "Delta_permil" else "final ") + ctx[k], {},
                xscale="log" if _spans(x) else "linear")
    return fig


def _sweep_curves(h5, members, key, ctx):
    """Delta against T and against T_app along the path of every member, coloured by the key."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    s = h5["series"]
    T, D, Ta = (read(s[n], "member", "time") for n in ("T_C", "Delta_permil", "T_apparent_C"))
    x = _param(members, key)
    norm = (LogNorm if _spans(x) else Normalize)(np.nanmin(x), np.nanmax(x))
    fig, axes = _new_figure(ctx, 2, width=5.0, height=4.0)
    T_eq = np.linspace(np.nanmin(T), np.nanmax(T), 200)
    for ax, X, xlabel in ((axes[0], T, ctx["T_C"]), (axes[1], Ta, ctx["T_apparent_C"])):
        for i in np.argsort(x):
            ax.plot(X[i], D[i], color=colormaps["viridis"](norm(x[i])), lw=1.2)
        if "lnK" not in key:
            ax.plot(T_eq, _equilibrium(ctx, T_eq), "k--", lw=1, label="equilibrium")
        _finish(ax, xlabel, ctx["Delta_permil"], None if "lnK" in key else {})
        if ctx["cooling"]:
            ax.invert_xaxis()
    fig.colorbar(ScalarMappable(norm, "viridis"), ax=list(axes), label=_key_label(key, ctx))
    return fig


def _sweep_lines(members, keys, ctx):
    """Delta (and T_app if it varies) against the first key, one line per value of the second;
    lines that coincide get distinct markers and a note."""
    from matplotlib import colormaps
    x, y = _param(members, keys[0]), _param(members, keys[1])
    quantities = _quantities(members)
    fig, axes = _new_figure(ctx, len(quantities), width=5.0, height=4.0)
    values = np.unique(y[np.isfinite(y)])
    sym = key_symbol(keys[1], ctx.get("deck"))
    for ax, q in zip(axes, quantities):
        z = _headline(members, q)
        curves = []
        for j, v in enumerate(values):
            sel = np.flatnonzero(y == v)
            sel = sel[np.argsort(x[sel])]
            curves.append(z[sel])
            ax.plot(x[sel], z[sel], "-", marker=MARKERS[j % len(MARKERS)], ms=max(3.0, 8.0 - 1.2 * j),
                    mfc="none", mew=1.0, color=colormaps["viridis"](0.9 * j / max(len(values) - 1, 1)),
                    label=_num(v, 4))
        _finish(ax, _key_label(keys[0], ctx), "final " + ctx[q], xscale="log" if _spans(x) else "linear")
        groups = coincident(curves, tol=0.005) if len({len(c) for c in curves}) == 1 else []
        if groups:
            text = "; ".join(("all curves" if len(g) == len(values) else
                              f"{sym} = " + ", ".join(_num(values[i]) for i in g)) for g in groups)
            note(ax, f"{text} coincide\n(markers of decreasing size)", loc="upper left" if q == "T_apparent_C"
                 else "lower right")
    shared_legend(fig, axes, title=_key_label(keys[1], ctx))
    return fig


def _contour_fmt(span):
    def fmt(v):
        return _num(0.0 if abs(v) < 1e-9 * span else v)
    return fmt


def _sweep_map(members, keys, ctx):
    """Filled contours of Delta (and T_app if it varies) over a full grid of the two keys."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    x, y = _param(members, keys[0]), _param(members, keys[1])
    ux, uy = np.unique(x), np.unique(y)
    ix, iy = np.searchsorted(ux, x), np.searchsorted(uy, y)
    quantities = _quantities(members)
    fig, axes = _new_figure(ctx, len(quantities), width=5.4, height=4.4)
    for ax, q in zip(axes, quantities):
        Z = np.full((len(uy), len(ux)), np.nan)
        Z[iy, ix] = _headline(members, q)
        lo, hi = np.nanmin(Z), np.nanmax(Z)
        span = (hi - lo) or max(abs(hi), 1.0)
        levels = MaxNLocator(nbins=10).tick_values(lo, hi if hi > lo else lo + span)
        levels = levels[(levels >= lo - 1e-9 * span) & (levels <= hi + 1e-9 * span)]
        if levels.size < 3:
            levels = np.linspace(lo, hi if hi > lo else lo + span, 8)
        fmt = _contour_fmt(span)
        cf = ax.contourf(ux, uy, Z, levels=levels, cmap="viridis", extend="both")
        lines = ax.contour(ux, uy, Z, levels=levels[1:-1:2], colors="k", linewidths=0.5)
        ax.clabel(lines, fontsize=7, fmt=fmt)
        ax.plot(x, y, ".", color="w", ms=3, alpha=0.8, label="members")
        ax.set(xlabel=_key_label(keys[0], ctx), ylabel=_key_label(keys[1], ctx),
               xscale="log" if _spans(ux) else "linear", yscale="log" if _spans(uy) else "linear")
        ax.set_title("white dots: members", fontsize=8, loc="right")
        cb = fig.colorbar(cf, ax=ax, label="final " + ctx[q], ticks=levels[::2] if levels.size > 7 else levels)
        cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    return fig


def _histogram(members, ctx):
    """Histogram of Delta over the members, with the median and the 16-84 % range."""
    D = _headline(members, "Delta_permil")
    D = D[np.isfinite(D)]
    fig, (ax,) = _new_figure(ctx, width=6.0, height=4.2)
    ax.hist(D, bins=min(40, max(5, int(np.sqrt(D.size)))), color="C0", alpha=0.8)
    lo, med, hi = np.percentile(D, [16, 50, 84])
    ax.axvline(med, color="k", label=f"median {med:.3g} ‰")
    ax.axvspan(lo, hi, color="k", alpha=0.1, zorder=0, label=f"16–84 %: {lo:.3g}–{hi:.3g} ‰")
    _finish(ax, "final " + ctx["Delta_permil"], f"number of members (of {len(members)})", {})
    return fig


def _scatter(members, keys, ctx):
    """Delta against each varied key, one panel per key, coloured by T_app."""
    D, Ta = _headline(members, "Delta_permil"), _headline(members, "T_apparent_C")
    fig, axes, _ = panel_grid(ctx, len(keys), width=4.2, height=3.6, max_cols=3)
    for ax, k in zip(axes, keys):
        x = _param(members, k)
        sc = ax.scatter(x, D, c=Ta, s=10, alpha=0.7, cmap="plasma")
        _finish(ax, _key_label(k, ctx), "final " + ctx["Delta_permil"], xscale="log" if _spans(x) else "linear")
    fig.colorbar(sc, ax=axes, label="final " + ctx["T_apparent_C"])
    return fig


# ------------------------------------------------------------------------------ an inversion
def _inversion(summary, ctx):
    """The solution against the ``over`` key (if any) and the scan curves of an inversion."""
    param, over, rows = summary["param"], summary.get("over"), summary["solutions"]
    (tkey, tval), = summary["target"].items()
    name, unit = ctx.get(tkey, f"{tkey} ()").rsplit(" (", 1)
    inv = {"param": param, "over": over, "rows": rows, "tkey": tkey, "tval": tval,
           "target": f"target {name} = {tval:g} {unit.rstrip(')')}",
           "x": np.array([r.get(over, 0.0) if over else 0.0 for r in rows], dtype=float),
           "sol": np.array([r[param] if r["found"] else np.nan for r in rows], dtype=float)}
    inv["bracket"] = summary.get("bracket")
    figs = [("inversion_solution.png", _inversion_solution(inv, ctx))] if over else []
    return figs + [("inversion_scan.png", _inversion_scan(summary["scan"], inv, ctx))]


def _inversion_solution(inv, ctx):
    """The solution against the ``over`` key; the error bars are the final root bracket."""
    xs, sol = inv["x"], inv["sol"]
    br = np.array([r["bracket"] if r["found"] else [np.nan, np.nan] for r in inv["rows"]], dtype=float)
    fig, (ax,) = _new_figure(ctx, width=6.0, height=4.2)
    if np.isfinite(sol).any():
        ax.errorbar(xs, sol, yerr=np.clip([sol - br[:, 0], br[:, 1] - sol], 0, None), fmt="o-", capsize=3,
                    ecolor="0.6", label="solution")
        ax.plot([], [], color="0.6", label="final root bracket (not an uncertainty)")
    else:
        ax.set_ylim(*(inv["bracket"] or (0, 1)))
        ax.text(0.5, 0.5, "no solution in the searched bracket: widen --bracket", transform=ax.transAxes,
                ha="center", va="center", color="C3")
    for x in xs[~np.isfinite(sol)]:
        ax.axvline(x, color="C3", ls=":", lw=1)
    if not np.isfinite(sol).all():
        ax.plot([], [], color="C3", ls=":", label="no solution in the bracket")
    _finish(ax, _key_label(inv["over"], ctx), _key_label(inv["param"], ctx), {}, title=inv["target"])
    ax.title.set_fontsize(9)
    return fig


def _inversion_scan(scan, inv, ctx):
    """The target quantity over the scan of the bracket, one curve per ``over`` value, and a
    zoom on the solutions (stars) where the curves cross the target (dashed)."""
    from matplotlib import colormaps
    grid, res = np.array(scan["grid"]), np.array(scan["residual"], dtype=float)
    sol, tval, found = inv["sol"], inv["tval"], np.isfinite(inv["sol"])
    fig, axes = _new_figure(ctx, 2 if found.any() else 1, width=5.0, height=4.0)
    for ax, zoom in zip(axes, (False, True)):
        for i, (x, curve) in enumerate(zip(inv["x"], res)):
            c = colormaps["viridis"](0.9 * i / max(len(res) - 1, 1))
            ax.plot(grid, curve + tval, "-", marker=MARKERS[i % len(MARKERS)], ms=3.5, mfc="none", color=c,
                    label=_num(x, 4) if inv["over"] else "scan")
            if found[i]:
                ax.plot(sol[i], tval + inv["rows"][i]["residual"], "*", ms=11, color=c, mec="k", mew=0.5)
        ax.axhline(tval, color="k", ls="--", lw=1)
        _finish(ax, _key_label(inv["param"], ctx), ctx.get(inv["tkey"], inv["tkey"]),
                title="zoom on the solutions" if zoom else "scan of the bracket")
        ax.title.set_fontsize(9)
        if zoom:
            step = grid[1] - grid[0] if grid.size > 1 else 1.0
            lo, hi = np.nanmin(sol) - 0.5 * step, np.nanmax(sol) + 0.5 * step
            y = np.array([np.interp([lo, hi], grid, r) for r in res]) + tval
            ax.set(xlim=(lo, hi), ylim=(np.nanmin(y), np.nanmax(y)))
    from matplotlib.lines import Line2D
    extra = [(Line2D([], [], color="k", ls="--", lw=1), inv["target"]),
             (Line2D([], [], ls="none", marker="*", ms=11, color="0.7", mec="k", mew=0.5), "solution")]
    shared_legend(fig, axes, title=_key_label(inv["over"], ctx) if inv["over"] else None, extra=extra)
    return fig


# ------------------------------------------------------------------------------ fit-soret
def fit_soret_figure(result):
    """The figure of ``isosim fit-soret``: δ relative to the fitted starting value against the
    sample temperature, one panel per experiment (a grid), one colour per isotope pair across
    the panels; vertical bars the reported 2σ of δ, horizontal bars ±σ_T (the sample-temperature
    uncertainty the fit used); lines the fit, with Ω ± 1σ of each element in the panel.

    Parameters
    ----------
    result : dict
        The content of ``fit.json``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D
    exps = result["experiments"]
    sigma_T = float(result.get("sigma_T_C") or 0.0)
    pairs = list(dict.fromkeys(lab for r in exps.values() for lab in r["joint"]["delta_start_permil"]))
    colour = {lab: f"C{k % 10}" for k, lab in enumerate(pairs)}
    marker = {lab: MARKERS[k % len(MARKERS)] for k, lab in enumerate(pairs)}
    fig, axes, slot = panel_grid({"title": "Soret fits: δ against sample temperature"}, len(exps),
                                 width=4.0, height=3.5, max_cols=3, slot=True)
    for ax, (name, r) in zip(axes, exps.items()):
        j = r["joint"]
        t0 = j["T0_C_mean_over_elements"]
        for lab in j["delta_start_permil"]:
            el = "".join(c for c in lab.split("/")[0] if c.isalpha())
            t0_pair = j["T0_C"][el]["value"]
            rows = [x for x in j["residuals"] if x["pair"] == lab and x["position"] != "start"]
            if not rows:
                continue
            T = np.array([x["T_C"] for x in rows], dtype=float)
            d = np.array([x["delta_permil"] for x in rows], dtype=float) - j["delta_start_permil"][lab]["value"]
            ax.errorbar(T, d, yerr=[x["two_sigma_permil"] for x in rows], xerr=sigma_T or None,
                        fmt=marker[lab], ms=4.5, capsize=2, elinewidth=0.9, color=colour[lab],
                        label=pretty_name(lab))
            Tl = np.linspace(min(T.min() - sigma_T, t0_pair), max(T.max() + sigma_T, t0_pair), 2)
            # slope of delta against T is -1000 dS_T (docs/models/capsule.md)
            ax.plot(Tl, -1000 * j["dS_T_per_C"][lab]["value"] * (Tl - t0_pair), color=colour[lab], lw=1.1)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.axvline(t0, color="0.5", lw=0.8, ls="--")
        om = "\n".join(f"Ω$_{{{el}}}$ = {v['value']:.4f} ± {v['sigma']:.4f}"
                       for el, v in j["Omega_permil_per_C_per_amu"].items())
        ax.text(0.03, 0.03, f"{om}\n(‰/°C/amu, ±1σ)", transform=ax.transAxes, fontsize=7.5, va="bottom",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8", alpha=0.9))
        _finish(ax, "sample temperature (°C)", "δ − δ$_{start}$ fitted (‰)",
                title=f"{name}: T$_0$ = {t0:.0f} °C")
        ax.title.set_fontsize(10)
    extra = [(Line2D([], [], color="0.3", lw=1.1), "fitted line"),
             (Line2D([], [], color="0.3", marker="|", ms=9, ls="none"), "vertical bars: reported 2σ of δ"),
             (Line2D([], [], color="0.3", marker="_", ms=9, ls="none"),
              f"horizontal bars: ±σ$_T$ = {sigma_T:.0f} °C (1σ, used by the fit)"),
             (Line2D([], [], color="0.5", ls="--", lw=0.8), "T$_0$ (mean over elements)")]
    shared_legend(fig, axes, slot=slot, extra=extra, title="isotope pair")
    return fig
