"""Which pass-through PETSc options nothing read: a misspelt ``-ts_rtoll 1e-9`` is ignored by
PETSc without a word, and the user believes the run used it.

PETSc records, for every option in its database, whether any object queried it
(``PetscOptionsUsed``); petsc4py does not expose that, so it is called through ctypes on the
``libpetsc`` the process has loaded (found in ``/proc/self/maps``). Where that is impossible
(not Linux, a static build) the check says nothing: :func:`unused_options` returns None.

:func:`suggestion` proposes the closest known option ("did you mean -ts_rtol?") from the
names in :data:`KNOWN` and the options PETSc did use.
"""

import ctypes
import difflib

#: Option names users commonly pass to isosim's solvers (without the dash).
KNOWN = (
    "ts_type ts_rtol ts_atol ts_dt ts_max_steps ts_max_time ts_monitor ts_view ts_adapt_type ts_adapt_dt_max "
    "ts_adapt_dt_min ts_adapt_monitor ts_adapt_safety ts_adapt_clip ts_adapt_wnormtype ts_adapt_reject_safety "
    "ts_arkimex_type ts_rosw_type ts_rk_type ts_bdf_order ts_theta_theta ts_exact_final_time ts_max_reject "
    "ts_max_snes_failures ts_error_if_step_fails ts_adapt_basic_clip "
    "snes_type snes_rtol snes_atol snes_stol snes_max_it snes_monitor snes_converged_reason snes_view "
    "snes_linesearch_type snes_lag_jacobian snes_lag_preconditioner "
    "ksp_type ksp_rtol ksp_atol ksp_max_it ksp_monitor ksp_converged_reason ksp_view ksp_gmres_restart "
    "pc_type pc_factor_mat_solver_type pc_bjacobi_blocks pc_asm_overlap sub_pc_type sub_ksp_type "
    "da_refine da_refine_x da_grid_x da_overlap "
    "log_view log_summary malloc_debug info options_left help version"
).split()


def _libpetsc():
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "libpetsc" in line and line.rstrip().endswith(".so")
                     or ("libpetsc" in line and ".so." in line)}
    except OSError:
        return None
    for path in sorted(paths):
        if path.startswith("/"):
            try:
                lib = ctypes.CDLL(path)
                lib.PetscOptionsUsed                       # noqa: B018  (the symbol must be there)
                return lib
            except (OSError, AttributeError):
                continue
    return None


def unused_options(options):
    """The names (with their dash) among ``options`` (a pass-through list) that no PETSc object
    has read, or None if PETSc cannot be asked. Local."""
    lib = _libpetsc()
    if lib is None:
        return None
    out = []
    for tok in options:
        if not (tok.startswith("-") and len(tok) > 2 and not _is_number(tok)):
            continue
        used = ctypes.c_int(0)
        if lib.PetscOptionsUsed(None, tok.lstrip("-").encode(), ctypes.byref(used)) != 0:
            return None
        if not used.value:
            out.append(tok)
    return out


def _is_number(tok):
    try:
        float(tok)
        return True
    except ValueError:
        return False


def suggestion(name):
    """" (did you mean -ts_rtol?)" for a misspelt option name, or ""."""
    close = difflib.get_close_matches(name.lstrip("-"), KNOWN, n=1, cutoff=0.75)
    return f" (did you mean -{close[0]}?)" if close else ""
