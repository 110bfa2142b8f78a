"""Temperature histories T(t).

Every path maps a normalised time tau in [0, 1] onto temperature, so members with very
different durations integrate on one TS clock; ``duration_s`` converts back.
"""

import numpy as np

from .constants import SECONDS_PER_MYR, ZERO_C


class LinearPath:
    """Linear cooling or heating from ``start_C`` to ``end_C`` at ``rate_C_per_Myr``.

    Parameters
    ----------
    start_C, end_C : float
        Temperatures in degC.
    rate_C_per_Myr : float
        Magnitude of dT/dt, positive.
    """

    def __init__(self, start_C, end_C, rate_C_per_Myr):
        self.start_C = float(start_C)
        self.end_C = float(end_C)
        self.rate_C_per_Myr = float(rate_C_per_Myr)
        self.duration_Myr = abs(self.end_C - self.start_C) / self.rate_C_per_Myr
        self.duration_s = self.duration_Myr * SECONDS_PER_MYR

    @classmethod
    def from_deck(cls, table):
        return cls(table["start_C"], table["end_C"], table["rate_C_per_Myr"])

    def T_C(self, tau):
        """Temperature (degC) at normalised time ``tau``."""
        return self.start_C + (self.end_C - self.start_C) * np.asarray(tau, dtype=float)

    def T_K(self, tau):
        """Temperature (K) at normalised time ``tau``."""
        return self.T_C(tau) + ZERO_C

    def tau_at(self, T_C):
        """Normalised time at which the path passes ``T_C`` (degC)."""
        return (np.asarray(T_C, dtype=float) - self.start_C) / (self.end_C - self.start_C)

    def t_Myr(self, tau):
        """Elapsed time in Myr at normalised time ``tau``."""
        return np.asarray(tau, dtype=float) * self.duration_Myr


def path_from_deck(table):
    """Build the path a deck's ``[temperature]`` table describes."""
    if table["path"] in ("cooling", "heating"):
        return LinearPath.from_deck(table)
    raise ValueError(f"unknown temperature path {table['path']!r}")  # schema prevents this
