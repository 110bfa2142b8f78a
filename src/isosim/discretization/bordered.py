"""Exact O(N) solves of tridiagonal blocks bordered by a few global unknowns.

The Jacobian of a grain population is an arrowhead: one tridiagonal block per (isotope,
grain class), each coupled through its rim cell to the grain-boundary unknown of its
group (one per isotope and ensemble member)::

    [ T   B ] [x]   [f]
    [ C   d ] [y] = [g]

with B and C nonzero only at rim cells. Block elimination is exact: with z = T^-1 B,
y = (g - C T^-1 f) / (d - C z) and x = T^-1 f - z y. All blocks are laid end to end as
one long tridiagonal matrix (zero couplings between blocks) and factored by LAPACK
``dgttrf``, so the cost is linear in the number of unknowns. Groups whose blocks live
on several MPI ranks are summed by the ``allreduce`` callable given to :meth:`solve`.
"""

import numpy as np
from scipy.linalg import lapack


class BorderedTridiagonal:
    """Factorization of a bordered block-tridiagonal matrix.

    Parameters
    ----------
    lower, diag, upper : ndarray, shape (nblocks, n)
        Tridiagonal entries of each block (``lower[:, 0]`` and ``upper[:, -1]`` unused).
    border_col : ndarray, shape (nblocks,)
        B entry: coupling of each block's last cell to its group's border unknown.
    border_row : ndarray, shape (nblocks,)
        C entry: coupling of the border row to each block's last cell.
    group : ndarray of int, shape (nblocks,)
        Index of the border unknown (group) of each block, in ``range(ngroups)``.
    ngroups : int
    """

    def __init__(self, lower, diag, upper, border_col, border_row, group, ngroups):
        nb, n = diag.shape
        self.shape = (nb, n)
        self.group = group
        self.ngroups = ngroups
        self.border_row = border_row
        sub = lower.copy()
        sub[:, 0] = 0.0
        sup = upper.copy()
        sup[:, -1] = 0.0
        if nb * n == 0:
            self._factors = None
            self.z_rim = np.zeros(0)
            self.z = np.zeros((0, n))
            return
        dl, d, du, du2, ipiv, info = lapack.dgttrf(sub.ravel()[1:], diag.ravel(), sup.ravel()[:-1])
        if info != 0:
            raise np.linalg.LinAlgError(f"singular tridiagonal block (dgttrf info={info})")
        self._factors = (dl, d, du, du2, ipiv)
        rhs = np.zeros((nb, n))
        rhs[:, -1] = border_col
        self.z = self._solve_blocks(rhs)
        self.z_rim = self.z[:, -1]

    def _solve_blocks(self, rhs):
        if self._factors is None:
            return rhs.copy()
        x, info = lapack.dgttrs(*self._factors, rhs.ravel())
        return x.reshape(self.shape)

    def partial_schur(self, rhs_blocks):
        """Per-group partial sums ``(C T^-1 f, C z)`` from the local blocks, and T^-1 f."""
        w = self._solve_blocks(rhs_blocks)
        cf = np.bincount(self.group, self.border_row * w[:, -1], minlength=self.ngroups)
        cz = np.bincount(self.group, self.border_row * self.z_rim, minlength=self.ngroups)
        return w, cf, cz

    def back_substitute(self, w, y):
        """x = T^-1 f - z y for the local blocks, given every group's border value ``y``."""
        return w - self.z * y[self.group][:, None]
