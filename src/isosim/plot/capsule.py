"""Figures of a capsule run: delta against x and T, concentrations, the approach to steady
state. Called by :func:`isosim.plot.plot_run_dir`; ``h5`` is the open ``results.h5``.

Profiles that have reached the steady state lie on it: the steady state is drawn as a broad
pale band under the time curves, each time curve has its own marker (placed at staggered
points) and its legend entry says when it is at the steady state.
"""

import numpy as np

from .common import (
    MARKERS,
    _finish,
    _new_figure,
    coincident,
    note,
    panel_grid,
    pretty_name,
    read,
    shared_legend,
)

#: a profile within this fraction of the panel's span of the steady state is "at steady state"
AT_STEADY = 0.01
X_LABEL = "distance from the hot end (mm)"


def capsule_run_figures(h5, summary):
    """Figures of a capsule run (the registry's ``run`` figures)."""
    return capsule_figures(h5, summary)


def capsule_figures(h5, summary, new_figure=None, finish=None):
    """List of (file name, matplotlib Figure)."""
    finish = finish or _finish
    ctx = {"title": summary.get("title", "")}
    pr, st, se = h5["profiles"], h5["steady_state"], h5["series"]
    pairs = [str(p) for p in h5.attrs["pairs"]]
    species = [str(s) for s in h5.attrs["species"]]
    units = [str(u) for u in h5.attrs["species_units"]]
    x, T, t = pr["x_mm"][:], pr["T_C"][:], pr["t_h"][:]
    delta = read(pr["delta_permil"], "profile", "pair", "cell") if pairs else None
    conc = read(pr["concentration"], "profile", "species", "cell")
    figs = []
    if pairs:
        for fname, X, xlabel in (("delta_vs_x.png", x, X_LABEL), ("delta_vs_T.png", T, "temperature (°C)")):
            fig, axes, slot = panel_grid(ctx, len(pairs), width=4.6, height=3.6, max_cols=3, slot=True)
            for k, (ax, name) in enumerate(zip(axes, pairs)):
                _times(ax, X, delta[:, k], st["delta_permil"][k], t)
                finish(ax, xlabel, f"δ{pretty_name(name)} (‰)", title=f"δ{pretty_name(name)}")
            shared_legend(fig, axes, slot=slot, title="profile at")
            figs.append((fname, fig))
    fig, axes, slot = panel_grid(ctx, len(species), width=4.0, height=3.3, max_cols=3, slot=True)
    for i, (ax, name) in enumerate(zip(axes, species)):
        _times(ax, x, conc[:, i], st["concentration"][i], t)
        finish(ax, X_LABEL, f"{pretty_name(name)} ({units[i]})", title=pretty_name(name))
    shared_legend(fig, axes, slot=slot, title="profile at")
    figs.append(("concentration_vs_x.png", fig))
    figs.append(("steady_state_approach.png", _approach(ctx, se, species, pairs, finish)))
    return figs


def _times(ax, X, profiles, steady, t):
    """The profiles at each saved time over the steady state (a pale band), each with its own
    line style and marker so that one on the steady state still shows; a note names them."""
    span = np.ptp(np.concatenate([np.ravel(profiles), np.ravel(steady)])) or 1.0
    ax.plot(X, steady, color="0.55", lw=6, alpha=0.35, solid_capstyle="butt", label="steady state", zorder=1)
    n, every = len(t), max(1, len(X) // 8)
    at = []
    for j in range(n):
        if np.nanmax(np.abs(profiles[j] - steady)) <= AT_STEADY * span:
            at.append(f"{t[j]:g} h")
        ax.plot(X, profiles[j], color=_colour(j, n), lw=1.4, ls=("-", "--", "-.", ":")[j % 4],
                marker=MARKERS[j % len(MARKERS)], ms=4.5, mfc="none", mew=1.0,
                markevery=(j * every // max(n, 1), every), zorder=2 + j, label=f"{t[j]:g} h")
    if at:
        note(ax, f"{', '.join(at)}: on the steady state", loc="upper left")


def _approach(ctx, se, species, pairs, finish):
    """Fraction of steady state against time: species solid, isotope pairs dashed, each with its
    own marker; curves that lie on top of each other are listed in a note."""
    fig, (ax,) = _new_figure(ctx, width=7.0, height=4.6)
    th = se["t_h"][:]
    sf = read(se["steady_fraction"], "time", "species")
    pf = read(se["pair_steady_fraction"], "time", "pair") if pairs else np.zeros((len(th), 0))
    curves = [sf[:, i] for i in range(len(species))] + [pf[:, k] for k in range(len(pairs))]
    names = [pretty_name(s) for s in species] + [f"δ{pretty_name(p)}" for p in pairs]
    n = len(curves)
    every = max(n, len(th) // 10)      # at least one point per curve between markers: no two coincide
    for i, (c, name) in enumerate(zip(curves, names)):
        ax.plot(th, c, color=f"C{i % 10}", ls="-" if i < len(species) else "--",
                marker=MARKERS[i % len(MARKERS)], ms=4.5, mfc="none", mew=1.0,
                markevery=(i * every // max(n, 1), every), label=name)
    ax.axhline(0.95, color="0.5", lw=0.8, ls=":", label="95 % of steady state")
    finish(ax, "time since the start (h)", "fraction of steady state",
           ylim=(min(0.0, np.nanmin(sf) if sf.size else 0.0), 1.04))
    groups = coincident(curves, tol=0.02)
    if groups:
        note(ax, "on top of each other (within 0.02):\n" + "\n".join(
            ", ".join(names[i] for i in g) for g in groups), loc="lower right")
    ax.legend(fontsize=8, loc="center right", ncol=1 if n < 8 else 2)
    return fig


def _colour(j, n):
    from matplotlib import colormaps
    return colormaps["viridis"](0.9 * j / max(n - 1, 1))
