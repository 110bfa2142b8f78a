"""Temperature histories T(t).

Every path maps a normalised time tau in [0, 1] onto temperature, so ensemble members
with very different durations integrate on one TS clock; ``duration_s`` converts back.

Kinds (deck ``temperature.path``):

- ``cooling`` / ``heating``: linear from ``start_C`` to ``end_C`` at ``rate_C_per_Myr``;
- ``segments``: piecewise linear from ``start_C`` through ``segment_end_C[k]`` at
  ``segment_rate_C_per_Myr[k]`` (cooling then a reheating pulse, paper Fig. 7);
- ``table``: piecewise linear through tabulated (t, T) points (read from a CSV file when
  the deck is loaded, and stored in the resolved deck; above 1000 rows the deck refers to
  the file and the SHA-256 of its rows, :mod:`isosim.deck.tables`);
- ``exponential``: T = T_inf + (T_start - T_inf) exp(-t / t_c) until ``end_C``.
"""

import numpy as np

from .constants import SECONDS_PER_MYR, ZERO_C


class PiecewiseLinearPath:
    """T(t) linear between knots (times in Myr, strictly increasing; temperatures in degC)."""

    kind = "piecewise"

    def __init__(self, t_Myr, T_C):
        self.t_knots = np.asarray(t_Myr, dtype=float)
        self.T_knots = np.asarray(T_C, dtype=float)
        self.duration_Myr = float(self.t_knots[-1] - self.t_knots[0])
        self.duration_s = self.duration_Myr * SECONDS_PER_MYR
        self.tau_knots = (self.t_knots - self.t_knots[0]) / self.duration_Myr
        self.start_C = float(self.T_knots[0])
        self.end_C = float(self.T_knots[-1])

    def T_C(self, tau):
        """Temperature (degC) at normalised time ``tau``."""
        return np.interp(tau, self.tau_knots, self.T_knots)

    def T_K(self, tau):
        return self.T_C(tau) + ZERO_C

    def tau_at(self, T_C):
        """Every normalised time at which the path passes ``T_C`` (a list, ascending)."""
        out = []
        for k in range(len(self.tau_knots) - 1):
            a, b = self.T_knots[k], self.T_knots[k + 1]
            if a != b and min(a, b) <= T_C <= max(a, b):
                tau = self.tau_knots[k] + (T_C - a) / (b - a) * (self.tau_knots[k + 1] - self.tau_knots[k])
                if not out or tau > out[-1] + 1e-15:
                    out.append(float(tau))
        return out

    def t_Myr(self, tau):
        return np.asarray(tau, dtype=float) * self.duration_Myr


class ExponentialPath:
    """Newtonian cooling toward ``asymptote_C`` with time constant ``time_constant_Myr``,
    from ``start_C`` until ``end_C`` is reached."""

    kind = "exponential"

    def __init__(self, start_C, end_C, asymptote_C, time_constant_Myr):
        self.start_C, self.end_C = float(start_C), float(end_C)
        self.asymptote_C = float(asymptote_C)
        self.tc_Myr = float(time_constant_Myr)
        self.duration_Myr = self.tc_Myr * np.log((self.start_C - self.asymptote_C) / (self.end_C - self.asymptote_C))
        self.duration_s = self.duration_Myr * SECONDS_PER_MYR

    def T_C(self, tau):
        t = np.asarray(tau, dtype=float) * self.duration_Myr
        return self.asymptote_C + (self.start_C - self.asymptote_C) * np.exp(-t / self.tc_Myr)

    def T_K(self, tau):
        return self.T_C(tau) + ZERO_C

    def tau_at(self, T_C):
        lo, hi = sorted((self.start_C, self.end_C))
        if not lo <= T_C <= hi:
            return []
        t = self.tc_Myr * np.log((self.start_C - self.asymptote_C) / (T_C - self.asymptote_C))
        return [float(t / self.duration_Myr)]

    def t_Myr(self, tau):
        return np.asarray(tau, dtype=float) * self.duration_Myr


def segment_knots(start_C, ends_C, rates_C_per_Myr):
    """Knots (t_Myr, T_C) of a path of linear segments given by end temperatures and rates."""
    t, T = [0.0], [float(start_C)]
    for end, rate in zip(ends_C, rates_C_per_Myr):
        t.append(t[-1] + abs(end - T[-1]) / rate)
        T.append(float(end))
    return t, T


def path_from_deck(table):
    """Build the path a resolved deck's ``[temperature]`` table describes."""
    kind = table["path"]
    if kind in ("cooling", "heating"):
        return PiecewiseLinearPath(*segment_knots(table["start_C"], [table["end_C"]], [table["rate_C_per_Myr"]]))
    if kind == "segments":
        return PiecewiseLinearPath(*segment_knots(table["start_C"], table["segment_end_C"],
                                                  table["segment_rate_C_per_Myr"]))
    if kind == "table":
        from ..deck.tables import table_columns      # a large table is kept by its digest, not in the deck
        return PiecewiseLinearPath(*table_columns(table))
    if kind == "exponential":
        return ExponentialPath(table["start_C"], table["end_C"], table["asymptote_C"], table["time_constant_Myr"])
    raise ValueError(f"unknown temperature path {kind!r}")  # the schema prevents this


#: Above this many knots, :meth:`PathBatch.T_K` finds the segment by binary search (O(log K)
#: per path) instead of comparing with every knot (O(K), vectorised over the paths): a
#: tabulated path of 10^5 rows took 2.3 times as long to integrate by comparison.
SEARCH_KNOTS = 256


class PathBatch:
    """Vectorised T(tau) for many members' paths at one tau (the TS clock is shared)."""

    def __init__(self, paths):
        self.n = len(paths)
        pw = [i for i, p in enumerate(paths) if p.kind == "piecewise"]
        ex = [i for i, p in enumerate(paths) if p.kind == "exponential"]
        self.pw = np.array(pw, dtype=int)
        self.ex = np.array(ex, dtype=int)
        if pw:
            K = max(len(paths[i].tau_knots) for i in pw)
            self.tk = np.ones((len(pw), K))
            self.Tk = np.zeros((len(pw), K))
            for r, i in enumerate(pw):
                k = len(paths[i].tau_knots)
                self.tk[r, :k] = paths[i].tau_knots
                self.tk[r, k:] = 1.0 + np.arange(1, K - k + 1)   # padding beyond tau = 1
                self.Tk[r, :k] = paths[i].T_knots
                self.Tk[r, k:] = paths[i].T_knots[-1]
        # every piecewise path one segment from tau = 0 to 1: T is linear in tau, no knot search
        # (the search was most of the cost of T(tau), evaluated at every stage)
        self._single = None
        if pw and self.tk.shape[1] == 2 and np.all(self.tk[:, 0] == 0.0) and np.all(self.tk[:, 1] == 1.0):
            self._single = (self.Tk[:, 0], self.Tk[:, 1] - self.Tk[:, 0])
        if ex:
            self.ex_par = np.array([[paths[i].asymptote_C, paths[i].start_C, paths[i].duration_Myr / paths[i].tc_Myr]
                                    for i in ex])

    def T_K(self, tau):
        """Temperatures (K) of all paths at ``tau``: shape (n,), or (k, n) for k times."""
        tau = np.asarray(tau, dtype=float)
        t = tau.reshape(-1, 1)                                   # (k, 1): every time at once
        T = np.empty((t.shape[0], self.n))
        if self.pw.size and self._single is not None:   # one segment each (a plain cooling path)
            T0, dT = self._single
            T[:, self.pw] = T0 + dT * t        # the general formula below with t0 = 0, t1 = 1, bit for bit
        elif self.pw.size:
            K = self.tk.shape[1]
            if K > SEARCH_KNOTS:        # a long table: a binary search per path, the same index
                idx = np.empty((t.shape[0], self.pw.size), dtype=np.intp)
                for r in range(self.pw.size):
                    idx[:, r] = np.searchsorted(self.tk[r], t[:, 0], side="right")
                idx[np.isnan(t[:, 0])] = 0          # as the count below: no knot is <= NaN
                idx = np.clip(idx - 1, 0, K - 2)
            else:
                idx = np.clip((self.tk[None] <= t[:, :, None]).sum(axis=2) - 1, 0, K - 2)
            rows = np.arange(self.pw.size)
            t0, t1 = self.tk[rows, idx], self.tk[rows, idx + 1]
            T0, T1 = self.Tk[rows, idx], self.Tk[rows, idx + 1]
            T[:, self.pw] = T0 + (T1 - T0) * ((t - t0) / (t1 - t0))
        if self.ex.size:
            a, s, r = self.ex_par.T
            T[:, self.ex] = a + (s - a) * np.exp(-t * r)
        T += ZERO_C
        return T[0] if tau.ndim == 0 else T
