"""`plexictl diff`: the desired-state difference between two renderings, with a replacement guard.

A pull request changes the program or a stack file; reviewers need to see what that does to each
resource without cloud credentials or a state backend. This module compares two `Rendering`s of
one stack resource by resource (matched by URN, renames followed through `aliases`) and field by
field, and flags every change that would destroy a stateful resource's data:

- an input that forces replacement of a stateful resource changes (`components/stateful.py`,
  the one list of those inputs),
- a stateful resource disappears,
- a stateful resource's URN changes without an alias (Pulumi would delete the old one and create
  a new, empty one),
- a stateful resource moves to another provider (Pulumi replaces it if the provider's config
  differs in a replacing way, such as the region),
- a protected resource loses `protect`, or any resource its cloud-side deletion protection
  (`deletionProtection` on RDS, and the like on every type that has one).

It also lists the production floors the head stack overrides (`productionFloorOverrides`, a stack
output), marking those the change adds: each is a reviewed decision to go below a floor.

Everything here is a pure function over renderings; `plexictl.revision` produces renderings of a
git ref. Secret values are compared but never printed (`offline.mask_secrets`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from components.data.stateful import STATEFUL_TYPES, replacement_forcing_changes
from plexictl.offline import Rendering, Resource, is_secret, mask_secrets

DATA_LOSS = "REPLACE/DELETE — data loss risk"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
ABSENT = object()
"""Marks a key or list item that does not exist on one side of a comparison."""
_OPTION_FIELDS = {
    # Resource options that change what Pulumi does, shown as `options.<name>` changes.
    "protect": "protect",
    "retain_on_delete": "retainOnDelete",
    "delete_before_replace": "deleteBeforeReplace",
    "ignore_changes": "ignoreChanges",
    "provider": "provider",
}


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any

    def describe(self, arrow: str = "->") -> str:
        return f"{self.path} {show(self.before)} {arrow} {show(self.after)}"


@dataclass
class ResourceChange:
    kind: str
    """`added`, `removed` or `changed`."""
    label: str
    """How people call the resource: `Deployment plexichat-web-stable`, `aws:kms/key:Key data-key`."""
    component: str
    type: str
    urn: str
    fields: list[FieldChange] = field(default_factory=list)


DELETION_PROTECTION_INPUTS = ("deletionProtection", "deletionProtectionEnabled", "enableDeletionProtection")
"""How AWS resource types name their own deletion protection (RDS and DocumentDB, DynamoDB, load
balancers); turning one off is a data-loss risk whatever the type."""
OVERRIDES_OUTPUT = "productionFloorOverrides"
"""The stack output naming the production floors a stack goes below, with the reasons."""


@dataclass(frozen=True)
class FloorOverride:
    floor: str
    reason: str
    added: bool
    """New in this change (the base does not override it)."""

    def describe(self) -> str:
        return (
            f"production floor {self.floor} overridden{' (added by this change)' if self.added else ''}: {self.reason}"
        )


@dataclass(frozen=True)
class Risk:
    label: str
    reason: str

    def describe(self) -> str:
        return f"{DATA_LOSS}: {self.label}: {self.reason}"


@dataclass
class StackDiff:
    stack: str
    changes: list[ResourceChange] = field(default_factory=list)
    outputs: list[FieldChange] = field(default_factory=list)
    risks: list[Risk] = field(default_factory=list)
    overrides: list[FloorOverride] = field(default_factory=list)
    """The production floors the head stack overrides."""
    note: str = ""
    """Context such as "no stack file at the base: everything is added"."""

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.outputs

    def summary(self) -> str:
        text = f"{self.count('added')} added, {self.count('changed')} changed, {self.count('removed')} removed"
        if self.outputs:
            text += f", {len(self.outputs)} output(s) changed"
        if self.risks:
            text += f", {len(self.risks)} data-loss risk(s)"
        return text

    def by_component(self) -> dict[str, list[ResourceChange]]:
        groups: dict[str, list[ResourceChange]] = {}
        for change in sorted(self.changes, key=lambda c: (c.component, c.label)):
            groups.setdefault(change.component or "(stack)", []).append(change)
        return groups


# ---------------------------------------------------------------------------------------------
# Comparison


def label(resource: Resource) -> str:
    """`Kind metadata.name` for Kubernetes objects, `type logical-name` for everything else."""
    if resource.is_kubernetes:
        kind = resource.type.rsplit(":", 1)[-1]
        name = (resource.inputs.get("metadata") or {}).get("name")
        return f"{kind} {name if isinstance(name, str) else resource.name}"
    return f"{resource.type} {resource.name}"


def field_changes(before: Any, after: Any, path: str = "", *, by_name: bool = False) -> list[FieldChange]:
    """Every leaf that differs, as Pulumi property paths (`spec.http[1].route[0].weight`).

    With `by_name`, items of a list are matched by their identity where every item on both sides
    has a unique one (`_IDENTITIES`), and named by it: `spec.http[name=primary].route[subset=canary]
    .weight`, `env[DATABASE_HOST].value`. An inserted or removed item is then one change, not a
    shift of every later index; a pure reorder is one `(order)` change. Without it (what `pulumi
    config set --path` needs), items are compared and named by position. Keys follow `before`'s
    order, then keys only `after` has.
    """
    if is_secret(before) or is_secret(after):
        return [] if before == after else [FieldChange(path, mask_secrets(before), mask_secrets(after))]
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in list(before) + [k for k in after if k not in before]:
            sub = key_path(path, str(key))
            changes += field_changes(before.get(key, ABSENT), after.get(key, ABSENT), sub, by_name=by_name)
        return changes
    if isinstance(before, list) and isinstance(after, list):
        named = _by_identity(before, after) if by_name else None
        if named is None:
            return [
                change
                for index in range(max(len(before), len(after)))
                for change in field_changes(
                    before[index] if index < len(before) else ABSENT,
                    after[index] if index < len(after) else ABSENT,
                    f"{path}[{index}]",
                    by_name=by_name,
                )
            ]
        old, new = named
        changes = []
        if [k for k in old if k in new] != [k for k in new if k in old]:
            # Order matters here (Istio takes the first matching route; a reordered pod template
            # rolls the Deployment), so a reorder is shown, once.
            changes.append(FieldChange(f"{path} (order)", list(old), list(new)))
        for name in list(old) + [k for k in new if k not in old]:
            changes += field_changes(old.get(name, ABSENT), new.get(name, ABSENT), f"{path}[{name}]", by_name=by_name)
        return changes
    return [] if before == after else [FieldChange(path, mask_secrets(before), mask_secrets(after))]


_IDENTITIES = (
    # What names a list item, tried in this order; the first key an item has is its identity.
    ("name", ("name",)),  # containers, env, ports, volumes, http routes, subsets, receivers, rules
    ("subset", ("destination", "subset")),  # Istio route destinations
    ("alert", ("alert",)),  # Prometheus alerting and recording rules
    ("record", ("record",)),
    ("id", ("id",)),  # S3 lifecycle and replication rules
    ("ruleName", ("ruleName",)),  # AWS Backup plan rules
    ("secretKey", ("secretKey",)),  # ExternalSecret data
    ("host", ("host",)),  # Ingress rules
    ("path", ("path",)),  # Ingress paths, metrics endpoints
    ("port", ("port",)),  # NetworkPolicy ports
)
_NAMED_VALUE_KEYS = {"name", "value", "valueFrom"}
"""An item with only these keys is a named value (env, parameters): named like a map entry."""


def _by_identity(before: list[Any], after: list[Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Both lists' items by their name (`name=primary`, or `DATABASE_HOST` for a named value), in
    list order; None when an item has no identity or two items on one side share one."""
    items = before + after
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    identities = [identity for item in items if (identity := _identity(item)) is not None]
    if len(identities) < len(items):
        return None
    named_values = all(set(item) <= _NAMED_VALUE_KEYS for item in items)
    names = [value if named_values and key == "name" else f"{key}={value}" for key, value in identities]
    old = dict(zip(names[: len(before)], before, strict=True))
    new = dict(zip(names[len(before) :], after, strict=True))
    return (old, new) if len(old) == len(before) and len(new) == len(after) else None


def _identity(item: dict[str, Any]) -> tuple[str, str] | None:
    for key, steps in _IDENTITIES:
        value: Any = item
        for step in steps:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return key, str(value)
    return None


def key_path(path: str, key: str) -> str:
    # Pulumi's property-path syntax: `a.b`, or `a["app.kubernetes.io/version"]` for odd keys.
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _options(resource: Resource) -> dict[str, Any]:
    return {wire: getattr(resource, attr) for attr, wire in _OPTION_FIELDS.items()}


def diff(base: Rendering | None, head: Rendering | None, stack: str | None = None) -> StackDiff:
    """What changes from `base` to `head` (None: the stack does not exist in that revision)."""
    result = StackDiff(stack=stack or next(r.stack for r in (head, base) if r is not None))
    old = base.by_urn() if base else {}
    new = head.by_urn() if head else {}
    renamed: dict[str, str] = {}  # old URN -> new URN, followed through aliases
    for urn, resource in new.items():
        if urn in old:
            continue
        for old_urn in old:
            if old_urn not in new and old_urn not in renamed and old_urn in resource.aliases:
                renamed[old_urn] = urn
                break

    added = [r for urn, r in new.items() if urn not in old and urn not in renamed.values()]
    for urn, resource in old.items():
        if urn in new or urn in renamed:
            continue
        result.changes.append(_change("removed", resource))
        result.risks += _removal_risks(resource, added)
    result.changes += [_change("added", resource) for resource in added]
    for old_urn, before in old.items():
        new_urn = old_urn if old_urn in new else renamed.get(old_urn)
        if new_urn is None:
            continue
        after = new[new_urn]
        fields = field_changes(before.inputs, after.inputs, by_name=True)
        fields += field_changes(_options(before), _options(after), "options", by_name=True)
        if new_urn != old_urn:
            fields.insert(0, FieldChange("urn (aliased)", old_urn, new_urn))
        if fields:
            change = _change("changed", after)
            change.fields = fields
            result.changes.append(change)
        result.risks += _change_risks(before, after)

    result.outputs = field_changes(base.outputs if base else {}, head.outputs if head else {}, by_name=True)
    result.overrides = floor_overrides(base, head)
    return result


def floor_overrides(base: Rendering | None, head: Rendering | None) -> list[FloorOverride]:
    """The production floors `head` overrides, each marked if `base` did not."""
    before = (base.outputs.get(OVERRIDES_OUTPUT) if base else None) or {}
    after = (head.outputs.get(OVERRIDES_OUTPUT) if head else None) or {}
    return [FloorOverride(floor, str(reason), floor not in before) for floor, reason in after.items()]


def _change(kind: str, resource: Resource) -> ResourceChange:
    return ResourceChange(kind, label(resource), resource.component, resource.type, resource.urn)


def _removal_risks(resource: Resource, added: list[Resource]) -> list[Risk]:
    risks = []
    if resource.type in STATEFUL_TYPES:
        appeared = [r for r in added if r.type == resource.type]
        if appeared:
            reason = (
                f"URN changes to {appeared[0].urn} without an alias naming {resource.urn}; "
                "Pulumi would delete it and create an empty one (add `aliases` to keep it)"
            )
        else:
            reason = "removed: Pulumi would delete it and its data"
        if resource.retain_on_delete:
            reason += " (retainOnDelete keeps the cloud resource, but Pulumi stops managing it)"
        risks.append(Risk(label(resource), reason))
    elif resource.protect:
        risks.append(Risk(label(resource), "protected resource removed from the program"))
    return risks


def _change_risks(before: Resource, after: Resource) -> list[Risk]:
    risks = []
    if before.type in STATEFUL_TYPES:
        for key in replacement_forcing_changes(before.type, before.inputs, after.inputs):
            old_value = mask_secrets(before.inputs.get(key, ABSENT))
            new_value = mask_secrets(after.inputs.get(key, ABSENT))
            risks.append(
                Risk(
                    label(after),
                    f"input {key} forces replacement ({show(old_value)} -> {show(new_value)})",
                )
            )
        old_provider, new_provider = (r.provider.rsplit("::", 1)[0] for r in (before, after))
        if old_provider != new_provider:
            # Since pulumi/pulumi#18509 (2025) the engine asks the provider (DiffConfig) whether
            # the move replaces the resource (a region change does); a reviewer must decide.
            risks.append(
                Risk(
                    label(after),
                    f"provider changes ({show(old_provider)} -> "
                    f"{show(new_provider)}); it is replaced if the new provider's "
                    "configuration differs in a replacing way (e.g. region)",
                )
            )
    if before.protect and not after.protect:
        risks.append(Risk(label(after), "protect dropped: a later change could delete it"))
    for key in DELETION_PROTECTION_INPUTS:
        if before.inputs.get(key) is True and after.inputs.get(key) is not True:
            risks.append(
                Risk(
                    label(after),
                    f"{key} turned off ({show(True)} -> {show(after.inputs.get(key, ABSENT))}): "
                    "the cloud would then delete it on request",
                )
            )
    return risks


def show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = value if isinstance(value, str) and value else json.dumps(value, sort_keys=True, default=str)
    return _shorten(text)


def _shorten(text: str, limit: int = 120) -> str:
    """At most `limit` characters, cut after a whole word: a value cut mid-word reads as another
    value (`v1.2` of `v1.25`). One long word (an ARN, a digest) stays whole for the same reason."""
    if len(text) <= limit:
        return text
    boundary = max(text.rfind(space, 0, limit - 1) for space in " \n\t")
    return text[:boundary].rstrip() + " …" if boundary > 0 else text


# ---------------------------------------------------------------------------------------------
# Reports
