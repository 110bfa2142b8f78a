"""The figure of a convergence study: relative error of each quantity against the cell width
or time step, log-log, with its fitted slope. Called on rank 0 by :mod:`isosim.converge`;
matplotlib is optional (no figure without it)."""

import numpy as np

from .io.atomic import atomic_path

#: at most this many quantities are drawn (the chamber compares a dozen)
MAX_CURVES = 12


def plot_convergence(result, path):
    """Write ``path`` (PNG) from a ``converge.json`` dict; return it, or None without matplotlib.

    Errors are divided by |q*| so that quantities in different units share the axes; each
    curve's label gives the least-squares slope of log error against log h (the order).
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return None
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
        label = f"{name}: slope {slope:.2f}" if slope is not None else name
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
    ax.set_ylabel("|q - q*| / |q*|" + (" (q*: Richardson)" if ref == {"richardson"} else ""))
    ax.set_title(f"{result['model']}: convergence in {result['refine']} ({result['deck']})", fontsize=9)
    if drawn:
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    return path
