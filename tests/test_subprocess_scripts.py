"""The scripts tests run in a subprocess (slow tests) import names that still exist.

A rename in rge_core otherwise surfaces only in the slow suite, as a traceback in a child's stderr.
"""

import ast
import importlib
from pathlib import Path

import pytest

SCRIPTS = sorted(Path(__file__).parent.glob("*_script.py"))


def rge_core_imports(script: Path) -> list[tuple[str, str]]:
    tree = ast.parse(script.read_text())
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rge_core")
        for alias in node.names
    ]


def test_there_are_scripts_to_check():
    assert SCRIPTS and all(rge_core_imports(s) for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_imported_name_exists(script):
    missing = [
        f"{module}.{name}"
        for module, name in rge_core_imports(script)
        if not hasattr(importlib.import_module(module), name)
    ]
    assert not missing, f"{script.name} imports names rge_core no longer has: {missing}"
