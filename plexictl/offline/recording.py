"""The recording side of the mock runtime: every registration, with its resource options.

`MockResourceArgs` (what `Mocks.new_resource` sees) has no resource options, so the monitor
records the `RegisterResource` request itself: inputs as the program set them, and `protect`,
`parent`, `dependencies` (also per input: `propertyDependencies`), `aliases`, `ignoreChanges`,
`retainOnDelete`, `deleteBeforeReplace`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from plexictl.offline.rendering import UNKNOWN, Rendering, Resource


class RecordingMonitor(MockMonitor):
    """A mock monitor that appends every resource it registers to `rendering`."""

    def __init__(self, mocks: Any, rendering: Rendering) -> None:
        super().__init__(mocks)
        self.rendering = rendering
        self.stack_urn = ""

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
        else:
            aliases = [self.alias_urn(alias, request) for alias in request.aliases]
            self.rendering.resources.append(record(request, response.urn, aliases))
        return response

    def alias_urn(self, alias, request) -> str:
        """The URN an alias names, by this monitor's URN rule. The SDK sends most aliases as a
        spec relative to the resource (`Alias(parent=...)`, `Alias(name=...)`); `plexictl diff`
        compares URNs to follow a rename."""
        if alias.urn:
            return alias.urn
        spec = alias.spec
        parent = self.stack_urn if spec.noParent else (spec.parentUrn or request.parent)
        return self.make_urn(parent, spec.type or request.type, spec.name or request.name)


def warning_logger(stack: str, rendering: Rendering) -> logging.Logger:
    """The logger the runtime reports to; its warnings (deprecations included) land on the
    rendering, where tests assert there are none."""

    class WarningLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                rendering.warnings.append(record.getMessage())

    logger = logging.getLogger(f"plexictl.offline.{stack}")
    logger.propagate = False
    logger.handlers[:] = [WarningLog()]
    return logger


def record(request, urn: str, aliases: list[str]) -> Resource:
    """One `RegisterResource` request as a Resource."""
    inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
    return Resource(
        type=request.type,
        name=request.name,
        urn=urn,
        inputs=_plain(inputs),
        custom=bool(request.custom),
        parent=request.parent,
        provider=request.provider,
        protect=bool(request.protect),
        retain_on_delete=bool(request.retainOnDelete),
        dependencies=sorted(request.dependencies),  # a set, sent in the order its inputs resolved
        ignore_changes=list(request.ignoreChanges),
        aliases=aliases,
        delete_before_replace=bool(request.deleteBeforeReplace),
        property_dependencies={
            key: sorted(deps.urns) for key, deps in sorted(request.propertyDependencies.items()) if deps.urns
        },
    )


def _plain(value: Any) -> Any:
    """Deserialized inputs, with unknowns (preview) shown as a readable marker."""
    if isinstance(value, dict):
        # Keys arrive in the order of the wire format's hash map, not the program's: sorted, they
        # read like `kubectl get -o yaml` and do not depend on the protobuf build.
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if type(value).__name__ == "Unknown":
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire format has only floats; 25.0 was an int in the program
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return _asset(value)
    return value


def _asset(value: pulumi.Asset | pulumi.Archive) -> dict[str, Any]:
    """An asset or archive (a Lambda function's code) as plain data: a text by its digest, so a
    rendering and `plexictl diff` show that it changed, not the whole text; a file or remote one
    by its path or URI."""
    if isinstance(value, pulumi.AssetArchive):
        return {"assets": {name: _plain(asset) for name, asset in sorted(value.assets.items())}}
    if isinstance(value, pulumi.StringAsset):
        return {"textSha256": hashlib.sha256(value.text.encode()).hexdigest()}
    return {"source": getattr(value, "path", None) or getattr(value, "uri", None)}
