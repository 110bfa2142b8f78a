"""The batched root search of ``isosim invert`` (isosim.rootfind), on functions with known roots."""

import numpy as np

from isosim.rootfind import brackets, illinois_step


def _solve(f, grid, params, tol=1e-12, max_iter=60):
    res = np.array([[f(x, p) for x in grid] for p in params])
    roots = brackets(grid, res)
    calls = []

    def evaluate(idx, xs):
        calls.append(len(idx))
        return [f(x, params[i]) for i, x in zip(idx, xs)]

    while roots.iterations < max_iter and illinois_step(roots, evaluate, tol, 1e-15):
        pass
    return roots, calls


def test_cube_roots_to_tolerance_in_few_batches():
    params = np.array([0.1, 1.0, 2.0, 7.0, 20.0])
    roots, calls = _solve(lambda x, c: x**3 - c, np.linspace(0, 3, 7), params)
    assert roots.found.all()
    assert np.allclose(roots.x, np.cbrt(params), atol=1e-9)
    assert np.all(np.abs(roots.fx) < 1e-12)
    # Illinois converges superlinearly: plain regula falsi needs > 40 iterations on x^3 - 20
    assert roots.iterations <= 12, roots.iterations
    assert calls[0] == 5 and calls[-1] <= calls[0]      # converged roots leave the batch


def test_bracket_kept_and_no_root_reported():
    roots, _ = _solve(lambda x, c: np.exp(x) - c, np.linspace(0, 1, 5), np.array([2.0, 5.0]))
    assert roots.found.tolist() == [True, False]
    assert abs(roots.x[0] - np.log(2.0)) < 1e-10
    assert roots.a[0] <= roots.x[0] <= roots.b[0] or roots.b[0] <= roots.x[0] <= roots.a[0]
    assert np.isnan(roots.x[1])


def test_nothing_to_do_calls_nothing():
    """A scan point already within tolerance ends the search before any evaluation."""
    roots = brackets(np.linspace(0, 1, 3), np.array([[-1e-9, 1.0, 2.0]]))
    assert roots.found[0] and roots.x[0] == 0.0

    def evaluate(idx, xs):
        raise AssertionError("evaluated although every root was within tolerance")

    assert illinois_step(roots, evaluate, 1e-3, 1e-12) is False
    assert roots.iterations == 0
