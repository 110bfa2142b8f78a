"""The figure of a convergence study: relative error of each quantity against the cell width
or time step, log-log, with its fitted slope. Called on rank 0 by :mod:`isosim.studies.converge`;
matplotlib is optional (no figure without it)."""

import numpy as np

from .common import pretty_name, save_png

#: at most this many quantities are drawn (the chamber compares a dozen)
MAX_CURVES = 12
#: words for the compared quantities (``converge.STUDIES[model]["compare"]``); ``{p}`` is the
#: element, ratio or isotope after the dot of ``Cm_ppm.Sr`` and the like
QUANTITY_LABELS = {"Delta_permil": "final Δ of the pair", "T_apparent_C": "final apparent temperature",
                   "Omega_permil_per_C_per_amu": "Ω of {p}", "T0_C": "T₀ of {p}", "Mm": "melt mass",
                   "Mct": "cumulate mass", "Men": "enclave mass", "Ma_star": "assimilated mass",
                   "Ta_C": "wall-rock temperature", "Cm_ppm": "{p} in the melt", "eps_m": "{p} of the melt",
                   "delta_m": "{p} of the melt"}


def quantity_label(name):
    """``Sr in the melt`` of ``Cm_ppm.Sr``; ``final Δ of the pair`` of ``Delta_permil``."""
    head, _, rest = name.partition(".")
    label = QUANTITY_LABELS.get(head)
    return label.format(p=pretty_name(rest)) if label else name.replace("_", " ")


def convergence_figure(result):
    """The matplotlib Figure of :func:`plot_convergence` (not saved)."""
    from matplotlib.figure import Figure
    h = np.array([lv["h"] for lv in result["levels"]])
    fig = Figure(figsize=(6.0, 4.6), layout="constrained")
    ax = fig.subplots()
    markers = "osD^v<>ph*Xd"
    drawn = 0
    for name, a in result["quantities"].items():
        e = np.array([np.nan if x is None else x for x in a["errors"]], dtype=float)
        scale = abs(a["extrapolated"] or 0.0) or 1.0
        keep = np.isfinite(e) & (e > 0)
        if keep.sum() < 2 or drawn == MAX_CURVES:
            continue
        slope = a["fitted_order"]
        label = f"{quantity_label(name)}: slope {slope:.2f}" if slope is not None else quantity_label(name)
        ax.loglog(h[keep], e[keep] / scale, marker=markers[drawn % len(markers)], label=label)
        if slope is not None:   # the fitted line, dotted, over the points it was fitted to
            hk = h[keep]
            c = np.polyfit(np.log(hk), np.log(e[keep] / scale), 1)
            ax.loglog(hk, np.exp(np.polyval(c, np.log(hk))), ":", color=ax.lines[-1].get_color(), lw=1)
        drawn += 1
    xlabel = {"space": "cell width h (fraction of the grid length, 1 / cells)",
              "time": "time step dt (fraction of the path)",
              "both": "time step dt (fraction of the path; cells x ratio with each halving)"}
    ax.set_xlabel(xlabel[result["refine"]])
    ref = {q["reference"] for q in result["quantities"].values()}
    ax.set_ylabel("relative error |q − q*| / |q*|" + ("\n(q*: Richardson extrapolation)" if ref == {"richardson"}
                                                       else ""))
    ax.set_title(f"{result['model']}: convergence in {result['refine']} ({result['deck']})", fontsize=9)
    if drawn:
        ax.legend(fontsize=7, title="quantity: fitted order", title_fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_convergence(result, path):
    """Write ``path`` (PNG) from a ``converge.json`` dict; return it, or None without matplotlib.

    Errors are divided by |q*| so that quantities in different units share the axes; each
    curve's label gives the least-squares slope of log error against log h (the order).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        return None
    save_png(convergence_figure(result), path)
    return path
