"""SIGTERM/SIGUSR1 (what SLURM and mpirun send before a wall-time limit) and SIGINT
(Ctrl-C: the terminal sends it to every process of the job) become a flag.

The handler only records the signal; the driver checks the flag after every step (a study
also between its members), agrees on it across ranks, keeps what is finished (a checkpoint,
the finished members) and exits with EXIT_CHECKPOINTED. Without the handler Ctrl-C raised
KeyboardInterrupt inside a PETSc callback: a traceback, then PETSc's SEGV report.
"""

import signal


class StopRequest:
    """Installs handlers while in a ``with`` block; ``signum`` is the last signal seen."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None),
                                getattr(signal, "SIGINT", None)) if s)

    def __init__(self):
        self.signum = 0
        self._previous = {}

    def _handler(self, signum, frame):
        self.signum = signum

    def __enter__(self):
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._previous.items():
            signal.signal(s, h)
        return False

    @property
    def name(self):
        return signal.Signals(self.signum).name if self.signum else ""
