"""The package's import graph: every module imports, no two modules import each other (directly or round a
longer circle, imports inside functions included), and the errors import nothing else of collapse."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "collapse"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """collapse modules `name` imports anywhere in its file, and the packages above them, whose __init__ Python
    runs first (`from collapse.metrics import families` is an edge to collapse.metrics.families and to
    collapse.metrics), but not `name`'s own packages, which are running already."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("collapse"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & MODULES.keys()
            out |= subs or {node.module}
            if len(subs) < len(node.names):  # some names are not submodules: the module itself
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("collapse")}
    out |= {m.rsplit(".", i)[0] for m in out for i in range(1, m.count("."))}  # Python runs their packages too
    parents = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
    return (out & MODULES.keys()) - parents - {name}


def test_no_import_cycle():
    graph = {name: _imports(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(graph[name]):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join(path[path.index(dep):] + [name, dep])
            if dep not in state:
                visit(dep, path + [name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_errors_import_no_schema():
    """A module that only raises DataError or ConfigError loads neither the schemas nor Hydra."""
    code = "import sys, collapse.errors; print(sorted(m for m in sys.modules if m.startswith(('collapse', 'hydra'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "['collapse', 'collapse.errors']"


def _names_imported_from(module: str) -> set[str]:
    names = set()
    for path in [*ROOT.glob("collapse/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("experiments/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == module:
                names |= {a.name for a in node.names}
    return names


def test_every_name_imported_from_config_resolves():
    """Every `from collapse.config import X` in the package, tests and experiments names something config has."""
    config = importlib.import_module("collapse.config")
    for name in sorted(_names_imported_from("collapse.config")):
        assert getattr(config, name) is not None, name


def test_no_module_exceeds_three_hundred_lines():
    """One concern per module, a file one can read in one sitting."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 300}
    assert not long, long
