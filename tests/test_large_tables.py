"""Large tables are stored once (issue 17).

A temperature path of 10^5 rows (a CSV the deck names): the resolved deck refers to the file
and the SHA-256 of its rows instead of copying them, so ``deck.toml``, ``summary.json`` and
the deck inside ``results.h5`` and the checkpoint stay a few kB; the rows are stored once in
``results.h5`` (``tables/<sha256>``) and once in each checkpoint (``outputs/table_<sha256>``).
A stopped run restarts bitwise; a CSV changed between stop and restart does not change the
run (the restart takes the checkpoint's rows and warns, naming the file), while the deck it
pins is refused by ``isosim check`` and a stopped sweep's restart is refused (exit 2).
"""

import hashlib
import json
import signal
import subprocess

import h5py
import numpy as np
import pytest

from support import CLEAN_ENV, INPUT, isosim_cmd, read_summary, run_cli

ROWS = 100_000
ROW_BYTES = 16 * ROWS                  # float64 t and T
SMALL = 8_000                          # bytes: deck.toml and the deck in results.h5/checkpoints
# a run of a few seconds, with progress lines to stop it at (eigenvector unknowns: fast per step)
SLOW = ["--set", "grid.cells=1000", "--set", "grid.stretch=1.0", "--set", "solver.rtol=1e-10"]
KEYS = ("series/Delta_permil", "series/T_apparent_C", "series/inventory", "profiles/concentration")


def _rows():
    t = np.linspace(0.0, 60.0, ROWS)
    return t, 1200.0 - 10.0 * t + 0.5 * np.sin(7.0 * np.pi * t / 60.0)


def _write_case(d, edit_row=None):
    """deck.toml (Fig. 1 with a tabulated path) and path.csv in ``d``; returns the deck path."""
    t, T = _rows()
    if edit_row is not None:
        T = T.copy()
        T[edit_row] += 1.0
    (d / "path.csv").write_text("t_Myr,T_C\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(t, T)))
    text = (INPUT / "xiong_fig1.toml").read_text().replace('path = "cooling"', 'path = "table"\nfile = "path.csv"')
    deck = d / "deck.toml"
    deck.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith(("start_C", "end_C", "rate_C"))))
    return deck


def _digest(t, T):
    return hashlib.sha256(np.column_stack([t, T]).astype("<f8").tobytes()).hexdigest()


def _big_objects(path):
    """Names of the datasets and attributes of an HDF5 file holding at least ROWS values or bytes."""
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.size >= ROWS:
            out.append(name)
        for k, v in obj.attrs.items():
            if np.asarray(v).size >= ROWS or len(str(v)) >= ROWS:
                out.append(f"{name}@{k}")

    with h5py.File(path) as f:
        visit("/", f)
        f.visititems(visit)
    return out


def _compare(a_dir, b_dir):
    with h5py.File(a_dir / "results.h5") as a, h5py.File(b_dir / "results.h5") as b:
        for k in KEYS:
            x, y = a[k][()], b[k][()]
            assert x.shape == y.shape and np.array_equal(x, y), k


def _start_and_stop(deck, out):
    """Start a slow run, SIGTERM it after two progress lines; returns (exit code, stderr)."""
    cmd = isosim_cmd(["run", deck, "--out", out, "--progress", "0.2", *SLOW])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CLEAN_ENV)
    seen = 0
    for line in proc.stdout:
        if "% |" in line:
            seen += 1
            if seen >= 2:
                proc.send_signal(signal.SIGTERM)
                break
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("large")
    deck = _write_case(d)
    out = d / "run"
    run_cli(["run", deck, "--out", out, "--progress", "0", *SLOW], check=0)
    return deck, out


def test_outputs_small_and_rows_stored_once(reference):
    deck, out = reference
    t, T = _rows()
    sha = _digest(t, T)
    assert (out / "deck.toml").stat().st_size < SMALL
    assert (out / "summary.json").stat().st_size < 20_000
    text = (out / "deck.toml").read_text()
    assert f'table_sha256 = "{sha}"' in text and f'file = "{deck.parent / "path.csv"}"' in text
    summary = read_summary(out)
    assert summary["deck"]["temperature"]["table_sha256"] == sha
    assert summary["deck"]["temperature"]["table_t_Myr"] == []
    with h5py.File(out / "results.h5") as f:
        assert len(f.attrs["deck"]) < SMALL
        g = f[f"tables/{sha}"]
        assert list(g.attrs["columns"]) == ["t_Myr", "T_C"] and g.attrs["sha256"] == sha
        assert g.attrs["file"] == str(deck.parent / "path.csv")
        assert np.array_equal(g["t_Myr"][()], t) and np.array_equal(g["T_C"][()], T)
        assert g["T_C"].attrs["units"] == "degC" and g["t_Myr"].attrs["units"] == "Myr"
    assert _big_objects(out / "results.h5") == [f"tables/{sha}/T_C", f"tables/{sha}/t_Myr"]   # the rows, once
    # the same path as a 'cooling'-like deck would give: the table was really used
    assert 500 < summary["results"]["T_apparent_C"] < 1000


def test_small_table_stays_in_the_deck(tmp_path):
    """At most 1000 rows: copied into the resolved deck as before (no table_sha256 key)."""
    from isosim.deck import load_deck
    (tmp_path / "p.csv").write_text("t_Myr,T_C\n" + "".join(f"{60 * i / 999!r},{1200 - 600 * i / 999!r}\n"
                                                             for i in range(1000)))
    text = (INPUT / "xiong_fig1.toml").read_text().replace('path = "cooling"', 'path = "table"\nfile = "p.csv"')
    deck_path = tmp_path / "deck.toml"
    deck_path.write_text("\n".join(ln for ln in text.splitlines()
                                   if not ln.startswith(("start_C", "end_C", "rate_C"))))
    deck = load_deck(deck_path)
    assert len(deck["temperature"]["table_t_Myr"]) == 1000 and deck["temperature"]["file"] == "p.csv"
    assert "table_sha256" not in deck["temperature"]
    assert "table_sha256" not in load_deck(INPUT / "xiong_fig1.toml")["temperature"]


def test_stop_restart_is_bitwise(tmp_path, reference):
    deck = _write_case(tmp_path)
    out = tmp_path / "run"
    code, err = _start_and_stop(deck, out)
    assert code == 75, err
    sha = _digest(*_rows())
    ck = out / "checkpoint.h5"
    with h5py.File(ck) as f:
        assert 0.0 < float(f.attrs["time"]) < 1.0
        assert len(json.loads(f.attrs["meta"])["deck_toml"]) < SMALL
        rows = f[f"outputs/table_{sha}"][()]
    assert np.array_equal(rows, np.column_stack(_rows()))
    assert [n for n in _big_objects(ck) if not n.startswith("fields/")] == [f"outputs/table_{sha}"]
    assert ck.stat().st_size < ROW_BYTES + 1_000_000
    proc = run_cli(["restart", out, "--progress", "0"], check=0)
    assert "warning" not in proc.stderr
    _compare(reference[1], out)
    assert read_summary(out)["status"] == "complete"


def test_changed_csv_between_stop_and_restart(tmp_path, reference):
    """The restart continues with the rows the run started with (stored in the checkpoint),
    naming the changed file in a warning; the run's deck.toml, which pins the old rows, is
    refused by 'isosim check' with exit 2 naming the file."""
    deck = _write_case(tmp_path)
    out = tmp_path / "run"
    code, err = _start_and_stop(deck, out)
    assert code == 75, err
    old = _digest(*_rows())
    _write_case(tmp_path, edit_row=5000)                    # one temperature 1 degC higher
    proc = run_cli(["check", out / "deck.toml"])
    assert proc.returncode == 2, proc.stderr
    assert str(tmp_path / "path.csv") in proc.stderr and "changed since" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(["restart", out, "--progress", "0"], check=0)
    assert "warning" in proc.stderr and str(tmp_path / "path.csv") in proc.stderr, proc.stderr
    assert "rows stored in checkpoint" in proc.stderr
    _compare(reference[1], out)                             # the old rows: bitwise the reference
    with h5py.File(out / "results.h5") as f:
        assert list(f["tables"]) == [old]
    # a new run of the changed deck reads the new rows: another digest, other results
    run_cli(["run", deck, "--out", tmp_path / "new", "--progress", "0"], check=0)
    new = read_summary(tmp_path / "new")["deck"]["temperature"]["table_sha256"]
    assert new != old


def test_sweep_over_another_key(tmp_path):
    """A sweep of a large-table deck: small summary and deck, the rows once in results.h5; a
    sweep stopped (here: its summary removed) is not resumed with a changed CSV (exit 2)."""
    deck = _write_case(tmp_path)
    out = tmp_path / "sweep"
    run_cli(["sweep", deck, "--vary", "phases.opx.beta=0.04,0.05,0.06", "--out", out, "--progress", "0"],
            check=0)
    summary = read_summary(out)
    assert summary["n_members"] == 3
    deltas = [m["Delta_permil"] for m in summary["members"]]
    assert all(np.isfinite(deltas)) and len(set(deltas)) == 3
    assert (out / "summary.json").stat().st_size < 30_000 and (out / "deck.toml").stat().st_size < SMALL
    sha = _digest(*_rows())
    assert summary["deck"]["temperature"]["table_sha256"] == sha
    assert _big_objects(out / "results.h5") == [f"tables/{sha}/T_C", f"tables/{sha}/t_Myr"]
    (out / "summary.json").unlink()                         # as if stopped after its last batch
    _write_case(tmp_path, edit_row=7)
    proc = run_cli(["restart", out])
    assert proc.returncode == 2 and str(tmp_path / "path.csv") in proc.stderr and "refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    _write_case(tmp_path)                                   # restored: the sweep finishes
    run_cli(["restart", out, "--progress", "0"], check=0)
    assert [m["Delta_permil"] for m in read_summary(out)["members"]] == deltas


def test_capsule_table_profile(tmp_path):
    """The capsule's table profile: 5000 rows are kept by reference, the run uses them (the same
    piecewise-linear profile as its 3-row form, within round-off of the interpolation)."""
    text = (INPUT / "huang2010_timeseries.toml").read_text().replace('profile = "parabolic"',
                                                                   'profile = "table"\nfile = "T.csv"')
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("hot_C", "cold_C")))
    (tmp_path / "d.toml").write_text(text)
    fast = ["--set", "capsule.cells=120", "--progress", "0", "--set", "time.duration_h=1.0", "--set",
            "time.output_h=[]"]
    (tmp_path / "T.csv").write_text("x_mm,T_C\n0,1560\n2,1450\n4,1215\n")
    run_cli(["run", tmp_path / "d.toml", "--out", tmp_path / "three", *fast], check=0)
    x = np.linspace(0.0, 4.0, 5001)
    T = np.interp(x, [0.0, 2.0, 4.0], [1560.0, 1450.0, 1215.0])
    (tmp_path / "T.csv").write_text("x_mm,T_C\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x, T)))
    run_cli(["run", tmp_path / "d.toml", "--out", tmp_path / "many", *fast], check=0)
    sha = _digest(x, T)
    many = read_summary(tmp_path / "many")
    assert many["deck"]["temperature"]["table_sha256"] == sha and many["deck"]["temperature"]["table_x_mm"] == []
    assert (tmp_path / "many" / "deck.toml").stat().st_size < SMALL
    assert "table_sha256" not in read_summary(tmp_path / "three")["deck"]["temperature"]
    with h5py.File(tmp_path / "many" / "results.h5") as f:
        assert np.array_equal(f[f"tables/{sha}/x_mm"][()], x) and np.array_equal(f[f"tables/{sha}/T_C"][()], T)
    with h5py.File(tmp_path / "three" / "results.h5") as a, h5py.File(tmp_path / "many" / "results.h5") as b:
        assert "tables" not in a
        for k in ("series/inventory", "series/steady_fraction"):
            assert np.allclose(a[k][()], b[k][()], rtol=1e-9, atol=1e-12), k
