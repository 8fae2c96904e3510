"""The code's shape (issue 14): small modules and short functions, so a stage reads in
one sitting. The argparse builder is the one long function: it is a table of options."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
LONG_BY_DESIGN = {("compiler/arguments.py", "build_parser")}
MODULES = sorted((ROOT / "compiler").rglob("*.py"))


def _functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_modules_are_small() -> None:
    assert MODULES
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_functions_are_short() -> None:
    long = {
        (rel, name): lines
        for path in MODULES
        for name, lines in _functions(path)
        if lines > MAX_FUNCTION_LINES
        and ((rel := str(path.relative_to(ROOT))), name) not in LONG_BY_DESIGN
    }
    assert long == {}


def test_no_command_imports_another() -> None:
    """Commands are a thin layer over services; a command that needs another's code
    needs a service."""
    for path in sorted((ROOT / "compiler/commands").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("compiler.commands"), (path.name, node.module)
    for path in MODULES:
        if "commands" in path.parts or path.name in ("cli.py", "__main__.py", "entry.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "compiler.commands" not in text, path
