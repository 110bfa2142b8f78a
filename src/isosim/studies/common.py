"""What the studies share: their run directory (taken, locked, manifest), stopping on a
signal, result names and units. Collective where a function says so.
"""

import contextlib
from pathlib import Path

from ..deck import to_toml
from ..deck.specs import parse_range, parse_target  # noqa: F401  (one parser for decks and the command line)
from ..errors import AlreadyComplete, Checkpointed, Stopped
from ..io.atomic import write_text
from ..io.journal import UnitJournal
from ..io.rundir import (
    is_complete,
    lock_run_dir,
    prepare_run_dir,
    remove_stale_temporaries,
    write_manifest,
)
from ..logs import say
from ..parallel import collective
from ..registry import model_spec
from ..solver.signals import StopRequest


def h5_name(key):
    """A result key as an HDF5 dataset name: '/' (as in 87Sr/86Sr) would make a group."""
    return key.replace("/", "_")


def recorder_of(model):
    return model_spec(model).recorder_class


def unit_of(deck, key):
    """The unit of a deck key, from its schema (empty if none)."""
    from ..deck import MODELS
    from ..deck.load import split_key
    from ..deck.schema import Field, lookup
    try:
        parts = split_key(key)
    except ValueError:
        return ""
    spec = lookup(MODELS[deck["model"]].SCHEMA, parts)
    return spec.unit if isinstance(spec, Field) else ""


def default_out(deck_path, kind):
    return Path("runs") / f"{Path(deck_path).stem}-{kind}"


def open_study_dir(run_dir, comm, kind, job, base, *, force, resume, log=say):
    """Take ``run_dir`` for a study (locked for this command). A new study: refuse an earlier
    one without ``force``, write deck.toml and the manifest ``job`` before any work. A resumed
    one (``resume``): only the lock; a finished study is not redone (AlreadyComplete, exit 0).
    Collective."""
    def take():
        if not resume:
            prepare_run_dir(run_dir, force)
            write_text(Path(run_dir) / "deck.toml", to_toml(base))
            write_manifest(run_dir, kind, **job)
            return []
        lock_run_dir(run_dir)
        if is_complete(run_dir):
            raise AlreadyComplete(f"[isosim] the {kind} in {run_dir} is complete (summary.json); nothing to do")
        return remove_stale_temporaries(run_dir)
    removed = collective(comm, take)
    if removed and comm.rank == 0:
        log(f"[isosim] removed {len(removed)} temporary file(s) left by interrupted writes")
    return Path(run_dir)


@contextlib.contextmanager
def stoppable(run_dir, comm, n_members):
    """SIGTERM, SIGUSR1 and SIGINT stop the study once its finished units are kept: the
    :class:`~isosim.errors.Stopped` of the integration becomes the user's Checkpointed (exit
    75) saying what was kept and how to continue. Collective."""
    with StopRequest() as stop:
        try:
            yield stop
        except Stopped as exc:
            kept = collective(comm, lambda: UnitJournal(run_dir).count_members())
            sig = getattr(exc, "signal_name", "") or stop.name or "a signal"
            raise Checkpointed(f"[isosim] stopped on {sig}: {kept} of {n_members} members are finished and kept "
                               f"in {Path(run_dir) / 'units'}. Continue with: isosim restart {run_dir}") from None
