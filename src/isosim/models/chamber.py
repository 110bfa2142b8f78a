"""The chamber model as a PETSc TS problem: an ensemble of EC-E'RAχFC paths (docs/models/chamber.md).

Each member is one chamber: a row of the state (see :class:`isosim.physics.chamber.StateLayout`).
Members are spread over the ranks in contiguous blocks and integrated as one explicit ODE
system in the progress variable s = (T_m° - T_m) / (T_m° - T_eq), from 0 to 1, so members with
different T_m° and T_eq share one clock. The right-hand side has no coupling between members
or ranks; only the step-size control is global (an infinity norm, so every member is
resolved as well as it would be alone).
"""

import numpy as np

from ..deck.chamber import productivity_params, resolved_thermal
from ..io.distributed import Slab
from ..physics.chamber import MassFunction, Productivity, StateLayout, Thermal, path_rates, wallrock_mass
from ..physics.constants import ZERO_C
from .base import EXPLICIT, Problem
from .state_check import first_unphysical, member_text, value_text


def _mass_function(decks, which, Tm0, Teq):
    tables = [d[which] for d in decks]
    forms = {t["form"] for t in tables}
    if forms == {"none"}:
        return MassFunction("none", Tm0, Teq)
    if forms <= {"none", "linear"}:
        return MassFunction("linear", Tm0, Teq, total=[t["mass"] if t["form"] == "linear" else 0.0
                                                       for t in tables])
    # pulses (members with a linear form cannot share a batch with pulsed ones: see group_key)
    n = max(len(t["pulse_mass"]) for t in tables)

    def pad(key, fill):
        return np.array([t[key] + [fill] * (n - len(t[key])) for t in tables], dtype=float)

    return MassFunction("pulses", Tm0, Teq, dM=pad("pulse_mass", 0.0), T_K=pad("pulse_T_C", 0.0) + ZERO_C,
                        steep_per_K=pad("pulse_steepness_per_K", 1.0), exponent=pad("pulse_exponent", 1.0))


class ChamberParameters:
    """Every parameter of a list of member decks as arrays [member] or [member, species].

    The attributes are those :func:`isosim.physics.chamber.path_rates` reads.
    """

    def __init__(self, decks):
        d0 = decks[0]
        self.elements = list(d0["elements"])
        self.ratios = list(d0["ratios"])
        self.stable = list(d0["stable"])
        self.layout = StateLayout(len(self.elements), len(self.ratios), len(self.stable))
        ths = [resolved_thermal(d["thermal"]) for d in decks]
        K = lambda key: np.array([t[key] for t in ths]) + ZERO_C
        val = lambda key: np.array([t[key] for t in ths], dtype=float)
        self.th = Thermal(Tlm=K("T_liquidus_magma_C"), Tm0=K("T_magma0_C"), Tr0=K("T_liquidus_recharge_C"),
                          Tla=K("T_liquidus_wallrock_C"), Ta0=K("T_wallrock0_C"), Ts=K("T_solidus_C"),
                          Teq=K("T_eq_C"), dhm=val("dh_magma_J_kg"), dhr=val("dh_recharge_J_kg"),
                          dha=val("dh_wallrock_J_kg"), cpm=val("cp_magma_J_kgK"),
                          cpr=val("cp_recharge_J_kgK"), cpa=val("cp_wallrock_J_kgK"),
                          chi=[d["assimilation"]["chi"] for d in decks])
        th = self.th

        def prod(which, T_l):
            f, a, b = zip(*[productivity_params(d, which) for d in decks])
            return Productivity(np.array(f), th.Ts, T_l, np.array(a), np.array(b))

        self.fm, self.fr, self.fa = prod("magma", th.Tlm), prod("recharge", th.Tr0), prod("wallrock", th.Tla)
        self.recharge = _mass_function(decks, "recharge", th.Tm0, th.Teq)
        self.erupt = _mass_function(decks, "eruption", th.Tm0, th.Teq)
        self.Ma0, self.heat_released, self.heat_per_wallrock = wallrock_mass(
            th, self.fm, self.fr, self.fa, self.recharge, self.erupt)
        self.span = th.Tm0 - th.Teq

        def el(key, default_key=None):
            rows = []
            for d in decks:
                rows.append([e[key] if e.get(key) is not None else e[default_key] for e in d["elements"].values()])
            return np.array(rows, dtype=float).reshape(len(decks), len(self.elements))

        ppm = [el("C_magma_ppm"), el("C_recharge_ppm"), el("C_wallrock_ppm")]
        # scale each element by its largest end-member concentration: the state is O(1)
        self.scale = np.maximum.reduce(ppm)
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        self.Cm0, self.Cr0, self.Ca0 = (c / self.scale for c in ppm)
        self.D0m, self.D0r, self.D0a = el("D_magma"), el("D_recharge", "D_magma"), el("D_wallrock")
        self.dHm, self.dHr, self.dHa = (el("dH_magma_J_mol"), el("dH_recharge_J_mol", "dH_magma_J_mol"),
                                        el("dH_wallrock_J_mol"))

        def by(table, key, default_key=None):
            rows = [[r[key] if r.get(key) is not None else r[default_key] for r in d[table].values()]
                    for d in decks]
            return np.array(rows, dtype=float).reshape(len(decks), len(d0[table]))

        self.ratio_el = np.array([self.elements.index(r["element"]) for r in d0["ratios"].values()], dtype=int)
        self.eps_m0, self.eps_r, self.eps_a = (by("ratios", "magma"), by("ratios", "recharge", "magma"),
                                               by("ratios", "wallrock"))
        self.d_m0, self.d_r, self.d_a = (by("stable", "magma"), by("stable", "recharge", "magma"),
                                         by("stable", "wallrock"))
        self.k_a, self.k_r = by("stable", "k_wallrock"), by("stable", "k_recharge")

    def Tm(self, s):
        """Melt temperature (K) of every member at progress ``s``."""
        return self.th.Tm0 - s * self.span

    def initial_rows(self):
        """The state rows at T_m° (s = 0)."""
        L = self.layout
        u = np.zeros((self.th.Tm0.size, L.width))
        u[:, 0] = self.th.Ta0 / self.th.Tlm
        u[:, 1] = 1.0
        if L.ne:
            L.element(u, "Cm")[:] = self.Cm0
        if L.ni:
            L.ratio(u, "eps")[:] = self.eps_m0
        if L.ns:
            L.stable(u, "delta")[:] = self.d_m0
        return u

    def rates(self, s, u, du):
        """d(state)/ds at progress ``s`` for rows ``u`` (filled into ``du``)."""
        aux = path_rates(self.Tm(s), u, du, self)
        du *= -self.span[:, None]               # d/ds = -(T_m° - T_eq) d/dT_m
        return aux


def group_key(deck):
    """Members with equal keys can share one vectorised system."""
    import json
    pulsed = [deck[w]["form"] == "pulses" for w in ("recharge", "eruption")]
    return json.dumps([list(deck["elements"]), [(k, r["element"]) for k, r in deck["ratios"].items()],
                       list(deck["stable"]), pulsed, deck["solver"], deck["ensemble"]["mode"]])


class ChamberProblem(Problem):
    """An ensemble of chambers on ``comm``: contiguous blocks of members per rank.

    Parameters
    ----------
    decks : list of dict
        Resolved chamber decks (one per member) sharing :func:`group_key`.
    comm : mpi4py communicator
    """

    name = "chamber"
    #: the path equations are not stiff: an explicit Runge-Kutta scheme
    kind = EXPLICIT
    group_key = staticmethod(group_key)

    def __init__(self, decks, comm):
        self.comm = comm
        self.decks = decks
        self.nmem = len(decks)
        counts = [len(c) for c in np.array_split(np.arange(self.nmem), comm.size)]
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        lo, hi = self.starts[comm.rank], self.starts[comm.rank + 1]
        # every member's parameters are needed only where the results are computed (rank 0);
        # other ranks keep the first member's, for the clock in progress and error messages
        self.params = ChamberParameters(decks if comm.rank == 0 else decks[:1])
        if comm.rank == 0 and hi - lo == self.nmem:
            self.local = self.params        # one rank holds every member: built once (~0.1 ms a member)
        else:
            self.local = ChamberParameters(decks[lo:hi]) if hi > lo else None
        self.layout = self.params.layout
        self.width = self.layout.width
        self.nloc = hi - lo
        self.local_size = self.nloc * self.width
        self.global_size = self.nmem * self.width

    # ---------------------------------------------------------------- driver interface
    def initial_state(self, ua):
        if self.nloc:
            ua[:] = self.local.initial_rows().ravel()

    def rhs(self, s, u, f):
        """f = du/ds for the local rows (flat arrays). Local: no communication."""
        if self.nloc:
            self.local.rates(s, u.reshape(self.nloc, self.width), f.reshape(self.nloc, self.width))

    def check_state(self, u):
        """The first non-finite value, or negative temperature, mass, concentration or
        inventory, of the local members' rows, named by member and column; None if there is
        none. (ln C and the ratio- or delta-weighted inventories may be negative.) Local."""
        if not self.nloc:
            return None
        rows = np.asarray(u).reshape(self.nloc, self.width)
        L, p = self.layout, self.params
        names = ["Ta (wallrock temperature / its liquidus)", "Mm (melt mass / M0)", "Mct (cumulate mass / M0)",
                 "Men (enclave mass / M0)"] + [f"{c} of {e}" for e in p.elements for c in L.ELEMENT] + \
            [f"{c} of {r}" for r in p.ratios for c in L.RATIO] + [f"{c} of {d}" for d in p.stable for c in L.STABLE]
        positive = np.array([n.split(" ")[0] in L.GLOBAL + ("Cm", "Nct", "Nen", "Ne", "Ntrap") for n in names])
        at = first_unphysical(rows, positive[None, :])
        if at is None:
            return None
        member = member_text(int(self.starts[self.comm.rank]) + at[0], self.nmem)
        return f"{names[at[1]]} (state column {at[1]}, scaled){member} is {value_text(rows[at])}"

    def gather_rows(self, u):
        """Every member's row on rank 0 as an array [member, column] (None elsewhere). Collective."""
        rows = np.asarray(u).reshape(self.nloc, self.width)
        if self.comm.size == 1:
            return rows.copy()
        parts = self.comm.gather(rows.copy(), root=0)
        return np.concatenate(parts) if self.comm.rank == 0 else None

    def gather_state(self, u):
        """The state on rank 0 in member order, independent of the rank count (None elsewhere;
        :meth:`isosim.solver.driver.Driver.gather`). Collective. Checkpoints do not use it:
        every rank writes its own rows (:meth:`state_fields`)."""
        rows = self.gather_rows(u)
        return None if rows is None else {"rows": rows}

    def state_fields(self, u):
        """This rank's member rows [member, column], for collective output. Local."""
        lo = int(self.starts[self.comm.rank])
        return {"rows": Slab((self.nmem, self.width), lo, np.asarray(u).reshape(self.nloc, self.width))}

    def load_state(self, read, ua):
        """Fill the local rows from ``read(name, lo, hi)`` (any writer rank count). Local."""
        lo, hi = self.starts[self.comm.rank], self.starts[self.comm.rank + 1]
        ua[:] = read("rows", lo, hi).ravel()

    @staticmethod
    def stiffness_key(deck):
        """Batches group members with similar path lengths (they share the steps)."""
        th = resolved_thermal(deck["thermal"])
        return th["T_magma0_C"] - th["T_eq_C"]
