"""Physics: pure numpy functions (no PETSc, no MPI) for rates, partition coefficients and
temperature paths. Each model's equations live in one module here."""
