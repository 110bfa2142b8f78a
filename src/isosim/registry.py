"""The models isosim knows, each described once.

A :class:`ModelSpec` names everything that makes a model: its deck module (schema and
cross-field rules), its problem and recorder classes (the contract is
:mod:`isosim.models.base`), its figures, its convergence study and the studies it supports.
The deck loader, the command line, the ensemble, plotting and ``converge`` all read this one
table. Parts are named by ``"module:attribute"`` and imported when first used, so that this
module imports nothing: reading a deck never loads PETSc, and the deck layer can consult the
registry without an import cycle.

Adding a model: a deck module, a problem and a recorder (subclasses of the bases in
:mod:`isosim.models.base`), figure functions, and one :class:`ModelSpec` line below;
``tests/test_registry.py`` checks every entry against the contract.
"""

import importlib
from dataclasses import dataclass, field


def resolve(ref):
    """The object a ``"package.module:attribute"`` (or ``"package.module"``) reference names."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, attr) if attr else obj


@dataclass(frozen=True)
class ModelSpec:
    """Everything about one model, by reference.

    Attributes
    ----------
    name : str
        The deck's ``model`` value.
    summary : str
        One line for ``isosim --help``.
    deck : str
        Module with ``SCHEMA`` and ``cross_check(deck) -> problems``.
    problem, recorder : str
        ``"module:Class"`` of the problem (:class:`isosim.models.base.Problem`) and its recorder
        (:class:`isosim.models.recording.Recorder`).
    figures : dict
        Output kind (``run``, ``sweep``, ``invert``) -> ``"module:function"`` drawing the figures
        of such a directory: ``function(h5, summary) -> [(file name, Figure)]``.
    converge : dict
        The convergence study: ``cells``/``stretch`` (grid keys refined in space, None: no
        grid), ``chooser`` (a key that chooses the grid itself, or None, removed from the levels
        of a space study, which start from the grid it chose), ``compare`` (headline results
        compared), ``end_only`` (overrides that leave only the final output, so that fixed steps
        land on every output time).
    studies : tuple of str
        The commands besides ``run`` the model supports (``sweep``, ``invert``).
    """

    name: str
    summary: str
    deck: str
    problem: str
    recorder: str
    figures: dict = field(default_factory=dict)
    converge: dict = field(default_factory=dict)
    studies: tuple = ()

    @property
    def deck_module(self):
        return resolve(self.deck)

    @property
    def problem_class(self):
        return resolve(self.problem)

    @property
    def recorder_class(self):
        return resolve(self.recorder)

    def figures_function(self, kind):
        """The figure function for outputs of ``kind``, or None if the model draws none."""
        ref = self.figures.get(kind)
        return resolve(ref) if ref else None


MODELS = {spec.name: spec for spec in (
    ModelSpec(
        name="grain_exchange",
        summary="mineral grains exchanging an element and its isotopes during cooling or heating",
        deck="isosim.deck.grain_exchange",
        problem="isosim.models.grain_exchange:GrainExchangeProblem",
        recorder="isosim.models.grain_exchange_output:GrainRecorder",
        figures={"run": "isosim.plot.grain:run_figures", "sweep": "isosim.plot.studies:sweep_figures",
                 "invert": "isosim.plot.studies:inversion_figures"},
        converge={"cells": "grid.cells", "stretch": "grid.stretch", "chooser": "grid.accuracy_permil",
                  "compare": ("Delta_permil", "T_apparent_C"),
                  "end_only": ("output.series_points=2", "output.temperatures_C=[]", "output.times_Myr=[]")},
        studies=("sweep", "invert"),
    ),
    ModelSpec(
        name="capsule",
        summary="thermal (Soret) diffusion of isotopes in a melt held in a temperature gradient",
        deck="isosim.deck.capsule",
        problem="isosim.models.capsule:CapsuleProblem",
        recorder="isosim.models.capsule_output:CapsuleRecorder",
        figures={"run": "isosim.plot.capsule:capsule_run_figures"},
        converge={"cells": "capsule.cells", "stretch": None, "chooser": None,
                  "compare": ("Omega_permil_per_C_per_amu", "T0_C"),
                  "end_only": ("time.series_points=2", "time.output_h=[]")},
        studies=(),
    ),
    ModelSpec(
        name="chamber",
        summary="open-system magma chamber (EC-E'RAχFC): eruption, recharge, assimilation, crystallisation",
        deck="isosim.deck.chamber",
        problem="isosim.models.chamber:ChamberProblem",
        recorder="isosim.models.chamber_output:ChamberRecorder",
        figures={"run": "isosim.plot.chamber:chamber_figures", "sweep": "isosim.plot.chamber:chamber_figures",
                 "invert": "isosim.plot.studies:inversion_figures"},
        # not Tm_C, Ma0, Me, Mr: fixed by the end point and the energy balance
        converge={"cells": None, "stretch": None, "chooser": None,
                  "compare": ("Mm", "Mct", "Men", "Ma_star", "Ta_C", "Cm_ppm", "eps_m", "delta_m"),
                  "end_only": ("output.points=2",)},
        studies=("sweep", "invert"),
    ),
)}


def model_spec(name):
    """The spec of model ``name`` (KeyError with the known names if there is none)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}") from None
