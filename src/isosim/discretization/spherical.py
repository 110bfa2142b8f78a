"""Finite volumes on a sphere of unit radius (r/R), cell-centred, conservative fluxes.

The diffusion operator is written per unit cell volume:

    (L c)_i = up_i (c_{i+1} - c_i) + lo_i (c_{i-1} - c_i),
    up_i = rho_{i+1/2}^2 / (v_i dr_{i+1/2}),  lo_i = rho_{i-1/2}^2 / (v_i dr_{i-1/2}),

with v_i = (rho_{i+1/2}^3 - rho_{i-1/2}^3)/3 (the 4 pi cancels). The outermost "neighbour"
c_N is the rim value, a half cell away. Because each face flux appears with opposite
signs in its two cells, sum_i v_i (L c)_i equals the rim flux exactly: the scheme
conserves mass to round-off.
"""

import numpy as np


class SphereGrid:
    """Radial cells on [0, 1].

    Parameters
    ----------
    cells : int
        Number of cells.
    stretch : float
        Ratio of neighbouring cell widths, cells shrinking toward the rim where the
        steep gradients of fast cooling live (1 = uniform).
    """

    def __init__(self, cells, stretch=1.0):
        self.cells = int(cells)
        self.stretch = float(stretch)
        widths = self.stretch ** -np.arange(self.cells, dtype=float)  # largest at the centre
        self.faces = np.concatenate(([0.0], np.cumsum(widths))) / widths.sum()
        self.faces[-1] = 1.0
        self.centres = 0.5 * (self.faces[:-1] + self.faces[1:])
        self.volumes = (self.faces[1:] ** 3 - self.faces[:-1] ** 3) / 3.0
        # distances between the points a face's flux is evaluated from
        dist = np.diff(np.concatenate((self.centres, [1.0])))
        area = self.faces[1:] ** 2
        self.up = area / (self.volumes * dist)
        self.lo = np.zeros(self.cells)
        self.lo[1:] = self.faces[1:-1] ** 2 / (self.volumes[1:] * dist[:-1])
        #: rim coupling per unit grain volume, (4 pi R^2 / (4/3 pi R^3)) / (1 - rho_N)
        self.rim = 3.0 / dist[-1]
        #: weights giving the volume average over the grain (sum 1): mean = weights @ c
        self.weights = 3.0 * self.volumes
