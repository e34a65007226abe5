"""Tracing and logs (issue #16): the Istio Telemetry objects (traces tagged per release track,
access logs), the application log group, and the dashboard's links to the traces.

Every test builds the config it needs in a copy of a stack file (`render_edited`): the stack
files' own tracing values are operator data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote

import pulumi
import pytest

from components import naming
from components.config.monitoring import TRACK_PLACEHOLDER, TRACK_SPAN_TAG, VERSION_SPAN_TAG
from components.observability import alert_rules
from components.observability.tracing import ACCESS_LOG_PROVIDER
from plexictl.offline import Rendering, recording
from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import STACKS, render_edited, stack_file, stack_region
from tests.crd_models import validate_strictly

TELEMETRY = "kubernetes:telemetry.istio.io/v1:Telemetry"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
OFFERED = ["otel-tracing", "jaeger"]


def tracing(**keys) -> Callable[[dict], None]:
    """An edit setting `plexichat:monitoring.tracing` to exactly `keys` (None: removing it)."""

    def edit(config: dict) -> None:
        monitoring = config.setdefault("plexichat:monitoring", {})
        monitoring.pop("tracing", None)
        if keys:
            monitoring["tracing"] = dict(keys)

    return edit


TRACED = tracing(extensionProviders=OFFERED, provider="jaeger", samplingPercent=12.5)


@pytest.fixture(scope="module", params=STACKS)
def traced(request) -> Rendering:
    """Each stack with tracing to `jaeger` at 12.5%."""
    return render_edited(request.param, TRACED)


def _telemetry(rendering: Rendering) -> dict[str, dict]:
    return {t.inputs["metadata"]["name"]: t.inputs for t in rendering.of_type(TELEMETRY)}


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, selector
    return selector["matchLabels"].items() <= labels.items()


def test_every_telemetry_is_valid_and_carries_the_provider_and_sampling_of_the_settings(traced):
    objects = traced.of_type(TELEMETRY)
    assert objects
    for telemetry in objects:
        validate_strictly(telemetry.manifest())
        spec = telemetry.inputs["spec"]
        (trace,) = spec["tracing"]
        assert trace["providers"] == [{"name": "jaeger"}]
        assert trace["randomSamplingPercentage"] == 12.5
        # Complete on its own: a workload's Telemetry replaces the namespace's fields it sets.
        assert spec["accessLogging"] == [{"providers": [{"name": ACCESS_LOG_PROVIDER}], "match": {"mode": "SERVER"}}]
        assert telemetry.inputs["metadata"]["namespace"] == "plexichat"
    # One namespace-wide object (no selector): Istio allows only one per namespace.
    assert sum("selector" not in t.inputs["spec"] for t in objects) == 1


def test_each_track_telemetry_selects_exactly_its_tracks_pods_and_tags_their_spans(traced):
    telemetry = [t["spec"] for t in _telemetry(traced).values() if "selector" in t["spec"]]
    web_tracks = set()
    for deployment in traced.of_type(DEPLOYMENT):
        labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
        selecting = [spec for spec in telemetry if _selects(spec["selector"], labels)]
        if labels[naming.COMPONENT_LABEL] != "web":
            assert selecting == [], deployment.name  # workers: the namespace's Telemetry
            continue
        (spec,) = selecting  # Istio ignores all but one Telemetry selecting a workload
        tags = spec["tracing"][0]["customTags"]
        assert tags[TRACK_SPAN_TAG] == {"literal": {"value": labels[naming.TRACK_LABEL]}}
        assert tags[VERSION_SPAN_TAG] == {"literal": {"value": labels["version"]}}
        web_tracks.add(labels[naming.TRACK_LABEL])
    assert len(telemetry) == len(web_tracks) >= 1


def test_both_canary_tracks_are_tagged_in_prod_and_both_colours_in_staging():
    for stack, tracks in (("prod", {"stable", "canary"}), ("staging", {"blue", "green"}), ("dev", {"stable"})):
        names = set(_telemetry(render_edited(stack, TRACED)))
        assert names == {"plexichat", *(f"plexichat-web-{t}" for t in tracks)}, stack


def test_tracing_is_off_unless_a_provider_is_chosen_and_access_logs_stay_on():
    rendering = render_edited("prod", tracing())
    ((name, telemetry),) = _telemetry(rendering).items()
    assert name == "plexichat" and "tracing" not in telemetry["spec"] and "selector" not in telemetry["spec"]
    assert telemetry["spec"]["accessLogging"][0]["providers"] == [{"name": ACCESS_LOG_PROVIDER}]
    policies = {
        p.inputs["metadata"]["name"] for p in rendering.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    assert "allow-egress-tracing" not in policies
    assert not _trace_panels(rendering)


def test_a_weight_change_or_pause_touches_no_telemetry_and_a_version_bump_only_its_tracks():
    def shifted(config):
        TRACED(config)
        config["plexichat:release"]["canary"]["weight"] = 25
        config["plexichat:release"]["paused"] = True

    before = _telemetry(render_edited("prod", TRACED))
    assert _telemetry(render_edited("prod", shifted)) == before

    def flipped(config):
        TRACED(config)
        config["plexichat:release"]["active"] = "green"

    assert _telemetry(render_edited("staging", flipped)) == _telemetry(render_edited("staging", TRACED))

    def bumped(config):
        TRACED(config)
        config["plexichat:release"]["canary"]["version"] = "v9.9.9@sha256:" + "a" * 64

    after = _telemetry(render_edited("prod", bumped))
    assert {n for n in before if before[n] != after[n]} == {"plexichat-web-canary"}
    assert after["plexichat-web-canary"]["spec"]["tracing"][0]["customTags"][VERSION_SPAN_TAG] == {
        "literal": {"value": "v9.9.9"}
    }


# --- bad settings: one RunError naming the key, before anything is registered --------------------

BAD_TRACING = [
    (
        tracing(extensionProviders=OFFERED, provider="jaeger", samplingPercent=100.5),
        "plexichat:monitoring.tracing.samplingPercent",
        ["must be a percent from 0 to 100"],
    ),
    (
        tracing(extensionProviders=OFFERED, provider="zipkin"),
        "plexichat:monitoring.tracing.provider",
        ["must be one of the cluster's extensionProviders: otel-tracing, jaeger", "'zipkin'"],
    ),
    (tracing(provider="zipkin"), "plexichat:monitoring.tracing.provider", ["extensionProviders is empty"]),
    (
        tracing(traceSearchUrl="https://jaeger.example.com/search"),
        "plexichat:monitoring.tracing.traceSearchUrl",
        ["holding {track}"],
    ),
    (
        lambda config: config.setdefault("plexichat:monitoring", {}).update(applicationLogRetentionDays=45),
        "plexichat:monitoring.applicationLogRetentionDays",
        ["90"],
    ),
]


@pytest.mark.parametrize("edit,key,hints", BAD_TRACING, ids=[b[1].rsplit(".", 1)[1] for b in BAD_TRACING])
def test_bad_tracing_and_log_settings_are_refused_before_anything_is_registered(monkeypatch, edit, key, hints):
    registered: list[str] = []
    record = recording.record
    monkeypatch.setattr(
        recording, "record", lambda request, urn, *rest: registered.append(urn) or record(request, urn, *rest)
    )
    with pytest.raises(pulumi.RunError) as raised:
        render_edited("staging", edit)
    lines = [line for line in str(raised.value).splitlines() if line.strip().startswith(f"- {key}:")]
    assert lines and all(any(hint in line for line in lines) for hint in hints), str(raised.value)
    assert registered == []


# --- the application log group --------------------------------------------------------------------


def _application_logs(rendering: Rendering):
    (group,) = [g for g in rendering.of_type(LOG_GROUP) if g.component == "ApplicationLogs application-logs"]
    return group, rendering.one("aws:kms/key:Key", "application-logs-key")


@pytest.mark.parametrize("stack", STACKS)
def test_application_logs_are_encrypted_kept_90_days_and_protected_where_data_is(stack):
    rendering = render_edited(stack, lambda config: None)
    group, key = _application_logs(rendering)
    name = f"/plexichat/{stack}/application"
    assert group.inputs["name"] == name and rendering.outputs["applicationLogGroup"] == name
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"] == computed_aws_outputs(key.type, key.name, key.inputs, stack_region(stack))["arn"]
    assert key.inputs["enableKeyRotation"] is True
    (logs,) = [
        s for s in json.loads(key.inputs["policy"])["Statement"] if s["Sid"] == "CloudWatchLogsForTheseLogGroups"
    ]
    assert logs["Principal"] == {"Service": f"logs.{stack_region(stack)}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [
        f"arn:*:logs:{stack_region(stack)}:123456789012:log-group:{name}"
    ]
    # Protected like the data tier's log groups: wherever dataProtection.protect is on.
    protect = stack_file(stack)["config"].get("plexichat:dataProtection", {}).get("protect", True)
    assert group.protect is key.protect is protect


def test_production_keeps_its_application_logs_protected_and_dev_can_shorten_them():
    prod, _ = _application_logs(render_edited("prod", lambda config: None))
    assert prod.protect is True
    shorter = render_edited(
        "dev", lambda config: config.setdefault("plexichat:monitoring", {}).update(applicationLogRetentionDays=30)
    )
    group, _ = _application_logs(shorter)
    assert group.inputs["retentionInDays"] == 30 and group.protect is False


# --- the dashboard's trace links ------------------------------------------------------------------


def _trace_panels(rendering: Rendering) -> list[dict]:
    (config_map,) = [
        c
        for c in rendering.of_type("kubernetes:core/v1:ConfigMap")
        if c.inputs["metadata"]["name"] == "plexichat-dashboard"
    ]
    (text,) = config_map.inputs["data"].values()
    return [p for p in json.loads(text)["panels"] if p["fieldConfig"]["defaults"].get("links")]


def test_the_dashboard_links_each_tracks_series_to_its_traces():
    (panel,) = _trace_panels(render_edited("prod", TRACED))
    (target,) = panel["targets"]
    assert f"sum by ({alert_rules.TRACK})" in target["expr"] and 'namespace="plexichat"' in target["expr"]
    (link,) = panel["fieldConfig"]["defaults"]["links"]
    track_variable = f"${{__field.labels.{alert_rules.TRACK}}}"
    assert TRACK_PLACEHOLDER not in link["url"]
    # The default: Grafana Explore on the Tempo data source, TraceQL on the span tag.
    panes = json.loads(unquote(link["url"].split("panes=", 1)[1]))
    (query,) = panes["traces"]["queries"]
    assert query["query"] == f'{{ span.{TRACK_SPAN_TAG} = "{track_variable}" }}'
    assert query["datasource"] == {"type": "tempo", "uid": "tempo"}


def test_the_trace_link_follows_its_setting():
    jaeger = "https://jaeger.example.com/search?service=plexichat-web.plexichat&tags=%7B%22plexichat.track%22%3A%22{track}%22%7D"
    rendering = render_edited(
        "staging", tracing(extensionProviders=OFFERED, provider="otel-tracing", traceSearchUrl=jaeger)
    )
    (panel,) = _trace_panels(rendering)
    (link,) = panel["fieldConfig"]["defaults"]["links"]
    assert link["url"] == jaeger.replace("{track}", f"${{__field.labels.{alert_rules.TRACK}}}")
