"""Figures of an isosim output directory: ``isosim plot DIR [--out FIGDIR]``.

The kind of directory is its ``summary.json``'s ``kind`` (``run``, ``sweep``, ``invert``;
told from its keys for files written before kinds were recorded); the figures of each kind
of each model are named in :mod:`isosim.registry` (modules here: ``grain``, ``studies``,
``capsule``, ``chamber``; ``converge`` and ``fit_soret`` draw those commands' figures). Figures are PNGs written atomically; they
use matplotlib's ``Figure`` directly (Agg backend, no pyplot state).

Every figure is meant to be shown on a slide: at most :data:`MAX_WIDTH_IN` inches wide at
:data:`DPI` (≤ 1800 px), panels wrapped into a grid with one shared legend, every axis
labelled in words with its unit (deck keys through :func:`key_label`), and curves that lie
on top of each other told apart by markers and a note.
"""

import json
from pathlib import Path

from ..errors import UsageError
from ..registry import MODELS
from .common import DPI, NEEDS_MPL, key_label, save_png, sweep_title  # noqa: F401  (the package's public names)
from .fit_soret import fit_soret_figure  # noqa: F401


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







