"""Istio traffic: the objects are valid and safe, routes mean what the release config says, and the
docs/design.md invariants hold when the config changes (rendered before and after, compared per resource)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from components.cluster.traffic import SUBSETS, http_routes
from components.config.cluster import RetrySettings, TrafficSettings
from components.config.parse import parse_stack_config
from components.config.release import (
    BlueGreenRelease,
    CanaryHeader,
    CanaryRelease,
    CanaryTrack,
    RollingRelease,
)
from components.edge.edge import preview_host
from components.release.plan import plan_release
from plexictl.offline import Rendering, Resource
from tests.conftest import (
    STACKS,
    current_config,
    is_dr_standby,
    render_edited,
    rendered,
    rendered_current,
)
from tests.crd_models import validate_strictly
from tests.release_state import pinned_release, release_for, version_for

VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
FQDN = "plexichat-web.plexichat.svc.cluster.local"

RELEASES = {
    "rolling": {"strategy": "rolling", "version": "v2.0.0"},
    "canary": {
        "strategy": "canary",
        "stable": "v2.0.0",
        "canary": {"version": "v2.1.0", "weight": 25, "header": {"name": "x-plexichat-canary", "value": "true"}},
    },
    "blueGreen": {"strategy": "blueGreen", "active": "green", "blue": "v2.0.0", "green": "v2.1.0"},
}


def _one(rendering: Rendering, type_: str) -> Resource:
    (resource,) = rendering.of_type(type_)
    return resource


def _spec(rendering: Rendering, type_: str) -> dict:
    return _one(rendering, type_).inputs["spec"]


def _set_release(release: dict):
    return lambda config: config.update({"plexichat:release": release})


# --- the objects ----------------------------------------------------------------------------


def test_each_stack_has_one_of_each_istio_object_valid_against_the_crd_models(any_stack):
    for type_ in (VIRTUAL_SERVICE, DESTINATION_RULE, PEER_AUTHENTICATION):
        validate_strictly(_one(any_stack, type_).manifest())


def test_destination_rule_has_a_subset_per_track_by_track_label_mtls_and_limits(any_stack):
    spec = _spec(any_stack, DESTINATION_RULE)
    assert spec["host"] == FQDN
    assert [s["name"] for s in spec["subsets"]] == list(SUBSETS)
    assert all(s["labels"] == {"plexichat.com/track": s["name"]} for s in spec["subsets"])
    policy = spec["trafficPolicy"]
    assert policy["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert policy["connectionPool"]["tcp"]["maxConnections"] > 0
    assert policy["connectionPool"]["http"]["http2MaxRequests"] > 0
    assert policy["outlierDetection"]["consecutive5xxErrors"] == 5


def test_every_planned_track_has_a_subset_and_pods_it_selects(any_stack):
    subsets = {s["name"]: s["labels"] for s in _spec(any_stack, DESTINATION_RULE)["subsets"]}
    for route in _spec(any_stack, VIRTUAL_SERVICE)["http"]:
        for destination in route["route"]:
            labels = subsets[destination["destination"]["subset"]]
            pods = [
                d
                for d in any_stack.of_type(DEPLOYMENT)
                if d.inputs["metadata"]["name"].startswith("plexichat-web-")
                and labels.items() <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert len(pods) == 1, destination


def test_peer_authentication_is_namespace_wide_strict(any_stack):
    resource = _one(any_stack, PEER_AUTHENTICATION)
    assert resource.inputs["metadata"]["name"] == "default"
    assert resource.inputs["spec"] == {"mtls": {"mode": "STRICT"}}  # no selector, no port override


def test_virtual_service_is_bound_to_the_mesh_for_the_service_and_public_hosts(any_stack):
    spec = _spec(any_stack, VIRTUAL_SERVICE)
    assert spec["gateways"] == ["mesh"]
    assert spec["hosts"][0] == FQDN
    domain = any_stack.outputs["url"].removeprefix("https://")
    assert domain in spec["hosts"]


def test_timeouts_and_retries(any_stack):
    for route in _spec(any_stack, VIRTUAL_SERVICE)["http"]:
        retries = route["retries"]
        if route["name"].endswith("-websocket"):
            assert "timeout" not in route, route["name"]  # chat connections live for hours
            assert route["match"] and all(m["uri"] == {"prefix": "/ws"} for m in route["match"])
            assert retries["retryOn"] == "connect-failure" and "perTryTimeout" not in retries
        else:
            timeout = _seconds(route["timeout"])
            assert set(retries["retryOn"].split(",")) == {"5xx", "reset", "connect-failure"}
            assert _seconds(retries["perTryTimeout"]) * (retries["attempts"] + 1) <= timeout


def _seconds(duration: str) -> int:
    assert duration.endswith("s")
    return int(duration[:-1])


# --- route semantics, for every legal release config -----------------------------------------

versions = st.from_regex(r"v(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)", fullmatch=True)
canary_tracks = st.builds(
    lambda version, weight, header: CanaryTrack(version=version, weight=weight, header=header),
    versions,
    st.integers(0, 100),
    st.none() | st.builds(CanaryHeader),
)
releases = st.one_of(
    st.builds(lambda v: RollingRelease(strategy="rolling", version=v), versions),
    st.builds(lambda s, c: CanaryRelease(strategy="canary", stable=s, canary=c), versions, canary_tracks),
    st.builds(
        lambda a, b, g: BlueGreenRelease(strategy="blueGreen", active=a, blue=b, green=g),
        st.sampled_from(["blue", "green"]),
        versions,
        versions,
    ),
)


@st.composite
def traffic_settings(draw) -> TrafficSettings:
    attempts = draw(st.integers(0, 10))
    per_try = draw(st.integers(1, 300 // (attempts + 1)))
    timeout = draw(st.integers(per_try * (attempts + 1), 300))
    path = draw(st.from_regex(r"/[a-z]{1,8}", fullmatch=True))
    return TrafficSettings(
        websocket_path=path,
        request_timeout_seconds=timeout,
        retries=RetrySettings(attempts=attempts, per_try_timeout_seconds=per_try),
    )


def choose(routes: list[dict], authority: str, path: str, headers: dict[str, str]) -> dict:
    """Istio's rule: the first route with a matching entry (entries OR, fields in one AND)."""

    def entry_matches(entry: dict) -> bool:
        return (
            all(headers.get(name) == cond["exact"] for name, cond in entry.get("headers", {}).items())
            and ("authority" not in entry or entry["authority"]["exact"] == authority)
            and ("uri" not in entry or path.startswith(entry["uri"]["prefix"]))
        )

    return next(r for r in routes if not r.get("match") or any(map(entry_matches, r["match"])))


@hypothesis_settings(max_examples=100, deadline=None)
@given(releases, traffic_settings(), st.booleans())
def test_route_semantics_for_every_legal_release(release, traffic, with_preview_host):
    plan = plan_release(release)
    preview_host = "preview.app.plexichat.com" if with_preview_host else None
    routes = http_routes(plan, FQDN, traffic, preview_host)
    # The weighted default route is last and catches everything; match routes precede it.
    assert "match" not in routes[-1] and routes[-1]["name"] == "primary"
    assert all(r.get("match") for r in routes[:-1])
    for route in routes:
        weights = [d["weight"] for d in route["route"]]
        assert sum(weights) == 100 and all(isinstance(w, int) and 0 <= w <= 100 for w in weights)
        if "timeout" in route:
            retries = route["retries"]
            assert _seconds(retries["perTryTimeout"]) * (retries["attempts"] + 1) <= _seconds(route["timeout"])
    # Every plan route has its WebSocket twin right before it, with the same destinations.
    for index in range(0, len(routes), 2):
        twin, route = routes[index], routes[index + 1]
        assert twin["name"] == f"{route['name']}-websocket" and "timeout" not in twin
        assert twin["route"] == route["route"]
    # First match wins: what a request gets is what the release config says it gets.
    ws = traffic.websocket_path
    for path in ("/", ws + "/chat"):
        expected_suffix = "-websocket" if path != "/" else ""
        chosen = choose(routes, FQDN, path, {})
        assert chosen["name"] == "primary" + expected_suffix
        assert {d["destination"]["subset"]: d["weight"] for d in chosen["route"]} == {
            d.track: d.weight_percent for d in plan.primary_route.destinations
        }
        for route in plan.routes[:-1]:
            name, value = route.header_match
            chosen = choose(routes, FQDN, path, {name: value})
            assert chosen["name"] == route.name + expected_suffix
            assert [d["destination"]["subset"] for d in chosen["route"] if d["weight"]] == [route.destinations[0].track]
        if plan.preview_track is not None and preview_host is not None:
            chosen = choose(routes, preview_host, path, {})
            assert chosen["name"] == "preview" + expected_suffix
            assert chosen["route"] == [{"destination": {"host": FQDN, "subset": plan.preview_track}, "weight": 100}]
    assert {t.name for t in plan.tracks} <= set(SUBSETS)


@pytest.mark.parametrize("weight", [0, 100])
def test_weights_0_and_100_render_and_keep_both_destinations(weight):
    rendering = render_edited("prod", lambda c: c["plexichat:release"]["canary"].update(weight=weight))
    primary = _spec(rendering, VIRTUAL_SERVICE)["http"][-1]
    assert {d["destination"]["subset"]: d["weight"] for d in primary["route"]} == {
        "stable": 100 - weight,
        "canary": weight,
    }


# --- the docs/design.md invariants, rendered before and after an edit ---------------------------------


def _changes(before: Rendering, after: Rendering) -> set[str]:
    """URNs added, removed or with different inputs (Pulumi's create, delete, update)."""
    old, new = before.by_urn(), after.by_urn()
    return {
        urn for urn in old.keys() | new.keys() if urn not in old or urn not in new or old[urn].inputs != new[urn].inputs
    }


def _kind(urn: str) -> str:
    return urn.split("::")[-2].rsplit(":", 1)[-1]


def test_a_weight_shift_changes_only_the_virtual_service():
    before = rendered("prod")
    after = render_edited("prod", lambda c: c["plexichat:release"]["canary"].update(weight=25))
    assert {_kind(urn) for urn in _changes(before, after)} == {"VirtualService"}
    assert after.outputs["canaryWeightPercent"] == 25


def test_a_blue_green_flip_changes_only_routing_and_the_workers():
    before = rendered("staging")
    after = render_edited("staging", lambda c: c["plexichat:release"].update(active="green"))
    changed = _changes(before, after)
    routing = {urn for urn in changed if _kind(urn) == "VirtualService"}
    assert len(routing) == 1
    # Workers follow the active colour by an in-place image update of their one Deployment;
    # nothing else changes, appears or disappears (no web Deployment, Service, HPA, ...).
    assert {r.urn for r in before.resources} == {r.urn for r in after.resources}
    (worker,) = changed - routing
    assert _kind(worker) == "Deployment" and worker.endswith("::worker-stable-deployment")
    assert after.outputs["activeColour"] == "green"
    assert after.outputs["workerVersion"] == pinned_release("staging")["green"]


def test_both_colours_are_sized_for_all_traffic_so_a_flip_lands_on_full_capacity():
    """Staging's colours autoscale alike, on the whole web Service's request rate as well as on
    their own load: the idle colour is as large as the live one before any flip."""
    r = rendered("staging")
    web = {
        h.name: h.inputs["spec"]
        for h in r.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
        if h.name.startswith("web-")
    }
    assert set(web) == {"web-blue-hpa", "web-green-hpa"}
    blue, green = web["web-blue-hpa"], web["web-green-hpa"]
    assert {k: v for k, v in blue.items() if k != "scaleTargetRef"} == {
        k: v for k, v in green.items() if k != "scaleTargetRef"
    }
    (service_rate,) = [m for m in blue["metrics"] if m["type"] == "Object"]
    assert (
        service_rate["object"]["describedObject"]["name"]
        == r.one("kubernetes:core/v1:Service", "web-service").inputs["metadata"]["name"]
    )
    # Nowhere else: a canary is sized by its own share, a rolling stack has one track anyway.
    for stack in ("dev", "prod"):
        for hpa in rendered(stack).of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
            assert all(m["type"] == "Resource" for m in hpa.inputs["spec"]["metrics"]), (stack, hpa.name)


@pytest.mark.parametrize("stack", STACKS)
def test_a_version_bump_changes_no_selector_and_no_routing_object(stack):
    def bump(config):
        release = config["plexichat:release"]
        for key in ("version", "stable", "blue", "green"):
            if key in release:
                release[key] = version_for(stack, "v9.9.9")
        if "canary" in release:
            release["canary"]["version"] = version_for(stack, "v9.9.10")

    before, after = rendered(stack), render_edited(stack, bump)
    changed = _changes(before, after)
    # The Deployments, and the newer version's migration (a Job named after it, and in prod the
    # snapshot before it; none on a DR standby, whose replica migrates with its primary), and the
    # version span tag of the tracks' Telemetry: no routing object, no selector.
    assert changed and {_kind(urn) for urn in changed} <= {"Deployment", "Job", "Snapshot", "Telemetry"}
    assert {_kind(urn) for urn in changed} >= ({"Deployment"} if is_dr_standby(stack) else {"Deployment", "Job"})
    old, new = before.by_urn(), after.by_urn()
    for urn in changed:
        if _kind(urn) == "Deployment":
            assert new[urn].inputs["spec"]["selector"] == old[urn].inputs["spec"]["selector"]


def test_destination_rule_never_changes_across_strategies_and_edits():
    """Static subsets: a subset exists before any route uses it and after the last one stops."""
    for stack in STACKS:
        specs = [
            _spec(render_edited(stack, _set_release(release_for(stack, r))), DESTINATION_RULE)
            for r in RELEASES.values()
        ]
        assert all(spec == specs[0] for spec in specs)


# --- safe ordering ----------------------------------------------------------------------------


def _urn_of_web_deployment(rendering: Rendering, track: str) -> str:
    (deployment,) = [
        d for d in rendering.of_type(DEPLOYMENT) if d.inputs["metadata"]["name"] == f"plexichat-web-{track}"
    ]
    return deployment.urn


@pytest.mark.parametrize("strategy", RELEASES)
def test_virtual_service_waits_for_the_subsets_and_every_routed_deployment(strategy):
    rendering = render_edited("prod", _set_release(release_for("prod", RELEASES[strategy])))
    vs = _one(rendering, VIRTUAL_SERVICE)
    routed = {d["destination"]["subset"] for r in vs.inputs["spec"]["http"] for d in r["route"]}
    required = {_one(rendering, DESTINATION_RULE).urn} | {_urn_of_web_deployment(rendering, t) for t in routed}
    assert required <= set(vs.dependencies)


def test_removing_a_track_updates_routes_in_place_and_keeps_its_subset():
    """Promote (canary -> rolling): the canary Deployment leaves the program, so Pulumi deletes it
    after the run's updates, i.e. after the VirtualService update that stopped routing to it; the
    subset it used stays (the DestinationRule is unchanged), so no request meets a missing subset."""
    before = rendered("prod")
    after = render_edited("prod", _set_release({"strategy": "rolling", "version": version_for("prod", "v1.5.0")}))
    canary = _urn_of_web_deployment(before, "canary")
    assert canary not in after.by_urn()  # deleted by Pulumi at the end of the update
    vs_after = _one(after, VIRTUAL_SERVICE)
    assert vs_after.urn == _one(before, VIRTUAL_SERVICE).urn  # updated in place, never replaced
    assert canary not in vs_after.dependencies
    assert "canary" not in str(vs_after.inputs["spec"]["http"])
    assert _spec(after, DESTINATION_RULE) == _spec(before, DESTINATION_RULE)


# --- every strategy on every stack -----------------------------------------------------------


@pytest.mark.parametrize("strategy", RELEASES)
@pytest.mark.parametrize("stack", STACKS)
def test_every_strategy_renders_on_every_stack(stack, strategy):
    rendering = render_edited(stack, _set_release(release_for(stack, RELEASES[strategy])))
    assert rendering.warnings == []
    assert rendering.outputs["releaseStrategy"] == strategy
    for type_ in (VIRTUAL_SERVICE, DESTINATION_RULE, PEER_AUTHENTICATION):
        validate_strictly(_one(rendering, type_).manifest())
    for route in _spec(rendering, VIRTUAL_SERVICE)["http"]:
        assert sum(d["weight"] for d in route["route"]) == 100
    assert ("previewUrl" in rendering.outputs) == (strategy == "blueGreen")


def test_the_rendered_routes_are_the_property_tested_function_of_the_config(current_stack):
    """Ties the hypothesis test above to the program: the VirtualService carries exactly what
    `http_routes` returns for the stack's own settings, whatever release the file holds today."""
    config, secret_keys = current_config(current_stack)
    settings = parse_stack_config(config, current_stack, secret_keys)
    plan = plan_release(settings.release)
    preview = preview_host(settings.domain) if plan.preview_track else None
    routes = _spec(rendered_current(current_stack), VIRTUAL_SERVICE)["http"]
    assert routes == http_routes(plan, FQDN, settings.traffic, preview)
