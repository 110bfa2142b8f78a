"""What every model's recorder shares: output times still due, recordings round-tripped through
checkpoints, and datasets written with units."""

import numpy as np

from ..io.distributed import Slab
from ..io.layout import mark


class Recorder:
    """Base of the recorders. Subclasses set ``times`` (ascending output times on the TS
    clock), ``series`` and ``profiles`` (dicts of lists, ``series["tau"]`` the times recorded;
    on rank 0).

    Profiles of large fields stay split over the ranks like the state itself: each rank keeps
    its own rows of the problem's state fields named in ``PROFILED`` (one entry of
    ``local_profiles`` per profile time) and writes them collectively (:meth:`write_fields`).
    """

    #: problem state fields whose profiles are kept split over the ranks
    PROFILED = ()
    #: output times taken from the integrator's dense output between steps instead of being
    #: landed on (ascending; disjoint from ``times``). Empty: every output is an exact stop.
    interpolated_times = np.zeros(0)

    def _profile_fields(self, u):
        """The problem's fields to profile (``profile_fields`` if it has them, e.g. cell values
        of a state held in another basis; else its state fields). Local."""
        return self.problem.profile_fields(u)

    def keep_profile(self, u):
        """Keep this rank's rows of the ``PROFILED`` fields of local state ``u``. Local."""
        fields = self._profile_fields(u)
        self.local_profiles.append({k: fields[k].data.copy() for k in self.PROFILED})

    def layout(self):
        """The problem's fields to profile as this rank holds them: global shapes and first
        rows (their data is not computed, or that of an uninitialised array; never read). Local."""
        return self.problem.profile_fields(None)

    def profile_stack(self, name, since=0):
        """This rank's rows of the profiles of ``name`` from the ``since``-th on: [row, profile, ...]."""
        kept = self.local_profiles[since:]
        if not kept:
            s = self.layout()[name]
            return np.zeros((s.data.shape[0], 0, *s.shape[1:]))
        return np.stack([p[name] for p in kept], axis=1)

    def field_state(self, since=None):
        """Split recordings for a checkpoint: this rank's rows of each profile stack (from entry
        ``since[name]`` on, if given: what an earlier checkpoint did not hold). Local."""
        fields = self.layout()
        out = {}
        for k in self.PROFILED:
            name, first = f"profile_{k}", (since or {}).get(f"profile_{k}", 0)
            out[name] = Slab((fields[k].shape[0], len(self.local_profiles) - first, *fields[k].shape[1:]),
                             fields[k].start, self.profile_stack(k, first))
        return out

    def load_fields(self, read):
        """This rank's rows of the split recordings of a checkpoint (any writer rank count)."""
        if not self.PROFILED:
            return
        fields = self.layout()
        stacks = {k: read(f"profile_{k}", fields[k].start, fields[k].stop) for k in self.PROFILED}
        self.local_profiles = [{k: v[:, i] for k, v in stacks.items()} for i in range(len(self.profiles["tau"]))]

    def output_bytes(self):
        """About the size of the results file: the recordings, and each profile of a large
        field twice (concentrations and deltas). Rank 0's value is the one used."""
        small = sum(np.asarray(v).nbytes for v in self.state().values())
        fields = self.layout()
        big = sum(2 * 8 * len(self.local_profiles) * int(np.prod(fields[k].shape)) for k in self.PROFILED)
        return small + big

    def end_profiles(self):
        """Each member's profiles at the end of its path, for a sweep that keeps them
        (``output.sweep_profiles``): on rank 0 a list (one ``{name: array}`` per member), None
        elsewhere, or everywhere when the deck does not ask or the model has no profiles.
        Collective over the problem's communicator. See :meth:`profile_attrs`."""
        return None

    @classmethod
    def profile_attrs(cls, deck):
        """``{name: (units, description, axis names)}`` of :meth:`end_profiles` as a sweep
        writes them (the first axis ``member``), for resolved base ``deck``."""
        return {}

    @classmethod
    def profile_axes(cls, deck):
        """``{axis: names}``: text labels of the axes of :meth:`end_profiles` (e.g. isotopes)."""
        return {}

    def write_fields(self, f):
        """Write the split recordings into a :class:`~isosim.io.distributed.CollectiveFile`.
        Collective. (Models without large fields write nothing here.)"""

    def _last(self):
        return self.series["tau"][-1] if self.series["tau"] else -1.0

    def pending_times(self):
        """Output times still to be landed on and recorded, ascending."""
        last = self._last()
        return [t for t in self.times if t > last]

    def interpolated_due(self, t0, t1):
        """Interpolated output times in (t0, t1] not yet recorded, ascending."""
        it = self.interpolated_times
        return it[(it > max(t0, self._last())) & (it <= t1)]

    def record_interpolated(self, times, states):
        """Record output times ``times`` (ascending, none of them a profile time) from the
        dense-output states ``states`` (len(times), local size). Collective. Recorders that
        can treat the stack at once override this (one call per sample costs Python overhead
        comparable to the diagnostics of a small problem)."""
        for t, u in zip(times, states):
            self.record(float(t), u)

    def sample_values(self, tau, u):
        """For the interpolated output times: the linear functionals of local state ``u`` at
        ``tau`` that the records need and their tau-derivatives along the equations,
        ``(values, rates)`` (1-D), which the driver interpolates over each step (cubic
        Hermite) instead of the whole state; then it calls :meth:`record_sampled`. None (this
        default): the driver interpolates whole states (TSInterpolate) and calls
        :meth:`record_interpolated`. Collective."""
        return None

    def record_sampled(self, times, values):
        """Record the interpolated output ``times`` from the interpolated functionals ``values``
        (len(times), nf) of :meth:`sample_values`. Collective. Recorders whose
        :meth:`sample_values` returns functionals define it."""
        raise NotImplementedError(f"{type(self).__name__} samples whole states")

    def state(self, since=None):
        """Recordings as arrays, for a checkpoint: from row ``since[name]`` on, if given (what an
        earlier checkpoint did not hold; only those rows are converted)."""
        since = since or {}
        out = {}
        for prefix, recs in (("series", self.series), ("profiles", self.profiles)):
            for k, v in recs.items():
                name = f"{prefix}_{k}"
                out[name] = np.asarray(v[since.get(name, 0):])
        return out

    def load_state(self, arrays):
        """Recordings from a checkpoint (see :meth:`state`)."""
        for k in self.series:
            self.series[k] = list(arrays.get(f"series_{k}", []))
        for k in self.profiles:
            self.profiles[k] = list(arrays.get(f"profiles_{k}", []))


def put(group, name, data, units, doc, dims=None):
    """Create dataset ``name`` in an h5py group with ``units`` and ``description`` attributes;
    ``dims`` names its axes (member, time or profile, then the rest: docs/outputs.md)."""
    ds = group.create_dataset(name, data=np.asarray(data))
    ds.attrs["units"] = units
    ds.attrs["description"] = doc
    if dims is not None:
        mark(ds, dims)
    return ds
