"""What an offline run records: every registered resource with its inputs and options, the stack
outputs and the warnings. Plain data (it pickles), compared by `plexictl diff` and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"
"""How the wire format marks a secret value: `{SECRET_SIG_KEY: SECRET_SIG_VALUE, "value": ...}`."""
UNKNOWN = "[unknown until apply]"
"""How a value the provider computes looks in a preview render (and in `pulumi preview`)."""


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    ignore_changes: list[str]
    aliases: list[str]
    delete_before_replace: bool
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per input (camelCase, top level): the URNs of the resources its value came from, as the
    SDK sends them (`Output` lineage, not string matching). What the Terraform plan's
    references are built from (`plexictl.offline.terraform_plan`)."""

    @property
    def is_kubernetes(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:")

    @property
    def component(self) -> str:
        """The nearest component parent, as `<Type> <name>` (e.g. `Traffic web`): the part of
        the program this resource belongs to."""
        if not self.parent:
            return ""
        qualified_type, name = self.parent.split("::")[-2:]
        return f"{qualified_type.rsplit('$', 1)[-1].rsplit(':', 1)[-1]} {name}"

    def manifest(self) -> dict[str, Any]:
        """The Kubernetes object as `kubectl apply` would see it (secrets masked)."""
        group_version, kind = self.type.split(":", 1)[1].rsplit(":", 1)
        group, _, version = group_version.rpartition("/")
        group = "" if group in ("core", "") else group
        if kind.endswith("Patch"):  # a server-side-apply patch of an object someone else owns
            kind = self.inputs.get("kind") or kind.removesuffix("Patch")
        body = {k: v for k, v in mask_secrets(self.inputs).items() if k not in ("apiVersion", "kind")}
        return {"apiVersion": f"{group}/{version}" if group else version, "kind": kind, **body}


@dataclass
class Rendering:
    stack: str
    preview: bool
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)
    """The stacks the run read through `pulumi.StackReference`, each with a digest of what it
    read (`plexictl.offline.stack_references`): a rendering is stale once one of them changed."""

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Resource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"expected one {type_} named {name}, found {len(matches)}")
        return matches[0]

    def kubernetes_objects(self) -> list[Resource]:
        return [r for r in self.resources if r.is_kubernetes and not r.type.startswith("kubernetes:index")]

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE


def mask_secrets(value: Any) -> Any:
    """Replace every secret with a marker: rendered files must never carry a secret's value."""
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value
