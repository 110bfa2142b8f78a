"""Grain-size populations: a phase's grains as size classes with volume fractions."""

import numpy as np
from scipy.special import ndtri   # the standard normal quantile (scipy.stats costs 0.2 s to import)


def lognormal_classes(median, sigma, bins):
    """Equal-volume classes of a lognormal (volume-weighted) size distribution.

    Class k covers the volume quantiles [k/n, (k+1)/n] and is represented by its middle
    quantile, r_k = median exp(sigma Phi^-1((k + 1/2)/n)); each holds 1/n of the phase's
    volume. As sigma -> 0 every class tends to the median radius.

    Returns
    -------
    radii, fractions : ndarray
    """
    q = (np.arange(bins) + 0.5) / bins
    return median * np.exp(sigma * ndtri(q)), np.full(bins, 1.0 / bins)


def size_classes(phase):
    """(radii in mm, volume fractions) of a resolved deck phase table."""
    kind = phase["size_distribution"]
    if kind == "single":
        return np.array([phase["radius_mm"]]), np.array([1.0])
    if kind == "lognormal":
        return lognormal_classes(phase["median_radius_mm"], phase["sigma_ln"], phase["bins"])
    return np.array(phase["bin_radii_mm"]), np.array(phase["bin_fractions"])
