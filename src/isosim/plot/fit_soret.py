"""The figure of ``isosim fit-soret``: δ against the sample temperature per experiment,
with the fitted lines, ±1σ on Ω and ±σ_T bars.
"""

import numpy as np

from .common import MARKERS, _finish, panel_grid, pretty_name, shared_legend


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
