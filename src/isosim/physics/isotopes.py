"""Isotope masses (amu; AME2020 atomic masses) and the reference (denominator) isotope of the
delta notation used for each element."""

ISOTOPE_MASSES = {
    "Fe": {54: 53.9396105, 56: 55.9349375, 57: 56.9353940},
    "Mg": {24: 23.9850417, 25: 24.9858370, 26: 25.9825930},
    "Ca": {40: 39.9625909, 42: 41.9586180, 43: 42.9587666, 44: 43.9554818, 48: 47.952534},
}

#: delta values are ratios to these isotopes (56Fe/54Fe, 26Mg/24Mg, 44Ca/40Ca)
REFERENCE_ISOTOPE = {"Fe": 54, "Mg": 24, "Ca": 40}
