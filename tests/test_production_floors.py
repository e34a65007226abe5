"""The production floors (components/config/floors.py): a stack that says `environment:
production` has them all, unless its stack file overrides one with a reason; the table is one,
pure, and named after the settings it bounds."""

from __future__ import annotations

import ast
import sys

import pulumi
import pytest

from components.config import floors
from components.config.parse import parse_stack_config
from plexictl.offline import ROOT, stack_config
from tests.conftest import render_edited, stack_file
from tests.release_state import pin_versions
from tests.test_settings import _set

# Each floor, broken on its own (cache.nodes only goes below 2 with Multi-AZ off, so it breaks
# both cache floors): floor -> (the edit, every floor it breaks).
BELOW = {
    "database.deletionProtection": ({"database.deletionProtection": False}, {"database.deletionProtection"}),
    "dataProtection.protect": ({"dataProtection.protect": False}, {"dataProtection.protect"}),
    "backups.vaultLock": ({"backups.vaultLock": False}, {"backups.vaultLock"}),
    "database.multiAz": ({"database.multiAz": False}, {"database.multiAz"}),
    "database.readReplicas": ({"database.readReplicas": 1}, {"database.readReplicas"}),
    "cache.multiAz": ({"cache.multiAz": False}, {"cache.multiAz"}),
    "cache.nodes": ({"cache.nodes": 1, "cache.multiAz": False}, {"cache.nodes", "cache.multiAz"}),
    "workloads.web.minReplicas": ({"workloads.web.minReplicas": 1}, {"workloads.web.minReplicas"}),
    "ingress.waf.mode": ({"ingress.waf.mode": "count"}, {"ingress.waf.mode"}),
}
ALL_BELOW = {path: value for edit, _ in BELOW.values() for path, value in edit.items()}
REASON = "decommissioning this stack, ticket OPS-42"


def edits(values: dict, overrides: dict | None = None):
    def edit(config):
        for path, value in values.items():
            _set(path, value)(config)
        if overrides is not None:
            config["plexichat:productionFloorOverrides"] = overrides

    return edit


def problems(stack: str, edit) -> dict[str, str]:
    """The config problems of `stack` after `edit`, by key path (without the namespace)."""
    with pytest.raises(pulumi.RunError) as raised:
        render_edited(stack, edit)
    found = {}
    for line in str(raised.value).splitlines():
        if line.startswith("  - plexichat:"):
            key, _, message = line.removeprefix("  - plexichat:").partition(": ")
            found[key] = message
    return found


def test_the_table_names_every_floor_the_issue_lists():
    assert set(floors.BY_NAME) == set(BELOW)


@pytest.mark.parametrize("floor", list(BELOW))
def test_a_production_stack_below_a_floor_is_refused_naming_it(floor):
    values, broken = BELOW[floor]
    found = problems("prod", edits(values))
    assert set(found) == broken
    assert f"must be {floors.BY_NAME[floor].requirement}" in found[floor]
    assert "plexichat:productionFloorOverrides" in found[floor]  # it says how to do it on purpose


@pytest.mark.parametrize("floor", list(BELOW))
def test_an_override_with_a_reason_lets_the_stack_go_below_that_floor(floor):
    values, broken = BELOW[floor]
    rendering = render_edited("prod", edits(values, dict.fromkeys(broken, REASON)))
    assert rendering.outputs["productionFloorOverrides"] == dict.fromkeys(broken, REASON)
    assert rendering.outputs["environment"] == "production"


def test_every_floor_below_is_reported_at_once():
    assert set(problems("prod", edits(ALL_BELOW))) == set(BELOW)


def test_what_goes_below_is_what_gets_built():
    """An override is not a formality: the resource really goes below the floor."""
    off = edits({"database.deletionProtection": False}, {"database.deletionProtection": REASON})
    primary = render_edited("prod", off).one("aws:rds/instance:Instance", "database-primary")
    assert primary.inputs["deletionProtection"] is False


@pytest.mark.parametrize(
    "overrides, key, words",
    [
        (
            {"database.deletionprotection": REASON},
            "productionFloorOverrides.database.deletionprotection",
            "is no production floor; the floors are " + ", ".join(floors.BY_NAME),
        ),
        ({"database.deletionProtection": ""}, "productionFloorOverrides.database.deletionProtection", "empty"),
        ({"database.deletionProtection": "   "}, "productionFloorOverrides.database.deletionProtection", "empty"),
        (
            {"cache.nodes": REASON},
            "productionFloorOverrides.cache.nodes",
            "overrides nothing: the stack meets this floor; remove it",
        ),
    ],
)
def test_an_override_must_name_a_floor_it_needs_and_say_why(overrides, key, words):
    found = problems("prod", edits({"database.deletionProtection": False}, overrides))
    assert words in found[key], found


def test_production_is_what_the_stack_says_not_its_name():
    # A stack named prod that says it is staging has no floors,
    rendering = render_edited("prod", edits({**ALL_BELOW, "environment": "staging"}))
    assert rendering.outputs["environment"] == "staging"
    # and one named staging that says it is production has every one,
    as_production = edits({**ALL_BELOW, "environment": "production"})

    def pinned_as_production(config):
        as_production(config)
        pin_versions(config["plexichat:release"])

    assert set(problems("staging", pinned_as_production)) == set(BELOW)
    # and runs only images pinned by digest.
    assert set(problems("staging", as_production)) == set(BELOW) | {"release.blue", "release.green"}


def test_only_production_stacks_may_override():
    found = problems("prod", edits({"environment": "staging"}, {"database.readReplicas": REASON}))
    assert "environment is staging; remove it" in found["productionFloorOverrides.database.readReplicas"]


def test_the_environment_is_required_and_one_of_three():
    config, secret_keys = stack_config("prod", stack_file=stack_file("prod"))
    del config["plexichat:environment"]
    with pytest.raises(ValueError, match="plexichat:environment: required, but not set; one of production, staging"):
        parse_stack_config(config, "prod", secret_keys)


def test_each_floor_is_named_after_the_setting_it_bounds():
    """The floor's name is the key path an operator edits (and overrides)."""
    config, secret_keys = stack_config("prod", stack_file=stack_file("prod"))
    settings = parse_stack_config(config, "prod", secret_keys)
    dumped = settings.model_dump(by_alias=True)
    for floor in floors.FLOORS:
        value = dumped
        for part in floor.name.split("."):
            value = value[part]
        assert value == floor.value(settings), floor.name


def test_a_standby_keeps_the_protection_floors_and_not_the_capacity_ones():
    """The hook for the DR issue: a standby stack's role selects a smaller floor set."""
    standby = floors.FLOORS_BY_ROLE["standby"]
    assert standby == {"database.deletionProtection", "dataProtection.protect", "backups.vaultLock"}
    assert standby < floors.FLOORS_BY_ROLE["active"] == set(floors.BY_NAME)
    config, secret_keys = stack_config("prod", stack_file=stack_file("prod"))
    settings = parse_stack_config(config, "prod", secret_keys)
    assert settings.floor_role == "active"  # every stack, until plexichat:dr exists
    small = settings.model_copy(
        update={"database": settings.database.model_copy(update={"read_replicas": 0, "deletion_protection": False})}
    )
    assert [f.name for f in floors.unmet(small, "standby")] == ["database.deletionProtection"]
    assert [f.name for f in floors.unmet(small, "active")] == ["database.deletionProtection", "database.readReplicas"]
    assert floors.required("staging", role="standby") == frozenset()


def test_the_table_is_pure_so_the_policy_pack_can_import_it():
    """The pack's venv has no pydantic: floors.py may import the standard library only."""
    tree = ast.parse((ROOT / "components" / "config" / "floors.py").read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.module == "components.config.stack")  # TYPE_CHECKING
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
