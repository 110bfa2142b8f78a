"""Forward simulation of each fitted experiment with the capsule model, and its residuals.

Each experiment becomes a capsule deck (:mod:`isosim.fitting.experiment_decks`) carrying the
fitted Omega of each element, the fitted starting-material delta values and a profile whose
mean temperature is the fitted T0; it runs for the experiment's duration from a uniform
start, and the simulated delta at each sample's temperature is compared with the data.
Collective over ``comm``; results on every rank.
"""

from pathlib import Path

import h5py
import numpy as np

from ..deck import validate
from ..errors import Checkpointed
from ..logs import say
from ..parallel import collective
from ..runner import run_or_resume
from ..solver.signals import StopRequest
from .experiment_decks import experiment_deck


def simulate_experiments(fit, experiments, out_dir, comm, petsc_options=(), log=say, resume=False):
    """Run every experiment with a known duration; return ``{name: residual report}``.
    ``resume``: finished runs are read back and stopped ones continued (:func:`run_or_resume`)."""
    report = {}
    with StopRequest() as stop:          # a signal between two runs stops here (each run stops itself)
        for name, exp in experiments.items():
            if stop.signum:
                raise Checkpointed(f"stopped on {stop.name} before the forward run of {name}")
            report[name] = _forward(name, exp, fit, out_dir, comm, petsc_options, log, resume)
    return report


def _forward(name, exp, fit, out_dir, comm, petsc_options, log, resume):
    """One experiment's forward run and its residual report (a skip note without a duration)."""
    duration = exp.published.get("duration_h")
    if not duration:
        return {"skipped": "no duration (give --experiments META.csv)"}
    r = fit["experiments"][name]["joint"]
    omegas = {el: v["value"] for el, v in r["Omega_permil_per_C_per_amu"].items()}
    raw = experiment_deck(exp, r["T0_C_mean_over_elements"], omegas,
                          start_delta=lambda p: r["delta_start_permil"][p.label]["value"])
    run_dir = Path(out_dir) / "forward" / name
    summary = run_or_resume(validate(raw, f"forward deck of {name}"), run_dir, comm, resume=resume,
                            petsc_options=petsc_options, progress_seconds=0, log=lambda *a, **k: None)
    report = collective(comm, lambda: _residuals(exp, run_dir, summary, omegas, fit["sigma_T_C"]))
    log(f"[isosim] forward {name}: {duration:g} h, rms residual {report['rms_residual_permil']:.3f} "
        f"permil, max |residual|/sigma {report['max_abs_residual_over_sigma']:.1f}; "
        f"simulated T0 {report['simulated_T0_C']}", flush=True)
    return report


def _residuals(exp, run_dir, summary, omegas, sigma_T):
    """Data minus the simulated delta at each sample temperature (rank 0); sigma is the fit's
    effective one, sqrt((2s/2)^2 + (Omega dm sigma_T)^2)."""
    with h5py.File(run_dir / "results.h5", "r") as h5:
        pairs = list(h5.attrs["pairs"])
        T = h5["profiles/T_C"][:]
        delta = h5["profiles/delta_permil"][-1]          # the final profile [pair, cell]
    order = np.argsort(T)
    rows = []
    for p in exp.pairs:
        model = np.interp(p.T_C, T[order], delta[pairs.index(p.label)][order])
        for pos, Ts, d, s2, m in zip(p.positions, p.T_C, p.delta_permil, p.two_sigma_permil, model):
            sigma = np.hypot(s2 / 2, omegas[p.element] * p.dm_amu * sigma_T)
            rows.append({"pair": p.label, "position": pos, "T_C": float(Ts), "delta_permil": float(d),
                         "simulated_permil": float(m), "residual_permil": float(d - m),
                         "residual_over_sigma": float((d - m) / sigma)})
    res = np.array([r["residual_permil"] for r in rows])
    head = summary["results"]
    return {"run_dir": str(run_dir), "rows": rows,
            "rms_residual_permil": float(np.sqrt(np.mean(res ** 2))),
            "max_abs_residual_over_sigma": float(max(abs(r["residual_over_sigma"]) for r in rows)),
            "simulated_Omega_permil_per_C_per_amu": head["Omega_permil_per_C_per_amu"],
            "simulated_T0_C": {k: round(v, 1) for k, v in head["T0_C"].items()},
            "steady_fraction_at_end": head["steady_fraction"][f"{summary['deck']['time']['duration_h']:g} h"]}
