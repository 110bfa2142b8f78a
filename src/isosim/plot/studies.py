"""Figures of a sweep (results against the varied keys: lines, maps, histograms, scatter)
and of an inversion (the solution and the scan), for any model that has headline results.
"""

import numpy as np

from .common import (
    MARKERS,
    MAX_CURVES,
    _equilibrium,
    _finish,
    _headline,
    _key_label,
    _new_figure,
    _num,
    _param,
    _quantities,
    _spans,
    coincident,
    deck_context,
    key_symbol,
    note,
    panel_grid,
    read,
    shared_legend,
)


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


def sweep_figures(h5, summary):
    """Figures of a sweep: results against the varied keys (lines, maps, histograms)."""
    return _sweep(h5, summary, deck_context(h5, summary))


def inversion_figures(h5, summary):
    """Figures of an inversion: the solution against the ``over`` key, and the scan."""
    return _inversion(summary, deck_context(h5, summary))
