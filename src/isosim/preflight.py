"""Preflight: after a deck is validated and before PETSc allocates anything, refuse a run the
machine cannot hold, and say early when a run will crawl.

Memory (:func:`memory_need`, :func:`memory_available`): the unknowns of one model instance
come from the deck (capsule: cells x isotopes and components; grain exchange: isotopes x
(cells x grain classes + 1) per member; chamber: a few dozen, never refused). Measured on the
capsule model (ARKIMEX 5, 8 stages, assembled AIJ Jacobian, profile recordings at 41
times): peak RSS 375 MB at 6e5 unknowns and 2.83 GB at 6e6, i.e. ~460 bytes per unknown
(57 doubles: the TS's stage vectors and work vectors, the driver's state copies, the
Jacobian and the recordings) on top of ~100 MB per rank (Python, numpy, PETSc, MPI).
:data:`BYTES_PER_UNKNOWN` = 480 bytes is used for every model (the grain model's Jacobian
is matrix-free: an overestimate there). A sweep holds one batch (``ensemble.batch_size``
members) of unknowns per rank at a time.

What the machine has (:func:`memory_available`, the smallest that applies): MemAvailable
of /proc/meminfo; the cgroup limit (/sys/fs/cgroup/memory.max minus memory.current, or
cgroup v1's memory.limit_in_bytes); SLURM_MEM_PER_NODE, or SLURM_MEM_PER_CPU x
SLURM_CPUS_ON_NODE (MB); and the process's address-space limit (``ulimit -v``, per rank).
The ranks on this node (from the launcher's variables) share the node's memory.

A need above what is available is refused (:class:`MemoryRefused`, exit 2) with the numbers;
``--no-memory-check`` (or ISOSIM_NO_MEMORY_CHECK=1 in the environment) skips the check.

Cost (grain exchange): :func:`isosim.physics.timescales.slow_warning` prints one line
before the run when a phase re-equilibrates more than 1e10 times over the path.
"""

import math
import os
import resource
import sys

from .errors import UsageError

#: Bytes per unknown of a run (see the module docstring), and the fixed cost of one rank.
BYTES_PER_UNKNOWN = 480
BASE_BYTES_PER_RANK = 150 << 20


class MemoryRefused(UsageError):
    """The run would need more memory than the machine (or allocation) has: exit 2."""


def unknowns(deck):
    """Unknowns of one model instance of a resolved deck (an upper bound)."""
    model = deck["model"]
    if model == "capsule":
        nsp = sum(len(e["isotopes"]) for e in deck.get("elements", {}).values()) + len(deck.get("components", {}))
        return deck["capsule"]["cells"] * max(nsp, 1)
    if model == "grain_exchange":
        niso = len(deck["isotopes"]["names"])
        classes = 0
        for ph in deck["phases"].values():
            kind = ph.get("size_distribution", "single")
            classes += {"single": 1, "lognormal": ph.get("bins") or 1,
                        "bins": len(ph.get("bin_radii_mm") or [1])}.get(kind, 1)
        return niso * (deck["grid"]["cells"] * classes + 1)
    return 1000        # chamber: a few dozen ODEs per member


def _env_int(*names):
    for name in names:
        value = os.environ.get(name, "").split("(")[0].split(",")[0]
        if value.isdigit():
            return int(value)
    return None


def ranks():
    """(ranks in the job, ranks on this node), from the launcher's variables (1, 1 without)."""
    world = _env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS") or 1
    local = _env_int("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE") or world
    return world, min(local, world)


def memory_need(deck, members=1):
    """Bytes the run needs on this node: (total, per rank). ``members`` > 1: a sweep, which
    integrates one batch of at most ``ensemble.batch_size`` members per rank at a time."""
    world, local = ranks()
    n = unknowns(deck)
    if members > 1:
        batch = min(members, deck.get("ensemble", {}).get("batch_size", members))
        per_rank_data = n * batch * BYTES_PER_UNKNOWN
        data_on_node = per_rank_data * min(local, math.ceil(members / batch))
    else:
        data_on_node = n * BYTES_PER_UNKNOWN * local / world   # the run is distributed over the ranks
        per_rank_data = n * BYTES_PER_UNKNOWN / world
    return data_on_node + BASE_BYTES_PER_RANK * local, per_rank_data + BASE_BYTES_PER_RANK


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def memory_available():
    """[(bytes, where)] of every limit that applies on this node (node-wide limits), and the
    per-process address-space limit or None."""
    limits = []
    text = _read("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemAvailable:"):
                limits.append((int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"))
    cg_max, cg_cur = _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
    if cg_max and cg_max.strip().isdigit():
        used = int(cg_cur) if cg_cur and cg_cur.strip().isdigit() else 0
        limits.append((int(cg_max) - used, "the cgroup limit /sys/fs/cgroup/memory.max less memory.current"))
    else:
        v1 = _read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        if v1 and v1.strip().isdigit() and int(v1) < 1 << 60:
            limits.append((int(v1), "the cgroup limit memory.limit_in_bytes"))
    per_node = _env_int("SLURM_MEM_PER_NODE")
    per_cpu = _env_int("SLURM_MEM_PER_CPU")
    if per_node:
        limits.append((per_node << 20, f"SLURM_MEM_PER_NODE = {per_node} MB"))
    elif per_cpu:
        cpus = _env_int("SLURM_CPUS_ON_NODE") or 1
        limits.append(((per_cpu * cpus) << 20, f"SLURM_MEM_PER_CPU = {per_cpu} MB x {cpus} CPUs"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    per_process = None if soft in (resource.RLIM_INFINITY, -1) else soft
    return limits, per_process


def _gb(b):
    return f"{b / 1e9:.3g} GB" if b >= 1e8 else f"{b / 1e6:.3g} MB"


def check_memory(deck, members=1, where="", skip=False):
    """Raise MemoryRefused if the run needs more than this node (or allocation) has."""
    if skip or os.environ.get("ISOSIM_NO_MEMORY_CHECK", "") not in ("", "0"):
        return
    node_need, rank_need = memory_need(deck, members)
    limits, per_process = memory_available()
    world, local = ranks()
    n = unknowns(deck)
    what = (f"{n:,} unknowns" + (f" per member, {members:,} members" if members > 1 else "")
            + f" on {world} rank(s), {local} on this node")
    override = ("; nothing was run. Use fewer cells, members or a smaller ensemble.batch_size, more nodes, or "
                "--no-memory-check (ISOSIM_NO_MEMORY_CHECK=1) to run anyway")
    if per_process is not None and rank_need > per_process:
        raise MemoryRefused(f"error: {where}the run needs ~{_gb(rank_need)} per rank ({what}; ~{BYTES_PER_UNKNOWN} "
                            f"bytes per unknown), above this process's address-space limit (ulimit -v) of "
                            f"{_gb(per_process)}{override}")
    if limits:
        avail, source = min(limits)
        if node_need > avail:
            raise MemoryRefused(f"error: {where}the run needs ~{_gb(node_need)} on this node ({what}; "
                                f"~{BYTES_PER_UNKNOWN} bytes per unknown + {_gb(BASE_BYTES_PER_RANK)} per rank), "
                                f"more than the {_gb(avail)} available ({source}){override}")


def preflight(deck, *, members=1, skip_memory=False, log=None):
    """Every check before PETSc allocates: memory (may raise MemoryRefused, exit 2), then the
    cost warning (one line on stderr of rank 0). ``deck``: the resolved (base) deck."""
    check_memory(deck, members, skip=skip_memory)
    if deck["model"] == "grain_exchange":
        from .physics.timescales import slow_warning
        from .startup import world_rank
        from .deck.grain_exchange import plausibility_warnings
        lines = plausibility_warnings(deck) + [x for x in [slow_warning(deck)] if x]
        if world_rank() == 0:
            for line in lines:
                (log or (lambda m: print(m, file=sys.stderr, flush=True)))(line)
