"""The library's structure, read from its imports: each unit of rge_core/ (a folder or a top-level module)
imports only units on lower layers, no module imports back into one that imports it, and the library
knows nothing of Prefect or the flows. A new import that runs back up fails here, naming the file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "rge_core"

# Bottom to top. A unit may import units of lower layers only (and itself).
LAYERS = [
    {"compat", "fileio", "scratch", "seeds", "messages", "progress", "child_processes"},
    {"strict_yaml", "root_cause", "model", "synth"},
    {"config", "data", "prompts"},
    {"artifacts", "launch"},
    {"allowed_roots", "stage_logs", "embedding"},
    {"builds", "generation"},
    {"sources", "training", "curation", "embedder"},
    {"evaluation"},
    {"embed_io", "export"},
    {"stages"},
    {"pipeline"},
    {"preflight"},
    {"cli"},
]
# rge_core/__init__.py names the public API (`from rge_core import Embedder`), loaded lazily on first use.
PUBLIC_FACE = {("__init__", "embedder")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.AST, *, runtime_top_level: bool) -> list[tuple[int, str]]:
    """(line, imported module) of every import, or only those run when the module itself is imported."""
    if runtime_top_level:
        nodes = []
        for node in tree.body:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            nodes += [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            if isinstance(node, (ast.If, ast.Try)):  # imports guarded by a condition still run at import
                nodes += [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    else:
        nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif node.module and node.level == 0:  # `from package import submodule` imports the submodule
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else node.module))
    return found


def _library_modules() -> dict[str, tuple[Path, ast.AST]]:
    return {_module_name(p): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(LIBRARY.rglob("*.py"))}


MODULES = _library_modules()
UNITS = {_unit(name) for name in MODULES if name != "rge_core"} | {"__init__"}


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def test_every_unit_has_a_layer():
    placed = set().union(*LAYERS)
    assert UNITS - {"__init__"} <= placed, f"give these units a layer: {sorted(UNITS - {'__init__'} - placed)}"
    assert placed <= UNITS, f"layers name units that no longer exist: {sorted(placed - UNITS)}"


def test_units_import_only_lower_layers():
    upward = []
    for name, (path, tree) in MODULES.items():
        unit = _unit(name) if name != "rge_core" else "__init__"
        for line, imported in _imports(tree, runtime_top_level=False):
            if not imported.startswith("rge_core."):
                continue
            target = _unit(imported)
            if target == unit or target not in UNITS or (unit, target) in PUBLIC_FACE:
                continue
            if unit == "__init__" or _layer(target) >= _layer(unit):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {unit} imports {imported} ({target})")
    assert not upward, "imports that run up or sideways:\n" + "\n".join(sorted(set(upward)))


def _circles(graph: dict[str, set[str]]) -> list[str]:
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, set()) - {module}):
            if state.get(imported) == 1:
                circles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


def test_no_module_imports_back_into_one_that_imports_it():
    graph = {
        name: {imported for _, imported in _imports(tree, runtime_top_level=True) if imported in MODULES}
        for name, (_, tree) in MODULES.items()
    }
    circles = _circles(graph)
    assert not circles, "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("banned", ["prefect", "flows"])
def test_library_knows_nothing_of_prefect(banned):
    found = [
        f"{path.relative_to(ROOT)}:{line}: {imported}"
        for path, tree in MODULES.values()
        for line, imported in _imports(tree, runtime_top_level=False)
        if imported == banned or imported.startswith(banned + ".")
    ]
    assert not found, f"rge_core/ imports {banned}:\n" + "\n".join(found)


def test_the_readers_see_imports_and_circles():
    """What the checks above rest on: which imports run at import time, and a circle found as one."""
    top = ast.parse("from rge_core.stages.train import STAGE\nfrom rge_core.artifacts import versioning\n")
    assert _imports(top, runtime_top_level=True) == [(1, "rge_core.stages.train"), (2, "rge_core.artifacts.versioning")]
    guarded = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import rge_core.cli\n")
    assert [name for _, name in _imports(guarded, runtime_top_level=True)] == ["typing"]
    lazy = ast.parse("def f():\n    import rge_core.cli\n")
    assert _imports(lazy, runtime_top_level=True) == []
    assert _imports(lazy, runtime_top_level=False) == [(2, "rge_core.cli")]
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert _circles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert _layer("cli") > _layer("config") and _unit("rge_core.config.loader") == "config"
