"""Monitoring per stack: strict CRD validation, what each stack routes where, secrets kept secret,
the track on every series, the alarm topic, and the CloudWatch alarms from the same settings."""

from __future__ import annotations

import json

import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1, v1alpha1

from components import naming
from components.config.monitoring import AlertThresholds
from components.config.parse import parse_stack_config
from components.observability import alert_rules
from components.observability.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.observability.alerting import RECEIVERS_SECRET
from components.observability.cloud_alarms import GIB, MIB, CloudAlarms, CloudAlarmsArgs
from plexictl import render
from plexictl.offline import ROOT, Rendering, is_secret, run, stack_config
from plexictl.offline.mocks import computed_aws_outputs
from plexictl.offline.stack_files import FAKE_SECRET
from tests.conftest import STACKS, render_edited, rendered, stack_file, stack_region
from tests.test_docs import RUNBOOK, anchors

MONITORING = "kubernetes:monitoring.coreos.com/"
MODELS = {
    "PodMonitor": v1.PodMonitor,
    "PrometheusRule": v1.PrometheusRule,
    "Probe": v1.Probe,
    "AlertmanagerConfig": v1alpha1.AlertmanagerConfig,
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET = "aws:secretsmanager/secret:Secret"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def monitoring_objects(rendering: Rendering) -> dict[str, dict]:
    return {r.type.rsplit(":", 1)[-1]: r.manifest() for r in rendering.resources if r.type.startswith(MONITORING)}


def routing(stack: str) -> dict | None:
    return monitoring_objects(rendered(stack)).get("AlertmanagerConfig")


def _kept(given, dumped) -> bool:
    """Whether the model kept every field of `given` with its value (it may add defaults)."""
    if isinstance(given, dict):
        return isinstance(dumped, dict) and all(k in dumped and _kept(v, dumped[k]) for k, v in given.items())
    if isinstance(given, list):
        return isinstance(dumped, list) and len(given) == len(dumped) and all(map(_kept, given, dumped))
    return given == dumped


def test_every_monitoring_object_validates_strictly_against_the_operator_models(any_stack):
    objects = monitoring_objects(any_stack)
    assert {"PodMonitor", "PrometheusRule"} <= set(objects)
    for kind, manifest in objects.items():
        if "[unknown until apply]" in str(manifest):
            continue  # preview: a computed name; `up` mode validates the same object
        model = MODELS[kind].model_validate(manifest)
        # The models drop unknown fields silently: a field they dropped is a misspelt one.
        dumped = model.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert _kept(manifest, dumped), kind


def test_strict_validation_catches_a_misspelt_field():
    manifest = monitoring_objects(rendered("prod"))["PodMonitor"]
    manifest["spec"]["podTargetLabel"] = manifest["spec"].pop("podTargetLabels")
    dumped = v1.PodMonitor.model_validate(manifest).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert not _kept(manifest, dumped)


def test_pod_monitor_scrapes_every_pod_with_its_track_on_every_series(any_stack):
    spec = monitoring_objects(any_stack)["PodMonitor"]["spec"]
    assert naming.TRACK_LABEL in spec["podTargetLabels"] and "version" in spec["podTargetLabels"]
    selector = spec["selector"]["matchLabels"]
    ports = {e["port"] for e in spec["podMetricsEndpoints"]}
    for deployment in any_stack.of_type(DEPLOYMENT):
        template = deployment.inputs["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items()
        named = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        assert named & ports, deployment.urn  # every pod exposes one of the scraped ports
    # The rules group by the label the track becomes on a series.
    assert alert_rules.TRACK == "plexichat_com_track"


def test_every_alert_has_summary_description_and_a_runbook_section():
    runbook = RUNBOOK.relative_to(ROOT).as_posix()
    sections = anchors(RUNBOOK)
    for stack in STACKS:
        spec = monitoring_objects(rendered(stack))["PrometheusRule"]["spec"]
        for rule in (r for g in spec["groups"] for r in g["rules"] if "alert" in r):
            annotations = rule["annotations"]
            assert annotations["summary"] and annotations["description"], rule["alert"]
            page, anchor = annotations["runbook_url"].split("#", 1)
            assert page.endswith(f"/{runbook}"), f"{rule['alert']} links to {page}, not to {runbook}"
            assert anchor in sections, f"{runbook} has no section for {rule['alert']}"
            assert "$value" not in str(annotations)
            assert {"severity", "signal", "namespace"} <= set(rule["labels"])


def test_dev_routes_nothing_staging_chats_prod_pages():
    assert routing("dev") is None
    assert not rendered("dev").of_type("kubernetes:core/v1:Secret")

    def receivers(stack):
        spec = routing(stack)["spec"]
        routes = {m["value"]: r["receiver"] for r in spec["route"]["routes"] for m in r["matchers"]}
        kinds = {r["name"]: set(r) - {"name"} for r in spec["receivers"]}
        return routes, kinds

    routes, kinds = receivers("staging")
    assert routes == {"critical": "chat", "warning": "chat", "info": "chat"}
    assert kinds == {"discard": set(), "chat": {"slackConfigs"}}
    routes, kinds = receivers("prod")
    assert routes == {"critical": "pagerduty", "warning": "chat", "info": "low-priority"}
    assert kinds["pagerduty"] == {"pagerdutyConfigs"} and kinds["low-priority"] == {"slackConfigs"}
    # Paging only from prod: no PagerDuty receiver and no paging subscription elsewhere.
    for stack in ("dev", "staging"):
        assert "pagerdutyConfigs" not in json.dumps(routing(stack) or {})
        assert not rendered(stack).of_type("aws:sns/topicSubscription:TopicSubscription")


def test_a_critical_alert_mutes_the_matching_warning():
    (inhibit,) = routing("prod")["spec"]["inhibitRules"]
    assert inhibit["sourceMatch"] == [{"name": "severity", "value": "critical", "matchType": "="}]
    assert inhibit["targetMatch"] == [{"name": "severity", "value": "warning", "matchType": "="}]
    assert set(inhibit["equal"]) == {"namespace", "signal", alert_rules.TRACK}
    # Each critical alert has a warning about the same signal to mute, or none at all.
    rules = [
        r
        for g in monitoring_objects(rendered("prod"))["PrometheusRule"]["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    signals = {r["labels"]["signal"] for r in rules if r["labels"]["severity"] == "warning"}
    assert "errors" in signals and {"errors", "smoke"} == {
        r["labels"]["signal"] for r in rules if r["labels"]["severity"] == "critical"
    }


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_receiver_urls_and_keys_reach_the_cluster_only_through_secrets_manager(stack):
    """Stack config (Pulumi secrets) -> a Secrets Manager secret with its own key -> the
    ExternalSecret that keeps the Secret the AlertmanagerConfig references."""
    r = rendered(stack)
    secret = r.one(SECRET, "monitoring-receivers-secret")
    secret_arn = computed_aws_outputs(secret.type, secret.name, secret.inputs)["arn"]
    key = r.one("aws:kms/key:Key", "monitoring-receivers-key")
    key_arn = computed_aws_outputs(key.type, key.name, key.inputs)["arn"]
    assert secret.inputs["name"] == f"plexichat/{stack}/alert-receivers" and secret.inputs["kmsKeyId"] == key_arn
    value = r.one("aws:secretsmanager/secretVersion:SecretVersion", "monitoring-receivers-secret-value")
    assert is_secret(value.inputs["secretString"])
    stored = json.loads(value.inputs["secretString"]["value"])
    assert set(stored.values()) == {FAKE_SECRET}  # each receiver's secret config value

    (external,) = [e for e in r.of_type(EXTERNAL_SECRET) if e.name == "monitoring-receivers"]
    spec = external.inputs["spec"]
    assert spec["secretStoreRef"] == {"name": "plexichat-aws", "kind": "SecretStore"}
    assert spec["target"] == {"name": RECEIVERS_SECRET, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    assert {d["secretKey"]: d["remoteRef"] for d in spec["data"]} == {
        k: {"key": secret_arn, "property": k} for k in stored
    }
    routing_spec = routing(stack)["spec"]
    refs = [
        c for x in routing_spec["receivers"] for configs in x.values() if isinstance(configs, list) for c in configs
    ]
    assert refs
    for config in refs:
        ref = config.get("apiURL") or config.get("routingKey")
        assert ref == {"name": RECEIVERS_SECRET, "key": ref["key"]} and ref["key"] in stored
    (config,) = r.of_type("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig")
    assert external.urn in config.dependencies  # delivered before Alertmanager reads it

    # The app's store reads this secret and its key through a policy of its own, nothing more.
    read = r.one("aws:iam/rolePolicy:RolePolicy", "monitoring-receivers-store-read")
    assert read.inputs["role"] == "app-access-store-role-id"
    statements = json.loads(read.inputs["policy"])["Statement"]
    assert [s["Resource"] for s in statements] == [[secret_arn], [key_arn]]
    assert read.urn in external.dependencies and value.urn in external.dependencies


def _as_render_yaml_to_directory_writes(resource) -> dict:
    """The object as the Kubernetes provider writes it with `renderYamlToDirectory`: with every
    secret's value in it (a rendered manifest is applied as is, so nothing is masked)."""

    def reveal(value):
        if is_secret(value):
            return reveal(value["value"])
        if isinstance(value, dict):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [reveal(v) for v in value]
        return value

    group_version, kind = resource.type.split(":", 1)[1].rsplit(":", 1)
    group, _, version = group_version.rpartition("/")
    api_version = f"{group}/{version}" if group not in ("", "core") else version
    return {"apiVersion": api_version, "kind": kind, **reveal(resource.inputs)}


@pytest.mark.parametrize("stack", STACKS)
def test_no_manifest_rendered_to_a_directory_holds_a_secret_config_value(stack, tmp_path):
    """With `kubernetes.renderYamlToDirectory` the provider writes every object, secrets in clear,
    to files a GitOps repository keeps: none may hold a stack's secret config value (each is the
    offline placeholder here), and the program declares no Kubernetes Secret at all."""
    r = rendered(stack)
    for resource in r.kubernetes_objects():
        written = yaml.safe_dump(_as_render_yaml_to_directory_writes(resource))
        assert FAKE_SECRET not in written, resource.urn
        assert resource.type != "kubernetes:core/v1:Secret", resource.urn
    render.write(r, tmp_path)  # what `plexictl render --out` writes
    written_files = list((tmp_path / "kubernetes").iterdir())
    assert written_files and not [f for f in written_files if f.name.startswith("secret-")]
    assert not any(FAKE_SECRET in f.read_text() for f in tmp_path.rglob("*") if f.is_file())


def test_smoke_probe_checks_the_public_readiness_url():
    assert "Probe" not in monitoring_objects(rendered("dev"))  # dev: smokeProbe false
    spec = monitoring_objects(rendered("prod"))["Probe"]["spec"]
    assert spec["targets"]["staticConfig"]["static"] == ["https://app.plexichat.com/readyz"]
    assert spec["jobName"] == alert_rules.SMOKE_JOB and spec["module"] == "http_2xx"


def test_dashboard_is_found_by_the_grafana_sidecar_and_shows_every_track(any_stack):
    # Not the database bootstrap's SQL (tests/test_database_roles_wiring.py) nor the break-glass
    # session's connection (tests/test_break_glass.py).
    config_maps = any_stack.of_type("kubernetes:core/v1:ConfigMap")
    (config_map,) = [c for c in config_maps if "grafana_dashboard" in c.inputs["metadata"]["labels"]]
    assert config_map.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map.inputs["data"].values()
    board = json.loads(text)
    titles = " ".join(p["title"] for p in board["panels"])
    for words in ("Requests", "error ratio", "p99", "Traffic share", "CPU", "memory", "Database", "Cache"):
        assert words in titles
    queries = [t["expr"] for p in board["panels"] for t in p["targets"]]
    assert sum(alert_rules.TRACK in q for q in queries) >= 3


def test_alarm_topic_is_encrypted_with_its_own_key_and_pages_only_in_prod():
    for stack in STACKS:
        rendering = rendered(stack)
        (topic,) = rendering.of_type("aws:sns/topic:Topic")
        key = rendering.one("aws:kms/key:Key", "alarms-key")
        # The topic's own key, by the ARN the engine answered for it (not another stack key).
        key_arn = computed_aws_outputs(key.type, key.name, key.inputs, stack_region(stack))["arn"]
        assert topic.inputs["kmsMasterKeyId"] == key_arn
        assert key.inputs["enableKeyRotation"] is True
        policy = json.loads(key.inputs["policy"])
        cloudwatch = [s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
        assert cloudwatch and cloudwatch[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert rendered("prod").outputs["alarmTopicArn"] == "arn:aws:sns:us-east-1:123456789012:alarms-topic"
    (subscription,) = rendered("prod").of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["protocol"] == "https"
    assert is_secret(subscription.inputs["endpoint"])


# ---------------------------------------------------------------------------------------------
# CloudWatch alarms: the component on its own, then as every stack wires it


def _alarms(thresholds: AlertThresholds) -> Rendering:
    def program():
        topic = AlarmTopic("alarms", AlarmTopicArgs(stack="test"))
        CloudAlarms(
            "data",
            CloudAlarmsArgs(
                topic=topic.topic,
                thresholds=thresholds,
                db_primary_identifier="plexichat-prod-db",
                db_max_connections=500,
                db_replica_identifiers={
                    "replica-1": "plexichat-prod-db-replica-1",
                    "replica-2": "plexichat-prod-db-replica-2",
                },
                cache_replication_group_id="plexichat-prod-cache",
                cache_node_count=2,
            ),
        )

    return run(program, "test")


def _alarm_inputs(rendering: Rendering) -> dict[str, dict]:
    return {r.name: r.inputs for r in rendering.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}


def test_cloud_alarms_cover_the_data_tier_and_notify_the_topic_both_ways():
    rendering = _alarms(AlertThresholds())
    assert rendering.warnings == []
    alarms = _alarm_inputs(rendering)
    assert set(alarms) == {
        "data-db-primary-cpu",
        "data-db-primary-free-storage",
        "data-db-primary-freeable-memory",
        "data-db-primary-connections",
        "data-db-replica-1-lag",
        "data-db-replica-2-lag",
        *(f"data-cache-{n}-{m}" for n in ("001", "002") for m in ("engine-cpu", "memory", "evictions", "hit-rate")),
    }
    topic_arn = "arn:aws:sns:us-east-1:123456789012:alarms-topic"
    for name, alarm in alarms.items():
        assert alarm["alarmActions"] == [topic_arn] and alarm["okActions"] == [topic_arn], name
        assert alarm["actionsEnabled"] is True and alarm["treatMissingData"], name
    assert alarms["data-db-replica-2-lag"]["dimensions"] == {"DBInstanceIdentifier": "plexichat-prod-db-replica-2"}
    assert alarms["data-cache-002-hit-rate"]["dimensions"] == {"CacheClusterId": "plexichat-prod-cache-002"}
    assert alarms["data-db-primary-free-storage"]["threshold"] == 10 * GIB
    assert alarms["data-db-primary-freeable-memory"]["threshold"] == 256 * MIB
    assert alarms["data-db-primary-connections"]["threshold"] == 400  # 80 % of 500
    assert alarms["data-cache-001-hit-rate"]["comparisonOperator"] == "LessThanThreshold"


def test_one_setting_moves_the_prometheus_rule_and_the_cloudwatch_alarm_together():
    def edit(config):
        config["plexichat:monitoring"] = {
            "thresholds": {
                "cpuTargetPercent": 70,
                "cacheHitRateMinPercent": 95,
                "memoryTargetPercent": 75,
                "connectionUtilisationPercent": 60,
            }
        }

    def expr_of(rendering, alert):
        spec = monitoring_objects(rendering)["PrometheusRule"]["spec"]
        return next(r["expr"] for g in spec["groups"] for r in g["rules"] if r.get("alert") == alert)

    data = stack_file("staging")
    edit(data["config"])
    config, secret_keys = stack_config("staging", stack_file=data)
    thresholds = parse_stack_config(config, "staging", secret_keys).monitoring.thresholds
    alarms = _alarm_inputs(_alarms(thresholds))
    prometheus = render_edited("staging", edit)

    assert expr_of(prometheus, "PlexichatCpuAboveTarget").endswith("> 0.7")
    assert alarms["data-db-primary-cpu"]["threshold"] == 70
    assert alarms["data-cache-001-engine-cpu"]["threshold"] == 70
    assert expr_of(prometheus, "PlexichatCacheHitRateLow").split(" and ")[0].endswith("< 0.95")
    assert alarms["data-cache-001-hit-rate"]["threshold"] == 95
    assert expr_of(prometheus, "PlexichatMemoryHigh").endswith("> 0.75")
    assert alarms["data-cache-001-memory"]["threshold"] == 75
    assert expr_of(prometheus, "PlexichatDbPoolSaturated").endswith("> 0.6")
    assert alarms["data-db-primary-connections"]["threshold"] == 300


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_alarms_on_its_database_and_cache_through_the_topic(stack):
    rendering = rendered(stack)
    topic_arn = rendering.outputs["alarmTopicArn"]
    alarms = rendering.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    data_alarms = [a for a in alarms if a.inputs.get("namespace") in ("AWS/RDS", "AWS/ElastiCache")]
    assert data_alarms
    for alarm in data_alarms:
        assert alarm.inputs["alarmActions"] == [topic_arn] and alarm.inputs["okActions"] == [topic_arn]
    replicas = rendering.outputs["database"]["readReplicas"]
    # One per read replica (a DR standby's own replica lag alarm is a data-path alarm: docs/dr.md).
    lag = [a for a in data_alarms if a.inputs["metricName"] == "ReplicaLag" and a.component.startswith("CloudAlarms")]
    assert len(lag) == replicas
    cache_nodes = {
        a.inputs["dimensions"]["CacheClusterId"] for a in data_alarms if a.inputs["namespace"] == "AWS/ElastiCache"
    }
    assert len(cache_nodes) == rendering.outputs["cache"]["nodes"]
