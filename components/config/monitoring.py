"""Monitoring and alerting. One number drives both the Prometheus rule and the CloudWatch alarm
that watch the same thing (the runbook's targets and alert thresholds are the defaults).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config.base import (
    DnsLabel,
    Duration,
    FieldError,
    HttpPath,
    LogRetentionDays,
    Model,
    Port,
    Seconds,
    float_range,
    int_range,
    pattern,
)

# Monitoring and alerting. One number drives both the Prometheus rule and the CloudWatch alarm
# that watch the same thing (the runbook's targets and alert thresholds are the defaults).


MetricName = Annotated[
    str, pattern(re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"), "a Prometheus metric name such as http_requests_total")
]
LabelName = Annotated[str, pattern(re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$"), "a Prometheus label name such as code")]
AlertPercent = Annotated[float, float_range(0.1, 100, "a percent")]
ReceiverKind = Literal["none", "chat", "lowPriority", "pagerduty"]


class MetricNames(Model):
    """Names of the series the rules read; change them to match what the app exports."""

    requests_total: MetricName = "http_requests_total"
    """Counter of HTTP requests served by the app. Default http_requests_total."""
    status_code_label: LabelName = "code"
    """Label of `requestsTotal` holding the HTTP status code (5xx counts as an error). Default code."""
    request_duration: MetricName = "http_request_duration_seconds"
    """Histogram (without `_bucket`) of request durations in seconds. Default
    http_request_duration_seconds."""
    db_pool_in_use: MetricName = "plexichat_db_pool_connections_in_use"
    """Gauge: database connections the app's pool has checked out. Default
    plexichat_db_pool_connections_in_use."""
    db_pool_max: MetricName = "plexichat_db_pool_connections_max"
    """Gauge: the pool's size limit. Default plexichat_db_pool_connections_max."""
    cache_hits_total: MetricName = "redis_keyspace_hits_total"
    """redis-exporter counter of key lookups that hit. Default redis_keyspace_hits_total."""
    cache_misses_total: MetricName = "redis_keyspace_misses_total"
    """redis-exporter counter of key lookups that missed. Default redis_keyspace_misses_total."""


class AlertThresholds(Model):
    """The runbook's numbers. Each one feeds every Prometheus rule and CloudWatch alarm that
    watches the same signal, so changing it here changes both."""

    error_ratio_critical_percent: AlertPercent = 5.0
    """5xx share of a track's requests that pages (critical, for 5 min). Default 5."""
    error_ratio_target_percent: AlertPercent = 1.0
    """Error-rate target: a warning when missed for 15 min; below errorRatioCriticalPercent.
    Default 1."""
    latency_warning_ms: Annotated[int, int_range(10, 60000, "a number of milliseconds")] = 1000
    """p99 response time that warns after 5 min. Default 1000."""
    latency_target_ms: Annotated[int, int_range(10, 60000, "a number of milliseconds")] = 500
    """p99 response-time target: a warning when missed for 15 min; below latencyWarningMs.
    Default 500."""
    cpu_info_percent: AlertPercent = 90.0
    """Pod CPU (percent of limit) that raises an info alert after 5 min. Default 90."""
    cpu_target_percent: AlertPercent = 80.0
    """CPU target: pods over it for 30 min warn; also the RDS and ElastiCache CPU alarms.
    Default 80."""
    memory_target_percent: AlertPercent = 85.0
    """Memory target: pods over it (percent of limit) warn; also the ElastiCache memory alarm.
    Default 85."""
    cache_hit_rate_min_percent: AlertPercent = 90.0
    """Cache hit-rate target: below it warns (Prometheus and the ElastiCache alarm). Default 90."""
    connection_utilisation_percent: AlertPercent = 80.0
    """App DB pool use (percent of pool size) that warns; also the RDS connections alarm, as
    percent of the instance's max_connections. Default 80."""
    min_requests_per_second: Annotated[float, float_range(0.01, 10000, "a request rate per second")] = 1.0
    """Minimum-traffic guard: request-based alerts stay silent for a track serving less, so one
    failed request at a low canary weight pages nobody. Default 1."""
    canary_error_ratio_factor: Annotated[float, float_range(1.1, 100, "a factor")] = 2.0
    """The canary alert fires when the canary's error ratio misses the target and exceeds
    stable's by this factor. Default 2."""
    replica_lag_max_seconds: Seconds = 30
    """RDS read-replica lag that alarms. Default 30."""
    db_free_storage_min_gib: Annotated[int, int_range(1, 65536, "a size in GiB")] = 10
    """RDS free storage below which the alarm fires. Default 10."""
    db_freeable_memory_min_mib: Annotated[int, int_range(16, 1048576, "a size in MiB")] = 256
    """RDS freeable memory below which the alarm fires. Default 256."""
    cache_evictions_per_minute_max: Annotated[int, int_range(0, 10000000, "a number of evictions")] = 100
    """ElastiCache evictions per minute above which the alarm fires. Default 100."""

    @model_validator(mode="after")
    def _ordered(self) -> AlertThresholds:
        for lower, upper in (
            ("error_ratio_target_percent", "error_ratio_critical_percent"),
            ("latency_target_ms", "latency_warning_ms"),
            ("cpu_target_percent", "cpu_info_percent"),
        ):
            if getattr(self, lower) >= getattr(self, upper):
                raise FieldError(
                    to_camel(lower),
                    f"must be below {to_camel(upper)} ({getattr(self, upper)}), got {getattr(self, lower)}",
                )
        return self


TRACK_SPAN_TAG = "plexichat.track"
"""The span tag holding the release track that served a request (and VERSION_SPAN_TAG its version)."""
VERSION_SPAN_TAG = "plexichat.version"
TRACK_PLACEHOLDER = "{track}"
"""Where tracing.traceSearchUrl puts the track a dashboard link is for."""
_EXPLORE_PANES = {
    "traces": {
        "datasource": "tempo",
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "tempo", "uid": "tempo"},
                "queryType": "traceql",
                "query": f'{{ span.{TRACK_SPAN_TAG} = "{TRACK_PLACEHOLDER}" }}',
            }
        ],
        "range": {"from": "now-1h", "to": "now"},
    }
}
DEFAULT_TRACE_SEARCH_URL = "/explore?schemaVersion=1&orgId=1&panes=" + quote(
    json.dumps(_EXPLORE_PANES, separators=(",", ":")), safe=""
).replace(quote(TRACK_PLACEHOLDER, safe=""), TRACK_PLACEHOLDER)
"""Grafana Explore on the Tempo data source `tempo`: the last hour's traces of one track (TraceQL)."""

ProviderName = Annotated[
    str,
    pattern(re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$"), "an extension provider name such as otel-tracing"),
]


class TracingSettings(Model):
    """Distributed tracing through the mesh: the sidecars report spans to a provider that the
    cluster's mesh config declares (meshConfig.extensionProviders, a cluster prerequisite:
    docs/delivery.md), each span tagged with the release track and version that served it."""

    extension_providers: list[ProviderName] = []
    """The tracing provider names the cluster's mesh config offers (meshConfig.extensionProviders,
    e.g. [otel-tracing]): `provider` must be one of them. Default none."""
    provider: ProviderName | None = None
    """The provider this stack's spans go to: one of extensionProviders. Default none: tracing off
    (this program configures no tracing; access logs are on either way)."""
    sampling_percent: Annotated[float, float_range(0, 100, "a percent")] = 1.0
    """Share of requests traced when no caller decided already (Istio's randomSamplingPercentage,
    precision 0.01): from 0 to 100. Default 1 (Istio's own default)."""
    collector_namespace: DnsLabel = "observability"
    """Namespace of the collector the provider sends to: the app's pods may reach it on
    collectorPort (a NetworkPolicy). Default observability."""
    collector_port: Port = 4317
    """Port of the collector (the provider's `port` in the mesh config). Default 4317 (OTLP gRPC)."""
    trace_search_url: Annotated[
        str,
        pattern(
            re.compile(r"^(https://|/)\S*\{track\}\S*$"),
            "an https URL or a Grafana path (/explore?...) holding {track} where the track goes",
        ),
    ] = DEFAULT_TRACE_SEARCH_URL
    """Where the dashboard's trace links go, {track} replaced with the track (the span tag
    plexichat.track holds it). Default: Grafana Explore on the Tempo data source with uid `tempo`,
    the last hour's traces of that track; for Jaeger's UI, e.g.
    https://jaeger.example.com/search?service=plexichat-web.plexichat&tags=%7B%22plexichat.track%22%3A%22{track}%22%7D."""

    @model_validator(mode="after")
    def _provider_offered(self) -> TracingSettings:
        if self.provider is not None and self.provider not in self.extension_providers:
            offered = ", ".join(self.extension_providers) or "none (extensionProviders is empty)"
            raise FieldError(
                "provider",
                f"must be one of the cluster's extensionProviders: {offered} (got {self.provider!r})",
            )
        return self


class MonitoringSettings(Model):
    """Scraping, rules, smoke probe and dashboard (Prometheus Operator, Grafana sidecar)."""

    scrape_interval_seconds: Annotated[int, int_range(5, 300, "a number of seconds")] = 30
    """How often Prometheus scrapes every pod's metrics endpoint. Default 30."""
    metrics_path: HttpPath = "/metrics"
    """Path of the metrics endpoint on each workload's port. Default /metrics."""
    resource_labels: dict[str, str] = {"release": "kube-prometheus-stack"}
    """Labels on every monitoring object, matching the Prometheus and Alertmanager selectors.
    Default {release: kube-prometheus-stack}."""
    smoke_probe: bool = True
    """Blackbox-exporter probe of the public readiness URL, with a critical alert. Default on."""
    blackbox_exporter_address: Annotated[
        str,
        pattern(
            re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$"), "host:port such as blackbox.monitoring.svc:9115"
        ),
    ] = "prometheus-blackbox-exporter.monitoring.svc:9115"
    """host:port of the Blackbox exporter. Default prometheus-blackbox-exporter.monitoring.svc:9115."""
    dashboard: bool = True
    """Grafana dashboard ConfigMap (label grafana_dashboard=1) for the sidecar. Default on."""
    runbook_url: Annotated[str, pattern(re.compile(r"^https://[^\s#]+$"), "an https URL without a #fragment")] = (
        "https://github.com/plexichat/infrastructure/blob/main/docs/runbook.md"
    )
    """Where the runbook lives (docs/runbook.md); each alert links to its section there."""
    metrics: MetricNames = MetricNames()
    """Metric names the rules read."""
    rule_window: Duration = "5m"
    """Window of the recording rules (request rate, error ratio, p99 per track) that alerts and
    release analysis both read; it is part of their names (plexichat:http_requests:rate5m).
    Keep it at most the release analysis interval. Default 5m."""
    prometheus_url: (
        Annotated[
            str,
            pattern(re.compile(r"^https?://[^\s#?]+$"), "an http(s) URL such as http://prometheus.monitoring.svc:9090"),
        ]
        | None
    ) = None
    """Where `plexictl release run|status` query Prometheus (the in-cluster service, reached
    through a port-forward or a runner in the cluster: docs/releasing.md). Default none: pass
    --prometheus."""
    thresholds: AlertThresholds = AlertThresholds()
    """The runbook's numbers (Prometheus rules and CloudWatch alarms)."""
    tracing: TracingSettings = TracingSettings()
    """Tracing through the mesh (Istio Telemetry). Default off."""
    application_log_retention_days: LogRetentionDays = 90
    """How long the application log group keeps the pods' logs (the cluster's log shipping sends
    them there), in days: a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180,
    365, 400, 545, 731, 1096, 1827 or 3653). Default 90 (the runbook's)."""


class AlertingSettings(Model):
    """Where alerts go, per severity. `none` everywhere (the default) creates no routing at all.
    Receiver URLs and keys are secrets: plexichat:alertChatWebhookUrl,
    plexichat:alertLowPriorityWebhookUrl, plexichat:pagerDutyRoutingKey and
    plexichat:pagerDutyCloudwatchUrl."""

    critical: ReceiverKind = "none"
    """Receiver of critical alerts: none, chat, lowPriority or pagerduty. Default none. With
    pagerduty the CloudWatch alarm topic also pages (pagerDutyCloudwatchUrl)."""
    warning: ReceiverKind = "none"
    """Receiver of warnings. Default none."""
    info: ReceiverKind = "none"
    """Receiver of info alerts. Default none."""

    @property
    def routes(self) -> dict[str, str]:
        """Severity -> receiver kind, for the severities that go somewhere."""
        return {s: k for s in ("critical", "warning", "info") if (k := getattr(self, s)) != "none"}

    def without_paging(self, instead: ReceiverKind) -> AlertingSettings:
        """The same routes, with every severity that pages sent to `instead` (a DR standby's:
        chat, or none without a chat webhook)."""
        return self.model_copy(
            update={s: instead for s in ("critical", "warning", "info") if getattr(self, s) == "pagerduty"}
        )


ReceiverSecret = Annotated[SecretStr, Field(min_length=8)]


@dataclass(frozen=True)
class Receiver:
    """One kind of alert receiver: the secret setting that holds its URL or key, and how
    Alertmanager names it, keeps it in the receivers Secret and posts to it."""

    setting: str
    alertmanager_name: str
    secret_key: str
    config_kind: str
    secret_field: str


# The one table of receiver kinds (ReceiverKind less "none"): settings, platform and alerting read it.
RECEIVERS = {
    "chat": Receiver("alert_chat_webhook_url", "chat", "chat-webhook-url", "slackConfigs", "apiURL"),
    "lowPriority": Receiver(
        "alert_low_priority_webhook_url", "low-priority", "low-priority-webhook-url", "slackConfigs", "apiURL"
    ),
    "pagerduty": Receiver(
        "pager_duty_routing_key", "pagerduty", "pagerduty-routing-key", "pagerdutyConfigs", "routingKey"
    ),
}
