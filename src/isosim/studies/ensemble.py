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
import math
import time

import numpy as np

from ..deck import validate
from ..deck.specs import Spaced, parse_values  # noqa: F401  (one parser for decks and the command line)
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
    """The member decks of a sweep, an inversion's evaluation or a Monte Carlo study.

    Member decks are the resolved base deck with the varied values set, each value checked
    by its field's rule, and *representative* members (first, last, every eighth, each varied
    key's extremes and the corners of the ``vary`` grid) validated in full, which must equal
    their patched deck (:class:`Decks`, shared with streamed sweeps): O(members) dictionary
    work instead of a full validation (~0.3 ms) per member. Whenever that does not settle it
    (a varied key that is no field of the base deck, a representative whose full validation
    differs from its patched deck, or any invalid member) every member is validated in full,
    as before: the same decks, and the same error naming the first invalid members, key and
    value. Cross-field rules are thus checked on the representatives only when every varied
    value passes its field's rule (as in a streamed sweep).

    Collective over ``comm`` if given: every rank builds every deck (the work is
    deterministic, so every rank raises the same error or none); only the full validation,
    when needed, is shared over the ranks (an allgather).

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
    plan = Plan(base, path, vary, samples, seed, extra)
    idx = np.arange(plan.n)
    assignments = plan.assignments(idx)
    patched, problems = Decks(raw, base, path, plan).patch(idx, assignments, plan.extremes())
    if patched is not None and not problems:
        decks = list(patched.values())           # in member order
    else:
        decks = _validate_all(raw, path, assignments, comm)
    params = {k: [a.get(k) for a in assignments] for k in plan.keys}
    return decks, params


def _validate_all(raw, path, assignments, comm):
    """Every member validated in full (each rank a share, every rank gets all: an allgather
    when ``comm`` has several ranks); DeckError naming the first invalid members."""
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
    return decks


class Plan:
    """The members of a study as a recipe: ``vary`` axes (cartesian, last fastest) times
    ``samples`` Monte Carlo draws times ``extra`` explicit members (fastest), in the order
    :func:`expand` has always given them. Member ``i``'s values come from ``np.unravel_index``
    (the order of ``itertools.product``), so a streamed sweep never lists its members."""

    def __init__(self, base, path, vary, samples, seed, extra=()):
        self.axes = [(k, v) for k, v in vary]
        self.lengths = tuple(len(v) for _, v in self.axes)
        self.samples = samples
        self.extra = [dict(e) for e in extra]
        self.draws = {}
        if samples:
            if not base["sample"]:
                raise UsageError(f"error: --samples {samples} needs distributions in the deck: add tables "
                                 f'such as [sample."phases.opx.beta"] to {path}')
            rng = np.random.default_rng(seed)
            self.draws = {k: sample_values(d, samples, rng) for k, d in base["sample"].items()}
        self.n = math.prod(self.lengths) * max(samples, 1) * max(len(self.extra), 1)
        self._core = list(dict.fromkeys([k for k, _ in self.axes] + list(self.draws)))
        self.keys = list(dict.fromkeys(self._core + [k for e in self.extra for k in e]))

    def _split(self, idx):
        """(axis subscripts, sample indices or None, extra indices or None) of members ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        e_idx = None
        if self.extra:
            idx, e_idx = np.divmod(idx, len(self.extra))
        a_idx, s_idx = (np.divmod(idx, self.samples) if self.samples else (idx, None))
        subs = np.unravel_index(a_idx, self.lengths) if self.lengths else ()
        return subs, s_idx, e_idx

    def _core_columns(self, subs, s_idx):
        cols = {}
        for (k, v), j in zip(self.axes, subs):
            cols[k] = v.array()[j].tolist() if isinstance(v, Spaced) else [v[x] for x in j.tolist()]
        for k, arr in self.draws.items():
            cols[k] = arr[s_idx].tolist()
        return cols

    def columns(self, idx):
        """{key: list of values} of members ``idx`` (int array); None where an explicit
        member does not set the key."""
        if self.extra:
            assignments = self.assignments(idx)
            return {k: [a.get(k) for a in assignments] for k in self.keys}
        subs, s_idx, _ = self._split(idx)
        return self._core_columns(subs, s_idx)

    def assignments(self, idx):
        """[{key: value}] of members ``idx``: what each member sets, in the order of its keys."""
        subs, s_idx, e_idx = self._split(idx)
        cols = self._core_columns(subs, s_idx)
        out = [{k: cols[k][m] for k in self._core} for m in range(len(idx))]
        if self.extra:
            out = [dict(a, **self.extra[e]) for a, e in zip(out, e_idx.tolist())]
        return out

    def extremes(self):
        """Member indices holding each varied key's smallest and largest value (numbers only),
        and the corners of the ``vary`` grid (every axis at its smallest or largest value,
        up to 6 numeric axes): where a rule between two varied keys breaks first."""
        out = set()
        stride = max(self.samples, 1) * max(len(self.extra), 1)
        ends = []
        for pos, (k, v) in enumerate(self.axes):
            arr = v.array() if isinstance(v, Spaced) else _numbers(v)
            if arr is None or not arr.size:
                ends.append((0,))
                continue
            ends.append(tuple(dict.fromkeys((int(np.argmin(arr)), int(np.argmax(arr))))))
            for j in ends[-1]:
                sub = [0] * len(self.lengths)
                sub[pos] = j
                out.add(int(np.ravel_multi_index(sub, self.lengths)) * stride)
        if 1 < sum(len(e) > 1 for e in ends) <= 6:
            for sub in itertools.product(*ends):
                out.add(int(np.ravel_multi_index(sub, self.lengths)) * stride)
        for arr in self.draws.values():
            out.update({int(np.argmin(arr)) * max(len(self.extra), 1),
                        int(np.argmax(arr)) * max(len(self.extra), 1)})
        return out


def _numbers(values):
    """``values`` as a float array if every one is a number (not a bool), else None."""
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        return np.asarray(values, dtype=float)
    return None


def _label(i, assignment):
    text = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in assignment.items())
    return f"{i} ({text})"


class Decks:
    """Member decks as the resolved base deck with the varied values patched in.

    Each varied value is checked by its field's rule; representative members are validated
    in full and must equal their patched deck. Once one differs (a varied key that other
    resolved values depend on, a table file), :attr:`patchable` is False and the caller
    validates every member in full. Used by :func:`expand` (all members at once) and by
    streamed sweeps (window by window, :mod:`isosim.studies.streaming`). Local: no MPI."""

    def __init__(self, raw, base, path, plan):
        from ..deck import MODELS
        from ..deck.load import split_key
        from ..deck.schema import Field, lookup
        self.raw, self.base, self.path, self.plan = raw, base, path, plan
        schema = MODELS[base["model"]].SCHEMA
        self.fields, self.parts = {}, {}
        for k in plan.keys:
            try:
                self.parts[k] = split_key(k)
            except ValueError:
                self.parts[k] = None
            spec = lookup(schema, self.parts[k]) if self.parts[k] else None
            self.fields[k] = spec if isinstance(spec, Field) else None
        #: False once a representative's full validation differed from its patched deck, or
        #: from the start if the model derives resolved values from a varied key (grain decks:
        #: the grid grid.accuracy_permil chooses from the path), which patching would not redo
        derives = getattr(MODELS[base["model"]], "derives_from", None)
        self.patchable = (all(f is not None for f in self.fields.values())
                          and not (derives and derives(base, plan.keys)))

    def check_values(self):
        """Problems of the varied values against their keys' field rules (vectorised)."""
        problems = []
        columns = list(self.plan.axes) + list(self.plan.draws.items())
        for k, v in columns:
            field = self.fields[k]
            if field is None:
                continue
            if isinstance(v, (Spaced, np.ndarray)):
                arr = v.array() if isinstance(v, Spaced) else v
                if not np.all(np.isfinite(arr)):
                    problems.append(f"{k}: {int(np.sum(~np.isfinite(arr)))} varied value(s) are not finite")
                    continue
                values = [float(arr.min()), float(arr.max())]
            else:
                values = list(v)
            bad = []
            for x in values:
                field.validate(k, x, bad)
            problems += sorted(set(bad), key=bad.index)[:10]
        if problems:
            raise DeckError(self.path, [f"varied values: {p}" for p in problems])

    def full(self, i, assignment):
        """(member ``i``'s deck validated in full, None) or (None, the problem text)."""
        try:
            return validate(_with_values(self.raw, assignment), self.path), None
        except (DeckError, ValueError) as exc:
            detail = "; ".join(exc.problems) if isinstance(exc, DeckError) else str(exc)
            return None, f"member {_label(i, assignment)}: {detail}"

    def _patched(self, assignment, problems):
        deck = dict(self.base)
        for key, value in assignment.items():
            parts = self.parts[key]
            node = deck
            try:
                for p in parts[:-1]:
                    node[p] = node = dict(node[p])
            except (KeyError, TypeError):
                return None
            node[parts[-1]] = self.fields[key].validate(key, value, problems)
        return deck

    def check_members(self, idx):
        """Validate members ``idx`` in full; raise DeckError naming the invalid ones."""
        problems = []
        for i, a in zip(idx, self.plan.assignments(idx)):
            _, p = self.full(i, a)
            if p:
                problems.append(p)
        if problems:
            raise DeckError(self.path, problems[:10])

    def representatives(self, idx, extremes=()):
        """Positions in ``idx`` (consecutive member indices) of the members validated in full:
        the first and last, every eighth of the run, each varied key's smallest and largest
        value within it, and those of the members ``extremes`` (:meth:`Plan.extremes`) it holds."""
        n = len(idx)
        if not n:
            return set()
        reps = {0, n - 1} | set(range(0, n, max(1, n // 8)))
        cols = self.plan.columns(idx)
        for k in self.plan.keys:
            arr = _numbers(cols[k])
            if arr is not None and arr.size:
                reps |= {int(np.argmin(arr)), int(np.argmax(arr))}
        lo = int(idx[0]) if n else 0
        reps |= {i - lo for i in extremes if 0 <= i - lo < n}
        return reps

    def patch(self, idx, assignments, extremes=()):
        """Members ``idx`` (consecutive indices, with their ``assignments``) as patched decks.

        Returns ``(decks, problems)``: ``decks`` ({member index: resolved deck}, in order) is
        None when they must be validated in full instead (see the class docstring);
        ``problems`` names the invalid members found (at most 10: the patched ones breaking a
        field rule, else the representatives failing full validation)."""
        if not self.patchable:
            return None, []
        reps = self.representatives(idx, extremes)
        problems, decks = [], {}
        for i, a in zip(idx.tolist(), assignments):
            bad = []
            d = self._patched(a, bad)
            if d is None:
                self.patchable = False
                break
            if bad:
                problems.append(f"member {_label(i, a)}: {'; '.join(bad)}")
                if len(problems) >= 10:
                    break
            decks[i] = d
        if self.patchable and not problems:
            for m in sorted(reps):
                full, p = self.full(int(idx[m]), assignments[m])
                if p:
                    problems.append(p)
                elif full != decks[int(idx[m])]:
                    self.patchable = False
                    break
        return (decks if self.patchable else None), problems


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
    if comm.size == 1:      # nothing to gather (a pickled round trip of 10^4 members' results took 2 s)
        gathered = [(done, error)]
    else:
        gathered = comm.gather((_pack_results(done), error), root=0)
        if comm.rank == 0:
            gathered = [(_unpack_results(d), e) for d, e in gathered]
    first = None
    if comm.rank == 0:
        errors = [e for _, e in gathered if e is not None]
        # a real failure outranks a stop: it is what the user must act on
        first = next((e for e in errors if not isinstance(e, Stopped)), errors[0] if errors else None)
    first = comm.bcast(first, root=0)
    if first is not None:
        raise first
    return [r for d, _ in gathered for r in d] if comm.rank == 0 else None


def _pack_results(done):
    """``done`` ([(member, headline, series)]) in columns for a gather: each series key's
    arrays as one array (with their shapes) for members whose series share their keys and
    the key's dtype. Pickling every member's small arrays one by one took seconds for 10^4
    members; :func:`_unpack_results` gives back equal arrays, keys in the same order."""
    layouts = {}
    for pos, (_, _, series) in enumerate(done):
        layouts.setdefault(tuple(series), []).append(pos)
    blocks = []
    for keys, positions in layouts.items():
        columns = []
        for k in keys:
            arrays = [done[p][2][k] for p in positions]
            if all(type(a) is np.ndarray for a in arrays) and len({a.dtype for a in arrays}) == 1:
                columns.append(([a.shape for a in arrays], np.concatenate([a.ravel() for a in arrays])))
            else:
                columns.append((None, arrays))
        blocks.append((keys, positions, columns))
    return [i for i, _, _ in done], [h for _, h, _ in done], blocks


def _unpack_results(packed):
    """The inverse of :func:`_pack_results`."""
    members, heads, blocks = packed
    series = [None] * len(members)
    for keys, positions, columns in blocks:
        values = []
        for shapes, data in columns:
            if shapes is None:
                values.append(data)
                continue
            ends = np.cumsum([math.prod(s) for s in shapes])
            values.append([data[e - math.prod(s):e].reshape(s) for s, e in zip(shapes, ends.tolist())])
        for m, p in enumerate(positions):
            series[p] = {k: v[m] for k, v in zip(keys, values)}
    return list(zip(members, heads, series))


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
