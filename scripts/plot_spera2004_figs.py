"""Run the Spera & Bohrson (2004) chamber decks and draw the paper's Figs 4-6 as PNGs.

Each case is one ``isosim run`` (a subprocess) into ``OUT/<case>``; a case whose
``summary.json`` exists is not run again unless ``--rerun``. The figures overlay the cases
(labels from each run's title) and go to ``OUT/figures``:

- ``fig4.png``: AFC, AχFC, E'RAFC, E'RAχFC: Sr vs 87Sr/86Sr, Nd vs 143Nd/144Nd,
  87Sr/86Sr vs δ18O, Th vs Ni;
- ``fig5.png``: AχFC, E'AχFC, E'RAχFC, RAχFC (chi = 1): Sr vs 87Sr/86Sr, 87Sr/86Sr vs δ18O;
- ``fig6.png``: episodic recharge and eruption (both orders), continuous and none, all with
  chi = 0: Sr vs 87Sr/86Sr; ``fig6_masses.png``: their masses against T_m.

A symbol marks every ~7 °C fall of T_m, as in the paper (the legend says so). Usage, from the repository root::

    .venv/bin/python scripts/plot_spera2004_figs.py [--out runs/spera2004] [--rerun]
"""

import argparse
import subprocess
import sys
from pathlib import Path

from isosim.plot import save_png
from isosim.plot_chamber import overlay_runs

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "Spera & Bohrson (2004) Table 2: "

#: case -> (deck, extra ``isosim run`` arguments)
CASES = {name: (f"spera2004_{name}.toml", []) for name in (
    "afc", "axfc", "erafc", "eraxfc", "eaxfc", "raxfc", "episodic_recharge_first", "episodic_eruption_first")}
CASES["erafc_chi0"] = ("spera2004_erafc.toml", [
    "--set", "assimilation.chi=0",
    "--set", f"title={PREFIX}E'RFC, chi = 0, M_e° = M_r° = 0.3 continuous (Fig. 6)"])
CASES["afc_chi0"] = ("spera2004_afc.toml", [
    "--set", "assimilation.chi=0",
    "--set", f"title={PREFIX}FC, chi = 0, no recharge or eruption (Fig. 6)"])

SR = ("Sr", "87Sr/86Sr")
#: figure -> (title, cases, panels)
FIGURES = {
    "fig4": ("Fig. 4: mafic magma in mafic-intermediate lower crust, 1320 → 1090 °C",
             ["afc", "axfc", "erafc", "eraxfc"],
             [SR, ("Nd", "143Nd/144Nd"), ("87Sr/86Sr", "d18O"), ("Th", "Ni")]),
    "fig5": ("Fig. 5: continuous recharge and/or eruption, chi = 1",
             ["afc", "eaxfc", "erafc", "raxfc"], [SR, ("87Sr/86Sr", "d18O")]),
    "fig6": ("Fig. 6: episodic vs continuous recharge and eruption, chi = 0",
             ["episodic_recharge_first", "episodic_eruption_first", "erafc_chi0", "afc_chi0"], [SR]),
    "fig6_masses": ("Fig. 6 cases: masses and wall-rock temperature",
                    ["episodic_recharge_first", "episodic_eruption_first", "erafc_chi0", "afc_chi0"],
                    [("Tm_C", "masses")]),
}


def run_case(name, out, rerun):
    """``isosim run`` one case into ``out/name`` (skipped if done, unless ``rerun``)."""
    deck, extra = CASES[name]
    target = out / name
    if (target / "summary.json").is_file() and not rerun:
        return target
    cmd = [sys.executable, "-m", "isosim", "run", str(ROOT / "input" / deck), "--out", str(target), "--force",
           "--progress", "0", *extra]
    print("+", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return target


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "spera2004", help="work directory")
    ap.add_argument("--rerun", action="store_true", help="run every case again")
    ap.add_argument("--symbols", type=float, default=7.0, metavar="DEG_C",
                    help="a symbol every this many °C fall of T_m (0: lines only)")
    args = ap.parse_args(argv)
    figdir = args.out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    dirs = {name: run_case(name, args.out, args.rerun) for name in CASES}
    for fig_name, (title, cases, panels) in FIGURES.items():
        fig = overlay_runs([dirs[c] for c in cases], panels, title=f"Spera & Bohrson (2004) {title}",
                           symbols_C=args.symbols or None)
        save_png(fig, figdir / f"{fig_name}.png")
        print(f"wrote {figdir / fig_name}.png")


if __name__ == "__main__":
    main()
