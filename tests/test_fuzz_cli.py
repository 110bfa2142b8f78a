"""Property-based fuzzing of the ``isosim`` command line (issue 7, item 3).

Random argv for every sub-command (``isosim --help`` lists them): good and bad decks and
directories, ``--set`` overrides (no '=', bad TOML, unknown keys, values that replace a
table), ``--vary``/``--over`` ranges (``log:0:1:3``, ``a:b``, ``1:2:0``), ``--target``,
``--bracket``, negative and non-numeric counts, unknown options, stray arguments and
PETSc options with bad values. The property: exit code 0 or 2 (argparse's errors included),
an ``error: ...`` message for 2, never a traceback or a hang.

* In-process through ``isosim.cli.main(argv)`` for everything that stops before PETSc
  starts: ``check``, ``keys``, ``merge``, ``plot``, ``restart`` of a directory without a
  checkpoint, ``fit-soret --no-forward``, and argparse-level mistakes of every command.
* In subprocesses for ``run``, ``sweep``, ``invert`` and ``converge`` (they start PETSc,
  which reads its options once per process), on decks shrunk to a second's work, under a
  time limit. Exit code 3 is accepted only with the driver's "the time integrator failed"
  message and a step limit from the command line (``-ts_max_steps``): the user asked for
  fewer steps than the path needs, and the checkpoint lets them continue (by design: docs/user-guide.md, 'Checkpoints').

Runtime (CI profile, 2 cores, quiet machine): about 20 s.
"""

import contextlib
import io
import subprocess
import sys

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from support import CLEAN_ENV, INPUT, ROOT, needs_mpirun, run_cli
from fuzz_support import STUDY_SPECS, scaled

from isosim.cli import main

N_INPROCESS = scaled(600)
N_SUBPROCESS = scaled(6)
TIMEOUT = 120          # s: a small-grid run takes a few seconds; longer is a hang

DECKS = [INPUT / "xiong_fig1.toml", INPUT / "xiong_inversion.toml", INPUT / "huang2010_zm70.toml",
         INPUT / "spera2004_afc.toml", INPUT / "spera2004_montecarlo.toml"]
#: per model, --set overrides that make a run take about a second
SMALL = {"xiong": ["grid.cells=6", "output.series_points=3", "output.temperatures_C=[]",
                   "temperature.end_C=1150.0"],
         "huang": ["capsule.cells=8", "time.series_points=2"],
         "spera": ["output.points=3"]}
DATA = ROOT / "data" / "huang2010_table1_samples.csv"
META = ROOT / "data" / "huang2010_table1_experiments.csv"

# ------------------------------------------------------------------------- argument values
WORDS = st.sampled_from(["", " ", "x", "-", "--", "nan", "inf", "-1", "0", "1e400", "1/2", "a=b", "=", "é",
                         "phases.opx.beta", "--nosuch", "-x", "1:2", "true"])
PATHS = st.sampled_from([*map(str, DECKS), "/nonexistent/deck.toml", str(INPUT), "", str(DATA), "/dev/null",
                         "/dev/zero", "input/../input/xiong_fig1.toml"])
SETS = st.one_of(
    st.sampled_from(["phases.opx.beta=0.1", "phases.opx.beta", "phases.opx.beta=", "=0.1", "nope=1",
                     "phases.opx.beta=[1,", "phases.opx.beta='0.1'", "phases.opx=1", "phases.opx.beta.x=1",
                     "a..b=1", '"a.b"=1', "temperature.rate_C_per_Myr=nan", "temperature.rate_C_per_Myr=1e400",
                     "grid.cells=1.5", "model=\"capsule\"", "model=chamber", "thermal.T_eq_C=inf",
                     "capsule.cells=0", "solver.ts_type=rk", "title=\"\\u0000\"", "phases={}",
                     "elements.Sr.D_magma=-1", "x.y.z=1", "ratios.\"87Sr/86Sr\".magma=0.71"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["phases.opx.beta", "grid.cells", "thermal.T_eq_C",
                                                         "capsule.length_mm", "title", "a"]), WORDS))
NUMBERS = st.one_of(WORDS, st.integers(-5, 5).map(str), st.floats(allow_nan=True).map(repr))
PETSC = st.sampled_from([[], ["-ts_type", "nosuch"], ["-ts_type", "rk"], ["-ts_type", "bdf"], ["-ts_rtol", "abc"],
                         ["-ts_rtol", "-1"], ["-ts_type", "beuler"], ["-pc_type", "lu"], ["-ts_max_steps", "2"],
                         ["-ts_adapt_type", "none"], ["-ts_type"], ["-log_view", ":/nonexistent/dir/log.txt"],
                         ["-ksp_type", "nosuch"], ["-ts_type", "rosw", "--out", "x"], ["-ts_dt", "0"]])


def opt(name, values):
    """An optional ``[name, value]`` pair (often absent)."""
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


def flag(name):
    return st.sampled_from([[], [name]])


def seq(*parts):
    """Concatenate the drawn argv fragments."""
    return st.tuples(*parts).map(lambda xs: [t for x in xs for t in x])


def with_garbage(argv):
    """Often add an argparse-level mistake (unknown option, stray argument)."""
    return st.tuples(argv, st.sampled_from([[], [], ["--nosuch"], ["stray"], ["--set"], ["-x"]])).map(
        lambda t: t[0] + t[1])


# ------------------------------------------------------------------------- in-process
def inprocess_argv():
    check = seq(st.just(["check"]), PATHS.map(lambda p: [p]), st.lists(opt("--set", SETS), max_size=3).map(
        lambda xs: [t for x in xs for t in x]), flag("--quiet"))
    keys = seq(st.just(["keys"]), st.one_of(st.just([]), st.sampled_from(["grain_exchange", "capsule", "chamber",
                                                                          "nosuch", "", "CHAMBER"]).map(lambda m: [m])))
    merge = seq(st.just(["merge"]), st.sampled_from([["OUT"], ["OUT", "a", "b"], ["OUT", "--from", "nomatch-*"],
                                                    ["OUT", "OUT"]]), flag("--force"))
    plot = seq(st.just(["plot"]), st.sampled_from([["/nonexistent"], [str(INPUT)], [""]]),
               opt("--out", st.sampled_from(["figs", ""])))
    restart = seq(st.just(["restart"]), st.sampled_from([["/nonexistent"], [str(INPUT)], ["RUN"]]),
                  opt("--progress", NUMBERS), opt("--checkpoint-steps", NUMBERS))
    fit = seq(st.just(["fit-soret"]), st.sampled_from([[str(DATA)], [str(META)], ["/nonexistent.csv"], [str(INPUT)]]),
              opt("--experiments", st.sampled_from([str(META), str(DATA), "/nonexistent.csv"])),
              opt("--sigma-T", st.sampled_from(["auto", "0", "-1", "nan", "x", "1e400", "25"])),
              st.just(["--no-forward", "--out", "FIT", "--force"]))
    # argparse mistakes of the commands that start PETSc: they must stop before it starts
    bad_types = seq(st.sampled_from([["run", str(DECKS[0])], ["sweep", str(DECKS[0])], ["invert", str(DECKS[1])],
                                     ["converge", str(DECKS[0]), "--refine", "space"], ["restart", "RUN"]]),
                    st.sampled_from([["--progress", "x"], ["--samples", "-1"], ["--seed", "-3"], ["--scan", "1"],
                                     ["--tol", "0"], ["--levels", "x"], ["--refine", "nosuch"], ["--nosuch"],
                                     ["--checkpoint-steps", "-1"], ["--progress", "nan"], ["--samples", "1.5"],
                                     ["--tol", "inf"], ["--checkpoint-seconds", "-1"]]))
    top = st.sampled_from([[], ["--help"], ["--version"], ["nosuch"], ["-h"], ["run"], ["run", "--help"],
                           ["sweep"], ["keys", "a", "b"], ["--nosuch"]])
    return st.one_of(with_garbage(check), keys, merge, plot, restart, fit, bad_types, top)


def run_inprocess(argv, cwd):
    """``main(argv)`` with stdout/stderr captured: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(cwd):
        try:
            code = main(list(argv))
        except SystemExit as exc:           # argparse: --help, --version and its own errors
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=N_INPROCESS)
@given(argv=inprocess_argv())
def test_commands_that_stop_before_petsc(argv, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "RUN").mkdir()
    argv = [a.replace("OUT", str(cwd / "merged")).replace("FIT", str(cwd / "fit")) for a in argv]
    note(f"isosim {' '.join(argv)}")
    code, out, err = run_inprocess(argv, cwd)
    assert code in (0, 2), f"exit {code}\n{err}"
    if code == 2 and argv[:1] != [] and "--help" not in argv:
        assert "error" in err, f"exit 2 without an error message:\n{err}"


# ------------------------------------------------------------------------- subprocesses
def small(deck):
    return [t for s in SMALL[deck.name[:5]] for t in ("--set", s)]


@st.composite
def subprocess_argv(draw):
    deck = draw(st.sampled_from(DECKS))
    command = draw(st.sampled_from(["run", "sweep", "invert", "converge"]))
    argv = [command, str(deck), "--out", "OUT", "--progress", "0"] + small(deck)
    argv += draw(st.lists(opt("--set", SETS), max_size=2).map(lambda xs: [t for x in xs for t in x]))
    if command == "sweep":
        argv += draw(st.one_of(st.just([]), st.lists(st.one_of(
            st.sampled_from(["phases.opx.beta=0,0.1", "temperature.rate_C_per_Myr=log:1:100:2",
                             "assimilation.chi=0:1:2", "time.duration_h=10,20"]), STUDY_SPECS),
            max_size=2).map(lambda vs: [t for v in vs for t in ("--vary", v)])))
        argv += draw(opt("--samples", st.sampled_from(["0", "2", "-1", "x"])))
        argv += draw(opt("--seed", st.sampled_from(["0", "7", "-1"])))
    elif command == "invert":
        argv += draw(opt("--target", st.sampled_from(["Delta_permil=1.29", "nosuch=1", "Delta_permil", "=1",
                                                      "Delta_permil=nan"])))
        argv += draw(opt("--param", st.sampled_from(["phases.opx.beta", "nosuch", "phases", ""])))
        argv += draw(opt("--bracket", st.sampled_from(["0:0.5", "0.5:0", "a:b", "0:inf", "0:0.1:0.2"])))
        argv += draw(opt("--over", st.sampled_from(["phases.cpx.beta=0,0.5", "phases.cpx.beta=1:2:0", "x"])))
        argv += ["--scan", draw(st.sampled_from(["3", "2", "1"]))]
    elif command == "converge":
        argv += ["--refine", draw(st.sampled_from(["space", "time", "both", "nosuch"]))]
        argv += ["--levels", draw(st.sampled_from(["2", "1", "x", "1000000"]))]
        argv += draw(opt("--ratio", st.sampled_from(["2", "1", "0.5", "nan", "3.5"])))
        argv += draw(opt("--dt0", st.sampled_from(["0.01", "0", "2", "nan"])))
    argv += draw(PETSC)
    return argv


@settings(max_examples=N_SUBPROCESS)
@given(argv=subprocess_argv())
def test_commands_that_start_petsc(argv, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    argv = [a.replace("OUT", str(cwd / "out")) for a in argv]
    note(f"isosim {' '.join(argv)}")
    proc = subprocess.run([sys.executable, "-m", "isosim", *argv], cwd=cwd, env=CLEAN_ENV, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    if proc.returncode == 3:         # a step limit from the command line (see the module docstring)
        assert proc.stderr.startswith("error: the time integrator failed") and "-ts_max_steps" in argv, proc.stderr
        return
    assert proc.returncode in (0, 2), f"exit {proc.returncode}\n{proc.stderr}"
    if proc.returncode == 2:
        assert "error" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ regressions found by the fuzzing
@pytest.mark.parametrize("argv,words", [
    # --samples -1 drew -1 values: a numpy ValueError traceback
    (["sweep", DECKS[0], "--samples", "-1"], "argument --samples: '-1': expected a whole number >= 0"),
    (["sweep", DECKS[0], "--seed", "-1", "--samples", "2"], "argument --seed"),
    # --scan 0: an empty scan, IndexError; --scan -1: numpy ValueError
    (["invert", DECKS[1], "--scan", "0"], "argument --scan"),
    # --tol nan: 40 refinement rounds that can never succeed
    (["invert", DECKS[1], "--tol", "nan"], "argument --tol"),
    # --progress -1 printed a progress line after every step; nan never
    (["run", DECKS[0], "--progress", "-1"], "argument --progress"),
    # the cartesian product of two --vary lists of 10^4: 10^8 decks expanded in memory
    (["sweep", DECKS[0], "--out", "OUT", "--vary", "phases.opx.beta=0:0.5:10000",
      "--vary", "phases.cpx.beta=0:0.5:10000"], "100,000,000 members"),
    (["sweep", DECKS[0], "--out", "OUT", "--vary", "phases.opx.beta=0.1:nan"], "finite START and STOP"),
    (["invert", DECKS[1], "--out", "OUT", "--bracket", "0:inf"], "finite LOW and HIGH"),
    # a directory that never held a run: refused, exit 2, nothing run in it
    (["restart", INPUT], "is not the directory of an isosim run or study"),
    # isosim's own options after PETSc's went to PETSc, silently: the run wrote to runs/<deck>
    (["run", DECKS[0], "-ts_type", "rosw", "--out", "OUT"], "--out comes after the PETSc option -ts_type"),
])
def test_cli_regressions(argv, words, tmp_path):
    argv = [str(a).replace("OUT", str(tmp_path / "out")) for a in argv]
    code, out, err = run_inprocess(argv, tmp_path)
    assert code == 2, err
    assert words in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("deck,options,words", [
    # each was a PETSc traceback (and for bad values a segfault and MPI_ABORT, exit 59) after
    # the run directory had been made
    ("xiong_fig1.toml", ["-ts_type", "nosuch"], "Unknown TS type: nosuch"),
    ("xiong_fig1.toml", ["-ts_rtol", "abc"], "Input string abc has no numeric value"),
    ("huang2010_zm70.toml", ["-ts_type", "rk"], "'rk' is an explicit integrator; the capsule model needs"),
    ("xiong_fig1.toml", ["-pc_type", "lu"], "factorization type LU and matrix type python"),
    # fixed steps of 1e-8 of the path: 1e8 steps, an hour and a half before failing at the limit
    ("xiong_fig1.toml", ["-ts_type", "beuler"], "takes fixed steps"),
    ("spera2004_afc.toml", ["-ts_rk_type", "zz"], "Unknown option zz for -ts_rk_type"),
])
def test_bad_petsc_options_are_usage_errors(deck, options, words, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "isosim", "run", INPUT / deck, "--out", out, *options],
                          cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists(), "nothing may be written before the options are checked"


@needs_mpirun
def test_bad_petsc_option_under_mpirun_prints_once(tmp_path):
    proc = run_cli(["sweep", INPUT / "xiong_fig1.toml", "--out", tmp_path / "out", "--vary",
                    "phases.opx.beta=0,0.1", "-ts_type", "euler"], np=2, cwd=tmp_path, timeout=TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("is an explicit integrator") == 1, proc.stderr
