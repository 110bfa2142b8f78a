"""How work is split across MPI ranks (pure Python; the communicator is passed in)."""

import numpy as np

from .errors import IsosimError


def split_classes(member_of_class, size):
    """Contiguous ranges of grain classes for each rank.

    Whole ensemble members go to one rank when there are at least as many members as
    ranks (no communication inside a member); otherwise a member's classes are shared
    out and its grain-boundary sums are reduced across ranks.

    Parameters
    ----------
    member_of_class : ndarray of int
        Member index of every class, non-decreasing.
    size : int
        Number of ranks.

    Returns
    -------
    ndarray of int, shape (size + 1,)
        Rank ``p`` holds classes ``starts[p]:starts[p + 1]``.
    """
    member_of_class = np.asarray(member_of_class)
    ncls = member_of_class.size
    nmem = int(member_of_class.max()) + 1 if ncls else 0
    if nmem >= size:
        first = np.searchsorted(member_of_class, np.arange(nmem))  # first class of each member
        targets = np.arange(1, size) * ncls / size
        cut = first[np.clip(np.searchsorted(first, targets), 0, nmem - 1)]
        starts = np.concatenate(([0], cut, [ncls]))
    else:
        starts = (np.arange(size + 1) * ncls) // size
    return np.maximum.accumulate(starts).astype(int)


def collective(comm, fn):
    """Run ``fn`` on rank 0 only and re-raise any IsosimError on every rank."""
    err, result = None, None
    if comm.rank == 0:
        try:
            result = fn()
        except IsosimError as exc:
            err = exc
    err, result = comm.bcast((err, result), root=0)
    if err is not None:
        raise err
    return result
