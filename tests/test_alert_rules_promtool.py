"""Every alert of every stack, proven by `promtool test rules` on the rendered PrometheusRule.

For each alert a synthetic series just above its threshold for longer than `for:` fires with the
expected severity and labels; just below, for too short a time, or (request-based alerts) under
the minimum-traffic guard, it stays silent. Thresholds are read from the stack's settings, so the
tests follow the stack file: they prove the rule implements the number, whatever the number is.

Without promtool these tests skip; with PLEXICHAT_REQUIRE_PROMTOOL=1 (set by .ci/run) a missing
promtool fails them instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml

from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from components.observability import alert_rules as r
from plexictl.offline import stack_config
from tests.conftest import STACKS, rendered

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
NS = "plexichat"
MINUTES = 40
"""Length of every synthetic series; longer than the longest `for:` (30m) plus its margin."""
ABOVE, BELOW = 1.05, 0.95
"""How far from its threshold a synthetic signal sits: close, so the comparison itself is tested."""

EXPECTED_SEVERITY = {
    # The runbook's three alerts at their severities ...
    "PlexichatErrorRatioCritical": "critical",
    "PlexichatLatencyHigh": "warning",
    "PlexichatCpuHigh": "info",
    # ... and the issue's: targets missed are warnings; a failing public URL pages.
    "PlexichatErrorRatioAboveTarget": "warning",
    "PlexichatLatencyAboveTarget": "warning",
    "PlexichatCpuAboveTarget": "warning",
    "PlexichatMemoryHigh": "warning",
    "PlexichatCacheHitRateLow": "warning",
    "PlexichatDbPoolSaturated": "warning",
    "PlexichatPodCrashLooping": "warning",
    "PlexichatHpaAtMaxReplicas": "warning",
    "PlexichatCanaryWorseThanStable": "warning",
    "PlexichatSmokeProbeFailing": "critical",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not found (apt-get install prometheus); .ci/run installs it"
        if os.environ.get("PLEXICHAT_REQUIRE_PROMTOOL") == "1":
            pytest.fail(message + " and PLEXICHAT_REQUIRE_PROMTOOL=1 demands it")
        pytest.skip(message)
    return found


def settings_of(stack: str) -> StackSettings:
    config, secret_keys = stack_config(stack)
    return parse_stack_config(config, stack, secret_keys)


def rule_groups(stack: str) -> list[dict]:
    (rule,) = rendered(stack).of_type(PROMETHEUS_RULE)
    return rule.inputs["spec"]["groups"]


# ---------------------------------------------------------------------------------------------
# Synthetic series (promtool's expanding notation, one sample a minute)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def counter(metric: str, labels: dict[str, str], per_second: float) -> dict:
    return {"series": f"{metric}{{{_labels(labels)}}}", "values": f"0+{per_second * 60:g}x{MINUTES}"}


def gauge(metric: str, labels: dict[str, str], value: float) -> dict:
    return {"series": f"{metric}{{{_labels(labels)}}}", "values": f"{value:g}x{MINUTES}"}


def track_labels(track: str = "canary", workload: str = "web") -> dict[str, str]:
    return {"namespace": NS, r.WORKLOAD: workload, r.TRACK: track, "pod": f"plexichat-{workload}-{track}-1"}


def requests(s: StackSettings, per_second: float, error_ratio: float, track: str = "canary") -> list[dict]:
    m = s.monitoring.metrics
    labels = track_labels(track)
    return [
        counter(m.requests_total, {**labels, m.status_code_label: "200"}, per_second * (1 - error_ratio)),
        counter(m.requests_total, {**labels, m.status_code_label: "500"}, per_second * error_ratio),
    ]


def latency(s: StackSettings, threshold_seconds: float, above: bool, per_second: float) -> list[dict]:
    """Every request in the bucket just above (or just below) the threshold."""
    m = s.monitoring.metrics
    edges = [threshold_seconds * 0.9, threshold_seconds, threshold_seconds * 1.1]
    filled_from = 2 if above else 1
    series = [
        counter(
            f"{m.request_duration}_bucket", {**track_labels(), "le": f"{edge:g}"}, per_second if i >= filled_from else 0
        )
        for i, edge in enumerate(edges)
    ]
    series.append(counter(f"{m.request_duration}_bucket", {**track_labels(), "le": "+Inf"}, per_second))
    return series + requests(s, per_second, 0.0)


def busy(s: StackSettings) -> float:
    """A request rate comfortably over the minimum-traffic guard."""
    return s.monitoring.thresholds.min_requests_per_second * 10


def quiet(s: StackSettings) -> float:
    return s.monitoring.thresholds.min_requests_per_second / 2


@dataclass(frozen=True)
class Scenario:
    firing: Callable[[StackSettings], list[dict]]
    silent: tuple[Callable[[StackSettings], list[dict]], ...]
    """Just below the threshold, and (request-based alerts) above it under the traffic guard."""
    labels: dict[str, str]
    """Labels the firing alert carries besides alertname, severity and signal."""


POD = {"namespace": NS, "pod": "plexichat-web-canary-1"}
TRACK = {k: v for k, v in track_labels().items() if k != "pod"}


def _pod_usage(
    metric: str, resource: str, limit: float, percent: Callable[[StackSettings], float], factor: float
) -> Callable[[StackSettings], list[dict]]:
    def series(s: StackSettings) -> list[dict]:
        used = limit * percent(s) / 100 * factor
        container = {**POD, "container": "web"}
        usage = counter(metric, container, used) if resource == "cpu" else gauge(metric, container, used)
        return [usage, gauge("kube_pod_container_resource_limits", {**container, "resource": resource}, limit)]

    return series


def _error_ratio(percent: Callable[[StackSettings], float]) -> Scenario:
    return Scenario(
        firing=lambda s: requests(s, busy(s), percent(s) / 100 * ABOVE),
        silent=(
            lambda s: requests(s, busy(s), percent(s) / 100 * BELOW),
            lambda s: requests(s, quiet(s), min(1.0, percent(s) / 100 * 10)),
        ),
        labels=TRACK,
    )


def _latency(ms: Callable[[StackSettings], int]) -> Scenario:
    return Scenario(
        firing=lambda s: latency(s, ms(s) / 1000, True, busy(s)),
        silent=(lambda s: latency(s, ms(s) / 1000, False, busy(s)), lambda s: latency(s, ms(s) / 1000, True, quiet(s))),
        labels=TRACK,
    )


def _cache(factor: float, lookups: Callable[[StackSettings], float]) -> Callable[[StackSettings], list[dict]]:
    def series(s: StackSettings) -> list[dict]:
        hit_ratio = min(1.0, s.monitoring.thresholds.cache_hit_rate_min_percent / 100 * factor)
        exporter = {"instance": "redis-exporter:9121", "job": "redis"}
        return [
            counter(s.monitoring.metrics.cache_hits_total, exporter, lookups(s) * hit_ratio),
            counter(s.monitoring.metrics.cache_misses_total, exporter, lookups(s) * (1 - hit_ratio)),
        ]

    return series


def _pool(factor: float) -> Callable[[StackSettings], list[dict]]:
    def series(s: StackSettings) -> list[dict]:
        size = 20
        in_use = size * s.monitoring.thresholds.connection_utilisation_percent / 100 * factor
        return [
            gauge(s.monitoring.metrics.db_pool_in_use, track_labels(), in_use),
            gauge(s.monitoring.metrics.db_pool_max, track_labels(), size),
        ]

    return series


def _canary(
    stable_percent: Callable[[StackSettings], float],
    canary_percent: Callable[[StackSettings], float],
    canary_rate: Callable[[StackSettings], float] = busy,
) -> Callable[[StackSettings], list[dict]]:
    return lambda s: (
        requests(s, busy(s), stable_percent(s) / 100, track="stable")
        + requests(s, canary_rate(s), canary_percent(s) / 100, track="canary")
    )


def _target(s: StackSettings) -> float:
    return s.monitoring.thresholds.error_ratio_target_percent


def _factor(s: StackSettings) -> float:
    return s.monitoring.thresholds.canary_error_ratio_factor


CRASH = {**POD, "container": "web", "reason": "CrashLoopBackOff"}
HPA = {"namespace": NS, "horizontalpodautoscaler": "plexichat-web-canary", "job": "kube-state-metrics"}
SMOKE = {"job": r.SMOKE_JOB, "instance": "https://app.plexichat.com/readyz"}


def _hpa(current: int) -> Callable[[StackSettings], list[dict]]:
    return lambda s: [
        gauge("kube_horizontalpodautoscaler_status_current_replicas", HPA, current),
        gauge("kube_horizontalpodautoscaler_spec_max_replicas", HPA, 10),
    ]


SCENARIOS: dict[str, Scenario] = {
    "PlexichatErrorRatioCritical": _error_ratio(lambda s: s.monitoring.thresholds.error_ratio_critical_percent),
    "PlexichatErrorRatioAboveTarget": _error_ratio(_target),
    "PlexichatLatencyHigh": _latency(lambda s: s.monitoring.thresholds.latency_warning_ms),
    "PlexichatLatencyAboveTarget": _latency(lambda s: s.monitoring.thresholds.latency_target_ms),
    "PlexichatCanaryWorseThanStable": Scenario(
        # Canary misses the target and is well over factor x stable.
        firing=_canary(lambda s: _target(s) / 4, lambda s: max(_target(s), _factor(s) * _target(s) / 4) * 1.1),
        silent=(
            # Misses the target, but stable is nearly as bad: not the canary's fault.
            _canary(_target, lambda s: _factor(s) * _target(s) * BELOW),
            # Much worse than stable, but within the target.
            _canary(lambda s: _target(s) / (4 * _factor(s)), lambda s: _target(s) * BELOW),
            # Bad, but too few requests to judge.
            _canary(lambda s: _target(s) / 4, lambda s: 50, canary_rate=quiet),
        ),
        labels=TRACK,
    ),
    "PlexichatCpuHigh": Scenario(
        _pod_usage(
            "container_cpu_usage_seconds_total", "cpu", 1, lambda s: s.monitoring.thresholds.cpu_info_percent, ABOVE
        ),
        (
            _pod_usage(
                "container_cpu_usage_seconds_total", "cpu", 1, lambda s: s.monitoring.thresholds.cpu_info_percent, BELOW
            ),
        ),
        POD,
    ),
    "PlexichatCpuAboveTarget": Scenario(
        _pod_usage(
            "container_cpu_usage_seconds_total", "cpu", 1, lambda s: s.monitoring.thresholds.cpu_target_percent, ABOVE
        ),
        (
            _pod_usage(
                "container_cpu_usage_seconds_total",
                "cpu",
                1,
                lambda s: s.monitoring.thresholds.cpu_target_percent,
                BELOW,
            ),
        ),
        POD,
    ),
    "PlexichatMemoryHigh": Scenario(
        _pod_usage(
            "container_memory_working_set_bytes",
            "memory",
            2**30,
            lambda s: s.monitoring.thresholds.memory_target_percent,
            ABOVE,
        ),
        (
            _pod_usage(
                "container_memory_working_set_bytes",
                "memory",
                2**30,
                lambda s: s.monitoring.thresholds.memory_target_percent,
                BELOW,
            ),
        ),
        POD,
    ),
    # A hit rate alerts when it falls: "above the threshold" is a hit rate just under it.
    "PlexichatCacheHitRateLow": Scenario(_cache(BELOW, busy), (_cache(ABOVE, busy), _cache(BELOW, quiet)), {}),
    "PlexichatDbPoolSaturated": Scenario(_pool(ABOVE), (_pool(BELOW),), TRACK),
    "PlexichatPodCrashLooping": Scenario(
        lambda s: [gauge("kube_pod_container_status_waiting_reason", CRASH, 1)],
        (lambda s: [gauge("kube_pod_container_status_waiting_reason", CRASH, 0)],),
        {"namespace": NS, "pod": CRASH["pod"], "container": "web"},
    ),
    "PlexichatHpaAtMaxReplicas": Scenario(_hpa(10), (_hpa(9),), HPA),
    "PlexichatSmokeProbeFailing": Scenario(
        lambda s: [gauge("probe_success", SMOKE, 0)], (lambda s: [gauge("probe_success", SMOKE, 1)],), SMOKE
    ),
}


# ---------------------------------------------------------------------------------------------
# promtool test file


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)m", duration)
    assert match, f"for: {duration!r} should be whole minutes"
    return int(match[1])


def _expand(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), template)


def _case(rule: dict, series: list[dict], minutes: int, fires: bool) -> dict:
    expected = []
    if fires:
        labels = {**SCENARIOS[rule["alert"]].labels, **rule["labels"]}
        expected = [
            {"exp_labels": labels, "exp_annotations": {k: _expand(v, labels) for k, v in rule["annotations"].items()}}
        ]
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": rule["alert"], "exp_alerts": expected}],
    }


def promtool_tests(stack: str) -> list[dict]:
    s = settings_of(stack)
    cases = []
    for group in rule_groups(stack):
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            scenario, hold = SCENARIOS[rule["alert"]], _minutes(rule["for"])
            firing = scenario.firing(s)
            # A rate over 5m of a counter that starts at 0 reads low until its window is full:
            # the condition holds from about minute 5, so `for:` has passed at hold + 7.
            cases.append(_case(rule, firing, hold + 7, fires=True))
            cases.append(_case(rule, firing, hold - 2, fires=False))  # not for long enough yet
            cases += [_case(rule, silent(s), hold + 7, fires=False) for silent in scenario.silent]
    return cases


class _NoAliases(yaml.SafeDumper):
    """Plain YAML: the same series list used by two cases is written out twice, not aliased."""

    def ignore_aliases(self, data) -> bool:
        return True


def _write(tmp_path, stack: str) -> tuple[str, str]:
    rules = tmp_path / f"{stack}-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(stack)}, sort_keys=False))
    tests = tmp_path / f"{stack}-tests.yaml"
    tests.write_text(
        yaml.dump(
            {
                "rule_files": [rules.name],
                "evaluation_interval": "1m",
                "tests": promtool_tests(stack),
            },
            Dumper=_NoAliases,
            sort_keys=False,
        )
    )
    return str(rules), str(tests)


def _dashboard_queries(tmp_path, stack: str) -> str:
    """The dashboard's queries as recording rules, so promtool parses every one of them."""
    (config_map,) = [
        c
        for c in rendered(stack).of_type("kubernetes:core/v1:ConfigMap")
        if (c.inputs["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"
    ]
    (board,) = (json.loads(text) for text in config_map.inputs["data"].values())
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    path = tmp_path / f"{stack}-dashboard-queries.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)],
                    }
                ]
            }
        )
    )
    return str(path)


@pytest.mark.external
def test_promtool_checks_every_stacks_rules_and_dashboard_queries(tmp_path):
    files = [f for stack in STACKS for f in (_write(tmp_path, stack)[0], _dashboard_queries(tmp_path, stack))]
    result = subprocess.run([promtool(), "check", "rules", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files)


@pytest.mark.external
def test_every_alert_fires_above_and_stays_silent_below_its_threshold(tmp_path):
    # Stacks whose rules and monitoring settings are equal need proving once (keeps CI fast).
    distinct = {json.dumps([rule_groups(s), settings_of(s).monitoring.model_dump()], sort_keys=True): s for s in STACKS}
    files = [_write(tmp_path, stack)[1] for stack in distinct.values()]  # failures name the stack
    runs = [
        subprocess.Popen(
            [promtool(), "test", "rules", f], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
        )
        for f in files
    ]
    for run in runs:  # one process per file, side by side
        output = run.communicate()[0]
        assert run.returncode == 0 and "SUCCESS" in output, output


@pytest.mark.parametrize("stack", STACKS)
def test_every_alert_has_a_scenario_and_the_runbooks_severity(stack):
    alerts = {rule["alert"]: rule for g in rule_groups(stack) for rule in g["rules"] if "alert" in rule}
    probed = settings_of(stack).monitoring.smoke_probe
    expected = set(EXPECTED_SEVERITY) - (set() if probed else {"PlexichatSmokeProbeFailing"})
    assert set(alerts) == expected
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] == EXPECTED_SEVERITY[name], name


@pytest.mark.external
def test_promtool_notices_a_broken_rule(tmp_path):
    """The harness can fail: with the critical threshold doubled, the 'just above' case is silent."""
    stack = "prod"
    _, tests = _write(tmp_path, stack)
    test_file = yaml.safe_load((tmp_path / f"{stack}-tests.yaml").read_text())
    test_file["tests"] = [
        t for t in test_file["tests"] if t["alert_rule_test"][0]["alertname"] == "PlexichatErrorRatioCritical"
    ]
    (tmp_path / f"{stack}-tests.yaml").write_text(yaml.dump(test_file, Dumper=_NoAliases))
    rules_path = tmp_path / f"{stack}-rules.yaml"
    groups = yaml.safe_load(rules_path.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == "PlexichatErrorRatioCritical":
                rule["expr"] = rule["expr"].replace("> 0.05", "> 0.1")
    rules_path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", tests], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "PlexichatErrorRatioCritical" in result.stdout + result.stderr
