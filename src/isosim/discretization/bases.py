"""Two representations of the grain unknowns for the same semi-discrete system.

The grain equations are, per block b (isotope x grain class),

    c' = kappa_b (L c + s r_b),

with L the finite-volume operator of :class:`~isosim.discretization.spherical.SphereGrid`
(the rim coupling ``up[-1]`` on its last diagonal entry), r_b the value outside the rim
(K b) and s = up[-1] e_N. The flux into the grain needs the rim cell value e_N . c.

- :class:`CellBasis`: the unknowns are the cell values; L is tridiagonal, solved by the
  Thomas algorithm (O(N) per block, one Python-level numpy step per cell). Any grid size.
- :class:`EigenBasis`: the unknowns are the amplitudes a of L's eigenvectors, c = Q a.
  L is self-adjoint in the volume-weighted inner product, so Q = W^-1/2 U with U
  orthonormal (W = diag(volume weights)) and Q^-1 = U^T W^1/2. In these coordinates L is
  the diagonal of its eigenvalues, s becomes Q^-1 s and the rim value is Q[-1] . a: every
  operation (residual, Jacobian factorisation, solve) is a handful of whole-array numpy
  operations, with no sequential recursion over cells. Roughly ten times fewer Python-level
  operations per stage for ~100 cells; the transform to cells (O(N^2) per block) is done
  only for outputs. Same ODE system, so the same solution up to round-off of the transform
  (cond(Q) = sqrt(max w / min w): ~7 for the default stretched 100-cell grid, ~1700 for
  1000 uniform cells).

Both give the arrays in (cell or mode, block...) layout; the methods take any trailing shape.
"""

import numpy as np

from .bordered import BorderedDiagonal, BorderedTridiagonal

#: ``basis = "auto"`` uses eigenvectors up to this many cells (Q is N x N; its set-up is
#: O(N^2) and each output transform O(N^2) per block).
EIGEN_MAX_CELLS = 1000


def make_basis(grid, name="auto"):
    """The basis called ``name`` ("auto", "eigen" or "cells") for ``grid``."""
    if name == "auto":
        name = "eigen" if grid.cells <= EIGEN_MAX_CELLS else "cells"
    return {"eigen": EigenBasis, "cells": CellBasis}[name](grid)


class CellBasis:
    """The unknowns are the cell values (the identity transform)."""

    name = "cells"

    def __init__(self, grid):
        self.grid = grid
        self.n = grid.cells
        self._up_inner = grid.up[:-1]
        self._lo_inner = grid.lo[1:]
        #: volume average of the cells = mean_row . x
        self.mean_row = self.weights_in_basis(grid.weights)

    def rim(self, x):
        """Rim cell value of every block of ``x`` (n, ...)."""
        return x[-1]

    def apply(self, x, outside, scale, out):
        """out = scale * (L x + s * outside) for ``x`` (n, ...), the values outside the rim
        and the scales of the blocks (both of shape ``x.shape[1:]``)."""
        shape = (-1,) + (1,) * (x.ndim - 1)
        up_in, lo_in = self._up_inner.reshape(shape), self._lo_inner.reshape(shape)
        diff = x[1:] - x[:-1]                                    # across the inner faces
        np.multiply(up_in, diff, out=out[:-1])
        out[-1] = self.grid.up[-1] * (outside - x[-1])
        out[1:] -= lo_in * diff
        out *= scale
        return out

    def factor(self, kappa, shift, border_col, border_row, group, ngroups):
        """Factorisation of shift I - kappa_b L bordered by (border_col_b s, border_row_b e_N^T)."""
        return BorderedTridiagonal(kappa, shift, self.grid.lo, self.grid.up, border_col * self.grid.up[-1],
                                   border_row, group, ngroups)

    def weights_in_basis(self, rows):
        """Cell weights ``rows`` (..., n) as weights of the coordinates: rows . c = result . x."""
        return rows

    def coordinate_tolerances(self, rtol, atol):
        """Absolute step-control tolerance of each coordinate (n,): cell values get ``atol``
        (they are O(1): relative to the bulk rock)."""
        return np.full(self.n, float(atol))

    def uniform(self):
        """Coordinates of the uniform profile 1."""
        return np.ones(self.n)

    def to_cells(self, x):
        return x

    def from_cells(self, c):
        return c


class EigenBasis(CellBasis):
    """The unknowns are the amplitudes of the eigenvectors of L (see the module docstring)."""

    name = "eigen"

    def __init__(self, grid):
        from scipy.linalg import eigh_tridiagonal
        up, lo, w = grid.up, grid.lo, grid.weights
        sw = np.sqrt(w)
        # W^1/2 L W^-1/2 is symmetric because w_i up_i = w_{i+1} lo_{i+1} (one face, two cells)
        lam, U = eigh_tridiagonal(-(lo + up), sw[:-1] * up[:-1] / sw[1:])
        self.lam = lam                                 # all negative (the rim term makes L definite)
        self.Q = U / sw[:, None]                       # cells = Q @ modes
        self.Qinv = U.T * sw[None, :]                  # modes = Qinv @ cells
        self.source = self.Qinv[:, -1] * up[-1]        # Q^-1 s
        self._scratch = self._factor_buffers = None    # reused work arrays (see apply, factor)
        super().__init__(grid)
        # The cell scheme conserves mass to round-off because every face flux cancels in the
        # volume sum: w . L c = -rim up_N c_N and w . s = rim. Here the same identities read
        # mean_row * lam = -rim probe and mean_row . source = rim; they hold to ~1e-15 for
        # the eigenvectors as computed, and are made exact by taking the rim probe (Q[-1])
        # and the source scale from them, so that the modal system conserves mass as well
        # as the cell system does (not only to eigensolver round-off times the stiffness).
        self.probe = -self.mean_row * lam / grid.rim   # rim cell value = probe . a
        self.source *= grid.rim / (self.mean_row @ self.source)
        self._uniform = self.Qinv.sum(axis=1)

    def rim(self, x):
        return np.tensordot(self.probe, x, axes=(0, 0))

    def apply(self, x, outside, scale, out):
        # four whole-array passes, no temporaries of the state's size but one scratch array
        shape = (-1,) + (1,) * (x.ndim - 1)
        np.multiply(x, scale, out=out)
        out *= self.lam.reshape(shape)
        if self._scratch is None or self._scratch.shape != x.shape:
            self._scratch = np.empty_like(x)
        np.multiply.outer(self.source, scale * outside, out=self._scratch)
        out += self._scratch
        return out

    def factor(self, kappa, shift, border_col, border_row, group, ngroups):
        shape = (self.n, kappa.size)
        if self._factor_buffers is None or self._factor_buffers[0].shape != shape:
            self._factor_buffers = (np.empty(shape), np.empty(shape))
        return BorderedDiagonal(kappa, shift, self.lam, self.source, self.probe, border_col, border_row,
                                group, ngroups, self._factor_buffers)

    def weights_in_basis(self, rows):
        return rows @ self.Q

    def coordinate_tolerances(self, rtol, atol):
        """Amplitude a_k moves the cells by a_k Q[:, k]: it gets (atol + rtol) / max|Q[:, k]|,
        the error that moves no cell by more than a cell value's own tolerance. (With ``atol``
        itself, the many tiny high-mode amplitudes would hold the steps to their round-off.)"""
        return (atol + rtol) / np.abs(self.Q).max(axis=0)

    def uniform(self):
        return self._uniform

    def to_cells(self, x):
        return np.tensordot(self.Q, x, axes=(1, 0))

    def from_cells(self, c):
        return np.tensordot(self.Qinv, c, axes=(1, 0))
