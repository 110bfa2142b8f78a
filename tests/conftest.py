"""pytest set-up: the helpers live in tests/support (imported here so that every test process
has the environment they set), plus the session's strict-JSON check."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # 'support' and the helper modules

import support  # noqa: E402,F401  (sets the Open MPI variables, finds PETSc, limits threads)

#: The fast tier (``make test-fast``, a developer's loop: under 3 minutes on 2 cores): files
#: that check the code's seams, the numerics in-process against analytic solutions, and
#: input validation, without long runs. Their mpirun and SLURM tests stay out of it.
FAST_FILES = {"test_architecture.py", "test_rootfind.py", "test_docs.py", "test_operators.py", "test_soret_fit.py",
              "test_data_files.py", "test_verification_sphere.py", "test_capsule_verification.py",
              "test_chamber_verification.py", "test_bad_decks.py", "test_environment.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the fast tier: ``pytest -m fast`` (``make test-fast``); ``make test`` runs all."""
    for item in items:
        if item.path.name in FAST_FILES and not any(item.get_closest_marker(m) for m in ("mpi", "slurm", "slow")):
            item.add_marker(pytest.mark.fast)


def pytest_sessionfinish(session, exitstatus):
    """Every JSON file the tests' runs wrote (under pytest's basetemp) must parse with a strict
    parser: no bare NaN/Infinity (issue 17). Files that are not JSON at all (deliberately
    damaged by fault tests) are left to their tests. Fails the session (exit 1) if any does."""
    import json

    from isosim.io.jsonfile import loads_strict
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None) if factory is not None else None
    if base is None or not Path(base).is_dir():
        return
    bad = []
    for p in sorted(Path(base).rglob("*.json")):
        try:
            text = p.read_text(encoding="utf-8")
            json.loads(text)
        except (OSError, ValueError):
            continue
        try:
            loads_strict(text)
        except ValueError as exc:
            bad.append(f"{p}: {exc}")
    if bad:
        print("\nJSON files with bare NaN/Infinity (not JSON; issue 17):\n  " + "\n  ".join(bad))
        session.exitstatus = 1
