"""``isosim plot`` of chamber runs and sweeps, and the overlay of several chamber runs."""

import pytest

from support import INPUT, check_plot_dir, check_png, run_cli

pytest.importorskip("matplotlib")

AFC = INPUT / "spera2004_afc.toml"
RUN_FIGS = ["element_vs_ratio.png", "ratio_vs_stable.png", "element_pair.png", "masses_vs_Tm.png"]

#: name -> (command that writes DIR, figures expected in DIR/figures)
CASES = {
    "run": (["run", AFC], RUN_FIGS),
    "sweep": (["sweep", AFC, "--vary", "assimilation.chi=0:1:3"],
              ["sweep_results.png"] + [f"sweep_{f}" for f in RUN_FIGS]),
    "sweep2": (["sweep", INPUT / "spera2004_erafc.toml", "--vary", "assimilation.chi=0,1",
                "--vary", "recharge.mass=0,0.3"],
               ["sweep_results_assimilation.chi.png", "sweep_results_recharge.mass.png"]
               + [f"sweep_{f}" for f in RUN_FIGS]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_plot_chamber_writes_figures(tmp_path, kind):
    command, expected = CASES[kind]
    out = tmp_path / kind
    run_cli([*command, "--out", out, "--force", "--progress", "0"], check=0)
    check_plot_dir(out, expected)


def test_overlay_runs(tmp_path):
    """Two runs in one figure, one labelled curve each, labels from the titles less their common prefix,
    and a legend entry saying what the symbols on the curves mean."""
    dirs = [tmp_path / "afc", tmp_path / "fc"]
    run_cli(["run", AFC, "--out", dirs[0], "--progress", "0"], check=0)
    run_cli(["run", AFC, "--out", dirs[1], "--progress", "0", "--set", "assimilation.chi=0",
             "--set", "title=Spera & Bohrson (2004) Table 2: FC, chi = 0"], check=0)
    from isosim.plot.chamber import overlay_runs
    fig = overlay_runs(dirs, [("Sr", "87Sr/86Sr"), ("87Sr/86Sr", "d18O")], title="test")
    labels = fig.legends[0].get_texts()
    assert [t.get_text() for t in labels] == ["AFC, chi = 1", "FC, chi = 0", "symbol: every 7 °C fall of $T_m$"]
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    fig.savefig(tmp_path / "overlay.png")
    check_png(tmp_path / "overlay.png")
    masses = overlay_runs(dirs, [("Tm_C", "masses")])
    assert masses.axes[0].get_xlim()[0] > masses.axes[0].get_xlim()[1], "T_m axis falls to the right"


def test_results_of_format_2_are_read_in_their_own_orientation(tmp_path):
    """A chamber run written before format 3 ([point, member, species], axes named only in the
    group description) plots the same paths as today's file ([member, time, species])."""
    import json
    import shutil

    import h5py
    import numpy as np

    from isosim.plot.chamber import load
    from support import read_summary

    new = tmp_path / "new"
    run_cli(["run", INPUT / "spera2004_eraxfc.toml", "--out", new, "--progress", "0"], check=0)
    old = tmp_path / "old"
    shutil.copytree(new, old)
    summary = read_summary(new)
    rewritten = 0
    with h5py.File(old / "results.h5", "r+") as h5:        # rewrite as format 2 did
        g = h5["path"]
        for name in list(g):
            ds = g[name]
            if ds.ndim >= 2 and name not in ("member", "time") and ds.dims[0].label != "time" \
                    and len(ds.dims[0]) and ds.dims[0][0].name.endswith("member"):
                data = np.swapaxes(ds[()], 0, 1)
                del g[name]
                g.create_dataset(name, data=data)
                rewritten += 1
    assert rewritten >= 8
    old_summary = dict(summary, format_version=2)
    (old / "summary.json").write_text(json.dumps(old_summary))
    with h5py.File(new / "results.h5", "r") as a, h5py.File(old / "results.h5", "r") as b:
        got, want = load(b, old_summary)["data"], load(a, summary)["data"]
    assert sorted(got) == sorted(want) and len(want) > 5
    for k in want:
        assert np.array_equal(got[k], want[k]), k
