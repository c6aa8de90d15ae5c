"""The layering rule: broker, bridge and api import only the shared `core` package, never each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("broker", "bridge", "api")
FORBIDDEN = {*COMPONENTS, "mqchat", "tests"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            names.add("<relative>")
    return names


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_imports_only_core(component: str) -> None:
    files = sorted((ROOT / component).rglob("*.py"))
    assert files, f"{component}/ has no modules"
    for path in files:
        bad = imported_packages(path) & (FORBIDDEN - {component} | {"<relative>"})
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_core_imports_no_component() -> None:
    for path in sorted((ROOT / "core").rglob("*.py")):
        bad = imported_packages(path) & (FORBIDDEN | {"<relative>"})
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
