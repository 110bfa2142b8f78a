"""Figures of chamber (EC-E'RAχFC) runs and sweeps, of the kinds in Spera & Bohrson (2004)
Figs 4-6: element against the isotope ratio it carries, ratio against stable isotopes, one
element against another, and the masses and wall-rock temperature against T_m.

A symbol on a curve marks every ``symbols_C`` (7) °C fall of T_m, as in the paper; the legend
says so. Called by :func:`isosim.plot.plot_run_dir` for chamber output; :func:`overlay_runs` draws
several run directories in one figure (``scripts/plot_spera2004_figs.py``). A quantity is
named by a species (``"Sr"``, ``"87Sr/86Sr"``, ``"d18O"``) or a path key (``"Mm"``, ``"Tm_C"``).
"""

import json
import re
from pathlib import Path

import numpy as np

from .common import (
    _finish,
    _new_figure,
    key_label,
    key_symbol,
    panel_grid,
    read,
    sweep_title,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

#: path quantities that are not species, with their axis labels
LABELS = {"Tm_C": "melt temperature $T_m$ (°C)", "Ta_C": "wall-rock temperature $T_a$ (°C)",
          "Mm": "melt mass $M_m$", "Mct": "cumulate mass $M_{ct}$", "Men": "enclave mass $M_{en}$",
          "Me": "erupted mass $M_e$", "Mr": "recharge mass $M_r$", "chi_Ma_star": "assimilated mass $\\chi M_a^*$"}
MASSES = ("Mm", "Mct", "Men", "Me", "Mr", "chi_Ma_star")
MARKERS = "osD^v<>ph*"
MAX_LEGEND = 12
MAX_CURVES = 50
SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


# ------------------------------------------------------------------------------ data
def load(h5, summary):
    """Paths of every member of a run (``path`` group) or sweep (``series`` group).

    Parameters
    ----------
    h5 : h5py.File
        The open ``results.h5``.
    summary : dict
        Its ``summary.json``.

    Returns
    -------
    dict
        ``species`` (elements, ratios, stable: lists of names), ``carrier`` (ratio -> element),
        ``data`` ({key: array [member, point]}, keys as in the sweep series: ``Cm_ppm.Sr``,
        ``eps_m.87Sr/86Sr``, ``delta_m.d18O``, ``Mm``, ...) and ``title``.
    """
    deck = tomllib.loads(h5.attrs["deck"]) if "deck" in h5.attrs else summary.get("deck") or {}
    species = {k: list(deck.get(k) or {}) for k in ("elements", "ratios", "stable")}
    carrier = {r: v.get("element") for r, v in (deck.get("ratios") or {}).items()}
    data = {}
    if "path" in h5:
        g = h5["path"]
        if summary.get("format_version", 3) < 3:
            # files of isosim before format 3 stored the path [point, member, species], with the
            # axes named only in the group's description
            def path_of(name, *axes):
                return np.swapaxes(g[name][()], 0, 1)
        else:
            def path_of(name, *axes):
                return read(g[name], "member", "time", *axes)
        data = {k: path_of(k) for k in ("Tm_C", "Ta_C", *MASSES) if k in g}
        for key, kind in (("Cm_ppm", "elements"), ("eps_m", "ratios"), ("delta_m", "stable")):
            for j, n in enumerate(species[kind] if key in g else []):
                data[f"{key}.{n}"] = path_of(key, kind[:-1] if kind != "stable" else kind)[:, :, j]
    elif "series" in h5:
        g = h5["series"]
        names = ["Tm_C", "Ta_C", *MASSES] + [f"{key}.{n}" for key, kind in (
            ("Cm_ppm", "elements"), ("eps_m", "ratios"), ("delta_m", "stable")) for n in species[kind]]
        data = {k: g[k.replace("/", "_")][:] for k in names if k.replace("/", "_") in g}
    return {"species": species, "carrier": carrier, "data": data, "deck": deck,
            "title": summary.get("title") or deck.get("title", "")}


def resolve(run, name):
    """Data key and axis label of a quantity name (species or path key); None if absent."""
    key, label = label_of(run["species"], name)
    return (key, label) if key in run["data"] else None


def label_of(species, name):
    """Data key and axis label of a quantity name, given the run's species lists."""
    if name in species["elements"]:
        return f"Cm_ppm.{name}", f"{name} in the melt (ppm)"
    if name in species["ratios"]:
        return f"eps_m.{name}", "/".join(_sup(p) for p in name.split("/")) + " in the melt"
    if name in species["stable"]:
        m = re.fullmatch(r"d(\d+)(\D+)", name)
        return f"delta_m.{name}", f"δ{m[1].translate(SUP)}{m[2]} of the melt (‰)" if m else f"{name} (‰)"
    return name, LABELS.get(name, name)


def _sup(part):
    return re.sub(r"^\d+", lambda m: m[0].translate(SUP), part)


def default_panels(run, pair=None):
    """The (file stem, [(x, y), ...]) figures a run's species allow.

    Element against the ratio it carries (every ratio), the first ratio against every stable
    isotope, and ``pair`` (default Th-Ni if present, else the first two elements).
    """
    sp, out = run["species"], []
    el = [(run["carrier"].get(r), r) for r in sp["ratios"] if run["carrier"].get(r) in sp["elements"]]
    if el:
        out.append(("element_vs_ratio", el))
    if sp["ratios"] and sp["stable"]:
        out.append(("ratio_vs_stable", [(sp["ratios"][0], s) for s in sp["stable"]]))
    if pair is None and len(sp["elements"]) > 1:
        pair = ("Th", "Ni") if {"Th", "Ni"} <= set(sp["elements"]) else tuple(sp["elements"][:2])
    if pair:
        out.append(("element_pair", [tuple(pair)]))
    return out


# ------------------------------------------------------------------------------ drawing
def _marks(Tm, step_C):
    """Indices of a symbol each time T_m has fallen by another ``step_C`` from the start."""
    k = np.floor((Tm[0] - Tm) / step_C + 1e-9)
    return list(np.flatnonzero(np.diff(k, prepend=-1.0) > 0))


def _curves(ax, run, xkey, ykey, styles, symbols_C):
    """One line per member; ``styles`` gives (colour, marker, label) per member."""
    x, y, Tm = run["data"][xkey], run["data"][ykey], run["data"].get("Tm_C")
    for i, (colour, marker, label) in enumerate(styles):
        ok = np.isfinite(x[i]) & np.isfinite(y[i])
        every = _marks(Tm[i][ok], symbols_C) if symbols_C and Tm is not None else None
        ax.plot(x[i][ok], y[i][ok], color=colour, marker=marker if every else None, markevery=every, ms=3.5,
                mfc="none", mew=0.8, lw=1.2, label=label)


def _styles(n, labels=None, colours=None, markers=None):
    """Colours (default viridis across members, C0 for one), markers (circles) and labels of n members."""
    from matplotlib import colormaps
    colours = colours or (["C0"] if n == 1 else [colormaps["viridis"](0.9 * i / (n - 1)) for i in range(n)])
    return [(colours[i], (markers or "o" * n)[i], (labels or [None] * n)[i]) for i in range(n)]


def panel_figure(runs, panels, styles, title="", symbols_C=7.0, ncols=None):
    """A figure of (x, y) panels, every run's members drawn in each.

    Parameters
    ----------
    runs : list of dict
        From :func:`load`.
    panels : list of (str, str)
        Quantity names of x and y.
    styles : list of list of (colour, marker, label)
        Per run, per member.
    title : str
    symbols_C : float or None
        A symbol every this many °C fall of T_m (None: lines only).
    ncols : int, optional
    """
    ncols = ncols or min(len(panels), 2 if len(panels) == 4 else 3)
    fig, axes = _new_figure({"title": title}, ncols, width=4.6, height=3.8, nrows=-(-len(panels) // ncols))
    for i, (ax, (xn, yn)) in enumerate(zip(axes, panels)):
        if len(panels) > 1:
            ax.set_title(f"({chr(97 + i)})", loc="left", fontsize=9)
        xk, yk = resolve(runs[0], xn), resolve(runs[0], yn)
        if xk is None or yk is None:
            ax.set_visible(False)
            continue
        for run, st in zip(runs, styles):
            if resolve(run, xn) and resolve(run, yn):
                _curves(ax, run, xk[0], yk[0], st, symbols_C)
        _ends(ax, runs[0], xk[0], yk[0], end=len(runs) == 1)
        _finish(ax, xk[1], yk[1])
        ax.ticklabel_format(useOffset=False, axis="both", style="plain")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    _legend(fig, axes, styles, symbols_C)
    return fig


def _ends(ax, run, xkey, ykey, end=True):
    """Write T_m at the start (and the ``end``) of the first curve."""
    X, Y = run["data"][xkey], run["data"][ykey]
    x, y, T = X[0], Y[0], run["data"]["Tm_C"][0]
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & np.isfinite(T))
    if ok.size < 2:
        return
    span = [np.nanmax(V) - np.nanmin(V) or 1.0 for V in (X, Y)]
    apart = max(abs(x[ok[-1]] - x[ok[0]]) / span[0], abs(y[ok[-1]] - y[ok[0]]) / span[1]) > 0.1
    mid = 0.5 * (np.nanmin(x) + np.nanmax(x))
    for j, text in ((ok[0], "start {:.0f} °C"), (ok[-1], "end {:.0f} °C"))[:2 if end and apart else 1]:
        right = x[j] > mid
        ax.annotate(text.format(T[j]), (x[j], y[j]), xytext=(-4 if right else 4, 4), textcoords="offset points",
                    fontsize=7, color="0.3", ha="right" if right else "left")


def _symbols_entry(symbols_C, marker="o"):
    """(handle, label) of the legend entry that explains the symbols on the curves."""
    from matplotlib.lines import Line2D
    return (Line2D([], [], color="0.35", marker=marker, ms=4.5, mfc="none", ls="none"),
            f"symbol: every {symbols_C:g} °C fall of $T_m$")


def _legend(fig, axes, styles, symbols_C=None, slot=None):
    """One legend for the figure (under the panels, or in the spare panel ``slot``): the curves
    if they have labels and are few, and what the symbols on them mean."""
    n = sum(len(s) for s in styles)
    labelled = n <= MAX_LEGEND and any(lab for s in styles for _, _, lab in s)
    extra = [_symbols_entry(symbols_C)] if symbols_C else []
    if not labelled and not extra:
        return
    visible = [a for a in axes if a.get_visible()]
    handles, labels = visible[0].get_legend_handles_labels() if labelled else ([], [])
    if not labelled and n == 1:    # one unlabelled curve: name it so that the symbol entry reads well
        from matplotlib.lines import Line2D
        handles, labels = [Line2D([], [], color=styles[0][0][0], lw=1.2)], ["melt path of the run"]
    handles, labels = list(handles) + [h for h, _ in extra], list(labels) + [lab for _, lab in extra]
    if slot is not None:
        slot.set_visible(True)
        slot.set_axis_off()
        slot.legend(handles, labels, loc="center", fontsize=8, frameon=False)
        return
    longest = max(map(len, labels))
    ncols = min(len(labels), 6) if longest <= 20 else 3 if longest <= 30 else 2 if longest <= 48 else 1
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncols, fontsize=8,
               frameon=False)


def masses_figure(runs, styles, title="", symbols_C=None):
    """Masses against T_m (one panel per mass if several curves) and T_a against T_m."""
    one = sum(len(s) for s in styles) == 1
    names = [m for m in MASSES if any(resolve(r, m) and np.nanmax(np.abs(r["data"][m])) > 0 for r in runs)]
    slot = None
    if one:
        fig, axes = _new_figure({"title": title}, 2, width=4.6, height=3.6)
    else:
        fig, axes, slot = panel_grid({"title": title}, len(names) + 1, width=3.8, height=3.2, max_cols=3,
                                     slot=True)
    T = "Tm_C"
    if one:
        run = runs[0]
        for j, m in enumerate(names):
            axes[0].plot(run["data"][T][0], run["data"][m][0], color=f"C{j}", ls=("-", "--", "-.", ":")[j % 4],
                         label=LABELS[m])
        _finish(axes[0], LABELS[T], "mass / initial magma mass $M_0$", {})
        panels = [axes[1]]
    else:
        for ax, m in zip(axes, names):
            for run, st in zip(runs, styles):
                _curves(ax, run, T, m, st, symbols_C)
            _finish(ax, LABELS[T], f"{LABELS[m]} / $M_0$")
        panels = axes[len(names):]
        if len(names) + 1 > len(axes):
            panels = [axes[-1]]
    ax = panels[0]
    for run, st in zip(runs, styles):
        _curves(ax, run, T, "Ta_C", st, symbols_C)
    lim = [min(np.nanmin(r["data"][T]) for r in runs), max(np.nanmax(r["data"][T]) for r in runs)]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.text(np.mean(lim), np.mean(lim), "$T_a = T_m$  ", fontsize=8, ha="left", va="bottom")
    _finish(ax, LABELS[T], LABELS["Ta_C"])
    for a in axes:
        a.invert_xaxis()
    for a in panels[1:]:
        a.set_visible(False)
    if not one:
        _legend(fig, axes, styles, symbols_C, slot=slot)
    return fig


# ------------------------------------------------------------------------------ entry points
def chamber_figures(h5, summary, pair=None, symbols_C=7.0):
    """List of (file name, Figure) of a chamber run or sweep (``isosim plot``).

    A sweep also gets its final results against each varied key, and its paths (prefix
    ``sweep_``) when it has at most :data:`MAX_CURVES` members with recorded paths.
    """
    run = load(h5, summary)
    sweep = "varied" in summary
    if sweep:
        run["title"] = sweep_title(run["title"], run["deck"], summary["varied"])
    figs = _sweep_results(summary, run["title"], run["deck"]) if sweep else []
    n = run["data"]["Tm_C"].shape if "Tm_C" in run["data"] else (0, 0)
    if sweep and (n[0] > MAX_CURVES or n[1] < 3):  # many members, or only start and end recorded
        return figs
    if sweep:
        labels, colours, markers = _member_labels(summary, run["deck"])
    else:
        labels, colours, markers = ([f"member {i}" for i in range(n[0])] if n[0] > 1 else None), None, None
    styles = [_styles(n[0], labels, colours, markers)]
    prefix = "sweep_" if sweep else ""
    paths = [(f"{prefix}{stem}.png", panel_figure([run], panels, styles, run["title"], symbols_C))
             for stem, panels in default_panels(run, pair)]
    paths.append((f"{prefix}masses_vs_Tm.png", masses_figure([run], styles, run["title"], symbols_C=symbols_C if sweep else None)))
    if sweep and n[0] > MAX_LEGEND:
        for _, fig in paths:
            _colorbar(fig, summary, run["deck"])
    return figs + paths


def _member_labels(summary, deck=None):
    """Labels (the varied values), colours (viridis by the first varied key) and markers (by the
    second) of sweep members."""
    from matplotlib import colormaps
    keys, members = summary["varied"], summary["members"]
    x = np.array([m["params"][keys[0]] for m in members], dtype=float)
    span = np.ptp(x) or 1.0
    colours = [colormaps["viridis"](0.9 * (v - x.min()) / span) for v in x]
    deck = deck or summary.get("deck") or {}
    short = [key_symbol(k, deck) for k in keys]
    short = short if len(set(short)) == len(short) else [key_label(k, deck) for k in keys]
    labels = [", ".join(f"{s} = {m['params'][k]:.4g}" for s, k in zip(short, keys)) for m in members]
    second = [m["params"][keys[1]] for m in members] if len(keys) > 1 else [0] * len(members)
    values = sorted(set(second))
    markers = [MARKERS[values.index(v) % len(MARKERS)] for v in second]
    return labels, colours, markers


def _colorbar(fig, summary, deck=None):
    """Colour bar of the first varied key (the member colours of :func:`_member_labels`)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    key = summary["varied"][0]
    x = [m["params"][key] for m in summary["members"]]
    cmap = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.9, 256)))
    fig.colorbar(ScalarMappable(Normalize(min(x), max(x)), cmap), ax=[a for a in fig.axes if a.get_visible()],
                 label=key_label(key, deck))


def _flat(member, key):
    head, _, name = key.partition(".")
    v = member.get(head)
    v = v.get(name) if isinstance(v, dict) else v
    return np.nan if v is None else float(v)


def _sweep_results(summary, title, deck=None):
    """Final results that vary, against each varied key (lines for one key, points otherwise)."""
    members, keys = summary["members"], summary["varied"]
    m0 = members[0]
    species = {kind: list(m0.get(h) or {}) for kind, h in (("elements", "Cm_ppm"), ("ratios", "eps_m"),
                                                           ("stable", "delta_m"))}
    names = [k for k in MASSES if k in m0] + [n for kind in species.values() for n in kind]
    Y = {}
    for name in names:
        key, label = label_of(species, name)
        y = np.array([_flat(m, key) for m in members])
        if np.isfinite(y).any() and np.nanmax(y) - np.nanmin(y) > 1e-9 * np.nanmax(np.abs(y)):
            Y[f"final {label}" + (" / $M_0$" if name in MASSES else "")] = y
    lines = len(keys) == 1 and not summary.get("samples")
    figs = []
    for key in keys:
        x = np.array([m["params"][key] for m in members], dtype=float)
        o = np.argsort(x)
        fig, axes, _ = panel_grid({"title": title}, max(1, len(Y)), width=3.7, height=3.0, max_cols=3)
        for ax, (label, y) in zip(axes, Y.items()):
            ax.plot(x[o], y[o], "o-" if lines else ".", ms=4 if lines else 3, alpha=1 if lines else 0.5)
            _finish(ax, key_label(key, deck), label)
            ax.ticklabel_format(useOffset=False, axis="y", style="plain")
        figs.append(("sweep_results.png" if len(keys) == 1 else f"sweep_results_{key}.png", fig))
    return figs


def overlay_runs(run_dirs, panels, labels=None, title="", symbols_C=7.0, ncols=None):
    """Several chamber run directories drawn in the same panels (e.g. the paper's Fig. 4).

    Parameters
    ----------
    run_dirs : list of Path
        Directories written by ``isosim run`` of chamber decks.
    panels : list of (str, str)
        Quantity names of x and y, e.g. ``[("Sr", "87Sr/86Sr"), ("87Sr/86Sr", "d18O")]``;
        ``[("Tm_C", "masses")]`` draws the masses figure instead.
    labels : list of str, optional
        Curve labels (default: each ``summary.json`` title, less the prefix they share).
    title : str
    symbols_C : float or None
        A symbol every this many °C fall of T_m.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import h5py
    runs = []
    for d in map(Path, run_dirs):
        summary = json.loads((d / "summary.json").read_text())
        with h5py.File(d / "results.h5", "r") as h5:
            runs.append(load(h5, summary))
    labels = labels or _short([r["title"] or str(d) for r, d in zip(runs, run_dirs)])
    styles = []
    for i, (run, label) in enumerate(zip(runs, labels)):
        n = run["data"]["Tm_C"].shape[0]
        styles.append([(f"C{i % 10}", MARKERS[i % len(MARKERS)], label if n == 1 else f"{label} [{j}]")
                       for j in range(n)])
    if panels == [("Tm_C", "masses")]:
        return masses_figure(runs, styles, title, symbols_C)
    return panel_figure(runs, panels, styles, title, symbols_C, ncols)


def _short(titles):
    """Titles less the prefix they all share (up to a ': ' or a space) and a closing figure reference."""
    titles = [re.sub(r"\s*\(Figs?\.? [^()]*\)$", "", t) for t in titles]
    prefix = titles[0]
    for t in titles[1:]:
        while not t.startswith(prefix):
            prefix = prefix[:-1]
    colon = prefix.rfind(": ")
    cut = colon + 2 if colon >= 0 else prefix.rfind(" ") + 1
    short = [t[cut:] for t in titles]
    return short if len(titles) > 1 and all(short) and len(set(short)) == len(short) else titles
