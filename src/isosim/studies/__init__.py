"""Studies: many runs of one deck, and what is learnt from them. Collective over ``comm``.

- :mod:`.ensemble`: the members of a deck's variations and their integration as batched,
  vectorised systems over the ranks (kept unit by unit for stop and resume);
- :mod:`.sweep` (``isosim sweep``), :mod:`.streaming` (sweeps of more than 10^5 members,
  never all at once), :mod:`.slices` (``--slice K/N`` and ``isosim merge``);
- :mod:`.invert` (``isosim invert``, on :mod:`isosim.rootfind`);
- :mod:`.converge` (``isosim converge``: grid and time-step refinement);
- :mod:`.common` (run directory, stop signals, names and units) and :mod:`.output` (the
  result files of an ensemble).
"""

from .common import default_out, parse_range, parse_target
from .invert import run_invert
from .slices import merge_sweep, parse_slice, slice_dirs
from .sweep import run_sweep

__all__ = ["default_out", "merge_sweep", "parse_range", "parse_slice", "parse_target", "run_invert",
           "run_sweep", "slice_dirs"]
