"""The thermal-diffusion capsule: isotopes and major components in a fixed T(x) (docs/models/capsule.md).

Unknowns: u_s(x_i) = c_s(x_i) / c_s(t = 0), every species relative to its uniform start,
on cells distributed over the ranks by a 1-D PETSc DMDA (``dof`` = species, interleaved).
The TS clock is tau = t / duration. The equations are linear with a constant operator,

    F(tau, u, u') = u' - duration M u = 0,

M the exponentially fitted finite-volume operator (:mod:`isosim.discretization.soret_fv`).
The residual is evaluated in flux form (ghost cells from the DMDA), which conserves every
species to round-off; the Jacobian shift I - duration M is assembled once as a parallel AIJ
matrix from the same face coefficients. Linear
systems are solved by GMRES with block Jacobi / ILU(0) per rank (ILU(0) of a tridiagonal
block is its exact LU, so one rank needs one iteration); ``-ksp_type``/``-pc_type`` override.

The steady state needs no time stepping: zero flux at every face gives u ∝ exp(-psi)
(see :meth:`CapsuleProblem.steady_state`).
"""

import json

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from ..deck.capsule import mass_term_per_amu
from ..io.distributed import Slab
from ..discretization.soret_fv import face_coefficients, flux_divergence, operator_rows
from ..physics import soret
from .base import ASSEMBLED, Problem
from .state_check import first_unphysical, value_text


class Species:
    """One transported species: an isotope of an element, or a major component."""

    def __init__(self, name, table, concentration0, dm_amu=0.0, mass_factor=1.0, mass_term=0.0):
        self.name = name
        #: uniform starting concentration (deck units): the scale of u = c / c0
        self.concentration0 = concentration0
        self.D = dict(D_m2_s=table["D_m2_s"], D0_m2_s=table["D0_m2_s"], E_kJ_mol=table["E_kJ_mol"])
        self.S = (table["S_T_per_C"], table["dS_T_dT_per_C2"], table["T_ref_C"], mass_term, dm_amu)
        self.mass_factor = mass_factor
        self.unit = table["unit"]

    def psi(self, T_C):
        return soret.thermal_potential(T_C, *self.S)

    def diffusivity(self, T_C):
        return soret.diffusivity(T_C, **self.D) * self.mass_factor


class Element:
    """An element's isotopes: indices into the species list and delta bookkeeping."""

    def __init__(self, name, table, first_index):
        self.name = name
        self.isotopes = list(table["isotopes"])
        self.masses = np.array(table["masses_amu"])
        self.ref = self.isotopes.index(table["reference"]) if table["reference"] else 0
        self.mass_term = mass_term_per_amu(table)
        n = len(self.isotopes)
        abund = np.array(table["abundances"] or [1.0 / n] * n)
        self.concentration0 = table["concentration"] * abund          # per isotope
        start = np.array(table["start_delta_permil"] or [0.0] * n)
        #: R_start / R_standard of each isotope against the reference
        self.start_ratio = (1.0 + start / 1000.0) / (1.0 + start[self.ref] / 1000.0)
        self.index = list(range(first_index, first_index + n))
        self.heavy = [k for k in range(n) if k != self.ref]
        self.dm = self.masses - self.masses[self.ref]

    def pair_name(self, k):
        return f"{self.isotopes[k]}/{self.isotopes[self.ref]}"


class CapsuleProblem(Problem):
    """One capsule deck on a DMDA over ``comm``.

    Parameters
    ----------
    decks : list of one dict
        The resolved deck (a list, as for every model; ensembles run one member per TS).
    comm : mpi4py communicator
    """

    name = "capsule"
    #: an assembled AIJ Jacobian (constant: shift I - M) and any KSP/PC from the command line
    kind = ASSEMBLED
    linear = True

    @staticmethod
    def group_key(deck):
        """Every capsule deck is a system of its own (a problem holds one deck)."""
        return json.dumps(deck, sort_keys=True, default=str)

    def __init__(self, decks, comm):
        if len(decks) != 1:
            raise ValueError("a capsule problem holds one deck; ensembles run members independently")
        deck = self.deck = decks[0]
        self.comm = comm
        self.duration_s = deck["time"]["duration_h"] * 3600.0
        self.profile = soret.TemperatureProfile.from_deck(deck["capsule"], deck["temperature"])
        self.species, self.elements = [], []
        for name, el in deck["elements"].items():
            e = Element(name, el, len(self.species))
            ref_mass = e.masses[e.ref]
            for iso, c0, m, dm in zip(e.isotopes, e.concentration0, e.masses, e.dm):
                self.species.append(Species(iso, el, c0, dm, (ref_mass / m) ** el["beta"], e.mass_term))
            self.elements.append(e)
        for name, comp in deck["components"].items():
            self.species.append(Species(name, comp, comp["concentration"]))
        self.nsp = len(self.species)
        self.ncells = deck["capsule"]["cells"]
        self.h = deck["capsule"]["length_mm"] * 1e-3 / self.ncells
        self.da = PETSc.DMDA().create([self.ncells], dof=self.nsp, stencil_width=1,
                                      comm=PETSc.Comm(comm))
        (self.first, self.last), = self.da.getRanges()
        self.nloc = self.last - self.first
        self.local_size = self.nloc * self.nsp
        self.global_size = self.ncells * self.nsp
        self._set_coefficients()
        self._A = None
        self._ghosted = self.da.createLocalVec()
        (self.gfirst, _), = self.da.getGhostRanges()
        self._ext = np.zeros((self.nloc + 2, self.nsp))

    # ------------------------------------------------------------------ operator
    def _set_coefficients(self):
        """T and psi at the owned cell centres, and a+, a- (1/s) of faces ``first``..``last``
        (zero at the column's ends), from the owned cells and one neighbour on each side."""
        lo, hi = max(self.first - 1, 0), min(self.last + 1, self.ncells)
        Tc = self.profile.T_C((np.arange(lo, hi) + 0.5) * self.h * 1e3)
        psi = np.stack([s.psi(Tc) for s in self.species], axis=1)
        owned = slice(self.first - lo, self.first - lo + self.nloc)
        self.T_C, self.psi = Tc[owned], psi[owned]                     # (nloc,), (nloc, nsp)
        Tf = self.profile.T_C(np.arange(lo + 1, hi) * self.h * 1e3)    # faces between those cells
        D = np.stack([s.diffusivity(Tf) for s in self.species], axis=1)
        ap, am = face_coefficients(psi, D, self.h)
        pad_lo = [np.zeros((1, self.nsp))] if self.first == 0 else []
        pad_hi = [np.zeros((1, self.nsp))] if self.last == self.ncells else []
        self.a_plus = np.concatenate(pad_lo + [ap] + pad_hi)
        self.a_minus = np.concatenate(pad_lo + [am] + pad_hi)

    def _operator(self):
        """-duration M as an assembled parallel AIJ matrix (built once). Collective."""
        if self._A is None:
            indptr, cols, vals = operator_rows(self.first, self.last, self.ncells, self.a_plus, self.a_minus)
            n = (self.local_size, self.global_size)
            A = PETSc.Mat().createAIJ((n, n), csr=(indptr.astype(PETSc.IntType), cols.astype(PETSc.IntType),
                                                   -self.duration_s * vals), comm=PETSc.Comm(self.comm))
            A.assemble()
            self._A = A
        return self._A

    # ------------------------------------------------------------------ driver interface
    def create_vector(self):
        return self.da.createGlobalVec()

    def create_jacobian(self):
        return self._operator().duplicate(copy=True)

    def configure_ksp(self, ksp):
        ksp.setType(PETSc.KSP.Type.GMRES)
        ksp.getPC().setType(PETSc.PC.Type.BJACOBI)
        # tight: results must not depend on the rank count (block Jacobi changes with it)
        ksp.setTolerances(rtol=1e-13, atol=0.0, max_it=1000)
        if self.comm.size > 1:
            # exact subdomain solves: the preconditioned operator is then the identity plus a
            # few interface modes and GMRES needs ~10 iterations whatever the grid; with ILU(0)
            # blocks (PETSc's default) the count grows with the number of cells (measured:
            # 20,000 cells on 2 ranks, 105 s with ILU, 29 s with LU, under the same load)
            opts = PETSc.Options(ksp.getOptionsPrefix() or "")
            if not opts.hasName("sub_pc_type"):
                opts.setValue("sub_pc_type", "lu")

    def rate(self, U):
        """duration * M u of the owned cells, (nloc, nsp), in flux form. Collective."""
        self.da.globalToLocal(U, self._ghosted)
        g = self._ghosted.getArray(readonly=True).reshape(-1, self.nsp)
        off = self.first - self.gfirst                   # 1 if a ghost cell precedes
        ext = self._ext
        ext[1:-1] = g[off:off + self.nloc]
        ext[0] = g[off - 1] if off else 0.0
        ext[-1] = g[off + self.nloc] if self.last < self.ncells else 0.0
        return self.duration_s * flux_divergence(ext, self.a_plus, self.a_minus)

    def petsc_ifunction(self, ts, t, U, Udot, F):
        rate = self.rate(U)
        with F as f:
            f[:] = Udot.getArray(readonly=True) - rate.ravel()

    def petsc_ijacobian(self, ts, t, U, Udot, shift, J, P):
        self._operator().copy(J, structure=PETSc.Mat.Structure.SAME_NONZERO_PATTERN)
        J.shift(shift)

    def initial_state(self, u):
        u[:] = 1.0

    def gather_state(self, u):
        """The state (nsp, ncells) on rank 0, None elsewhere. Collective.

        A 1-D DMDA numbers cells in natural order, rank after rank."""
        parts = self.comm.gather(np.asarray(u).reshape(self.nloc, self.nsp).copy(), root=0)
        if self.comm.rank != 0:
            return None
        return {"u": np.concatenate(parts, axis=0).T.copy()}

    def state_fields(self, u):
        """This rank's cells of the state [cell, species], for collective output. Local."""
        return {"u": Slab((self.ncells, self.nsp), self.first, np.asarray(u).reshape(self.nloc, self.nsp))}

    def load_state(self, read, u):
        """Fill the local cells from ``read(name, lo, hi)`` (any writer rank count). Local."""
        u[:] = read("u", self.first, self.last).ravel()

    def destroy(self):
        for obj in (self._A, self._ghosted, self.da):
            if obj is not None:
                obj.destroy()

    def check_state(self, u):
        """The first non-finite or negative concentration (relative to its uniform start) of a
        local state, named by species and cell; None if there is none. Local."""
        v = self.local(u)
        at = first_unphysical(v)
        if at is None:
            return None
        cell = self.first + at[0]
        return (f"concentration of {self.species[at[1]].name} (relative to its start) in cell {cell + 1} of "
                f"{self.ncells}, x = {(cell + 0.5) * self.h * 1e3:.4g} mm from the hot end, is {value_text(v[at])}")

    # ------------------------------------------------------------------ diagnostics
    def local(self, u):
        """(nloc, nsp) view of a local array."""
        return np.asarray(u).reshape(self.nloc, self.nsp)

    def _sum(self, values, op=MPI.SUM):
        values = np.ascontiguousarray(values, dtype=float)
        out = np.empty_like(values)
        self.comm.Allreduce(values, out, op=op)
        return out

    def steady_state(self):
        """Local (nloc, nsp) zero-flux steady state holding the starting inventory. Collective.

        Every face flux of the fitted scheme vanishes for u ∝ exp(-psi), so this is the
        discrete steady state itself (its residual M u_ss is zero to round-off), not an
        approximation of it."""
        psi_min = self._sum(self.psi.min(axis=0) if self.nloc else np.full(self.nsp, np.inf), MPI.MIN)
        shape = np.exp(-(self.psi - psi_min))
        total = self._sum(shape.sum(axis=0))
        return shape * (self.ncells / total)

    def inventory(self, u):
        """Mean of u over the column for each species (1 at the start; conserved). Collective."""
        return self._sum(self.local(u).sum(axis=0)) / self.ncells

    def steady_fraction(self, u, u_ss):
        """1 - ||q - q_ss|| / ||q_0 - q_ss|| for each species (q = u) and pair (q = delta).

        Returns
        -------
        species : (nsp,), pairs : list per element of (n_heavy,)
        """
        v = self.local(u)
        sums = [((v - u_ss) ** 2).sum(axis=0), ((1.0 - u_ss) ** 2).sum(axis=0)]
        for e in self.elements:
            d = self._rel_delta(v, e)
            d_ss = self._rel_delta(u_ss, e)
            sums += [((d - d_ss) ** 2).sum(axis=0), (d_ss ** 2).sum(axis=0)]
        tot = self._sum(np.concatenate(sums))
        out, k = [], 0
        for n in [self.nsp] + [len(e.heavy) for e in self.elements]:
            num, den = tot[k:k + n], tot[k + n:k + 2 * n]
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(np.where(den > 0, 1.0 - np.sqrt(num / np.where(den > 0, den, 1.0)), 1.0))
            k += 2 * n
        return out[0], out[1:]

    def _rel_delta(self, v, e):
        """delta relative to the starting material, 1000 (u_h / u_ref - 1), (nloc, n_heavy)."""
        return soret.delta_permil(v[:, [e.index[k] for k in e.heavy]], v[:, [e.index[e.ref]]])

    def soret_fit(self, v):
        """Omega and T0 of each element from a profile, as the paper measures them. Collective.

        The least-squares line through delta/Delta m against T over the cells (every pair of
        the element pooled; delta relative to the starting material): Omega = -slope,
        T0 where the line crosses zero."""
        sums = []
        for e in self.elements:
            d = self._rel_delta(v, e) / e.dm[e.heavy][None, :]
            T = np.repeat(self.T_C[:, None], d.shape[1], axis=1)
            sums.append([T.size, T.sum(), (T * T).sum(), d.sum(), (T * d).sum()])
        out = []
        for n, sT, sTT, sy, sTy in self._sum(np.array(sums).reshape(-1, 5)):
            slope = (n * sTy - sT * sy) / (n * sTT - sT**2)
            intercept = (sy - slope * sT) / n
            out.append((-slope, -intercept / slope if slope != 0 else float("nan")))
        return out
