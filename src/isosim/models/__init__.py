"""Models: each a problem (residual, Jacobian, exact solve, state layout) and a recorder
(what it outputs). The registry maps a deck's ``model`` to both."""

from .grain_exchange import GrainExchangeProblem
from .grain_exchange_output import GrainRecorder

REGISTRY = {
    "grain_exchange": (GrainExchangeProblem, GrainRecorder),
}
