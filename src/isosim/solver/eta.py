"""An honest time-left estimate for progress lines.

The old estimate extrapolated the whole run from its first moments (elapsed * (1 - done) /
done): a run starts with steps of 1e-8 of the path (``solver.initial_dt``) that grow by
orders of magnitude, so the first line read ``left ~2064:55:01`` for a run of seconds.

:func:`time_left` measures the rate of progress (model time per wall second) over the window
since the previous measurement and gives no estimate (NaN, printed as ``?``) until a
window has held at least :data:`MIN_STEPS` steps and :data:`MIN_SECONDS` seconds (with
``--progress`` below that, lines in between reuse the last measured rate). The
estimate is "at the current rate": it assumes the step size stays as it is now, which
is conservative while steps grow and honest when they stall.
"""

import time

import numpy as np

#: The least steps and wall seconds a rate must be measured over before an estimate is given.
MIN_STEPS, MIN_SECONDS = 10, 2.0


def time_left(driver, ts):
    """Wall seconds left at the rate measured since the previous call (or the start), or NaN
    if the window is too short (see the module docstring). Keeps its state on ``driver``."""
    now, tau, step = time.monotonic(), ts.getTime(), ts.getStepNumber()
    if driver._eta_ref is None:
        # a restart's first window starts at its first line (the step count before it is unknown)
        driver._eta_ref = (driver._wall_start, driver._tau_at_start, 0 if driver._tau_at_start == 0 else step)
    wall0, tau0, step0 = driver._eta_ref
    if step - step0 >= MIN_STEPS and now - wall0 >= MIN_SECONDS and tau > tau0:
        driver._eta_rate = (tau - tau0) / (now - wall0)      # model time per wall second
        driver._eta_ref = (now, tau, step)                  # the next window starts here
    rate = driver._eta_rate
    if not rate:
        return float("nan")
    left = max(driver.problem.end_time - tau, 0.0) / rate
    return left if np.isfinite(left) else float("nan")
