"""Metric-gated releases, the pure part: the gate a release must pass and the judgement of one
look at its metrics (docs/releasing.md, metric-gated releases).

`plexictl release run` waits, queries the recording rules the alerts read (`alert_rules.Slis`),
and asks `judge`; it never decides on its own. Missing data is never a pass: a track with too
little traffic, no series or an unreachable Prometheus is `WAIT`, and only the gate's timeout
turns waiting into an abort.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from components.config.base import duration_seconds
from components.config.monitoring import AlertThresholds
from components.config.release import CanaryAnalysis, Verification

# The relative check (canary vs stable) counts only above an absolute floor: a quarter of the
# absolute limit, and at least this many errors, so one error on a canary is no failure when
# stable happens to have none.
RELATIVE_FLOOR_SHARE = 0.25
RELATIVE_MIN_ERRORS = 2


@dataclass(frozen=True)
class Gate:
    """A verification or canary analysis with every default resolved to a number."""

    interval_seconds: int
    min_requests: int
    max_failed_checks: int
    max_error_ratio: float
    max_p99_seconds: float
    timeout_seconds: int
    max_error_ratio_vs_stable: float | None = None
    """Only for a canary, which has a baseline to compare with."""


def gate(verification: Verification, thresholds: AlertThresholds) -> Gate:
    """The gate of a `verify` or `canary.analysis` block; thresholds it leaves out are the
    alerting targets, so a release is held to what would page."""
    relative = None
    if isinstance(verification, CanaryAnalysis):
        relative = verification.max_error_ratio_vs_stable or thresholds.canary_error_ratio_factor
    return Gate(
        interval_seconds=duration_seconds(verification.interval),
        min_requests=verification.min_requests,
        max_failed_checks=verification.max_failed_checks,
        max_error_ratio=verification.max_error_ratio or thresholds.error_ratio_target_percent / 100,
        max_p99_seconds=verification.max_p99_seconds or thresholds.latency_target_ms / 1000,
        timeout_seconds=duration_seconds(verification.timeout),
        max_error_ratio_vs_stable=relative,
    )


@dataclass(frozen=True)
class TrackMetrics:
    """One track's recording rules at one moment. None: Prometheus had no such series."""

    requests: float | None
    """Requests served in the rule window (rate x window)."""
    error_ratio: float | None
    p99_seconds: float | None

    def describe(self) -> str:
        def shown(value: float | None, text: str) -> str:
            return "no data" if value is None else text

        return (
            f"{shown(self.requests, f'{self.requests or 0:.0f} req')}, "
            f"errors {shown(self.error_ratio, f'{(self.error_ratio or 0) * 100:.2f}%')}, "
            f"p99 {shown(self.p99_seconds, f'{self.p99_seconds or 0:.3f}s')}"
        )


NO_DATA = TrackMetrics(None, None, None)


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"
    """No judgement yet: too little traffic or no data. Never a pass."""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.verdict.value}: {'; '.join(self.reasons)}"


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def judge(candidate: TrackMetrics, gate: Gate, baseline: TrackMetrics | None = None) -> Judgement:
    """Judge the new version's metrics against the gate (and, for a canary, stable's)."""
    if not _known(candidate.requests) or candidate.requests < gate.min_requests:  # type: ignore[operator]
        seen = "no requests recorded" if not _known(candidate.requests) else f"{candidate.requests:.0f}"
        return Judgement(Verdict.WAIT, (f"too little traffic: {seen} of {gate.min_requests} requests",))
    if not _known(candidate.error_ratio) or not _known(candidate.p99_seconds):
        return Judgement(Verdict.WAIT, ("no error ratio or p99 recorded yet",))
    error_ratio, p99 = candidate.error_ratio or 0.0, candidate.p99_seconds or 0.0
    failures = []
    if error_ratio > gate.max_error_ratio:
        failures.append(f"error ratio {error_ratio:.4f} > {gate.max_error_ratio:g}")
    if p99 > gate.max_p99_seconds:
        failures.append(f"p99 {p99:.3f}s > {gate.max_p99_seconds:g}s")
    relative = _worse_than_baseline(candidate, baseline, gate)
    if relative:
        failures.append(relative)
    if failures:
        return Judgement(Verdict.FAIL, tuple(failures))
    return Judgement(
        Verdict.PASS,
        (f"error ratio {error_ratio:.4f} <= {gate.max_error_ratio:g}, p99 {p99:.3f}s <= {gate.max_p99_seconds:g}s",),
    )


def _worse_than_baseline(candidate: TrackMetrics, baseline: TrackMetrics | None, gate: Gate) -> str | None:
    factor = gate.max_error_ratio_vs_stable
    if factor is None or baseline is None or not _known(baseline.error_ratio):
        return None
    if not _known(baseline.requests) or (baseline.requests or 0) < gate.min_requests:
        return None  # stable too quiet to compare with
    ratio, stable_ratio = candidate.error_ratio or 0.0, baseline.error_ratio or 0.0
    errors = ratio * (candidate.requests or 0)
    floor = gate.max_error_ratio * RELATIVE_FLOOR_SHARE
    if ratio <= factor * stable_ratio or ratio < floor or errors < RELATIVE_MIN_ERRORS:
        return None
    return f"error ratio {ratio:.4f} > {factor:g} x stable's {stable_ratio:.4f}"
