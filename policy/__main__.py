"""PlexiChat's CrossGuard policy pack: every rule of the `rules` package, mandatory, on every resource.

Run by the Pulumi CLI (`pulumi preview --policy-pack policy`), which executes this directory
with it on `sys.path`. This file only adapts CrossGuard's view of a resource to `rules.Subject`;
the rules themselves are plain functions that the test suite also runs offline.

Production is the stack's own `plexichat:environment`, never its name: the CLI hands a policy
pack the stack's config (PULUMI_CONFIG, which the policy SDK loads into `pulumi.runtime`, as for
a program). The floors a production stack must meet come from the program's one table,
components/config/floors.py (pure: the standard library only), so the pack runs from this
repository, as CI runs it, not as a published pack.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import sys
from collections.abc import Mapping
from typing import Any

import rules  # type: ignore[import-not-found]  # the pack runs from policy/: `rules` is policy/rules
from pulumi.runtime import config as runtime_config
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (  # the sentinels the engine sends for values unknown in preview
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

_UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    }
)

sys.path.append(str(pathlib.Path(__file__).resolve().parent.parent))  # the project: its floors table
from components.config import floors  # noqa: E402  (after the project is on the path)


def plain(value: Any) -> Any:
    """`args.props` as plain data: CrossGuard's unknown-checking proxies unwrapped (they raise on
    an unknown value), and preview unknowns turned into `rules.UNKNOWN`, which rules never count
    as a violation."""
    if not isinstance(value, (str, bytes)):
        with contextlib.suppress(KeyError, TypeError, IndexError):
            value = value["__target"]  # the proxy's wrapped dict or list
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str) and value in _UNKNOWN_SENTINELS:
        return rules.UNKNOWN
    return value


def stack_config() -> dict[str, Any]:
    """The stack's config, as the CLI hands it to the pack (and to the program)."""
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def production_floors(config: Mapping[str, Any]) -> tuple[bool, frozenset[str]]:
    """Whether the stack is production, and the floors it must meet: from `plexichat:environment`,
    `plexichat:productionFloorOverrides` and the role in `plexichat:dr` (JSON text, as the CLI
    passes structured values): a DR standby (`role: standby`) meets the standby floors, every
    other stack (a promoted standby too) all of them, as StackSettings.floor_role says."""
    environment = config.get("plexichat:environment")
    production = rules.is_production(environment)
    overridden = _structured(config.get("plexichat:productionFloorOverrides"))
    dr = _structured(config.get("plexichat:dr"))
    role: floors.Role = "standby" if dr.get("role") == "standby" else "active"
    # Unset counts as production (rules.is_production): its floors then hold.
    return production, floors.required(floors.PRODUCTION, overridden, role) if production else frozenset()


def _structured(value: Any) -> dict[str, Any]:
    """A structured config value (JSON text from the CLI, or already a mapping); {} when unset."""
    if not value:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    return dict(parsed) if isinstance(parsed, Mapping) else {}


def subject(args: ResourceValidationArgs, config: Mapping[str, Any]) -> rules.Subject:
    production, required = production_floors(config)
    return rules.Subject(
        type=args.resource_type,
        inputs=plain(args.props),
        protect=bool(args.opts.protect),
        production=production,
        floors=required,
        # The Python policy SDK unwraps secrets before a policy sees them, so here secrecy cannot
        # be checked; the test suite checks it on the engine's recorded inputs instead.
        secrets_visible=False,
    )


def validator(rule: rules.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(subject(args, stack_config())):
            report_violation(message, None)

    return validate


def stack_validator(rule: rules.StackRule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            rules.StackResource(r.resource_type, r.urn, plain(r.props), frozenset(d.urn for d in r.dependencies))
            for r in args.resources
        ]
        _, required = production_floors(stack_config())
        for urn, message in rule(rules.Stack(resources, required)):
            report_violation(message, urn or None)

    return validate


def policies() -> list[Policy]:
    return [
        ResourceValidationPolicy(
            name=p.name,
            description=p.description,
            validate=validator(p.check),
        )
        for p in rules.POLICIES
    ] + [
        StackValidationPolicy(name=p.name, description=p.description, validate=stack_validator(p.check))
        for p in rules.STACK_POLICIES
    ]


if __name__ == "__main__":
    PolicyPack(
        name="plexichat",
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=policies(),
    )
