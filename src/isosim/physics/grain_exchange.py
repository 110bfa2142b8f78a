"""Equations of the grain-exchange model (docs/models/grain_exchange.md; Xiong, Huang & Van Orman).

- Arrhenius diffusivity with an isotope-mass exponent (paper eqs 10–11):
  D_n(T) = D0 exp(-E/RT) (m_ref/m_n)^beta.
- Partition coefficient of a phase relative to the host (paper eqs 4–5, corrected):
  ln K_n(T) = A/T^2 + B/T + C + offset_n/T^2, offset 646 K^2 for 44Ca (not 6.46e3).
- Inter-phase fractionation (eq. 15): Delta = 1000 ln[(M_h/M_ref)_1 / (M_h/M_ref)_2].
- Apparent temperature: the T at which ln K_ref(T) equals ln of the bulk concentration
  ratio; ln K is a quadratic in 1/T, solved in closed form on the physical branch.
"""

import numpy as np

from .constants import R_GAS


def diffusivity(T_K, D0, E_J_mol, beta, m_ref, m):
    """Diffusion coefficient of an isotope of mass ``m`` (m^2/s); arrays broadcast."""
    return D0 * np.exp(-E_J_mol / (R_GAS * T_K)) * (m_ref / m) ** beta


def ln_partition(T_K, A, B, C, offset=0.0):
    """ln K(T) = (A + offset)/T^2 + B/T + C."""
    return (A + offset) / T_K**2 + B / T_K + C


def fractionation_permil(ratio_1, ratio_2):
    """Delta = 1000 ln(ratio_1 / ratio_2), in permil."""
    return 1000.0 * np.log(np.asarray(ratio_1) / np.asarray(ratio_2))


def apparent_temperature(lnk, A, B, C, T_ref_K):
    """Temperature (K) at which A/T^2 + B/T + C equals ``lnk`` (arrays broadcast).

    The quadratic in x = 1/T has up to two roots; the one on the same monotone branch
    as ``T_ref_K`` (the start of the path) is returned (for the Brey & Köhler opx–cpx
    coefficients the branch is T > -2A/B = 476 K). NaN where no root exists.
    """
    lnk, A, B, C, T_ref_K = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lnk, A, B, C, T_ref_K)))
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = -B / (C - lnk)                                    # T when A = 0
        disc = B * B - 4.0 * A * (C - lnk)
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
        x_turn = -B / (2.0 * A)
        # the branch of 1/T_ref: below or above the turning point x_turn
        lower = (1.0 / T_ref_K < x_turn) == (A > 0)
        x = np.where(lower, (-B - root) / (2 * A), (-B + root) / (2 * A))
        T = np.where(A == 0.0, np.where(B != 0.0, linear, np.nan), 1.0 / x)
    return T[()] if T.ndim == 0 else T
