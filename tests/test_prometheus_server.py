"""tests/prometheus_server.py works: a real Prometheus scraping the fake exporter records the
project's SLIs per track as the traffic the test drives."""

from __future__ import annotations

import pytest

from components.config.monitoring import MetricNames, MonitoringSettings
from components.observability.alert_rules import TRACK, slis
from tests.prometheus_server import FakeExporter

WINDOW = MonitoringSettings(rule_window="5s")
"""A short window (five scrapes), so the rates are whole within seconds."""


def of_track(found: list[tuple[dict[str, str], float]], track: str) -> float:
    (value,) = (value for labels, value in found if labels[TRACK] == track)
    return value


@pytest.mark.external
def test_prometheus_records_each_tracks_slis_from_the_driven_traffic(prometheus):
    server, sli = prometheus(WINDOW), slis(WINDOW)
    server.exporter.serve("canary", rps=10, error_ratio=0.05, latency_seconds=0.08)
    server.exporter.serve("stable", rps=30, latency_seconds=0.3)

    # The rates are whole once the window is full of samples.
    for track, rps in (("canary", 10), ("stable", 30)):
        server.wait_until(f'{sli.requests}{{{TRACK}="{track}"}}', lambda v, rps=rps: v == pytest.approx(rps, rel=0.05))

    error_ratio = server.query(sli.error_ratio)
    assert of_track(error_ratio, "canary") == pytest.approx(0.05, rel=0.01)
    assert of_track(error_ratio, "stable") == 0  # no 5xx series at all: the rule's `or 0 * ...`

    p99 = server.query(sli.p99)
    assert 0.05 < of_track(p99, "canary") <= 0.1  # every request took 80 ms: the (50 ms, 100 ms] bucket
    assert 0.25 < of_track(p99, "stable") <= 0.5


def test_the_exporters_counters_carry_on_through_a_change_and_restart_after_a_stop():
    exporter = FakeExporter(MetricNames())
    try:
        exporter.serve("canary", rps=1000, error_ratio=0.5)
        first = counters(exporter)
        exporter.set("canary", error_ratio=0.0)
        second = counters(exporter)
        assert second["200"] >= first["200"] > 0 and second["500"] >= first["500"] > 0
        exporter.stop_track("canary")
        assert counters(exporter) == {}
        exporter.serve("canary", rps=10)
        assert set(counters(exporter)) == {"200"}  # no 5xx served, no 5xx series
    finally:
        exporter.close()


def counters(exporter: FakeExporter) -> dict[str, float]:
    """The canary's request counters by status code, as the exporter exposes them now."""
    m = exporter.metrics
    found = {}
    for line in exporter.exposition().splitlines():
        if line.startswith(m.requests_total + "{") and f'{TRACK}="canary"' in line:
            code = line.split(f'{m.status_code_label}="')[1][:3]
            found[code] = float(line.rsplit(" ", 1)[1])
    return found
