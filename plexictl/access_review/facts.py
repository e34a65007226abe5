"""What a review is made of: facts, one per grant, trust or reachable destination, each a line of
the Markdown record. Two reviews compare fact by fact, so `--diff` shows exactly the grants that
came or went."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from plexictl.offline import UNKNOWN, is_secret

KNOWN_AFTER_DEPLOY = "(known after deploy)"

SECTIONS = ("IAM roles", "Resource policies", "Kubernetes ServiceAccounts")
HEADINGS = (
    # IAM roles
    "About",
    "Trust: who may assume it",
    "Permissions",
    # resource policies
    "Statements",
    # ServiceAccounts
    "IAM role",
    "Runs",
    "Network egress of its pods",
    "Network ingress to its pods",
    "Mesh callers of its pods",
)


@dataclass(frozen=True, order=True)
class Fact:
    section: str
    subject: str
    heading: str
    text: str

    def sort_key(self) -> tuple[int, str, int, str]:
        return (SECTIONS.index(self.section), self.subject, HEADINGS.index(self.heading), self.text)


def known(value: Any) -> str:
    """A value as the review shows it: unknown in a preview, masked if secret."""
    if value == UNKNOWN or value is None:
        return KNOWN_AFTER_DEPLOY
    if is_secret(value):
        return "[secret]"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def document(value: Any) -> dict[str, Any] | None:
    """A policy document from an input (JSON text or already a dict); None if not known yet."""
    if isinstance(value, dict) and not is_secret(value):
        return value
    if isinstance(value, str) and value != UNKNOWN:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def conditions(statement: dict[str, Any]) -> str:
    """`StringLike s3:prefix daily/* | monthly/*; Bool aws:SecureTransport false`."""
    parts = []
    for operator, tests in sorted((statement.get("Condition") or {}).items()):
        for key, values in sorted(tests.items()):
            parts.append(f"{operator} {key} {' | '.join(str(v) for v in as_list(values))}")
    return "; ".join(parts)
