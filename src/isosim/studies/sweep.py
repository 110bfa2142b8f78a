"""``isosim sweep``: every member of a deck's variations, as batched ensembles; slices of a
job array; stop and resume. Collective over ``comm``.
"""

import time

from ..deck import validate
from ..io.journal import UnitJournal
from ..io.rundir import unlock_run_dir
from ..logs import say
from ..parallel import collective
from ..solver.stages import stage
from .common import open_study_dir, stoppable
from .ensemble import expand, member_labels, solve
from .output import write_ensemble
from .slices import sweep_digest, take_slice


def run_sweep(raw, path, run_dir, comm, *, vary=(), samples=0, seed=0, slice_=None, force=False,
              progress_seconds=10.0, log=say, petsc_options=(), resume=False):
    """``isosim sweep``: expand, solve and write one summary for every member. Collective.

    ``slice_ = (K, N)`` runs only the K-th of N contiguous slices of the members (see
    :mod:`isosim.slices`); the whole sweep is expanded first, so the slice's members and
    their global indices are the direct sweep's.

    Finished units (batches) are kept in ``run_dir/units`` as they complete; a stop signal
    ends the sweep with :class:`~isosim.errors.Checkpointed` (exit 75) once they are kept,
    and ``resume=True`` (``isosim restart``, from the manifest) computes only the rest.
    """
    from ..deck.specs import decode_values, member_count
    from .streaming import is_streamed, run_sweep_streamed
    vary = [(k, decode_values(v)) for k, v in vary]       # a manifest's spaced lists (isosim restart)
    if is_streamed(member_count(vary, samples), run_dir, resume):   # > 10^5 members: never all at once
        return run_sweep_streamed(raw, path, run_dir, comm, vary=vary, samples=samples, seed=seed, slice_=slice_,
                                  force=force, progress_seconds=progress_seconds, log=log,
                                  petsc_options=petsc_options, resume=resume)
    t0 = time.monotonic()
    with stage("setup"):            # -log_view: members' validation, then integration and output
        decks, params = expand(raw, path, vary, samples, seed, comm=comm)
    base = validate(dict(raw), path)
    extra = {"samples": samples, "seed": seed} if samples else {}
    extra["sweep_digest"] = sweep_digest(base, vary, samples, seed)
    extra["petsc_options"] = list(petsc_options)
    what = f"sweep of {len(decks)} member(s)"
    if slice_:
        # every rank has the same decks, so every rank raises the same error, or none
        decks, params, extra["slice"] = take_slice(decks, params, slice_, path)
        sl = extra["slice"]
        what = (f"slice {sl['index']}/{sl['count']} of a sweep of {sl['total_members']} members: "
                f"members {sl['first_member']} to {sl['stop_member'] - 1}")
    job = {"raw": raw, "deck_path": str(path), "vary": [[k, list(v)] for k, v in vary], "samples": samples,
           "seed": seed, "slice": list(slice_) if slice_ else None, "petsc_options": list(petsc_options),
           "sweep_digest": extra["sweep_digest"], "n_members": len(decks)}
    run_dir = open_study_dir(run_dir, comm, "sweep", job, base, force=force, resume=resume, log=log)
    try:
        if comm.rank == 0:
            log(f"[isosim] {what} over {', '.join(params) or 'nothing'}", flush=True)
        with stage("integrate"), stoppable(run_dir, comm, len(decks)) as stop:
            first = extra["slice"]["first_member"] if slice_ else 0
            headlines, series = solve(decks, comm, labels=member_labels(params, first),
                                      progress_seconds=progress_seconds, log=log, journal=UnitJournal(run_dir),
                                      stop=stop)
        with stage("output"):
            return collective(comm, lambda: write_ensemble(run_dir, base, params, headlines, series, extra,
                                                            time.monotonic() - t0, comm.size))
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)
