"""Write input/huang2010_<experiment>.toml from the shipped Table 1 files.

Each deck simulates one experiment of Huang et al. (2010) with the published Omega and T0
(see :mod:`isosim.fitting.experiment_decks` for the geometry assumptions). Run from the
repository root: ``python scripts/make_huang2010_decks.py``; tests check the decks agree.
"""

import sys
from pathlib import Path

from isosim.deck import to_toml
from isosim.fitting.table1 import load_table1
from isosim.fitting.experiment_decks import experiment_deck

ROOT = Path(__file__).resolve().parents[1]


def published_decks():
    """{experiment: raw deck} built from data/ with the published Omega and T0."""
    table = load_table1(ROOT / "data" / "huang2010_table1_samples.csv",
                        ROOT / "data" / "huang2010_table1_experiments.csv")
    return {name: experiment_deck(exp, exp.published["T0_C"], exp.published["Omega"])
            for name, exp in table.experiments.items()}


def main():
    for name, raw in published_decks().items():
        path = ROOT / "input" / f"huang2010_{name.lower()}.toml"
        head = (f"# Huang et al. (2010) experiment {name}, with its published Omega and T0 (Table 1).\n"
                "# Written by scripts/make_huang2010_decks.py; geometry assumptions in\n"
                "# src/isosim/fitting/experiment_decks.py (4 mm column, parabolic profile whose mean is T0).\n")
        path.write_text(head + to_toml(raw))
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
