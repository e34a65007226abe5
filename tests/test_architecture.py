"""The layout is the architecture (docs/design.md): dependencies flow one way,
config <- release <- resource packages <- platform <- __main__, and the pure layers stay pure."""

from __future__ import annotations

import ast
import pathlib

import pytest

from plexictl.offline import ROOT

COMPONENTS = ROOT / "components"
RESOURCE_PACKAGES = ("cluster", "edge", "data", "identity", "observability")
# What each layer may import from `components` (besides itself): never a layer above it.
ALLOWED = {
    "config": {"config"},
    "release": {"config", "release"},
    "naming": {"config", "naming"},
    **{package: {"config", "release", "naming", *RESOURCE_PACKAGES} for package in RESOURCE_PACKAGES},
    "platform": {"config", "release", "naming", "platform", *RESOURCE_PACKAGES},
}


def imported_modules(path: pathlib.Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            # `from components import naming` imports the module `components.naming`
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def layer_of(path: pathlib.Path) -> str:
    return path.relative_to(COMPONENTS).parts[0].removesuffix(".py")


SOURCES = sorted(p for p in COMPONENTS.rglob("*.py") if p.name != "__init__.py" or p.parent != COMPONENTS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_components_import_only_layers_below_them_and_never_plexictl(path):
    layer = layer_of(path)
    modules = imported_modules(path)
    assert not {m for m in modules if m.split(".")[0] == "plexictl"}, f"{path.name} imports the tool"
    used = {m.split(".")[1] for m in modules if m.startswith("components.") and len(m.split(".")) > 1}
    assert used <= ALLOWED[layer], f"{layer} may not import {sorted(used - ALLOWED[layer])}"


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if layer_of(p) in ("config", "release", "naming")],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_pure_layers_import_no_pulumi(path):
    pulumi_imports = {m for m in imported_modules(path) if m.split(".")[0].startswith("pulumi")}
    assert not pulumi_imports, f"{path.relative_to(ROOT)} imports {sorted(pulumi_imports)}"


def test_the_check_sees_a_violation(tmp_path):
    """The import scan must be able to fail: a pure module that imports pulumi is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import pulumi_kubernetes as k8s\nfrom plexictl.offline import ROOT\n")
    assert {"pulumi_kubernetes", "plexictl.offline"} <= imported_modules(bad)
