"""Ensembles: many members of one deck (sweeps, Monte Carlo, inversions) solved together.

A member is the base deck with some keys changed. Members that share their structure
(grid, isotopes, phases, solver settings) form a *group*:

- ``ensemble.mode = "batch"`` (default): a group is one vectorised system, its members'
  grain classes spread over all ranks and integrated by one TS. Fast (one set of Python
  calls per stage for thousands of members); members share time steps, so they agree with
  single runs to the time tolerance, not bitwise, and results do not depend on the rank
  count beyond round-off.
- ``ensemble.mode = "independent"``: each member has its own TS on a one-rank
  communicator and the ranks share out the members: every member is bitwise the single run.

Every function here is collective over ``comm``.
"""

import copy
import itertools
import time

import numpy as np

from ..deck import validate
from ..deck.specs import parse_values  # noqa: F401  (one parser for decks and the command line)
from ..errors import (
    CheckpointIOError,
    DeckError,
    IsosimError,
    SolverFailure,
    Stopped,
    UsageError,
)
from ..io.journal import PROFILE
from ..logs import say
from ..registry import model_spec


# ------------------------------------------------------------------------------ members
def sample_values(dist, n, rng):
    """Draw ``n`` values from a resolved ``[sample."KEY"]`` table (truncated by low/high)."""
    from scipy import stats
    d = dist["dist"]
    lo = -np.inf if dist["low"] is None else dist["low"]
    hi = np.inf if dist["high"] is None else dist["high"]
    if d == "uniform":
        return rng.uniform(lo, hi, n)
    if d == "loguniform":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    if d == "normal":
        a, b = (lo - dist["mean"]) / dist["sd"], (hi - dist["mean"]) / dist["sd"]
        return stats.truncnorm.rvs(a, b, loc=dist["mean"], scale=dist["sd"], size=n, random_state=rng)
    # lognormal: ln x ~ N(ln median, sigma), truncated to [low, high]
    mu, s = np.log(dist["median"]), dist["sigma"]
    a = (np.log(lo) - mu) / s if lo > 0 else -np.inf
    b = (np.log(hi) - mu) / s if np.isfinite(hi) else np.inf
    return np.exp(stats.truncnorm.rvs(a, b, loc=mu, scale=s, size=n, random_state=rng))


def expand(raw, path, vary=(), samples=0, seed=0, extra=(), comm=None):
    """The member decks of a sweep. Collective over ``comm`` if given: each rank validates a
    share of the members and every rank gets all of them (validation is ~0.3 ms a deck:
    a second or more of serial start-up for 10^4 members); every rank raises the same error.

    Parameters
    ----------
    raw : dict
        The base deck as read (with --set overrides applied).
    vary : sequence of (key, list)
        Cartesian product of the listed values.
    samples : int
        Monte Carlo draws of the deck's ``[sample]`` keys (combined with ``vary``).
    extra : sequence of dict
        Explicit members ({key: value}), used by the inversion.

    Returns
    -------
    decks : list of dict (resolved), params : dict key -> list of member values
    """
    base = validate(copy.deepcopy(raw), path)        # the base deck must be valid by itself
    assignments = [dict()]
    if vary:
        keys = [k for k, _ in vary]
        assignments = [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in vary])]
    if samples:
        if not base["sample"]:
            raise UsageError(f"error: --samples {samples} needs distributions in the deck: add tables "
                             f'such as [sample."phases.opx.beta"] to {path}')
        rng = np.random.default_rng(seed)
        draws = {k: sample_values(d, samples, rng) for k, d in base["sample"].items()}
        assignments = [dict(a, **{k: float(v[i]) for k, v in draws.items()})
                       for a in assignments for i in range(samples)]
    if extra:
        assignments = [dict(a, **e) for a in assignments for e in extra]
    keys = list(dict.fromkeys(k for a in assignments for k in a))
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    mine = _validate_members(raw, path, assignments, range(rank, len(assignments), size))
    parts = comm.allgather(mine) if size > 1 else [mine]
    decks = [None] * len(assignments)
    problems = []
    for part in parts:
        for i, deck_or_problem in part:
            if isinstance(deck_or_problem, str):
                problems.append((i, deck_or_problem))
            else:
                decks[i] = deck_or_problem
    if problems:
        problems = [p for _, p in sorted(problems)]
        if len(problems) > 10:
            problems = problems[:10] + ["... (stopped after 10 invalid members)"]
        raise DeckError(path, problems)
    params = {k: [a.get(k) for a in assignments] for k in keys}
    return decks, params


def _with_values(raw, assignment):
    """``raw`` with the dotted keys of ``assignment`` set, copying only the tables on their
    paths (validation builds the resolved deck afresh and never changes its input; a deep
    copy per member was 40 % of expanding a sweep)."""
    from ..deck.load import split_key
    member = dict(raw)
    for key, value in assignment.items():
        parts = split_key(key)
        node = member
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ValueError(f"{key}: {p} is a value, not a table")
            node[p] = node = dict(child)
        node[parts[-1]] = value
    return member


def _validate_members(raw, path, assignments, indices):
    """[(index, resolved deck or problem text)] of the members ``indices`` (at most 10
    problems: a wrong sweep usually makes every member wrong)."""
    out, bad = [], 0
    for i in indices:
        a = assignments[i]
        try:
            out.append((i, validate(_with_values(raw, a), path)))
        except (DeckError, ValueError) as exc:
            detail = "; ".join(exc.problems) if isinstance(exc, DeckError) else str(exc)
            out.append((i, f"member {i} ({', '.join(f'{k}={v!r}' for k, v in a.items())}): {detail}"))
            bad += 1
            if bad > 10:
                break
    return out


def group_key(deck):
    """Members that share this key can be integrated as one vectorised system (the model's
    problem class says what must be shared)."""
    return model_spec(deck["model"]).problem_class.group_key(deck)


# ------------------------------------------------------------------------------ solving
def member_labels(params, first=0):
    """Names of a sweep's members for messages: ``"12 (phases.opx.beta=0.02)"``, numbered from
    ``first`` (a slice's first member) with the member's varied values."""
    n = len(next(iter(params.values()))) if params else 0
    text = {k: [f"{x:.6g}" if isinstance(x, float) else repr(x) for x in v] for k, v in params.items()}
    return [f"{first + i} ({', '.join(f'{k}={text[k][i]}' for k in params)})" for i in range(n)]


def solve(decks, comm, *, labels=None, progress_seconds=10.0, log=say, journal=None, stop=None):
    """Integrate every member; return ``(headlines, series)`` on rank 0 (None elsewhere).

    ``labels`` names the members in a solver failure's message (see :func:`member_labels`);
    by default their indices.

    ``headlines`` is a list (one dict per member, in member order); ``series`` a list of
    dicts of 1-D arrays against the member's own output times (the recorder's
    ``member_series``: for grains ``T_C``, ``Delta_permil``, ...; for chambers the path).

    ``journal`` (a :class:`~isosim.io.journal.UnitJournal`) keeps every unit (batch, or
    member in independent mode) as it finishes and supplies the units an earlier, stopped
    call finished: those are not integrated again. Units depend only on the decks, and
    whether a unit is integrated on one rank or shared over all is decided from the number
    of units, not of those left, so a resumed study computes each remaining unit exactly as
    the uninterrupted one would. ``stop`` (a :class:`~isosim.solver.signals.StopRequest`)
    is checked between units and at every step; on a signal every rank raises
    :class:`~isosim.errors.Stopped` once the finished units are kept.
    """
    spec = model_spec(decks[0]["model"])
    problem_cls, recorder_cls = spec.problem_class, spec.recorder_class
    groups = {}
    for i, d in enumerate(decks):
        groups.setdefault(group_key(d), []).append(i)
    headlines = [None] * len(decks)
    series = [None] * len(decks)
    labels = labels or [str(i) for i in range(len(decks))]
    say = log
    progress = Progress(len(decks), progress_seconds, say)
    for gi, idx in enumerate(groups.values()):
        mode = decks[idx[0]]["ensemble"]["mode"]
        units = _batches(decks, idx, problem_cls) if mode == "batch" else [[i] for i in idx]
        names = [f"g{gi}-{k:06d}" for k in range(len(units))]
        kept = _kept_units(journal, units, names, comm)
        todo = [k for k in range(len(units)) if k not in kept]
        whole = len(units) >= comm.size
        progress.kept(sum(len(units[k]) for k in kept))
        say(f"[isosim] group {gi + 1}/{len(groups)}: {len(idx)} member(s) in {len(units)} "
            f"{'batch(es)' if mode == 'batch' else 'independent run(s)'}, {comm.size} rank(s)"
            + ("" if whole or comm.size == 1 else ", each batch shared over the ranks")
            + (f"; {len(kept)} finished earlier, kept" if kept else ""), flush=True)
        work = [(units[k], names[k]) for k in todo]
        if whole:
            done = _each_on_one_rank(work, decks, labels, comm, problem_cls, recorder_cls, say,
                                     journal=journal, stop=stop, progress=progress)
        else:
            done = _each_on_all_ranks(work, decks, labels, comm, problem_cls, recorder_cls, progress_seconds,
                                      log, journal=journal, stop=stop, progress=progress)
        if comm.rank == 0:
            for k in kept.values():
                done += k
            for i, h, s in done:
                headlines[i], series[i] = h, s
    if comm.rank != 0:
        return None, None
    return headlines, series


def _kept_units(journal, units, names, comm):
    """{unit number: results} of the units ``journal`` holds intact (results on rank 0, the
    numbers on every rank: rank 0 reads and verifies, the others follow its verdict)."""
    if journal is None:
        return {}
    found = {}
    if comm.rank == 0:
        present = journal.finished()
        for k, (unit, name) in enumerate(zip(units, names)):
            if name in present:
                got = journal.load(name, unit)
                if got is not None:
                    found[k] = got
    numbers = comm.bcast(sorted(found), root=0)
    return found if comm.rank == 0 else {k: [] for k in numbers}


def _stop_requested(stop, comm):
    """Whether any rank has seen a stop signal (collective over ``comm``)."""
    sig = stop.signum if stop is not None else 0
    return comm.allreduce(sig, op=_mpi_max()) if comm.size > 1 else sig


def _mpi_max():
    from mpi4py import MPI
    return MPI.MAX


def _each_on_all_ranks(work, decks, labels, comm, problem_cls, recorder_cls, progress_seconds, log, *,
                       journal, stop, progress):
    """Fewer units than ranks: every rank takes part in each unit, one after the other."""
    done = []
    for unit, name in work:
        if _stop_requested(stop, comm):
            raise Stopped("stopped between batches", stop.name if stop else "")
        try:
            _, rec = _integrate([decks[i] for i in unit], comm, problem_cls, recorder_cls, progress_seconds, log,
                                stop=stop)
        except SolverFailure as exc:
            raise _naming(exc, [labels[i] for i in unit]) from None
        profiles = rec.end_profiles()       # collective: a batch's classes are spread over the ranks
        if comm.rank == 0:
            results = _results(unit, rec, profiles)
            _keep(journal, name, results, comm)
            done += results
            progress.add(len(unit), len(unit))
    return done


def _keep(journal, name, results, comm=None):
    """Write a finished unit into the journal (local; an I/O failure is exit 4)."""
    if journal is None:
        return
    try:
        journal.save(name, results)
    except OSError as exc:
        raise CheckpointIOError(f"error: could not keep finished members in {journal.folder}: "
                                f"{exc.strerror or exc}") from None


class Progress:
    """Progress lines of a study on rank 0: members done of all, rate, elapsed, time left.

    With units integrated on one rank each, rank 0 sees only its own share: it reports the
    members kept and those it finished, and its time left is that of its share (the shares
    are balanced, see :func:`deal`). No estimate is printed before a rate is measured."""

    def __init__(self, total, every_seconds, say):
        self.total, self.every, self.say = total, every_seconds, say
        self.done = 0
        self.t0 = self.last = time.monotonic()
        self.share = None      # (members this rank has done, members of its share)

    def kept(self, n):
        self.done += n

    def start_share(self, n):
        self.share = [0, n]
        self.t0 = time.monotonic()

    def add(self, n, own=0):
        self.done += n
        if self.share is not None:
            self.share[0] += own
        now = time.monotonic()
        if not (self.every > 0 and now - self.last >= self.every):
            return
        self.last = now
        elapsed = now - self.t0
        line = f"[isosim] {self.done}/{self.total} members done"
        if self.share is not None and self.share[0]:
            mine, of = self.share
            rate = mine / elapsed
            line += (f" (rank 0: {mine}/{of} of its share), {rate:.3g} members/s per rank, "
                     f"{_clock(elapsed)} elapsed, ~{_clock((of - mine) / rate)} left")
        self.say(line, flush=True)


def _clock(seconds):
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _naming(exc, names):
    """The solver failure ``exc`` of a batch, saying which members (sweep or inversion) it holds
    (``names``: their labels, the lead member first)."""
    msg = str(exc)
    msg = msg[7:] if msg.startswith("error: ") else msg
    if len(names) == 1:
        return SolverFailure(f"error: ensemble member {names[0]}: {msg}")
    shown = "; ".join(names[:6]) + (f"; ... ({len(names)} in all)" if len(names) > 6 else "")
    # the members of a batch share every step: any of them may be the one the step failed for
    return SolverFailure(f"error: a batch of ensemble members failed together: {shown}. Times and "
                         f"temperatures below are those of the first. {msg[:1].upper()}{msg[1:]} To find "
                         "the member at fault, run the sweep again with --set ensemble.mode=independent "
                         "(each member alone).")


def _results(unit, rec, profiles):
    """[(member index, headline, series)] of the members ``unit`` a recorder holds (rank 0);
    each member's end ``profiles`` (:meth:`~isosim.models.recording.Recorder.end_profiles`,
    or None) travel in its series dict under :data:`~isosim.io.journal.PROFILE`."""
    heads = rec.headline()
    out = []
    for k, i in enumerate(unit):
        series = rec.member_series(k)
        if profiles is not None:
            series.update({PROFILE + name: v for name, v in profiles[k].items()})
        out.append((i, heads[k], series))
    return out


def deal(n, size, rank):
    """Indices of ``n`` work units (ordered by expected cost) that ``rank`` of ``size`` takes:
    dealt back and forth (0, 1, ..., size-1, size-1, ..., 0, 0, 1, ...), so that a cost that
    grows along the order is shared evenly (plain round robin gives the last rank the dearest
    unit of every round)."""
    return [k for k in range(n) if (k % size if (k // size) % 2 == 0 else size - 1 - k % size) == rank]


def _each_on_one_rank(work, decks, labels, comm, problem_cls, recorder_cls, say, *, journal=None, stop=None,
                      progress=None):
    """Integrate each unit (a batch, or one member) of ``work`` ([(members, name)]) on one
    rank alone, the units dealt over the ranks; return every member's (index, headline,
    series) on rank 0. Collective.

    A unit is integrated on ``MPI.COMM_SELF`` as it would be on one rank, so its results do
    not depend on the rank count at all; there is no communication until the gather, and each
    rank pays the Python overhead of its own units only. (A batch split over the ranks pays
    that overhead on every rank, and its ranks wait for each other at every step's norms:
    measured max/min 1.2-1.3 over 2 ranks per PETSc event, against 1.00 here.) Each finished
    unit is kept in ``journal`` by the rank that integrated it. Errors (and stops) are agreed
    on before the gather, so a failure on one rank stops every rank."""
    from mpi4py import MPI

    mine = [work[k] for k in deal(len(work), comm.size, comm.rank)]
    if progress is not None:
        progress.start_share(sum(len(u) for u, _ in mine))
    done, error = [], None
    unit = []
    try:
        for unit, name in mine:
            if stop is not None and stop.signum:
                raise Stopped("stopped between batches", stop.name)
            _, rec = _integrate([decks[i] for i in unit], MPI.COMM_SELF, problem_cls, recorder_cls, 0, say,
                                stop=stop)
            results = _results(unit, rec, rec.end_profiles())
            _keep(journal, name, results)
            done += results
            if progress is not None:
                progress.add(len(unit), len(unit))
    except SolverFailure as exc:    # every rank must hear of it, or the others hang in the gather
        error = _naming(exc, [labels[i] for i in unit])
    except IsosimError as exc:
        error = exc
    gathered = comm.gather((done, error), root=0)
    first = None
    if comm.rank == 0:
        errors = [e for _, e in gathered if e is not None]
        # a real failure outranks a stop: it is what the user must act on
        first = next((e for e in errors if not isinstance(e, Stopped)), errors[0] if errors else None)
    first = comm.bcast(first, root=0)
    if first is not None:
        raise first
    return [r for d, _ in gathered for r in d] if comm.rank == 0 else None


def _batches(decks, idx, problem_cls):
    """Split a group into batches of similar members.

    Members of one batch share every time step, so a batch needs the union of the steps its
    members need. Sorting by the model's stiffness key (for grains: how far diffusion gets
    at the start of the path) keeps each batch's transients at similar times, and a batch of
    ``ensemble.batch_size`` members is still large enough that numpy, not Python, does the work.
    The batches depend only on the decks, never on the number of ranks.
    """
    size = decks[idx[0]]["ensemble"]["batch_size"]
    order = sorted(idx, key=lambda i: problem_cls.stiffness_key(decks[i]))   # stable: equal keys keep order
    return [order[k:k + size] for k in range(0, len(order), size)]


def _integrate(decks, comm, problem_cls, recorder_cls, progress_seconds, log, stop=None):
    # in the function: the driver imports petsc4py.PETSc, which must not load before
    # isosim.startup.init_petsc has passed the command line's PETSc options
    from ..solver.driver import integrated
    with integrated(decks, comm, problem_cls=problem_cls, recorder_cls=recorder_cls,
                    progress_seconds=progress_seconds, log=log, stop=stop) as (problem, rec, _):
        return problem, rec
