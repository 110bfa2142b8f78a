"""Every shipped deck validates; the README's main-job command works in a fresh clone."""

import shutil
import subprocess

import pytest

from support import CLEAN_ENV, INPUT, ROOT, read_summary, run_cli

DECKS = sorted(INPUT.glob("*.toml"))


@pytest.mark.parametrize("deck", DECKS, ids=[d.stem for d in DECKS])
def test_shipped_deck_is_valid(deck):
    proc = run_cli(["check", deck, "--quiet"])
    assert proc.returncode == 0, proc.stderr


def test_help_explains():
    proc = run_cli(["run", "--help"])
    assert proc.returncode == 0
    for word in ("--set", "--out", "--force", "PETSc options", "restart", "Exit codes"):
        assert word in proc.stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists()
                    or shutil.which("make") is None, reason="needs git, make and a git checkout")
def test_make_run_in_fresh_clone(tmp_path):
    """`make run` from the README, in a clone of the committed tree, with its own venv."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=CLEAN_ENV)
    proc = subprocess.run(["make", "run", "VENV=.venv"], cwd=clone, capture_output=True, text=True, env=CLEAN_ENV,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = read_summary(clone / "runs" / "xiong_fig2")
    assert summary["n_members"] == 15 and summary["ranks"] == 2
    assert (clone / "runs" / "xiong_fig2" / "figures" / "sweep_results.png").stat().st_size > 10_000
    # idempotent: a second call skips the set-up and replaces the run
    proc = subprocess.run(["make", "run"], cwd=clone, capture_output=True, text=True, env=CLEAN_ENV, timeout=900)
    assert proc.returncode == 0
    assert "pip install" not in proc.stdout


def test_petsc_options_pass_through(tmp_path):
    """-ts_type and -ts_rtol on the command line reach PETSc (and override the deck)."""
    steps = {}
    for tag, opts in (("loose", ["-ts_rtol", "1e-5"]), ("tight", ["-ts_rtol", "1e-10"]),
                      ("rosw", ["-ts_type", "rosw", "-ts_rtol", "1e-5"])):
        out = tmp_path / tag
        run_cli(["run", INPUT / "xiong_fig1.toml", "--out", out, "--progress", "0",
                 "--set", "grid.cells=30", *opts], check=0)
        s = read_summary(out)
        steps[tag] = s["steps"]
        assert s["petsc_options"] == opts
        if tag == "rosw":
            assert s["ts_type"] == "rosw"
    assert steps["tight"] > 3 * steps["loose"]


def test_log_view(tmp_path):
    proc = run_cli(["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r", "--progress", "0",
                    "--set", "grid.cells=20", "-log_view"], check=0)
    assert "TSStep" in proc.stdout and "PCApply" in proc.stdout


def test_keys_lists_every_deck_key():
    proc = run_cli(["keys", "grain_exchange"], check=0)
    for key in ("phases.NAME.beta", "temperature.rate_C_per_Myr", "grid.stretch", "checkpoint.every_seconds"):
        assert key in proc.stdout
