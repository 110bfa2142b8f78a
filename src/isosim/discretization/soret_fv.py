"""Finite volumes for drift-diffusion in 1-D with an exponentially fitted flux. Pure numpy.

Uniform cells i = 0..N-1 of width h on [0, L]; face f (0..N) lies between cells f-1 and f;
faces 0 and N are the zero-flux ends. With the thermal potential psi (see
:mod:`isosim.physics.soret`), the Scharfetter-Gummel flux through face f is

    J_f / h = a+_f c_{f-1} - a-_f c_f,   a±_f = D_f / h^2 B(±(psi_f - psi_{f-1})),

B(z) = z / (e^z - 1). Because B(z) / B(-z) = e^{-z}, J_f = 0 exactly when
c_f / c_{f-1} = exp(-(psi_f - psi_{f-1})): the discrete steady state is exp(-psi) at the
cell centres whatever the temperature profile or the diffusivity, and the scheme is
second-order accurate in h for the transient. The sum of h c over the cells is conserved
exactly (the fluxes telescope).

Unknowns are interleaved, row = cell * nspecies + species, as on a PETSc DMDA with
``dof = nspecies``.
"""

import numpy as np

from ..physics.soret import bernoulli


def face_coefficients(psi_cells, D_faces, h):
    """a+ and a- (1/s) of the faces between consecutive cells.

    Parameters
    ----------
    psi_cells : array (m, nspecies)
        Thermal potential at m consecutive cell centres.
    D_faces : array (m - 1, nspecies)
        Diffusivity (m^2/s) at the m - 1 faces between them.
    h : float
        Cell width (m).
    """
    dpsi = np.diff(psi_cells, axis=0)
    scale = D_faces / h**2
    return scale * bernoulli(dpsi), scale * bernoulli(-dpsi)


def operator_rows(first, last, ncells, a_plus, a_minus):
    """CSR rows (owned cells ``first``..``last``-1, all species) of the operator M in dc/dt = M c.

    Parameters
    ----------
    first, last : int
        Owned cell range (global indices).
    ncells : int
        Cells in the whole column.
    a_plus, a_minus : array (last - first + 1, nspecies)
        Coefficients of faces ``first``..``last`` (global face indices); the end faces 0 and
        ``ncells`` are zero-flux whatever is passed for them.

    Returns
    -------
    indptr, columns, values : arrays
        Local CSR with global column indices, rows in interleaved order.
    """
    nsp = a_plus.shape[1]
    ap, am = a_plus.copy(), a_minus.copy()
    if first == 0:
        ap[0] = am[0] = 0.0
    if last == ncells:
        ap[-1] = am[-1] = 0.0
    cells = np.arange(first, last)
    # dc_i/dt = a+_{i} c_{i-1} - (a-_{i} + a+_{i+1}) c_i + a-_{i+1} c_{i+1}  (face i left of cell i)
    lower = ap[:-1]
    diag = -(am[:-1] + ap[1:])
    upper = am[1:]
    species = np.arange(nsp)
    row_cell = np.repeat(cells, nsp)
    row_sp = np.tile(species, cells.size)
    has_lower = row_cell > 0
    has_upper = row_cell < ncells - 1
    counts = 1 + has_lower.astype(int) + has_upper.astype(int)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    cols = np.empty(indptr[-1], dtype=np.int64)
    vals = np.empty(indptr[-1])
    pos = indptr[:-1].copy()
    for present, offset, coef in ((has_lower, -1, lower), (None, 0, diag), (has_upper, 1, upper)):
        sel = np.ones(row_cell.size, bool) if present is None else present
        flat = coef.ravel()
        cols[pos[sel]] = (row_cell[sel] + offset) * nsp + row_sp[sel]
        vals[pos[sel]] = flat[sel]
        pos[sel] += 1
    return indptr.astype(np.int32), cols.astype(np.int32), vals


def flux_divergence(u_ext, a_plus, a_minus):
    """dc/dt of the owned cells in flux form: (J_left - J_right) / h per cell.

    Computing face fluxes once and differencing them makes the sum over cells telescope, so
    the inventory is conserved to round-off of the (small) fluxes rather than of the (large)
    matrix entries: near steady state the matrix-vector product M c cancels terms of size
    D/h^2 and loses ~1e-12 of the inventory per unit time, the flux form does not.

    Parameters
    ----------
    u_ext : array (nloc + 2, nspecies)
        Owned cells with one neighbour on each side (any value beyond a zero-flux end).
    a_plus, a_minus : array (nloc + 1, nspecies)
        Coefficients of the faces of the owned cells (zero at the column's ends).
    """
    flux = a_plus * u_ext[:-1] - a_minus * u_ext[1:]
    return flux[:-1] - flux[1:]
