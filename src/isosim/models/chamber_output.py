"""What a chamber run records and writes: the path in T_m of every reservoir's mass and
composition, the conservation checks, and the headline keys (docs/user-guide.md, 'Outputs').

Every output is a point the TS lands on exactly (evenly spaced melt temperatures from T_m°
to T_eq). The recorder gathers the state rows to rank 0 and computes everything there, from
the same parameters the right-hand side uses.
"""

import math

import numpy as np

from ..physics.chamber import partition
from ..physics.constants import ZERO_C
from ..io.layout import coordinates, labels
from .recording import Recorder, put

#: units of the per-member quantities of :func:`diagnostics` (trailing [species] axes)
UNITS = {
    "Tm_C": "degC", "Ta_C": "degC", "Mm": "M0", "Mct": "M0", "Men": "M0", "Me": "M0", "Mr": "M0",
    "Ma0": "M0", "Ma_star": "M0", "chi_Ma_star": "M0", "mass_residual": "M0",
    "Cm_ppm": "ppm", "Ca_ppm": "ppm", "Ca_avg_ppm": "ppm", "Cct_ppm": "ppm", "Cct_avg_ppm": "ppm",
    "Cen_ppm": "ppm", "Cen_avg_ppm": "ppm", "Ce_avg_ppm": "ppm", "element_balance": "1",
    "eps_m": "1", "eps_ct_avg": "1", "eps_e_avg": "1", "ratio_balance": "1",
    "delta_m": "permil", "delta_ct_avg": "permil", "delta_e_avg": "permil", "stable_balance": "permil M0",
}

DOCS = {
    "Tm_C": "melt temperature (the progress variable)",
    "Ta_C": "mean wall-rock (restite) temperature",
    "Mm": "mass of melt in the chamber", "Mct": "mass of cumulates in the chamber",
    "Men": "mass of enclaves", "Me": "mass erupted so far", "Mr": "mass of recharge added so far",
    "Ma0": "mass of wall rock that reaches T_eq with the magma (integral energy balance)",
    "Ma_star": "anatectic melt produced in the wall rock",
    "chi_Ma_star": "anatectic melt assimilated by the magma",
    "mass_residual": "Mm + Mct + Men + Me - Mr - chi Ma* - 1 (zero by mass conservation)",
    "Cm_ppm": "trace element in the melt [.., element]",
    "Ca_ppm": "trace element in the anatectic melt now forming (A17) [.., element]",
    "Ca_avg_ppm": "mean trace element of all anatectic melt formed so far (A18) [.., element]",
    "Cct_ppm": "trace element in the cumulate now forming, D_m C_m (A13) [.., element]",
    "Cct_avg_ppm": "mean trace element of the cumulates in the chamber [.., element]",
    "Cen_ppm": "trace element in the last enclave solid, D_r C_r° f_r^(D_r-1) (A11) [.., element]",
    "Cen_avg_ppm": "mean trace element of all enclaves [.., element]",
    "Ce_avg_ppm": "mean trace element of the erupted magma (melt plus crystals) [.., element]",
    "element_balance": "relative error of the element's total over melt, cumulates, enclaves, erupted "
                       "magma, wall rock and recharge still to come [.., element]",
    "eps_m": "isotope ratio in the melt (and the cumulate now forming) [.., ratio]",
    "eps_ct_avg": "element-weighted mean ratio of the cumulates [.., ratio]",
    "eps_e_avg": "element-weighted mean ratio of the erupted magma [.., ratio]",
    "ratio_balance": "relative error of the element-weighted ratio's total over every reservoir [.., ratio]",
    "delta_m": "stable isotope value of the melt [.., stable]",
    "delta_ct_avg": "mean stable isotope value of the cumulates [.., stable]",
    "delta_e_avg": "mean stable isotope value of the erupted magma [.., stable]",
    "stable_balance": "error of the mass-weighted delta total (exact only with k_wallrock = k_recharge = 1, "
                      "the oxygen-fraction ratios of eq. 12) [.., stable]",
}


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(den) > 1e-300, num / np.where(np.abs(den) > 1e-300, den, 1.0), np.nan)


def diagnostics(p, s, rows, initial=None):
    """Everything a person reads off a chamber state, vectorised over members.

    Parameters
    ----------
    p : ChamberParameters
    s : float
        Progress (0 at T_m°, 1 at T_eq).
    rows : array [member, column]
    initial : dict or None
        ``diagnostics`` at s = 0 (for the conservation errors).
    """
    L, th = p.layout, p.th
    Tm = p.Tm(s)
    Ta = rows[:, 0] * th.Tlm
    fr, _, _ = p.fr(Tm)
    fa, ga, _ = p.fa(Ta)
    fa0 = p.fa(th.Ta0)[0]
    Me, Mr = p.erupt(Tm)[0], p.recharge(Tm)[0]
    Mr0 = p.recharge.final()
    Mm, Mct, Men = rows[:, 1], rows[:, 2], rows[:, 3]
    Ma_star = p.Ma0 * (fa - fa0)
    out = {"Tm_C": Tm - ZERO_C, "Ta_C": Ta - ZERO_C, "Mm": Mm, "Mct": Mct, "Men": Men, "Me": Me, "Mr": Mr,
           "Ma0": p.Ma0, "Ma_star": Ma_star, "chi_Ma_star": th.chi * Ma_star}
    out["mass_residual"] = Mm + Mct + Men + Me - Mr - th.chi * Ma_star - 1.0
    wall_unassim = p.Ma0 - th.chi * Ma_star
    if L.ne:
        sc = p.scale
        Cm, La = L.element(rows, "Cm"), L.element(rows, "La")
        Nct, Nen, Ne, Ntrap = (L.element(rows, k) for k in ("Nct", "Nen", "Ne", "Ntrap"))
        Dm = partition(p.D0m, p.dHm, Tm[:, None])
        Dr = partition(p.D0r, p.dHr, Tm[:, None])
        Da = partition(p.D0a, p.dHa, Ta[:, None])
        Cs = p.Ca0 * np.exp(La)
        restite = p.Ma0[:, None] * ga[:, None] * Cs
        melted = p.Ma0[:, None] * (1.0 - fa0)[:, None] * p.Ca0 - restite
        out.update({
            "Cm_ppm": Cm * sc, "Ca_ppm": Cs / Da * sc,
            "Ca_avg_ppm": _ratio(melted, Ma_star[:, None]) * sc,
            "Cct_ppm": Dm * Cm * sc, "Cct_avg_ppm": _ratio(Nct, Mct[:, None]) * sc,
            "Cen_ppm": Dr * p.Cr0 * fr[:, None] ** (Dr - 1.0) * sc,
            "Cen_avg_ppm": _ratio(Nen, Men[:, None]) * sc,
            "Ce_avg_ppm": _ratio(Ne, Me[:, None]) * sc,
        })
        wall = restite + Ntrap
        future = p.Cr0 * (Mr0 - Mr)[:, None]
        total = Mm[:, None] * Cm + Nct + Nen + Ne + wall + future
        out["_element_total"] = total
        if L.ni:
            e = p.ratio_el
            eps = L.ratio(rows, "eps")
            Pct, Pe = L.ratio(rows, "Pct"), L.ratio(rows, "Pe")
            out["eps_m"] = eps
            out["eps_ct_avg"] = _ratio(Pct, Nct[:, e])
            out["eps_e_avg"] = _ratio(Pe, Ne[:, e])
            out["_ratio_total"] = (eps * Mm[:, None] * Cm[:, e] + Pct + p.eps_r * Nen[:, e] + Pe
                                   + p.eps_a * wall[:, e] + p.eps_r * future[:, e])
    if L.ns:
        d = L.stable(rows, "delta")
        Qct, Qe = L.stable(rows, "Qct"), L.stable(rows, "Qe")
        out["delta_m"] = d
        out["delta_ct_avg"] = _ratio(Qct, Mct[:, None])
        out["delta_e_avg"] = _ratio(Qe, Me[:, None])
        out["_stable_total"] = (d * Mm[:, None] + Qct + p.d_r * Men[:, None] + Qe
                                + p.d_a * wall_unassim[:, None] + p.d_r * (Mr0 - Mr)[:, None])
    if initial is not None:
        for key, name, relative in (("_element_total", "element_balance", True),
                                    ("_ratio_total", "ratio_balance", True),
                                    ("_stable_total", "stable_balance", False)):
            if key in out:
                ref = initial[key]
                err = out[key] - ref
                out[name] = _ratio(err, np.abs(ref)) if relative else err
    return out


class ChamberRecorder(Recorder):
    """Records a :class:`ChamberProblem` at evenly spaced melt temperatures.

    Ensembles larger than :attr:`MAX_PATHS` record only the start and the end (each output
    ends a TS solve; a path per member of a 10^4 ensemble is better run as single decks).
    """

    MAX_PATHS = 64

    def __init__(self, problem):
        self.problem = problem
        self.p = problem.params
        points = max(d["output"]["points"] for d in problem.decks)
        if problem.nmem > self.MAX_PATHS:
            points = 2
        self.times = np.linspace(0.0, 1.0, points)[1:]
        self.series = {"tau": [], "rows": []}
        self.profiles = {}
        self._initial = None

    def record(self, s, u):
        """Gather the rows (collective) and keep them on rank 0."""
        rows = self.problem.gather_rows(u)
        self.series["tau"].append(float(s))      # on every rank: pending_times() must agree
        if rows is not None:
            self.series["rows"].append(rows)

    def describe(self, s):
        p = self.p
        return f"T_m = {p.Tm(s)[0] - ZERO_C:.2f} °C (T_eq {p.th.Teq[0] - ZERO_C:.2f} °C)"

    def describe_dt(self, ds):
        return f"{ds * self.p.span[0]:.3g} K"

    # -------------------------------------------------------------- results (rank 0)
    def path(self):
        """Diagnostics at every output [time, member, ...], with the conservation errors.
        Computed once per set of recordings (sweeps ask for it once per member)."""
        key = len(self.series["rows"])
        if getattr(self, "_path", (None,))[0] != key:
            self._path = (key, self._compute_path())
        return self._path[1]

    def _compute_path(self):
        rows = np.asarray(self.series["rows"])
        initial = diagnostics(self.p, 0.0, self.p.initial_rows())
        steps = [diagnostics(self.p, s, r, initial) for s, r in zip(self.series["tau"], rows)]
        return {k: np.asarray([d[k] for d in steps]) for k in steps[0] if not k.startswith("_")}

    def headline(self):
        """Final headline numbers of every member (docs/user-guide.md, 'Outputs')."""
        p = self.p
        path = self.path()
        # every member's numbers as Python floats first (tolist: the values float() gives), then
        # one dict per member: converting them one by one was most of this for 10^4 members
        last = {k: v[-1].tolist() for k, v in path.items()}
        # each member's largest |error| over the times (and species): axes 0 and 2 of [time, member, ..]
        worst = {k: np.max(np.abs(path[k]), axis=tuple(a for a in range(path[k].ndim) if a != 1)).tolist()
                 for k in ("mass_residual", "element_balance", "ratio_balance") if k in path}
        scalars = ("Tm_C", "Ta_C", "Mm", "Ma0", "Ma_star", "chi_Ma_star", "Mct", "Men", "Me", "Mr")
        d18o = [k for k, n in enumerate(p.stable) if n.lower() in ("d18o", "delta18o")]
        out = []
        for i in range(self.problem.nmem):
            h = {k: last[k][i] for k in scalars}
            h["Ta_minus_Teq_K"] = h["Ta_C"] - h["Tm_C"]
            h["mass_residual"] = worst["mass_residual"][i]
            if p.elements:
                h["Cm_ppm"] = dict(zip(p.elements, last["Cm_ppm"][i]))
                h["Ce_avg_ppm"] = {e: _num(x) for e, x in zip(p.elements, last["Ce_avg_ppm"][i])}
                h["element_balance"] = worst["element_balance"][i]
            if p.ratios:
                h["eps_m"] = dict(zip(p.ratios, last["eps_m"][i]))
                h["ratio_balance"] = worst["ratio_balance"][i]
            if p.stable:
                h["delta_m"] = dict(zip(p.stable, last["delta_m"][i]))
                for k in d18o:
                    h["delta18O_m"] = last["delta_m"][i][k]
            out.append(h)
        return out

    @staticmethod
    def report_lines(m):
        lines = [f"T_m = {m['Tm_C']:.1f} °C, T_a = {m['Ta_C']:.3f} °C (T_a - T_eq = "
                 f"{m['Ta_minus_Teq_K']:+.2e} K); M_a° = {m['Ma0']:.4f}, M_a* = {m['Ma_star']:.4f}, "
                 f"chi M_a* = {m['chi_Ma_star']:.4f}",
                 f"M_m = {m['Mm']:.4f}, M_ct = {m['Mct']:.4f}, M_en = {m['Men']:.4f}, M_e = {m['Me']:.4f}, "
                 f"M_r = {m['Mr']:.4f} (masses / M_0)"]
        if "Cm_ppm" in m:
            lines.append("melt: " + ", ".join(f"{e} {v:.4g} ppm" for e, v in m["Cm_ppm"].items()))
        if "eps_m" in m:
            lines.append("melt: " + ", ".join(f"{r} {v:.6f}" for r, v in m["eps_m"].items()))
        if "delta_m" in m:
            lines.append("melt: " + ", ".join(f"{n} {v:.3f} permil" for n, v in m["delta_m"].items()))
        return lines

    @staticmethod
    def flat(member):
        """Scalar results of a member's headline, nested keys joined with '.'."""
        out = {}
        for k, v in member.items():
            if isinstance(v, dict):
                out.update({f"{k}.{n}": x for n, x in v.items()})
            elif isinstance(v, (int, float)):
                out[k] = v
        return out

    @staticmethod
    def unit(key):
        base = key.split(".")[0]
        return {"Ta_minus_Teq_K": "K", "delta18O_m": "permil"}.get(base, UNITS.get(base, ""))

    def member_series(self, k):
        """Member ``k``'s path as flat 1-D series (for sweeps)."""
        path = self.path()
        out = {"tau": np.asarray(self.series["tau"])}
        for key in ("Tm_C", "Ta_C", "Mm", "Mct", "Men", "Me", "Mr", "chi_Ma_star"):
            out[key] = path[key][:, k]
        for key, names in (("Cm_ppm", self.p.elements), ("eps_m", self.p.ratios), ("delta_m", self.p.stable)):
            for j, n in enumerate(names):
                out[f"{key}.{n}"] = path[key][:, k, j]
        return out

    def write_results(self, h5):
        """The path of every member into an open h5py File (rank 0)."""
        p = self.p
        path = self.path()
        g = h5.create_group("path")
        g.attrs["description"] = ("exact values at evenly spaced melt temperatures from T_m° to T_eq "
                                  "[member, time, species]; masses per initial magma mass M_0")
        # recorded [time, member, ...]; written [member, time, ...] (docs/outputs.md)
        put(g, "s", self.series["tau"], "1", "progress (T_m° - T_m) / (T_m° - T_eq) [time]", dims=["time"])
        species = {"element": p.elements, "ratio": p.ratios, "stable": p.stable}
        for k, v in path.items():
            v = np.swapaxes(np.asarray(v), 0, 1)
            axis = next((a for a in species if DOCS.get(k, "").endswith(f"[.., {a}]")), "species")
            dims = ["member", "time", axis][:v.ndim]
            doc = DOCS.get(k, k).replace("[..,", "[member, time,") if v.ndim == 3 else f"{DOCS.get(k, k)} [member, time]"
            put(g, k, v, UNITS[k], doc, dims=dims)
        put(g, "state", np.swapaxes(np.asarray(self.series["rows"]), 0, 1), "mixed",
            "raw state rows (see isosim.physics.chamber.StateLayout) [member, time, column]",
            dims=["member", "time", "column"])
        for a, names in species.items():
            labels(g, a, names, f"{a} names")
        coordinates(g, "s", "Tm_C")
        g.attrs["elements"] = p.elements
        g.attrs["ratios"] = p.ratios
        g.attrs["stable"] = p.stable
        h5.attrs["elements"] = p.elements
        h5.attrs["ratios"] = p.ratios
        h5.attrs["stable"] = p.stable
        e = h5.create_group("energy_balance")
        for name, v, doc in (("heat_released_J_kg", p.heat_released,
                               "heat the chamber gives up from T_m° to T_eq, per kg of initial magma"),
                              ("heat_absorbed_J_kg", p.heat_per_wallrock,
                               "heat one kg of wall rock absorbs from T_a° to T_eq")):
            v = np.asarray(v)
            put(e, name, v, "J/kg", doc + (" [member]" if v.ndim else ""), dims=["member"][:v.ndim])


def _num(x):
    return None if not math.isfinite(x) else float(x)
