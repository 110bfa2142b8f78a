"""Deck tables shared by every model: solver, checkpoint and output settings."""

from .schema import Field, Table, TableOf

#: PETSc TS types that handle the stiff, implicit (DAE) problems isosim builds.
IMPLICIT_TS_TYPES = ("arkimex", "rosw", "beuler", "bdf", "theta", "cn")

#: PETSc's ARKIMEX schemes (-ts_arkimex_type)
ARKIMEX_TYPES = ("1bee", "a2", "l2", "ars122", "2c", "2d", "2e", "prssp2", "3", "bpr3", "ars443", "4", "5")


def solver_table(arkimex_type):
    """The ``[solver]`` table with a model's default ARKIMEX scheme."""
    return Table({
        "ts_type": Field("str", "arkimex", choices=IMPLICIT_TS_TYPES,
                         doc="PETSc TS type; -ts_type on the command line overrides it. ARKIMEX "
                             "and ROSW restart bitwise; BDF loses its history at a restart."),
        "rtol": Field("float", 1e-8, min=0.0, max=0.1, min_exclusive=True,
                      doc="relative tolerance of the adaptive time step (-ts_rtol)"),
        "atol": Field("float", 1e-12, min=0.0, max=1.0, min_exclusive=True,
                      doc="absolute tolerance of the adaptive time step (-ts_atol), on concentrations "
                          "normalised by the bulk"),
        "initial_dt": Field("float", 1e-8, min=0.0, max=0.1, min_exclusive=True,
                            doc="first step as a fraction of the whole path"),
        "max_steps": Field("int", 10_000_000, min=1, doc="give up after this many steps"),
        "arkimex_type": Field("str", arkimex_type, choices=ARKIMEX_TYPES,
                              doc="scheme when ts_type = 'arkimex' (-ts_arkimex_type overrides it): '3' "
                                  "is ARK3(2)4L[2]SA, '4' ARK4(3)6L[2]SA, '5' ARK5(4)8L[2]SA (L-stable, "
                                  "stiffly accurate; the higher orders take fewer, costlier steps)"),
    }, doc="time integration (PETSc TS)")


SOLVER = solver_table("3")

#: TS types PETSc runs with fixed steps (TSAdapt 'none') unless -ts_adapt_type says otherwise.
FIXED_STEP_TYPES = ("beuler", "theta", "cn")


def check_solver(solver):
    """A fixed-step TS type must reach the end within ``max_steps`` steps of ``initial_dt``
    (otherwise the run crawls for hours before failing at the step limit)."""
    dt, limit = solver["initial_dt"], solver["max_steps"]
    if solver["ts_type"] in FIXED_STEP_TYPES and 1.0 / dt > limit:
        return [f"solver.ts_type = {solver['ts_type']!r} takes fixed steps of solver.initial_dt = {dt:g} of "
                f"the path: {1.0 / dt:.3g} steps, more than solver.max_steps = {limit}; expected initial_dt "
                f">= {1.0 / limit:g}, or an adaptive ts_type (arkimex, rosw, bdf)"]
    return []


CHECKPOINT = Table({
    "every_seconds": Field("float", 1800.0, min=0.0,
                           doc="write a checkpoint after this much wall time (0: never by time)",
                           unit="s"),
    "every_steps": Field("int", 0, min=0, doc="write a checkpoint every this many steps (0: never by steps)"),
}, doc="periodic checkpoints; SIGTERM/SIGUSR1 always write one")

# ---------------------------------------------------------------- ensembles (every model)
DISTRIBUTIONS = ("uniform", "normal", "lognormal", "loguniform")

SAMPLE = TableOf(Table({
    "dist": Field("str", choices=DISTRIBUTIONS),
    "low": Field("float", None, doc="uniform/loguniform bounds; truncation of normal/lognormal"),
    "high": Field("float", None),
    "mean": Field("float", None, doc="normal"),
    "sd": Field("float", None, min=0.0, min_exclusive=True, doc="normal"),
    "median": Field("float", None, min=0.0, min_exclusive=True, doc="lognormal"),
    "sigma": Field("float", None, min=0.0, min_exclusive=True, doc="lognormal: sd of ln"),
}, optional=False), doc="Monte Carlo: a distribution for each varied key, e.g. "
                        "[sample.\"phases.opx.beta\"] dist = \"normal\" mean = 0.04 sd = 0.01")

SWEEP = Table({
    "vary": Field("str_list", [], doc="default --vary specs of 'isosim sweep', e.g. "
                                      "[\"temperature.rate_C_per_Myr=log:1:1e7:13\"]"),
    "samples": Field("int", 0, min=0, max=10_000_000, doc="default --samples of 'isosim sweep'"),
    "seed": Field("int", 0, min=0, doc="default --seed"),
}, doc="what 'isosim sweep DECK' varies when the command line does not say")

INVERT = Table({
    "target": Field("str", "", doc="default --target, e.g. \"Delta_permil=1.29\""),
    "param": Field("str", "", doc="default --param, e.g. \"phases.opx.beta\""),
    "bracket": Field("str", "0:0.5", doc="default --bracket"),
    "over": Field("str", "", doc="default --over, e.g. \"phases.cpx.beta=0:0.5:6\""),
}, doc="what 'isosim invert DECK' solves for when the command line does not say")


def ensemble_table(batch_size):
    """The ``[ensemble]`` table with a model's default batch size."""
    return Table({
        "mode": Field("str", "batch", choices=("batch", "independent"),
                      doc="batch: members on a rank share one vectorised TS (fast; agree with "
                          "single runs to the time tolerance); independent: one TS per member "
                          "(identical to single runs)"),
        "batch_size": Field("int", batch_size, min=1, max=10_000_000,
                            doc="batch mode: members per vectorised system, grouped by similar "
                                "dynamics (members of a batch share time steps)"),
    })


ENSEMBLE = ensemble_table(256)


def _deck_value(deck, key, where):
    """(value of dotted ``key`` in the resolved deck, problems); ``where`` starts each problem."""
    from .load import split_key
    node = deck
    try:
        parts = split_key(key)
    except ValueError as exc:
        return None, [f"{where}: {exc}"]
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None, [f"{where}: {key} is not a key of this deck; expected a deck key such as "
                          "phases.opx.beta"]
        node = node[part]
    if isinstance(node, dict):
        return None, [f"{where}: {key} is a table, not a value; expected a deck key such as phases.opx.beta"]
    return node, []


def check_sample(deck, key, d):
    """Problems of one ``[sample."KEY"]`` table: the key must name a number of the deck."""
    problems = []
    node, bad = _deck_value(deck, key, f"sample.\"{key}\"")
    if bad:
        return bad
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return [f"sample.\"{key}\": {key} = {node!r} is not a number; only numbers can be sampled"]
    need = {"uniform": ("low", "high"), "loguniform": ("low", "high"), "normal": ("mean", "sd"),
            "lognormal": ("median", "sigma")}[d["dist"]]
    for p in need:
        if d[p] is None:
            problems.append(f"sample.\"{key}\".{p}: missing; dist = {d['dist']!r} needs it")
    if not problems and d["low"] is not None and d["high"] is not None and not d["low"] < d["high"]:
        problems.append(f"sample.\"{key}\": low = {d['low']:g} is not below high = {d['high']:g}")
    if not problems and d["dist"] == "loguniform" and d["low"] <= 0:
        problems.append(f"sample.\"{key}\".low = {d['low']:g}: loguniform needs low > 0")
    if not problems and d["dist"] == "lognormal" and d["high"] is not None and d["high"] <= 0:
        problems.append(f"sample.\"{key}\".high = {d['high']:g}: lognormal values are positive; expected "
                        "high > 0")
    return problems


def check_studies(deck):
    """Problems of the ``[sweep]`` and ``[invert]`` tables: their strings must parse as the
    command line's --vary/--target/--bracket/--over would, and name keys of the deck, so
    that 'isosim check' passing means 'isosim sweep/invert' can start."""
    from .specs import member_count, parse_range, parse_target, parse_values
    problems = []
    vary = []
    for i, text in enumerate(deck["sweep"]["vary"]):
        where = f"sweep.vary[{i}]"
        try:
            key, values = parse_values(text, where)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        vary.append((key, values))
        problems += _deck_value(deck, key, f"{where} {text!r}")[1]
    try:
        member_count(vary, deck["sweep"]["samples"])
    except ValueError as exc:
        problems.append(f"[sweep]: {exc}")
    if deck["sweep"]["samples"] and not deck["sample"]:
        problems.append(f"sweep.samples = {deck['sweep']['samples']}: expected [sample.\"KEY\"] tables "
                        "giving the distributions to draw from (none given)")
    inv = deck["invert"]
    parsers = (("target", parse_target), ("bracket", parse_range), ("over", parse_values))
    for name, parse in parsers:
        if inv[name] or name == "bracket":           # an empty bracket is no bracket; the rest are optional
            try:
                parsed = parse(inv[name], f"invert.{name}")
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if name == "over":
                problems += _deck_value(deck, parsed[0], f"invert.over {inv['over']!r}")[1]
    if inv["param"]:
        value, bad = _deck_value(deck, inv["param"], f"invert.param = {inv['param']!r}")
        if not bad and (isinstance(value, bool) or not isinstance(value, (int, float))):
            bad = [f"invert.param = {inv['param']!r}: the deck's value {value!r} is not a number; "
                   "expected a numeric deck key"]
        problems += bad
    return problems
