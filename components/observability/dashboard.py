"""The Grafana dashboard of one stack, as plain data (the Grafana sidecar loads it from a ConfigMap).

Everything is per track, so during a canary or a blue-green flip people see each side on its own.
The "traffic share" panel shows the weight the mesh actually applies, measured from the requests
each track served: the configured weight is not baked in, so a weight change touches routing only
(docs/design.md invariant 1) and the panel shows what really happens, including a stuck shift.
"""

from __future__ import annotations

from components.config.monitoring import (
    TRACK_PLACEHOLDER,
    AlertThresholds,
    MetricNames,
    MonitoringSettings,
    TracingSettings,
)
from components.observability import alert_rules as r

UID_PREFIX = "plexichat-"


def dashboard(monitoring: MonitoringSettings, namespace: str, stack: str) -> dict:
    m, t = monitoring.metrics, monitoring.thresholds
    ns = f'namespace="{namespace}"'
    panels = [
        *_request_panels(t, r.slis(monitoring), ns),
        *_saturation_panels(t, ns),
        *_data_tier_panels(m, t, ns),
        _panel(
            "Pod restarts (15 min)",
            "short",
            [(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{{{ns}}}[15m]))", "{{pod}}")],
        ),
    ]
    if monitoring.smoke_probe:
        panels.append(
            _panel(
                "Public health URL (smoke probe)", "short", [(f'probe_success{{job="{r.SMOKE_JOB}"}}', "{{instance}}")]
            )
        )
    # Last: the panels above keep their places whether tracing is on or not.
    if monitoring.tracing.provider is not None:
        panels.append(_trace_links_panel(monitoring.tracing, r.slis(monitoring), ns))
    _place_in_grid(panels)
    return {
        "uid": f"{UID_PREFIX}{stack}",
        "title": f"PlexiChat {stack}: release tracks",
        "tags": ["plexichat", stack],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            ]
        },
        "panels": panels,
    }


_BY_TRACK = f"{r.WORKLOAD}, {r.TRACK}"
_LEGEND = f"{{{{{r.WORKLOAD}}}}} {{{{{r.TRACK}}}}}"
"""Each series named after its workload and track."""


def _request_panels(t: AlertThresholds, s: r.Slis, ns: str) -> list[dict]:
    """What each track serves: rate, share of the web traffic, errors and response time."""
    web = f'{{{ns}, {r.WORKLOAD}="web"}}'
    return [
        _panel("Requests per second, per track", "reqps", [(f"sum by ({_BY_TRACK}) ({s.requests}{{{ns}}})", _LEGEND)]),
        _panel(
            "Traffic share per track (the applied canary weight / active colour)",
            "percentunit",
            [
                (
                    f"sum by ({r.TRACK}) ({s.requests}{web}) / ignoring({r.TRACK}) group_left sum({s.requests}{web})",
                    f"{{{{{r.TRACK}}}}}",
                )
            ],
        ),
        _panel(
            "5xx error ratio, per track",
            "percentunit",
            [(f"{s.error_ratio}{{{ns}}}", _LEGEND)],
            thresholds=(t.error_ratio_target_percent / 100, t.error_ratio_critical_percent / 100),
        ),
        _panel(
            "Response time p99 and p50, per track",
            "s",
            [(f"{s.p99}{{{ns}}}", f"p99 {_LEGEND}"), (f"{s.p50}{{{ns}}}", f"p50 {_LEGEND}")],
            thresholds=(t.latency_target_ms / 1000, t.latency_warning_ms / 1000),
        ),
    ]


TRACK_OF_SERIES = f"${{__field.labels.{r.TRACK}}}"
"""Grafana's data-link variable for the track label of the series a link is opened from."""


def _trace_links_panel(tracing: TracingSettings, s: r.Slis, ns: str) -> dict:
    """Each web track's request rate, with a link on every series to that track's traces (the
    spans carry the track as TRACK_SPAN_TAG: components/observability/tracing.py)."""
    panel = _panel(
        "Traces per track (click a series to open its traces)",
        "reqps",
        [(f'sum by ({r.TRACK}) ({s.requests}{{{ns}, {r.WORKLOAD}="web"}})', f"{{{{{r.TRACK}}}}}")],
    )
    panel["fieldConfig"]["defaults"]["links"] = [
        {
            "title": f"Traces of track {TRACK_OF_SERIES}",
            "url": tracing.trace_search_url.replace(TRACK_PLACEHOLDER, TRACK_OF_SERIES),
            "targetBlank": True,
        }
    ]
    return panel


def _saturation_panels(t: AlertThresholds, ns: str) -> list[dict]:
    """CPU and memory of each pod against its limits."""
    per_pod = f'{{{ns}, container!="", container!="POD"}}'

    def limit(resource: str) -> str:
        return f'sum by (pod) (kube_pod_container_resource_limits{{{ns}, resource="{resource}"}})'

    return [
        _panel(
            "Pod CPU, share of limit",
            "percentunit",
            [(f"sum by (pod) (rate(container_cpu_usage_seconds_total{per_pod}[5m])) / {limit('cpu')}", "{{pod}}")],
            thresholds=(t.cpu_target_percent / 100, t.cpu_info_percent / 100),
        ),
        _panel(
            "Pod memory, share of limit",
            "percentunit",
            [(f"sum by (pod) (container_memory_working_set_bytes{per_pod}) / {limit('memory')}", "{{pod}}")],
            thresholds=(t.memory_target_percent / 100, 1.0),
        ),
    ]


def _data_tier_panels(m: MetricNames, t: AlertThresholds, ns: str) -> list[dict]:
    """Each track's database connection pool and the cache's hit rate."""
    return [
        _panel(
            "Database pool utilisation, per track",
            "percentunit",
            [
                (
                    f"sum by ({_BY_TRACK}) ({m.db_pool_in_use}{{{ns}}}) / "
                    f"sum by ({_BY_TRACK}) ({m.db_pool_max}{{{ns}}})",
                    _LEGEND,
                )
            ],
            thresholds=(t.connection_utilisation_percent / 100, 1.0),
        ),
        _panel(
            "Cache hit rate",
            "percentunit",
            [
                (
                    f"sum(rate({m.cache_hits_total}[5m])) / (sum(rate({m.cache_hits_total}[5m])) + "
                    f"sum(rate({m.cache_misses_total}[5m])))",
                    "hit rate",
                )
            ],
            thresholds=(t.cache_hit_rate_min_percent / 100, 1.0),
        ),
    ]


def _place_in_grid(panels: list[dict]) -> None:
    """Numbers the panels and lays them out two to a row."""
    for index, panel in enumerate(panels):
        panel["id"] = index + 1
        panel["gridPos"] = {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)}


def _panel(
    title: str, unit: str, queries: list[tuple[str, str]], thresholds: tuple[float, float] | None = None
) -> dict:
    defaults: dict = {"unit": unit}
    if thresholds is not None:
        # Amber at the target, red at the alert threshold: the same numbers the alerts use.
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [
                {"color": "green", "value": None},
                {"color": "orange", "value": thresholds[0]},
                {"color": "red", "value": thresholds[1]},
            ],
        }
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend_format}
            for i, (expr, legend_format) in enumerate(queries)
        ],
    }
