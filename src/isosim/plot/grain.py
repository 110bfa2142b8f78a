"""Figures of a grain-exchange run: profiles of each phase (µm, with r/R), Δ(T) and
T_app(T) with a time axis in Myr.
"""

import re

import numpy as np

from .common import (
    SUP,
    _equilibrium,
    _finish,
    _new_figure,
    _num,
    deck_context,
    panel_grid,
    read,
    shared_legend,
    time_axis,
)

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


def run_figures(h5, summary):
    """Figures of a grain-exchange run (the registry's ``run`` figures)."""
    return _run(h5, summary, deck_context(h5, summary))
