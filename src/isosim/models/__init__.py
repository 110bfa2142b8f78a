"""Models: each a problem (residual, Jacobian, solver set-up, state layout; the contract is
:mod:`isosim.models.base`) and a recorder (what it outputs). Which classes make which model
is said once, in :mod:`isosim.registry`; nothing is imported here, so that importing
:mod:`isosim.models.base` does not load every model (and PETSc with it). The classes are
still reachable by name (``from isosim.models import GrainExchangeProblem``): they are
looked up in the registry when asked for."""


def __getattr__(name):
    from ..registry import MODELS, resolve
    if name == "REGISTRY":       # model -> (problem class, recorder class): a view of the registry
        return {n: (s.problem_class, s.recorder_class) for n, s in MODELS.items()}
    for spec in MODELS.values():
        for ref in (spec.problem, spec.recorder):
            if ref.endswith(f":{name}"):
                return resolve(ref)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
