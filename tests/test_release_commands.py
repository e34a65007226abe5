"""Release commands on temporary copies of the real stack files: small edits, validated, rendered."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys

import pulumi
import pytest
import yaml

from plexictl import release_commands as rc
from plexictl.engine import ROOT, Rendering, run_program, stack_config


@pytest.fixture
def stack_dir(tmp_path):
    for stack in ("dev", "staging", "prod"):
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    return tmp_path


def run(stack_dir, stack: str, change) -> rc.Edit:
    return rc.edit_stack(stack, stack_dir / f"Pulumi.{stack}.yaml", change)


def render_file(stack_dir, stack: str) -> Rendering:
    """The stack as `pulumi up` would see the edited file."""
    data = yaml.safe_load((stack_dir / f"Pulumi.{stack}.yaml").read_text())
    config, secret_keys = stack_config(stack, stack_file=data)
    return run_program(stack, config=config, secret_keys=secret_keys)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def images(rendering: Rendering) -> dict[str, str]:
    return {d.inputs["metadata"]["name"]: d.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
            for d in rendering.of_type("kubernetes:apps/v1:Deployment")}


def test_a_weight_change_edits_one_line_and_keeps_every_comment(stack_dir):
    path = stack_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("weight: 10", "weight: 10   # moved by the on-call"))
    before = path.read_text()
    edit = run(stack_dir, "prod", lambda r: rc.canary_set(r, 25))
    assert changed_lines(before, path.read_text()) == [
        "-      weight: 10   # moved by the on-call",
        "+      weight: 25   # moved by the on-call",
    ]
    assert edit.pulumi_commands() == ["pulumi config set --path release.canary.weight 25 -s prod"]
    # The desired state: routing only (the stack outputs here, the VirtualService once it exists).
    assert all(c.label.startswith("VirtualService ") for c in edit.diff.changes)
    assert [f.describe() for f in edit.diff.outputs] == [
        "tracks.stable.weightPercent 90 -> 75", "tracks.canary.weightPercent 10 -> 25",
        "canaryWeightPercent 10 -> 25",
    ]


@pytest.mark.parametrize("stack, change, error, message", [
    ("prod", lambda r: rc.canary_set(r, 30), pulumi.RunError,
     "plexichat:release.canary.weight: must be 0 or one of the steps [10, 25, 50, 100] (got 30)"),
    ("prod", lambda r: rc.canary_set(r, 150), pulumi.RunError,
     "plexichat:release.canary.weight: must be an integer percent from 0 to 100 (got 150)"),
    ("prod", lambda r: rc.canary_start(r, "1.6"), pulumi.RunError,
     "plexichat:release.canary.version: must be a release tag"),
    ("staging", lambda r: rc.deploy(r, "latest"), pulumi.RunError,
     "plexichat:release.green: must be a release tag"),
    ("prod", rc.switch, rc.ReleaseError, "this command needs blueGreen"),
    ("staging", lambda r: rc.canary_start(r, "v1.6.0"), rc.ReleaseError, "release with `deploy` and `switch`"),
    ("dev", rc.canary_next, rc.ReleaseError, "Start one with `canary start VERSION`"),
    ("prod", lambda r: rc.deploy(r, "v1.6.0"), rc.ReleaseError, "`canary start VERSION`"),
])
def test_an_invalid_request_leaves_the_file_byte_for_byte_unchanged(stack_dir, stack, change, error, message):
    path = stack_dir / f"Pulumi.{stack}.yaml"
    before = path.read_bytes()
    with pytest.raises(error) as raised:
        run(stack_dir, stack, change)
    assert message in str(raised.value)
    assert path.read_bytes() == before


def test_canary_next_stops_at_the_last_step_and_needs_a_plan(stack_dir):
    run(stack_dir, "prod", lambda r: rc.canary_set(r, 100))
    with pytest.raises(rc.ReleaseError, match="already at the last step"):
        run(stack_dir, "prod", rc.canary_next)
    path = stack_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("      steps: [10, 25, 50, 100]\n", ""))
    with pytest.raises(rc.ReleaseError, match="no step plan"):
        run(stack_dir, "prod", rc.canary_next)


def test_full_canary_lifecycle_from_rolling(stack_dir):
    path = stack_dir / "Pulumi.dev.yaml"
    original = path.read_text()

    edit = run(stack_dir, "dev", lambda r: rc.canary_start(r, "v1.6.0", steps=[10, 25, 50, 100]))
    assert changed_lines(original, path.read_text()) == [
        "-    strategy: rolling", "-    version: v1.5.0",
        "+    strategy: canary", "+    stable: v1.5.0", "+    canary:", "+      version: v1.6.0",
        "+      weight: 10", "+      steps: [10, 25, 50, 100]",
    ]
    assert {c.label for c in edit.diff.changes if c.kind == "added"} >= {"Deployment plexichat-web-canary"}
    assert not [c for c in edit.diff.changes if c.kind == "removed"]
    rendered = render_file(stack_dir, "dev")
    assert images(rendered)["plexichat-web-canary"].endswith(":v1.6.0")
    assert images(rendered)["plexichat-worker-stable"].endswith(":v1.5.0")  # workers stay stable
    assert rendered.outputs["canaryWeightPercent"] == 10

    edit = run(stack_dir, "dev", lambda r: rc.canary_set(r, 25))
    assert not [c for c in edit.diff.changes if not c.label.startswith("VirtualService ")]
    assert render_file(stack_dir, "dev").outputs["tracks"]["stable"]["weightPercent"] == 75

    edit = run(stack_dir, "dev", rc.canary_next)
    assert edit.message == "canary weight 25% -> 50% (step 3 of 4)"
    assert render_file(stack_dir, "dev").outputs["canaryWeightPercent"] == 50

    edit = run(stack_dir, "dev", rc.canary_promote)
    rendered = render_file(stack_dir, "dev")
    assert rendered.outputs["releaseStrategy"] == "rolling"
    assert images(rendered) == {
        "plexichat-web-stable": "ghcr.io/plexichat/plexichat:v1.6.0",
        "plexichat-worker-stable": "ghcr.io/plexichat/plexichat:v1.6.0",
    }
    assert {c.label for c in edit.diff.changes if c.kind == "removed"} >= {"Deployment plexichat-web-canary"}
    # Promotion ends where a rolling release of the new version starts: the file says so.
    assert path.read_text() == original.replace("version: v1.5.0", "version: v1.6.0")
    assert edit.pulumi_commands() == [
        "pulumi config set --path release.strategy rolling -s dev",
        "pulumi config rm --path release.stable -s dev",
        "pulumi config rm --path release.canary -s dev",
        "pulumi config set --path release.version v1.6.0 -s dev",
    ]


def test_canary_start_on_a_canary_stack_replaces_the_canary_and_keeps_its_plan(stack_dir):
    before = (stack_dir / "Pulumi.prod.yaml").read_text()
    run(stack_dir, "prod", lambda r: rc.canary_set(r, 50))
    run(stack_dir, "prod", lambda r: rc.canary_start(r, "v1.6.0"))
    assert changed_lines(before, (stack_dir / "Pulumi.prod.yaml").read_text()) == [
        "-      version: v1.5.0", "+      version: v1.6.0",  # weight back at the first step, 10
    ]


def test_canary_abort_sends_everything_back_to_stable(stack_dir):
    edit = run(stack_dir, "prod", rc.canary_abort)
    rendered = render_file(stack_dir, "prod")
    assert rendered.outputs["tracks"] == {"stable": {"version": "v1.4.2", "weightPercent": 100}}
    assert set(images(rendered)) == {"plexichat-web-stable", "plexichat-worker-stable"}
    assert not [c for c in edit.diff.changes if c.kind == "added"]


def test_blue_green_lifecycle_deploy_preview_switch_rollback(stack_dir):
    path = stack_dir / "Pulumi.staging.yaml"
    original = path.read_text()

    edit = run(stack_dir, "staging", lambda r: rc.deploy(r, "v1.6.0"))
    assert changed_lines(original, path.read_text()) == ["-    green: v1.5.0", "+    green: v1.6.0"]
    # Preview: the new version runs on the inactive colour, with no live traffic and no workers.
    rendered = render_file(stack_dir, "staging")
    assert rendered.outputs["tracks"]["green"] == {"version": "v1.6.0", "weightPercent": 0}
    assert rendered.outputs["activeColour"] == "blue" and rendered.outputs["workerVersion"] == "v1.4.2"
    assert {c.label for c in edit.diff.changes} == {"Deployment plexichat-web-green"}

    edit = run(stack_dir, "staging", rc.switch)
    assert changed_lines(original, path.read_text()) == [
        "-    active: blue", "+    active: green", "-    green: v1.5.0", "+    green: v1.6.0",
    ]
    rendered = render_file(stack_dir, "staging")
    assert rendered.outputs["tracks"]["green"] == {"version": "v1.6.0", "weightPercent": 100}
    assert rendered.outputs["workerVersion"] == "v1.6.0"
    # Only routing and the worker (which follows the active colour) change on a flip.
    assert {c.label for c in edit.diff.changes} == {
        "VirtualService plexichat-web", "Deployment plexichat-worker-stable",
    }
    assert not [c for c in edit.diff.changes if c.label.startswith("Deployment plexichat-web")]

    edit = run(stack_dir, "staging", lambda r: rc.rollback(r, rc.git_history(path)))
    assert edit.message.startswith("rollback: active colour green -> blue")
    assert render_file(stack_dir, "staging").outputs["workerVersion"] == "v1.4.2"
    assert changed_lines(original, path.read_text()) == ["-    green: v1.5.0", "+    green: v1.6.0"]


def test_a_flip_warns_when_the_colour_going_live_was_not_sized_for_it(stack_dir):
    """Staging sizes both colours for all traffic (requestsPerSecondPerPod): a quiet flip. A
    stack without it hears that the new live colour has been idling at minReplicas."""
    assert "note:" not in run(stack_dir, "staging", rc.switch).message
    path = stack_dir / "Pulumi.staging.yaml"
    path.write_text(path.read_text().replace("      requestsPerSecondPerPod: 50\n", ""))
    message = run(stack_dir, "staging", rc.switch).message
    assert message.startswith("active colour green -> blue")
    assert "note: blue has been idling at minReplicas (2)" in message
    assert "requestsPerSecondPerPod" in message


def git(repo, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def test_rolling_rollback_restores_the_previous_version_from_git_history(stack_dir):
    path = stack_dir / "Pulumi.dev.yaml"
    history = rc.git_history(path)
    git(stack_dir, "init", "--quiet")
    git(stack_dir, "add", "Pulumi.dev.yaml")
    git(stack_dir, "commit", "--quiet", "-m", "v1.5.0")
    with pytest.raises(rc.ReleaseError, match="no earlier version than v1.5.0"):
        run(stack_dir, "dev", lambda r: rc.rollback(r, history))

    run(stack_dir, "dev", lambda r: rc.deploy(r, "v1.6.0"))
    git(stack_dir, "commit", "--quiet", "-am", "v1.6.0")
    run(stack_dir, "dev", lambda r: rc.deploy(r, "v1.7.0"))  # not committed yet
    edit = run(stack_dir, "dev", lambda r: rc.rollback(r, history))
    assert edit.message.startswith("rollback: version v1.7.0 -> v1.6.0")
    edit = run(stack_dir, "dev", lambda r: rc.rollback(r, history))
    assert edit.message.startswith("rollback: version v1.6.0 -> v1.5.0")
    assert path.read_text() == (ROOT / "Pulumi.dev.yaml").read_text()


def test_canary_rollback_is_an_abort(stack_dir):
    edit = run(stack_dir, "prod", lambda r: rc.rollback(r, rc.git_history(stack_dir / "Pulumi.prod.yaml")))
    assert edit.message.startswith("rollback: canary v1.5.0 aborted")


def test_config_set_equivalents_quote_strings_that_look_like_numbers():
    assert rc._config_set("release.canary.header.value", "true", "prod") == (
        "pulumi config set --path release.canary.header.value true --type string -s prod"
    )
    assert rc._config_set("release.canary.steps[0]", 10, "prod") == (
        "pulumi config set --path 'release.canary.steps[0]' 10 -s prod"
    )


def test_the_command_line_edits_prints_and_explains_apply_without_the_pulumi_cli(stack_dir):
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, stack_dir)
    (stack_dir / "components").symlink_to(ROOT / "components")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no `pulumi` on it

    def plexictl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "plexictl", "--project-dir", str(stack_dir), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    result = plexictl("canary", "next", "--stack", "prod", "--apply")
    assert result.returncode == rc.NOT_APPLIED, result.stderr  # edited, but nothing deployed
    assert "prod: canary weight 10% -> 25% (step 2 of 4)" in result.stdout
    assert "pulumi config set --path release.canary.weight 25 -s prod" in result.stdout
    assert "the Pulumi CLI is not installed here" in result.stdout
    assert f"pulumi up --stack prod --cwd {stack_dir}" in result.stdout
    assert "weight: 25" in (stack_dir / "Pulumi.prod.yaml").read_text()

    before = (stack_dir / "Pulumi.prod.yaml").read_bytes()
    result = plexictl("canary", "set", "30", "--stack", "prod")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "must be 0 or one of the steps" in result.stderr
    assert (stack_dir / "Pulumi.prod.yaml").read_bytes() == before


def test_apply_runs_pulumi_up_through_the_automation_api_when_the_cli_exists(monkeypatch, capsys):
    from pulumi import automation

    calls = []

    class FakeStack:
        def up(self, **options):
            calls.append(("up", options))
            summary = type("Summary", (), {"result": "succeeded", "resource_changes": {"update": 1}})
            return type("UpResult", (), {"summary": summary})

    def select_stack(**options):
        calls.append(("select", options))
        return FakeStack()

    monkeypatch.setattr(rc.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    assert rc.apply("prod", ROOT) == 0
    (_, selected), (_, up) = calls
    assert selected == {"stack_name": "prod", "work_dir": str(ROOT)}
    assert up["show_secrets"] is False  # the Automation API shows secrets unless told not to
    assert up["policy_packs"] == [str(ROOT / "policy")]  # never around the mandatory rules
    assert "pulumi up: succeeded" in capsys.readouterr().out


def test_a_dry_run_shows_the_edit_and_writes_nothing(stack_dir):
    path = stack_dir / "Pulumi.staging.yaml"
    before = path.read_bytes()
    edit = rc.edit_stack("staging", path, rc.switch, write=False)
    assert path.read_bytes() == before
    assert changed_lines(edit.old_text, edit.new_text) == ["-    active: blue", "+    active: green"]


def test_an_edit_that_repairs_a_broken_file_is_allowed(stack_dir):
    path = stack_dir / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("weight: 10", "weight: 30"))  # not a step
    edit = run(stack_dir, "prod", lambda r: rc.canary_set(r, 25))
    assert "weight: 25" in path.read_text()
    assert edit.diff.note == "Pulumi.prod.yaml was invalid before this edit; everything shows as added"


def test_blue_green_rollback_after_a_deploy_undoes_the_deploy_not_the_live_colour(stack_dir):
    """Rolling back a `deploy` onto the idle colour must never make that untested version live."""
    path = stack_dir / "Pulumi.staging.yaml"
    git(stack_dir, "init", "--quiet")
    git(stack_dir, "add", path.name)
    git(stack_dir, "commit", "--quiet", "-m", "staging as it is")
    run(stack_dir, "staging", lambda r: rc.deploy(r, "v1.6.0"))
    git(stack_dir, "commit", "--quiet", "-am", "deploy v1.6.0 to green")
    edit = run(stack_dir, "staging", lambda r: rc.rollback(r, rc.git_history(path)))
    assert edit.message.startswith("rollback: green v1.6.0 -> v1.5.0")
    assert path.read_text() == (ROOT / "Pulumi.staging.yaml").read_text()
    assert render_file(stack_dir, "staging").outputs["activeColour"] == "blue"


def test_a_second_rollback_never_restores_the_release_just_rolled_back(stack_dir):
    path = stack_dir / "Pulumi.dev.yaml"
    history = rc.git_history(path)
    git(stack_dir, "init", "--quiet")
    git(stack_dir, "add", path.name)
    git(stack_dir, "commit", "--quiet", "-m", "v1.5.0")
    run(stack_dir, "dev", lambda r: rc.deploy(r, "v1.6.0"))
    git(stack_dir, "commit", "--quiet", "-am", "v1.6.0 (bad)")
    run(stack_dir, "dev", lambda r: rc.rollback(r, history))
    git(stack_dir, "commit", "--quiet", "-am", "rollback to v1.5.0")
    before = path.read_bytes()
    with pytest.raises(rc.ReleaseError, match="no earlier version than v1.5.0"):
        run(stack_dir, "dev", lambda r: rc.rollback(r, history))  # not back to the bad v1.6.0
    assert path.read_bytes() == before


def test_a_request_that_changes_nothing_says_so_and_writes_nothing(stack_dir):
    path = stack_dir / "Pulumi.dev.yaml"
    before = path.read_bytes()
    with pytest.raises(rc.NothingToDo, match="already as requested"):
        run(stack_dir, "dev", lambda r: rc.deploy(r, "v1.5.0"))  # dev already runs v1.5.0
    assert path.read_bytes() == before
