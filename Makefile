# The two commands (README): `make run` runs the main job (the paper's Fig. 2 sweep on 2 ranks
# and its figures), `make test` passes the tests.
# Each does all set-up itself (scripts/setup.sh, idempotent).
SHELL := /bin/bash
VENV ?= .venv
NP ?= 2
DECK ?= input/xiong_fig2.toml

# Debian's petsc4py finds PETSc through PETSC_DIR (a site's own PETSc keeps its value).
DEBIAN_PETSC := /usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real
ifeq ($(origin PETSC_DIR),undefined)
ifneq ($(wildcard $(DEBIAN_PETSC)),)
export PETSC_DIR := $(DEBIAN_PETSC)
endif
endif
# Open MPI refuses root and more ranks than cores unless told (containers, CI, laptops).
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1
# one BLAS thread per MPI rank
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup run test clean

setup:
	@scripts/setup.sh

# the main job: the sweep a deck's [sweep] table describes (Fig. 2: 15 cooling rates), then its figures
run: setup
	mpirun -n $(NP) $(VENV)/bin/isosim sweep $(DECK) --out runs/$(basename $(notdir $(DECK))) --force
	$(VENV)/bin/isosim plot runs/$(basename $(notdir $(DECK)))

test: setup
	$(VENV)/bin/python -m pytest -q tests

clean:
	rm -rf runs .pytest_cache
