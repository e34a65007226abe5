"""Release commands on a copy of the project, each stack at its pinned release (release_state):
small edits, validated, rendered, and undone by `rollback` as the docs promise."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from functools import partial

import pytest
import yaml

from components.config.parse import ConfigError
from plexictl import release as rc
from plexictl.offline import ROOT, Rendering, run_program, stack_config
from plexictl.release import pulumi_up
from plexictl.release.edit import _config_set
from tests.release_state import (
    PINNED_RELEASES,
    commit,
    pin_release,
    pinned_version,
    project_copy,
    run_git,
)

V142, V150, V160, V161, V170 = (pinned_version(tag) for tag in ("v1.4.2", "v1.5.0", "v1.6.0", "v1.6.1", "v1.7.0"))
"""Versions as prod (a production stack) must name them: pinned by digest."""


@pytest.fixture
def project(tmp_path):
    return project_copy(tmp_path)


@pytest.fixture
def repo(tmp_path):
    """The project copy as a git repository: rollback and the next canary read its history."""
    return project_copy(tmp_path, git=True)


def run(project, stack: str, change) -> rc.Edit:
    return rc.edit_stack(stack, project / f"Pulumi.{stack}.yaml", change, root=project)


def history(project, stack: str) -> rc.History:
    return rc.git_history(project / f"Pulumi.{stack}.yaml")


def release_of(project, stack: str) -> dict:
    return yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"][rc.RELEASE_KEY]


def render_file(project, stack: str) -> Rendering:
    """The stack as `pulumi up` would see the edited file."""
    data = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())
    config, secret_keys = stack_config(stack, stack_file=data)
    return run_program(stack, config=config, secret_keys=secret_keys)


def schema_of(project, stack: str):
    return (
        yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"].get("plexichat:migrations") or {}
    ).get("schemaVersion")


def changed_lines(before: str, after: str) -> list[str]:
    """The changed lines of the release block: `migrations.schemaVersion` (and snapshotVersions), which a release edit
    also writes (where depends on what else the stack file holds), is checked by `schema_of`."""
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-"
        and not line.startswith(("+++", "---"))
        and not line[1:].strip().startswith(("plexichat:migrations:", "schemaVersion:", "snapshotVersions:"))
    ]


def images(rendering: Rendering) -> dict[str, str]:
    return {
        d.inputs["metadata"]["name"]: d.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in rendering.of_type("kubernetes:apps/v1:Deployment")
    }


def test_a_weight_change_edits_one_line_and_keeps_every_comment(project):
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("weight: 10", "weight: 10   # moved by the on-call"))
    before = path.read_text()
    edit = run(project, "prod", partial(rc.canary_set, weight=25))
    assert changed_lines(before, path.read_text()) == [
        "-      weight: 10   # moved by the on-call",
        "+      weight: 25   # moved by the on-call",
    ]
    assert edit.pulumi_commands() == ["pulumi config set --path release.canary.weight 25 -s prod"]
    # The desired state: routing only (the stack outputs here, the VirtualService once it exists).
    assert all(c.label.startswith("VirtualService ") for c in edit.diff.changes)
    assert [f.describe() for f in edit.diff.outputs] == [
        "tracks.stable.weightPercent 90 -> 75",
        "tracks.canary.weightPercent 10 -> 25",
        "canaryWeightPercent 10 -> 25",
    ]


@pytest.mark.parametrize(
    "stack, change, error, message",
    [
        (
            "prod",
            partial(rc.canary_set, weight=30),
            ConfigError,
            "plexichat:release.canary.weight: must be 0 or one of the steps [10, 25, 50, 100] (got 30)",
        ),
        (
            "prod",
            partial(rc.canary_set, weight=150),
            ConfigError,
            "plexichat:release.canary.weight: must be an integer percent from 0 to 100 (got 150)",
        ),
        (
            "prod",
            partial(rc.canary_start, version="1.6"),
            ConfigError,
            "plexichat:release.canary.version: must be a release tag",
        ),
        (
            "prod",
            partial(rc.canary_start, version="v1.6.0"),
            ConfigError,
            "plexichat:release.canary.version: must name its image by digest in a production stack",
        ),
        (
            "staging",
            partial(rc.deploy, version="latest"),
            ConfigError,
            "plexichat:release.green: must be a release tag",
        ),
        (
            "prod",
            rc.switch,
            rc.ReleaseError,
            "`switch` needs strategy blueGreen, and this stack's is canary: a canary stack moves with",
        ),
        (
            "staging",
            partial(rc.canary_start, version="v1.6.0"),
            rc.ReleaseError,
            "this stack's is blueGreen: a blue-green stack releases with `deploy VERSION`",
        ),
        (
            "dev",
            rc.canary_next,
            rc.ReleaseError,
            "this stack's is rolling: a rolling stack releases with `deploy VERSION`, or starts a canary",
        ),
        ("prod", partial(rc.deploy, version="v1.6.0"), rc.ReleaseError, "`canary start VERSION`"),
    ],
)
def test_an_invalid_request_leaves_the_file_byte_for_byte_unchanged(project, stack, change, error, message):
    path = project / f"Pulumi.{stack}.yaml"
    before = path.read_bytes()
    with pytest.raises(error) as raised:
        run(project, stack, change)
    assert message in str(raised.value)
    assert path.read_bytes() == before


def test_canary_next_stops_at_the_last_step_and_needs_a_plan(project):
    run(project, "prod", partial(rc.canary_set, weight=100))
    with pytest.raises(rc.ReleaseError, match="already at the last step"):
        run(project, "prod", rc.canary_next)
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("      steps: [10, 25, 50, 100]\n", ""))
    with pytest.raises(rc.ReleaseError, match="no step plan"):
        run(project, "prod", rc.canary_next)


def test_full_canary_lifecycle_from_rolling(project):
    path = project / "Pulumi.dev.yaml"
    original = path.read_text()

    edit = run(project, "dev", partial(rc.canary_start, version="v1.6.0", steps=[10, 25, 50, 100]))
    assert changed_lines(original, path.read_text()) == [
        "-    strategy: rolling",
        "-    version: v1.5.0",
        "+    strategy: canary",
        "+    stable: v1.5.0",
        "+    canary:",
        "+      version: v1.6.0",
        "+      weight: 10",
        "+      steps: [10, 25, 50, 100]",
    ]
    # The schema follows the newest version going live: its migration Job runs first.
    assert schema_of(project, "dev") == "v1.6.0" and "schema version -> v1.6.0" in edit.message
    assert {c.label for c in edit.diff.changes if c.kind == "added"} >= {"Deployment plexichat-web-canary"}
    # The one Job per schema version moves on to v1.6.0; nothing else goes away.
    assert {c.label for c in edit.diff.changes if c.kind == "removed"} == {"Job plexichat-migrate-v1-5-0"}
    assert {c.label for c in edit.diff.changes if c.kind == "added"} >= {"Job plexichat-migrate-v1-6-0"}
    rendered = render_file(project, "dev")
    assert images(rendered)["plexichat-web-canary"].endswith(":v1.6.0")
    assert images(rendered)["plexichat-worker-stable"].endswith(":v1.5.0")  # workers stay stable
    assert rendered.outputs["canaryWeightPercent"] == 10

    edit = run(project, "dev", partial(rc.canary_set, weight=25))
    assert not [c for c in edit.diff.changes if not c.label.startswith("VirtualService ")]
    assert render_file(project, "dev").outputs["tracks"]["stable"]["weightPercent"] == 75

    edit = run(project, "dev", rc.canary_next)
    assert edit.message == "canary weight 25% -> 50% (step 3 of 4)"
    assert render_file(project, "dev").outputs["canaryWeightPercent"] == 50

    edit = run(project, "dev", rc.canary_promote)
    rendered = render_file(project, "dev")
    assert rendered.outputs["releaseStrategy"] == "rolling"
    assert images(rendered) == {
        "plexichat-web-stable": "ghcr.io/plexichat/plexichat:v1.6.0",
        "plexichat-worker-stable": "ghcr.io/plexichat/plexichat:v1.6.0",
    }
    assert {c.label for c in edit.diff.changes if c.kind == "removed"} >= {"Deployment plexichat-web-canary"}
    # Promotion ends where a rolling release of the new version starts: the file says so.
    assert changed_lines(original, path.read_text()) == [
        "-    version: v1.5.0",
        "+    version: v1.6.0",
    ]
    assert schema_of(project, "dev") == "v1.6.0"
    assert edit.pulumi_commands() == [
        "pulumi config set --path release.strategy rolling -s dev",
        "pulumi config rm --path release.stable -s dev",
        "pulumi config rm --path release.canary -s dev",
        "pulumi config set --path release.version v1.6.0 -s dev",
    ]


def test_canary_start_on_a_canary_stack_replaces_the_canary_and_keeps_its_plan(project):
    before = (project / "Pulumi.prod.yaml").read_text()
    run(project, "prod", partial(rc.canary_set, weight=50))
    run(project, "prod", partial(rc.canary_start, version=V160))
    assert changed_lines(before, (project / "Pulumi.prod.yaml").read_text()) == [
        f"-      version: {V150}",
        f"+      version: {V160}",  # weight back at the first step, 10
    ]


def test_canary_abort_sends_everything_back_to_stable(project):
    edit = run(project, "prod", rc.canary_abort)
    rendered = render_file(project, "prod")
    assert rendered.outputs["tracks"] == {"stable": {"version": V142, "weightPercent": 100}}
    assert set(images(rendered)) == {"plexichat-web-stable", "plexichat-worker-stable"}
    assert not [c for c in edit.diff.changes if c.kind == "added"]


def test_blue_green_lifecycle_deploy_preview_switch_rollback(repo):
    path = repo / "Pulumi.staging.yaml"
    original = path.read_text()

    edit = run(repo, "staging", partial(rc.deploy, version="v1.6.0"))
    assert changed_lines(original, path.read_text()) == [
        "-    green: v1.5.0",
        "+    green: v1.6.0",
    ]
    # Preview: the new version runs on the inactive colour, with no live traffic and no workers.
    rendered = render_file(repo, "staging")
    assert rendered.outputs["tracks"]["green"] == {"version": "v1.6.0", "weightPercent": 0}
    assert rendered.outputs["activeColour"] == "blue" and rendered.outputs["workerVersion"] == "v1.4.2"
    assert {c.label for c in edit.diff.changes} == {
        "Deployment plexichat-web-green",  # the new version on the idle colour ...
        "Telemetry plexichat-web-green",  # ... its traces tagged with that version ...
        "Job plexichat-migrate-v1-6-0",  # ... after its migration
        "Job plexichat-migrate-v1-5-0",
    }
    commit(repo, "deploy v1.6.0 on green")

    edit = run(repo, "staging", rc.switch)
    assert changed_lines(original, path.read_text()) == [
        "-    active: blue",
        "+    active: green",
        "-    green: v1.5.0",
        "+    green: v1.6.0",
    ]
    rendered = render_file(repo, "staging")
    assert rendered.outputs["tracks"]["green"] == {"version": "v1.6.0", "weightPercent": 100}
    assert rendered.outputs["workerVersion"] == "v1.6.0"
    # Only routing and the worker (which follows the active colour) change on a flip.
    assert {c.label for c in edit.diff.changes} == {
        "VirtualService plexichat-web",
        "Deployment plexichat-worker-stable",
    }
    commit(repo, "switch to green")

    edit = run(repo, "staging", partial(rc.rollback, history=history(repo, "staging")))
    assert edit.message.startswith("rollback: blue becomes active: live traffic v1.6.0 -> v1.4.2")
    assert "v1.6.0 stays on the idle colour green" in edit.message
    # No downgrade: the schema stays at v1.6.0, and the operator hears it.
    assert "note: the schema stays migrated to v1.6.0 (no automatic downgrade): v1.4.2 runs on it" in edit.message
    assert schema_of(repo, "staging") == "v1.6.0"  # a rollback never lowers it
    assert not [c for c in edit.diff.changes if c.label.startswith("Job ")]
    assert render_file(repo, "staging").outputs["workerVersion"] == "v1.4.2"
    assert changed_lines(original, path.read_text()) == [
        "-    green: v1.5.0",
        "+    green: v1.6.0",
    ]


def test_a_flip_warns_when_the_colour_going_live_was_not_sized_for_it(project):
    """Staging sizes both colours for all traffic (requestsPerSecondPerPod): a quiet flip. A
    stack without it hears that the new live colour has been idling at minReplicas."""
    path = project / "Pulumi.staging.yaml"
    data = yaml.safe_load(path.read_text())
    web = data["config"]["plexichat:workloads"]["web"]
    if "requestsPerSecondPerPod" not in web:
        path.write_text(
            path.read_text().replace("      role: web\n", "      role: web\n      requestsPerSecondPerPod: 50\n", 1)
        )
    assert "note:" not in run(project, "staging", rc.switch).message
    path.write_text(
        "".join(line for line in path.read_text().splitlines(keepends=True) if "requestsPerSecondPerPod" not in line)
    )
    message = run(project, "staging", rc.switch).message
    assert message.startswith("active colour green -> blue")
    assert f"note: blue has been idling at minReplicas ({web['minReplicas']})" in message
    assert "requestsPerSecondPerPod" in message


# ---------------------------------------------------------------------------------------------
# Rollback: the release live before the current one, found in the stack file's git history


def step(repo, stack: str, change, message: str | None = None) -> rc.Edit:
    """One release command, committed like every release edit."""
    edit = run(repo, stack, change)
    commit(repo, message or edit.message)
    return edit


def rollback(repo, stack: str) -> rc.Edit:
    return step(repo, stack, partial(rc.rollback, history=history(repo, stack)))


def test_after_promote_then_an_aborted_canary_rollback_returns_to_the_release_before_the_promote(repo):
    """The sequence from the issue: rollback must land on the version live before v1.6.0, as a
    plain rolling release, not on an old canary at 100% with stable on v1.4.2."""
    pin_release(repo / "Pulumi.prod.yaml", "prod", f"strategy: rolling\nversion: {V142}\n")
    commit(repo, "prod runs v1.4.2")
    step(repo, "prod", partial(rc.canary_start, version=V160, steps=[10, 50, 100]))
    step(repo, "prod", rc.canary_next)
    step(repo, "prod", rc.canary_next)
    step(repo, "prod", rc.canary_promote)
    step(repo, "prod", partial(rc.canary_start, version=V170))
    step(repo, "prod", rc.canary_abort)
    assert release_of(repo, "prod") == {"strategy": "rolling", "version": V160}

    edit = rollback(repo, "prod")
    assert release_of(repo, "prod") == {"strategy": "rolling", "version": V142}
    assert edit.message.startswith(f"rollback: {V142} goes live again in place of {V160} (rolling update;")
    assert "{" not in edit.message  # words, not a Python dict


def test_a_second_rollback_goes_further_back_never_to_the_release_just_rolled_back(project):
    repo = project
    pin_release(repo / "Pulumi.dev.yaml", "dev", "strategy: rolling\nversion: v1.3.0\n")
    run_git(repo, "init", "--quiet")
    commit(repo, "v1.3.0: the history starts here")
    for version in ("v1.4.0", "v1.5.0"):
        step(repo, "dev", partial(rc.deploy, version=version))
    assert rollback(repo, "dev").message.startswith("rollback: v1.4.0 goes live again in place of v1.5.0")
    assert rollback(repo, "dev").message.startswith("rollback: v1.3.0 goes live again in place of v1.4.0")
    before = (repo / "Pulumi.dev.yaml").read_bytes()
    with pytest.raises(rc.ReleaseError, match=r"nothing to roll back to: v1\.3\.0 is the only version"):
        rollback(repo, "dev")  # never forward again to the v1.4.0 or v1.5.0 just abandoned
    assert (repo / "Pulumi.dev.yaml").read_bytes() == before


def test_a_rollback_of_an_uncommitted_deploy_returns_to_the_committed_release(repo):
    step(repo, "dev", partial(rc.deploy, version="v1.6.0"))
    run(repo, "dev", partial(rc.deploy, version="v1.7.0"))  # not committed yet
    edit = run(repo, "dev", partial(rc.rollback, history=history(repo, "dev")))
    assert edit.message.startswith("rollback: v1.6.0 goes live again in place of v1.7.0")


def test_a_release_can_go_out_again_after_its_rollback_and_be_rolled_back_again(repo):
    step(repo, "dev", partial(rc.deploy, version="v1.6.0"))
    rollback(repo, "dev")  # v1.6.0 -> v1.5.0
    step(repo, "dev", partial(rc.deploy, version="v1.6.1"))  # the fix
    assert rollback(repo, "dev").message.startswith("rollback: v1.5.0 goes live again in place of v1.6.1")


def test_blue_green_rollback_after_a_deploy_to_the_idle_colour_never_makes_it_live(repo):
    """The idle colour's new version was never live: there is nothing to roll back, and the
    rollback must not flip onto that untested version."""
    step(repo, "staging", partial(rc.deploy, version="v1.6.0"))
    path = repo / "Pulumi.staging.yaml"
    before = path.read_bytes()
    with pytest.raises(rc.ReleaseError, match=r"nothing to roll back to: v1\.4\.2 is the only version live"):
        run(repo, "staging", partial(rc.rollback, history=history(repo, "staging")))
    assert path.read_bytes() == before


def test_blue_green_rollback_after_switch_then_deploy_puts_the_old_release_back_on_the_idle_colour(repo):
    step(repo, "staging", partial(rc.deploy, version="v1.6.0"))
    step(repo, "staging", rc.switch)  # green v1.6.0 live, blue v1.4.2 idle
    step(repo, "staging", partial(rc.deploy, version="v1.7.0"))  # onto blue: v1.4.2 is gone
    edit = rollback(repo, "staging")
    assert release_of(repo, "staging") == {
        "strategy": "blueGreen",
        "active": "blue",
        "blue": "v1.4.2",
        "green": "v1.6.0",
    }
    assert edit.message.startswith("rollback: blue gets v1.4.2 (was v1.7.0), then blue becomes active")


def test_canary_rollback_is_an_abort_and_needs_no_history(project):
    edit = run(project, "prod", partial(rc.rollback, history=history(project, "prod")))
    assert edit.message.startswith(f"rollback: canary {V150} aborted: all traffic back to stable {V142}")
    assert release_of(project, "prod") == {"strategy": "rolling", "version": V142}


# ---------------------------------------------------------------------------------------------
# The header route and the plan come back with the next canary


def test_promote_and_abort_say_the_header_and_plan_come_back_and_the_next_canary_gets_them(repo):
    edit = step(repo, "prod", rc.canary_promote)
    assert (
        "the header route x-plexichat-canary: true, plan [10, 25, 50, 100] come back with the next `canary start`"
    ) in edit.message
    edit = step(repo, "prod", partial(rc.canary_start, version=V160, history=history(repo, "prod")))
    assert "header route x-plexichat-canary: true as in the last canary" in edit.message
    assert release_of(repo, "prod")["canary"] == {
        "version": V160,
        "weight": 10,
        "steps": [10, 25, 50, 100],
        "header": {"name": "x-plexichat-canary", "value": "true"},
    }
    step(repo, "prod", rc.canary_abort)
    step(repo, "prod", partial(rc.canary_start, version=V161, no_header=True, history=history(repo, "prod")))
    assert "header" not in release_of(repo, "prod")["canary"]
    assert release_of(repo, "prod")["canary"]["steps"] == [10, 25, 50, 100]


def test_canary_start_takes_a_header_and_the_file_quotes_a_value_that_looks_like_a_boolean(project):
    path = project / "Pulumi.dev.yaml"
    edit = run(project, "dev", partial(rc.canary_start, version="v1.6.0", header={"name": "x-beta", "value": "true"}))
    assert release_of(project, "dev")["canary"]["header"] == {"name": "x-beta", "value": "true"}
    assert "no request reaches it" not in edit.message  # the header route reaches it
    assert render_file(project, "dev").outputs["canaryWeightPercent"] == 0
    assert "x-beta" in path.read_text()


def test_canary_start_without_weight_plan_or_header_warns_that_nothing_reaches_it(project):
    edit = run(project, "dev", partial(rc.canary_start, version="v1.6.0"))
    assert "no request reaches it yet (weight 0, no header route)" in edit.message


# ---------------------------------------------------------------------------------------------
# The rest of the edit machinery


def test_config_set_equivalents_quote_strings_that_look_like_numbers():
    assert _config_set("release.canary.header.value", "true", "prod") == (
        "pulumi config set --path release.canary.header.value true --type string -s prod"
    )
    assert _config_set("release.canary.steps[0]", 10, "prod") == (
        "pulumi config set --path 'release.canary.steps[0]' 10 -s prod"
    )


def test_the_command_line_edits_prints_and_explains_apply_without_the_pulumi_cli(project):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no `pulumi` on it

    def plexictl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "plexictl", "--project-dir", str(project), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = plexictl("canary", "next", "--stack", "prod", "--apply")
    assert result.returncode == rc.NOT_APPLIED == 3, result.stderr  # edited, but nothing deployed
    assert "prod: canary weight 10% -> 25% (step 2 of 4)" in result.stdout
    assert "pulumi config set --path release.canary.weight 25 -s prod" in result.stdout
    assert "the Pulumi CLI is not installed here" in result.stdout
    # Exactly what the Automation API path runs, mandatory policy pack included.
    assert f"pulumi up --stack prod --cwd {project} --policy-pack {project / 'policy'}" in result.stdout
    assert rc.pulumi_up_command("prod", project)[-2:] == ["--policy-pack", str(project / "policy")]
    assert "weight: 25" in (project / "Pulumi.prod.yaml").read_text()

    before = (project / "Pulumi.prod.yaml").read_bytes()
    result = plexictl("canary", "set", "30", "--stack", "prod")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "must be 0 or one of the steps" in result.stderr
    assert (project / "Pulumi.prod.yaml").read_bytes() == before


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

    monkeypatch.setattr(pulumi_up.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "select_stack", select_stack)
    assert rc.apply("prod", ROOT) == 0
    (_, selected), (_, up) = calls
    assert selected == {"stack_name": "prod", "work_dir": str(ROOT)}
    assert up["show_secrets"] is False  # the Automation API shows secrets unless told not to
    # The same pack the printed CLI command names.
    assert up["policy_packs"] == [rc.pulumi_up_command("prod", ROOT)[-1]] == [str(ROOT / "policy")]
    assert "pulumi up: succeeded" in capsys.readouterr().out


def test_a_dry_run_shows_the_edit_and_writes_nothing(project):
    path = project / "Pulumi.staging.yaml"
    before = path.read_bytes()
    edit = rc.edit_stack("staging", path, rc.switch, write=False, root=project)
    assert path.read_bytes() == before
    assert changed_lines(edit.old_text, edit.new_text) == ["-    active: blue", "+    active: green"]


def test_an_edit_that_repairs_a_broken_file_is_allowed(project):
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("weight: 10", "weight: 30"))  # not a step
    edit = run(project, "prod", partial(rc.canary_set, weight=25))
    assert "weight: 25" in path.read_text()
    assert edit.diff.note == "Pulumi.prod.yaml was invalid before this edit; everything shows as added"


def test_a_command_refuses_when_a_key_it_reads_is_invalid(project):
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("weight: 10", "weight: 30"))
    before = path.read_bytes()
    with pytest.raises(rc.ReleaseError) as raised:
        run(project, "prod", rc.canary_next)  # `next` reads the weight: it cannot guess
    assert str(raised.value) == (
        "Pulumi.prod.yaml is invalid where this command reads it; fix it first:\n"
        "  - plexichat:release.canary.weight: must be 0 or one of the steps [10, 25, 50, 100] (got 30)"
    )
    assert path.read_bytes() == before


def test_a_request_that_changes_nothing_says_so_and_writes_nothing(project):
    path = project / "Pulumi.dev.yaml"
    before = path.read_bytes()
    version = yaml.safe_load(PINNED_RELEASES["dev"])["version"]
    with pytest.raises(rc.NothingToDo, match="already as requested"):
        run(project, "dev", partial(rc.deploy, version=version))
    assert path.read_bytes() == before


def test_release_pause_and_resume_edit_one_key_and_the_loop_honours_it(project):
    path = project / "Pulumi.prod.yaml"
    before = path.read_text()

    def plexictl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "plexictl", "--project-dir", str(project), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = plexictl("release", "pause", "--stack", "prod")
    assert result.returncode == 0, result.stderr
    assert changed_lines(before, path.read_text()) == ["+    paused: true"]
    assert release_of(project, "prod")["paused"] is True
    result = plexictl("release", "pause", "--stack", "prod")
    assert result.returncode == 0 and "nothing to do" in result.stdout
    result = plexictl("release", "resume", "--stack", "prod")
    assert result.returncode == 0 and path.read_text() == before
