"""isosim's report and progress lines: Python :mod:`logging`, printed by rank 0 only.

Every line a run, sweep or study prints goes through the ``isosim`` logger (:func:`say`);
its handler writes the message as it is (lines carry their own ``[isosim]`` prefix) to the
current ``sys.stdout``, and a filter drops records on every rank but rank 0 of
MPI_COMM_WORLD, so library code never guards its prints by rank. Errors are not logged here:
the command line prints them to stderr, once (:func:`isosim.startup.world_rank`).

Quiet it (``logging.getLogger("isosim").setLevel(logging.WARNING)``) or send it elsewhere
with the standard logging API, e.g. from a notebook.
"""

import logging
import sys

from .startup import world_rank

LOGGER = logging.getLogger("isosim")


class _RankZero(logging.Filter):
    """Keep records of MPI_COMM_WORLD's rank 0 only (the same line from N ranks is noise)."""

    def filter(self, record):
        return world_rank() == 0


class _Stdout(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a line is emitted (pytest and
    notebooks replace it after import)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


if not LOGGER.handlers:
    _handler = _Stdout()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _handler.addFilter(_RankZero())
    LOGGER.addHandler(_handler)
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def say(*parts, flush=None, file=None, sep=" "):
    """Log one line (``print``'s signature, so that callers may pass ``print`` instead)."""
    LOGGER.info(sep.join(str(p) for p in parts))


def quiet(*parts, **kwargs):
    """Say nothing (for ``log=`` parameters)."""
