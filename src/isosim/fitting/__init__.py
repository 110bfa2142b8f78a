"""Fitting the capsule model's Soret parameters to measured data (``isosim fit-soret``).

``table1`` reads Huang et al. (2010) Table 1 style CSV files, ``soret`` fits Omega,
Delta S_T and T0 by weighted least squares, ``command`` runs the command and writes
``fit.json`` and a figure.
"""
