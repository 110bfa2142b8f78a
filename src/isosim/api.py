"""isosim from Python: a notebook, a script, or every rank of an ``mpirun``.

::

    import isosim
    r = isosim.run("input/xiong_fig1.toml", set={"temperature.rate_C_per_Myr": 100})
    r.summary["results"]["Delta_permil"]
    r.dataset("series")                     # an xarray.Dataset (needs xarray and h5netcdf)
    s = isosim.sweep("input/xiong_fig1.toml", vary={"temperature.rate_C_per_Myr": [1, 10, 100]})
    isosim.open_results("runs/fig1").dataset("profiles")

These are the functions the ``isosim`` command calls: the same validation (a bad deck raises
:class:`isosim.DeckError` with the command's message), the same run directory and files.
Without mpirun they run on one process; under ``mpirun -n N python script.py`` every rank
calls them with the same arguments (collective over MPI_COMM_WORLD) and gets the same
:class:`Results`. PETSc starts on the first call with its ``petsc_options``; options given to
later calls apply to that call only.
"""

import json
import tempfile
from pathlib import Path

from .deck import validate
from .deck.load import apply_overrides, load_raw, tomllib
from .deck.specs import member_count, parse_values
from .errors import DeckError, UsageError
from .io.jsonfile import restore_non_finite
from .preflight import preflight
from .registry import model_spec
from .startup import init_petsc

__all__ = ["Results", "open_results", "run", "sweep"]


class Results:
    """What a run or study wrote: its directory, its summary, its HDF5 groups as datasets.

    Parameters
    ----------
    path : str or Path
        An output directory (``summary.json`` and ``results.h5``).
    """

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "summary.json").is_file():
            raise UsageError(f"error: {self.path} holds no summary.json: not a finished isosim run or study")
        self._summary = None

    @property
    def summary(self):
        """The ``summary.json`` of the directory, as a dict (values written as ``null`` because
        they were not finite are NaN or inf again: the file's ``non_finite`` map says which)."""
        if self._summary is None:     # non-finite results come back as NaN/inf (written as null)
            self._summary = restore_non_finite(json.loads((self.path / "summary.json").read_text(encoding="utf-8")))
        return self._summary

    @property
    def kind(self):
        return self.summary.get("kind")

    def groups(self):
        """The groups of ``results.h5`` (each opens with :meth:`dataset`)."""
        import h5py
        with h5py.File(self.path / "results.h5", "r") as h5:
            return [name for name, obj in h5.items() if isinstance(obj, h5py.Group)]

    def dataset(self, group):
        """Group ``group`` of ``results.h5`` as an ``xarray.Dataset`` (loaded into memory, the
        file closed): dimensions named, coordinates attached, units in ``attrs``."""
        try:
            import xarray as xr
        except ImportError:
            raise UsageError("error: Results.dataset needs xarray and h5netcdf (Debian: apt install "
                             "python3-xarray python3-h5netcdf; pip: pip install xarray h5netcdf)") from None
        with xr.open_dataset(self.path / "results.h5", group=group, engine="h5netcdf") as ds:
            return ds.load()

    def __repr__(self):
        s = self.summary
        return f"<isosim.Results {s.get('kind', '?')} of {s.get('model', '?')} in {self.path}>"


def open_results(path):
    """The :class:`Results` of an output directory written earlier (by the command or the API)."""
    return Results(path)


# ------------------------------------------------------------------------------ decks
def _raw_deck(deck, overrides):
    """(raw deck with overrides applied, the path used in messages and for relative files).

    ``deck``: a path to a TOML file, a TOML text, or a dict (a raw deck, as TOML would read)."""
    if isinstance(deck, dict):
        raw, path = json.loads(json.dumps(deck)), "<deck dict>"
        problems = []
        apply_overrides(raw, overrides, problems)
        if problems:
            raise DeckError(path, problems)
        return raw, path
    text = str(deck)
    if "\n" in text or ("=" in text and not Path(text).exists()):
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DeckError("<deck text>", [f"not TOML: {exc}"]) from None
        return _raw_deck(raw, overrides)[0], "<deck text>"
    return load_raw(text, overrides), text


def _overrides(set_):
    """``set={"key": value}`` as the command line's ``KEY=VALUE`` strings (values as TOML)."""
    if not set_:
        return []
    if isinstance(set_, (list, tuple)):
        return list(set_)
    return [f"{k}={_toml_value(v)}" for k, v in set_.items()]


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(float(v)) if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------------ PETSc
class _Options:
    """PETSc options of one call: given to PETSc at its start (the first call) or pushed into
    its options database for the call and removed after."""

    def __init__(self, options):
        self.options = list(options or [])
        self.pushed = []

    def start(self, model=None, solver=None):
        import sys
        first = "petsc4py.PETSc" not in sys.modules
        comm = init_petsc(self.options if first else [], model, solver)
        if not first and self.options:
            from petsc4py import PETSc
            opts = PETSc.Options()
            i = 0
            while i < len(self.options):
                name = self.options[i].lstrip("-")
                value = None
                if i + 1 < len(self.options) and not self.options[i + 1].startswith("-"):
                    value = self.options[i + 1]
                    i += 1
                opts.setValue(name, value if value is not None else "")
                self.pushed.append(name)
                i += 1
            from .solver.options import check_petsc_options
            check_petsc_options(self.options, model, solver)
        return comm

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pushed:
            from petsc4py import PETSc
            opts = PETSc.Options()
            for name in self.pushed:
                opts.delValue(name)
        return False


def _out_dir(out, comm, prefix):
    """``out``, or a new temporary directory (made on rank 0, the same path everywhere)."""
    if out is not None:
        return Path(out)
    path = tempfile.mkdtemp(prefix=f"isosim-{prefix}-") if comm.rank == 0 else None
    return Path(comm.bcast(path, root=0)) / "out"


# ------------------------------------------------------------------------------ calls
def run(deck, set=None, out=None, petsc_options=None, *, force=False, progress=0.0, memory_check=True):  # noqa: A002
    """Run one deck; return its :class:`Results`. Collective over MPI_COMM_WORLD.

    Parameters
    ----------
    deck : str, Path or dict
        A deck file, a deck as TOML text, or a raw deck dict.
    set : dict or list of str, optional
        Overrides, ``{"temperature.rate_C_per_Myr": 100}`` or ``["temperature.rate_C_per_Myr=100"]``.
    out : path, optional
        The output directory (default: a new temporary directory).
    petsc_options : list of str, optional
        e.g. ``["-ts_type", "rosw", "-ts_rtol", "1e-9"]``.
    force : bool
        Replace an earlier run in ``out``.
    progress : float
        Seconds between progress lines (0: none).
    memory_check : bool
        Refuse a deck needing more memory than the machine has (before allocating).

    Raises
    ------
    isosim.DeckError
        The deck is invalid (nothing was run); the message is the command line's.
    isosim.IsosimError
        Any other refusal or failure, with the command line's message and exit code.
    """
    raw, path = _raw_deck(deck, _overrides(set))
    resolved = validate(raw, path)
    preflight(resolved, skip_memory=not memory_check)
    with _Options(petsc_options) as options:
        comm = options.start(resolved["model"], resolved["solver"])
        from .runner import run_deck           # after PETSc: it loads the model classes
        out = _out_dir(out, comm, "run")
        run_deck(resolved, out, comm, force=force, petsc_options=options.options, progress_seconds=progress)
    return Results(out)


def sweep(deck, vary=None, samples=None, seed=0, set=None, out=None, petsc_options=None, *,  # noqa: A002
          force=False, progress=0.0, memory_check=True):
    """Run every member of a deck's variations; return the sweep's :class:`Results`.
    Collective over MPI_COMM_WORLD.

    Parameters
    ----------
    vary : dict, optional
        Key -> values: a list, or the command line's text (``"log:1:1e7:64"``, ``"0:0.5:11"``);
        the members are the cartesian product. Default: the deck's ``[sweep]`` table.
    samples : int, optional
        Monte Carlo draws from the deck's ``[sample]`` tables (default: the deck's; 0: none).
    seed : int
        Seed of the draws.
    set, out, petsc_options, force, progress, memory_check
        As for :func:`run`.
    """
    raw, path = _raw_deck(deck, _overrides(set))
    base = validate(dict(raw), path)
    if "sweep" not in model_spec(base["model"]).studies:
        raise UsageError(f"error: sweeps are not available for {base['model']} decks yet")
    try:
        if vary is None:
            pairs = [parse_values(v) for v in base["sweep"]["vary"]]
        else:
            pairs = [parse_values(f"{k}={v}" if isinstance(v, str) else f"{k}={_toml_list(v)}")
                     for k, v in vary.items()]
        samples = base["sweep"]["samples"] if samples is None else int(samples)
        n = member_count(pairs, samples)
    except ValueError as exc:
        raise UsageError(f"error: {exc}") from None
    if n == 0 or (not pairs and not samples):
        raise UsageError("error: nothing to sweep: give vary or samples, or a [sweep] table in the deck")
    preflight(base, members=n, skip_memory=not memory_check)
    with _Options(petsc_options) as options:
        comm = options.start(base["model"], base["solver"])
        from .studies import run_sweep
        out = _out_dir(out, comm, "sweep")
        run_sweep(raw, path, out, comm, vary=pairs, samples=samples, seed=seed, force=force,
                  progress_seconds=progress, petsc_options=options.options)
    return Results(out)


def _toml_list(values):
    return ",".join(_toml_value(v) for v in values)
