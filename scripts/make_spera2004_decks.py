"""Write input/spera2004_<case>.toml: the Table 2 cases of Spera & Bohrson (2004).

Every case shares the paper's Table 2 (mafic magma intruding mafic-intermediate lower crust:
thermal parameters, Sr, Nd, Th, Ni, 87Sr/86Sr, 143Nd/144Nd and d18O); they differ in chi,
recharge and eruption. The paper does not print its productivity parameters or the width of
its episodic pulses: the decks use the common EC-AFC productivities (isosim's defaults) and
pulses as narrow as the paper's Fig. 3 example (m = 0.15 /K, g = 2). Run from the repository
root: ``python scripts/make_spera2004_decks.py``; a test checks the shipped decks agree.
"""

import copy
import sys
from pathlib import Path

from isosim.deck import to_toml

ROOT = Path(__file__).resolve().parents[1]

TABLE2 = {
    "model": "chamber",
    "thermal": {
        "T_liquidus_magma_C": 1320.0, "T_magma0_C": 1320.0, "T_liquidus_recharge_C": 1320.0,
        "T_liquidus_wallrock_C": 1100.0, "T_wallrock0_C": 600.0, "T_solidus_C": 950.0, "T_eq_C": 1090.0,
        "dh_magma_J_kg": 396000.0, "dh_recharge_J_kg": 396000.0, "dh_wallrock_J_kg": 354000.0,
        "cp_magma_J_kgK": 1484.0, "cp_recharge_J_kgK": 1484.0, "cp_wallrock_J_kgK": 1388.0,
    },
    "elements": {
        name: {"C_magma_ppm": cm, "C_recharge_ppm": cr, "C_wallrock_ppm": ca,
               "D_magma": dm, "D_recharge": dr, "D_wallrock": da}
        for name, (cm, cr, ca, dm, dr, da) in {
            "Sr": (700.0, 1000.0, 230.0, 1.5, 1.5, 0.05),
            "Nd": (30.0, 20.0, 12.7, 0.25, 0.25, 0.25),
            "Th": (1.3, 1.0, 1.06, 0.1, 0.1, 0.1),
            "Ni": (100.0, 300.0, 135.0, 2.0, 2.0, 2.0),
        }.items()
    },
    "ratios": {
        "87Sr/86Sr": {"element": "Sr", "magma": 0.7050, "recharge": 0.7028, "wallrock": 0.7200},
        "143Nd/144Nd": {"element": "Nd", "magma": 0.5129, "recharge": 0.5132, "wallrock": 0.5120},
    },
    "stable": {"d18O": {"magma": 6.2, "recharge": 7.0, "wallrock": 12.0}},
}

LINEAR_03 = {"form": "linear", "mass": 0.3}


def pulse(T_C):
    return {"form": "pulses", "pulse_mass": [0.3], "pulse_T_C": [T_C],
            "pulse_steepness_per_K": [0.15], "pulse_exponent": [2.0]}


#: case -> (title, chi, recharge table, eruption table)
CASES = {
    "afc": ("AFC, chi = 1 (Figs 4, 5: AχFC)", 1.0, None, None),
    "axfc": ("AχFC, chi = 0.5 (Fig. 4)", 0.5, None, None),
    "erafc": ("E'RAFC, chi = 1, M_e° = M_r° = 0.3 continuous (Figs 4, 5: E'RAχFC)", 1.0, LINEAR_03, LINEAR_03),
    "eraxfc": ("E'RAχFC, chi = 0.5, M_e° = M_r° = 0.3 continuous (Fig. 4)", 0.5, LINEAR_03, LINEAR_03),
    "eaxfc": ("E'AχFC, chi = 1, M_e° = 0.3 continuous, no recharge (Fig. 5)", 1.0, None, LINEAR_03),
    "raxfc": ("RAχFC, chi = 1, M_r° = 0.3 continuous, no eruption (Fig. 5)", 1.0, LINEAR_03, None),
    "episodic_recharge_first": ("episodic, chi = 0: recharge 0.3 at 1225 °C, eruption 0.3 at 1180 °C (Fig. 6)",
                                0.0, pulse(1225.0), pulse(1180.0)),
    "episodic_eruption_first": ("episodic, chi = 0: eruption 0.3 at 1225 °C, recharge 0.3 at 1180 °C (Fig. 6)",
                                0.0, pulse(1180.0), pulse(1225.0)),
}


def case_decks():
    """{case: raw deck}."""
    out = {}
    for case, (title, chi, recharge, eruption) in CASES.items():
        d = copy.deepcopy(TABLE2)
        d["title"] = f"Spera & Bohrson (2004) Table 2: {title}"
        d["assimilation"] = {"chi": chi}
        if recharge:
            d["recharge"] = copy.deepcopy(recharge)
        if eruption:
            d["eruption"] = copy.deepcopy(eruption)
        out[case] = d
    mc = copy.deepcopy(out["erafc"])
    mc["title"] = ("Monte Carlo around Spera & Bohrson (2004) E'RAχFC: chi, T_eq, recharge and eruption "
                   "masses, and the wall rock's D_Sr uncertain")
    mc["sample"] = {
        "assimilation.chi": {"dist": "uniform", "low": 0.0, "high": 1.0},
        "thermal.T_eq_C": {"dist": "uniform", "low": 1040.0, "high": 1140.0},
        "recharge.mass": {"dist": "uniform", "low": 0.0, "high": 0.5},
        "eruption.mass": {"dist": "uniform", "low": 0.0, "high": 0.35},
        "elements.Sr.D_wallrock": {"dist": "lognormal", "median": 0.05, "sigma": 0.5, "high": 1.0},
    }
    mc["sweep"] = {"samples": 10000, "seed": 1}
    out["montecarlo"] = mc
    return out


def main():
    for case, raw in case_decks().items():
        path = ROOT / "input" / f"spera2004_{case}.toml"
        head = ("# Spera & Bohrson (2004) EC-E'RAχFC, Table 2 parameters.\n"
                "# Written by scripts/make_spera2004_decks.py (productivity and pulse-width assumptions\n"
                "# are explained there and in docs/models/chamber.md).\n")
        path.write_text(head + to_toml(raw))
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
