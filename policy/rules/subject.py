"""How a rule sees a resource: a `Subject` (or a `StackResource` for stack-wide rules) and the
helpers that read its inputs through secrets and preview unknowns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "[unknown until apply]"
"""How an input that is unknown during preview appears here (the engine's and the adapter's)."""

_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


@dataclass(frozen=True)
class Subject:
    """One resource as a rule sees it."""

    type: str
    inputs: Mapping[str, Any]
    protect: bool = False
    production: bool = False
    """True for production stacks (the prod-only rules apply): the stack's `plexichat:environment`."""
    floors: frozenset[str] = frozenset()
    """The production floors (components/config/floors.py, by name) the stack must meet: none
    outside production, else its role's floors minus those it overrides."""
    secrets_visible: bool = True
    """Whether a secret input can be told from a plain one. True for the engine's recorded inputs;
    False under CrossGuard's Python SDK, which hands policies secrets already unwrapped."""


Rule = Callable[[Subject], list[str]]


@dataclass(frozen=True)
class StackResource:
    """One resource of a whole stack, for rules about how resources relate."""

    type: str
    urn: str
    inputs: Mapping[str, Any]
    dependencies: frozenset[str]
    """URNs of the resources whose outputs this one takes (or that it depends on explicitly)."""


@dataclass(frozen=True)
class Stack:
    """A whole stack as a stack-wide rule sees it."""

    resources: list[StackResource]
    floors: frozenset[str] = frozenset()
    """As `Subject.floors`."""


StackRule = Callable[[Stack], list[tuple[str, str]]]


def is_production(environment: str | None) -> bool:
    """Whether the stack's `plexichat:environment` is production; never judged by its name. Unset
    (None) counts as production: the program refuses to run without the setting, so the pack not
    seeing it means the config did not reach the pack, and then the strictest rules hold."""
    return environment in (None, "production")


# --- value helpers --------------------------------------------------------------------------


def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_SECRET_SIG_KEY) == _SECRET_SIG_VALUE


def reveal(value: Any) -> Any:
    """The plain value of a (possibly secret) input."""
    return value["value"] if is_secret(value) else value


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == UNKNOWN


def get(inputs: Any, path: str, default: Any = None) -> Any:
    """`inputs` at a dotted path (`spec.template.spec`), through secrets; `default` if absent."""
    value = reveal(inputs)
    for key in path.split("."):
        value = reveal(value)
        if not isinstance(value, Mapping) or value.get(key) is None:
            return default
        value = value[key]
    return reveal(value)


def is_set(value: Any) -> bool:
    return value not in (None, "", [], {})


# Flags a rule requires: a value unknown in preview counts as compliant.


def is_true(value: Any) -> bool:
    return value is True or is_unknown(value)


def is_false(value: Any) -> bool:
    return value is False or is_unknown(value)


def is_false_or_absent(value: Any) -> bool:
    return value in (None, False) or is_unknown(value)
