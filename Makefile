# The two commands (README): `make run` runs the main job (the paper's Fig. 2 sweep on 2 ranks
# and its figures), `make test` passes the tests.
# Each does all set-up itself (scripts/setup.sh, idempotent). Nothing here depends on what
# exists when make starts: isosim finds Debian's PETSc itself and limits BLAS threads per rank,
# and the venv's mpirun (written by the set-up) allows root and oversubscription.
SHELL := /bin/bash
VENV ?= .venv
NP ?= 2
DECK ?= input/xiong_fig2.toml
OUT = runs/$(basename $(notdir $(DECK)))

.PHONY: setup run test test-fast clean

setup:
	@scripts/setup.sh

# the main job: the sweep a deck's [sweep] table describes (Fig. 2: 15 cooling rates), then its figures
run: setup
	$(VENV)/bin/mpirun -n $(NP) $(VENV)/bin/isosim sweep $(DECK) --out $(OUT) --force
	$(VENV)/bin/isosim plot $(OUT)

test: setup
	$(VENV)/bin/python -m pytest -q tests

# the fast tier (a developer's loop, under 3 minutes): seams, in-process numerics, input checks
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m fast tests

clean:
	rm -rf runs .pytest_cache
