"""The grain-exchange problem: spherical grains exchanging isotopes through a grain boundary.

Unknowns, on the normalised clock tau = t / duration of each member:

- c[n, j, i]: concentration of isotope n in cell i of grain class j, divided by the bulk-rock
  concentration of that isotope (so every isotope is O(1) and delta = 1000 (c_h/c_ref - 1));
- b[n, m]: grain-boundary concentration of isotope n in ensemble member m.

Residuals (the IFunction, F(tau, u, u') = 0):

    grain cell:  c' - kappa_j (L c)_i                      kappa_j = duration D_j^n(T) / R_j^2
    boundary:    [v_b > 0] b' + s_m sum_j w_j (K_j b - c_j,rim),
                 w_j = phi_j kappa_j rim,  s_m = 1/v_b if v_b > 0 else 1

The boundary row is the mass balance (paper eq. 12): with v_b = 0 it is the algebraic
constraint that the net flux into the grains vanishes (an index-1 DAE).

Parallel layout: each rank holds a contiguous range of classes (see
:func:`isosim.parallel.split_classes`) and the boundary unknowns of the members whose first
class it holds. Members whose classes span ranks exchange their boundary values and flux
sums with one allreduce per evaluation.
"""

import numpy as np
from mpi4py import MPI

from ..discretization.bases import make_basis
from ..discretization.spherical import SphereGrid
from ..io.distributed import Slab
from ..parallel import split_classes
from ..physics import grain_exchange as phys
from ..physics.constants import ZERO_C
from ..physics.paths import PathBatch, path_from_deck
from ..physics.populations import size_classes
from .base import MATRIX_FREE, Problem
from .state_check import first_unphysical, member_text, value_text


class Member:
    """One rock (one deck) resolved into per-class arrays."""

    def __init__(self, deck):
        self.deck = deck
        iso = deck["isotopes"]
        self.isotopes = list(iso["names"])
        self.masses = np.array(iso["masses_amu"])
        ref = iso["reference"] or self.isotopes[0]
        self.ref = self.isotopes.index(ref)
        self.path = path_from_deck(deck["temperature"])
        self.v_b = deck["grain_boundary"]["volume_fraction"]
        self.phases = list(deck["phases"])
        self.host = next(p for p, v in deck["phases"].items() if v["host"])
        pair = deck["output"]["pair"] or [next(p for p in self.phases if p != self.host), self.host]
        self.pair = [self.phases.index(p) for p in pair]
        niso = len(self.isotopes)
        rows = []
        for k, (name, ph) in enumerate(deck["phases"].items()):
            offs = ph["lnK_offset_K2"] or [0.0] * niso
            for radius_mm, frac in zip(*size_classes(ph)):
                rows.append(dict(phase=k, phi=ph["modal_fraction"] * frac, radius_m=radius_mm * 1e-3,
                                 D0=ph["D0_m2_s"], E=ph["E_kJ_mol"] * 1e3, beta=ph["beta"],
                                 A=ph["lnK_A"], B=ph["lnK_B"], C=ph["lnK_C"], offsets=offs))
        self.classes = rows
        meas = deck["measurement"]
        self.core_fraction = meas["core_fraction"]
        self.contamination = None
        if meas["contamination_fraction"] > 0:
            self.contamination = (self.phases.index(meas["contaminant_phase"]),
                                  self.phases.index(meas["contaminated_phase"]),
                                  meas["contamination_fraction"])
        self.lnK_coeffs = np.array([[deck["phases"][p][k] for k in ("lnK_A", "lnK_B", "lnK_C")]
                                    for p in self.phases])


class GrainExchangeProblem(Problem):
    """A batch of grain-exchange members distributed over ``comm``.

    Parameters
    ----------
    decks : list of dict
        Resolved decks; they must share isotopes, phases and grid.
    comm : mpi4py communicator

    Notes
    -----
    Construction is collective only in that every rank computes the same layout.
    """

    name = "grain_exchange"
    #: a MATPYTHON Jacobian with the exact bordered solve as its preconditioner
    kind = MATRIX_FREE
    #: the equations are linear in the unknowns: TS uses a single exact linear solve per stage
    linear = True

    @staticmethod
    def group_key(deck):
        """Members with equal keys can be integrated as one vectorised system."""
        import json
        return json.dumps([deck["grid"], deck["isotopes"]["names"], list(deck["phases"]), deck["solver"],
                           deck["ensemble"]["mode"]], sort_keys=True)

    @staticmethod
    def stiffness_key(deck):
        """log10 of the fastest phase's D t / R^2 over the path at its start temperature:
        members with similar keys have their transients at similar normalised times.

        The numbers :class:`Member` gives its classes, computed without building one (sorting
        a sweep calls this once per member: a Member each was half of sorting 4096)."""
        path = path_from_deck(deck["temperature"])
        T0 = path.T_K(0.0)
        keys = []
        for ph in deck["phases"].values():
            D = phys.diffusivity(T0, ph["D0_m2_s"], ph["E_kJ_mol"] * 1e3, 0.0, 1.0, 1.0)
            keys += [np.log10(path.duration_s * D / (radius_mm * 1e-3) ** 2) for radius_mm in size_classes(ph)[0]]
        return max(keys)

    def __init__(self, decks, comm):
        self.comm = comm
        self.members = [Member(d) for d in decks]
        first = self.members[0]
        self.isotopes = first.isotopes
        self.phases = first.phases
        self.niso = len(self.isotopes)
        grid = decks[0]["grid"]
        self.grid = SphereGrid(grid["cells"], grid["stretch"])
        self.n = self.grid.cells
        #: cell values or eigenvector amplitudes of the grain unknowns (see discretization.bases)
        self.basis = make_basis(self.grid, grid["basis"])
        for m in self.members[1:]:
            if m.isotopes != first.isotopes or m.phases != first.phases:
                raise ValueError("ensemble members must share isotopes and phases")

        # ---- global class table ------------------------------------------------------
        cls = [(mi, c) for mi, m in enumerate(self.members) for c in m.classes]
        self.ncls_global = len(cls)
        self.nmem = len(self.members)
        member_of_class = np.array([mi for mi, _ in cls])
        starts = split_classes(member_of_class, comm.size)
        self.class_starts = starts
        c0, c1 = starts[comm.rank], starts[comm.rank + 1]
        local = cls[c0:c1]
        self.ncls = len(local)
        mem_of_local = np.array([mi for mi, _ in local], dtype=int)
        self.mem_local = np.unique(mem_of_local)
        self.cls_mem = np.searchsorted(self.mem_local, mem_of_local)
        # classes are contiguous per member and per rank: a member is split when its first
        # and last classes live on different ranks; it is owned by the rank of its first class
        first = np.searchsorted(member_of_class, np.arange(self.nmem))
        #: index of each member's first class in the class table
        self.first_class = first
        last = np.searchsorted(member_of_class, np.arange(self.nmem), side="right") - 1
        owner = np.searchsorted(starts, first, side="right") - 1
        self.own_members = np.flatnonzero(owner == comm.rank)
        self.own_in_local = np.searchsorted(self.mem_local, self.own_members)
        self.split_members = np.flatnonzero(owner != np.searchsorted(starts, last, side="right") - 1)
        is_split = np.isin(self.mem_local, self.split_members)
        self.split_local = np.flatnonzero(is_split)                     # positions in mem_local
        self.split_slot = np.searchsorted(self.split_members, self.mem_local[is_split])

        # ---- per-class parameters (local) --------------------------------------------
        def col(key):
            return np.array([c[key] for _, c in local], dtype=float)

        self.phi = col("phi")
        self.radius = col("radius_m")
        self.D0, self.E, self.beta = col("D0"), col("E"), col("beta")
        self.A, self.B, self.C = col("A"), col("B"), col("C")
        self.phase_of_class = np.array([c["phase"] for _, c in local], dtype=int)
        self.offsets = np.array([c["offsets"] for _, c in local], dtype=float).T.reshape(self.niso, self.ncls)
        masses = np.array([self.members[m].masses for m in mem_of_local]).T.reshape(self.niso, self.ncls)
        refm = np.array([self.members[m].masses[self.members[m].ref] for m in mem_of_local])
        self.mass_factor = (refm[None, :] / masses) ** self.beta[None, :]     # (niso, ncls)
        self.duration = np.array([self.members[m].path.duration_s for m in mem_of_local])
        self.v_b = np.array([self.members[m].v_b for m in self.mem_local])
        self.row_scale = np.where(self.v_b > 0, 1.0 / np.where(self.v_b > 0, self.v_b, 1.0), 1.0)
        #: 1 for boundaries with a volume (a u' term in their row), 0 for algebraic ones
        self.boundary_mass = (self.v_b > 0).astype(float)
        self.nmem_local = self.mem_local.size
        self.paths = PathBatch([self.members[m].path for m in self.mem_local])
        self.paths_all = PathBatch([m.path for m in self.members])
        # per member: phase pair and reference isotope, ln K of the pair, start T, contamination
        self._pairs = np.array([[m.pair[0], m.pair[1], m.ref] for m in self.members], dtype=int)
        self._pair_lnK = np.array([m.lnK_coeffs[m.pair[0]] - m.lnK_coeffs[m.pair[1]] for m in self.members])
        self._T0_K = np.array([m.path.T_K(0.0) for m in self.members])
        self._contaminated = [(mi, m.contamination) for mi, m in enumerate(self.members) if m.contamination]
        self.nblocks = self.niso * self.ncls
        self.group = (np.arange(self.niso)[:, None] * self.nmem_local + self.cls_mem[None, :]).ravel()
        self.ngroups = self.niso * self.nmem_local
        self.local_size = self.nblocks * self.n + self.niso * self.own_members.size
        self.global_size = self.niso * (self.ncls_global * self.n + self.nmem)
        self._factors = None
        self._checks = 0
        self._coeff_cache = None
        self._cores_sampled = any(m.core_fraction < 1.0 for m in self.members)

    # ------------------------------------------------------------------ coefficients
    def coefficients(self, tau):
        """kappa (niso, ncls) and K (niso, ncls) of the local classes at ``tau`` (read-only
        arrays: the last ones are reused, as each stage asks for them twice at one tau)."""
        if self._coeff_cache is not None and self._coeff_cache[0] == tau:
            return self._coeff_cache[1]
        T = self.paths.T_K(tau)[self.cls_mem]
        D = phys.diffusivity(T, self.D0, self.E, 0.0, 1.0, 1.0)
        kappa = self.duration * D / self.radius**2 * self.mass_factor
        K = np.exp(phys.ln_partition(T, self.A, self.B, self.C, self.offsets))
        kappa.flags.writeable = K.flags.writeable = False
        self._coeff_cache = (tau, (kappa, K))
        return kappa, K

    # ------------------------------------------------------------------ state layout
    def split(self, u):
        """Views (grains (n, niso, ncls), owned boundary (niso, nown)) of a local array.

        The grain part holds the basis coordinates (cell values or eigenvector amplitudes)
        in cell/mode-major layout: every sweep over cells is a contiguous operation on all
        blocks."""
        g = u[: self.nblocks * self.n].reshape(self.n, self.niso, self.ncls)
        b = u[self.nblocks * self.n:].reshape(self.niso, self.own_members.size)
        return g, b

    def _reduce_split(self, local_vals):
        """Complete per-(isotope, local member) sums for members spread over ranks.

        ``local_vals`` (niso, nmem_local) holds this rank's partial sums (or, for boundary
        values, the owner's value and zeros elsewhere); returns the full sums. Collective.
        """
        if self.split_members.size == 0:
            return local_vals
        buf = np.zeros((self.niso, self.split_members.size))
        buf[:, self.split_slot] = local_vals[:, self.split_local]
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        out = local_vals.copy()
        out[:, self.split_local] = buf[:, self.split_slot]
        return out

    def _member_sums(self, values):
        """Sum per-class values (niso, ncls) over each local member's classes -> (niso, nmem_local)."""
        return np.bincount(self.group, values.ravel(), minlength=self.ngroups).reshape(self.niso, -1)

    def boundary_values(self, b_owned):
        """Boundary concentration of every local member (niso, nmem_local). Collective."""
        full = np.zeros((self.niso, self.nmem_local))
        full[:, self.own_in_local] = b_owned
        return self._reduce_split(full)

    def absolute_tolerances(self, rtol, atol):
        """Per-unknown absolute tolerances of the step-size control (local).

        Grain unknowns: the basis's (see ``coordinate_tolerances`` in discretization.bases).
        Algebraic boundaries (v_b = 0) get 1e300: they follow the grains, and their stage
        "derivatives" mean nothing to the error estimate.
        """
        tol = np.empty(self.local_size)
        g, b = self.split(tol)
        g[:] = self.basis.coordinate_tolerances(rtol, atol)[:, None, None]
        b[:] = np.where(self.boundary_mass[self.own_in_local] == 0, 1e300, atol)[None, :]
        return tol

    #: with eigenvector unknowns, every this many checks look at every cell (a transform of
    #: the whole state, ~30 residual-like passes); the others at the rim cells only, where
    #: steep gradients (and so any undershoot) are, and at the finiteness of every unknown
    FULL_CHECK_EVERY = 16

    def check_state(self, u):
        """The first non-finite or negative concentration of a local state (they are relative
        to the bulk rock: positive and O(1)), named by isotope, phase, class, member and cell;
        None if there is none. Local."""
        g, b = self.split(u)
        if self.basis.name != "cells":
            self._checks += 1
            if (self._checks % self.FULL_CHECK_EVERY and g.size and np.isfinite(g.min()) and np.isfinite(g.max())
                    and first_unphysical(self.basis.rim(g)) is None and first_unphysical(b) is None):
                return None
        g = self.basis.to_cells(g)
        at = first_unphysical(g)
        if at is not None:
            i, n, j = at
            mem = int(self.mem_local[self.cls_mem[j]])
            klass = int(self.class_starts[self.comm.rank]) + j - int(self.first_class[mem])   # within its member
            return (f"concentration of {self.isotopes[n]} in {self.phases[self.phase_of_class[j]]} grain "
                    f"class {klass}{member_text(mem, self.nmem)}, cell {i + 1} of {self.n} counted from the "
                    f"centre, is {value_text(g[at])}")
        at = first_unphysical(b)
        if at is not None:
            return (f"grain-boundary concentration of {self.isotopes[at[0]]}"
                    f"{member_text(int(self.own_members[at[1]]), self.nmem)} is {value_text(b[at])}")
        return None

    # ------------------------------------------------------------------ TS callbacks
    def initial_state(self, u):
        """Equilibrium at the start temperature, every grain uniform (paper eqs 2–6)."""
        kappa, K = self.coefficients(0.0)
        phiK = self._reduce_split(self._member_sums(self.phi * K))
        b = 1.0 / (phiK + self.v_b[None, :])
        g, bo = self.split(u)
        g[:] = self.basis.uniform()[:, None, None] * (K * b[:, self.cls_mem])[None]
        bo[:] = b[:, self.own_in_local]

    def _diffusion(self, g, b_owned, kappa, K, out):
        """kappa (L c) in every cell (into ``out``), and the boundary rows' flux sums, for
        grains ``g`` and owned boundary values ``b_owned``. The same operator serves the
        residual and J x (the equations are linear). Collective (split members)."""
        outside = self._outside(b_owned, K)
        self.basis.apply(g, outside, kappa, out)
        return self._border(outside - self.basis.rim(g), kappa)

    def _outside(self, b_owned, K):
        """K b at the rim of every local class (niso, ncls). Collective (split members)."""
        bfull = self.boundary_values(b_owned)
        return K * bfull[:, self.cls_mem]

    def _border(self, jump, kappa):
        """The owned boundary rows' flux sums (niso, nown) from each class's jump K b - c_rim
        at its rim. Collective (split members)."""
        flux = self.phi * kappa * self.grid.rim * jump                # into each grain
        sums = self._reduce_split(self._member_sums(flux)) * self.row_scale[None, :]
        return sums[:, self.own_in_local]

    def ifunction(self, tau, u, udot, f):
        """Residual F(tau, u, u') on local arrays. Collective (split members)."""
        kappa, K = self.coefficients(tau)
        g, bo = self.split(u)
        gd, bd = self.split(udot)
        fg, fb = self.split(f)
        border = self._diffusion(g, bo, kappa, K, out=fg)
        np.subtract(gd, fg, out=fg)
        fb[:] = border + self.boundary_mass[self.own_in_local][None, :] * bd

    def ijacobian(self, tau, u, shift):
        """Factor J = shift dF/du' + dF/du exactly (bordered block elimination)."""
        kappa, K = self.coefficients(tau)
        w = (self.phi * kappa * self.grid.rim * self.row_scale[self.cls_mem]).ravel()
        self._factors = self.basis.factor(kappa.ravel(), shift, (-kappa * K).ravel(), -w, self.group, self.ngroups)
        self._border_diag_partial = self._member_sums(w * K.ravel())
        self._border_shift = shift * self.boundary_mass
        self._jac = (kappa, K, shift)

    def jacobian_mult(self, x, y):
        """y = J x with the last factored Jacobian (for Krylov methods and tests). Collective."""
        kappa, K, shift = self._jac
        g, bo = self.split(x)
        yg, yb = self.split(y)
        border = self._diffusion(g, bo, kappa, K, out=yg)
        yg[:] = shift * g - yg
        yb[:] = border + self._border_shift[self.own_in_local][None, :] * bo

    def solve_jacobian(self, rhs, x):
        """x = J^-1 rhs exactly, O(N). Collective (split members)."""
        fac = self._factors
        rg, rb = self.split(rhs)
        xg, xb = self.split(x)
        w, cf, cz = fac.partial_schur(rg.reshape(self.n, self.nblocks), out=xg.reshape(self.n, self.nblocks))
        cf = cf.reshape(self.niso, self.nmem_local)
        cz = cz.reshape(self.niso, self.nmem_local)
        d = self._border_diag_partial.copy()
        g = np.zeros((self.niso, self.nmem_local))
        own = self.own_in_local
        g[:, own] = rb
        # owners add the border's own terms once; the allreduce completes the sums
        d_own = np.zeros_like(d)
        d_own[:, own] = self._border_shift[own][None, :]
        y = self._reduce_split(g - cf) / self._reduce_split(d - cz + d_own)
        fac.back_substitute(w, y.ravel())                        # in place: w is xg
        xb[:] = y[:, own]

    # ------------------------------------------------------------------ diagnostics
    def _core_weights(self):
        """Per-class cell weights averaging over the sampled core (measurement.core_fraction)."""
        if not hasattr(self, "_core_w"):
            f = self.grid.faces
            w = np.empty((self.ncls, self.n))
            for j, m in enumerate(self.mem_local[self.cls_mem]):
                rc = self.members[m].core_fraction
                vol = np.diff(np.minimum(f, rc) ** 3)
                w[j] = vol / rc**3
            self._core_w = self.basis.weights_in_basis(w)
        return self._core_w

    def _stack(self, U):
        """Grain coordinates (k, n, niso, ncls) and owned boundary values (k, niso, nown) of a
        stack of k local states U (k, local_size)."""
        k = U.shape[0]
        return (U[:, : self.nblocks * self.n].reshape(k, self.n, self.niso, self.ncls),
                U[:, self.nblocks * self.n:].reshape(k, self.niso, self.own_members.size))

    def _class_means(self, g, core=False):
        """Mean concentration of every local class (k, niso, ncls), over whole grains or the
        sampled cores."""
        if not self.ncls:
            return np.zeros((g.shape[0], self.niso, 0))
        if core:
            return np.einsum("kcnj,jc->knj", g, self._core_weights())
        return np.tensordot(self.basis.mean_row, g, axes=(0, 1))

    def _sum_by(self, key, nkeys, values):
        """Sums of per-class ``values`` (k, niso, ncls) over classes with equal ``key`` (ncls,)
        -> (k, niso, nkeys): one bincount over every (state, isotope) at once."""
        k = values.shape[0]
        keys = key[None, None, :] + nkeys * np.arange(k * self.niso).reshape(k, self.niso, 1)
        sums = np.bincount(keys.ravel(), values.ravel(), minlength=k * self.niso * nkeys)
        return sums.astype(float, copy=False).reshape(k, self.niso, nkeys)   # (int when no classes)

    def phase_means(self, U, core=False):
        """Volume-weighted mean concentration of each isotope in each phase of each member,
        over whole grains or (``core``) over the sampled cores, for a stack of k local states
        U (k, local_size).

        Returns an array (k, niso, nmem, nphase) on every rank. Collective.
        """
        g, _ = self._stack(U)
        return self._phase_means_of(self._class_means(g, core))

    def _phase_means_of(self, class_means):
        """Phase means (k, niso, nmem, nphase) from the local classes' means (k, niso, ncls). Collective."""
        k, nph = class_means.shape[0], len(self.phases)
        key = self.mem_local[self.cls_mem] * nph + self.phase_of_class
        acc = np.zeros((2, k, self.niso, self.nmem * nph))
        acc[0] = self._sum_by(key, self.nmem * nph, self.phi * class_means)
        acc[1] = np.bincount(key, self.phi, minlength=self.nmem * nph)
        if self.comm.size > 1:
            self.comm.Allreduce(MPI.IN_PLACE, acc, op=MPI.SUM)
        return (acc[0] / acc[1]).reshape(k, self.niso, self.nmem, nph)

    # Every record (Delta, T_app, phase means, inventories) is a function of a few linear
    # functionals of the state: each class's mean (over the whole grain and over its sampled
    # core) and the boundary values. Between the steps the driver interpolates those (a few
    # numbers per class) instead of the whole state (every cell of every class).
    def functionals(self, U):
        """The linear functionals of k local states U (k, local_size) that the records need,
        as one array (k, nf): the local classes' means (niso, ncls), their sampled cores'
        means (niso, ncls; only if a member samples cores) and the owned boundary values
        (niso, nown). Local."""
        g, bo = self._stack(U)
        k = U.shape[0]
        parts = [self._class_means(g)]
        if self._cores_sampled:
            parts.append(self._class_means(g, core=True))
        parts.append(bo)
        return np.concatenate([q.reshape(k, -1) for q in parts], axis=1)

    def _unpack(self, F):
        """(class means, core means or None, owned boundary values) of functionals F (k, nf)."""
        k, m = F.shape[0], self.niso * self.ncls
        means = F[:, :m].reshape(k, self.niso, self.ncls)
        cores = F[:, m:2 * m].reshape(k, self.niso, self.ncls) if self._cores_sampled else None
        return means, cores, F[:, (2 if self._cores_sampled else 1) * m:].reshape(k, self.niso, -1)

    def functional_rates(self, tau, u):
        """:meth:`functionals` of the local state ``u`` at ``tau`` and their tau-derivatives
        along the equations: ``(values, rates)``, each (nf,). A boundary without volume
        (v_b = 0) gets rate 0: its value enters no record but the inventory, with weight
        v_b = 0. Collective (split members)."""
        kappa, K = self.coefficients(tau)
        g, bo = self.split(u)
        outside = self._outside(bo, K)
        jump = outside - self.basis.rim(g)
        # the class means' rates from the rim exchange kappa rim (K b - c_rim) itself (every face
        # flux inside a grain cancels in its volume sum; see discretization.spherical), not as
        # the mean of every cell's rate: in a stiff grain those are large terms that cancel
        parts = [kappa * self.grid.rim * jump]
        if self._cores_sampled:           # a core's rate needs every cell's: the whole right-hand side
            rate = np.empty((self.n, self.niso, self.ncls))
            self.basis.apply(g, outside, kappa, rate)
            parts.append(self._class_means(rate[None], core=True)[0])
        parts.append(-self._border(jump, kappa) * self.boundary_mass[self.own_in_local][None, :])  # v_b b' = -net flux
        return self.functionals(u[None])[0], np.concatenate([q.ravel() for q in parts])

    def inventory(self, U):
        """Total of each isotope per member, sum_j phi_j <c_j> + v_b b, for a stack of k local
        states U (k, local_size): (k, niso, nmem). Collective."""
        return self.inventory_of(self.functionals(U))

    def inventory_of(self, F):
        """:meth:`inventory` from the functionals F (k, nf) of the states. Collective."""
        means, _, bo = self._unpack(F)
        tot = self._sum_by(self.mem_local[self.cls_mem], self.nmem, self.phi * means)
        tot[:, :, self.own_members] += self.v_b[self.own_in_local] * bo
        if self.comm.size > 1:
            self.comm.Allreduce(MPI.IN_PLACE, tot, op=MPI.SUM)
        return tot

    def headline(self, tau, U):
        """Delta (permil), as modelled and as measured, T_app (degC) and T (degC) of every
        member at k times ``tau`` (k,) from the local states U (k, local_size) there.
        Collective. (See :meth:`headline_of`.)"""
        return self.headline_of(tau, self.functionals(U))

    def headline_of(self, tau, F):
        """:meth:`headline` from the functionals F (k, nf) of the states. Collective.

        Returns
        -------
        dict of ndarray
            ``Delta_permil`` and ``Delta_measured_permil`` (k, nmem, niso) with 0 for the
            reference isotope, ``T_apparent_C`` (k, nmem), ``T_C`` (k, nmem), ``phase_means``
            (k, niso, nmem, nphase).
        """
        class_means, core_means, _ = self._unpack(F)
        means = self._phase_means_of(class_means)                                 # (k, niso, nmem, nph)
        sampled = means
        if self._cores_sampled:
            sampled = self._phase_means_of(core_means)
        T = self.paths_all.T_K(tau) - ZERO_C                                    # (k, nmem)
        mem = np.arange(self.nmem)
        p1, p2, ref = self._pairs.T
        with np.errstate(divide="ignore", invalid="ignore"):
            lnr = np.log(means[:, :, mem, p1] / means[:, :, mem, p2])           # (k, niso, nmem)
            delta = np.swapaxes(1000.0 * (lnr - lnr[:, ref, mem][:, None, :]), 1, 2)
            sep = sampled.copy()                                                # mineral separates
            for mi, (src, into, f) in self._contaminated:
                sep[:, :, mi, into] = (1.0 - f) * sep[:, :, mi, into] + f * sep[:, :, mi, src]
            lns = np.log(sep[:, :, mem, p1] / sep[:, :, mem, p2])
            measured = np.swapaxes(1000.0 * (lns - lns[:, ref, mem][:, None, :]), 1, 2)
            A, B, C = self._pair_lnK.T
            tapp = phys.apparent_temperature(lnr[:, ref, mem], A, B, C, self._T0_K) - ZERO_C
        return {"Delta_permil": delta, "Delta_measured_permil": measured, "T_apparent_C": tapp,
                "T_C": T, "phase_means": means}

    def equilibrium_delta(self, T_C, member=0):
        """Equilibrium Delta (permil) of the member's pair at ``T_C``, per isotope."""
        m = self.members[member]
        T = np.asarray(T_C, dtype=float) + ZERO_C
        lnk = []
        for p in m.pair:
            ph = m.deck["phases"][self.phases[p]]
            offs = np.array(ph["lnK_offset_K2"] or [0.0] * self.niso)
            lnk.append(offs / T**2)
        d = 1000.0 * (lnk[0] - lnk[1])
        return d - d[m.ref]

    # ------------------------------------------------------------------ state I/O
    def gather_state(self, u):
        """Collect the state in rank-independent order on rank 0. Collective.

        Returns ``{"grains": (niso, ncls_global, n), "boundary": (niso, nmem)}`` on rank 0,
        None elsewhere.
        """
        g = self.basis.to_cells(self.split(u)[0])
        parts = self.comm.gather(np.moveaxis(g, 0, -1).copy(), root=0)
        boundary = self.gather_boundary(u)
        if self.comm.rank != 0:
            return None
        return {"grains": np.concatenate(parts, axis=1), "boundary": boundary}

    def gather_boundary(self, u):
        """Grain-boundary values (niso, nmem) on rank 0, None elsewhere. Collective."""
        _, bo = self.split(u)
        parts = self.comm.gather((bo.copy(), self.own_members), root=0)
        if self.comm.rank != 0:
            return None
        boundary = np.zeros((self.niso, self.nmem))
        for b, owned in parts:
            boundary[:, owned] = b
        return boundary

    @property
    def _grain_field(self):
        """Name of the grain unknowns in checkpoints: the basis coordinates themselves, so that
        a restart continues bitwise."""
        return "grains" if self.basis.name == "cells" else "grain_modes"

    def _grain_slab(self, name, g):
        return {name: Slab((self.ncls_global, self.niso, self.n), int(self.class_starts[self.comm.rank]),
                           np.transpose(g, (2, 1, 0)))}

    def state_fields(self, u):
        """This rank's rows of the state, for collective output (local, no communication).

        ``grains`` [class, isotope, cell] (or ``grain_modes`` [class, isotope, mode], the
        eigenvector amplitudes) split by classes, ``boundary`` [member, isotope] split by
        owning rank: rank-independent order, so any rank count can read them back.
        """
        g, bo = self.split(u)
        own = self.own_members
        return {**self._grain_slab(self._grain_field, g),
                "boundary": Slab((self.nmem, self.niso), int(own[0]) if own.size else 0, bo.T)}

    def profile_fields(self, u):
        """This rank's rows of the grain concentrations ``grains`` [class, isotope, cell]; with
        ``u`` None only their layout (uninitialised data: no transform to cells). Local."""
        if u is None:
            return self._grain_slab("grains", self.split(np.empty(self.local_size))[0])
        return self._grain_slab("grains", self.basis.to_cells(self.split(u)[0]))

    def load_state(self, read, u):
        """Fill the local array from rows read with ``read(name, lo, hi)`` (any writer rank count).
        Local: each rank reads its own rows."""
        g, bo = self.split(u)
        c0, c1 = self.class_starts[self.comm.rank], self.class_starts[self.comm.rank + 1]
        g[:] = np.transpose(read(self._grain_field, c0, c1), (2, 1, 0))
        own = self.own_members
        if own.size:   # owners are contiguous: a member belongs to the rank of its first class
            bo[:] = read("boundary", own[0], own[-1] + 1).T
