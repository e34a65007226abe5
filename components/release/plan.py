"""Release planning: the release block of the stack config -> the tracks to run and the routes.

Pure functions over the settings models, no Pulumi: the workload component turns tracks into
Deployments, the traffic component turns routes into an Istio VirtualService. Keeping the whole
decision here makes every strategy testable in microseconds and property-testable.

Tracks are named by role (`stable`, `canary`, `blue`, `green`), never by version: a Deployment's
selector uses the track, so a version bump only changes the pod template (docs/design.md invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.release import BlueGreenRelease, CanaryRelease, RollingRelease

TRACK_NAMES = ("stable", "canary", "blue", "green")
"""Every track name any strategy uses (the traffic component keeps a subset for each)."""
WORKER_TRACK = "stable"
PREVIEW_HEADER = ("x-plexichat-preview", "true")
"""Requests with this header reach the inactive blue-green colour (smoke tests before a flip)."""


@dataclass(frozen=True)
class Track:
    name: str
    """`stable`, `canary`, `blue` or `green`: the value of the track label and the subset name."""
    version: str
    """As written in the release config; `components.config.versions` derives the image and labels."""
    runs_workers: bool
    """Whether worker workloads run this track (the stable or active one, exactly one track)."""
    sized_for_all_traffic: bool = False
    """Whether the track must be able to take all web traffic at any moment: both blue-green
    colours, since a flip moves everything at once and may change nothing but routes. Such a
    track scales on the whole Service's request rate, not only on its own load."""


@dataclass(frozen=True)
class Destination:
    track: str
    weight_percent: int


@dataclass(frozen=True)
class Route:
    """One HTTP route of the VirtualService, in order: the first route that matches wins."""

    name: str
    destinations: tuple[Destination, ...]
    header_match: tuple[str, str] | None = None
    """(header name, exact value) this route requires; None for the default route."""


@dataclass(frozen=True)
class ReleasePlan:
    strategy: str
    tracks: tuple[Track, ...]
    routes: tuple[Route, ...]
    """Match routes first, the weighted default route (`primary`) last."""
    canary_weight_percent: int | None = None
    active_colour: str | None = None
    preview_track: str | None = None
    """The blue-green colour reachable only through the preview route."""

    @property
    def worker_track(self) -> Track:
        """The one track workers run: always named `stable`, at the version serving production
        (stable, or the active colour). The name never changes, so a blue-green flip or the end
        of a canary is an in-place image update of the workers, not a replacement of their
        Deployment, autoscaler and budget."""
        serving = next(t for t in self.tracks if t.runs_workers)
        return Track(WORKER_TRACK, serving.version, runs_workers=True)

    @property
    def primary_route(self) -> Route:
        return self.routes[-1]

    def weight_of(self, track: str) -> int:
        """Percent of default (unmatched) traffic the track receives."""
        return sum(d.weight_percent for d in self.primary_route.destinations if d.track == track)


def plan_release(release: RollingRelease | CanaryRelease | BlueGreenRelease) -> ReleasePlan:
    if isinstance(release, RollingRelease):
        return ReleasePlan(
            strategy=release.strategy,
            tracks=(Track("stable", release.version, runs_workers=True),),
            routes=(Route("primary", (Destination("stable", 100),)),),
        )
    if isinstance(release, CanaryRelease):
        canary = release.canary
        routes = []
        if canary.header is not None:
            routes.append(
                Route(
                    "canary-header",
                    (Destination("canary", 100),),
                    header_match=(canary.header.name, canary.header.value),
                )
            )
        # Both destinations stay listed at weight 0 and 100: a weight change is then a value
        # change in place, never a structural change of the route.
        routes.append(
            Route(
                "primary",
                (Destination("stable", 100 - canary.weight), Destination("canary", canary.weight)),
            )
        )
        return ReleasePlan(
            strategy=release.strategy,
            tracks=(
                Track("stable", release.stable, runs_workers=True),
                Track("canary", canary.version, runs_workers=False),
            ),
            routes=tuple(routes),
            canary_weight_percent=canary.weight,
        )
    if isinstance(release, BlueGreenRelease):
        active = release.active
        inactive = "green" if active == "blue" else "blue"
        versions = {"blue": release.blue, "green": release.green}
        return ReleasePlan(
            strategy=release.strategy,
            tracks=tuple(
                Track(colour, versions[colour], runs_workers=colour == active, sized_for_all_traffic=True)
                for colour in ("blue", "green")
            ),
            routes=(
                Route("preview", (Destination(inactive, 100),), header_match=PREVIEW_HEADER),
                Route(
                    "primary",
                    tuple(Destination(colour, 100 if colour == active else 0) for colour in ("blue", "green")),
                ),
            ),
            active_colour=active,
            preview_track=inactive,
        )
    raise TypeError(f"unknown release model {type(release).__name__}")
