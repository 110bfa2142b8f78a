"""Exceptions that end a run with a message instead of a traceback, and their exit codes.

The command line catches these (and only these) and prints their message; anything
else is a bug in isosim and keeps its traceback.
"""

#: The run finished.
EXIT_OK = 0
#: The user's input (deck, command line, data file) is wrong, or a dependency (petsc4py,
#: mpi4py) cannot be loaded: nothing was computed.
EXIT_USAGE = 2
#: The time integrator failed; the last good state was checkpointed.
EXIT_SOLVER = 3
#: Reading or writing a file failed (disk full, permissions, corrupt checkpoint).
EXIT_IO = 4
#: Stopped on SIGTERM/SIGUSR1/SIGINT after keeping what was finished (a checkpoint, the
#: finished members of a study); ``isosim restart`` continues.
#: 75 is EX_TEMPFAIL of sysexits.h ("try again later"): the SLURM templates requeue on it.
EXIT_CHECKPOINTED = 75
#: Ctrl-C before anything could be kept (the shell's 128 + SIGINT).
EXIT_INTERRUPTED = 130


class IsosimError(Exception):
    """An error that is reported to the user as a message and an exit code."""

    exit_code = EXIT_USAGE


class DeckError(IsosimError):
    """An input deck or a command-line override is invalid.

    Parameters
    ----------
    path : str
        The deck file the problem is in.
    problems : list of str
        One line per mistake, each naming the key, the value and what was expected.
    """

    exit_code = EXIT_USAGE

    def __init__(self, path, problems):
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"error: input deck {self.path} has {n} problem{'s' if n != 1 else ''}; nothing was run:"
        super().__init__("\n".join([head] + [f"  - {p}" for p in self.problems]))

    def __reduce__(self):  # errors found on rank 0 are broadcast to the other ranks
        return (DeckError, (self.path, self.problems))


class DataFileError(DeckError):
    """A data file from outside isosim (a CSV of measurements) is malformed.

    Parameters
    ----------
    path : str
        The data file.
    problems : list of str
        One line per mistake, each naming the line, the column, the value and what was expected.
    """

    def __init__(self, path, problems):
        super().__init__(path, problems)
        n = len(self.problems)
        head = f"error: data file {self.path} has {n} problem{'s' if n != 1 else ''}; nothing was run:"
        self.args = ("\n".join([head] + [f"  - {p}" for p in self.problems]),)

    def __reduce__(self):
        return (DataFileError, (self.path, self.problems))


class UsageError(IsosimError):
    """A command-line mistake (missing file, existing output directory, ...)."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(IsosimError):
    """Something isosim needs is not installed or cannot be loaded (petsc4py, mpi4py, PETSc).

    Exit code 2, like a usage error: nothing was computed, and the fix is on the user's side
    (install a package, set or unset a variable); the message says which, in one line.
    """

    exit_code = EXIT_USAGE


class RestartError(IsosimError):
    """A restart was refused (missing or mismatched checkpoint)."""

    exit_code = EXIT_USAGE


class AlreadyComplete(IsosimError):
    """``isosim restart`` of a job that finished: nothing is recomputed or changed (exit 0)."""

    exit_code = EXIT_OK


class CheckpointIOError(IsosimError):
    """A checkpoint or output file could not be written or read."""

    exit_code = EXIT_IO


class SolverFailure(IsosimError):
    """The time integrator could not continue."""

    exit_code = EXIT_SOLVER


class Checkpointed(IsosimError):
    """The run stopped on a signal after writing a checkpoint."""

    exit_code = EXIT_CHECKPOINTED


class Stopped(Checkpointed):
    """A study's unit of work (a batch of members) stopped on a signal, keeping nothing of
    itself: the study keeps its finished units and reports (raised to the study, not the user).

    Parameters
    ----------
    where : str
        Where the integration stopped.
    signal_name : str
        The signal (SIGTERM, SIGUSR1, SIGINT).
    """

    def __init__(self, where, signal_name=""):
        super().__init__(where)
        self.signal_name = signal_name

    def __reduce__(self):
        return (Stopped, (str(self), self.signal_name))
