"""Deployment windows (docs/releasing.md "Deployment windows"): the arithmetic across time zones
and DST, property-tested against brute force; the settings' errors; the gate every `--apply`
passes (refusal, emergency override with and without a reason); `release run` holding at the
window's end, with an injected clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.config.deploy_windows import DAYS, DeployWindow
from components.config.parse import ConfigError, parse_stack_config
from components.release.analysis import TrackMetrics
from components.release.deploy_windows import is_open, next_change, next_opening, open_seconds, window_end
from plexictl import deploy_window
from plexictl import release as rc
from plexictl.__main__ import main
from plexictl.offline import stack_config
from plexictl.release import gitlog
from plexictl.release.loop import ReleaseRun
from tests.release_state import commit, pin_release, pinned_version, project_copy

# Zones with the shapes DST takes: none, one hour north and south, half an hour (Lord Howe),
# odd offsets (Kathmandu +05:45, Chatham +12:45/+13:45).
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kathmandu"]
ZONES += ["Pacific/Chatham", "America/Sao_Paulo"]
NEW_YORK = "America/New_York"
PROD_WINDOW = {"days": ["mon", "tue", "wed", "thu"], "hours": "09:00-16:00", "timeZone": NEW_YORK}


def window(days, hours: str, zone: str = NEW_YORK) -> DeployWindow:
    return DeployWindow.model_validate({"days": days, "hours": hours, "timeZone": zone})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@st.composite
def windows(draw) -> DeployWindow:
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(start + 1, 24 * 60))
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    hours = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    return window(days, hours, draw(st.sampled_from(ZONES)))


# Instants around the DST changes of several years, to the second.
instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
window_lists = st.lists(windows(), min_size=1, max_size=3)


def brute_force_open(ws: list[DeployWindow], instant: datetime) -> bool:
    """The open minutes of each window's week, listed one by one, looked up by the instant's
    local weekday and minute."""
    for w in ws:
        start, end = w.start_minute, w.end_minute
        open_minutes = {(DAYS.index(day), minute) for day in w.days for minute in range(start, end)}
        local = instant.astimezone(ZoneInfo(w.time_zone))
        if (local.weekday(), local.hour * 60 + local.minute) in open_minutes:
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(window_lists, instants)
def test_is_open_agrees_with_a_scan_of_the_open_minutes_in_local_time(ws, instant):
    assert is_open(ws, instant) == brute_force_open(ws, instant)


@settings(max_examples=60, deadline=None)
@given(window_lists, instants)
def test_the_next_change_is_the_first_minute_where_the_state_flips(ws, instant):
    """Nothing changes between the instant and the change (scanned minute by minute, and just
    before it), and at the change the state is the other one."""
    state, change = is_open(ws, instant), next_change(ws, instant)
    if change is None:  # together the windows cover every minute: always open
        change = instant + timedelta(days=8)
        assert state
    else:
        assert instant < change <= instant + timedelta(days=8)  # weekly windows change within a week
        assert is_open(ws, change) != state and is_open(ws, change - timedelta(seconds=1)) == state
    at = instant
    while at < change:
        assert is_open(ws, at) == state, at
        at += timedelta(minutes=1)


@settings(max_examples=60, deadline=None)
@given(window_lists, instants)
def test_window_end_is_open_just_before_and_closed_at_it_and_next_opening_opens(ws, instant):
    if is_open(ws, instant):
        end, opening = window_end(ws, instant), next_opening(ws, instant)
        assert opening is None
        if end is None:  # the windows cover every minute
            assert next_change(ws, instant) is None
            return
        assert is_open(ws, end - timedelta(microseconds=1)) and not is_open(ws, end)
    else:
        opening = next_opening(ws, instant)
        assert opening is not None and window_end(ws, instant) is None
        assert not is_open(ws, opening - timedelta(microseconds=1)) and is_open(ws, opening)


@settings(max_examples=40, deadline=None)
@given(window_lists, instants, st.integers(1, 3 * 24 * 60))
def test_open_seconds_counts_the_open_minutes(ws, instant, minutes):
    start = instant.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=minutes)
    counted = sum(60 for m in range(minutes) if is_open(ws, start + timedelta(minutes=m)))
    assert open_seconds(ws, start, end) == counted


def test_the_window_follows_the_wall_clock_through_dst():
    prod = [window(["mon", "tue", "wed", "thu"], "09:00-16:00")]
    assert next_opening(prod, utc(2026, 1, 10, 0, 0)) == utc(2026, 1, 12, 14, 0)  # EST: UTC-5
    assert next_opening(prod, utc(2026, 7, 11, 0, 0)) == utc(2026, 7, 13, 13, 0)  # EDT: UTC-4
    assert window_end(prod, utc(2026, 7, 13, 13, 0)) == utc(2026, 7, 13, 20, 0)
    assert not is_open(prod, utc(2026, 7, 17, 15, 0))  # Friday


def test_a_dst_gap_shortens_a_window_and_a_window_inside_it_never_opens_that_day():
    # 2026-03-08, America/New_York: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    across = [window(["sun"], "01:00-04:00")]
    assert next_opening(across, utc(2026, 3, 7)) == utc(2026, 3, 8, 6, 0)
    assert window_end(across, utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 8, 8, 0)
    assert open_seconds(across, utc(2026, 3, 7), utc(2026, 3, 9)) == 2 * 3600
    inside = [window(["sun"], "02:00-03:00")]
    assert next_opening(inside, utc(2026, 3, 7)) == utc(2026, 3, 15, 6, 0)  # a week later, 02:00 EDT


def test_a_repeated_hour_is_open_both_times():
    # 2026-11-01, America/New_York: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
    repeated = [window(["sun"], "01:00-02:00")]
    assert next_opening(repeated, utc(2026, 10, 31)) == utc(2026, 11, 1, 5, 0)
    assert window_end(repeated, utc(2026, 11, 1, 5, 0)) == utc(2026, 11, 1, 7, 0)
    # Ending inside the repeated hour: closed in between, open again when the hour repeats.
    half = [window(["sun"], "00:00-01:30")]
    assert window_end(half, utc(2026, 11, 1, 4, 0)) == utc(2026, 11, 1, 5, 30)
    assert next_opening(half, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6, 0)
    assert open_seconds(half, utc(2026, 10, 31), utc(2026, 11, 2)) == 2 * 3600


def test_windows_in_several_time_zones_are_open_when_any_is():
    both = [window(["mon"], "09:00-10:00", "Europe/Berlin"), window(["mon"], "09:00-10:00", NEW_YORK)]
    monday = utc(2026, 6, 15)
    assert [is_open(both, monday + timedelta(hours=h)) for h in (7, 8, 12, 13, 14)] == [1, 0, 0, 1, 0]
    assert next_opening(both, monday + timedelta(hours=8)) == monday + timedelta(hours=13)
    assert is_open([], monday) and next_change([], monday) is None  # no windows: always open


# -- settings ---------------------------------------------------------------------------------


def problems_with(deploy_windows) -> str:
    config, secret_keys = stack_config("dev")
    config = {**config, "plexichat:deployWindows": json.dumps(deploy_windows)}
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(config, "dev", secret_keys)
    return str(raised.value)


@pytest.mark.parametrize(
    "bad, words",
    [
        (
            {**PROD_WINDOW, "days": ["mon", "tue", "funday"]},
            "plexichat:deployWindows.0.days.2: must be mon, tue, wed, thu, fri, sat or sun (got 'funday')",
        ),
        ({**PROD_WINDOW, "days": []}, "plexichat:deployWindows.0.days: List should have at least 1 item"),
        ({**PROD_WINDOW, "hours": "16:00-09:00"}, "plexichat:deployWindows.0.hours: must be HH:MM-HH:MM"),
        ({**PROD_WINDOW, "hours": "9-16"}, "a window across midnight is two windows"),
        ({**PROD_WINDOW, "timeZone": "Mars/Olympus"}, "plexichat:deployWindows.0.timeZone: must be an IANA time zone"),
        ({**PROD_WINDOW, "timeZone": "EDT"}, "(got 'EDT')"),
        ({**PROD_WINDOW, "zone": "UTC"}, "plexichat:deployWindows.0.zone: unknown key"),
    ],
)
def test_a_bad_window_names_its_key_path_and_what_is_allowed(bad, words):
    assert words in problems_with([bad])


def test_a_window_may_end_at_midnight_and_describes_itself():
    late = window(["fri", "sat", "sun"], "18:00-24:00", "UTC")
    assert late.end_minute == 1440 and late.describe() == "fri-sun 18:00-24:00 UTC"
    assert is_open([late], utc(2026, 6, 14, 23, 59)) and not is_open([late], utc(2026, 6, 15, 0, 0))
    assert window(["mon", "wed"], "09:00-16:00").describe() == "mon,wed 09:00-16:00 America/New_York"


# -- the gate of --apply ------------------------------------------------------------------------

THURSDAY_EVENING = utc(2026, 3, 5, 22, 0)  # 17:00 EST, after the window
MONDAY_OPENING = utc(2026, 3, 9, 13, 0)  # 09:00 EDT: DST began on the Sunday between


def with_windows(project, stack: str, ws=(PROD_WINDOW,)) -> None:
    from plexictl.release.stack_file import round_trip_yaml

    path = project / f"Pulumi.{stack}.yaml"
    yaml = round_trip_yaml()
    document = yaml.load(path.read_text())
    document["config"]["plexichat:deployWindows"] = [dict(w) for w in ws]
    with path.open("w") as handle:
        yaml.dump(document, handle)


@pytest.fixture
def gated(tmp_path, monkeypatch):
    """A project copy whose prod has the window; the clock, `pulumi up` and the job summary faked."""
    project = project_copy(tmp_path)
    with_windows(project, "prod")
    deployed: list[str] = []
    monkeypatch.setattr(rc, "apply", lambda stack, project_dir: deployed.append(stack) or 0)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("PLEXICHAT_DEPLOY_WEBHOOK_URL", raising=False)

    def at(instant: datetime) -> None:
        monkeypatch.setattr(deploy_window, "clock", lambda: instant)

    return project, deployed, summary, at


def test_apply_outside_the_window_exits_3_deploys_nothing_and_edits_nothing(gated, capsys):
    project, deployed, summary, at = gated
    at(THURSDAY_EVENING)
    before = (project / "Pulumi.prod.yaml").read_bytes()
    assert main(["--project-dir", str(project), "canary", "next", "--stack", "prod", "--apply"]) == 3
    err = capsys.readouterr().err
    assert "prod: outside the deployment window (mon-thu 09:00-16:00 America/New_York)" in err
    assert "it next opens Mon 2026-03-09 09:00 EDT (13:00 UTC)" in err and "--emergency" in err
    assert deployed == [] and (project / "Pulumi.prod.yaml").read_bytes() == before
    assert main(["--project-dir", str(project), "deploy-window", "check", "--stack", "prod"]) == 3
    assert deployed == [] and not summary.exists()


def test_apply_inside_the_window_deploys(gated, capsys):
    project, deployed, _, at = gated
    at(MONDAY_OPENING)
    assert main(["--project-dir", str(project), "canary", "next", "--stack", "prod", "--apply"]) == 0
    assert deployed == ["prod"]
    assert "inside the deployment window (mon-thu 09:00-16:00 America/New_York) until Mon 2026-03-09 16:00 EDT" in (
        capsys.readouterr().out
    )
    assert main(["--project-dir", str(project), "deploy-window", "check", "--stack", "prod"]) == 0


def test_an_emergency_override_deploys_and_its_reason_goes_into_the_audit_record(gated, capsys, monkeypatch):
    project, deployed, summary, at = gated
    at(THURSDAY_EVENING)
    monkeypatch.setenv("GITHUB_ACTOR", "oncall-lead")
    reason = "INC-4711: message delivery down, approved by the on-call lead"
    assert main(["--project-dir", str(project), "rollback", "--stack", "prod", "--apply", "--emergency", reason]) == 0
    assert deployed == ["prod"]
    out = capsys.readouterr().out
    assert "prod: EMERGENCY OVERRIDE: deploying outside the deployment window" in out
    assert f"by @oncall-lead; reason: {reason}" in out
    assert reason in summary.read_text() and "EMERGENCY OVERRIDE" in summary.read_text()
    # The workflow's check: the same verdict, the same record.
    assert (
        main(["--project-dir", str(project), "deploy-window", "check", "--stack", "prod", "--emergency", reason]) == 0
    )
    assert summary.read_text().count(reason) == 2


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_override_with_no_reason_is_an_error(gated, capsys, reason):
    project, deployed, _, at = gated
    at(THURSDAY_EVENING)
    before = (project / "Pulumi.prod.yaml").read_bytes()
    for command in (["canary", "next", "--stack", "prod", "--apply"], ["deploy-window", "check", "--stack", "prod"]):
        with pytest.raises(SystemExit) as exited:
            main(["--project-dir", str(project), *command, "--emergency", reason])
        assert exited.value.code == 1
        assert "an emergency override needs a reason" in capsys.readouterr().err
    assert deployed == [] and (project / "Pulumi.prod.yaml").read_bytes() == before


def test_an_override_without_apply_is_refused(gated, capsys):
    project, deployed, _, at = gated
    at(THURSDAY_EVENING)
    assert main(["--project-dir", str(project), "canary", "next", "--stack", "prod", "--emergency", "INC-1"]) == 1
    assert "without --apply nothing is deployed" in capsys.readouterr().err and deployed == []


# -- the release loop holds at the window's end -----------------------------------------------

HEALTHY = TrackMetrics(requests=500.0, error_ratio=0.0, p99_seconds=0.05)
CANARY = f"""\
strategy: canary
stable: {pinned_version("v1.4.2")}
canary:
  version: {pinned_version("v1.5.0")}
  weight: 0
  steps: [10, 50, 100]
  analysis:
    interval: 5m
    minRequests: 20
    maxFailedChecks: 2
    timeout: 30m
"""


class FakeTime:
    """The loop's clock and sleep: sleeping moves the clock, nothing waits."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_release_run_takes_no_step_outside_the_window_and_goes_on_when_it_opens(tmp_path, monkeypatch):
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "release-bot")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "release-bot@example.com")
    project = project_copy(tmp_path, git=True)
    pin_release(project / "Pulumi.prod.yaml", "prod", CANARY)
    with_windows(project, "prod")
    commit(project, "prod: a canary under analysis, with the window")
    monkeypatch.setattr(ReleaseRun, "_measure", lambda self, query, tracks: dict.fromkeys(tracks, HEALTHY))
    # Thursday 15:50 EST: the first step fits before 16:00, the next judgement does not.
    fake = FakeTime(utc(2026, 3, 5, 20, 50))
    deploys: list[tuple[datetime, int]] = []
    told: list[tuple[str, str]] = []

    def deploy(stack, project_dir) -> bool:
        weight = (rc_release(project).get("canary") or {}).get("weight")
        deploys.append((datetime.fromtimestamp(fake.now, UTC), weight))
        return True

    lines: list[str] = []
    run = ReleaseRun(
        "prod",
        project,
        prometheus_url="http://127.0.0.1:9",
        applier=deploy,
        notifier=lambda outcome, detail: told.append((outcome, detail)),
        clock=fake.clock,
        sleep=fake.sleep,
        out=lines.append,
    )
    assert run.run() == 0, "\n".join(lines)
    # 15:50 start (10%); 15:55 pass -> 50%; 16:00 pass, but closed: held until Monday 09:00 EDT.
    assert deploys[:2] == [(utc(2026, 3, 5, 20, 50), 10), (utc(2026, 3, 5, 20, 55), 50)]
    assert all(is_open([window(["mon", "tue", "wed", "thu"], "09:00-16:00")], when) for when, _ in deploys)
    assert deploys[2][0] >= MONDAY_OPENING + timedelta(minutes=5)  # judged afresh after the opening
    assert [w for _, w in deploys] == [10, 50, 100, None]  # promoted
    paused = [line for line in lines if "paused" in line]
    assert paused == [
        "prod: paused: outside the deployment window until 2026-03-09 13:00 UTC (mon-thu 09:00-16:00 America/New_York)"
    ]
    assert [outcome for outcome, _ in told] == ["deployed", "deployed", "paused", "deployed", "promoted"]
    # Three days outside the window did not run out the 30-minute analysis.
    assert [d.decision for d in reversed(gitlog.decisions(project / "Pulumi.prod.yaml"))] == [
        "start",
        "next",
        "next",
        "promote",
    ]


def rc_release(project) -> dict:
    import yaml

    return yaml.safe_load((project / "Pulumi.prod.yaml").read_text())["config"][rc.RELEASE_KEY]


# -- the pipeline ---------------------------------------------------------------------------------


def test_the_deploy_workflow_checks_the_window_before_pulumi_up_and_records_an_override():
    from tests.test_workflows import load

    reason = "${{ inputs.emergency_reason }}"
    dispatch = load("deploy.yml")["on"]["workflow_dispatch"]["inputs"]["emergency_reason"]
    assert dispatch["type"] == "string" and dispatch["required"] is False
    assert {job["with"]["emergency_reason"] for job in load("deploy.yml")["jobs"].values()} == {reason}
    deploy_stack = load("deploy-stack.yml")
    assert deploy_stack["on"]["workflow_call"]["inputs"]["emergency_reason"]["default"] == ""
    steps = deploy_stack["jobs"]["up"]["steps"]
    check = next(i for i, s in enumerate(steps) if "plexictl deploy-window check" in s.get("run", ""))
    up = next(i for i, s in enumerate(steps) if s.get("id") == "up")
    assert check < up and "if" not in steps[check]  # a refusal fails the job before `pulumi up`
    assert steps[check]["env"] == {"STACK": "${{ inputs.stack }}", "REASON": reason}  # never inlined in the script
    assert '--emergency "$REASON"' in steps[check]["run"]
    audit = steps[-1]
    assert audit["env"]["REASON"] == reason and "emergency override" in audit["run"]
    # An emergency canary goes on through the release loop with the same reason.
    start = next(s for s in steps if "gh workflow run release-loop.yml" in s.get("run", ""))
    assert '-f emergency_reason="$REASON"' in start["run"]
    loop = load("release-loop.yml")
    assert set(loop["on"]["workflow_dispatch"]["inputs"]) == {"stack", "environment", "emergency_reason"}
    run = next(s for s in loop["jobs"]["run"]["steps"] if s.get("id") == "loop")
    assert '"${override[@]}"' in run["run"] and '--emergency "$REASON"' in run["run"]
