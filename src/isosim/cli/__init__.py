"""The ``isosim`` command: a thin layer over the library.

:mod:`.parser` is the grammar (subcommands, options, help), :mod:`.commands` one small
handler per subcommand (validate, start PETSc, call the library, report). :func:`main`
only splits off the PETSc options, dispatches, and turns errors into exit codes: a user's
mistake (an :class:`~isosim.errors.IsosimError`) is one message on rank 0, never a
traceback; Ctrl-C outside an integration is exit 130; an unexpected exception on one rank
of several aborts the job instead of leaving the others waiting.
"""

import os
import sys

from ..errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, IsosimError
from ..startup import world_rank
from .commands import HANDLERS
from .parser import build_parser, split_petsc_options

__all__ = ["main", "build_parser", "split_petsc_options"]


def main(argv=None):
    """Entry point of the ``isosim`` command; returns the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:          # Ctrl-C outside an integration (which stops cleanly, exit 75)
        if world_rank() == 0:
            print("[isosim] interrupted (Ctrl-C) outside an integration: what was finished is kept where the "
                  "command keeps it ('isosim restart DIR' continues a run or study that got that far)",
                  file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:            # `isosim keys chamber | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        _abort_other_ranks()
        raise


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
