"""The shape of the code a learner reads: the plain core imports nothing about speed, no layer
mentions threads, and every function fits a screen."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "scratchcnn"
PLAIN_CORE = [PACKAGE / "network.py", PACKAGE / "losses.py", PACKAGE / "optim.py",
              *sorted((PACKAGE / "layers").glob("*.py"))]
SPEED_MODULES = {"threading", "concurrent", "multiprocessing", "threadpoolctl", "contextvars"}
MAX_FUNCTION_LINES = 60


def imported_modules(path):
    """Every module ``path`` imports, absolute or relative (``..engine`` as ``engine``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", PLAIN_CORE, ids=lambda p: p.name)
def test_the_plain_core_imports_nothing_about_speed(path):
    parts = {part for name in imported_modules(path) for part in name.split(".")}
    assert not parts & (SPEED_MODULES | {"engine", "runtime", "parallel"}), parts
    assert "peers" not in path.read_text()


def long_functions(path):
    """``name (lines)`` for every function in ``path`` longer than ``MAX_FUNCTION_LINES``."""
    tree = ast.parse(path.read_text())
    return [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]


def test_no_function_in_the_package_is_over_sixty_lines():
    found = {str(path.relative_to(PACKAGE)): long for path in sorted(PACKAGE.rglob("*.py"))
             if (long := long_functions(path))}
    assert not found, found


def test_the_checks_can_fail(tmp_path):
    """A long function and a threaded import are caught."""
    source = tmp_path / "bad.py"
    source.write_text("import threading\nfrom ..engine import x\n\ndef f():\n" + "    pass\n" * 61)
    assert long_functions(source) == ["f (62 lines)"]
    assert {"threading", "engine"} <= imported_modules(source)
