"""The desired-state diff as people read it: plain text for a terminal, Markdown for a PR comment
(each stack collapsible, a loud warning first when data is at risk)."""

from __future__ import annotations

from collections.abc import Sequence

from plexictl.diff import DATA_LOSS, ResourceChange, StackDiff, show


def format_text(
    diffs: list[StackDiff], base_name: str = "base", head_name: str = "working tree", notes: Sequence[str] = ()
) -> str:
    """`notes` are about the whole diff (e.g. which SDKs rendered it), printed first."""
    lines = [f"note: {note}" for note in notes] + ([""] if notes else [])
    for d in diffs:
        lines.append(f"stack {d.stack} ({base_name} -> {head_name}): {d.summary()}")
        if d.note:
            lines.append(f"  note: {d.note}")
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
            lines.append(f"  !! {risk.describe()}")
        lines.append("")
    return "\n".join(lines)


def format_markdown(
    diffs: list[StackDiff], base_name: str = "base", head_name: str = "working tree", notes: Sequence[str] = ()
) -> str:
    risky = sum(len(d.risks) for d in diffs)
    lines = [
        "## Desired-state diff",
        "",
        f"`{base_name}` → `{head_name}`: " + "; ".join(f"**{d.stack}**: {d.summary()}" for d in diffs),
        "",
    ]
    for note in notes:
        lines += ["> [!NOTE]", f"> {_md(note)}", ""]
    if risky:
        lines += [
            "> [!CAUTION]",
            f"> **{risky} change(s) would replace or delete a stateful resource "
            "(data loss risk).** Merge only with `--allow-replace` and a migration plan:",
            ">",
        ]
        lines += [f"> - **{d.stack}**: {_md(r.describe())}" for d in diffs for r in d.risks]
        lines.append("")
    for d in diffs:
        flag = " ⚠️" if d.risks else ""
        lines += [
            f"<details{' open' if d.risks else ''}>",
            f"<summary><b>{d.stack}</b>: {d.summary()}{flag}</summary>",
            "",
        ]
        if d.note:
            lines += [f"_{_md(d.note)}_", ""]
        for risk in d.risks:
            lines.append(f"- :warning: **{DATA_LOSS}**: `{_md(risk.label)}`: {_md(risk.reason)}")
        if d.risks:
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
        lines += ["</details>", ""]
    return "\n".join(lines)


def _counts(changes: list[ResourceChange]) -> str:
    return ", ".join(
        f"{n} {kind}" for kind in ("added", "changed", "removed") if (n := sum(c.kind == kind for c in changes))
    )


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
