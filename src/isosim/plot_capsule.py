"""Figures of a capsule run: delta against x and T, concentrations, the approach to steady
state. Called by :func:`isosim.plot.plot_run_dir`; ``h5`` is the open ``results.h5``."""

import numpy as np


def capsule_figures(h5, summary, new_figure, finish):
    """List of (file name, matplotlib Figure)."""
    ctx = {"title": summary.get("title", "")}
    pr, st, se = h5["profiles"], h5["steady_state"], h5["series"]
    pairs = list(h5.attrs["pairs"])
    species = list(h5.attrs["species"])
    x, T, t = pr["x_mm"][:], pr["T_C"][:], pr["t_h"][:]
    figs = []
    if pairs:
        fig, axes = new_figure(ctx, len(pairs), width=4.2)
        fig2, axes2 = new_figure(ctx, len(pairs), width=4.2)
        for k, (ax, ax2, name) in enumerate(zip(axes, axes2, pairs)):
            for j in range(len(t)):
                colour = _colour(j, len(t))
                ax.plot(x, pr["delta_permil"][j, k], color=colour, label=f"{t[j]:g} h")
                ax2.plot(T, pr["delta_permil"][j, k], color=colour, label=f"{t[j]:g} h")
            ax.plot(x, st["delta_permil"][k], "k--", lw=1, label="steady state")
            ax2.plot(T, st["delta_permil"][k], "k--", lw=1, label="steady state")
            finish(ax, "distance from the hot end (mm)", f"δ {name} (‰)", {}, title=name)
            finish(ax2, "temperature (°C)", f"δ {name} (‰)", {}, title=name)
        figs += [("delta_vs_x.png", fig), ("delta_vs_T.png", fig2)]
    fig, axes = new_figure(ctx, len(species), width=3.6)
    for i, (ax, name) in enumerate(zip(axes, species)):
        c = pr["concentration"][:, i]
        for j in range(len(t)):
            ax.plot(x, c[j], color=_colour(j, len(t)), label=f"{t[j]:g} h")
        ax.plot(x, st["concentration"][i], "k--", lw=1, label="steady state")
        finish(ax, "distance from the hot end (mm)", f"{name} ({h5.attrs['species_units'][i]})",
               {} if i == len(species) - 1 else None, title=name)
    figs.append(("concentration_vs_x.png", fig))
    fig, axes = new_figure(ctx)
    th = se["t_h"][:]
    for i, name in enumerate(species):
        axes[0].plot(th, se["steady_fraction"][:, i], label=name)
    for k, name in enumerate(pairs):
        axes[0].plot(th, se["pair_steady_fraction"][:, k], ls="--", label=f"δ {name}")
    finish(axes[0], "time (h)", "fraction of steady state", {}, ylim=(min(0.0, np.nanmin(
        se["steady_fraction"][:])), 1.02))
    figs.append(("steady_state_approach.png", fig))
    return figs


def _colour(j, n):
    from matplotlib import colormaps
    return colormaps["viridis"](0.9 * j / max(n - 1, 1))
