"""The EC-E'RAχFC magma chamber (Spera & Bohrson 2004; docs/models/chamber.md). Pure numpy, vectorised
over ensemble members: every parameter may be a scalar or an array with one entry per member.

The melt temperature T_m is the progress variable. Every function of temperature takes
kelvin. Masses are per unit initial magma mass M_0. The equations, and every correction
made to the printed ones, are in ``docs/models/chamber.md``; this module is where they live in code:

- :class:`Productivity` — melt fraction f(T) and its derivative (logistic or linear);
- :class:`MassFunction` — the prescribed recharge M_r(T_m) and eruption M_e(T_m) masses;
- :func:`partition` — D(T) = D° exp(-ΔH / R T) (A20);
- :func:`wallrock_mass` — the integral enthalpy balance for M_a° (eqs 4-6, A6);
- :func:`path_rates` — the path equations d/dT_m of the state (eqs 7, 8, 10-12, A11-A19).
"""

import numpy as np
from scipy.special import expit

from .constants import R_GAS


class Productivity:
    """Melt fraction f(T) of a bulk composition.

    ``logistic``: f = 1 / (1 + a exp(b φ)), φ = (T - T_s) / (T_l - T_s) (Spera & Bohrson
    2001); ``linear``: f = φ clipped to [0, 1]. Parameters are scalars or member arrays.
    """

    def __init__(self, form, T_solidus_K, T_liquidus_K, a=450.0, b=-10.5):
        self.linear = np.asarray(form) == "linear"
        self.Ts = np.asarray(T_solidus_K, dtype=float)
        self.width = np.asarray(T_liquidus_K, dtype=float) - self.Ts
        self.ln_a = np.log(np.asarray(a, dtype=float))
        self.b = np.asarray(b, dtype=float)

    def __call__(self, T):
        """(f, 1 - f, df/dT) at T (K). 1 - f is computed without cancellation."""
        phi = (T - self.Ts) / self.width
        z = self.ln_a + self.b * phi            # f = expit(-z), 1 - f = expit(z)
        f_log, g_log = expit(-z), expit(z)
        df_log = -self.b / self.width * f_log * g_log
        if not np.any(self.linear):
            return f_log, g_log, df_log
        inside = (phi > 0.0) & (phi <= 1.0)     # left derivative: T_m falls from the liquidus
        f_lin = np.clip(phi, 0.0, 1.0)
        df_lin = np.where(inside, 1.0 / self.width, 0.0)
        return (np.where(self.linear, f_lin, f_log), np.where(self.linear, 1.0 - f_lin, g_log),
                np.where(self.linear, df_lin, df_log))


class MassFunction:
    """A mass added (recharge) or removed (eruption) as T_m falls, zero at T_m°.

    ``linear`` (eq. 1): M = M° (T_m° - T_m) / (T_m° - T_eq). ``pulses`` (eq. 2 and the
    recharge form of Spera & Bohrson 2002): M = Σ_j ΔM_j [1 + exp(m_j (T_m - T_j))]^(-g_j),
    shifted by its value at T_m° so that nothing is added or removed before the path starts
    (the printed form is ~1e-6 of ΔM at T_m° for the paper's pulses; the shift keeps the mass
    and energy budgets exact).

    Parameters
    ----------
    kind : {"none", "linear", "pulses"}
    total : scalar or array
        M° of the linear form.
    dM, T_K, steep_per_K, exponent : arrays [member, pulse]
        Pulse masses, mid-point temperatures, steepness m_j and exponent g_j (zero-mass
        pulses pad members with fewer pulses).
    """

    def __init__(self, kind, T0_K, Teq_K, total=0.0, dM=None, T_K=None, steep_per_K=None, exponent=None):
        self.kind = kind
        self.T0, self.Teq = np.asarray(T0_K, float), np.asarray(Teq_K, float)
        self.total = np.asarray(total, float)
        if kind == "pulses":
            self.dM, self.Tp = np.atleast_2d(dM), np.atleast_2d(T_K)
            self.m, self.g = np.atleast_2d(steep_per_K), np.atleast_2d(exponent)
            self.offset = self._raw(self.T0)[0]

    def _raw(self, T):
        x = self.m * (np.asarray(T, float)[..., None] - self.Tp)
        each = self.dM * np.exp(-self.g * np.logaddexp(0.0, x))      # [1 + e^x]^-g without overflow
        return each.sum(-1), (-self.g * self.m * expit(x) * each).sum(-1)

    def __call__(self, T):
        """(M, dM/dT_m) at T_m (K)."""
        if self.kind == "none":
            z = np.zeros_like(np.asarray(T, float) + self.T0)
            return z, z
        if self.kind == "linear":
            span = self.T0 - self.Teq
            return self.total * (self.T0 - T) / span, -self.total / span + 0.0 * T
        raw, d = self._raw(T)
        return raw - self.offset, d

    def final(self):
        """The mass at T_eq: M_r° or M_e°."""
        return self(self.Teq)[0]


def partition(D0, dH_J_mol, T_K):
    """Bulk partition coefficient D = D° exp(-ΔH / (R T)) (A20)."""
    return D0 * np.exp(-dH_J_mol / (R_GAS * T_K))


class Thermal:
    """Temperatures (K), heat capacities (J/kg/K), enthalpies (J/kg) and χ of the members."""

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, np.asarray(v, dtype=float))


def _gauss_legendre_panels(a, b, panels, order=10):
    """Nodes [member, point] and weights of composite Gauss-Legendre rules on [a, b]."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, panels + 1)
    h = np.diff(edges)
    s = (edges[:-1, None] + 0.5 * h[:, None] * (x[None, :] + 1.0)).ravel()
    ws = (0.5 * h[:, None] * w[None, :]).ravel()
    a, b = np.atleast_1d(a), np.atleast_1d(b)
    nodes = a[:, None] + (b - a)[:, None] * s[None, :]
    return nodes, ws[None, :] * (b - a)[:, None]


def eruption_heat(th, fm, erupt):
    """∫_{T_m°}^{T_eq} M_e (C_p,m + Δh_m f_m') dT_m, J/kg of M_0 (≤ 0): the heat carried away by
    erupted magma, [A] + [B] of eqs 4-5 with their sign corrected (see docs/models/chamber.md, 'Corrections').

    Composite Gauss-Legendre with panels narrower than the steepest pulse's e-folding
    width, so a pulse is resolved wherever it sits (accurate to ~1e-12 relative)."""
    if erupt.kind == "none":
        return np.zeros_like(th.Tm0)
    span = np.max(th.Tm0 - th.Teq)
    steep = np.max(erupt.m) if erupt.kind == "pulses" else 0.0
    steep = max(steep, np.max(np.abs(fm.b / fm.width)))
    panels = int(min(20000, max(64, np.ceil(span * steep))))
    T, w = _gauss_legendre_panels(th.Tm0, th.Teq, panels)
    T, w = T.T, w.T                      # [point, member]: member parameters broadcast
    M = erupt(T)[0]
    _, _, dfm = fm(T)
    return np.sum(w * M * (th.cpm + th.dhm * dfm), axis=0)


def wallrock_mass(th, fm, fr, fa, recharge, erupt):
    """M_a°, the mass of wall rock (per M_0) that reaches T_eq with the magma (eq. 4, A6).

    The heat the chamber gives up between T_m° and T_eq, divided by the heat one unit of wall
    rock absorbs between T_a° and T_eq. Both are the exact integrals of the path equation for
    T_a (A1, A2), so that integrating the path ends with T_a = T_eq: in particular the
    crystallisation term is Δh_m [f_m(T_m°) - f_m(T_eq)] (the printed 1 - f_m(T_eq) assumes
    f_m(T_m°) = 1, which the logistic productivity does not give).

    Returns
    -------
    Ma0, released, absorbed_per_mass : arrays [member]
    """
    fm0 = fm(th.Tm0)[0]
    fm_eq = fm(th.Teq)[0]
    fr_eq = fr(th.Teq)[0]
    fa0 = fa(th.Ta0)[0]
    fa_eq = fa(th.Teq)[0]
    Mr0 = recharge.final()
    released = (th.cpm * (th.Tm0 - th.Teq) + th.dhm * (fm0 - fm_eq)
                + Mr0 * (th.cpr * (th.Tr0 - th.Teq) + th.dhr * (1.0 - fr_eq))
                + eruption_heat(th, fm, erupt))
    absorbed = (th.cpa * (th.Teq - th.Ta0) + th.dha * (fa_eq - fa0)
                - th.chi * fa0 * th.cpa * (th.Tm0 - th.Ta0))
    return released / absorbed, released, absorbed


class StateLayout:
    """Columns of the per-member state row.

    ``[Ta/T_lm, Mm, Mct, Men]``, then for each trace element ``[Cm, ln(Cs/Ca°), Nct, Nen,
    Ne, Ntrap]`` (concentrations and inventories over the element's scale ppm), for each
    radiogenic ratio ``[eps_m, Pct, Pe]`` and for each stable isotope ``[delta_m, Qct, Qe]``
    (inventories weighted by the ratio or delta; see :func:`path_rates`).
    """

    GLOBAL = ("Ta", "Mm", "Mct", "Men")
    ELEMENT = ("Cm", "La", "Nct", "Nen", "Ne", "Ntrap")
    RATIO = ("eps", "Pct", "Pe")
    STABLE = ("delta", "Qct", "Qe")

    def __init__(self, n_elements, n_ratios, n_stable):
        self.ne, self.ni, self.ns = n_elements, n_ratios, n_stable
        self.el0 = len(self.GLOBAL)
        self.ra0 = self.el0 + len(self.ELEMENT) * n_elements
        self.st0 = self.ra0 + len(self.RATIO) * n_ratios
        self.width = self.st0 + len(self.STABLE) * n_stable

    def element(self, u, name):
        """View [member, element] of one element column."""
        k = self.ELEMENT.index(name)
        return u[:, self.el0 + k:self.ra0:len(self.ELEMENT)]

    def ratio(self, u, name):
        k = self.RATIO.index(name)
        return u[:, self.ra0 + k:self.st0:len(self.RATIO)]

    def stable(self, u, name):
        k = self.STABLE.index(name)
        return u[:, self.st0 + k:self.width:len(self.STABLE)]


def path_rates(Tm, u, du, p):
    """Derivatives with respect to T_m (per K) of every state column. Vectorised over rows.

    Parameters
    ----------
    Tm : array [member]
        Melt temperature, K.
    u : array [member, column]
        State (see :class:`StateLayout`).
    du : array like ``u``
        Filled with d(state)/dT_m.
    p : ChamberParameters-like
        Attributes: ``th`` (:class:`Thermal`), ``fm, fr, fa`` (:class:`Productivity`),
        ``recharge, erupt`` (:class:`MassFunction`), ``Ma0``, ``layout``, and per-element
        arrays [member, element] ``Cm0, Ca0, Cr0`` (scaled), ``D0m, D0r, D0a, dHm, dHr, dHa``,
        ratio arrays ``ratio_el`` (element index of each ratio), ``eps_a, eps_r``, stable
        arrays ``d_a, d_r, k_a, k_r``.

    Returns
    -------
    dict of the auxiliary rates used by the recorder (dTa/dTm, assimilation rate).

    Notes
    -----
    With A' = χ M_a° f_a' T_a' (assimilated anatectic melt), X' = -[f_m'(1 - M_e) + f_r' M_r]
    (cumulate crystallised from the melt; both per unit T_m, so negative as T_m falls):

    - energy (eq. 7 with the recharge-injection sign of A1): T_a' = -num / den;
    - melt (eq. 8): M_m' = A' + f_m'(1 - M_e) - f_m M_e' + f_r' M_r + f_r M_r';
    - cumulates: M_ct' = X' - (1 - f_m) M_e' (erupted crystals leave the cumulate pile);
    - enclaves: M_en' = (1 - f_r) M_r';
    - trace element (eq. 10, eruption term with f_m' not f_m): M_m C_m' = A'(C_a - C_m)
      - (D_m - 1) C_m X' + (C_r - C_m) f_r M_r', C_r = C_r° f_r^(D_r - 1) (A19),
      C_a = C_s / D_a with the restite d ln C_s = (1 - 1/D_a) df_a / (1 - f_a) (fractional
      melting; eq. 9 is its solution for constant D_a);
    - isotope ratio (eq. 11): M_m C_m ε' = A' C_a (ε_a - ε) + f_r M_r' C_r (ε_r - ε);
    - stable isotope (eq. 12): M_m δ' = k_a A' (δ_a - δ) + k_r f_r M_r' (δ_r - δ).
    """
    th, L = p.th, p.layout
    Ta = u[:, 0] * th.Tlm
    Mm = u[:, 1]
    Mct = u[:, 2]
    fm, gm, dfm = p.fm(Tm)
    fr, gr, dfr = p.fr(Tm)
    fa, ga, dfa = p.fa(Ta)
    Me, dMe = p.erupt(Tm)
    Mr, dMr = p.recharge(Tm)
    chi, Ma0 = th.chi, p.Ma0

    num = ((1.0 - Me) * (th.cpm + th.dhm * dfm) + Mr * (th.cpr + th.dhr * dfr)
           + chi * Ma0 * th.cpa * fa + dMr * (th.cpr * (Tm - th.Tr0) - th.dhr * gr))
    den = Ma0 * (th.cpa * (1.0 - chi * fa) + (th.dha + chi * th.cpa * (Tm - Ta)) * dfa)
    dTa = -num / den
    melt_rate = Ma0 * dfa * dTa               # dM_a*/dT_m, anatectic melt produced
    A = chi * melt_rate                       # assimilated
    X = -(dfm * (1.0 - Me) + dfr * Mr)        # cumulate formed from the melt
    du[:, 0] = dTa / th.Tlm
    du[:, 1] = A - X - fm * dMe + fr * dMr
    du[:, 2] = X - gm * dMe
    du[:, 3] = gr * dMr
    erupted_solid = gm * dMe                  # crystals leaving the pile (per dT_m)
    has_pile = Mct > 1e-14
    safe_pile = np.where(has_pile, Mct, 1.0)

    if L.ne:
        col = lambda name: L.element(u, name)
        Cm, La = col("Cm"), col("La")
        Dm = partition(p.D0m, p.dHm, Tm[:, None])
        Dr = partition(p.D0r, p.dHr, Tm[:, None])
        Da = partition(p.D0a, p.dHa, Ta[:, None])
        Cs = p.Ca0 * np.exp(La)
        Ca = Cs / Da
        fr_ = fr[:, None]
        Cr = p.Cr0 * fr_ ** (Dr - 1.0)
        Mm_ = Mm[:, None]
        dMr_ = dMr[:, None]
        ct_avg = np.where(has_pile[:, None], col("Nct") / safe_pile[:, None], Dm * Cm)
        dCm = (A[:, None] * (Ca - Cm) - (Dm - 1.0) * Cm * X[:, None]
               + (Cr - Cm) * fr_ * dMr_) / Mm_
        with np.errstate(divide="ignore", invalid="ignore"):
            dLa = np.where(ga[:, None] > 0, (1.0 - 1.0 / Da) * (dfa * dTa)[:, None] / ga[:, None], 0.0)
        dN = {"Cm": dCm, "La": dLa,
              "Nct": Dm * Cm * X[:, None] - ct_avg * erupted_solid[:, None],
              "Nen": p.Cr0 * (1.0 - fr_ ** Dr) * dMr_,
              "Ne": (Cm * fm[:, None] + ct_avg * gm[:, None]) * dMe[:, None],
              "Ntrap": (1.0 - chi)[:, None] * Ca * melt_rate[:, None]}
        for name, rate in dN.items():
            L.element(du, name)[:] = rate

    if L.ni:
        e = p.ratio_el
        eps = L.ratio(u, "eps")
        Cm_e, Ca_e, Cr_e, Dm_e = Cm[:, e], Ca[:, e], Cr[:, e], Dm[:, e]
        Mc = Mm[:, None] * Cm_e
        src = A[:, None] * Ca_e * (p.eps_a - eps) + fr[:, None] * dMr[:, None] * Cr_e * (p.eps_r - eps)
        L.ratio(du, "eps")[:] = np.where(Mc > 0, src / np.where(Mc > 0, Mc, 1.0), 0.0)
        Pct = L.ratio(u, "Pct")
        pct_avg = np.where(has_pile[:, None], Pct / safe_pile[:, None], eps * Dm_e * Cm_e)
        L.ratio(du, "Pct")[:] = eps * Dm_e * Cm_e * X[:, None] - pct_avg * erupted_solid[:, None]
        L.ratio(du, "Pe")[:] = (eps * Cm_e * fm[:, None] + pct_avg * gm[:, None]) * dMe[:, None]

    if L.ns:
        d = L.stable(u, "delta")
        src = (p.k_a * A[:, None] * (p.d_a - d) + p.k_r * (fr * dMr)[:, None] * (p.d_r - d))
        L.stable(du, "delta")[:] = src / Mm[:, None]
        Qct = L.stable(u, "Qct")
        q_avg = np.where(has_pile[:, None], Qct / safe_pile[:, None], d)
        L.stable(du, "Qct")[:] = d * X[:, None] - q_avg * erupted_solid[:, None]
        L.stable(du, "Qe")[:] = (d * fm[:, None] + q_avg * gm[:, None]) * dMe[:, None]

    return {"dTa_dTm": dTa, "dMa_star_dTm": melt_rate}
