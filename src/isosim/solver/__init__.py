"""The one PETSc TS driver used by every model (monitors, outputs, checkpoints, signals)."""
