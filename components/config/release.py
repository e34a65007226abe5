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

from components.config.base import FieldError, Model, Percent, Version

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

    @model_validator(mode="after")
    def _weight_on_plan(self) -> CanaryTrack:
        if self.steps is not None:
            if not self.steps or any(a >= b for a, b in itertools.pairwise(self.steps)):
                raise FieldError("steps", "must be a non-empty, strictly increasing list of percents")
            if 0 in self.steps:
                raise FieldError("steps", "must not contain 0 (weight 0 is always allowed)")
            if self.weight != 0 and self.weight not in self.steps:
                raise FieldError("weight", f"must be 0 or one of the steps {self.steps} (got {self.weight})")
        return self


class RollingRelease(Model):
    """One track, `stable`; a version change is a Kubernetes rolling update."""

    strategy: Literal["rolling"]
    version: Version
    """Image tag or digest of the single `stable` track."""


class CanaryRelease(Model):
    """Tracks `stable` and `canary`; `canary.weight` percent of traffic goes to the canary."""

    strategy: Literal["canary"]
    stable: Version
    """Version of the `stable` track, which also runs the workers."""
    canary: CanaryTrack
    """The canary track: version, weight, optional header and step plan."""


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


Release = Annotated[RollingRelease | CanaryRelease | BlueGreenRelease, Discriminator("strategy")]
STRATEGIES = ("rolling", "canary", "blueGreen")
