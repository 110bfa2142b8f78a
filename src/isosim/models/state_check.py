"""Finding the first unphysical value of a state array, for the problems' ``check_state``.

The driver calls ``problem.check_state(u)`` after every accepted step (see
:meth:`isosim.solver.driver.Driver._poststep`). Every model scales its unknowns to O(1)
(concentrations relative to the bulk rock or to their start, masses relative to the initial
magma mass), so a single absolute tolerance separates round-off around zero from a real
negative concentration or mass.
"""

import numpy as np

#: Values below ``-NEGATIVE_TOLERANCE`` are negative beyond round-off of O(1) quantities.
NEGATIVE_TOLERANCE = 1e-9


def member_text(k, n):
    """How a state message names member ``k`` (0-based) of the ``n`` integrated together:
    nothing when it is alone (a run, or a member of an independent ensemble); in a batch its
    place in the list the ensemble's failure message gives (see ``isosim.studies.ensemble``)."""
    return "" if n == 1 else f" (member {k + 1} of the {n} listed)"


def first_unphysical(values, nonnegative=True):
    """Index tuple of the first entry of ``values`` that is NaN, infinite or (where
    ``nonnegative`` is True; a bool or an array broadcast against ``values``) negative beyond
    round-off; None if there is none. Local.

    A sound state costs two reductions (min and max: a NaN propagates into the min, an
    infinity shows in the max) and no temporary arrays: under 10 % of one residual
    evaluation. Only a state that fails them is searched for the first bad entry.
    """
    values = np.asarray(values)
    if values.size == 0:
        return None
    if np.all(nonnegative):
        if values.min() >= -NEGATIVE_TOLERANCE and values.max() < np.inf:
            return None
    elif np.isfinite(values.min()) and np.isfinite(values.max()):
        masked = np.where(nonnegative, values, 0.0) if np.ndim(nonnegative) else values
        if masked.min() >= -NEGATIVE_TOLERANCE:
            return None
    ok = np.isfinite(values)
    ok &= (values >= -NEGATIVE_TOLERANCE) | ~np.asarray(nonnegative, dtype=bool)
    if ok.all():
        return None
    return np.unravel_index(int(np.argmin(ok)), np.shape(values))   # argmin: the first False


def value_text(v):
    """A value for a message: ``nan``, ``inf``, or the number flagged as negative."""
    return f"{v}" if not np.isfinite(v) else f"{v:.6g} (negative)"
