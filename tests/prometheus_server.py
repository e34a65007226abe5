"""A real Prometheus for tests: the `prometheus` binary (Debian's package, 2.x) scraping an
in-test exporter every second and evaluating the project's recording rules as the program
renders them, so a test can drive traffic and read back what alerts and release analysis read.

    def test_something(prometheus):
        server = prometheus(MonitoringSettings(rule_window="10s"))
        server.exporter.serve("canary", rps=10, error_ratio=0.05)
        server.wait_until(f'{REQUESTS}{{{TRACK}="canary"}}', lambda v: v == pytest.approx(10, rel=0.1))

Without the binary the test skips; with PLEXICHAT_REQUIRE_PROMETHEUS=1 (set by .ci/run) it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components.config.monitoring import MetricNames, MonitoringSettings
from components.observability.alert_rules import TRACK, WORKLOAD, recording_rules
from plexictl.release.prometheus import instant
from tests.tools import free_port, missing

NAMESPACE = "plexichat"
BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""The exporter's histogram buckets (the Prometheus client libraries' defaults), then +Inf."""
STARTUP_TIMEOUT_SECONDS = 20
JOB = "app"
"""The scrape job, hence the `job` label of the exporter's series."""


# --- the exporter -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """What one track serves: every request takes `latency_seconds`; `error_ratio` of them 500."""

    rps: float
    error_ratio: float = 0.0
    latency_seconds: float = 0.05


@dataclass
class _Series:
    """A track's counters: what it had served when its traffic last changed, plus since then."""

    traffic: Traffic
    since: float
    ok: float = 0.0
    errors: float = 0.0

    def at(self, now: float) -> tuple[float, float]:
        served = self.traffic.rps * (now - self.since)
        return self.ok + served * (1 - self.traffic.error_ratio), self.errors + served * self.traffic.error_ratio

    def change(self, traffic: Traffic, now: float) -> None:
        self.ok, self.errors = self.at(now)  # counters never go down
        self.traffic, self.since = traffic, now


class FakeExporter:
    """An app's `/metrics` on 127.0.0.1: per workload and track, `requests_total` by status code
    and the `request_duration` histogram, named and labelled as the pods' series are after the
    PodMonitor's relabelling. Counters grow in real time (computed from the clock at each
    scrape), so their rates are steady. Thread-safe: the test changes traffic while Prometheus
    scrapes."""

    def __init__(self, metrics: MetricNames, namespace: str = NAMESPACE, workload: str = "web") -> None:
        self.metrics, self.namespace, self.workload = metrics, namespace, workload
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        """host:port to scrape."""

    def serve(
        self,
        track: str,
        rps: float,
        error_ratio: float = 0.0,
        latency_seconds: float = 0.05,
        workload: str | None = None,
    ) -> None:
        """Start the track serving this traffic, or change what it serves (counters carry on)."""
        traffic = Traffic(rps, error_ratio, latency_seconds)
        key = (workload or self.workload, track)
        with self._lock:
            now = time.monotonic()
            if key in self._series:
                self._series[key].change(traffic, now)
            else:
                self._series[key] = _Series(traffic, now)

    def set(self, track: str, workload: str | None = None, **changes: float) -> None:
        """Change some of what a serving track does: `set("canary", error_ratio=0.3)`."""
        with self._lock:
            traffic = self._series[(workload or self.workload, track)].traffic
        self.serve(track, **{**dataclasses.asdict(traffic), **changes}, workload=workload)

    def stop_track(self, track: str, workload: str | None = None) -> None:
        """The track's pods are gone: its series vanish (Prometheus marks them stale). Serving
        it again starts from zero, like a new pod."""
        with self._lock:
            self._series.pop((workload or self.workload, track), None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def exposition(self) -> str:
        """The Prometheus text format of every serving track, now."""
        m = self.metrics
        with self._lock:
            now = time.monotonic()
            counts = {key: (s.traffic.latency_seconds, *s.at(now)) for key, s in self._series.items()}
        lines = [f"# TYPE {m.requests_total} counter"]
        for (workload, track), (_, ok, errors) in counts.items():
            labels = self._labels(workload, track)
            # As in the client libraries, a status code has a series once it has been served:
            # a track that never failed has no 5xx series at all.
            for code, count in (("200", ok), ("500", errors)):
                if count > 0:
                    lines.append(f'{m.requests_total}{{{labels},{m.status_code_label}="{code}"}} {count!r}')
        lines.append(f"# TYPE {m.request_duration} histogram")
        for (workload, track), (latency, ok, errors) in counts.items():
            labels, total = self._labels(workload, track), ok + errors
            buckets = [(f"{le:g}", total if latency <= le else 0.0) for le in BUCKETS_SECONDS] + [("+Inf", total)]
            lines += [f'{m.request_duration}_bucket{{{labels},le="{le}"}} {n!r}' for le, n in buckets]
            lines.append(f"{m.request_duration}_sum{{{labels}}} {total * latency!r}")
            lines.append(f"{m.request_duration}_count{{{labels}}} {total!r}")
        return "\n".join(lines) + "\n"

    def _labels(self, workload: str, track: str) -> str:
        return f'namespace="{self.namespace}",{WORKLOAD}="{workload}",{TRACK}="{track}"'

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # one line a second per scrape would drown pytest's output

        return Handler


# --- queries ------------------------------------------------------------------------------------


# --- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prometheus:
    url: str
    exporter: FakeExporter
    rules: list[dict]
    """The recording rules it evaluates, as `recording_rules` rendered them."""

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        return instant(self.url, promql)

    def wait_until(
        self, promql: str, check: Callable[[float], bool], timeout_seconds: float = 30
    ) -> list[tuple[dict[str, str], float]]:
        """Poll `promql` until it has results and `check` holds for every value; return them."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            found = self.query(promql)
            if found and all(check(value) for _, value in found):
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"after {timeout_seconds}s, {promql} is {found}")
            time.sleep(0.5)


def _binaries() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        missing(
            "prometheus (with promtool)", "PLEXICHAT_REQUIRE_PROMETHEUS", "apt-get install prometheus; .ci/run does"
        )
    return prometheus, promtool


def _write_config(workdir: Path, exporter: FakeExporter, rules: list[dict], promtool: str) -> Path:
    # The rules' own group interval is the stack's scrape interval (30s by default); here one
    # evaluation a second, like the scrapes, so a test waits seconds rather than minutes.
    rule_file = workdir / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "plexichat-slis", "rules": rules}]}, sort_keys=False))
    checked = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise AssertionError(f"promtool rejects the recording rules:\n{checked.stdout}{checked.stderr}")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file)],
        # honor_labels: the exporter's `namespace` label is the pods' namespace, keep it.
        "scrape_configs": [
            {"job_name": JOB, "honor_labels": True, "static_configs": [{"targets": [exporter.address]}]}
        ],
    }
    path = workdir / "prometheus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready after {STARTUP_TIMEOUT_SECONDS}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_prometheus(monitoring: MonitoringSettings, namespace: str = NAMESPACE) -> Iterator[Prometheus]:
    """A fresh Prometheus and its exporter, both stopped on exit; it has scraped the (still
    empty) exporter once when this returns."""
    prometheus, promtool = _binaries()
    rules = recording_rules(monitoring, namespace)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prometheus-")))
        exporter = FakeExporter(monitoring.metrics, namespace)
        stack.callback(exporter.close)
        address = f"127.0.0.1:{free_port()}"
        log = workdir / "prometheus.log"
        command = [
            prometheus,
            f"--config.file={_write_config(workdir, exporter, rules, promtool)}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
        ]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stack.enter_context(log.open("w")))
        stack.callback(_stop, process)
        _wait_ready(f"http://{address}", process, log)
        server = Prometheus(f"http://{address}", exporter, rules)
        # Prometheus applies its first targets about 5 s after start (a fixed discovery
        # throttle): a test's clock starts at the first scrape, not before.
        server.wait_until(f'up{{job="{JOB}"}}', lambda up: up == 1, STARTUP_TIMEOUT_SECONDS)
        yield server


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def prometheus() -> Iterator[Callable[..., Prometheus]]:
    """Start a Prometheus: `prometheus(monitoring, namespace="plexichat")`. Every one started
    stops when the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda monitoring, namespace=NAMESPACE: stack.enter_context(running_prometheus(monitoring, namespace))
