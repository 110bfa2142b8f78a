"""Every kind of figure isosim draws is fit for a talk: at most 1800 px wide, and every visible
axes labelled in words (no raw deck key such as ``assimilation.chi``).

Small, fast outputs of each kind (a grain run, one-, two- and three-key sweeps, an inversion,
a capsule run, a chamber run and one- and two-key chamber sweeps, a convergence study and a
Soret fit) are made once by the CLI; their figures are then drawn in this process with
``Figure.savefig`` wrapped, so that each saved Figure can be inspected next to its PNG.
"""

import fnmatch
import json
import re
import struct

import pytest

from support import INPUT, ROOT, run_cli

pytest.importorskip("matplotlib")

MAX_WIDTH_PX = 1800
SMALL = ["--set", "grid.cells=20", "--progress", "0"]
RATES = ["--vary", "temperature.rate_C_per_Myr=log:1:1e7:3"]
AFC = INPUT / "spera2004_afc.toml"

#: name -> (CLI arguments writing DIR, figure files ``isosim plot DIR`` must write)
OUTPUTS = {
    "run": (["run", INPUT / "xiong_fig1.toml", *SMALL],
            ["concentration_profiles.png", "delta_profiles.png", "Delta_vs_T.png", "Tapp_vs_T.png"]),
    "sweep1": (["sweep", INPUT / "xiong_fig2.toml", *SMALL, *RATES], ["sweep_results.png", "sweep_Delta_vs_T.png"]),
    "sweep2": (["sweep", INPUT / "xiong_fig1.toml", *SMALL, "--vary", "phases.opx.beta=0:0.5:3", *RATES],
               ["sweep_lines.png", "sweep_map.png"]),
    "sweep3": (["sweep", INPUT / "xiong_fig1.toml", *SMALL, "--vary", "phases.opx.beta=0,0.5",
                "--vary", "phases.cpx.beta=0,0.5", *RATES], ["sweep_histogram.png", "sweep_scatter.png"]),
    "inversion": (["invert", INPUT / "xiong_inversion.toml", *SMALL, "--over", "phases.cpx.beta=0,0.5",
                   "--scan", "4"], ["inversion_solution.png", "inversion_scan.png"]),
    "capsule": (["run", INPUT / "huang2010_timeseries.toml", "--set", "capsule.cells=60", "--progress", "0"],
                ["delta_vs_x.png", "delta_vs_T.png", "concentration_vs_x.png", "steady_state_approach.png"]),
    "chamber": (["run", AFC, "--progress", "0"],
                ["element_vs_ratio.png", "ratio_vs_stable.png", "element_pair.png", "masses_vs_Tm.png"]),
    "chamber_sweep": (["sweep", AFC, "--vary", "assimilation.chi=0:1:3", "--progress", "0"],
                      ["sweep_results.png", "sweep_element_vs_ratio.png", "sweep_ratio_vs_stable.png",
                       "sweep_element_pair.png", "sweep_masses_vs_Tm.png"]),
    "chamber_sweep2": (["sweep", INPUT / "spera2004_erafc.toml", "--vary", "assimilation.chi=0,1",
                        "--vary", "recharge.mass=0,0.3", "--progress", "0"],
                       ["sweep_results_assimilation.chi.png", "sweep_results_recharge.mass.png",
                        "sweep_element_vs_ratio.png", "sweep_ratio_vs_stable.png", "sweep_element_pair.png",
                        "sweep_masses_vs_Tm.png"]),
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Directory of each output kind (made once for the module)."""
    root = tmp_path_factory.mktemp("figures")
    dirs = {}
    for name, (args, _) in OUTPUTS.items():
        dirs[name] = root / name
        run_cli([*args, "--out", dirs[name], "--force"], check=0)
    dirs["converge"] = root / "converge"
    run_cli(["converge", INPUT / "xiong_fig1.toml", "--refine", "space", "--levels", "3", "--set", "grid.cells=10",
             "--out", dirs["converge"], "--force", "--progress", "0"], check=0)
    dirs["soret"] = root / "soret"
    run_cli(["fit-soret", ROOT / "data" / "huang2010_table1_samples.csv", "--experiments",
             ROOT / "data" / "huang2010_table1_experiments.csv", "--no-forward", "--out", dirs["soret"], "--force"],
            check=0)
    return dirs


@pytest.fixture
def saved(monkeypatch):
    """(Figure, path) of every figure saved while the test runs."""
    from matplotlib.figure import Figure
    record, original = [], Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        record.append((self, fname))
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return record


def png_size(path):
    """(width, height) in pixels of a PNG file (its IHDR chunk)."""
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def deck_keys():
    """Every deck key of every model, user-chosen names as ``*`` (``phases.*.beta``)."""
    from isosim.deck import MODELS
    from isosim.deck.schema import Field, Table, TableOf

    def walk(spec, prefix):
        if isinstance(spec, Field):
            yield prefix
        elif isinstance(spec, TableOf):
            yield from walk(spec.item, f"{prefix}.*")
        elif isinstance(spec, Table):
            for name, sub in spec.fields.items():
                yield from walk(sub, f"{prefix}.{name}" if prefix else name)

    return {k for m in MODELS.values() for k in walk(m.SCHEMA, "") if "." in k}


KEYS = None


def is_raw_key(label):
    """Whether an axis label is a raw deck key (``assimilation.chi``, ``phases.opx.beta``)."""
    global KEYS
    KEYS = KEYS or deck_keys()
    text = label.strip()
    return bool(re.fullmatch(r"[A-Za-z_]\w*(\.[\w/]+)+", text)) and any(fnmatch.fnmatch(text, k) for k in KEYS) \
        or bool(re.fullmatch(r"[a-z_]+\.[a-z_]+(\.[a-z_]+)?", text))


def check_figure(fig, path):
    """The PNG is at most MAX_WIDTH_PX wide; every visible axes has x and y labels in words."""
    width, height = png_size(path)
    assert width <= MAX_WIDTH_PX, f"{path.name} is {width} x {height} px, wider than {MAX_WIDTH_PX}"
    drawn = 0
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue                      # hidden cells, and spare cells holding the shared legend
        if ax.get_label() == "<colorbar>":
            labels = [lab for lab in (ax.get_xlabel(), ax.get_ylabel()) if lab.strip()]
            assert labels, f"{path.name}: a colour bar without a label"
        else:
            drawn += 1
            labels = [ax.get_xlabel(), ax.get_ylabel()]
            assert all(lab.strip() for lab in labels), f"{path.name}: panel {ax.get_title()!r} lacks a label: {labels}"
        for lab in labels:
            assert not is_raw_key(lab), f"{path.name}: axis labelled with the raw deck key {lab!r}"
        for sec in ax.child_axes:        # e.g. the time (Myr) and r/R axes on top
            if sec.get_visible():
                assert sec.get_xlabel().strip() or sec.get_ylabel().strip(), f"{path.name}: unlabelled secondary axis"
    assert drawn, f"{path.name}: no panel"


@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_plot_figures_fit_for_a_talk(outputs, saved, tmp_path, kind):
    from isosim.plot import plot_run_dir
    written = plot_run_dir(outputs[kind], tmp_path / "figs")
    assert sorted(p.name for p in written) == sorted(OUTPUTS[kind][1])
    assert len(saved) == len(written)
    for (fig, _), path in zip(saved, written):     # saved in the order written
        check_figure(fig, path)


def test_convergence_figure(outputs, saved, tmp_path):
    from isosim.plot.converge import plot_convergence
    result = json.loads((outputs["converge"] / "converge.json").read_text())
    assert (outputs["converge"] / "converge.png").is_file()
    path = plot_convergence(result, tmp_path / "converge.png")
    (fig, _), = saved
    check_figure(fig, path)
    assert not any("_" in t.get_text() for t in fig.axes[0].get_legend().get_texts()), "raw quantity names"


def test_fit_soret_figure(outputs, saved, tmp_path):
    """A grid of panels, each labelled; ±1σ on every Omega; horizontal σ_T bars on the points."""
    from isosim.fitting.command import _figure
    result = json.loads((outputs["soret"] / "fit.json").read_text())
    check_png = outputs["soret"] / "figures" / "fit_soret.png"
    assert png_size(check_png)[0] <= MAX_WIDTH_PX
    assert _figure(result, tmp_path / "fit_soret.png")
    (fig, _), = saved
    check_figure(fig, tmp_path / "fit_soret.png")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(panels) == len(result["experiments"])
    assert len({round(ax.get_position().y0, 3) for ax in panels}) > 1, "panels wrapped into rows"
    for ax, r in zip(panels, result["experiments"].values()):
        text = " ".join(t.get_text() for t in ax.texts)
        for el, v in r["joint"]["Omega_permil_per_C_per_amu"].items():
            assert f"{v['value']:.4f} ± {v['sigma']:.4f}" in text
        # an errorbar container with horizontal bars of half-width sigma_T
        xerr = [c for c in ax.containers if getattr(c, "has_xerr", False)]
        assert xerr, "no horizontal sigma_T bars"
        seg = xerr[0].lines[2][0].get_segments()[0]
        assert abs(abs(seg[1][0] - seg[0][0]) - 2 * result["sigma_T_C"]) < 1e-6


def test_overlay_runs_fit_for_a_talk(outputs, tmp_path):
    """The Spera & Bohrson overlay figures (scripts/plot_spera2004_figs.py) of two chamber runs."""
    from isosim.plot import save_png
    from isosim.plot.chamber import overlay_runs
    dirs = [outputs["chamber"], outputs["chamber"]]
    for name, panels in (("fig4", [("Sr", "87Sr/86Sr"), ("Nd", "143Nd/144Nd"), ("87Sr/86Sr", "d18O"),
                                   ("Th", "Ni")]), ("masses", [("Tm_C", "masses")])):
        fig = overlay_runs(dirs, panels, labels=["a", "b"], title=name)
        check_figure(fig, save_png(fig, tmp_path / f"{name}.png"))
        legend_text = [t.get_text() for leg in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]
                       for t in leg.get_texts()]
        assert any("°C fall of" in t for t in legend_text), "the symbols on the curves are not explained"


def test_labels_of_deck_keys():
    """Readable labels of deck keys, with units from the table or the deck schema."""
    from isosim.plot import key_label, sweep_title
    assert key_label("assimilation.chi", {"model": "chamber"}) == "assimilation fraction χ"
    assert key_label("phases.opx.radius_mm", {"model": "grain_exchange"}) == "opx grain radius (mm)"
    assert key_label("temperature.rate_C_per_Myr", {"model": "grain_exchange"}) == "cooling rate (°C/Myr)"
    for model, key in (("chamber", "thermal.dh_magma_J_kg"), ("chamber", "productivity.magma.a"),
                       ("grain_exchange", "grain_boundary.volume_fraction"), ("capsule", "elements.Fe.T_ref_C"),
                       ("chamber", "elements.Sr.dH_magma_J_mol"), ("grain_exchange", "no.such.key")):
        label = key_label(key, {"model": model})
        assert label and not is_raw_key(label), (key, label)
    assert "(J/kg)" in key_label("thermal.dh_magma_J_kg", {"model": "chamber"})
    deck = {"model": "grain_exchange", "temperature": {"rate_C_per_Myr": 10.0}}
    title = sweep_title("Fig. 1: opx-cpx, 1 mm, 10 °C/Myr", deck, ["temperature.rate_C_per_Myr"])
    assert title == "Fig. 1: opx-cpx, 1 mm\nswept: cooling rate (°C/Myr)"
