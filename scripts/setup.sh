#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (as root, or with sudo): system packages, a virtual
# environment that sees them, and isosim installed editable. A second call only checks.
# Elsewhere (a cluster with its own PETSc) skip this script: see README "Installing on a cluster".
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="python3-petsc4py python3-mpi4py python3-h5py-mpi python3-scipy python3-pytest python3-hypothesis python3-venv python3-setuptools openmpi-bin python3-matplotlib"
VENV=${VENV:-.venv}

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "setup: missing packages:$missing, and this is not a Debian system; see README (cluster install)" >&2
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

stamp="$VENV/.isosim-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$VENV/bin/python" -c "import isosim" 2>/dev/null; then
    echo "setup: pip install -e . (no build isolation: uses Debian's setuptools, downloads nothing)"
    "$VENV/bin/pip" install --no-build-isolation --no-deps -q -e . 
    "$VENV/bin/python" - <<'PY'
import importlib
for m in ("numpy", "scipy", "h5py", "mpi4py", "petsc4py", "pytest"):
    importlib.import_module(m)
PY
    echo "$want" > "$stamp"
fi
