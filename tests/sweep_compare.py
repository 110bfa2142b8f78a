"""Compare two sweep directories (summary.json and results.h5): a merged sweep against the
same sweep run directly. Used by test_sweep_slices.py and test_slurm.py."""

import re

import h5py
import numpy as np
from support import read_summary

#: summary fields allowed to differ between a merged and a direct sweep
RUN_FIELDS = ("wall_time_s", "ranks", "merged_from", "results_sha256", "summary_sha256")


def _summary(d):
    s = read_summary(d)
    return {k: v for k, v in s.items() if k not in RUN_FIELDS}


def _numbers(x, path=""):
    """The numeric leaves of a JSON value as {path: float}, and the rest as {path: value}."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            out.update(_numbers(v, f"{path}/{k}"))
        return out
    if isinstance(x, list):
        out = {}
        for i, v in enumerate(x):
            out.update(_numbers(v, f"{path}[{i}]"))
        return out
    return {path: x}


def _h5_items(f):
    """Every dataset (as an array) and every attribute of an open HDF5 file, by path."""
    out = {}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            if k not in ("DIMENSION_LIST", "REFERENCE_LIST"):   # object references: compared by name below
                out[f"{name}@{k}"] = np.asarray(v)
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]
            out[f"{name}@dims"] = np.asarray([d[0].name if len(d) else "" for d in obj.dims], dtype=object)

    visit("/", f)
    f.visititems(visit)
    return out


def _scale(values):
    """The largest finite magnitude of a quantity (over members and times), 0 if none."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def _same(a, b, tol):
    """Equal arrays (NaN equal to NaN), floats within ``tol`` (0: bitwise)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        if tol == 0:
            return bool(np.array_equal(a, b, equal_nan=True))
        same_nan = np.array_equal(np.isnan(a), np.isnan(b))
        return same_nan and bool(np.all(np.abs(a - b)[~np.isnan(b)] <= tol))
    return bool(np.all(a == b))


def assert_same_sweep(merged, direct, rtol=0.0, atol=0.0):
    """The two sweep directories hold the same members, parameters and results.

    ``rtol = atol = 0``: bitwise (NaN equal to NaN). Otherwise each floating-point result may
    differ by ``atol + rtol * scale``, where scale is the largest magnitude of that quantity
    over all members and times (a relative test per value would fail for quantities that
    pass through zero). The varied parameters, member order, strings and integers must be
    identical whatever the tolerance. Returns the largest difference as a fraction of its
    tolerance (0 when bitwise equal).
    """
    a, b = _numbers(_summary(merged)), _numbers(_summary(direct))
    assert a.keys() == b.keys(), set(a) ^ set(b)
    quantity = {k: re.sub(r"\[\d+\]", "", k) for k in b}     # /members[3]/Delta -> /members/Delta
    scales = {}
    for k, v in b.items():
        if isinstance(v, float):
            scales[quantity[k]] = max(scales.get(quantity[k], 0.0), _scale(v))
    worst = 0.0
    for k in a:
        params = "/params/" in k                 # the varied values are never recomputed
        tol = 0.0 if params else atol + rtol * scales.get(quantity[k], 0.0)
        assert _same(a[k], b[k], tol), (k, a[k], b[k], tol)
        if tol > 0 and isinstance(b[k], float) and np.isfinite(b[k]):
            worst = max(worst, abs(a[k] - b[k]) / tol)
    with h5py.File(merged / "results.h5") as fa, h5py.File(direct / "results.h5") as fb:
        x, y = _h5_items(fa), _h5_items(fb)
    assert x.keys() == y.keys(), set(x) ^ set(y)
    for k in x:
        params = k.startswith("members/params/")
        tol = 0.0 if params or y[k].dtype.kind != "f" else atol + rtol * _scale(y[k])
        assert _same(x[k], y[k], tol), (k, x[k], y[k], tol)
        if tol > 0:
            worst = max(worst, float(np.nanmax(np.abs(x[k] - y[k]), initial=0.0)) / tol)
    assert (merged / "deck.toml").read_text() == (direct / "deck.toml").read_text()
    return worst
