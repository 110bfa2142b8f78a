"""A full file system or a read-only directory: a clear message, exit 4, the previous
checkpoint intact, and a restart that finishes once the fault is gone.

The full file system is a real one: a 4 MiB tmpfs mounted for the test (root only). The
tests that need it are skipped where mounting is impossible, and say so. A file-size limit
(RLIMIT_FSIZE) is no substitute here: Open MPI's PMIx store needs files of several MiB
before MPI starts, far more than a fast test's checkpoints. Runtime: ~25 s.
"""

import contextlib
import os
import subprocess

import pytest

import killharness as kh
from support import INPUT, run_cli
from isosim.errors import EXIT_IO, EXIT_SOLVER, EXIT_USAGE

SMALL = ["--set", "grid.cells=40", "--progress", "0"]
DECK = INPUT / "xiong_fig1.toml"
LAST = 50           #: the last checkpoint of the reference run (every 10 steps)
EARLY = 20          #: a checkpoint early in the run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (checkpoints every 10 steps, as in the tests)."""
    d = tmp_path_factory.mktemp("faults") / "ref"
    run_cli(["run", DECK, "--out", d, "--checkpoint-steps", "10", *SMALL], check=0)
    # the last, 4 steps before the end (54 steps: ARK5, eigen unknowns, dense-output series)
    assert kh.complete_checkpoint(d / "checkpoint.h5") == (True, LAST)
    return d


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs (the writers keep a 1 MB margin), unmounted afterwards."""
    yield from _tmpfs(tmp_path, "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")


def _tmpfs(tmp_path, why):
    """Mount a 4 MiB tmpfs at tmp_path/fs for the duration of a fixture (skip with ``why`` if
    mounting is not allowed)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"{why}: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs, leave=0):
    """Fill the file system, then free ``leave`` bytes (a disk that fills up during a write)."""
    with open(fs / "filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:           # unbuffered: the write that fails is the one caught here
                f.write(b"\0" * 4096)
        f.truncate(max(f.tell() - leave, 0))


def _stopped_at(out, steps=EARLY):
    """A run stopped (exit 3) at step ``steps`` with its checkpoint there."""
    run_cli(["run", DECK, "--out", out, "--checkpoint-steps", "10", *SMALL, "-ts_max_steps", str(steps)],
            check=EXIT_SOLVER)
    assert kh.complete_checkpoint(out / "checkpoint.h5") == (True, steps)


def _refused_cleanly(out, proc, what, step):
    """Exit 4, the file and the reason named, no traceback, no temporaries, no results,
    and the checkpoint of ``step`` intact."""
    assert proc.returncode == EXIT_IO, proc.stdout + proc.stderr
    assert what in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not [p.name for p in out.iterdir() if ".tmp." in p.name]
    assert not (out / "summary.json").exists() and not (out / "results.h5").exists()
    assert kh.complete_checkpoint(out / "checkpoint.h5") == (True, step)


def _finishes(out, reference):
    """The restart completes and equals the uninterrupted run bitwise (-ts_max_steps undoes
    the stop the test set up)."""
    run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"], check=0)
    assert kh.compare_results(reference, out) >= 10


def test_disk_full_before_the_run(small_fs):
    """Not even deck.toml fits: exit 4 naming the file and the reason, no traceback."""
    _fill(small_fs)
    out = small_fs / "run"
    proc = run_cli(["run", DECK, "--out", out, *SMALL])
    assert proc.returncode == EXIT_IO, proc.stderr
    assert f"could not write {out / 'deck.toml'}: No space left on device" in proc.stderr
    # nothing but the directory's (empty) lock file, which no result or restart reads
    assert "Traceback" not in proc.stderr
    assert not (out.exists() and [p.name for p in out.iterdir() if p.name != ".isosim.lock"])


#: Bytes left free: none (the temporary file cannot even be created), or a few pages (room for
#: part of a file). HDF5 meeting a full disk in the middle of a write crashes the process (a
#: segfault in HDF5 1.10's H5F__close_cb when the failed file is freed: exit 59), so the
#: collective writer checks the free space first (size hint + 1 MB) and refuses cleanly.
LEAVE = [0, 8192]


@pytest.mark.parametrize("leave", LEAVE)
def test_disk_full_at_a_checkpoint(small_fs, reference, leave):
    """The disk fills up between checkpoints: the next one cannot be written. Exit 4, the
    previous checkpoint intact (the restart after space is freed uses it and ends bitwise)."""
    out = small_fs / "run"
    _stopped_at(out, EARLY)
    _fill(small_fs, leave)
    proc = run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"])
    _refused_cleanly(out, proc, f"could not write checkpoint {out / 'checkpoint.h5'}", EARLY)
    assert "No space left on device" in proc.stderr
    (small_fs / "filler").unlink()
    _finishes(out, reference)


@pytest.mark.parametrize("leave", LEAVE)
def test_disk_full_at_the_results(small_fs, reference, leave):
    """The last checkpoint (step 50 of 54: none is due after it) fits, the results do not:
    exit 4, no summary.json, the checkpoint intact; the run finishes once space is freed."""
    out = small_fs / "run"
    _stopped_at(out, LAST)
    _fill(small_fs, leave)
    proc = run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"])
    _refused_cleanly(out, proc, f"could not write results in {out}", LAST)
    (small_fs / "filler").unlink()
    _finishes(out, reference)


def _make_read_only(path):
    """Read-only for this process: a read-only remount as root (root ignores file modes),
    the file mode otherwise. Returns the function that undoes it."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        return lambda: subprocess.run(["mount", "-o", "remount,rw", str(path)], check=True)
    os.chmod(path, 0o555)
    return lambda: os.chmod(path, 0o755)


@pytest.fixture
def lockable_dir(tmp_path):
    """A directory this process can make read-only: a tmpfs as root, a plain one otherwise."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    yield from _tmpfs(tmp_path, "root here cannot mount (so cannot make a directory read-only for itself)")


def test_read_only_directory(lockable_dir, reference):
    """The run directory turns read-only between checkpoints: exit 4 naming the checkpoint
    and the reason, the previous checkpoint intact; writable again, the restart ends bitwise.
    A new run into a read-only place is refused before anything runs (exit 2)."""
    out = lockable_dir / "run"
    _stopped_at(out, EARLY)
    undo = _make_read_only(lockable_dir if os.geteuid() == 0 else out)
    try:
        proc = run_cli(["restart", out, "--progress", "0", "-ts_max_steps", "1000000"])
        _refused_cleanly(out, proc, f"could not write checkpoint {out / 'checkpoint.h5'}", EARLY)
        assert "Read-only file system" in proc.stderr or "Permission denied" in proc.stderr
        other = run_cli(["run", DECK, "--out", lockable_dir / "new" if os.geteuid() == 0 else out / "new",
                         *SMALL])
        assert other.returncode == EXIT_USAGE and "cannot create output directory" in other.stderr
        assert "Traceback" not in other.stderr
    finally:
        undo()
    _finishes(out, reference)
