"""PlexiChat's CrossGuard policy pack: every rule of the `rules` package, mandatory, on every resource.

Run by the Pulumi CLI (`pulumi preview --policy-pack policy`), which executes this directory
with it on `sys.path`. This file only adapts CrossGuard's view of a resource to `rules.Subject`;
the rules themselves are plain functions that the test suite also runs offline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import pulumi
import rules  # type: ignore[import-not-found]  # the pack runs from policy/: `rules` is policy/rules
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
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

PRODUCTION_STACKS_CONFIG = PolicyConfigSchema(
    properties={
        "productionStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["prod"],
            "description": "Stack names whose resources get the production-only rules.",
        }
    }
)


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


def subject(args: ResourceValidationArgs, stack: str) -> rules.Subject:
    production_stacks = tuple(args.get_config().get("productionStacks", ("prod",)))
    return rules.Subject(
        type=args.resource_type,
        inputs=plain(args.props),
        protect=bool(args.opts.protect),
        production=rules.is_production(stack, production_stacks),
        # The Python policy SDK unwraps secrets before a policy sees them, so here secrecy cannot
        # be checked; the test suite checks it on the engine's recorded inputs instead.
        secrets_visible=False,
    )


def validator(rule: rules.Rule):
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(subject(args, pulumi.get_stack())):
            report_violation(message, None)

    return validate


def stack_validator(rule: rules.StackRule):
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            rules.StackResource(r.resource_type, r.urn, plain(r.props), frozenset(d.urn for d in r.dependencies))
            for r in args.resources
        ]
        for urn, message in rule(resources):
            report_violation(message, urn)

    return validate


def policies() -> list[Policy]:
    return [
        ResourceValidationPolicy(
            name=p.name,
            description=p.description,
            validate=validator(p.check),
            config_schema=PRODUCTION_STACKS_CONFIG,
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
