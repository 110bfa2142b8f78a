#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (as root, or with sudo): system packages, a virtual
# environment that sees them, and isosim installed editable. A second call only checks.
# Elsewhere (a cluster with its own PETSc) skip this script: see docs/install.md.
#
# What a fresh Debian 12 lacks was found on a brand-new debootstrap (variant minbase)
# system: besides the scientific stack, python3-wheel (pip's editable install of a
# setuptools project needs bdist_wheel) and python3-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# the scientific stack from Debian (nothing compiled), the tools the tests use, and the
# analysis packages users reach for (xarray reads isosim's HDF5 files)
PKGS="python3-petsc4py python3-mpi4py python3-h5py-mpi python3-numpy python3-scipy openmpi-bin
      python3-venv python3-pip python3-setuptools python3-wheel
      python3-matplotlib python3-pytest python3-hypothesis python3-xarray python3-h5netcdf"
VENV=${VENV:-.venv}

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: missing packages:$missing, and this is not a Debian system; see docs/install.md" >&2
        exit 1
    fi
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV (system site packages visible: Debian's petsc4py, mpi4py, h5py)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
venv_abs=$(cd "$VENV" && pwd)

# mpirun inside the venv: Open MPI refuses root (containers) and more ranks than cores
# (laptops, CI) unless told; the wrapper tells it, keeping any value the user set, so that
# `. .venv/bin/activate && mpirun -n 2 isosim ...` works as the README says.
for name in mpirun mpiexec; do
    real=$(PATH=/usr/local/bin:/usr/bin:/bin command -v "$name" || true)
    [ -n "$real" ] || continue
    cat > "$VENV/bin/$name.tmp" <<EOF
#!/bin/sh
# written by isosim's scripts/setup.sh: $real, allowed to run as root and oversubscribed
# (a value already in the environment is kept)
export OMPI_ALLOW_RUN_AS_ROOT="\${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="\${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
export OMPI_MCA_rmaps_base_oversubscribe="\${OMPI_MCA_rmaps_base_oversubscribe:-1}"
exec $real "\$@"
EOF
    chmod +x "$VENV/bin/$name.tmp" && mv "$VENV/bin/$name.tmp" "$VENV/bin/$name"
done

stamp="$VENV/.isosim-installed"
want=$( (sha256sum pyproject.toml scripts/setup.sh; dpkg-query -W python3-numpy python3-h5py-mpi python3-petsc4py) | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import isosim" 2>/dev/null; then
    # The venv sees Debian's packages; two of them need help to be seen as installed:
    # petsc4py sits in PETSc's own tree (Debian finds it through PETSC_DIR), and h5py is
    # registered under another name ("h5py._debian_h5py_mpi"), so pip would install a second
    # h5py from PyPI over it. And the venv's pip must never replace the Debian packages isosim
    # is built on (a later `pip install xarray` pulled numpy 2 over Debian's numpy and broke
    # Debian's h5py): their versions become constraints in the venv's own pip configuration.
    "$VENV/bin/python" - "$venv_abs" <<'PY'
import os, sys, sysconfig
from importlib.metadata import version, PackageNotFoundError
sys.path.insert(0, "src")
from isosim.startup import find_petsc
find_petsc()
import petsc4py, h5py
venv, site = sys.argv[1], sysconfig.get_paths()["purelib"]
with open(os.path.join(site, "isosim-debian-petsc4py.pth"), "w") as f:   # petsc4py importable without PETSC_DIR
    f.write(os.path.dirname(os.path.dirname(petsc4py.__file__)) + "\n")
info = os.path.join(site, f"h5py-{h5py.__version__}.dist-info")          # h5py seen by pip (no RECORD: never uninstalled)
os.makedirs(info, exist_ok=True)
with open(os.path.join(info, "METADATA"), "w") as f:
    f.write(f"Metadata-Version: 2.1\nName: h5py\nVersion: {h5py.__version__}\n"
            "Summary: stands for Debian's python3-h5py-mpi (written by isosim's scripts/setup.sh)\n")
with open(os.path.join(info, "INSTALLER"), "w") as f:
    f.write("debian\n")
pins = []
for dist in ("numpy", "scipy", "h5py", "mpi4py", "petsc4py"):
    try:
        pins.append(f"{dist}=={version(dist)}")
    except PackageNotFoundError:
        sys.exit(f"setup: {dist} is not visible in the venv")
with open(f"{venv}/constraints.txt", "w") as f:
    f.write("# written by isosim's scripts/setup.sh: Debian's builds, kept by every pip install in this venv\n")
    f.write("\n".join(pins) + "\n")
with open(f"{venv}/pip.conf", "w") as f:
    f.write(f"# written by isosim's scripts/setup.sh\n[install]\nconstraint = {venv}/constraints.txt\n")
print("setup: pip in the venv keeps " + ", ".join(pins))
PY
    echo "setup: pip install -e . (no build isolation: uses Debian's setuptools, downloads nothing)"
    "$VENV/bin/pip" install --no-build-isolation --no-deps -q -e .
    "$VENV/bin/python" - <<'PY'
import importlib
from isosim.startup import init_petsc
init_petsc([])                      # finds PETSc as isosim run does, starts MPI and PETSc
for m in ("numpy", "scipy", "h5py", "pytest", "matplotlib", "xarray", "h5netcdf"):
    importlib.import_module(m)
PY
    echo "$want" > "$stamp"
fi
