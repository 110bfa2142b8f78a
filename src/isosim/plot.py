"""Figures of an isosim output directory: ``isosim plot DIR [--out FIGDIR]``.

The kind of directory is told by its ``summary.json``: a run has ``results``, a sweep has
``varied`` and an inversion has ``solutions``. Figures are PNGs written atomically; they
use matplotlib's ``Figure`` directly (Agg backend, no pyplot state).
"""

import json
import re
from pathlib import Path

import numpy as np

from .errors import UsageError
from .io.atomic import atomic_path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

NEEDS_MPL = ("error: isosim plot needs matplotlib: apt-get install python3-matplotlib, "
             "or pip install matplotlib")
#: axis labels of deck keys; {p} is the phase of ``phases.<p>.<field>``
KEY_LABELS = {"temperature.start_C": "initial temperature (°C)", "temperature.end_C": "final temperature (°C)",
              "temperature.asymptote_C": "asymptotic temperature (°C)",
              "temperature.time_constant_Myr": "cooling time constant (Myr)",
              "grain_boundary.volume_fraction": "grain-boundary volume fraction",
              "beta": "β {p}", "radius_mm": "{p} grain radius (mm)", "modal_fraction": "{p} modal fraction",
              "D0_m2_s": "D₀ {p} (m²/s)", "E_kJ_mol": "E {p} (kJ/mol)"}
MAX_CURVES = 50
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
    if not run_dir.is_dir():
        raise UsageError(f"error: {run_dir}: no such directory (expected an isosim output directory)")
    missing = [f for f in ("summary.json", "results.h5") if not (run_dir / f).is_file()]
    if missing:
        raise UsageError(f"error: {run_dir} is not an isosim output directory (no {' or '.join(missing)})")
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"error: {run_dir}/summary.json is unreadable: {exc}") from None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import h5py
    except ImportError:
        raise UsageError(NEEDS_MPL) from None
    out_dir = Path(out_dir) if out_dir else run_dir / "figures"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"error: cannot create the figure directory {out_dir}: {exc}") from None
    with h5py.File(run_dir / "results.h5", "r") as h5:
        deck = tomllib.loads(h5.attrs["deck"]) if "deck" in h5.attrs else summary.get("deck") or {}
        ctx = _context(summary, deck)
        if summary.get("model") == "chamber" and ("results" in summary or "varied" in summary):
            from .plot_chamber import chamber_figures
            figs = chamber_figures(h5, summary)
        elif summary.get("model") == "capsule" and "results" in summary:
            from .plot_capsule import capsule_figures
            figs = capsule_figures(h5, summary, _new_figure, _finish)
        elif "solutions" in summary and "param" in summary:
            figs = _inversion(summary, ctx)
        elif "varied" in summary:
            figs = _sweep(h5, summary, ctx)
        elif "results" in summary and "members" in summary:
            figs = _run(h5, summary, ctx)
        else:
            raise UsageError(f"error: {run_dir}/summary.json is not of a run, sweep or inversion")
    written = []
    for name, fig in figs:
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
        written.append(out_dir / name)
    return written


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
    return {"deck": deck, "title": summary.get("title") or deck.get("title", ""), "pair": pair,
            "heavy": f"δ{iso}", "ref": ref, "cooling": deck.get("temperature", {}).get("path") != "heating",
            "Delta_permil": delta,
            "T_apparent_C": "apparent temperature T$_{app}$ (°C)", "T_C": "temperature (°C)"}


def _key_label(key, ctx):
    """Axis label of a deck key, e.g. ``β opx`` for ``phases.opx.beta``."""
    if key == "temperature.rate_C_per_Myr":
        return f"{'cooling' if ctx['cooling'] else 'heating'} rate (°C/Myr)"
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "phases" and parts[2] in KEY_LABELS:
        return KEY_LABELS[parts[2]].format(p=parts[1])
    return KEY_LABELS.get(key, key)


def _equilibrium(ctx, T_C):
    """Equilibrium Delta (permil) of the pair at ``T_C``: 1000 (offset difference) / T^2."""
    names = ctx["deck"]["isotopes"]["names"]
    r = names.index(ctx["ref"])
    h = next(i for i in range(len(names)) if i != r)
    offs = [np.array(ctx["deck"]["phases"][p].get("lnK_offset_K2") or [0.0] * len(names)) for p in ctx["pair"]]
    d = (offs[0][h] - offs[0][r]) - (offs[1][h] - offs[1][r])
    return 1000.0 * d / (np.asarray(T_C, dtype=float) + 273.15) ** 2


def _new_figure(ctx, ncols=1, width=5.0, height=3.8, nrows=1):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if ctx["title"]:
        fig.suptitle(ctx["title"], fontsize=10)
    return fig, axes


def _finish(ax, xlabel, ylabel, legend=None, **kw):
    """Label an axes, draw its grid and (given keyword arguments, or {} for none) its legend."""
    ax.set(xlabel=xlabel, ylabel=ylabel, **kw)
    ax.grid(alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=8, **legend)


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


# ------------------------------------------------------------------------------ a run
def _run(h5, summary, ctx):
    """Profiles of each phase, Delta(T) and T_app(T) of a single run."""
    names = list(h5.attrs["isotopes"])
    r = names.index(ctx["ref"])
    h = next(i for i in range(len(names)) if i != r)
    iso = re.sub(r"^\d+", lambda m: m[0].translate(SUP), names[r])
    conc = f"{iso} concentration ({h5['profiles/concentration'].attrs['units']})"
    return [("concentration_profiles.png", _profiles(h5, ctx, "concentration", r, conc)),
            ("delta_profiles.png",
             _profiles(h5, ctx, "delta_permil", h, f"{ctx['heavy']} (‰, relative to bulk)")),
            ("Delta_vs_T.png", _run_delta(h5, ctx, h)), ("Tapp_vs_T.png", _run_tapp(h5, ctx))]


def _profiles(h5, ctx, name, iso, ylabel):
    """One panel per grain class (phase) of ``profiles/name`` at each saved temperature."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    pr = h5["profiles"]
    x, T, data, radii = pr["r_over_R"][:], pr["T_C"][:, 0], pr[name][:, iso], pr["radius_mm"][:]
    classes = [c for c, m in enumerate(pr.attrs["class_member"]) if m == 0]
    fig, axes = _new_figure(ctx, len(classes), width=4.2)
    norm = Normalize(T.min(), T.max() if T.max() > T.min() else T.min() + 1)
    for ax, c in zip(axes, classes):
        for k in range(len(T)):     # plasma from dark blue (cold) to orange (hot), no pale yellow
            ax.plot(x, data[k, c], color=colormaps["plasma"](0.85 * norm(T[k])), ls="--" if k == 0 else "-",
                    label=f"{T[k]:.0f}")
        _finish(ax, "r / R (centre to rim)", ylabel if c == classes[0] else "", xlim=(0, 1),
                title=f"{pr.attrs['class_phase'][c]}, radius {radii[c]:g} mm")
    axes[-1].legend(title="T (°C)", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return fig


def _run_delta(h5, ctx, h):
    """Delta of the pair and its equilibrium value against temperature."""
    T, D = h5["series/T_C"][:, 0], h5["series/Delta_permil"][:, 0, h]
    Dm = h5["series/Delta_measured_permil"][:, 0, h]
    fig, (ax,) = _new_figure(ctx, width=6)
    ax.plot(T, D, color="C0", label="model (whole grains)")
    if not np.allclose(Dm, D, equal_nan=True):
        ax.plot(T, Dm, color="C2", label="as measured")
    ax.plot(T, _equilibrium(ctx, T), "k--", lw=1, label="equilibrium")
    ax.plot(T[-1], D[-1], "o", color="C0", label=f"final: {D[-1]:.3g} ‰ at {T[-1]:.0f} °C")
    _finish(ax, ctx["T_C"], ctx["Delta_permil"], {})
    if T[-1] < T[0]:
        ax.invert_xaxis()
    return fig


def _run_tapp(h5, ctx):
    """Apparent (exchange) temperature against the real temperature, with the 1:1 line."""
    T, Ta = h5["series/T_C"][:, 0], h5["series/T_apparent_C"][:, 0]
    fig, (ax,) = _new_figure(ctx, width=5, height=4.4)
    lim = [np.nanmin([T, Ta]), np.nanmax([T, Ta])]
    ax.plot(lim, lim, "k--", lw=1, label="1:1 (equilibrium)")
    ax.plot(T, Ta, color="C3", label="T$_{app}$ (bulk grains)")
    ax.axhline(Ta[-1], color="C3", ls=":", lw=1, label=f"final T$_{{app}}$ = {Ta[-1]:.0f} °C")
    _finish(ax, ctx["T_C"], ctx["T_apparent_C"], {})
    if T[-1] < T[0]:
        ax.invert_xaxis()
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
    fig, axes = _new_figure(ctx, 2, width=4.6)
    for ax, k, ref, rlabel in ((axes[0], "Delta_permil", "Delta_equilibrium_at_T_C_permil",
                                "equilibrium at final T"), (axes[1], "T_apparent_C", "T_C", "final temperature")):
        ax.plot(x[o], _headline(members, k)[o], "o-", label="model")
        if k == "Delta_permil" and not np.allclose(_headline(members, "Delta_measured_permil"),
                                                   _headline(members, k), equal_nan=True):
            ax.plot(x[o], _headline(members, "Delta_measured_permil")[o], "s-", label="as measured")
        ax.plot(x[o], _headline(members, ref)[o], "k--", lw=1, label=rlabel)
        _finish(ax, _key_label(key, ctx), ctx[k], {}, xscale="log" if _spans(x) else "linear")
    return fig


def _sweep_curves(h5, members, key, ctx):
    """Delta against T and against T_app along the path of every member, coloured by the key."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize
    s = h5["series"]
    T, D, Ta = s["T_C"][:], s["Delta_permil"][:], s["T_apparent_C"][:]
    x = _param(members, key)
    norm = (LogNorm if _spans(x) else Normalize)(np.nanmin(x), np.nanmax(x))
    fig, axes = _new_figure(ctx, 2, width=4.6)
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
    """Delta (and T_app if it varies) against the first key, one line per value of the second."""
    from matplotlib import colormaps
    x, y = _param(members, keys[0]), _param(members, keys[1])
    quantities = _quantities(members)
    fig, axes = _new_figure(ctx, len(quantities), width=5)
    values = np.unique(y[np.isfinite(y)])
    for ax, q in zip(axes, quantities):
        z = _headline(members, q)
        for j, v in enumerate(values):
            sel = np.flatnonzero(y == v)
            sel = sel[np.argsort(x[sel])]
            ax.plot(x[sel], z[sel], "o-", ms=3, color=colormaps["viridis"](j / max(len(values) - 1, 1)),
                    label=f"{v:.4g}")
        _finish(ax, _key_label(keys[0], ctx), ctx[q], xscale="log" if _spans(x) else "linear")
    axes[-1].legend(title=_key_label(keys[1], ctx), fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def _sweep_map(members, keys, ctx):
    """Filled contours of Delta (and T_app if it varies) over a full grid of the two keys."""
    x, y = _param(members, keys[0]), _param(members, keys[1])
    ux, uy = np.unique(x), np.unique(y)
    ix, iy = np.searchsorted(ux, x), np.searchsorted(uy, y)
    quantities = _quantities(members)
    fig, axes = _new_figure(ctx, len(quantities), width=5.2, height=4.2)
    for ax, q in zip(axes, quantities):
        Z = np.full((len(uy), len(ux)), np.nan)
        Z[iy, ix] = _headline(members, q)
        cf = ax.contourf(ux, uy, Z, levels=14, cmap="viridis")
        lines = ax.contour(ux, uy, Z, levels=cf.levels[::2], colors="k", linewidths=0.5)
        ax.clabel(lines, fontsize=7, fmt="%.4g")
        ax.plot(x, y, ".", color="w", ms=2, alpha=0.6)
        ax.set(xlabel=_key_label(keys[0], ctx), ylabel=_key_label(keys[1], ctx),
               xscale="log" if _spans(ux) else "linear", yscale="log" if _spans(uy) else "linear")
        fig.colorbar(cf, ax=ax, label=ctx[q])
    return fig


def _histogram(members, ctx):
    """Histogram of Delta over the members, with the median and the 16-84 % range."""
    D = _headline(members, "Delta_permil")
    D = D[np.isfinite(D)]
    fig, (ax,) = _new_figure(ctx, width=5.5)
    ax.hist(D, bins=min(40, max(5, int(np.sqrt(D.size)))), color="C0", alpha=0.8)
    lo, med, hi = np.percentile(D, [16, 50, 84])
    ax.axvline(med, color="k", label=f"median {med:.3g} ‰")
    ax.axvspan(lo, hi, color="k", alpha=0.1, zorder=0, label=f"16–84 %: {lo:.3g}–{hi:.3g} ‰")
    _finish(ax, ctx["Delta_permil"], f"members (of {len(members)})", {})
    return fig


def _scatter(members, keys, ctx):
    """Delta against each varied key, one panel per key, coloured by T_app."""
    D, Ta = _headline(members, "Delta_permil"), _headline(members, "T_apparent_C")
    ncols = min(len(keys), 3)
    fig, axes = _new_figure(ctx, ncols, width=4.2, nrows=-(-len(keys) // ncols))
    for ax, k in zip(axes, keys):
        x = _param(members, k)
        sc = ax.scatter(x, D, c=Ta, s=10, alpha=0.7, cmap="plasma")
        _finish(ax, _key_label(k, ctx), ctx["Delta_permil"], xscale="log" if _spans(x) else "linear")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.colorbar(sc, ax=list(axes), label="final " + ctx["T_apparent_C"])
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
    fig, (ax,) = _new_figure(ctx, width=5.5)
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
    fig, axes = _new_figure(ctx, 2 if found.any() else 1, width=4.6)
    for ax, zoom in zip(axes, (False, True)):
        for i, (x, curve) in enumerate(zip(inv["x"], res)):
            c = colormaps["viridis"](i / max(len(res) - 1, 1))
            ax.plot(grid, curve + tval, "o-", ms=3, color=c, label=f"{x:.4g}" if inv["over"] else "scan")
            if found[i]:
                ax.plot(sol[i], tval + inv["rows"][i]["residual"], "*", ms=10, color=c, mec="k", mew=0.5)
        ax.axhline(tval, color="k", ls="--", lw=1)
        _finish(ax, _key_label(inv["param"], ctx), ctx.get(inv["tkey"], inv["tkey"]),
                title="zoom on the solutions" if zoom else f"scan; dashed: {inv['target']}; stars: solutions")
        ax.title.set_fontsize(9)
        if zoom:
            step = grid[1] - grid[0] if grid.size > 1 else 1.0
            lo, hi = np.nanmin(sol) - 0.5 * step, np.nanmax(sol) + 0.5 * step
            y = np.array([np.interp([lo, hi], grid, r) for r in res]) + tval
            ax.set(xlim=(lo, hi), ylim=(np.nanmin(y), np.nanmax(y)))
    axes[-1].legend(title=_key_label(inv["over"], ctx) if inv["over"] else None, fontsize=8, loc="upper left",
                    bbox_to_anchor=(1.02, 1))
    return fig
