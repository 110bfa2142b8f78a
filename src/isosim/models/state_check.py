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


def first_unphysical(values, nonnegative=True):
    """Index tuple of the first entry of ``values`` that is NaN, infinite or (where
    ``nonnegative`` is True; a bool or an array broadcast against ``values``) negative beyond
    round-off; None if there is none. Local; about two passes over the array."""
    ok = np.isfinite(values)
    ok &= (values >= -NEGATIVE_TOLERANCE) | ~np.asarray(nonnegative, dtype=bool)
    if ok.all():
        return None
    return np.unravel_index(int(np.argmin(ok)), np.shape(values))   # argmin: the first False


def value_text(v):
    """A value for a message: ``nan``, ``inf``, or the number flagged as negative."""
    return f"{v}" if not np.isfinite(v) else f"{v:.6g} (negative)"
