"""The seams of the code, checked (issue 18): every registered model meets the contract of
:mod:`isosim.models.base`; the package has no import cycle (imports inside functions count);
the deck and physics layers never touch PETSc or MPI; the driver, runner, ensemble and
studies call hooks instead of probing for them."""

import ast
import importlib
import re
from pathlib import Path

import pytest

from isosim.models import base
from isosim.models.recording import Recorder
from isosim.registry import MODELS, resolve

SRC = Path(__file__).resolve().parents[1] / "src" / "isosim"


def _module_name(path):
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    """The isosim modules ``path`` imports, anywhere in the file (functions included)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("isosim")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("isosim"):
                continue
            out.add(mod)
            for a in node.names:          # "from . import x" imports the submodule x
                if (SRC.parent / (mod.replace(".", "/") + f"/{a.name}.py")).exists() or \
                        (SRC.parent / (mod.replace(".", "/") + f"/{a.name}")).is_dir():
                    out.add(f"{mod}.{a.name}")
    return out


def _graph():
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imp in _imports(path):
            # a submodule's import runs its package's __init__ first; edges go to the module itself
            while imp and imp not in modules:
                imp = imp.rsplit(".", 1)[0] if "." in imp else ""
            if imp and imp != name:
                deps.add(imp)
        graph[name] = deps
    return graph


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _ignoring_package_inits(graph):
    """Package ``__init__`` modules that only re-export (``isosim``, ``isosim.deck``) would put
    every submodule that imports a sibling through them into one cycle; edges *into* a
    package's __init__ from its own submodules are dropped (Python runs the __init__ first
    anyway, and it imports nothing that imports back)."""
    out = {}
    for v, deps in graph.items():
        out[v] = {w for w in deps if not (v.startswith(w + ".") and (SRC.parent / w.replace(".", "/")).is_dir())}
    return out


def test_no_import_cycles():
    cycles = _cycles(_ignoring_package_inits(_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("layer", ["deck", "physics"])
def test_lower_layers_never_touch_petsc_or_mpi(layer):
    for path in (SRC / layer).rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(petsc4py|mpi4py)", text, re.M), path
        for imp in _imports(path):
            assert not imp.startswith(("isosim.solver", "isosim.models", "isosim.runner", "isosim.startup",
                                       "isosim.studies", "isosim.cli")), (path, imp)


@pytest.mark.parametrize("module", ["solver/driver.py", "runner.py", "studies/ensemble.py", "studies/sweep.py",
                                    "studies/invert.py", "studies/streaming.py"])
def test_no_probing_of_problem_or_recorder_hooks(module):
    text = (SRC / module).read_text()
    probes = re.findall(r"(?:getattr|hasattr)\((?:self\.)?(problem|recorder|problem_cls|recorder_cls|p|rec)\b",
                        text)
    assert not probes, f"{module} probes hooks: {probes}"


@pytest.mark.parametrize("name", list(MODELS))
def test_registered_model_meets_the_contract(name):
    spec = MODELS[name]
    deck = spec.deck_module
    assert hasattr(deck, "SCHEMA") and callable(deck.cross_check)
    problem = spec.problem_class
    assert issubclass(problem, base.Problem) and problem.name == name
    assert problem.kind in base.REQUIRED
    for hook in base.COMMON + base.REQUIRED[problem.kind]:
        assert callable(getattr(problem, hook)), hook
    recorder = spec.recorder_class
    assert issubclass(recorder, Recorder)
    needed = base.RECORDER_REQUIRED + (base.RECORDER_FOR_STUDIES if spec.studies else ())
    for hook in needed:
        assert getattr(recorder, hook, None) is not getattr(Recorder, hook, None), f"{name} recorder: {hook}"
    for kind, ref in spec.figures.items():
        assert callable(resolve(ref)), (kind, ref)
    assert set(spec.converge) == {"cells", "stretch", "chooser", "compare", "end_only"}
    assert set(spec.studies) <= {"sweep", "invert"}
    if spec.studies:
        assert "ensemble" in deck.SCHEMA.fields, "a model with studies has an [ensemble] table"


def test_a_problem_missing_a_hook_fails_when_defined():
    with pytest.raises(TypeError, match="does not define rhs"):
        class Broken(base.Problem):          # noqa: F841
            kind = base.EXPLICIT
            group_key = initial_state = state_fields = load_state = gather_state = staticmethod(lambda *a: None)
    with pytest.raises(TypeError, match="kind"):
        class NoKind(base.Problem):          # noqa: F841
            pass


def test_command_line_and_studies_import_without_petsc():
    """PETSc reads its options once, when it starts: nothing the command line imports before
    isosim.startup.init_petsc may load petsc4py.PETSc (else -ts_rtol, -log_view are ignored)."""
    import subprocess
    import sys
    code = ("import sys, isosim.cli, isosim.studies, isosim.studies.slices, isosim.preflight, isosim.runner; "
            "print('petsc4py.PETSc' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", out


def test_deck_layer_imports_without_petsc():
    """Reading and validating a deck loads neither PETSc nor MPI (a login node, isosim check)."""
    import subprocess
    import sys
    code = ("import sys, isosim; from isosim.deck import load_deck; "
            f"load_deck({str(SRC.parents[1] / 'input' / 'xiong_fig1.toml')!r}); "
            "import isosim.registry; "
            "print(sorted(m for m in sys.modules if m.startswith(('petsc4py', 'mpi4py'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
    importlib.import_module("isosim.models.base")   # the contract itself imports no model
