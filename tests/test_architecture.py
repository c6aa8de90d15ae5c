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


TRANSPORT = ROOT / "core" / "mqtt"
INTERNALS = TRANSPORT / "internals.py"
AIOMQTT_PRIVATE = {"_client", "_pending_publishes", "_messages", "_connected", "_disconnected"}


def _non_self_attributes(path: Path) -> set[str]:
    """Attribute names read from anything but `self`/`cls` in the module."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    }


def _service_modules() -> list[Path]:
    return sorted(path for package in ("core", "bridge", "api", "mqchat") for path in (ROOT / package).rglob("*.py"))


def test_only_core_mqtt_internals_touches_aiomqtt_private_parts() -> None:
    for path in _service_modules():
        if path == INTERNALS:
            continue
        bad = _non_self_attributes(path) & AIOMQTT_PRIVATE
        assert not bad, f"{path.relative_to(ROOT)} reaches into aiomqtt ({sorted(bad)}): go through core.mqtt.internals"
        assert "paho" not in imported_packages(path), f"{path.relative_to(ROOT)} imports paho: go through core.mqtt.internals"


def test_core_speaks_mqtt_only_in_its_transport_area() -> None:
    for path in sorted((ROOT / "core").rglob("*.py")):
        if TRANSPORT not in path.parents:
            assert "aiomqtt" not in imported_packages(path), f"{path.relative_to(ROOT)} imports aiomqtt outside core/mqtt/"
