"""`plexictl release run` against a real Prometheus (tests/prometheus_server.py) evaluating the
recording rules as the program renders them, on a git copy of the project. Each deploy is the
offline engine rendering the stack and checking the release invariants."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from components.config.monitoring import MonitoringSettings
from components.observability.alert_rules import TRACK, slis
from plexictl import release as rc
from plexictl.offline import ROOT, run_program
from plexictl.release import gitlog
from plexictl.release.loop import ReleaseRun
from plexictl.release.stack_file import round_trip_yaml
from tests.prometheus_server import running_prometheus
from tests.release_state import commit, pin_release, pinned_version, project_copy

pytestmark = pytest.mark.external

WINDOW = "5s"
"""The rule window of the server and of the stacks under test: five scrapes."""
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
GATE = "interval: {interval}\n    minRequests: 20\n    maxFailedChecks: 2\n    timeout: {timeout}"


@pytest.fixture(scope="module")
def server():
    with running_prometheus(MonitoringSettings(rule_window=WINDOW)) as prometheus:
        yield prometheus


@pytest.fixture(autouse=True)
def git_identity(monkeypatch):
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "release-bot")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "release-bot@example.com")


def traffic(server, **tracks: dict) -> None:
    """Make the exporter serve exactly these tracks, and wait until the rules show it."""
    for track in ("stable", "canary", "blue", "green"):
        server.exporter.stop_track(track)  # fresh series: nothing left over from another test
    for track, served in tracks.items():
        server.exporter.serve(track, **served)
    rules = slis(MonitoringSettings(rule_window=WINDOW))
    for track, served in tracks.items():
        selector = f'{{{TRACK}="{track}"}}'
        server.wait_until(f"{rules.requests}{selector}", lambda v, rps=served["rps"]: abs(v - rps) < rps * 0.15)
        expected = served.get("error_ratio", 0.0)
        server.wait_until(f"{rules.error_ratio}{selector}", lambda v, e=expected: abs(v - e) <= max(0.01, e * 0.3))


def stack_with(tmp_path, stack: str, release: str) -> pathlib.Path:
    """A git copy of the project whose `stack` has this release and the test's rule window."""
    project = project_copy(tmp_path, git=True)
    path = project / f"Pulumi.{stack}.yaml"
    pin_release(path, stack, release)
    yaml = round_trip_yaml()
    document = yaml.load(path.read_text())
    document["config"].setdefault("plexichat:monitoring", {})["ruleWindow"] = WINDOW
    with path.open("w") as handle:
        yaml.dump(document, handle)
    commit(project, f"{stack}: the release under test")
    return project


class Deployer:
    """The injected deploy: render the stack as its file now says and check the invariants."""

    def __init__(self, fail_first: int = 0, on_deploy=None) -> None:
        self.weights: list[dict[str, int]] = []
        self.fail_first, self.on_deploy = fail_first, on_deploy

    def __call__(self, stack: str, project_dir: pathlib.Path) -> bool:
        rendering = run_program(stack, root=project_dir)
        (service,) = [r for r in rendering.of_type(VIRTUAL_SERVICE) if r.name.startswith("web")]
        for route in service.inputs["spec"]["http"]:
            assert sum(d.get("weight", 100) for d in route["route"]) == 100, route
        self.weights.append({t: i["weightPercent"] for t, i in rendering.outputs["tracks"].items()})
        if self.on_deploy:
            self.on_deploy(self.weights[-1])
        if self.fail_first > 0:
            self.fail_first -= 1
            return False
        return True


def loop(project, stack: str, server=None, deployer=None, url=None) -> tuple[int, list[str]]:
    lines: list[str] = []
    run = ReleaseRun(stack, project, prometheus_url=url or server.url, applier=deployer, out=lines.append)
    return run.run(), lines


def release_of(project, stack: str) -> dict:
    import yaml

    return yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"][rc.RELEASE_KEY]


def decisions(project, stack: str) -> list[str]:
    return [d.decision for d in reversed(gitlog.decisions(project / f"Pulumi.{stack}.yaml"))]


STABLE, CANARY_VERSION = pinned_version("v1.4.2"), pinned_version("v1.5.0")
"""The canary tests run on prod, a production stack: versions pinned by digest."""
CANARY = f"""\
strategy: canary
stable: {STABLE}
canary:
  version: {CANARY_VERSION}
  weight: 0
  steps: [10, 50, 100]
  analysis:
    {{gate}}
"""


def canary(timeout: str = "2m", extra: str = "", interval: str = "2s") -> str:
    return CANARY.format(gate=GATE.format(timeout=timeout, interval=interval) + extra)


HEALTHY = {"rps": 20, "error_ratio": 0.0, "latency_seconds": 0.05}


def test_a_healthy_canary_promotes_through_every_step(server, tmp_path):
    traffic(server, stable=HEALTHY, canary=HEALTHY)
    project = stack_with(tmp_path, "prod", canary())
    deployer = Deployer()
    code, lines = loop(project, "prod", server, deployer)
    assert code == 0, "\n".join(lines)
    assert release_of(project, "prod") == {"strategy": "rolling", "version": CANARY_VERSION}
    assert decisions(project, "prod") == ["start", "next", "next", "promote"]
    assert [w.get("canary") for w in deployer.weights] == [10, 50, 100, None]
    log = gitlog.git(project / "Pulumi.prod.yaml", "log", "-1", "--format=%B")
    assert "step 3 of 3 at 100%: pass" in log and "canary: " in log and "errors 0.00%" in log
    assert "| step 1 of 3 at 10% | canary | 10% |" in lines[-1]  # the Markdown report


def test_an_error_spike_at_step_2_aborts_to_weight_0_and_leaves_stable(server, tmp_path):
    traffic(server, stable=HEALTHY, canary=HEALTHY)
    # 4 s: the first look at step 2 sees the spike (scrape and rule evaluation lag ~2 s).
    project = stack_with(tmp_path, "prod", canary(interval="4s"))

    def spike(weights):
        if weights.get("canary") == 50:
            server.exporter.set("canary", error_ratio=0.4)

    code, lines = loop(project, "prod", server, Deployer(on_deploy=spike))
    assert code == 4, "\n".join(lines)
    release = release_of(project, "prod")
    assert release["stable"] == STABLE and release["canary"]["weight"] == 0
    assert decisions(project, "prod") == ["start", "next", "abort"]
    assert "2 failed checks at step 2 of 3 at 50%" in gitlog.git(
        project / "Pulumi.prod.yaml", "log", "-1", "--format=%B"
    )
    # Run again: an aborted canary is not started again.
    code, lines = loop(project, "prod", server)
    assert code == 4 and "was aborted by analysis" in "\n".join(lines)


def test_a_latency_regression_aborts(server, tmp_path):
    traffic(server, stable=HEALTHY, canary={**HEALTHY, "latency_seconds": 2.0})
    project = stack_with(tmp_path, "prod", canary())
    code, lines = loop(project, "prod", server, Deployer())
    assert code == 4 and decisions(project, "prod") == ["start", "abort"]
    assert any("p99" in line and "> 0.5s" in line for line in lines)


def test_a_canary_failing_relative_to_stable_aborts(server, tmp_path):
    traffic(server, stable={**HEALTHY, "error_ratio": 0.02}, canary={**HEALTHY, "error_ratio": 0.12})
    # The absolute limit (0.2) passes; 0.12 is over 2x stable's 0.02 and over the floor.
    project = stack_with(tmp_path, "prod", canary(extra="\n    maxErrorRatio: 0.2\n    maxErrorRatioVsStable: 2"))
    code, lines = loop(project, "prod", server, Deployer())
    assert code == 4, "\n".join(lines)
    assert any("x stable's" in line for line in lines)


def test_low_traffic_never_passes_and_ends_in_abort_at_the_timeout(server, tmp_path):
    traffic(server, stable=HEALTHY, canary={**HEALTHY, "rps": 1})  # 5 requests a window < 20
    project = stack_with(tmp_path, "prod", canary(timeout="8s"))
    code, lines = loop(project, "prod", server, Deployer())
    assert code == 4
    assert decisions(project, "prod") == ["start", "abort"]
    assert any("too little traffic" in line for line in lines)
    assert "timeout at step 1 of 3" in gitlog.git(project / "Pulumi.prod.yaml", "log", "-1", "--format=%B")


def test_prometheus_down_never_promotes(tmp_path):
    project = stack_with(tmp_path, "prod", canary(timeout="6s"))
    code, lines = loop(project, "prod", url="http://127.0.0.1:9", deployer=Deployer())
    assert code == 4 and "promote" not in decisions(project, "prod")
    assert any("Prometheus unavailable" in line for line in lines)


def test_a_run_killed_midway_resumes_from_the_file_and_a_stale_lock_is_taken_over(server, tmp_path):
    traffic(server, stable=HEALTHY, canary=HEALTHY)
    project = stack_with(tmp_path, "prod", canary())

    class Killed(BaseException):
        pass

    def kill_at_50(weights):
        if weights.get("canary") == 50:
            raise Killed

    with pytest.raises(Killed):
        loop(project, "prod", server, Deployer(on_deploy=kill_at_50))
    assert release_of(project, "prod")["canary"]["weight"] == 50  # committed before the kill
    # A kill -9 leaves its lock behind: a lock whose process is gone is taken over.
    git_dir = pathlib.Path(gitlog.git(project / "Pulumi.prod.yaml", "rev-parse", "--absolute-git-dir").strip())
    (git_dir / "plexictl-release-prod.lock").write_text("999999")
    code, lines = loop(project, "prod", server, Deployer())
    assert code == 0, "\n".join(lines)
    assert decisions(project, "prod") == ["start", "next", "next", "promote"]


def test_a_second_loop_on_the_same_stack_is_refused(tmp_path):
    project = stack_with(tmp_path, "prod", canary())
    git_dir = pathlib.Path(gitlog.git(project / "Pulumi.prod.yaml", "rev-parse", "--absolute-git-dir").strip())
    (git_dir / "plexictl-release-prod.lock").write_text(str(os.getpid()))  # a live holder
    with pytest.raises(rc.ReleaseError, match="another release loop"):
        loop(project, "prod", url="http://127.0.0.1:9")


def test_a_blue_green_verify_failure_flips_back(server, tmp_path):
    traffic(server, blue=HEALTHY, green={**HEALTHY, "error_ratio": 0.3})
    verify = GATE.format(timeout="1m", interval="2s")
    release = f"strategy: blueGreen\nactive: green\nblue: v1.4.2\ngreen: v1.5.0\nverify:\n  {verify}\n"
    project = stack_with(tmp_path, "staging", release.replace("\n    ", "\n  "))
    code, lines = loop(project, "staging", server, Deployer())
    assert code == 4, "\n".join(lines)
    assert release_of(project, "staging")["active"] == "blue"
    assert decisions(project, "staging") == ["flip back"]


def test_a_rolling_deploy_whose_apply_fails_rolls_back(server, tmp_path):
    project = stack_with(tmp_path, "dev", "strategy: rolling\nversion: v1.5.0\n")
    path = project / "Pulumi.dev.yaml"
    rc.edit_stack("dev", path, lambda r: rc.deploy(r, "v1.6.0"), root=project, render=False)
    commit(project, "deploy v1.6.0")
    code, lines = loop(project, "dev", url="http://127.0.0.1:9", deployer=Deployer(fail_first=1))
    assert code == 4, "\n".join(lines)
    assert release_of(project, "dev")["version"] == "v1.5.0"
    assert decisions(project, "dev") == ["rollback"]


def test_a_paused_release_does_not_move(tmp_path):
    project = stack_with(tmp_path, "prod", canary() + "paused: true\n")
    before = (project / "Pulumi.prod.yaml").read_bytes()
    code, lines = loop(project, "prod", url="http://127.0.0.1:9")
    assert code == 0 and "paused" in lines[0]
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


def test_release_status_shows_plan_position_decisions_and_live_metrics(server, tmp_path):
    traffic(server, stable=HEALTHY, canary={**HEALTHY, "error_ratio": 0.05})
    project = stack_with(tmp_path, "prod", canary().replace("weight: 0", "weight: 50"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "plexictl",
            "--project-dir",
            str(project),
            "release",
            "status",
            "--stack",
            "prod",
            "--prometheus",
            server.url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "plan [10, 50, 100]: step 2 of 3" in result.stdout
    (canary_line,) = [line for line in result.stdout.splitlines() if "track canary" in line]
    assert "v1.5.0" in canary_line and canary_line.endswith("50% of traffic")
    live = [line for line in result.stdout.splitlines() if line.strip().startswith("canary ")]
    assert live and "errors 5.0" in live[0], result.stdout


def test_the_timeout_counts_from_the_loops_first_decision_not_from_an_old_canary_commit(tmp_path, monkeypatch):
    """A canary that sat at a manual weight for days is judged afresh, not aborted at once."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
    project = stack_with(tmp_path, "prod", canary().replace("weight: 0", "weight: 10"))
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    run = ReleaseRun("prod", project, clock=lambda: 2_000_000_000.0)

    def canary_version(block):
        return (block.get("canary") or {}).get("version")

    assert run._started_at(canary_version) == 2_000_000_000.0  # no decision yet: this run
    path = project / "Pulumi.prod.yaml"
    rc.edit_stack("prod", path, lambda r: rc.canary_set(r, 50), root=project, render=False)
    gitlog.commit(path, "release run prod: next", "evidence", "next")
    (decision,) = gitlog.decisions(project / "Pulumi.prod.yaml")
    assert run._started_at(canary_version) == decision.unix_time  # a restarted loop keeps its clock
