"""The release loop's Markdown report: one row per look at the metrics, for a job summary."""

from __future__ import annotations

from dataclasses import dataclass

from components.release.analysis import TrackMetrics


@dataclass(frozen=True)
class Look:
    where: str
    """`step 2 of 4 at 25%`, `verify green`."""
    weights: dict[str, int]
    metrics: dict[str, TrackMetrics]
    decision: str


def _cell(value: float | None, text: str) -> str:
    return "no data" if value is None else text


def markdown_report(stack: str, looks: list[Look]) -> str:
    lines = [
        f"### Release analysis: {stack}",
        "",
        "| step | track | weight | requests | error ratio | p99 | decision |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for look in looks:
        for index, (track, m) in enumerate(look.metrics.items()):
            lines.append(
                f"| {look.where if index == 0 else ''} | {track} | {look.weights.get(track, 0)}% "
                f"| {_cell(m.requests, f'{m.requests or 0:.0f}')} "
                f"| {_cell(m.error_ratio, f'{(m.error_ratio or 0) * 100:.2f}%')} "
                f"| {_cell(m.p99_seconds, f'{m.p99_seconds or 0:.3f} s')} "
                f"| {look.decision if index == 0 else ''} |"
            )
    if not looks:
        lines.append("| (no judgement was made) | | | | | | |")
    return "\n".join(lines)
