"""Many roots at once: a scan for sign changes, then Illinois regula falsi on every bracket.

Pure numpy (no I/O, no MPI): the caller's ``evaluate(indices, x)`` computes the residuals of
the problems ``indices`` at the points ``x`` in one batch (for ``isosim invert``, one batched
ensemble of simulations), so each iteration costs one batch whatever the number of roots.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Roots:
    """The state of a batched root search (arrays over the problems).

    ``a``/``b`` bracket each root with residuals ``fa``/``fb`` of opposite signs (NaN where the
    scan found no sign change); ``x``/``fx`` are the latest estimate and its residual.
    """

    a: np.ndarray
    b: np.ndarray
    fa: np.ndarray
    fb: np.ndarray
    x: np.ndarray
    fx: np.ndarray
    side: np.ndarray
    iterations: int = 0

    @property
    def found(self):
        return np.isfinite(self.a)


def brackets(grid, residuals):
    """The first sign change of each row of ``residuals`` (problems x scan points on
    ``grid``): a :class:`Roots` with the bracket ends and residuals (NaN where none)."""
    res = np.asarray(residuals, dtype=float)
    n = res.shape[0]
    a, b = np.full(n, np.nan), np.full(n, np.nan)
    fa, fb = a.copy(), b.copy()
    for i in range(n):
        change = np.flatnonzero(np.sign(res[i, :-1]) * np.sign(res[i, 1:]) <= 0)
        if change.size:
            k = change[0]
            a[i], b[i], fa[i], fb[i] = grid[k], grid[k + 1], res[i, k], res[i, k + 1]
    found = np.isfinite(a)
    return Roots(a, b, fa, fb, np.where(found, a, np.nan), np.where(found, fa, np.nan), np.zeros(n))


def illinois_step(roots, evaluate, tol, min_width):
    """One Illinois iteration on every root not yet within ``tol`` (|residual|) or
    ``min_width`` (bracket width). Returns False (and changes nothing) when none is left.

    The new point of each bracket is the secant (regula falsi) point; when the same end is
    kept twice in a row, its residual is halved (the Illinois rule), which restores
    superlinear convergence where plain regula falsi stalls on one side."""
    r = roots
    active = r.found & ~((np.abs(r.fx) < tol) | (np.abs(r.b - r.a) < min_width))
    if not active.any():
        return False
    r.iterations += 1
    idx = np.flatnonzero(active)
    xa = r.a[idx] - r.fa[idx] * (r.b[idx] - r.a[idx]) / (r.fb[idx] - r.fa[idx])
    xa = np.where(np.isfinite(xa), xa, 0.5 * (r.a[idx] + r.b[idx]))
    fnew = np.asarray(evaluate(idx, xa), dtype=float)
    for i, xv, fv in zip(idx, xa, fnew):
        r.x[i], r.fx[i] = xv, fv
        if np.sign(fv) == np.sign(r.fa[i]):
            r.a[i], r.fa[i] = xv, fv
            if r.side[i] == -1:
                r.fb[i] *= 0.5          # Illinois: halve the stale end's value
            r.side[i] = -1
        else:
            r.b[i], r.fb[i] = xv, fv
            if r.side[i] == 1:
                r.fa[i] *= 0.5
            r.side[i] = 1
    return True
