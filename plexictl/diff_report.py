"""The desired-state diff as people read it: plain text for a terminal, Markdown for a PR comment
(each stack collapsible, a loud warning first when data is at risk or a production floor is
overridden). Warnings are red: ANSI red on a terminal, GitHub's red CAUTION alert in Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from plexictl.diff import DATA_LOSS, ResourceChange, StackDiff, show

_RED, _RESET = "\033[31m", "\033[0m"


def format_text(
    diffs: list[StackDiff],
    base_name: str = "base",
    head_name: str = "working tree",
    notes: Sequence[str] = (),
    color: bool = False,
) -> str:
    """`notes` are about the whole diff (e.g. which SDKs rendered it), printed first. With
    `color`, warnings (overridden floors, data-loss risks) are red."""

    def warning(text: str) -> str:
        return f"{_RED}{text}{_RESET}" if color else text

    lines = [f"note: {note}" for note in notes] + ([""] if notes else [])
    for d in diffs:
        lines.append(f"stack {d.stack} ({base_name} -> {head_name}): {d.summary()}")
        if d.note:
            lines.append(f"  note: {d.note}")
        lines += [warning(f"  !! {override.describe()}") for override in d.overrides]
        for component, changes in d.by_component().items():
            lines.append(f"  component {component} ({_counts(changes)}):")
            for change in changes:
                if change.kind == "changed":
                    lines += [f"    ~ {change.label}: {f.describe()}" for f in change.fields]
                else:
                    sign = "+" if change.kind == "added" else "-"
                    lines.append(f"    {sign} {change.label} ({change.kind})")
        if d.outputs:
            lines.append("  stack outputs:")
            lines += [f"    ~ {f.describe()}" for f in d.outputs]
        if d.empty:
            lines.append("  no changes")
        for risk in d.risks:
            lines.append(warning(f"  !! {risk.describe()}"))
        lines.append("")
    return "\n".join(lines)


def format_markdown(
    diffs: list[StackDiff],
    base_name: str = "base",
    head_name: str = "working tree",
    notes: Sequence[str] = (),
    graphs: Mapping[str, str] | None = None,
) -> str:
    """`graphs`: a Mermaid diagram (`plexictl.graph`) per stack, shown under the stack's changes
    (GitHub renders ```mermaid blocks in comments and job summaries)."""
    lines = [
        "## Desired-state diff",
        "",
        f"`{base_name}` → `{head_name}`: " + "; ".join(f"**{d.stack}**: {d.summary()}" for d in diffs),
        "",
    ]
    for note in notes:
        lines += ["> [!NOTE]", f"> {_md(note)}", ""]
    lines += _markdown_cautions(diffs)
    for d in diffs:
        lines += _markdown_stack(d, (graphs or {}).get(d.stack))
    return "\n".join(lines)


def _markdown_cautions(diffs: list[StackDiff]) -> list[str]:
    """The red boxes on top: stateful replacements, and production floors overridden."""
    lines: list[str] = []
    risky = sum(len(d.risks) for d in diffs)
    if risky:
        lines += [
            "> [!CAUTION]",
            f"> **{risky} change(s) would replace or delete a stateful resource "
            "(data loss risk).** Merge only with `--allow-replace` and a migration plan:",
            ">",
        ]
        lines += [f"> - **{d.stack}**: {_md(r.describe())}" for d in diffs for r in d.risks]
        lines.append("")
    overrides = [(d.stack, o) for d in diffs for o in d.overrides]
    if overrides:
        added = sum(o.added for _, o in overrides)
        lines += [
            "> [!CAUTION]",
            f"> **{len(overrides)} production floor(s) overridden"
            + (f", {added} of them added by this change" if added else "")
            + ".** Each goes below what a production stack must have (docs/design.md 'Production floors'):",
            ">",
        ]
        lines += [
            f"> - **{stack}**: {'**new** ' if o.added else ''}`{o.floor}`: {_md(o.reason)}" for stack, o in overrides
        ]
        lines.append("")
    return lines


def _markdown_stack(d: StackDiff, graph: str | None = None) -> list[str]:
    """One stack's collapsible section: its warnings, changes by component, outputs and diagram."""
    flag = " ⚠️" if d.risks or d.overrides else ""
    lines = [
        f"<details{' open' if d.risks or d.overrides else ''}>",
        f"<summary><b>{d.stack}</b>: {d.summary()}{flag}</summary>",
        "",
    ]
    if d.note:
        lines += [f"_{_md(d.note)}_", ""]
    for override in d.overrides:
        lines.append(f"- :warning: **production floor overridden**: `{override.floor}`: {_md(override.reason)}")
    for risk in d.risks:
        lines.append(f"- :warning: **{DATA_LOSS}**: `{_md(risk.label)}`: {_md(risk.reason)}")
    if d.risks or d.overrides:
        lines.append("")
    for component, changes in d.by_component().items():
        lines += [
            f"**component `{component}`** ({_counts(changes)})",
            "",
            "| | resource | field | before | after |",
            "|---|---|---|---|---|",
        ]
        for change in changes:
            sign = {"added": "+", "removed": "−", "changed": "~"}[change.kind]
            if change.kind != "changed":
                lines.append(f"| {sign} | `{_md(change.label)}` | _{change.kind}_ | | |")
            for f in change.fields:
                lines.append(
                    f"| {sign} | `{_md(change.label)}` | `{_md(f.path)}` "
                    f"| `{_md(show(f.before))}` | `{_md(show(f.after))}` |"
                )
        lines.append("")
    if d.outputs:
        lines += ["**stack outputs**", "", "| output | before | after |", "|---|---|---|"]
        lines += [f"| `{_md(f.path)}` | `{_md(show(f.before))}` | `{_md(show(f.after))}` |" for f in d.outputs]
        lines.append("")
    if d.empty:
        lines += ["No changes.", ""]
    if graph:
        lines += [
            f"<details><summary>diagram of <b>{d.stack}</b> after this change</summary>",
            "",
            "```mermaid",
            graph.rstrip("\n"),
            "```",
            "",
            "</details>",
            "",
        ]
    return [*lines, "</details>", ""]


def _counts(changes: list[ResourceChange]) -> str:
    return ", ".join(
        f"{n} {kind}" for kind in ("added", "changed", "removed") if (n := sum(c.kind == kind for c in changes))
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
