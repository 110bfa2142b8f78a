"""The machine's ceiling for memory-bound solvers: PETSc's own vector kernels, timed on one
global vector size under ``mpirun -n P``.

An ARKIMEX step of the grain or capsule model is a few dozen passes over state-sized vectors
(VecMAXPY over the stages, VecAXPBYCZ, VecWAXPY, VecCopy) around the model's own numpy passes. When a
single rank already streams those vectors from memory, P ranks cannot be faster than the
memory system lets P processes stream: the speed-up of these kernels from 1 to P ranks is the
ceiling of any such solver's strong scaling on this machine, whatever its communication.
``scripts/scaling.py`` runs this next to each strong-scaling case and prints both.

    mpirun -n 2 .venv/bin/python scripts/vec_stream.py --size 1024002 --reps 200

(``PETSC_DIR`` set as for isosim itself; ``scaling.py`` runs it with its children's environment.)

Prints one JSON line on rank 0: seconds per repetition (the slowest rank's) of each kernel
and of their sum (``total``).
"""

import argparse
import json
import sys
import time

import petsc4py

petsc4py.init(sys.argv[:1])
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1_024_002, help="global vector length (default 1,024,002)")
    ap.add_argument("--reps", type=int, default=100, help="repetitions of the kernel set (default 100)")
    ap.add_argument("--stages", type=int, default=8, help="vectors combined by VecMAXPY (ARK5: 8)")
    args = ap.parse_args(argv)
    comm = PETSc.COMM_WORLD
    y = PETSc.Vec().createMPI(args.size, comm=comm)
    xs = [y.duplicate() for _ in range(args.stages)]
    for k, x in enumerate(xs):
        x.set(1.0 + k)
    w = y.duplicate()
    y.set(0.0)
    w.set(0.0)
    alphas = [1e-3] * args.stages
    kernels = {
        "VecMAXPY": lambda: y.maxpy(alphas, xs),
        "VecWAXPY": lambda: w.waxpy(0.5, xs[0], xs[1]),
        "VecCopy": lambda: xs[0].copy(w),
    }
    times = {}
    for name, kernel in kernels.items():
        kernel()                                          # first touch outside the timing
        comm.tompi4py().Barrier()
        t = time.perf_counter()
        for _ in range(args.reps):
            kernel()
        times[name] = comm.tompi4py().allreduce((time.perf_counter() - t) / args.reps, op=MPI.MAX)
    times["total"] = sum(times.values())
    if comm.rank == 0:
        print(json.dumps({"ranks": comm.size, "size": args.size, "stages": args.stages, "seconds": times}))
    for v in (y, w, *xs):
        v.destroy()


if __name__ == "__main__":
    main()
