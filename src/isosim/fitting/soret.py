"""Weighted least-squares fit of the steady Soret isotope profile to measured delta values.

Model (docs/models/capsule.md; Huang et al. 2010 eq. 4 with a constant Delta S_T): for experiment e and
isotope pair p of element E, with Delta m_p the exact mass difference (amu),

    delta_{e,p}(T) = delta_start_{e,p} - Omega_{e,E} * Delta m_p * (T - T0_{e,E})      [permil]

Omega is in permil per degC per amu; T0_{e,E} (where a sample equals the starting material)
is shared by the pairs of one element in one experiment (elements differ: an element's own
Soret coefficient moves its mass, and so its T0); delta_start_{e,p} is a parameter
constrained by the measured starting material as one more data point. Delta S_T of a pair
is Omega * Delta m_p / 1000 (per degC), so delta against T has slope -1000 Delta S_T.

Weights are 1/sigma^2 with sigma^2 = (reported 2 sigma / 2)^2 + (Omega Delta m sigma_T)^2:
the effective variance of a sample whose temperature is uncertain by sigma_T (Orear 1982).
Table 1 gives no temperature errors; :func:`estimate_sigma_T` takes the sigma_T for which the
pooled fits' chi2/dof is 1 (the excess-scatter convention of isochron fitting).
Parameter uncertainties (1 sigma) come from the covariance
(J^T J)^-1 of the weighted residuals, multiplied by the Birge ratio max(1, sqrt(chi2/dof)) so
that scatter beyond the reported errors widens them; with dof = 0 the unscaled one is used.
The solver is scipy.optimize.least_squares (Levenberg-Marquardt) with the exact Jacobian.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, least_squares

from ..errors import IsosimError

#: Huang et al. (2010) Fig. 3 pooled Delta S_T (per degC); they pool more experiments than Table 1.
PAPER_POOLED_DS_T_PER_C = {"57Fe/54Fe": 3.6e-5, "44Ca/40Ca": 6.1e-5, "26Mg/24Mg": 6.8e-5}


@dataclass
class Fit:
    """Result of ``fit_pairs``: parameters by name, 1-sigma uncertainties and residuals.

    Parameter names are ``("Omega", element)``, ``("T0", experiment, element)`` and
    ``("delta_start", start_from, column)``. ``sigma`` is ``sigma_unscaled * scale`` with
    ``scale`` the Birge ratio max(1, sqrt(chi2/dof)) (1 when dof = 0).
    """

    pairs: list
    names: list
    values: np.ndarray
    sigma_unscaled: np.ndarray
    sigma: np.ndarray
    chi2: float
    dof: int
    scale: float

    def get(self, *name):
        """``(value, sigma, sigma_unscaled)`` of one parameter."""
        i = self.names.index(tuple(name))
        return self.values[i], self.sigma[i], self.sigma_unscaled[i]

    def model(self, pair, T_C):
        """Fitted delta (permil) of ``pair`` at temperatures ``T_C``."""
        om, t0, ds = (self.get("Omega", pair.element)[0], self.get("T0", pair.experiment, pair.element)[0],
                      self.get("delta_start", pair.start_from, pair.column)[0])
        return ds - om * pair.dm_amu * (np.asarray(T_C, float) - t0)


def _initial_guess(pairs, names, sig):
    """Start values from a weighted straight line through each pair's samples."""
    x0 = np.zeros(len(names))
    omegas, t0s = {}, {}
    for p, s in zip(pairs, sig):
        b, a = np.polyfit(p.T_C, p.delta_permil, 1, w=1 / s[:-1])
        omegas.setdefault(p.element, []).append(-b / p.dm_amu)
        t0s.setdefault((p.experiment, p.element), []).append((p.start_permil - a) / b)
    for i, n in enumerate(names):
        x0[i] = (np.mean(omegas[n[1]]) if n[0] == "Omega" else np.mean(t0s[n[1:]]) if n[0] == "T0"
                 else next(p.start_permil for p in pairs if (p.start_from, p.column) == n[1:]))
    return x0


def fit_pairs(pairs, unweighted=False, sigma_T=0.0):
    """Fit the linear Soret model jointly to ``pairs``.

    Omega is shared by the pairs of one element, T0 by the pairs of one element in one experiment and
    delta_start by pairs of the same starting material (so a start row used by two
    experiments, ZM70's by ZM71, is one measurement, not two).

    Parameters
    ----------
    pairs : list of table1.Pair
    unweighted : bool
        Give every point sigma = 1 permil (ordinary least squares), to check published numbers.
    sigma_T : float
        1-sigma uncertainty (degC) of each sample's temperature. It enters as an effective
        variance, sigma^2 + (Omega Delta m sigma_T)^2 (Orear 1982), the weights being updated
        from the fitted Omega until they stop changing.

    Returns
    -------
    Fit
    """
    names = list(dict.fromkeys([("Omega", p.element) for p in pairs] + [("T0", p.experiment, p.element) for p in pairs]
                               + [("delta_start", p.start_from, p.column) for p in pairs]))
    idx = {n: i for i, n in enumerate(names)}
    # each pair's samples then its start point; a start row shared by experiments is used once
    seen, sig, use, cols = set(), [], [], []
    for p in pairs:
        key = (p.start_from, p.column)
        s = np.append(p.two_sigma_permil, p.start_two_sigma_permil) / 2
        sig.append(np.ones_like(s) if unweighted else s)
        use.append(np.append(np.ones(len(p.T_C), bool), key not in seen))
        seen.add(key)
        cols.append((idx[("Omega", p.element)], idx[("T0", p.experiment, p.element)], idx[("delta_start",) + key]))
    data = [np.append(p.delta_permil, p.start_permil) for p in pairs]
    active = np.concatenate(use)

    def residuals(x):
        out = []
        for p, s, d, (io, it, ids) in zip(pairs, sig, data, cols):
            m = np.append(x[ids] - x[io] * p.dm_amu * (p.T_C - x[it]), x[ids])
            out.append((m - d) / s)
        return np.concatenate(out)[active]

    def jacobian(x):
        rows = []
        for p, s, (io, it, ids) in zip(pairs, sig, cols):
            J = np.zeros((len(s), len(x)))
            J[:-1, io] = -p.dm_amu * (p.T_C - x[it])
            J[:-1, it] = x[io] * p.dm_amu
            J[:, ids] = 1.0
            rows.append(J / s[:, None])
        return np.vstack(rows)[active]

    measured = [s.copy() for s in sig]
    x = _initial_guess(pairs, names, sig)
    for _ in range(100):
        # effective variance from the current Omega (the start row has no temperature)
        for p, s, m, (io, _, _) in zip(pairs, sig, measured, cols):
            s[:-1] = np.sqrt(m[:-1] ** 2 + (x[io] * p.dm_amu * sigma_T) ** 2)
        res = least_squares(residuals, x, jac=jacobian, method="lm",
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, x_scale="jac")
        if res.status <= 0:
            raise IsosimError(f"error: the least-squares fit did not converge: {res.message}")
        done = sigma_T == 0 or np.allclose(res.x, x, rtol=1e-12, atol=0)
        x = res.x
        if done:
            break
    _, sv, vt = np.linalg.svd(jacobian(res.x), full_matrices=False)
    if sv[-1] <= sv[0] * 1e-12:
        raise IsosimError("error: the fit is degenerate (a parameter is not determined by the data)")
    su = np.sqrt(np.sum((vt.T / sv) ** 2, axis=1))
    chi2 = float(np.sum(res.fun ** 2))
    dof = int(active.sum()) - len(names)
    scale = max(1.0, np.sqrt(chi2 / dof)) if dof > 0 else 1.0
    return Fit(pairs, names, res.x, su, su * scale, chi2, dof, float(scale))


def estimate_sigma_T(pairs, high=500.0):
    """The sample-temperature uncertainty (degC, 1 sigma) that makes chi2/dof = 1.

    Each element is fitted over all experiments at once (Omega shared); 0 if the reported
    delta errors already explain the scatter."""
    by_element = {}
    for p in pairs:
        by_element.setdefault(p.element, []).append(p)

    def reduced_chi2(sigma_T):
        fits = [fit_pairs(ps, sigma_T=sigma_T) for ps in by_element.values()]
        dof = sum(f.dof for f in fits)
        return sum(f.chi2 for f in fits) / dof if dof > 0 else 0.0

    if reduced_chi2(0.0) <= 1.0:
        return 0.0
    return float(brentq(lambda s: reduced_chi2(s) - 1.0, 0.0, high, xtol=1e-6))


def two_point_omega(pair, hot, cold):
    """Omega from the two samples at positions ``hot`` and ``cold`` alone (a check on Table 1)."""
    i, j = pair.positions.index(hot), pair.positions.index(cold)
    slope = (pair.delta_permil[i] - pair.delta_permil[j]) / (pair.T_C[i] - pair.T_C[j])
    return -slope / pair.dm_amu


def _val(fit, *name, factor=1.0):
    v, s, su = fit.get(*name)
    return {"value": float(v * factor), "sigma": float(s * factor), "sigma_unscaled": float(su * factor)}


def _residuals(fit):
    rows, seen = [], set()
    for p in fit.pairs:
        model = fit.model(p, p.T_C)
        for pos, T, d, s2, m in zip(p.positions, p.T_C, p.delta_permil, p.two_sigma_permil, model):
            rows.append({"experiment": p.experiment, "pair": p.label, "position": pos, "T_C": float(T),
                         "delta_permil": float(d), "two_sigma_permil": float(s2), "model_permil": float(m),
                         "residual_permil": float(d - m), "residual_over_sigma": float(2 * (d - m) / s2)})
        if (p.start_from, p.column) not in seen:    # a shared start row is one data point
            seen.add((p.start_from, p.column))
            m = fit.get("delta_start", p.start_from, p.column)[0]
            rows.append({"experiment": p.experiment, "pair": p.label, "position": "start", "start_row_from":
                         p.start_from, "T_C": None, "delta_permil": p.start_permil,
                         "two_sigma_permil": p.start_two_sigma_permil, "model_permil": float(m),
                         "residual_permil": float(p.start_permil - m),
                         "residual_over_sigma": float(2 * (p.start_permil - m) / p.start_two_sigma_permil)})
    return rows


def summarize(fit, residuals=True):
    """Every number of a ``Fit`` as a JSON-ready dict, units in the key names.

    Values are ``{"value", "sigma", "sigma_unscaled"}``; ``sigma`` (1 sigma) is
    ``sigma_unscaled`` times ``uncertainty_scale`` = max(1, Birge ratio sqrt(chi2/dof)),
    or 1 when dof = 0. Residuals are data minus model.
    """
    labels = {p.label: p for p in fit.pairs}
    out = {
        "Omega_permil_per_C_per_amu": {n[1]: _val(fit, *n) for n in fit.names if n[0] == "Omega"},
        "dS_T_per_C": {lab: _val(fit, "Omega", p.element, factor=p.dm_amu / 1000) for lab, p in labels.items()},
        "T0_C": {},
        "delta_start_permil": {},
        "chi2": fit.chi2, "dof": fit.dof,
        "birge_ratio": float(np.sqrt(fit.chi2 / fit.dof)) if fit.dof > 0 else None,
        "uncertainty_scale": fit.scale,
    }
    for n in fit.names:
        if n[0] == "T0":
            out["T0_C"].setdefault(n[1], {})[n[2]] = _val(fit, *n)
    for p in fit.pairs:
        out["delta_start_permil"].setdefault(p.experiment, {})[p.label] = _val(
            fit, "delta_start", p.start_from, p.column)
    if residuals:
        out["residuals"] = _residuals(fit)
    return out


def _compare(fitted, published):
    if published is None:
        return None
    return {"fitted": fitted, "published": published, "relative_difference": fitted / published - 1}


def fit_experiment(exp, sigma_T=0.0):
    """Joint, per-pair and paper-method fits of one ``table1.Experiment`` as a dict.

    ``T0_C_joint`` (compared with the published T0) is the mean of the elements' T0."""
    joint = summarize(fit_pairs(exp.pairs, sigma_T=sigma_T))
    joint["T0_C"] = joint["T0_C"][exp.name]
    joint["T0_C_mean_over_elements"] = float(np.mean([v["value"] for v in joint["T0_C"].values()]))
    joint["delta_start_permil"] = joint["delta_start_permil"][exp.name]
    per_pair = {}
    for p in exp.pairs:
        s = summarize(fit_pairs([p], sigma_T=sigma_T), residuals=False)
        per_pair[p.label] = {"Omega_permil_per_C_per_amu": s["Omega_permil_per_C_per_amu"][p.element],
                             "dS_T_per_C": s["dS_T_per_C"][p.label], "T0_C": s["T0_C"][exp.name][p.element],
                             "chi2": s["chi2"], "dof": s["dof"], "uncertainty_scale": s["uncertainty_scale"]}
    t0s = [v["T0_C"]["value"] for v in per_pair.values()]
    pub = exp.published
    ols = {p.label: float(fit_pairs([p], unweighted=True).get("T0", exp.name, p.element)[0]) for p in exp.pairs}
    check = {"T0_C_unweighted_per_pair": ols, "T0_C_unweighted_mean_over_pairs": float(np.mean(list(ols.values())))}
    if pub.get("dT_span"):
        check["dT_span"] = "-".join(pub["dT_span"])
        check["Omega_two_point_permil_per_C_per_amu"] = {
            p.label: float(two_point_omega(p, *pub["dT_span"])) for p in exp.pairs}
    out = {"start_row_from": exp.start_from, "joint": joint, "per_pair": per_pair,
           "T0_C_mean_over_pairs": float(np.mean(t0s)), "T0_C_std_over_pairs": float(np.std(t0s)),
           "paper_method_check": check}
    if pub:
        omega = {el: _compare(joint["Omega_permil_per_C_per_amu"][el]["value"], pub["Omega"].get(el))
                 for el in exp.elements}
        out["published"] = {"T0_C": pub["T0_C"], "Omega_permil_per_C_per_amu": pub["Omega"],
                            "dT_published_C": pub["dT_published_C"], "duration_h": pub["duration_h"],
                            "dT_span": check.get("dT_span"), **pub["text"]}
        t0 = pub["T0_C"]
        out["comparison"] = {"Omega_permil_per_C_per_amu": {k: v for k, v in omega.items() if v}}
        for key, fitted in (("T0_C_mean_over_pairs", out["T0_C_mean_over_pairs"]),
                            ("T0_C_joint", joint["T0_C_mean_over_elements"])):
            out["comparison"][key] = None if t0 is None else {
                "fitted": fitted, "published": t0, "difference_C": fitted - t0}
    return out


def fit_pooled(experiments, sigma_T=0.0):
    """Omega per element shared by all experiments (T0 and delta_start per experiment) as a dict."""
    out = summarize(fit_pairs([p for e in experiments.values() for p in e.pairs], sigma_T=sigma_T))
    out["paper_dS_T_per_C"] = {k: v for k, v in PAPER_POOLED_DS_T_PER_C.items() if k in out["dS_T_per_C"]}
    out["comparison"] = {k: _compare(out["dS_T_per_C"][k]["value"], v) for k, v in out["paper_dS_T_per_C"].items()}
    return out
