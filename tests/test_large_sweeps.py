"""Sweeps of up to 10^7 members (issue 17): streamed above ISOSIM_STREAM_MEMBERS (10^5)
members, never holding every member deck; the first progress line within 10 s and the
resident memory below a stated bound; stopped with SIGTERM (exit 75) and resumed. A
streamed sweep of one window has exactly the ordinary sweep's batches, so its results are
bitwise the ordinary sweep's; several windows resume bitwise and give the same bytes on 1
and 2 ranks.
"""

import json
import os
import select
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from support import CLEAN_ENV, INPUT, isosim_cmd, needs_mpirun, read_summary, run_cli

#: The stated bound on the resident memory of a 10^7-member sweep (measured: ~260 MB).
RSS_BOUND_MB = 1000
TEN_MILLION = ["sweep", INPUT / "xiong_fig1.toml", "--vary", "temperature.rate_C_per_Myr=log:1:1e7:10000000",
               "--progress", "5"]
SMALL = ["sweep", INPUT / "xiong_fig1.toml", "--vary", "temperature.rate_C_per_Myr=log:1:1e7:96",
         "--set", "ensemble.batch_size=8", "--set", "output.sweep_profiles=true", "--progress", "0"]


def _env(**extra):
    return dict(CLEAN_ENV, **{k: str(v) for k, v in extra.items()})


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _datasets(path):
    with h5py.File(path, "r") as h5:
        names = []
        h5.visit(lambda n: names.append(n) if isinstance(h5[n], h5py.Dataset) else None)
        return {n: h5[n][()] for n in names}


def _same_h5(a, b):
    da, db = _datasets(a), _datasets(b)
    assert sorted(da) == sorted(db)
    for n in da:
        assert da[n].shape == db[n].shape, n
        assert np.array_equal(da[n], db[n], equal_nan=np.asarray(da[n]).dtype.kind in "fc"), n   # labels: text


def _cpu_s(pid):
    """CPU seconds (user + system) process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_ten_million_members_start_within_10s_and_stay_small(tmp_path):
    """The sweep of the issue: a progress line within 10 s, RSS below the bound for 15 s, then
    SIGTERM: exit 75 with the finished members kept.

    The 10 s are the process's own CPU seconds (its start-up work), not the wall clock: on a
    shared machine (CI runners, a loaded workstation) the wall clock measures the neighbours.
    The wall clock only bounds the wait (a hung start-up fails, after 120 s)."""
    out = tmp_path / "big"
    t0 = time.monotonic()
    proc = subprocess.Popen(isosim_cmd([*TEN_MILLION, "--out", out]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)
    lines, first_progress, peak, cpu = [], None, 0.0, 0.0
    try:
        while time.monotonic() - t0 < 120 + 15:
            ready, _, _ = select.select([proc.stdout], [], [], 0.25)
            if ready:
                line = proc.stdout.readline()
                if line:
                    lines.append(line)
                    if first_progress is None and "members done" in line:
                        first_progress, cpu = time.monotonic() - t0, _cpu_s(proc.pid)
            assert proc.poll() is None, "".join(lines) + proc.stderr.read()
            peak = max(peak, _rss_mb(proc.pid))
            if first_progress is None:
                assert _cpu_s(proc.pid) < 10 and time.monotonic() - t0 < 120, f"no progress line within 10 s: {lines}"
            elif time.monotonic() - t0 > first_progress + 15:
                break
        assert first_progress is not None and cpu < 10, lines
        assert peak < RSS_BOUND_MB, f"peak RSS {peak:.0f} MB"
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "streamed" in lines[0] and "10,000,000 members" in lines[0]
    assert "Continue with: isosim restart" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["streamed"] and manifest["vary"] == [["temperature.rate_C_per_Myr",
                                                          {"spaced": ["log", 1.0, 1e7, 10_000_000]}]]
    assert (out / "manifest.json").stat().st_size < 100_000      # the recipe, not 10^7 numbers
    assert list((out / "units").glob("part-*.h5"))
    print(f"first progress line after {first_progress:.1f} s ({cpu:.1f} CPU s), peak RSS {peak:.0f} MB")


def test_bad_varied_values_refused_before_anything_runs(tmp_path):
    """Field rules on every varied value (vectorised) and cross-field rules on the extremes."""
    t0 = time.monotonic()
    p = run_cli(["sweep", INPUT / "xiong_fig1.toml", "--vary", "temperature.rate_C_per_Myr=lin:-1:1e7:1000000",
                 "--out", tmp_path / "a"], check=2)
    assert "temperature.rate_C_per_Myr = -1" in p.stderr and "varied values" in p.stderr
    p = run_cli(["sweep", INPUT / "xiong_fig1.toml", "--vary", "temperature.end_C=lin:500:1300:1000000",
                 "--out", tmp_path / "b"], check=2)
    assert "member 999999 (temperature.end_C=1300)" in p.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_streamed_sweep_is_the_ordinary_sweep(tmp_path):
    """One window: the ordinary sweep's batches, bitwise its results; a compact summary."""
    run_cli([*SMALL, "--out", tmp_path / "ordinary"], check=0)
    p = subprocess.run(isosim_cmd([*SMALL, "--out", tmp_path / "streamed"]), capture_output=True, text=True,
                       env=_env(ISOSIM_STREAM_MEMBERS=10), timeout=600)
    assert p.returncode == 0, p.stderr
    assert "streamed" in p.stdout
    _same_h5(tmp_path / "ordinary" / "results.h5", tmp_path / "streamed" / "results.h5")
    s = read_summary(tmp_path / "streamed")
    o = read_summary(tmp_path / "ordinary")
    assert "members" not in s and s["members_in"] == "results.h5" and s["n_members"] == 96
    assert s["sweep_digest"] == o["sweep_digest"]
    deltas = [m["Delta_permil"] for m in o["members"]]
    assert s["results"]["Delta_permil"]["min"] == min(deltas)
    assert s["results"]["Delta_permil"]["max"] == max(deltas)
    assert s["axes"][0]["count"] == 96
    # a streamed sweep is complete: restart changes nothing
    run_cli(["restart", tmp_path / "streamed"], check=0)


def _stop_after_units(args, out, n_units, env, np_=None):
    proc = subprocess.Popen(isosim_cmd([*args, "--out", out], np_), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    t0 = time.monotonic()
    while len(list((out / "units").glob("part-*.h5"))) < n_units:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 300
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


WINDOWED = {"ISOSIM_STREAM_MEMBERS": 10, "ISOSIM_STREAM_WINDOW": 24}     # windows of 3 batches


@pytest.fixture(scope="module")
def windowed_reference(tmp_path_factory):
    ref = tmp_path_factory.mktemp("streamed") / "ref"
    p = subprocess.run(isosim_cmd([*SMALL, "--out", ref]), capture_output=True, text=True, env=_env(**WINDOWED),
                       timeout=600)
    assert p.returncode == 0, p.stderr
    return ref


def test_streamed_windows_stop_and_resume_bitwise(tmp_path, windowed_reference):
    """Stopped on SIGTERM after some batches and resumed: the uninterrupted sweep's results."""
    stopped = tmp_path / "stopped"
    code, err = _stop_after_units(SMALL, stopped, 4, _env(**WINDOWED))
    if code == 75:
        assert "Continue with: isosim restart" in err
        # the window size comes from the manifest, not the environment
        p = subprocess.run(isosim_cmd(["restart", stopped]), capture_output=True, text=True, env=CLEAN_ENV,
                           timeout=600)
        assert p.returncode == 0, p.stderr
    else:
        assert code == 0, err               # finished before the signal: nothing to resume
    _same_h5(windowed_reference / "results.h5", stopped / "results.h5")


@needs_mpirun
def test_streamed_windows_two_ranks_bitwise(tmp_path, windowed_reference):
    two = tmp_path / "two"
    p = subprocess.run(isosim_cmd([*SMALL, "--out", two], 2), capture_output=True, text=True, env=_env(**WINDOWED),
                       timeout=600)
    assert p.returncode == 0, p.stderr
    _same_h5(windowed_reference / "results.h5", two / "results.h5")


@pytest.mark.parametrize("samples", [300])
def test_streamed_monte_carlo_is_the_ordinary_one(tmp_path, samples):
    """Monte Carlo draws and a cartesian axis together: the streamed members are the ordinary
    sweep's members in the same order (the params rows), one window."""
    deck = tmp_path / "mc.toml"
    deck.write_text((INPUT / "xiong_fig1.toml").read_text()
                    + '\n[sample."phases.opx.beta"]\ndist = "uniform"\nlow = 0.0\nhigh = 0.3\n')
    args = ["sweep", deck, "--vary", "phases.cpx.beta=0,0.1", "--samples", "4", "--seed", "3",
            "--progress", "0", "--set", "ensemble.batch_size=4"]
    run_cli([*args, "--out", tmp_path / "o"], check=0)
    p = subprocess.run(isosim_cmd([*args, "--out", tmp_path / "s"]), capture_output=True, text=True,
                       env=_env(ISOSIM_STREAM_MEMBERS=2), timeout=600)
    assert p.returncode == 0, p.stderr
    _same_h5(tmp_path / "o" / "results.h5", tmp_path / "s" / "results.h5")
