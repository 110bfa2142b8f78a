"""A misspelt PETSc option is reported (issue 19): refused before the run with a suggestion
where the solver objects it would belong to read nothing by that name; named in a warning at
the end where only the run can tell."""

import pytest

from support import INPUT, needs_mpirun, run_cli


@pytest.mark.parametrize("option, value, meant", [("-ts_rtoll", "1e-9", "-ts_rtol"),
                                                  ("-ts_adapt_typ", "basic", "-ts_adapt_type"),
                                                  ("-snes_monitr", None, "-snes_monitor")])
def test_misspelt_solver_option_is_refused(tmp_path, option, meant, value):
    args = ["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "r", option] + ([value] if value else [])
    p = run_cli(args)
    assert p.returncode == 2, p.stderr
    assert f"nothing reads {option} (did you mean {meant}?)" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "r").exists()


@needs_mpirun
def test_misspelt_option_under_mpirun_once(tmp_path):
    p = run_cli(["sweep", INPUT / "xiong_fig2.toml", "--out", tmp_path / "s", "-ts_rtoll", "1e-9"], np=2)
    assert p.returncode == 2 and p.stderr.count("did you mean -ts_rtol?") == 1, p.stderr


def test_correct_options_run_and_unused_others_are_named_at_the_end(tmp_path):
    ok = run_cli(["run", INPUT / "xiong_fig1.toml", "--out", tmp_path / "ok", "--progress", "0",
                  "-ts_rtol", "1e-9", "-ts_adapt_type", "basic"], check=0)
    assert "warning" not in ok.stdout
    p = run_cli(["run", INPUT / "huang2010_zm70.toml", "--out", tmp_path / "c", "--progress", "0",
                 "-da_refine_xx", "2"], check=0)
    assert "warning: PETSc options nothing used: -da_refine_xx (did you mean -da_refine_x?)" in p.stdout
