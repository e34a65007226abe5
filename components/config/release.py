"""The release contract (docs/releasing.md): exactly one strategy; `strategy` selects the model."""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    model_validator,
)

from components.config.base import (
    Duration,
    FieldError,
    Model,
    Percent,
    Version,
    duration_seconds,
    float_range,
    int_range,
)

# ---------------------------------------------------------------------------------------------
# The release contract (docs/releasing.md: Releases are config changes). Exactly one strategy;
# `strategy` selects the model.


class CanaryHeader(Model):
    """A/B opt-in: requests carrying this header with this exact value always go to the canary."""

    name: Annotated[str, AfterValidator(lambda v: _header_name(v))] = "x-plexichat-canary"
    """Lowercase header name. Default x-plexichat-canary."""
    # `pulumi config set --path release.canary.header.value true` stores a YAML boolean.
    value: Annotated[
        str,
        BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else v),
        Field(min_length=1, max_length=256),
    ] = "true"
    """Exact header value that opts a request in. Default "true"."""


def _header_name(value: str) -> str:
    if not re.match(r"^[a-z0-9][a-z0-9-]*$", value):
        raise ValueError("must be a lowercase HTTP header name such as x-plexichat-canary")
    return value


class Verification(Model):
    """How a new version is judged on live traffic (docs/releasing.md, metric-gated releases):
    after each step, wait `interval`, then read the recording rules the alerts read for its
    track. Too little traffic, no data or an unreachable Prometheus is never a pass; after
    `timeout` without a pass the release is rolled back. Thresholds left out come from
    plexichat:monitoring.thresholds (the alerting targets)."""

    interval: Duration = "5m"
    """Wait after a step (or the flip, or the rollout) before judging. Default 5m."""
    min_requests: Annotated[int, int_range(1, 100_000_000, "a number of requests")] = 100
    """Requests the new version must have served in the rule window for a judgement; fewer is
    no judgement yet (never a pass). Default 100."""
    max_failed_checks: Annotated[int, int_range(1, 100, "a number of checks")] = 2
    """Consecutive failed judgements that end the release (abort, flip back, roll back).
    Default 2."""
    max_error_ratio: Annotated[float, float_range(0.0001, 1, "a ratio")] | None = None
    """Highest 5xx share of the new version's requests, 0..1. Default: the error-rate target
    (monitoring.thresholds.errorRatioTargetPercent / 100)."""
    max_p99_seconds: Annotated[float, float_range(0.001, 600, "a number of seconds")] | None = None
    """Highest p99 latency of the new version. Default: the latency target
    (monitoring.thresholds.latencyTargetMs / 1000)."""
    timeout: Duration = "2h"
    """The whole analysis: without a pass of every step by then, the release ends. Default 2h."""

    @model_validator(mode="after")
    def _timeout_covers_a_step(self) -> Verification:
        if duration_seconds(self.timeout) < duration_seconds(self.interval):
            raise FieldError("timeout", f"must be at least the interval ({self.interval}), got {self.timeout}")
        return self


class CanaryAnalysis(Verification):
    """A canary's analysis: each step of the plan is judged like a verification, and also
    against stable."""

    max_error_ratio_vs_stable: Annotated[float, float_range(1, 100, "a factor")] | None = None
    """The canary's error ratio may be at most this many times stable's, when stable served at
    least minRequests; it counts only above an absolute floor (a quarter of maxErrorRatio, and at
    least 2 errors), so one error on a canary is no failure when stable has none. Default:
    monitoring.thresholds.canaryErrorRatioFactor."""


class CanaryTrack(Model):
    version: Version
    """Image tag or digest the canary track runs. Required."""
    weight: Percent = 0
    """Integer percent 0..100 of live traffic sent to the canary. Default 0 (header route only)."""
    header: CanaryHeader | None = None
    """Optional A/B match: requests with this header go to the canary whatever the weight."""
    steps: list[Percent] | None = None
    """Optional plan such as [10, 25, 50, 100]: strictly increasing; `weight` must then be 0 or a
    step, and `plexictl canary next` moves to the next one."""
    analysis: CanaryAnalysis | None = None
    """Optional metric gate for `plexictl release run`: wait, judge, step on, promote or abort.
    Needs a step plan."""

    @model_validator(mode="after")
    def _weight_on_plan(self) -> CanaryTrack:
        if self.steps is not None:
            if not self.steps or any(a >= b for a, b in itertools.pairwise(self.steps)):
                raise FieldError("steps", "must be a non-empty, strictly increasing list of percents")
            if 0 in self.steps:
                raise FieldError("steps", "must not contain 0 (weight 0 is always allowed)")
            if self.weight != 0 and self.weight not in self.steps:
                raise FieldError("weight", f"must be 0 or one of the steps {self.steps} (got {self.weight})")
        if self.analysis is not None and self.steps is None:
            raise FieldError("analysis", "needs a step plan (steps: [10, 25, 50, 100]) to walk through")
        return self


class RollingRelease(Model):
    """One track, `stable`; a version change is a Kubernetes rolling update."""

    strategy: Literal["rolling"]
    version: Version
    """Image tag or digest of the single `stable` track."""
    verify: Verification | None = None
    """Optional metric gate for `plexictl release run` after a version change: judged like a canary step;
    on failure the previous version is restored."""
    paused: bool = False
    """`plexictl release run` stops before its next step while true (`release pause|resume`).
    Default false."""


class CanaryRelease(Model):
    """Tracks `stable` and `canary`; `canary.weight` percent of traffic goes to the canary."""

    strategy: Literal["canary"]
    stable: Version
    """Version of the `stable` track, which also runs the workers."""
    canary: CanaryTrack
    """The canary track: version, weight, optional header and step plan."""
    paused: bool = False
    """`plexictl release run` stops before its next step while true (`release pause|resume`).
    Default false."""


class BlueGreenRelease(Model):
    """Tracks `blue` and `green`, each with the web workload's full autoscaling range; `active`
    gets all live traffic, the other only the preview route. Both are as large as the live
    traffic needs when workloads.web.requestsPerSecondPerPod is set; otherwise the idle one sits
    at minReplicas (raise it first when flipping under heavy load)."""

    strategy: Literal["blueGreen"]
    active: Literal["blue", "green"]
    """The colour that receives 100% of live traffic and runs the workers."""
    blue: Version
    """Version of the blue track."""
    green: Version
    """Version of the green track."""
    verify: Verification | None = None
    """Optional metric gate for `plexictl release run` after a flip: judged like a canary step;
    on failure it flips back."""
    paused: bool = False
    """`plexictl release run` stops before its next step while true (`release pause|resume`).
    Default false."""


Release = Annotated[RollingRelease | CanaryRelease | BlueGreenRelease, Discriminator("strategy")]
STRATEGIES = ("rolling", "canary", "blueGreen")
