"""The metric gate, without Prometheus: settings, defaults from the alert thresholds, and the
judgement of one look (components/release/analysis.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config.monitoring import AlertThresholds
from components.config.release import CanaryAnalysis, Verification
from components.release.analysis import Gate, TrackMetrics, Verdict, gate, judge
from tests.conftest import render_edited

GATE = Gate(
    interval_seconds=60,
    min_requests=100,
    max_failed_checks=2,
    max_error_ratio=0.01,
    max_p99_seconds=0.5,
    timeout_seconds=3600,
    max_error_ratio_vs_stable=2.0,
)
HEALTHY = TrackMetrics(requests=1000, error_ratio=0.001, p99_seconds=0.2)


def test_defaults_come_from_the_alert_thresholds():
    thresholds = AlertThresholds(error_ratio_target_percent=2, latency_target_ms=300, canary_error_ratio_factor=3)
    resolved = gate(CanaryAnalysis(), thresholds)
    assert (resolved.max_error_ratio, resolved.max_p99_seconds, resolved.max_error_ratio_vs_stable) == (0.02, 0.3, 3)
    assert (resolved.interval_seconds, resolved.timeout_seconds, resolved.min_requests) == (300, 7200, 100)
    explicit = gate(CanaryAnalysis(max_error_ratio=0.05, interval="30s", timeout="1h"), thresholds)
    assert (explicit.max_error_ratio, explicit.interval_seconds, explicit.timeout_seconds) == (0.05, 30, 3600)
    assert gate(Verification(), thresholds).max_error_ratio_vs_stable is None  # nothing to compare with


@pytest.mark.parametrize(
    "candidate, baseline, verdict, reason",
    [
        (HEALTHY, HEALTHY, Verdict.PASS, "error ratio 0.0010 <= 0.01"),
        (TrackMetrics(1000, 0.02, 0.2), HEALTHY, Verdict.FAIL, "error ratio 0.0200 > 0.01"),
        (TrackMetrics(1000, 0.001, 0.9), HEALTHY, Verdict.FAIL, "p99 0.900s > 0.5s"),
        (TrackMetrics(99, 0.0, 0.1), HEALTHY, Verdict.WAIT, "too little traffic: 99 of 100"),
        (TrackMetrics(None, None, None), HEALTHY, Verdict.WAIT, "no requests recorded"),
        (TrackMetrics(500, None, 0.1), HEALTHY, Verdict.WAIT, "no error ratio or p99"),
        (TrackMetrics(500, 0.001, float("nan")), HEALTHY, Verdict.WAIT, "no error ratio or p99"),
        # 0.008 passes the absolute limit but is over 2x stable's 0.001 and above the floor.
        (TrackMetrics(1000, 0.008, 0.2), HEALTHY, Verdict.FAIL, "> 2 x stable's 0.0010"),
        # One error in 100 requests while stable has none: no failure (under 2 errors).
        (TrackMetrics(100, 0.01, 0.2), TrackMetrics(1000, 0.0, 0.2), Verdict.PASS, "<= 0.01"),
        # Stable too quiet to compare with: only the absolute checks apply.
        (TrackMetrics(1000, 0.008, 0.2), TrackMetrics(50, 0.0, 0.2), Verdict.PASS, "<= 0.01"),
    ],
)
def test_one_look_is_judged_against_the_gate_and_stable(candidate, baseline, verdict, reason):
    judgement = judge(candidate, GATE, baseline)
    assert judgement.verdict is verdict
    assert reason in judgement.describe()


numbers = st.one_of(st.none(), st.just(float("nan")), st.floats(min_value=0, max_value=1e6))


@given(numbers, numbers, numbers, numbers)
def test_missing_or_too_little_data_is_never_a_pass(requests, error_ratio, p99, stable_ratio):
    judgement = judge(TrackMetrics(requests, error_ratio, p99), GATE, TrackMetrics(1000, stable_ratio, 0.1))
    if judgement.verdict is Verdict.PASS:
        assert requests is not None and requests >= GATE.min_requests
        assert error_ratio is not None and error_ratio <= GATE.max_error_ratio
        assert p99 is not None and p99 <= GATE.max_p99_seconds


@given(st.integers(min_value=100, max_value=100_000), st.integers(min_value=0, max_value=1))
def test_a_single_error_never_fails_the_comparison_with_stable(requests, errors):
    judgement = judge(TrackMetrics(requests, errors / requests, 0.1), GATE, TrackMetrics(10_000, 0.0, 0.1))
    assert not any("stable's" in reason for reason in judgement.reasons)


@pytest.mark.parametrize(
    "analysis, key, words",
    [
        ({"interval": "5 minutes"}, "plexichat:release.canary.analysis.interval", "a duration such as 30s"),
        ({"interval": "10m", "timeout": "5m"}, "plexichat:release.canary.analysis.timeout", "at least the interval"),
        ({"maxErrorRatio": 2}, "plexichat:release.canary.analysis.maxErrorRatio", "a ratio from 0.0001 to 1"),
        ({"minRequests": 0}, "plexichat:release.canary.analysis.minRequests", "from 1 to"),
        ({"maxFailedChecks": "two"}, "plexichat:release.canary.analysis.maxFailedChecks", "a number of checks"),
        ({"intervall": "5m"}, "plexichat:release.canary.analysis.intervall", "allowed here: interval, maxErrorRatio"),
    ],
)
def test_an_invalid_analysis_block_is_one_config_error_naming_the_key(analysis, key, words):
    import pulumi

    def edit(config):
        config["plexichat:release"]["canary"]["analysis"] = analysis

    with pytest.raises(pulumi.RunError) as raised:
        render_edited("prod", edit)
    (line,) = [line for line in str(raised.value).splitlines() if line.strip().startswith(f"- {key}:")]
    assert words in line


def test_analysis_needs_a_step_plan():
    import pulumi

    def edit(config):
        canary = config["plexichat:release"]["canary"]
        canary.pop("steps")
        canary["weight"] = 10
        canary["analysis"] = {"interval": "1m"}

    with pytest.raises(pulumi.RunError, match=r"plexichat:release\.canary\.analysis: needs a step plan"):
        render_edited("prod", edit)


def test_a_rule_window_renames_the_recording_rules_the_alerts_and_the_dashboard_read():
    from components.config.monitoring import MonitoringSettings
    from components.observability import alert_rules, dashboard

    monitoring = MonitoringSettings(rule_window="2m")
    rules = alert_rules.recording_rules(monitoring, "plexichat")
    assert [r["record"] for r in rules][:3] == [
        "plexichat:http_requests:rate2m",
        "plexichat:http_errors:rate2m",
        "plexichat:http_error_ratio:rate2m",
    ]
    assert all("[2m]" in r["expr"] for r in rules if "rate(" in r["expr"])
    alert_exprs = " ".join(a.expr for a in alert_rules.alerts(monitoring, "plexichat"))
    assert "rate2m" in alert_exprs and "rate5m" not in alert_exprs
    assert "rate5m" not in str(dashboard.dashboard(monitoring, "plexichat", "prod"))
