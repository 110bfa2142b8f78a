"""What a capsule run records and writes: inventories, Omega(t), T0(t), the approach to steady
state, profiles of concentration and delta against x and T, and the steady state itself."""

import numpy as np

from ..physics import soret
from ..io.distributed import Slab
from ..io.layout import coordinates, labels, mark_attrs
from .recording import Recorder, put


class CapsuleRecorder(Recorder):
    """Records a :class:`CapsuleProblem` at its output times (all collective).

    Profiles and the steady state stay split over the ranks by cells and are written
    collectively (:meth:`write_fields`).

    Parameters
    ----------
    problem : CapsuleProblem
    """

    PROFILED = ("u",)

    def __init__(self, problem):
        self.problem = problem
        tm = problem.deck["time"]
        self.duration_h = tm["duration_h"]
        extra = [h / self.duration_h for h in tm["output_h"]]
        taus = set(np.linspace(0.0, 1.0, tm["series_points"])[1:].tolist()) | set(extra) | {1.0}
        taus.discard(0.0)
        self.times = np.array(sorted(taus))
        self.profile_times = np.array(sorted(set(extra) | {0.0, 1.0}))
        self.u_ss = problem.steady_state()
        self.steady_fit = problem.soret_fit(self.u_ss)
        keys = ("tau", "inventory", "steady_fraction", "pair_steady_fraction", "Omega", "T0")
        self.series = {k: [] for k in keys}
        self.profiles = {"tau": []}
        self.local_profiles = []

    # -------------------------------------------------------------- driver interface
    def record(self, tau, u):
        p = self.problem
        s = self.series
        frac, pair_frac = p.steady_fraction(u, self.u_ss)
        fit = p.soret_fit(p.local(u))
        s["tau"].append(float(tau))
        s["inventory"].append(p.inventory(u))
        s["steady_fraction"].append(frac)
        s["pair_steady_fraction"].append(np.concatenate(pair_frac) if pair_frac else np.zeros(0))
        s["Omega"].append([o for o, _ in fit])
        s["T0"].append([t0 for _, t0 in fit])
        if np.any(np.isclose(self.profile_times, tau, rtol=0, atol=1e-12)):
            self.profiles["tau"].append(float(tau))
            self.keep_profile(u)          # each rank its own cells (written collectively)

    def describe(self, tau):
        return f"t = {tau * self.duration_h:.6g} of {self.duration_h:.6g} h"

    def describe_dt(self, dtau):
        return f"{dtau * self.duration_h * 3600:.3g} s"

    # -------------------------------------------------------------- results
    def _pairs(self):
        return [(e, k) for e in self.problem.elements for k in e.heavy]

    def headline(self):
        """(Rank 0, not collective.) Final numbers (capsule keys of docs/user-guide.md, 'Outputs'), with the steady state for comparison."""
        p = self.problem
        s = self.series
        ss_fit = self.steady_fit
        out = {"t_h": float(s["tau"][-1] * self.duration_h),
               "Omega_permil_per_C_per_amu": {}, "dS_T_per_C": {}, "T0_C": {},
               "steady_state": {"Omega_permil_per_C_per_amu": {}, "T0_C": {}},
               "input_Omega_permil_per_C_per_amu": {}}
        for e, (om, t0), (om_ss, t0_ss) in zip(p.elements, zip(s["Omega"][-1], s["T0"][-1]), ss_fit):
            out["Omega_permil_per_C_per_amu"][e.name] = float(om)
            out["T0_C"][e.name] = float(t0)
            out["steady_state"]["Omega_permil_per_C_per_amu"][e.name] = float(om_ss)
            out["steady_state"]["T0_C"][e.name] = float(t0_ss)
            out["input_Omega_permil_per_C_per_amu"][e.name] = 1000.0 * e.mass_term
            for k in e.heavy:
                out["dS_T_per_C"][e.pair_name(k)] = float(om * e.dm[k] / 1000.0)
        # fraction of steady state at every requested time and at the end
        times = sorted(set(p.deck["time"]["output_h"]) | {self.duration_h})
        tau = np.asarray(s["tau"])
        names = [sp.name for sp in p.species]
        pairs = [e.pair_name(k) for e, k in self._pairs()]
        frac = {}
        for h in times:
            i = int(np.argmin(np.abs(tau * self.duration_h - h)))
            row = dict(zip(names, map(float, s["steady_fraction"][i])))
            row.update({f"delta {n}": float(v) for n, v in zip(pairs, s["pair_steady_fraction"][i])})
            frac[f"{h:g} h"] = row
        out["steady_fraction"] = frac
        out["inventory_drift"] = float(np.max(np.abs(np.asarray(s["inventory"]) - 1.0)))
        return [out]

    @staticmethod
    def report_lines(member):
        lines = []
        for el, om in member["Omega_permil_per_C_per_amu"].items():
            lines.append(f"{el}: Omega = {om:.5g} permil/°C/amu, T0 = {member['T0_C'][el]:.1f} °C at "
                         f"t = {member['t_h']:g} h (steady state: "
                         f"{member['steady_state']['Omega_permil_per_C_per_amu'][el]:.5g}, "
                         f"{member['steady_state']['T0_C'][el]:.1f} °C)")
        for when, row in member["steady_fraction"].items():
            lines.append(f"fraction of steady state at {when}: " +
                         ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
        return lines

    def write_results(self, h5):
        """Series, profiles and the steady state into an open h5py File (rank 0 only). Axes:
        time (or profile), then the rest (docs/outputs.md)."""
        p = self.problem
        names = [sp.name for sp in p.species]
        pairs = self._pairs()
        pair_names = [e.pair_name(k) for e, k in pairs]
        elements = [e.name for e in p.elements]
        tau = np.asarray(self.series["tau"])
        g = h5.create_group("series")
        g.attrs["description"] = "exact values at the output times (no interpolation)"
        put(g, "t_h", tau * self.duration_h, "h", "time since the uniform start [time]", dims=["time"])
        put(g, "tau", tau, "1", "time / duration of the run [time]", dims=["time"])
        put(g, "inventory", self.series["inventory"], "1",
            "mean concentration over the column relative to the start [time, species] (conserved)",
            dims=["time", "species"])
        put(g, "steady_fraction", self.series["steady_fraction"], "1",
            "1 - |c - c_ss| / |c_0 - c_ss| (L2 over the cells) [time, species]", dims=["time", "species"])
        put(g, "pair_steady_fraction", np.asarray(self.series["pair_steady_fraction"]).reshape(len(tau), -1), "1",
            "the same for the delta profile of each isotope pair [time, pair]", dims=["time", "pair"])
        put(g, "Omega_permil_per_C_per_amu", np.asarray(self.series["Omega"]).reshape(len(tau), -1),
            "permil/degC/amu", "-slope of delta/Delta m against T over the cells [time, element]",
            dims=["time", "element"])
        put(g, "T0_C", np.asarray(self.series["T0"]).reshape(len(tau), -1), "degC",
            "temperature where the fitted line meets the starting material [time, element]",
            dims=["time", "element"])
        coordinates(g, "t_h", "tau")

        pr = h5.create_group("profiles")
        put(pr, "t_h", np.asarray(self.profiles["tau"]) * self.duration_h, "h", "times of the profiles [profile]",
            dims=["profile"])
        coordinates(pr, "t_h", "x_mm", "T_C")
        st = h5.create_group("steady_state")
        st.attrs["description"] = ("zero-flux steady state computed directly (c ∝ exp(-psi)); it is the "
                                   "discrete scheme's own steady state")
        coordinates(st, "x_mm", "T_C")
        for grp in (pr, st, h5):
            grp.attrs["species"] = names
        for grp in (g, pr, st):
            labels(grp, "species", names, "species names")
            labels(grp, "pair", pair_names, "isotope pairs (heavy/reference)")
        labels(g, "element", elements, "element names")
        h5.attrs["pairs"] = pair_names
        h5.attrs["species_units"] = [sp.unit for sp in p.species]
        h5.attrs["elements"] = elements

    def write_fields(self, f):
        """Profiles, coordinates and the steady state, each rank its own cells. Collective."""
        p = self.problem
        n, lo = p.ncells, p.first
        x = (np.arange(p.first, p.last) + 0.5) * p.h * 1e3
        cell = mark_attrs(["cell"])
        for grp in ("profiles", "steady_state"):
            f.slab(f"{grp}/x_mm", Slab((n,), lo, x), units="mm", description="cell centres from the hot end [cell]",
                   **cell)
            f.slab(f"{grp}/T_C", Slab((n,), lo, p.profile.T_C(x)), units="degC",
                   description="temperature at the cell centres [cell]", **cell)
        u = self.profile_stack("u").transpose(1, 2, 0)          # (profile, species, cell)
        c0 = np.array([sp.concentration0 for sp in p.species])
        nprof, npair = u.shape[0], len(self._pairs())
        f.slab("profiles/concentration", Slab((nprof, p.nsp, n), lo, u * c0[None, :, None], axis=2),
               units="deck units (see attribute species_units)",
               description="concentration of each species [profile, species, cell]",
               **mark_attrs(["profile", "species", "cell"]))
        f.slab("profiles/delta_permil", Slab((nprof, npair, n), lo, self._deltas(u), axis=2), units="permil",
               description="delta of each isotope pair against the standard (start_delta_permil) "
                           "[profile, pair, cell]", **mark_attrs(["profile", "pair", "cell"]))
        ss = np.asarray(self.u_ss).reshape(p.nloc, p.nsp).T                 # (species, cell)
        f.slab("steady_state/concentration", Slab((p.nsp, n), lo, ss * c0[:, None], axis=1),
               units="deck units", description="steady-state concentration of each species [species, cell]",
               **mark_attrs(["species", "cell"]))
        f.slab("steady_state/delta_permil", Slab((npair, n), lo, self._deltas(ss[None])[0], axis=1),
               units="permil", description="steady-state delta of each isotope pair [pair, cell]",
               **mark_attrs(["pair", "cell"]))

    def _deltas(self, u):
        """delta against the standard, [profile, pair, cell], from u [profile, species, cell]."""
        out = [soret.delta_permil(u[:, e.index[k]], u[:, e.index[e.ref]], e.start_ratio[k])
               for e, k in self._pairs()]
        return np.stack(out, axis=1) if out else np.zeros((u.shape[0], 0, u.shape[2]))

