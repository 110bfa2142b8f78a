"""Thermal (Soret) diffusion of isotopes in a melt column (docs/models/capsule.md). Pure numpy.

Every species s (an isotope of an element, or a major-element component) obeys

    dc/dt = -dJ/dx,   J = -D_s (dc/dx + S_T,s c dT/dx)

with the additive Soret coefficient of Huang et al. (2010, eq. 5)

    S_T,s(T) = S_E + S'_E (T - T_ref)  +  a_E (m_s - m_ref),

the element's own part (constant, or linear in T) plus a mass term, ``a_E`` = Delta S_T
per amu (= Omega / 1000). Written with the thermal potential psi_s(T) = int S_T,s dT,
J = -D_s exp(-psi_s) d(c exp(psi_s))/dx, so the zero-flux steady state is
c_s ∝ exp(-psi_s(T(x))) whatever the temperature profile, and for two isotopes

    delta = 1000 (R/R_start - 1),   1000 ln(R/R_start) = -1000 a_E (m_h - m_l) (T - T0),

linear in T with slope -1000 Delta S_T (paper eq. 4).
"""

import numpy as np

from .constants import R_GAS, ZERO_C


class TemperatureProfile:
    """A fixed temperature field T(x) along the capsule.

    Parameters
    ----------
    kind : {"linear", "parabolic", "table"}
        ``linear``: ``hot_C`` at x = 0 to ``cold_C`` at x = L. ``parabolic``: a hot spot
        ``hot_C`` at ``hot_spot_mm``, falling as the square of the distance to ``cold_C`` at
        the end farther from it (the piston-cylinder furnace profile the paper assumes).
        ``table``: piecewise linear through (x_mm, T_C) points spanning [0, L].
    """

    def __init__(self, kind, length_mm, hot_C=None, cold_C=None, hot_spot_mm=0.0,
                 table_x_mm=(), table_T_C=()):
        self.kind = kind
        self.length_mm = float(length_mm)
        self.hot_C, self.cold_C = hot_C, cold_C
        self.hot_spot_mm = float(hot_spot_mm)
        self.table_x = np.asarray(table_x_mm, dtype=float)
        self.table_T = np.asarray(table_T_C, dtype=float)

    @classmethod
    def from_deck(cls, capsule, temperature):
        table = ((), ())
        if temperature["profile"] == "table":
            from ..deck.tables import table_columns  # a large table is kept by its digest, not in the deck
            table = table_columns(temperature)
        return cls(temperature["profile"], capsule["length_mm"], temperature["hot_C"],
                   temperature["cold_C"], temperature["hot_spot_mm"], *table)

    def T_C(self, x_mm):
        """Temperature (degC) at positions ``x_mm``."""
        x = np.asarray(x_mm, dtype=float)
        if self.kind == "linear":
            return self.hot_C + (self.cold_C - self.hot_C) * x / self.length_mm
        if self.kind == "parabolic":
            far = max(self.hot_spot_mm, self.length_mm - self.hot_spot_mm)
            return self.hot_C - (self.hot_C - self.cold_C) * ((x - self.hot_spot_mm) / far) ** 2
        return np.interp(x, self.table_x, self.table_T)


def thermal_potential(T_C, S_E, dS_E_dT, T_ref_C, a_per_amu, dm_amu):
    """psi_s(T) = int_{T_ref}^{T} S_T,s dT' (dimensionless), exact for the S_T above.

    Parameters
    ----------
    T_C : array
        Temperatures (degC; only differences matter).
    S_E : float
        The element's Soret coefficient at ``T_ref_C`` (1/degC).
    dS_E_dT : float
        Its temperature derivative (1/degC^2).
    a_per_amu : float
        Delta S_T per amu (1/degC/amu).
    dm_amu : float
        m_s - m_ref of this species (0 for the reference isotope and for components).
    """
    dT = np.asarray(T_C, dtype=float) - T_ref_C
    return (S_E + a_per_amu * dm_amu) * dT + 0.5 * dS_E_dT * dT**2


def diffusivity(T_C, D_m2_s=None, D0_m2_s=None, E_kJ_mol=None):
    """Constant D, or Arrhenius D0 exp(-E / R T) at temperatures ``T_C``."""
    T_C = np.asarray(T_C, dtype=float)
    if D_m2_s is not None:
        return np.full_like(T_C, D_m2_s)
    return D0_m2_s * np.exp(-E_kJ_mol * 1e3 / (R_GAS * (T_C + ZERO_C)))


def bernoulli(z):
    """B(z) = z / (e^z - 1), with B(0) = 1, accurate near 0 and for large |z|."""
    z = np.asarray(z, dtype=float)
    out = np.ones_like(z)
    big = np.abs(z) > 1e-4
    zb = z[big]
    out[big] = zb / np.expm1(zb)
    zs = z[~big]
    out[~big] = 1.0 - zs / 2.0 + zs**2 / 12.0 - zs**4 / 720.0
    return out


def delta_permil(c_heavy, c_ref, start_ratio=1.0):
    """delta = 1000 (R / R_std - 1) for R = c_heavy / c_ref, ``start_ratio`` = R_start / R_std."""
    return 1000.0 * (start_ratio * c_heavy / c_ref - 1.0)
