"""Deck tables shared by every model: solver, checkpoint and output settings."""

from .schema import Field, Table

#: PETSc TS types that handle the stiff, implicit (DAE) problems isosim builds.
IMPLICIT_TS_TYPES = ("arkimex", "rosw", "beuler", "bdf", "theta", "cn")

SOLVER = Table({
    "ts_type": Field("str", "arkimex", choices=IMPLICIT_TS_TYPES,
                     doc="PETSc TS type; -ts_type on the command line overrides it. ARKIMEX "
                         "and ROSW restart bitwise; BDF loses its history at a restart."),
    "rtol": Field("float", 1e-8, min=0.0, max=0.1, min_exclusive=True,
                  doc="relative tolerance of the adaptive time step (-ts_rtol)"),
    "atol": Field("float", 1e-12, min=0.0, max=1.0, min_exclusive=True,
                  doc="absolute tolerance of the adaptive time step (-ts_atol), on concentrations "
                      "normalised by the bulk"),
    "initial_dt": Field("float", 1e-8, min=0.0, max=0.1, min_exclusive=True,
                        doc="first step as a fraction of the whole path"),
    "max_steps": Field("int", 10_000_000, min=1, doc="give up after this many steps"),
}, doc="time integration (PETSc TS)")

CHECKPOINT = Table({
    "every_seconds": Field("float", 1800.0, min=0.0,
                           doc="write a checkpoint after this much wall time (0: never by time)",
                           unit="s"),
    "every_steps": Field("int", 0, min=0, doc="write a checkpoint every this many steps (0: never by steps)"),
}, doc="periodic checkpoints; SIGTERM/SIGUSR1 always write one")
