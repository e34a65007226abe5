"""`plexictl access-review`: who may do what in a stack, from its rendered desired state.

The quarterly access review reads this record instead of the cloud: every IAM role with its trust
(which ServiceAccount or AWS service may assume it) and its grants, every resource policy, and
every Kubernetes ServiceAccount with its IAM role, its workloads and what its pods may reach or be
reached from. The record is Markdown, sorted, so two runs on one revision are identical and the
record of the previous review diffs line by line (`--diff REF` shows the grants added and removed).
"""

from __future__ import annotations

from itertools import groupby

from plexictl.access_review.facts import Fact
from plexictl.access_review.iam import resource_policy_facts, role_facts
from plexictl.access_review.kubernetes import account_name, service_account_facts, service_accounts
from plexictl.offline import Rendering

__all__ = ["Fact", "changes_markdown", "markdown", "review"]


def review(rendering: Rendering) -> list[Fact]:
    """Every fact of the stack's access review, in the record's order."""
    accounts = sorted(account_name(a) for a in service_accounts(rendering))
    facts = {*role_facts(rendering, accounts), *resource_policy_facts(rendering), *service_account_facts(rendering)}
    return sorted(facts, key=Fact.sort_key)


def markdown(rendering: Rendering, changes: str = "") -> str:
    """The review record; `changes` (from `changes_markdown`) goes first when given."""
    mode = "a preview: values AWS computes are (known after deploy)" if rendering.preview else "the offline engine"
    lines = [
        f"# Access review: stack {rendering.stack}",
        "",
        f"Who may do what, from the desired state ({mode}), by `plexictl access-review --stack "
        f"{rendering.stack}`. ARNs that AWS computes (key ids, secret suffixes) are placeholders "
        "offline; each is named by the resource it belongs to.",
        "",
    ]
    if changes:
        lines += [changes, ""]
    lines += _body(review(rendering))
    return "\n".join(lines).rstrip("\n") + "\n"


def _body(facts: list[Fact]) -> list[str]:
    lines: list[str] = []
    for section, in_section in groupby(facts, key=lambda f: f.section):
        lines += [f"## {section}", ""]
        for subject, of_subject in groupby(in_section, key=lambda f: f.subject):
            lines += [f"### {subject}", ""]
            for heading, under in groupby(of_subject, key=lambda f: f.heading):
                lines += [f"**{heading}**", ""]
                lines += [f"- {fact.text}" for fact in under]
                lines.append("")
    return lines


def changes_markdown(before: Rendering | None, after: Rendering, base_name: str) -> str:
    """What changed since the review at `base_name`: facts added (+) and removed (−)."""
    old = set(review(before)) if before is not None else set()
    new = set(review(after))
    lines = [f"## Changes since {base_name}", ""]
    if before is None:
        lines += [f"_No stack {after.stack} at {base_name}: everything is new._", ""]
    added, removed = new - old, old - new
    if not added and not removed:
        return "\n".join([*lines, "No change in who may do what.", ""])
    lines += ["```diff"]
    for fact in sorted(added | removed, key=Fact.sort_key):
        sign = "+" if fact in added else "-"
        lines.append(f"{sign} {fact.section} › {fact.subject} › {fact.heading}: {fact.text}")
    lines += ["```", ""]
    return "\n".join(lines)
