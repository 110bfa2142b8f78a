"""Models: each a problem (residual, Jacobian, solver set-up, state layout) and a recorder
(what it outputs). The registry maps a deck's ``model`` to both."""

from .capsule import CapsuleProblem
from .capsule_output import CapsuleRecorder
from .chamber import ChamberProblem
from .chamber_output import ChamberRecorder
from .grain_exchange import GrainExchangeProblem
from .grain_exchange_output import GrainRecorder

REGISTRY = {
    "grain_exchange": (GrainExchangeProblem, GrainRecorder),
    "capsule": (CapsuleProblem, CapsuleRecorder),
    "chamber": (ChamberProblem, ChamberRecorder),
}
