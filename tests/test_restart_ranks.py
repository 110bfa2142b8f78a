"""N→M restart: a checkpoint written on N ranks continues on M ranks, for every model.

The checkpoint is made deterministic by a step limit (``-ts_max_steps``): the run stops with
exit 3 after checkpointing its last good state, collectively (each rank wrote its own rows).
The restart on another rank count reads its own rows and must end within round-off of the
uninterrupted run: the steps are the same, only the order of parallel sums differs.
"""


import h5py
import numpy as np
import pytest

from support import INPUT, needs_mpirun, read_summary, run_cli

pytestmark = [needs_mpirun, pytest.mark.mpi]

CASES = {
    # model: deck, overrides, step to stop at, results.h5 datasets to compare (the profiles are
    # written collectively: each rank its own classes or cells)
    "grain_exchange": ("xiong_fig1.toml", ["--set", "grid.cells=60"], 25,
                       ("series/Delta_permil", "profiles/concentration")),
    "capsule": ("huang2010_zm70.toml", ["--set", "capsule.cells=64"], 15,
                ("profiles/delta_permil", "profiles/x_mm", "steady_state/concentration")),
    "chamber": ("spera2004_eraxfc.toml", [], 40, ("path/Tm_C",)),
}


def _flat(d, prefix=""):
    """Numbers of a summary's results, flattened to {key: float}."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    refs = {}
    for model, (deck, sets, _, _) in CASES.items():
        d = tmp_path_factory.mktemp(f"ref_{model}") / "run"
        run_cli(["run", INPUT / deck, "--out", d, "--progress", "0", *sets], check=0)
        refs[model] = d
    return refs


@pytest.mark.parametrize("model", sorted(CASES))
@pytest.mark.parametrize("n_write,n_read", [(2, 1), (1, 2)])
def test_restart_on_another_rank_count(tmp_path, references, model, n_write, n_read):
    deck, sets, stop, series = CASES[model]
    out = tmp_path / "run"
    proc = run_cli(["run", INPUT / deck, "--out", out, "--progress", "0", *sets, "-ts_max_steps", str(stop)],
                   np=n_write)
    assert proc.returncode == 3, proc.stderr
    with h5py.File(out / "checkpoint.h5") as f:
        assert int(f.attrs["nranks"]) == n_write and int(f.attrs["step"]) == stop
    proc = run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "100000000"], np=n_read, check=0)
    assert f"written on {n_write} rank(s)" in proc.stdout
    ref = references[model]
    a = _flat(read_summary(ref)["results"])
    b = _flat(read_summary(out)["results"])
    assert a.keys() == b.keys() and a
    for k in a:
        # round-off of reordered parallel sums, carried through a few hundred steps
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12), k
    with h5py.File(ref / "results.h5") as fa, h5py.File(out / "results.h5") as fb:
        for name in series:
            x, y = fa[name][()], fb[name][()]
            assert x.shape == y.shape, name
            assert np.nanmax(np.abs(x - y)) <= 1e-9 * max(1.0, np.nanmax(np.abs(x))), name
