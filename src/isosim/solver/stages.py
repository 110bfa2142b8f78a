"""PETSc log stages, so that ``-log_view`` splits a run's time into set-up, integration,
recording, checkpoints and output (the scaling studies read these)."""

import contextlib

_stages = {}


@contextlib.contextmanager
def stage(name):
    """Attribute the time spent inside the block to PETSc log stage ``isosim: name``.

    Collective in the sense of PETSc logging: every rank must enter the same stages."""
    from petsc4py import PETSc
    st = _stages.get(name)
    if st is None:
        st = _stages[name] = PETSc.Log.Stage(f"isosim: {name}")
    st.push()
    try:
        yield
    finally:
        st.pop()
