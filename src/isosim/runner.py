"""Running a deck and restarting a run: the glue between decks, models, the driver and files.

Every function here is collective over ``comm``: errors found on rank 0 (an existing output
directory, a bad checkpoint) are broadcast so that all ranks stop together, never hang.
"""

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from . import __version__
from .deck import deck_digest, to_toml, validate
from .deck.load import read_toml, tomllib
from .errors import AlreadyComplete, CheckpointIOError, IsosimError, RestartError
from .io.atomic import write_text
from .io.checkpoint import (
    NAMES,
    RecordLog,
    latest_good_checkpoint,
    newest_header,
    write_checkpoint,
)
from .io.distributed import CollectiveFile
from .io.tables import changed_files, checkpoint_arrays, keep_checkpoint_tables, write_tables
from .io.layout import label
from .io.results import envelope, write_summary
from .io.rundir import (  # noqa: F401
    RUN_FILES,
    is_complete,
    lock_run_dir,
    prepare_run_dir,
    read_manifest,
    remove_stale_temporaries,
    unlock_run_dir,
    write_manifest,
)
from .logs import say
from .parallel import collective
from .registry import model_spec
from .solver.options import warn_unused
from .solver.stages import stage


class Run:
    """One run of one deck in one directory.

    Parameters
    ----------
    deck : dict
        Resolved deck.
    run_dir : Path
    comm : mpi4py communicator
    petsc_options : list of str
        The PETSc options in force (recorded for restarts).
    progress_seconds : float
    """

    def __init__(self, deck, run_dir, comm, petsc_options=(), progress_seconds=10.0, log=say):
        self.deck = deck
        self.run_dir = Path(run_dir)
        self.comm = comm
        self.petsc_options = list(petsc_options)
        self.progress_seconds = progress_seconds
        self.log = log
        spec = model_spec(deck["model"])      # the classes import petsc4py.PETSc: only after init_petsc
        problem_cls, recorder_cls = spec.problem_class, spec.recorder_class
        with stage("setup"):
            self.problem = problem_cls([deck], comm)
            self.recorder = recorder_cls(self.problem)
        self.deck_toml = to_toml(deck)
        self.digest = deck_digest(deck)
        self.tables = checkpoint_arrays(deck)   # large tables: once in each checkpoint, by digest
        self.records = RecordLog(self.run_dir)
        self.wall_start = time.monotonic()

    def _write_checkpoint(self, driver):
        """Collective: every rank writes its rows of the state (no gathering)."""
        with stage("checkpoint"):
            self._checkpoint(driver)

    def _checkpoint(self, driver):
        ts = driver.ts
        meta = {"isosim_version": __version__, "model": self.deck["model"], "deck_digest": self.digest,
                "time": ts.getTime(), "step": ts.getStepNumber(), "dt": ts.getTimeStep(),
                "nranks": self.comm.size, "petsc_options": self.petsc_options}

        # the recordings first (only what is new since the last checkpoint), then the
        # checkpoint that references them: a kill between the two leaves a superseded part
        parts = self.records.append(self.comm, self.recorder)
        write_checkpoint(self.run_dir / "checkpoint.h5", self.comm, meta=meta, deck_toml=self.deck_toml,
                         fields=driver.state_fields(), records=parts, tables=self.tables)
        self.records.commit(parts)

    def execute(self, checkpoint=None):
        """Integrate (from ``checkpoint`` if given) and write the results. Collective."""
        from .solver.driver import Driver
        from .solver.signals import StopRequest

        if checkpoint is None:
            collective(self.comm, lambda: (write_text(self.run_dir / "deck.toml", self.deck_toml),
                                           write_manifest(self.run_dir, "run",
                                                          petsc_options=self.petsc_options)))
        with StopRequest() as stop:
            with stage("setup"):
                driver = Driver(self.problem, self.recorder, self.deck["solver"], self.deck["checkpoint"],
                                write_checkpoint=self._write_checkpoint,
                                progress_seconds=self.progress_seconds, stop_request=stop, log=self.log,
                                restart_hint=f"isosim restart {self.run_dir}")
            try:
                if checkpoint is not None:
                    with stage("restart"):
                        driver.restore(checkpoint)
                        self.records = RecordLog.resume(checkpoint)
                self.log(f"[isosim] {self.deck['model']}: {self.problem.global_size} unknowns on "
                         f"{self.comm.size} rank(s); TS {driver.ts.getType()}; output in {self.run_dir}",
                         flush=True)
                with stage("integrate"):
                    driver.run(restarted=checkpoint is not None)
                self.steps = driver.ts.getStepNumber()
                self.ts_type = driver.ts.getType()
            finally:
                driver.destroy()
        self.wall_time = time.monotonic() - self.wall_start
        with stage("output"):
            self._write_results_h5()
            self.summary = collective(self.comm, self._write_summary)
        warn_unused(self.petsc_options, self.log)      # e.g. a misspelt -da_ option: say so
        return self.summary

    def _write_results_h5(self):
        """results.h5: rank 0 writes the series, then every rank its part of the large fields
        (profiles) in place. Atomic. Collective."""
        def prepare(h5):
            h5.attrs["isosim_version"] = __version__
            h5.attrs["model"] = self.deck["model"]
            h5.attrs["deck"] = self.deck_toml
            write_tables(h5, self.deck)
            self.recorder.write_results(h5)
        try:
            with CollectiveFile(self.run_dir / "results.h5", self.comm, prepare=prepare,
                                size_hint=self.recorder.output_bytes(), seal=True, finish=label) as f:
                self.recorder.write_fields(f)
        except OSError as exc:
            raise CheckpointIOError(f"error: could not write results in {self.run_dir}: {exc}") from None

    def _write_summary(self):
        """summary.json, written last: its presence marks a finished run (rank 0)."""
        headline = self.recorder.headline()
        summary = {
            **envelope("run", self.deck["model"], self.deck.get("title", ""), ranks=self.comm.size,
                       wall_time_s=self.wall_time),
            "steps": self.steps,
            "ts_type": self.ts_type,
            "petsc_options": self.petsc_options,
            "results": headline[0] if len(headline) == 1 else None,
            "members": headline,
            "deck": self.deck,
        }
        return write_summary(self.run_dir, summary)


def run_deck(deck, run_dir, comm, *, force=False, petsc_options=(), progress_seconds=10.0, log=say):
    """Run a resolved deck into ``run_dir`` (locked while it runs). Collective. Returns the summary dict."""
    run_dir = collective(comm, lambda: prepare_run_dir(run_dir, force))
    try:
        run = Run(deck, run_dir, comm, petsc_options, progress_seconds, log)
        return run.execute()
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)


def run_or_resume(deck, run_dir, comm, *, resume, petsc_options=(), progress_seconds=10.0, log=say):
    """One run of a study (a convergence level, a forward simulation). Collective.

    ``resume`` (the study is being restarted): a run that finished with this very deck is read
    back, one stopped with a checkpoint of this deck is continued (:func:`restart_run`); any
    other content of ``run_dir`` belongs to the study and is replaced. Returns the summary."""
    run_dir = Path(run_dir)
    if resume:
        def state():
            try:
                same = deck_digest(validate(read_toml(run_dir / "deck.toml"), run_dir / "deck.toml")) == \
                    deck_digest(deck)
            except (OSError, IsosimError):
                return None
            if not same:
                return None
            if is_complete(run_dir):
                return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
            return "checkpoint" if any((run_dir / n).exists() for n in NAMES) else None
        found = collective(comm, state)
        if isinstance(found, dict):
            return found
        if found == "checkpoint":
            return restart_run(run_dir, comm, petsc_options=petsc_options, progress_seconds=progress_seconds,
                               log=log)
    return run_deck(deck, run_dir, comm, force=True, petsc_options=petsc_options,
                    progress_seconds=progress_seconds, log=log)


def read_restart_meta(run_dir):
    """The header of the checkpoint to restart a run from (every process reads it for itself,
    before MPI and PETSc start: its PETSc options are needed to start them). Fields are
    verified later, collectively, by :func:`restart_run`. A finished run is never restarted."""
    run_dir = Path(run_dir)
    if is_complete(run_dir):
        raise AlreadyComplete(f"[isosim] the run in {run_dir} is complete (summary.json); nothing to do")
    if not any((run_dir / n).exists() for n in NAMES) and (run_dir / "deck.toml").exists():
        return FreshStart(run_dir)
    ck = newest_header(run_dir, say=lambda m: None)
    _keep_tables(ck)                      # its deck.toml resolves with the checkpoint's rows
    return ck


def _keep_tables(ck):
    """The large tables stored in checkpoint ``ck`` become the rows of their digests here, so
    that a restart uses them rather than the CSV files (which may have changed). Local."""
    try:
        keep_checkpoint_tables(ck)
    except ValueError as exc:
        raise RestartError(f"error: {ck.path}: a stored table fails its digest ({exc}); the restart is "
                           "refused") from None


class FreshStart:
    """A run stopped before its first checkpoint (killed early, or a SLURM job requeued
    before its first USR1): restarting it means starting it again from its deck.toml.
    Has a checkpoint header's ``meta`` (model, PETSc options) for the command line."""

    def __init__(self, run_dir):
        deck_path = Path(run_dir) / "deck.toml"
        deck = validate(read_toml(deck_path), deck_path)
        options = list(read_manifest(run_dir).get("petsc_options", []))
        self.meta = {"model": deck["model"], "petsc_options": options}


def check_restart(run_dir, ck):
    """Refuse a restart whose deck or version differs from the checkpoint's. Returns the deck."""
    deck_path = Path(run_dir) / "deck.toml"
    deck = validate(read_toml(deck_path), deck_path)
    meta = ck.meta
    if meta["isosim_version"] != __version__:
        raise RestartError(
            f"error: the checkpoint in {run_dir} was written by isosim {meta['isosim_version']}, "
            f"this is isosim {__version__}; results would not be reproducible, so the restart is "
            "refused. Install the matching version, or start a new run.")
    if deck_digest(deck) != meta["deck_digest"]:
        original = validate(tomllib.loads(ck.deck_toml), "checkpoint")
        changed = sorted(_diff_keys(original, deck))
        raise RestartError(
            f"error: {deck_path} differs from the deck the checkpoint was written with "
            f"(changed: {', '.join(changed) or 'formatting only'}); the restart is refused. Undo the "
            "change, or start a new run with the new deck.")
    return deck


def _diff_keys(a, b, prefix=""):
    keys = set(a) | set(b)
    out = []
    for k in keys:
        full = f"{prefix}{k}"
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff_keys(va, vb, full + ".")
        elif va != vb:
            out.append(full)
    return out


def restart_run(run_dir, comm, *, petsc_options=(), progress_seconds=10.0, log=say):
    """Continue the run in ``run_dir`` from its newest good checkpoint (or from the start if it
    stopped before writing one). Collective."""
    collective(comm, lambda: lock_run_dir(run_dir))
    try:
        return _restart_run(run_dir, comm, petsc_options=petsc_options, progress_seconds=progress_seconds,
                            log=log)
    finally:
        if comm.rank == 0:
            unlock_run_dir(run_dir)


def _restart_run(run_dir, comm, *, petsc_options, progress_seconds, log):
    if collective(comm, lambda: is_complete(run_dir)):    # finished while this restart waited
        raise AlreadyComplete(f"[isosim] the run in {run_dir} is complete (summary.json); nothing to do")
    removed = collective(comm, lambda: remove_stale_temporaries(run_dir))
    if removed and comm.rank == 0:
        log(f"[isosim] removed {len(removed)} temporary file(s) left by interrupted writes: {', '.join(removed)}")
    if not any((Path(run_dir) / n).exists() for n in NAMES):
        deck_path = Path(run_dir) / "deck.toml"
        deck = collective(comm, lambda: validate(read_toml(deck_path), deck_path))
        collective(comm, lambda: RecordLog(run_dir).remove_superseded())
        log(f"[isosim] no checkpoint in {run_dir} yet (stopped before the first one): starting "
            "again from the beginning") if comm.rank == 0 else None
        return Run(deck, run_dir, comm, petsc_options, progress_seconds, log).execute()
    ck = latest_good_checkpoint(run_dir, comm, say=lambda m: print(m, file=sys.stderr, flush=True))
    _keep_tables(ck)                      # every rank: the rows the run started with
    deck = collective(comm, lambda: check_restart(run_dir, ck))
    changes = collective(comm, lambda: changed_files(deck))      # every rank takes part in the collective
    for change in changes if comm.rank == 0 else ():
        print(f"warning: {change}: the restart continues with the rows stored in {ck.path.name}, those the "
              "run started with (a new run would read the file as it is now)", file=sys.stderr, flush=True)
    if ck.path.name != NAMES[0] and (Path(run_dir) / NAMES[0]).exists():
        # the newest checkpoint was refused: set it aside, or the next checkpoint would rotate
        # it into checkpoint.prev.h5 in place of the good one this restart starts from
        refused = Path(run_dir) / "checkpoint.refused.h5"
        def set_aside():
            with contextlib.suppress(OSError):    # if it cannot be moved, it is rotated as before
                os.replace(Path(run_dir) / NAMES[0], refused)
                return True
        if collective(comm, set_aside) and comm.rank == 0:
            log(f"[isosim] the refused {NAMES[0]} is kept as {refused.name}")
    superseded = collective(comm, lambda: RecordLog.resume(ck).remove_superseded())
    if superseded and comm.rank == 0:
        log(f"[isosim] removed {len(superseded)} record part(s) written after {ck.path.name}: "
            f"{', '.join(superseded)}")
    run = Run(deck, run_dir, comm, petsc_options, progress_seconds, log)
    log(f"[isosim] restarting from step {ck.meta['step']} (written on {ck.meta['nranks']} "
        f"rank(s)) at {run.recorder.describe(ck.meta['time'])}, from {ck.path.name}") if comm.rank == 0 else None
    return run.execute(checkpoint=ck)
