"""Release planning, property-tested: for every legal release block the plan is well formed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from components.config.release import BlueGreenRelease, CanaryRelease, RollingRelease
from components.release.plan import PREVIEW_HEADER, Track, plan_release

versions = st.builds(
    lambda a, b, c: f"v{a}.{b}.{c}", st.integers(0, 30), st.integers(0, 30), st.integers(0, 99)
) | st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
weights = st.integers(0, 100)
headers = st.none() | st.fixed_dictionaries({"name": st.just("x-plexichat-canary"), "value": st.just("true")})

rolling = st.builds(lambda v: RollingRelease(strategy="rolling", version=v), versions)
canary = st.builds(
    lambda s, v, w, h: CanaryRelease.model_validate(
        {"strategy": "canary", "stable": s, "canary": {"version": v, "weight": w, "header": h}}
    ),
    versions,
    versions,
    weights,
    headers,
)
blue_green = st.builds(
    lambda a, b, g: BlueGreenRelease(strategy="blueGreen", active=a, blue=b, green=g),
    st.sampled_from(["blue", "green"]),
    versions,
    versions,
)
releases = rolling | canary | blue_green


@given(releases)
def test_every_route_sums_to_100_and_targets_a_planned_track(release):
    plan = plan_release(release)
    track_names = {t.name for t in plan.tracks}
    for route in plan.routes:
        assert sum(d.weight_percent for d in route.destinations) == 100
        assert all(0 <= d.weight_percent <= 100 for d in route.destinations)
        assert {d.track for d in route.destinations} <= track_names


@given(releases)
def test_match_routes_come_before_the_weighted_default(release):
    plan = plan_release(release)
    assert plan.routes[-1].name == "primary" and plan.routes[-1].header_match is None
    assert all(r.header_match is not None for r in plan.routes[:-1])


@given(releases)
def test_exactly_one_track_runs_the_workers(release):
    assert sum(t.runs_workers for t in plan_release(release).tracks) == 1


@given(releases)
def test_tracks_sized_for_all_traffic_are_exactly_the_blue_green_colours(release):
    """A track that can go from no traffic to all of it in one route change (a flip) must be
    sized for all of it; a canary grows by steps, a rolling track already has it all."""
    plan = plan_release(release)
    expected = {"blue", "green"} if plan.strategy == "blueGreen" else set()
    assert {t.name for t in plan.tracks if t.sized_for_all_traffic} == expected


@given(rolling)
def test_rolling_is_one_stable_track_at_its_version(release):
    plan = plan_release(release)
    assert [(t.name, t.version) for t in plan.tracks] == [("stable", release.version)]
    assert plan.weight_of("stable") == 100


@given(canary)
def test_canary_weight_goes_to_canary_and_the_rest_to_stable(release):
    plan = plan_release(release)
    assert {t.name: t.version for t in plan.tracks} == {
        "stable": release.stable,
        "canary": release.canary.version,
    }
    assert plan.weight_of("canary") == release.canary.weight == plan.canary_weight_percent
    assert plan.weight_of("stable") == 100 - release.canary.weight
    assert plan.worker_track.name == "stable"
    header_routes = [r for r in plan.routes if r.header_match]
    if release.canary.header is None:
        assert header_routes == []
    else:
        (route,) = header_routes
        assert route.header_match == (release.canary.header.name, release.canary.header.value)
        assert [(d.track, d.weight_percent) for d in route.destinations] == [("canary", 100)]


@given(blue_green)
def test_blue_green_sends_live_traffic_to_active_and_preview_to_the_other(release):
    plan = plan_release(release)
    inactive = "green" if release.active == "blue" else "blue"
    assert {t.name: t.version for t in plan.tracks} == {"blue": release.blue, "green": release.green}
    assert plan.weight_of(release.active) == 100 and plan.weight_of(inactive) == 0
    assert release.active == plan.active_colour
    assert plan.worker_track == Track("stable", getattr(release, release.active), runs_workers=True)
    (preview,) = [r for r in plan.routes if r.header_match == PREVIEW_HEADER]
    assert [(d.track, d.weight_percent) for d in preview.destinations] == [(inactive, 100)]


@given(canary, weights)
def test_a_weight_change_changes_nothing_but_weights(release, new_weight):
    before = plan_release(release)
    data = release.model_dump(by_alias=True)
    data["canary"]["weight"] = new_weight
    after = plan_release(CanaryRelease.model_validate(data))
    assert before.tracks == after.tracks
    assert [r.name for r in before.routes] == [r.name for r in after.routes]
