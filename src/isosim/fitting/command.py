"""``isosim fit-soret DATA.csv [--experiments META.csv] [--out DIR] [--force] [--no-forward]``.

Reads the data (``table1``), fits per experiment, per pair and pooled (``soret``), prints a
table next to the published values, writes ``DIR/fit.json`` (atomically) and
``DIR/figures/fit_soret.png``, then calls ``forward_simulations`` unless ``--no-forward``.
"""

from pathlib import Path

from ..errors import EXIT_OK, AlreadyComplete, Checkpointed, RestartError, UsageError
from ..io import jsonfile
from ..io.atomic import atomic_path, write_text
from ..io.results import envelope
from ..io.rundir import is_complete, lock_run_dir, prepare_run_dir, write_manifest
from ..logs import say
from ..physics.isotopes import ISOTOPE_MASSES, REFERENCE_ISOTOPE
from .soret import estimate_sigma_T, fit_experiment, fit_pooled
from .table1 import load_table1

MODEL = ("delta_{e,p}(T) = delta_start_{e,p} - Omega_{e,E} * dm_p * (T - T0_{e,E})  [permil]; "
         "dS_T_p = Omega_E * dm_p / 1000  [per degC]; dm_p from exact isotope masses (amu)")
METHOD_NOTES = [
    "weighted least squares (scipy.optimize.least_squares, Levenberg-Marquardt), sigma^2 = (reported 2 sigma / 2)^2 "
    "+ (Omega dm sigma_T)^2 (effective variance of a sample temperature uncertain by sigma_T); the starting "
    "material's measured delta is one more data point constraining delta_start",
    "sigma_T: Table 1 gives no temperature errors; by default (--sigma-T auto) it is the value for which the "
    "pooled fits have chi2/dof = 1 (about 25 degC for Table 1, matching the paper's ~10 % 1-sigma error on "
    "Omega from the temperature offsets of 160-270 degC spans); --sigma-T 0 weights by the delta errors alone",
    "T0 is fitted per element (an element's own Soret coefficient moves its mass and so its T0); the value "
    "compared with the paper's T0 is the mean over elements",
    "1-sigma uncertainties ('sigma') are from the parameter covariance (J^T J)^-1 multiplied by the Birge "
    "ratio max(1, sqrt(chi2/dof)); 'sigma_unscaled' is without that factor; fits with dof = 0 report the "
    "unscaled one",
    "T0_C_mean_over_pairs follows Huang et al. (2010): T0 of each pair fitted by itself (where its line "
    "crosses the starting material's delta), averaged over the pairs; the pairs of one element share their "
    "measurements, so no formal uncertainty is given for the mean",
    "paper_method_check: Omega from the two samples at the ends of dT_span, and T0 from unweighted "
    "straight lines per pair, to compare with how Table 1's numbers appear to have been computed",
]


def forward_simulations(fit, experiments, out_dir, petsc_options, resume=False):
    """Simulate each experiment with the fitted values; residuals per sample (collective).

    Parameters
    ----------
    fit : dict
        The content of ``fit.json``.
    experiments : dict of str to table1.Experiment
    out_dir : Path
        Runs go to ``out_dir/forward/<experiment>``.
    petsc_options : list of str

    Returns
    -------
    dict
        Added to ``fit.json`` as ``"forward"``.
    """
    from ..startup import init_petsc
    from .forward import simulate_experiments
    comm = init_petsc(petsc_options)
    return simulate_experiments(fit, experiments, out_dir, comm, petsc_options, resume=resume,
                                log=say)


def _pm(v, fmt):
    return f"{v['value']:{fmt}} ± {v['sigma']:{fmt}}"


def _report(result, experiments):
    """The table printed to stdout."""
    lines = [f"[isosim] fit-soret {result['data']}: {len(experiments)} experiments",
             f"  model: {MODEL}",
             f"  sample temperature uncertainty sigma_T = {result['sigma_T_C']:.1f} degC ({result['sigma_T_method']})",
             "  ± = 1 sigma x max(1, sqrt(chi2/dof)); 'two-point' = Omega from the two "
             "samples at the ends of the published dT span"]
    for name, r in result["experiments"].items():
        j, cmp_ = r["joint"], r.get("comparison") or {}
        lines += ["", f"{name}  (starting material: {r['start_row_from']})  chi2/dof = {j['chi2']:.1f}/{j['dof']}, "
                  f"uncertainties x {j['uncertainty_scale']:.2f}",
                  f"  {'':28s}{'fitted':>22s}{'published':>11s}{'difference':>12s}   two-point per pair"]
        two = r["paper_method_check"].get("Omega_two_point_permil_per_C_per_amu", {})
        for el, v in j["Omega_permil_per_C_per_amu"].items():
            c = cmp_.get("Omega_permil_per_C_per_amu", {}).get(el)
            pub = f"{c['published']:11.4f}{100 * c['relative_difference']:+11.1f}%" if c else f"{'-':>11s}{'':12s}"
            tp = ", ".join(f"{v2:.4f} ({k.split('/')[0]})" for k, v2 in two.items()
                           if k.endswith(f"/{REFERENCE_ISOTOPE[el]}{el}"))
            lines.append(f"  Omega_{el:2s} (permil/degC/amu)  {_pm(v, '9.5f')}{pub}   {tp}")
        for key, label, val in (("T0_C_joint", "T0 mean over elements (degC)", f"{j['T0_C_mean_over_elements']:9.1f} "
                                 "(" + ", ".join(f"{el} {_pm(v, '.1f')}" for el, v in j["T0_C"].items()) + ")"),
                                ("T0_C_mean_over_pairs", "T0 mean over pairs (degC)",
                                 f"{r['T0_C_mean_over_pairs']:9.1f} ({r['T0_C_std_over_pairs']:.1f} sd)")):
            c = cmp_.get(key)
            pub = f"{c['published']:11.0f}{c['difference_C']:+10.1f} C" if c else ""
            lines.append(f"  {label:28s}{val:>22s}{pub}")
        ols = r["paper_method_check"]["T0_C_unweighted_mean_over_pairs"]
        lines.append(f"  {'T0 unweighted, mean (degC)':28s}{ols:22.1f}")
        lines.append("  each pair fitted alone:")
        lines += [f"    {k:10s} Omega {_pm(v['Omega_permil_per_C_per_amu'], '.5f')}  "
                  f"dS_T {_pm(v['dS_T_per_C'], '.2e')} /degC  T0 {_pm(v['T0_C'], '.1f')} C  "
                  f"chi2/dof {v['chi2']:.1f}/{v['dof']}"
                  for k, v in r["per_pair"].items()]
    p = result["pooled"]
    lines += ["", f"pooled (Omega per element shared; T0 per experiment, delta_start per starting material): chi2/dof = {p['chi2']:.1f}/"
              f"{p['dof']}, uncertainties x {p['uncertainty_scale']:.2f}",
              f"  {'pair':12s}{'dS_T (1/degC)':>26s}{'paper':>11s}{'difference':>12s}"]
    for k, v in p["dS_T_per_C"].items():
        c = p["comparison"].get(k)
        pub = f"{c['published']:11.1e}{100 * c['relative_difference']:+11.1f}%" if c else ""
        lines.append(f"  {k:12s}{_pm(v, '.3e'):>26s}{pub}")
    lines += ["", "notes:"] + [f"  - {n}" for n in result["notes"]]
    return "\n".join(lines)


def _figure(result, path):
    """δ relative to the fitted starting value against T, one panel per experiment, with ±1σ on
    Ω and ±σ_T bars (:func:`isosim.plot.fit_soret_figure`); False if no matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        return False
    from ..plot import DPI, fit_soret_figure
    fig = fit_soret_figure(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.08)
    return True


def _element(label):
    """``Fe`` of ``57Fe/54Fe``."""
    return "".join(c for c in label.split("/")[0] if c.isalpha())


def _sigma_T(text, pairs):
    """(value in degC, how it was chosen) of --sigma-T."""
    if text == "auto":
        return estimate_sigma_T(pairs), "auto: chi2/dof = 1 in the pooled fits"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1e4:
        raise UsageError(f"error: --sigma-T {text!r}: expected 'auto' or a temperature uncertainty in degC >= 0")
    return value, "given (--sigma-T)"


def fit_soret_command(args, petsc_options, resume=False):
    """Run ``isosim fit-soret``; return the exit code (errors are raised as IsosimError).

    ``fit.json`` says ``"status": "running"`` (with what is still ``pending``) until the forward
    simulations are done, then ``"complete"``. The directory's manifest lets ``isosim restart
    DIR`` finish a stopped fit (``resume``): the fit is recomputed (seconds, deterministic)
    and only the forward simulations not finished are run or continued."""
    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.data).stem}-fit"
    target = out / "fit.json"
    if out.exists() and not out.is_dir():
        raise UsageError(f"error: --out {out} exists and is not a directory; nothing was written")
    if target.exists() and not args.force and not resume:
        raise UsageError(f"error: {target} exists (an earlier fit); nothing was overwritten. "
                         "Use --force to replace it, or --out for another directory.")
    sigma_text = getattr(args, "sigma_T", "auto")
    if sigma_text != "auto":
        _sigma_T(sigma_text, [])          # a bad value fails before the data are read
    table = load_table1(args.data, args.experiments)
    sigma_T, how = _sigma_T(sigma_text, [p for e in table.experiments.values() for p in e.pairs])
    result = {**envelope("fit-soret", "capsule", status="running"), "command": "fit-soret",
              "data": str(args.data), "experiments_file": table.experiments_path, "fit_model": MODEL,
              "sigma_T_C": sigma_T, "sigma_T_method": how,
              "isotope_masses_amu": {f"{a}{el}": m for el, masses in ISOTOPE_MASSES.items() for a, m in masses.items()},
              "experiments": {n: fit_experiment(e, sigma_T) for n, e in table.experiments.items()}}
    result["pooled"] = fit_pooled(table.experiments, sigma_T)
    notes = METHOD_NOTES + table.notes
    if any(e.start_from != n for n, e in table.experiments.items()):
        notes.append("in the pooled fit, experiments sharing a starting-material row share delta_start "
                     "(the measurement is counted once)")
    for name, r in list(result["experiments"].items()) + [("pooled", {"joint": result["pooled"]})]:
        j = r["joint"]
        if j["dof"] == 0:
            notes.append(f"{name}: dof = 0, uncertainties unscaled")
        elif j["uncertainty_scale"] > 3:
            notes.append(f"{name}: chi2/dof = {j['chi2'] / j['dof']:.0f}: the scatter about the straight-line "
                         f"model is {j['uncertainty_scale']:.0f} times the reported errors (uncertainties scaled)")
    result["notes"] = notes
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.rank       # under mpirun every rank fits (cheap); rank 0 reports and writes
    if rank == 0:
        lock_run_dir(out)
        if resume and is_complete(out, "fit-soret"):
            raise AlreadyComplete(f"[isosim] the fit in {out} is complete (fit.json); nothing to do")
        if not resume:
            prepare_run_dir(out, args.force)
            write_manifest(out, "fit-soret", data=str(Path(args.data).resolve()),
                           experiments=str(Path(args.experiments).resolve()) if args.experiments else None,
                           sigma_T=sigma_text, no_forward=bool(args.no_forward), petsc_options=list(petsc_options))
        print(_report(result, table.experiments), flush=True)
        if args.no_forward:
            result["status"] = "complete"
        else:
            result["pending"] = "forward simulations (isosim restart DIR finishes them)"
        write_text(target, jsonfile.dumps(result, indent=1) + "\n")
        print(f"[isosim] wrote {target}")
        png = out / "figures" / "fit_soret.png"
        if _figure(result, png):
            print(f"[isosim] wrote {png}")
        else:
            print("[isosim] note: matplotlib is not installed; no figure (pip install matplotlib)")
    if not args.no_forward:
        try:
            forward = forward_simulations(result, table.experiments, out, petsc_options, resume=resume)
        except Checkpointed as exc:
            where = str(exc).split("; checkpoint written")[0].split(". Continue with")[0]
            raise Checkpointed(f"[isosim] fit-soret stopped during the forward simulations ({where}); fit.json "
                               f"holds the fit, status running. Continue with: isosim restart {out}") from None
        if forward is not None and rank == 0:
            result["forward"] = forward
            result.pop("pending", None)
            result["status"] = "complete"
            write_text(target, jsonfile.dumps(result, indent=1) + "\n")
            print(f"[isosim] forward simulations in {out / 'forward'}; residuals added to {target}")
    return EXIT_OK


def resume_fit(out, manifest, petsc_options):
    """``isosim restart DIR`` of a fit-soret directory: the same fit, unfinished forward runs."""
    from argparse import Namespace
    try:
        args = Namespace(data=manifest["data"], experiments=manifest["experiments"], out=str(out), force=False,
                         sigma_T=manifest["sigma_T"], no_forward=manifest["no_forward"])
        options = list(manifest["petsc_options"]) + list(petsc_options)
    except KeyError as exc:
        raise RestartError(f"error: {out}/manifest.json lacks {exc}; the fit cannot be resumed") from None
    return fit_soret_command(args, options, resume=True)
