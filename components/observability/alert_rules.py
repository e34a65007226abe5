"""The runbook's thresholds as Prometheus rules: pure data, no Pulumi (promtool tests read it).

Series carry the pod's track and workload as labels (the PodMonitor's `podTargetLabels`), so
every request-based rule is computed per `namespace`, workload and track: a canary is judged on
its own series, never averaged into stable's. Every request-based alert also needs the track to
serve at least `minRequestsPerSecond`, so one failed request at a 10 % canary weight pages nobody.

Each alert carries `severity` (routing), `signal` (a critical inhibits the warning with the same
signal and track), `namespace` and the annotations `summary`, `description` and `runbook_url` (docs/runbook.md's
section named after the alert). Annotations template labels only, never `$value`, so promtool
tests can state them exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components import naming
from components.config.monitoring import (
    AlertThresholds,
    MetricNames,
    MonitoringSettings,
)

SMOKE_JOB = "plexichat-smoke"
"""`jobName` of the Blackbox probe, hence the `job` label of its `probe_success` series."""


def series_label(pod_label: str) -> str:
    """The label a pod label becomes on scraped series (Prometheus sanitises the name)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


TRACK = series_label(naming.TRACK_LABEL)  # plexichat_com_track
WORKLOAD = series_label(naming.COMPONENT_LABEL)  # app_kubernetes_io_component
POD_TARGET_LABELS = (naming.TRACK_LABEL, naming.COMPONENT_LABEL, "version")
"""Pod labels copied onto every scraped series."""


@dataclass(frozen=True)
class Slis:
    """The recording rules: the SLIs per namespace, workload and track over one window
    (monitoring.ruleWindow), which is part of each name. Alerts, the dashboard and release
    analysis all read these: one definition of request rate, error ratio and p99."""

    window: str

    @property
    def requests(self) -> str:
        return f"plexichat:http_requests:rate{self.window}"

    @property
    def errors(self) -> str:
        return f"plexichat:http_errors:rate{self.window}"

    @property
    def error_ratio(self) -> str:
        return f"plexichat:http_error_ratio:rate{self.window}"

    @property
    def p99(self) -> str:
        return f"plexichat:http_request_duration_seconds:p99_{self.window}"

    @property
    def p50(self) -> str:
        return f"plexichat:http_request_duration_seconds:p50_{self.window}"


def slis(monitoring: MonitoringSettings) -> Slis:
    return Slis(monitoring.rule_window)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    signal: str
    summary: str
    description: str

    def rule(self, runbook_url: str, namespace: str) -> dict:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            # `namespace` even on alerts whose series have none (cache, probe): the operator
            # scopes an AlertmanagerConfig to alerts carrying its own namespace.
            "labels": {"severity": self.severity, "signal": self.signal, "namespace": namespace},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_url}#{self.name.lower()}",
            },
        }


def _percent(value: float) -> str:
    return f"{value:g}%"


def _ratio(percent: float) -> str:
    return f"{percent / 100:g}"


def rule_groups(monitoring: MonitoringSettings, namespace: str) -> list[dict]:
    """The PrometheusRule's `spec.groups` for one stack."""
    return [
        {
            "name": "plexichat-slis",
            "interval": f"{monitoring.scrape_interval_seconds}s",
            "rules": recording_rules(monitoring, namespace),
        },
        {
            "name": "plexichat-alerts",
            "rules": [a.rule(monitoring.runbook_url, namespace) for a in alerts(monitoring, namespace)],
        },
    ]


def recording_rules(monitoring: MonitoringSettings, namespace: str) -> list[dict]:
    m, s, w = monitoring.metrics, slis(monitoring), monitoring.rule_window
    by = f"namespace, {WORKLOAD}, {TRACK}"
    ns = f'namespace="{namespace}"'
    rate = f"rate({m.requests_total}{{{ns}}}[{w}])"
    error_rate = f'rate({m.requests_total}{{{ns}, {m.status_code_label}=~"5.."}}[{w}])'
    buckets = f"sum by (le, {by}) (rate({m.request_duration}_bucket{{{ns}}}[{w}]))"
    return [
        {"record": s.requests, "expr": f"sum by ({by}) ({rate})"},
        # `or 0 * ...`: a track without a single 5xx has an error rate of 0, not no series.
        {"record": s.errors, "expr": f"sum by ({by}) ({error_rate}) or 0 * {s.requests}"},
        {"record": s.error_ratio, "expr": f"{s.errors} / {s.requests}"},
        {"record": s.p99, "expr": f"histogram_quantile(0.99, {buckets})"},
        {"record": s.p50, "expr": f"histogram_quantile(0.5, {buckets})"},
    ]


_TRACK_NAME = f"{{{{ $labels.{WORKLOAD} }}}} track {{{{ $labels.{TRACK} }}}}"
"""How an alert names the workload and track it is about."""
_POD_NAME = "pod {{ $labels.pod }}"


def alerts(monitoring: MonitoringSettings, namespace: str) -> list[Alert]:
    """Every alert of one stack, grouped by signal, in the runbook's order."""
    m, t, s = monitoring.metrics, monitoring.thresholds, slis(monitoring)
    ns = f'namespace="{namespace}"'
    found = [
        *_error_alerts(t, s),
        *_latency_alerts(t, s),
        _canary_alert(t, s),
        *_saturation_alerts(t, ns),
        *_data_tier_alerts(m, t, ns),
        *_pod_alerts(ns),
    ]
    if monitoring.smoke_probe:
        found.append(_SMOKE_PROBE_ALERT)
    return found


def _traffic_guard(t: AlertThresholds, s: Slis) -> str:
    """Only a track serving `minRequestsPerSecond` is judged on its requests."""
    return f"and {s.requests} >= {t.min_requests_per_second:g}"


def _error_alerts(t: AlertThresholds, s: Slis) -> list[Alert]:
    guard = _traffic_guard(t, s)
    return [
        Alert(
            "PlexichatErrorRatioCritical",
            f"{s.error_ratio} > {_ratio(t.error_ratio_critical_percent)} {guard}",
            "5m",
            "critical",
            "errors",
            f"{_TRACK_NAME}: more than {_percent(t.error_ratio_critical_percent)} of requests fail",
            f"Over 5 minutes, more than {_percent(t.error_ratio_critical_percent)} of the "
            f"requests to {_TRACK_NAME} in {{{{ $labels.namespace }}}} answered 5xx.",
        ),
        Alert(
            "PlexichatErrorRatioAboveTarget",
            f"{s.error_ratio} > {_ratio(t.error_ratio_target_percent)} {guard}",
            "15m",
            "warning",
            "errors",
            f"{_TRACK_NAME}: error rate above the {_percent(t.error_ratio_target_percent)} target",
            f"For 15 minutes, more than {_percent(t.error_ratio_target_percent)} of the "
            f"requests to {_TRACK_NAME} in {{{{ $labels.namespace }}}} answered 5xx.",
        ),
    ]


def _latency_alerts(t: AlertThresholds, s: Slis) -> list[Alert]:
    guard = _traffic_guard(t, s)
    return [
        Alert(
            "PlexichatLatencyHigh",
            f"{s.p99} > {t.latency_warning_ms / 1000:g} {guard}",
            "5m",
            "warning",
            "latency",
            f"{_TRACK_NAME}: p99 response time above {t.latency_warning_ms} ms",
            f"For 5 minutes, 1 % of the requests to {_TRACK_NAME} took longer than {t.latency_warning_ms} ms.",
        ),
        Alert(
            "PlexichatLatencyAboveTarget",
            f"{s.p99} > {t.latency_target_ms / 1000:g} {guard}",
            "15m",
            "warning",
            "latency-target",
            f"{_TRACK_NAME}: p99 response time above the {t.latency_target_ms} ms target",
            f"For 15 minutes, 1 % of the requests to {_TRACK_NAME} took longer than {t.latency_target_ms} ms.",
        ),
    ]


def _canary_alert(t: AlertThresholds, s: Slis) -> Alert:
    canary = f'{{{TRACK}="canary"}}'
    return Alert(
        "PlexichatCanaryWorseThanStable",
        # group_left keeps the canary's labels (one-to-one matching would drop the track).
        f"{s.error_ratio}{canary} > on(namespace, {WORKLOAD}) group_left() "
        f'({t.canary_error_ratio_factor:g} * {s.error_ratio}{{{TRACK}="stable"}}) '
        f"and {s.error_ratio}{canary} > {_ratio(t.error_ratio_target_percent)} "
        f"and {s.requests}{canary} >= {t.min_requests_per_second:g}",
        "5m",
        "warning",
        "canary",
        f"{{{{ $labels.{WORKLOAD} }}}}: the canary fails more than stable",
        f"The canary's error ratio misses the {_percent(t.error_ratio_target_percent)} "
        f"target and is over {t.canary_error_ratio_factor:g} times stable's: do not "
        "shift more traffic; roll the canary back.",
    )


def _saturation_alerts(t: AlertThresholds, ns: str) -> list[Alert]:
    """CPU and memory of each pod against its limits."""
    per_pod = f'{{{ns}, container!="", container!="POD"}}'

    def pod_usage(usage: str, resource: str) -> str:
        return (
            f"sum by (namespace, pod) ({usage}) / sum by (namespace, pod) "
            f'(kube_pod_container_resource_limits{{{ns}, resource="{resource}"}})'
        )

    cpu = pod_usage(f"rate(container_cpu_usage_seconds_total{per_pod}[5m])", "cpu")
    memory = pod_usage(f"container_memory_working_set_bytes{per_pod}", "memory")
    return [
        Alert(
            "PlexichatCpuHigh",
            f"{cpu} > {_ratio(t.cpu_info_percent)}",
            "5m",
            "info",
            "cpu",
            f"{_POD_NAME}: CPU above {_percent(t.cpu_info_percent)} of its limit",
            f"For 5 minutes {_POD_NAME} used more than {_percent(t.cpu_info_percent)} of its CPU "
            "limit (throttling is near).",
        ),
        Alert(
            "PlexichatCpuAboveTarget",
            f"{cpu} > {_ratio(t.cpu_target_percent)}",
            "30m",
            "warning",
            "cpu-target",
            f"{_POD_NAME}: CPU above the {_percent(t.cpu_target_percent)} target",
            f"For 30 minutes {_POD_NAME} used more than {_percent(t.cpu_target_percent)} of its CPU limit.",
        ),
        Alert(
            "PlexichatMemoryHigh",
            f"{memory} > {_ratio(t.memory_target_percent)}",
            "10m",
            "warning",
            "memory",
            f"{_POD_NAME}: memory above {_percent(t.memory_target_percent)} of its limit",
            f"For 10 minutes {_POD_NAME} used more than {_percent(t.memory_target_percent)} of its "
            "memory limit; at 100 % it is OOM-killed.",
        ),
    ]


def _data_tier_alerts(m: MetricNames, t: AlertThresholds, ns: str) -> list[Alert]:
    """The cache's hit rate and each track's database connection pool."""
    lookups = f"(sum(rate({m.cache_hits_total}[10m])) + sum(rate({m.cache_misses_total}[10m])))"
    by = f"namespace, {WORKLOAD}, {TRACK}"
    return [
        Alert(
            "PlexichatCacheHitRateLow",
            f"sum(rate({m.cache_hits_total}[10m])) / {lookups} < "
            f"{_ratio(t.cache_hit_rate_min_percent)} and {lookups} >= {t.min_requests_per_second:g}",
            "15m",
            "warning",
            "cache",
            f"Cache hit rate below {_percent(t.cache_hit_rate_min_percent)}",
            f"For 15 minutes fewer than {_percent(t.cache_hit_rate_min_percent)} of Redis "
            "lookups hit; the database takes the difference.",
        ),
        Alert(
            "PlexichatDbPoolSaturated",
            f"sum by ({by}) ({m.db_pool_in_use}{{{ns}}}) / "
            f"sum by ({by}) ({m.db_pool_max}{{{ns}}}) > "
            f"{_ratio(t.connection_utilisation_percent)}",
            "10m",
            "warning",
            "db-pool",
            f"{_TRACK_NAME}: database pool over {_percent(t.connection_utilisation_percent)} used",
            f"For 10 minutes {_TRACK_NAME} had more than {_percent(t.connection_utilisation_percent)} "
            "of its database connection pool checked out; requests will queue.",
        ),
    ]


def _pod_alerts(ns: str) -> list[Alert]:
    """Pods that do not start, and an autoscaler out of room."""
    return [
        Alert(
            "PlexichatPodCrashLooping",
            f"max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{{{ns}, "
            f'reason="CrashLoopBackOff"}}) == 1',
            "5m",
            "warning",
            "crashloop",
            f"{_POD_NAME} is crash-looping",
            f"Container {{{{ $labels.container }}}} of {_POD_NAME} has been in CrashLoopBackOff for 5 minutes.",
        ),
        Alert(
            "PlexichatHpaAtMaxReplicas",
            f"kube_horizontalpodautoscaler_status_current_replicas{{{ns}}} >= "
            f"kube_horizontalpodautoscaler_spec_max_replicas{{{ns}}}",
            "15m",
            "warning",
            "capacity",
            "{{ $labels.horizontalpodautoscaler }} is at its maximum replicas",
            "For 15 minutes the autoscaler {{ $labels.horizontalpodautoscaler }} could not add "
            "pods: raise maxReplicas or find the load.",
        ),
    ]


_SMOKE_PROBE_ALERT = Alert(
    "PlexichatSmokeProbeFailing",
    f'probe_success{{job="{SMOKE_JOB}"}} == 0',
    "5m",
    "critical",
    "smoke",
    "The public health URL fails",
    "For 5 minutes the Blackbox exporter could not get a 2xx from {{ $labels.instance }}.",
)
