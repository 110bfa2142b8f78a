"""Deck schema of the chamber model, EC-E'RAχFC (docs/models/chamber.md; Spera & Bohrson 2004).

Example (the paper's Table 2 thermal parameters, AFC with Sr)::

    model = "chamber"
    [thermal]
    T_liquidus_magma_C = 1320.0
    T_magma0_C = 1320.0
    T_liquidus_recharge_C = 1320.0
    T_liquidus_wallrock_C = 1100.0
    T_wallrock0_C = 600.0
    T_solidus_C = 950.0
    T_eq_C = 1090.0
    [assimilation]
    chi = 1.0
    [elements.Sr]
    C_magma_ppm = 700.0
    C_recharge_ppm = 1000.0
    C_wallrock_ppm = 230.0
    D_magma = 1.5
    D_recharge = 1.5
    D_wallrock = 0.05
    [ratios."87Sr/86Sr"]
    element = "Sr"
    magma = 0.7050
    recharge = 0.7028
    wallrock = 0.7200
"""

from .common import CHECKPOINT, INVERT, SAMPLE, SWEEP, check_sample, check_studies, ensemble_table
from .schema import Field, Table, TableOf

#: Most open-system mass erupted for which the model holds (Spera & Bohrson 2004, p. 2461).
ERUPTION_LIMIT = 0.4
#: PETSc RK schemes (explicit: the path equations are not stiff, see docs/models/chamber.md).
RK_TYPES = ("1fe", "2a", "3", "3bs", "4", "5f", "5dp", "5bs", "6vr", "7vr", "8vr")

_T = dict(min=-273.15, min_exclusive=True, max=5000.0, unit="degC")

PRODUCTIVITY = Table({
    "form": Field("str", "logistic", choices=("logistic", "linear"),
                  doc="logistic: f = 1/(1 + a exp(b phi)), phi = (T - T_s)/(T_l - T_s); linear: f = phi"),
    "a": Field("float", None, min=0.0, min_exclusive=True, max=1e12, doc="logistic a"),
    "b": Field("float", None, min=-1000.0, max=0.0, max_exclusive=True,
               doc="logistic b (negative: the melt fraction rises with temperature)"),
})

PULSED = {
    "pulse_mass": Field("float_list", [], min=0.0, doc="mass of each pulse, per initial magma mass"),
    "pulse_T_C": Field("float_list", [], min=-273.15, max=5000.0, unit="degC",
                       doc="melt temperature at the middle of each pulse"),
    "pulse_steepness_per_K": Field("float_list", [], min=0.0, min_exclusive=True, max=1e3, unit="1/K",
                                   doc="m_j (eruption) or lambda_j (recharge): 1/width of each pulse"),
    "pulse_exponent": Field("float_list", [], min=0.0, min_exclusive=True, max=1e3,
                            doc="g_j (eruption) or delta_j (recharge): asymmetry of each pulse"),
}

SCHEMA = Table({
    "model": Field("str", choices=("chamber",)),
    "title": Field("str", "", doc="free text copied to the outputs"),
    "thermal": Table({
        "T_liquidus_magma_C": Field("float", doc="liquidus of the pristine magma, T_l,m", **_T),
        "T_magma0_C": Field("float", None, doc="initial melt temperature T_m° (default: T_l,m)", **_T),
        "T_liquidus_recharge_C": Field("float", None, doc="liquidus of the recharge magma; it is "
                                       "intruded at this temperature, T_r° (default: T_l,m)", **_T),
        "T_liquidus_wallrock_C": Field("float", doc="liquidus of the wall rock, T_l,a", **_T),
        "T_wallrock0_C": Field("float", doc="initial wall-rock temperature T_a°", **_T),
        "T_solidus_C": Field("float", doc="solidus T_s (common to the three compositions)", **_T),
        "T_eq_C": Field("float", doc="equilibration temperature: the path ends when T_m = T_eq", **_T),
        "dh_magma_J_kg": Field("float", 396000.0, min=0.0, max=1e8, unit="J/kg",
                               doc="crystallisation enthalpy of the magma"),
        "dh_recharge_J_kg": Field("float", 396000.0, min=0.0, max=1e8, unit="J/kg",
                                  doc="crystallisation enthalpy of the recharge magma"),
        "dh_wallrock_J_kg": Field("float", 354000.0, min=0.0, max=1e8, unit="J/kg",
                                  doc="fusion enthalpy of the wall rock"),
        "cp_magma_J_kgK": Field("float", 1484.0, min=0.0, min_exclusive=True, max=1e5, unit="J/kg/K"),
        "cp_recharge_J_kgK": Field("float", 1484.0, min=0.0, min_exclusive=True, max=1e5, unit="J/kg/K"),
        "cp_wallrock_J_kgK": Field("float", 1388.0, min=0.0, min_exclusive=True, max=1e5, unit="J/kg/K"),
    }, optional=False, doc="temperatures and thermodynamic properties (the paper's Table 2)"),
    "productivity": Table({
        "magma": PRODUCTIVITY, "recharge": PRODUCTIVITY, "wallrock": PRODUCTIVITY,
    }, doc="melt productivity functions f(T); the paper does not print its values, so the "
           "defaults are the common EC-AFC ones: a = 450, b = -10.5 (magma and recharge), "
           "a = 400, b = -11 (wall rock)"),
    "assimilation": Table({
        "chi": Field("float", 1.0, min=0.0, max=1.0,
                     doc="fraction of the anatectic melt that enters the magma"),
    }),
    "recharge": Table(dict(PULSED, **{
        "form": Field("str", "none", choices=("none", "linear", "pulses")),
        "mass": Field("float", 0.0, min=0.0, max=100.0, doc="linear: total recharge M_r°"),
    }), doc="recharge M_r(T_m), linear or a sum of logistic pulses"),
    "eruption": Table(dict(PULSED, **{
        "form": Field("str", "none", choices=("none", "linear", "pulses")),
        "mass": Field("float", 0.0, min=0.0, max=1.0, doc="linear: total eruption M_e°"),
        "force": Field("bool", False, doc=f"allow M_e° >= {ERUPTION_LIMIT}, beyond the model's "
                                          "stated validity"),
    }), doc="eruption M_e(T_m), linear (eq. 1) or up to 20 logistic pulses (eq. 2)"),
    "elements": TableOf(Table({
        "C_magma_ppm": Field("float", min=0.0, max=1e6, unit="ppm"),
        "C_recharge_ppm": Field("float", 0.0, min=0.0, max=1e6, unit="ppm"),
        "C_wallrock_ppm": Field("float", min=0.0, max=1e6, unit="ppm"),
        "D_magma": Field("float", min=0.0, min_exclusive=True, max=1e4,
                         doc="cumulate/melt D° (D = D° exp(-dH/RT), A20)"),
        "D_recharge": Field("float", None, min=0.0, min_exclusive=True, max=1e4,
                            doc="enclave/recharge-melt D° (default: D_magma)"),
        "D_wallrock": Field("float", min=0.0, min_exclusive=True, max=1e4,
                            doc="restite/anatectic-melt D°"),
        "dH_magma_J_mol": Field("float", 0.0, min=-1e7, max=1e7, unit="J/mol"),
        "dH_recharge_J_mol": Field("float", None, min=-1e7, max=1e7, unit="J/mol"),
        "dH_wallrock_J_mol": Field("float", 0.0, min=-1e7, max=1e7, unit="J/mol"),
    }), doc="trace elements, e.g. [elements.Sr]"),
    "ratios": TableOf(Table({
        "element": Field("str", doc="the trace element carrying the ratio (a key of [elements])"),
        "magma": Field("float", min=0.0, max=1e6),
        "recharge": Field("float", None, min=0.0, max=1e6, doc="default: the magma's"),
        "wallrock": Field("float", min=0.0, max=1e6),
    }), doc="radiogenic isotope ratios, e.g. [ratios.\"87Sr/86Sr\"]"),
    "stable": TableOf(Table({
        "magma": Field("float", min=-1000.0, max=1000.0, unit="permil"),
        "recharge": Field("float", None, min=-1000.0, max=1000.0, unit="permil"),
        "wallrock": Field("float", min=-1000.0, max=1000.0, unit="permil"),
        "k_wallrock": Field("float", 1.0, min=0.0, min_exclusive=True, max=10.0,
                            doc="oxygen mass fraction of wall rock / magma, k_oxy^a"),
        "k_recharge": Field("float", 1.0, min=0.0, min_exclusive=True, max=10.0,
                            doc="oxygen mass fraction of recharge / magma, k_oxy^r"),
    }), doc="stable isotope values, e.g. [stable.d18O]"),
    "output": Table({
        "points": Field("int", 101, min=2, max=100_000,
                        doc="evenly spaced melt temperatures from T_m° to T_eq at which the state is saved"),
    }),
    "sample": SAMPLE,
    "sweep": SWEEP,
    "invert": INVERT,
    "ensemble": ensemble_table(4096),
    "solver": Table({
        "ts_type": Field("str", "rk", choices=("rk",),
                         doc="PETSc TS type (explicit Runge-Kutta; -ts_type overrides)"),
        "rk_type": Field("str", "5dp", choices=RK_TYPES, doc="RK scheme (-ts_rk_type overrides)"),
        "rtol": Field("float", 1e-9, min=0.0, max=0.1, min_exclusive=True,
                      doc="relative tolerance of the adaptive step (-ts_rtol)"),
        "atol": Field("float", 1e-11, min=0.0, max=1.0, min_exclusive=True,
                      doc="absolute tolerance (-ts_atol) on the dimensionless state"),
        "initial_dt": Field("float", 1e-4, min=0.0, max=0.5, min_exclusive=True,
                            doc="first step as a fraction of T_m° - T_eq"),
        "max_steps": Field("int", 10_000_000, min=1, doc="give up after this many steps"),
    }, doc="path integration (PETSc TS)"),
    "checkpoint": CHECKPOINT,
})


def resolved_thermal(th):
    """The thermal table with the defaulted temperatures filled in (T_m° = T_r° = T_l,m)."""
    out = dict(th)
    if out["T_magma0_C"] is None:
        out["T_magma0_C"] = out["T_liquidus_magma_C"]
    if out["T_liquidus_recharge_C"] is None:
        out["T_liquidus_recharge_C"] = out["T_liquidus_magma_C"]
    return out


def productivity_params(deck, which):
    """(form, a, b) of a productivity table with the composition's defaults."""
    p = deck["productivity"][which]
    a0, b0 = (400.0, -11.0) if which == "wallrock" else (450.0, -10.5)
    return p["form"], a0 if p["a"] is None else p["a"], b0 if p["b"] is None else p["b"]


def cross_check(deck):
    """Rules that involve several keys; returns a list of problems."""
    problems = []
    th = resolved_thermal(deck["thermal"])
    Tm0, Teq, Ta0, Ts = th["T_magma0_C"], th["T_eq_C"], th["T_wallrock0_C"], th["T_solidus_C"]
    if not Teq < Tm0:
        problems.append(f"thermal.T_eq_C = {Teq:g}: expected below the initial melt temperature "
                        f"T_magma0_C = {Tm0:g} (the path runs from T_m° down to T_eq)")
    if not Ta0 < Teq:
        problems.append(f"thermal.T_wallrock0_C = {Ta0:g}: expected below T_eq_C = {Teq:g} (the wall "
                        "rock heats up to T_eq)")
    for k in ("T_liquidus_magma_C", "T_liquidus_wallrock_C"):
        if not th[k] > Ts:
            problems.append(f"thermal.{k} = {th[k]:g}: expected above T_solidus_C = {Ts:g}")
    if th["T_liquidus_recharge_C"] <= Ts:
        problems.append(f"thermal.T_liquidus_recharge_C = {th['T_liquidus_recharge_C']:g}: expected "
                        f"above T_solidus_C = {Ts:g}")
    if Teq <= Ts:
        problems.append(f"thermal.T_eq_C = {Teq:g}: expected above T_solidus_C = {Ts:g} (melt must "
                        "remain at equilibrium)")
    for which in ("recharge", "eruption"):
        problems += _check_mass_function(deck, which, Tm0, Teq)
    e = deck["eruption"]
    Me0 = e["mass"] if e["form"] == "linear" else sum(e["pulse_mass"]) if e["form"] == "pulses" else 0.0
    if Me0 >= ERUPTION_LIMIT and not e["force"]:
        problems.append(f"eruption: total erupted mass M_e° = {Me0:g}: expected below {ERUPTION_LIMIT} "
                        "(Spera & Bohrson 2004 state the model holds only for M_e° < 0.4, because "
                        "erupted magma takes the pristine magma's crystal fraction); set "
                        "eruption.force = true to run it anyway")
    if e["form"] == "pulses" and len(e["pulse_mass"]) > 20:
        problems.append(f"eruption.pulse_mass has {len(e['pulse_mass'])} pulses: expected at most 20")
    for name, r in deck["ratios"].items():
        if r["element"] not in deck["elements"]:
            problems.append(f"ratios.\"{name}\".element = {r['element']!r}: expected one of "
                            f"{sorted(deck['elements']) or 'the [elements] tables (none given)'}")
    for which in ("magma", "recharge", "wallrock"):
        form, a, b = productivity_params(deck, which)
        if form == "linear" and (deck["productivity"][which]["a"] is not None
                                 or deck["productivity"][which]["b"] is not None):
            problems.append(f"productivity.{which}: a and b are not used with form = 'linear'; remove them")
    for key, dist in deck["sample"].items():
        problems.extend(check_sample(deck, key, dist))
    problems.extend(check_studies(deck))
    if not problems:                         # needs the temperatures to be in order
        problems.extend(_check_partition(deck, th))
        problems.extend(_check_energy(deck, th))
    return problems


def _check_energy(deck, th):
    """The wall-rock mass that reaches T_eq, M_a° = heat released by the chamber / heat one
    unit of wall rock absorbs (the model's eq. 4), must be a positive, finite number:
    otherwise the run integrates a negative mass of wall rock to a meaningless end."""
    import math

    import numpy as np

    from ..physics.chamber import MassFunction, Productivity, Thermal, wallrock_mass
    from ..physics.constants import ZERO_C
    K = lambda key: np.array([th[key] + ZERO_C])
    v = lambda key: np.array([th[key]])
    t = Thermal(Tlm=K("T_liquidus_magma_C"), Tm0=K("T_magma0_C"), Tr0=K("T_liquidus_recharge_C"),
                Tla=K("T_liquidus_wallrock_C"), Ta0=K("T_wallrock0_C"), Ts=K("T_solidus_C"), Teq=K("T_eq_C"),
                dhm=v("dh_magma_J_kg"), dhr=v("dh_recharge_J_kg"), dha=v("dh_wallrock_J_kg"),
                cpm=v("cp_magma_J_kgK"), cpr=v("cp_recharge_J_kgK"), cpa=v("cp_wallrock_J_kgK"),
                chi=[deck["assimilation"]["chi"]])

    def productivity(which, T_l):
        form, a, b = productivity_params(deck, which)
        return Productivity(np.array([form]), t.Ts, T_l, np.array([a]), np.array([b]))

    def mass(which):
        m = deck[which]
        if m["form"] != "pulses":
            return MassFunction(m["form"], t.Tm0, t.Teq, total=[m["mass"] if m["form"] == "linear" else 0.0])
        return MassFunction("pulses", t.Tm0, t.Teq, dM=[m["pulse_mass"]], T_K=np.array([m["pulse_T_C"]]) + ZERO_C,
                            steep_per_K=[m["pulse_steepness_per_K"]], exponent=[m["pulse_exponent"]])

    fm, fr, fa = productivity("magma", t.Tlm), productivity("recharge", t.Tr0), productivity("wallrock", t.Tla)
    with np.errstate(all="ignore"):
        # first without the eruption, whose heat is an integral over the path (0.5 ms a deck,
        # 5 s for a 10^4-member sweep): it removes at most M_e,max (c_p,m span + dh_m df_m)
        Ma0, released, absorbed = (float(x[0]) for x in wallrock_mass(
            t, fm, fr, fa, mass("recharge"), MassFunction("none", t.Tm0, t.Teq)))
        e = deck["eruption"]
        me_max = {"none": 0.0, "linear": e["mass"], "pulses": sum(e["pulse_mass"])}[e["form"]]
        fm0, fm_eq = float(fm(t.Tm0)[0][0]), float(fm(t.Teq)[0][0])
        lost = me_max * (th["cp_magma_J_kgK"] * (th["T_magma0_C"] - th["T_eq_C"])
                         + th["dh_magma_J_kg"] * (fm0 - fm_eq))
        if me_max and not (released - lost > 0 and absorbed > 0 and math.isfinite(Ma0)):
            Ma0, released, absorbed = (float(x[0]) for x in wallrock_mass(t, fm, fr, fa, mass("recharge"),
                                                                          mass("eruption")))
    if math.isfinite(Ma0) and Ma0 > 0:
        return []
    return [f"thermal: the chamber gives up {released:.4g} J/kg between T_magma0_C and T_eq_C, and one kg of "
            f"wall rock absorbs {absorbed:.4g} J between T_wallrock0_C and T_eq_C: the wall-rock mass M_a° "
            f"= {Ma0:.4g} (eq. 4); expected a positive number: the wall rock must start well below its liquidus "
            "T_liquidus_wallrock_C, and the magma and recharge liquidus above T_eq_C"]


#: Largest |ln D| of a partition coefficient D = D° exp(-dH / R T) on the path: real bulk D
#: lie within 1e-4..1e3; the bound only keeps D (and C_a = C_s / D_a) finite and non-zero.
MAX_LN_D = 300.0
#: Smallest non-zero end-member concentration relative to the element's largest one.
MIN_RELATIVE_PPM = 1e-12


def _check_partition(deck, th):
    """Each element's partition coefficients must stay finite and non-zero over the
    temperatures they are evaluated at: T_eq..T_m° (magma, recharge), T_a°..T_eq (wall rock)."""
    import math

    from ..physics.constants import R_GAS, ZERO_C
    ranges = {"magma": (th["T_eq_C"], th["T_magma0_C"]), "recharge": (th["T_eq_C"], th["T_magma0_C"]),
              "wallrock": (th["T_wallrock0_C"], th["T_eq_C"])}
    problems = []
    for name, el in deck["elements"].items():
        ppm = {k: el[k] for k in ("C_magma_ppm", "C_recharge_ppm", "C_wallrock_ppm")}
        for k, c in ppm.items():
            # the state holds C / max(C): a far smaller non-zero end member divides ratios by ~0
            if 0.0 < c < MIN_RELATIVE_PPM * max(ppm.values()):
                problems.append(f"elements.{name}.{k} = {c:g}: expected 0 or at least {MIN_RELATIVE_PPM:g} of the "
                                f"element's largest concentration ({max(ppm.values()):g} ppm)")
        for which, temps in ranges.items():
            D0 = el[f"D_{which}"] if el[f"D_{which}"] is not None else el["D_magma"]
            dH = el[f"dH_{which}_J_mol"] if el[f"dH_{which}_J_mol"] is not None else el["dH_magma_J_mol"]
            lnD = [math.log(D0) - dH / (R_GAS * (T + ZERO_C)) for T in temps]
            worst = max(range(2), key=lambda k: abs(lnD[k]))
            if abs(lnD[worst]) > MAX_LN_D:
                problems.append(f"elements.{name}: D_{which} exp(-dH_{which}_J_mol / R T) has ln D = "
                                f"{lnD[worst]:.4g} at {temps[worst]:g} degC; expected |ln D| <= {MAX_LN_D:g} "
                                "(a finite, non-zero partition coefficient)")
    return problems


def _check_mass_function(deck, which, Tm0, Teq):
    t = deck[which]
    problems = []
    lists = ("pulse_mass", "pulse_T_C", "pulse_steepness_per_K", "pulse_exponent")
    if t["form"] == "pulses":
        n = len(t["pulse_mass"])
        if n == 0:
            problems.append(f"{which}.pulse_mass: empty; expected one mass per pulse for form = 'pulses'")
        for k in lists[1:]:
            if len(t[k]) != n:
                problems.append(f"{which}.{k} has {len(t[k])} entries: expected one per pulse ({n}, as "
                                f"in {which}.pulse_mass)")
        for T in t["pulse_T_C"]:
            if not Teq <= T <= Tm0:
                problems.append(f"{which}.pulse_T_C contains {T:g}: expected temperatures on the path, "
                                f"between thermal.T_eq_C = {Teq:g} and T_magma0_C = {Tm0:g}")
    else:
        for k in lists:
            if t[k]:
                problems.append(f"{which}.{k}: only used with form = 'pulses' (form = {t['form']!r}); "
                                "remove it")
        if t["form"] == "none" and t["mass"] > 0:
            problems.append(f"{which}.mass = {t['mass']:g} with form = 'none': expected form = 'linear' "
                            "or 'pulses' (or mass = 0)")
    return problems
