"""Discretization: finite-volume grids and operators, and the O(N) linear solves of
their (bordered) systems. Numpy/scipy only; MPI enters through callables."""
