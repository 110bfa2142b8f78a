"""``isosim plot``: the figures of a run, a sweep (one, two and three varied keys) and an inversion."""

import pytest

from support import INPUT, check_plot_dir, check_png, run_cli

pytest.importorskip("matplotlib")

SMALL = ["--set", "grid.cells=20", "--progress", "0"]
RATES = ["--vary", "temperature.rate_C_per_Myr=log:1:1e7:4"]

#: name -> (command that writes DIR, figures expected in DIR/figures)
CASES = {
    "run": (["run", INPUT / "xiong_fig1.toml", *SMALL],
            ["concentration_profiles.png", "delta_profiles.png", "Delta_vs_T.png", "Tapp_vs_T.png"]),
    "sweep1": (["sweep", INPUT / "xiong_fig2.toml", *SMALL, *RATES],
               ["sweep_results.png", "sweep_Delta_vs_T.png"]),
    "heating": (["sweep", INPUT / "xiong_fig7.toml", *SMALL, *RATES],
                ["sweep_results.png", "sweep_Delta_vs_T.png"]),
    "sweep2": (["sweep", INPUT / "xiong_fig6_73.toml", *SMALL, "--vary", "phases.opx.beta=0:0.2:3",
                "--vary", "phases.cpx.beta=0:0.2:2"],
               ["sweep_lines.png", "sweep_map.png"]),
    "sweep3": (["sweep", INPUT / "xiong_fig1.toml", *SMALL, "--vary", "phases.opx.beta=0:0.2:2",
                "--vary", "phases.cpx.beta=0:0.2:2", *RATES],
               ["sweep_histogram.png", "sweep_scatter.png"]),
    "inversion": (["invert", INPUT / "xiong_inversion.toml", *SMALL, "--over", "phases.cpx.beta=0:0.5:2",
                   "--scan", "5"],
                  ["inversion_solution.png", "inversion_scan.png"]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_plot_writes_figures(tmp_path, kind):
    command, expected = CASES[kind]
    out = tmp_path / kind
    run_cli([*command, "--out", out, "--force"], check=0)
    check_plot_dir(out, expected)


def test_plot_out_option(tmp_path):
    command, expected = CASES["run"]
    run_cli([*command, "--out", tmp_path / "run"], check=0)
    figs = tmp_path / "elsewhere" / "figs"
    run_cli(["plot", tmp_path / "run", "--out", figs], check=0)
    for name in expected:
        check_png(figs / name)
    assert not (tmp_path / "run" / "figures").exists()


@pytest.mark.parametrize("make", ["empty", "missing", "json_only"])
def test_plot_rejects_a_directory_that_is_not_output(tmp_path, make):
    target = tmp_path / "nothing_here"
    if make != "missing":
        target.mkdir()
    if make == "json_only":
        (target / "summary.json").write_text("{}\n")
    proc = run_cli(["plot", target], check=2)
    assert "Traceback" not in proc.stderr + proc.stdout
    message = (proc.stderr + proc.stdout).strip()
    assert str(target) in message and len(message.splitlines()) == 1, message
    assert not (target / "figures").exists()
