"""The ``isosim`` command: a thin layer over the library.

:mod:`.parser` is the grammar (subcommands, options, help), :mod:`.commands` one small
handler per subcommand (validate, start PETSc, call the library, report). :func:`main`
only splits off the PETSc options, dispatches, and turns errors into exit codes: a user's
mistake (an :class:`~isosim.errors.IsosimError`) is one message on rank 0, never a
traceback; Ctrl-C outside an integration is exit 130; an unexpected exception on one rank
of several aborts the job instead of leaving the others waiting.
"""

import os
import signal
import sys

from ..errors import EXIT_CHECKPOINTED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, IsosimError
from ..solver.signals import StopRequest
from ..startup import world_rank
from .commands import HANDLERS
from .parser import build_parser, split_petsc_options

__all__ = ["main", "build_parser", "split_petsc_options"]


class _SignalledOutside(Exception):
    """A stop signal while no integration was listening (start-up, validation, writing)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, frame):
    raise _SignalledOutside(signum)


def main(argv=None):
    """Entry point of the ``isosim`` command; returns the exit code.

    From here on SIGTERM, SIGUSR1 and SIGINT never kill the process mid-way: inside an
    integration they stop it cleanly (:class:`~isosim.solver.signals.StopRequest`, exit 75),
    elsewhere they end the command with a message (exit 75; 130 for Ctrl-C) instead of the
    default action (SIGUSR1's is to die with status 138, no message)."""
    previous = {s: signal.signal(s, _raise_stop) for s in StopRequest.SIGNALS}
    try:
        return _main(argv)
    except (KeyboardInterrupt, _SignalledOutside) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        if world_rank() == 0:
            print(f"[isosim] stopped on {signal.Signals(signum).name} outside an integration: what was finished "
                  "is kept where the command keeps it ('isosim restart DIR' continues a run or study that got "
                  "that far)", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_CHECKPOINTED
    except BrokenPipeError:            # `isosim keys chamber | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        _abort_other_ranks()
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _main(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    own, petsc_options = split_petsc_options(argv)
    parser = build_parser()
    late = [tok for tok in petsc_options if tok.startswith("--")]
    if late:   # PETSc would take them as its own options and silently ignore them
        parser.error(f"{late[0]} comes after the PETSc option {petsc_options[0]}; isosim's own arguments "
                     "go first, PETSc options last")
    args = parser.parse_args(own)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return HANDLERS[args.command](args, petsc_options)
    except IsosimError as exc:
        if world_rank() == 0:
            print(str(exc), file=sys.stdout if exc.exit_code == EXIT_OK else sys.stderr, flush=True)
        return exc.exit_code


def _abort_other_ranks():
    """After an unexpected exception (a bug, not a user mistake: those are IsosimErrors, agreed
    on by every rank) on one rank of several, abort the job: the other ranks would wait for
    this one in their next collective call until the wall-time limit."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized() or mpi.COMM_WORLD.size == 1:
        return
    import traceback
    traceback.print_exc()
    print(f"[isosim] internal error on rank {mpi.COMM_WORLD.rank}: aborting all ranks", file=sys.stderr,
          flush=True)
    mpi.COMM_WORLD.Abort(1)
