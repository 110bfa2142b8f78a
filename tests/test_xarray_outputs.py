"""Every results.h5 opens with xarray as it is (issue 19, item 1; docs/outputs.md): every group
of a run of each model, a grain and a chamber sweep, an inversion, a merged and a streamed
sweep opens with ``xarray.open_dataset(path, group=G, engine="h5netcdf")``, no axis is an
unnamed (phony) dimension, and every variable's axes follow the one documented order:
``member`` first where there is one, then ``time`` (or ``profile``), then the rest."""

import subprocess

import h5py
import numpy as np
import pytest

from support import INPUT, child_env, isosim_cmd, needs_mpirun, read_summary, run_cli

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

GRAIN_RUN = [INPUT / "xiong_fig1.toml", "--progress", "0", "--set", "grid.cells=20"]
GRAIN_SWEEP = [INPUT / "xiong_fig1.toml", "--progress", "0", "--set", "grid.cells=20", "--set",
               "output.temperatures_C=[]", "--set", 'ensemble.mode="independent"',
               "--set", "output.sweep_profiles=true", "--vary", "temperature.rate_C_per_Myr=1,1e7", "--vary", "phases.opx.beta=0.02,0.2"]
CAPSULE_RUN = [INPUT / "huang2010_zm98.toml", "--progress", "0", "--set", "capsule.cells=40"]
CHAMBER_RUN = [INPUT / "spera2004_eraxfc.toml", "--progress", "0"]
CHAMBER_SWEEP = [INPUT / "spera2004_montecarlo.toml", "--progress", "0", "--samples", "5", "--seed", "3"]
INVERSION = [INPUT / "xiong_inversion.toml", "--progress", "0", "--set", "grid.cells=20",
             "--over", "phases.cpx.beta=0,0.5"]
STREAMED = [INPUT / "xiong_fig1.toml", "--progress", "0", "--set", "grid.cells=20",
            "--set", "output.sweep_profiles=true", "--vary", "temperature.rate_C_per_Myr=log:1:1e7:9"]


def order_ok(dims):
    """member first if present; then time or profile (first of the rest) if present."""
    dims = list(dims)
    if "member" in dims and dims[0] != "member":
        return False
    rest = dims[1:] if dims[:1] == ["member"] else dims
    return all(t not in rest or rest[0] == t for t in ("time", "profile"))


def groups(path):
    with h5py.File(path, "r") as h5:
        found = ["/"]
        h5.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Group) else None)
    return found


def check_file(path):
    """Open every group with xarray/h5netcdf; no phony dimension; the documented order.
    Returns {group: xarray.Dataset} (loaded)."""
    out = {}
    for g in groups(path):
        with xr.open_dataset(path, group=g, engine="h5netcdf") as ds:
            ds = ds.load()
        phony = [d for d in ds.dims if str(d).startswith("phony_dim")]
        assert not phony, (path, g, phony)
        for name, var in ds.variables.items():
            assert order_ok(var.dims), (path, g, name, var.dims)
            if var.ndim and name not in ds.dims:
                assert "units" in var.attrs and "description" in var.attrs, (path, g, name)
        out[g] = ds
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every kind of results file, small and fast, produced once."""
    tmp = tmp_path_factory.mktemp("xr")
    jobs = {
        "grain": ["run", *GRAIN_RUN],
        "capsule": ["run", *CAPSULE_RUN],
        "chamber": ["run", *CHAMBER_RUN],
        "grain_sweep": ["sweep", *GRAIN_SWEEP],
        "chamber_sweep": ["sweep", *CHAMBER_SWEEP],
        "inversion": ["invert", *INVERSION],
        "slice1": ["sweep", *GRAIN_SWEEP, "--slice", "1/2"],
        "slice2": ["sweep", *GRAIN_SWEEP, "--slice", "2/2"],
    }
    for name, args in jobs.items():
        run_cli([*args, "--out", tmp / name], check=0)
    run_cli(["merge", tmp / "merged", tmp / "slice1", tmp / "slice2"], check=0)
    env = child_env(ISOSIM_STREAM_MEMBERS=4, ISOSIM_STREAM_WINDOW=4)
    proc = subprocess.run(isosim_cmd(["sweep", *STREAMED, "--out", tmp / "streamed"]), env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tmp


def test_runs(outputs):
    g = check_file(outputs / "grain" / "results.h5")
    s = g["series"]
    assert s["Delta_permil"].dims == ("member", "time", "isotope")
    assert s["inventory"].dims == ("member", "time", "isotope")
    assert s["phase_mean"].dims == ("member", "time", "isotope", "phase")
    assert {"tau", "t_Myr", "T_C"} <= set(s.coords)
    assert list(s["isotope"].values) == ["40Ca", "44Ca"] and list(s["phase"].values) == ["opx", "cpx"]
    p = g["profiles"]
    assert p["concentration"].dims == ("profile", "isotope", "class", "cell")
    assert p["boundary"].dims == ("member", "profile", "isotope")
    assert {"r_um", "r_over_R", "tau", "T_C"} <= set(p.coords)
    # the headline Delta is the last time of the series
    head = read_summary(outputs / "grain")["members"][0]
    assert float(s["Delta_permil"].isel(member=0, time=-1, isotope=1)) == head["Delta_permil"]

    c = check_file(outputs / "capsule" / "results.h5")
    assert c["series"]["inventory"].dims == ("time", "species")
    assert c["profiles"]["delta_permil"].dims == ("profile", "pair", "cell")
    assert "x_mm" in c["profiles"].coords and "x_mm" in c["steady_state"].coords
    assert c["steady_state"]["concentration"].dims == ("species", "cell")

    ch = check_file(outputs / "chamber" / "results.h5")
    path = ch["path"]
    assert path["Tm_C"].dims == ("member", "time")
    assert path["Cm_ppm"].dims == ("member", "time", "element")
    assert path["state"].dims == ("member", "time", "column")
    head = read_summary(outputs / "chamber")["members"][0]
    assert float(path["Mm"].isel(member=0, time=-1)) == head["Mm"]


@pytest.mark.parametrize("name", ["grain_sweep", "chamber_sweep", "merged", "streamed", "slice1"])
def test_sweeps(outputs, name):
    ds = check_file(outputs / name / "results.h5")
    summary = read_summary(outputs / name)
    n = summary["n_members"]
    s, m = ds["series"], ds["members"]
    assert s.sizes["member"] == m.sizes["member"] == n
    for k in summary["varied"]:                     # the varied values are coordinates
        assert k in s.coords and k in m.coords
        assert np.array_equal(s[k].values, ds["members/params"][k].values)
    for var in s.data_vars.values():
        assert var.dims == ("member", "time")
    assert "tau" in s.coords
    if name == "streamed":
        assert "streamed" in summary
    if name == "chamber_sweep":
        return
    assert "t_Myr" in s.coords
    p = ds["profiles"]                              # kept: output.sweep_profiles = true
    assert p["concentration"].dims == ("member", "isotope", "class", "cell")
    assert p.sizes["member"] == n and p["r_um"].dims == ("member", "class", "cell")
    assert list(p["isotope"].values) == ["40Ca", "44Ca"]
    for k in summary["varied"]:
        assert k in p.coords
    if name == "merged":
        direct = check_file(outputs / "grain_sweep" / "results.h5")
        assert np.array_equal(s["Delta_permil"].values, direct["series"]["Delta_permil"].values, equal_nan=True)
        assert np.array_equal(p["concentration"].values, direct["profiles"]["concentration"].values)


def test_inversion(outputs):
    ds = check_file(outputs / "inversion" / "results.h5")["/"]
    assert ds["solution"].dims == ("member",) and ds["scan_residual"].dims == ("member", "scan")
    assert ds["bracket"].dims == ("member", "bound") and "over_values" in ds.coords


@pytest.mark.mpi
@needs_mpirun
def test_collective_run(tmp_path):
    """Profiles written collectively by 2 ranks are labelled the same way."""
    run_cli(["run", *CAPSULE_RUN, "--out", tmp_path / "c2"], np=2, check=0)
    c = check_file(tmp_path / "c2" / "results.h5")
    assert c["profiles"]["concentration"].dims == ("profile", "species", "cell")
