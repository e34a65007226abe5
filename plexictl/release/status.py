"""`plexictl release status`: where a stack's release stands, without rendering anything.

Strategy, versions and weights from the stack file; the position in the step plan and whether
the loop is paused; the last decisions of the release loop from git; and, when Prometheus
answers, each track's live metrics from the recording rules the alerts read.
"""

from __future__ import annotations

import datetime
import pathlib

from components.config.parse import parse_stack_config
from components.observability.alert_rules import slis
from components.release.plan import plan_release
from plexictl import offline
from plexictl.release import gitlog
from plexictl.release.changes import ReleaseError
from plexictl.release.prometheus import PrometheusUnavailable, TrackQuery


def status(stack: str, project_dir: pathlib.Path, prometheus_url: str | None = None) -> str:
    path = offline.stack_file_path(stack, project_dir)
    config, secret_keys = offline.stack_config(stack, project_dir)
    settings = parse_stack_config(config, stack, secret_keys)
    release, plan = settings.release, plan_release(settings.release)
    lines = [f"stack {stack}: {release.strategy}{' (paused)' if release.paused else ''}"]
    lines += [f"  track {t.name:<7} {t.version:<14} {plan.weight_of(t.name):>3}% of traffic" for t in plan.tracks]
    if release.strategy == "canary":
        steps, weight = release.canary.steps, release.canary.weight
        if steps:
            position = f"step {steps.index(weight) + 1} of {len(steps)}" if weight in steps else "before step 1"
            lines.append(f"  plan {steps}: {position}")
        lines.append(f"  analysis: {'on' if release.canary.analysis else 'off (no canary.analysis)'}")
    elif getattr(release, "verify", None) is not None:
        lines.append("  verify: on")
    lines += _decisions(path)
    url = prometheus_url or settings.monitoring.prometheus_url
    if url:
        lines += _live_metrics(TrackQuery(url, slis(settings.monitoring), settings.namespace), plan)
    return "\n".join(lines)


def _decisions(path: pathlib.Path) -> list[str]:
    try:
        found = gitlog.decisions(path, limit=200)[:3]
    except ReleaseError:
        return ["  release loop: no git history here"]
    if not found:
        return ["  release loop: no decisions in the git history"]
    lines = ["  last decisions of the release loop:"]
    for decision in found:
        when = datetime.datetime.fromtimestamp(decision.unix_time, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"    {when} {decision.decision:<9} {decision.subject} ({decision.commit[:10]})")
    return lines


def _live_metrics(query: TrackQuery, plan) -> list[str]:
    try:
        return ["  live (recording rules):"] + [
            f"    {t.name:<7} {query.metrics(t.name).describe()}" for t in plan.tracks
        ]
    except PrometheusUnavailable as error:
        return [f"  live metrics: Prometheus unavailable ({error})"]
