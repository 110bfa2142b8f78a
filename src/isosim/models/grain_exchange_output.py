"""What a grain-exchange run records and writes: Delta(T), T_app(T), inventories and profiles.

Every output time is a point the TS lands on exactly (see the driver); nothing is
interpolated. Recordings round-trip through checkpoints so a restarted run's result files
are complete.
"""

import numpy as np

from ..physics.constants import SECONDS_PER_MYR
from ..io.distributed import Slab
from ..io.layout import coordinates, labels, mark, mark_attrs
from .recording import Recorder, put


class GrainRecorder(Recorder):
    """Records a :class:`GrainExchangeProblem` at its output times.

    Profiles of the grains ([class, isotope, cell] rows of each rank) stay on their ranks and
    are written collectively into ``profiles/concentration`` and ``profiles/delta_permil``.

    Parameters
    ----------
    problem : GrainExchangeProblem
    """

    PROFILED = ("grains",)

    #: ensembles larger than this save profiles only at the start and the end
    MAX_PROFILED_MEMBERS = 64

    def __init__(self, problem):
        self.problem = problem
        self.lead = problem.members[0]
        taus = set([1.0])
        profile_taus = set([0.0, 1.0])
        # per-member profile times would multiply the TS restarts of a large ensemble
        keep_profiles = len(problem.members) <= self.MAX_PROFILED_MEMBERS
        series = set()
        for m in problem.members:
            out = m.deck["output"]
            series.update(np.linspace(0.0, 1.0, out["series_points"])[1:].tolist())
            extra = [tau for T in out["temperatures_C"] for tau in m.path.tau_at(T)]
            extra += [t / m.path.duration_Myr for t in out["times_Myr"]]
            taus.update(extra)
            if keep_profiles:
                profile_taus.update(extra)
        if self.lead.deck["output"]["series_exact"]:
            taus |= series
        else:       # between the exact stops (profiles, the end), from the dense output
            self.interpolated_times = np.array(sorted(series - taus))
        taus.discard(0.0)
        self.times = np.array(sorted(taus))
        self.profile_times = np.array(sorted(profile_taus))
        self.series = {k: [] for k in ("tau", "Delta_permil", "Delta_measured_permil", "T_apparent_C",
                                       "T_C", "phase_mean", "inventory")}
        self.profiles = {k: [] for k in ("tau", "boundary")}
        self.local_profiles = []

    # -------------------------------------------------------------- driver interface
    def record(self, tau, u):
        """Record diagnostics (and profiles where due) at ``tau``. Collective."""
        p = self.problem
        self.record_interpolated([tau], np.asarray(u)[None])      # the series row: one stacked state
        if np.any(np.isclose(self.profile_times, tau, rtol=0, atol=1e-12)):
            # grain profiles stay split over the ranks (written collectively); the boundary
            # values are one number per isotope and member, gathered
            self.keep_profile(u)
            boundary = p.gather_boundary(u)
            self.profiles["tau"].append(float(tau))
            if boundary is not None:
                self.profiles["boundary"].append(boundary)

    def record_interpolated(self, times, states):
        """Record every row of ``states`` at ``times`` with one vectorised diagnostic pass
        (at 121 series points in a 4096-member sweep, or 50 000 in one run, a call per
        sample cost ~0.15 ms of Python each). Collective."""
        self.record_sampled(times, self.problem.functionals(states))

    def sample_values(self, tau, u):
        """The problem's recorded functionals and their rates (see the base class). Collective."""
        return self.problem.functional_rates(tau, u)

    def record_sampled(self, times, values):
        """Record ``times`` from the problem's functionals ``values`` (len(times), nf). Collective."""
        p = self.problem
        h = p.headline_of(np.asarray(times, dtype=float), values)
        inventory = p.inventory_of(values)
        s = self.series
        s["tau"] += [float(t) for t in times]
        for key in ("Delta_permil", "Delta_measured_permil", "T_apparent_C", "T_C"):
            s[key] += list(h[key])
        s["phase_mean"] += list(h["phase_means"])
        s["inventory"] += list(inventory)

    def describe(self, tau):
        m = self.lead
        return (f"t = {m.path.t_Myr(tau):.6g} of {m.path.duration_Myr:.6g} Myr, "
                f"T = {m.path.T_C(tau):.2f} °C")

    def describe_dt(self, dtau):
        return f"{dtau * self.lead.path.duration_Myr:.3g} Myr"

    # -------------------------------------------------------------- results
    def headline(self):
        """Final headline numbers of every member (docs/user-guide.md, 'Outputs')."""
        p = self.problem
        members = []
        delta = self.series["Delta_permil"][-1]
        measured = self.series["Delta_measured_permil"][-1]
        for mi, m in enumerate(p.members):
            heavy = [n for n in range(p.niso) if n != m.ref]
            d = {
                "Delta_permil": float(delta[mi, heavy[0]]),
                "Delta_measured_permil": float(measured[mi, heavy[0]]),
                "T_apparent_C": float(self.series["T_apparent_C"][-1][mi]),
                "T_C": float(self.series["T_C"][-1][mi]),
                "closure_temperature_C": float(self.series["T_apparent_C"][-1][mi]),
                "Delta_equilibrium_at_T_C_permil": float(p.equilibrium_delta(m.path.end_C, mi)[heavy[0]]),
                "pair": [p.phases[k] for k in m.pair],
                "isotopes": f"{p.isotopes[heavy[0]]}/{p.isotopes[m.ref]}",
            }
            if len(heavy) > 1:
                d["Delta_permil_by_isotope"] = {f"{p.isotopes[n]}/{p.isotopes[m.ref]}": float(delta[mi, n])
                                                for n in heavy}
            members.append(d)
        return members

    #: scalar headline keys of a member and their units (sweeps write these per member)
    UNITS = {"Delta_permil": "permil", "Delta_measured_permil": "permil", "T_apparent_C": "degC",
             "T_C": "degC", "tau": "1", "t_Myr": "Myr"}

    @classmethod
    def flat(cls, member):
        """The scalar headline results of a member."""
        return {k: member[k] for k in ("Delta_permil", "Delta_measured_permil", "T_apparent_C", "T_C")}

    @classmethod
    def unit(cls, key):
        return cls.UNITS.get(key, "")

    def member_series(self, k):
        """Member ``k``'s series against its output times; Delta of the first isotope that is
        not the reference."""
        if getattr(self, "_arrays", None) is None or len(self._arrays["tau"]) != len(self.series["tau"]):
            self._arrays = {key: np.asarray(self.series[key]) for key in
                            ("tau", "T_C", "Delta_permil", "Delta_measured_permil", "T_apparent_C")}
        ref = self.problem.members[k].ref
        heavy = 1 if ref == 0 else 0
        out = {key: (v if key == "tau" else v[:, k]) for key, v in self._arrays.items()}
        out["t_Myr"] = out["tau"] * self.problem.members[k].path.duration_Myr
        for key in ("Delta_permil", "Delta_measured_permil"):
            out[key] = out[key][:, heavy]
        return out

    def end_profiles(self):
        """Each member's grain profiles at the end of its path (``output.sweep_profiles``):
        ``concentration`` and ``delta_permil`` [isotope, class, cell] and ``r_um`` [class, cell],
        as a run's last ``profiles/*`` entry holds them. Collective: each rank's classes are
        gathered on rank 0."""
        p = self.problem
        if not self.lead.deck["output"]["sweep_profiles"]:
            return None
        parts = p.comm.gather(self.local_profiles[-1]["grains"], root=0)   # [class, isotope, cell] each
        if p.comm.rank != 0:
            return None
        grains = np.concatenate(parts, axis=0).transpose(1, 0, 2)            # [isotope, class, cell]
        bulk = self.lead.deck["element"]["bulk_concentration"]
        out, c0 = [], 0
        for m in p.members:
            g = grains[:, c0:c0 + len(m.classes)]
            c0 += len(m.classes)
            with np.errstate(divide="ignore", invalid="ignore"):
                delta = 1000.0 * (g / g[m.ref:m.ref + 1] - 1.0)
            radii_um = np.array([c["radius_m"] * 1e6 for c in m.classes])
            out.append({"concentration": g * bulk, "delta_permil": delta,
                        "r_um": np.outer(radii_um, p.grid.centres)})
        return out

    @classmethod
    def profile_attrs(cls, deck):
        axes = ["member", "isotope", "class", "cell"]
        return {"concentration": (deck["element"]["unit"], "concentration of each isotope at the end of the path, "
                                  "scaled by the bulk [member, isotope, class, cell]", axes),
                "delta_permil": ("permil", "delta of each isotope relative to the reference isotope and the bulk "
                                 "rock at the end of the path [member, isotope, class, cell]", axes),
                "r_um": ("um", "radius of the cell centres of each class [member, class, cell]",
                         ["member", "class", "cell"])}

    @classmethod
    def profile_axes(cls, deck):
        return {"isotope": list(deck["isotopes"]["names"])}

    @staticmethod
    def report_lines(member):
        """One line for the terminal from a member's headline."""
        return [f"Delta({member['isotopes']}) {member['pair'][0]}-{member['pair'][1]} = "
                f"{member['Delta_permil']:.4f} permil at T = {member['T_C']:.1f} °C; "
                f"T_app (closure) = {member['T_apparent_C']:.1f} °C"]

    def write_results(self, h5):
        """Write the series and the small profile data into an open h5py File (rank 0 only;
        the grain profiles follow, collectively, in :meth:`write_fields`). Axes: member, then
        time (or profile), then the rest (docs/outputs.md)."""
        p = self.problem
        tau = np.asarray(self.series["tau"])
        g = h5.create_group("series")
        g.attrs["description"] = "exact values at the output times (no interpolation)"
        # recorded [time, member, ...]; written [member, time, ...] (the values are not touched)
        T = np.asarray(self.series["T_C"]).T
        delta = np.asarray(self.series["Delta_permil"]).transpose(1, 0, 2)
        measured = np.asarray(self.series["Delta_measured_permil"]).transpose(1, 0, 2)
        put(g, "tau", tau, "1", "time / duration of the path [time]", dims=["time"])
        put(g, "t_Myr", np.outer([m.path.duration_Myr for m in p.members], tau), "Myr",
            "elapsed time [member, time]", dims=["member", "time"])
        put(g, "T_C", T, "degC", "temperature [member, time]", dims=["member", "time"])
        put(g, "Delta_permil", delta, "permil",
            "1000 ln(R_1/R_2) of the pair, R = bulk isotope/reference [member, time, isotope]",
            dims=["member", "time", "isotope"])
        put(g, "Delta_measured_permil", measured, "permil",
            "Delta as measured on mineral separates (cores only, contamination; see the deck's "
            "measurement table) [member, time, isotope]", dims=["member", "time", "isotope"])
        put(g, "T_apparent_C", np.asarray(self.series["T_apparent_C"]).T, "degC",
            "temperature recorded by the bulk elemental ratio of the pair [member, time]",
            dims=["member", "time"])
        put(g, "phase_mean", np.asarray(self.series["phase_mean"]).transpose(2, 0, 1, 3), "relative to bulk rock",
            "volume-averaged concentration [member, time, isotope, phase]",
            dims=["member", "time", "isotope", "phase"])
        put(g, "inventory", np.asarray(self.series["inventory"]).transpose(2, 0, 1), "relative to bulk rock",
            "total of each isotope in grains and boundary (conserved) [member, time, isotope]",
            dims=["member", "time", "isotope"])
        labels(g, "isotope", p.isotopes, "isotope names")
        labels(g, "phase", p.phases, "phase names")
        coordinates(g, "tau", "t_Myr", "T_C")
        pr = h5.create_group("profiles")
        ptau = np.asarray(self.profiles["tau"])
        put(pr, "tau", ptau, "1", "normalised times of the profiles [profile]", dims=["profile"])
        put(pr, "t_Myr", np.outer([m.path.duration_Myr for m in p.members], ptau), "Myr",
            "elapsed time of each profile [member, profile]", dims=["member", "profile"])
        put(pr, "T_C", np.array([[m.path.T_C(t) for t in ptau] for m in p.members]).reshape(len(p.members), -1),
            "degC", "temperature of each profile [member, profile]", dims=["member", "profile"])
        put(pr, "r_over_R", p.grid.centres, "1", "cell centres, radius / grain radius [cell]", dims=["cell"])
        radii = np.asarray([c["radius_m"] * 1e3 for m in p.members for c in m.classes])
        put(pr, "radius_mm", radii, "mm", "grain radius of each class [class]", dims=["class"])
        put(pr, "r_um", np.outer(radii * 1e3, p.grid.centres), "um",
            "radius of the cell centres of each class [class, cell]", dims=["class", "cell"])
        put(pr, "class_member", [mi for mi, m in enumerate(p.members) for _ in m.classes], "1",
            "member of each class [class]", dims=["class"])
        labels(pr, "class_phase", [p.phases[c["phase"]] for m in p.members for c in m.classes], "phase of each class")
        mark(pr["class_phase"], ["class"])
        boundary = np.asarray(self.profiles["boundary"])      # recorded [profile, isotope, member]
        put(pr, "boundary", boundary.transpose(2, 0, 1) if boundary.ndim == 3 else boundary,
            "relative to bulk rock", "grain-boundary concentration [member, profile, isotope]",
            dims=["member", "profile", "isotope"])
        labels(pr, "isotope", p.isotopes, "isotope names")
        coordinates(pr, "tau", "t_Myr", "T_C", "r_over_R", "radius_mm", "r_um", "class_member", "class_phase")
        pr.attrs["class_phase"] = [p.phases[c["phase"]] for m in p.members for c in m.classes]
        pr.attrs["class_member"] = [mi for mi, m in enumerate(p.members) for _ in m.classes]
        h5.attrs["isotopes"] = p.isotopes
        h5.attrs["phases"] = p.phases
        h5.attrs["seconds_per_Myr"] = SECONDS_PER_MYR

    def write_fields(self, f):
        """Grain profiles, each rank its own classes: [profile, isotope, class, cell]. Collective."""
        p = self.problem
        lead = self.lead
        grains = self.profile_stack("grains").transpose(1, 2, 0, 3)   # (profile, iso, class, cell)
        shape = (grains.shape[0], p.niso, p.ncls_global, p.n)
        start = self.layout()["grains"].start
        bulk = lead.deck["element"]["bulk_concentration"]
        dims = mark_attrs(["profile", "isotope", "class", "cell"])
        f.slab("profiles/concentration", Slab(shape, start, grains * bulk, axis=2),
               units=lead.deck["element"]["unit"],
               description="concentration of each isotope scaled by the bulk [profile, isotope, class, cell]",
               **dims)
        ref = lead.ref
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = 1000.0 * (grains / grains[:, ref:ref + 1] - 1.0)
        f.slab("profiles/delta_permil", Slab(shape, start, delta, axis=2), units="permil",
               description="delta of each isotope relative to the reference isotope and the bulk rock "
                           "(paper eq. 13) [profile, isotope, class, cell]", **dims)
