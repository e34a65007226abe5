"""Reading a track's recording rules from Prometheus's HTTP API, for release analysis.

The queries name the same recording rules the PrometheusRule renders and the alerts read
(`alert_rules.Slis`), filtered to one namespace, workload and track: one definition of "error
ratio" and "p99" for paging and for releasing.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from components.config.base import duration_seconds
from components.observability.alert_rules import TRACK, WORKLOAD, Slis
from components.release.analysis import TrackMetrics

TIMEOUT_SECONDS = 10


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered with an error: no judgement can be made."""


def instant(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    """An instant query: (labels, value) per series."""
    query = urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query?{query}", timeout=TIMEOUT_SECONDS) as response:
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise PrometheusUnavailable(f"{url}: {getattr(error, 'reason', error)}") from None
    if body.get("status") != "success":
        raise PrometheusUnavailable(f"{url}: {body.get('error', 'query failed')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    return [(series["metric"], float(series["value"][1])) for series in data["result"]]


@dataclass(frozen=True)
class TrackQuery:
    """Where a workload's tracks are measured: the namespace and the recording rules' window."""

    url: str
    slis: Slis
    namespace: str
    workload: str = "web"

    def metrics(self, track: str) -> TrackMetrics:
        """The track's requests in the window, error ratio and p99; None where there is no series."""
        selector = f'{{namespace="{self.namespace}", {WORKLOAD}="{self.workload}", {TRACK}="{track}"}}'
        rate = self._one(f"sum({self.slis.requests}{selector})")
        return TrackMetrics(
            requests=None if rate is None else rate * duration_seconds(self.slis.window),
            error_ratio=self._one(f"max({self.slis.error_ratio}{selector})"),
            p99_seconds=self._one(f"max({self.slis.p99}{selector})"),
        )

    def _one(self, promql: str) -> float | None:
        values = [value for _, value in instant(self.url, promql) if not math.isnan(value)]
        return values[0] if values else None
