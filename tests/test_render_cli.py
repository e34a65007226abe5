"""`plexictl render`, the main job, as a user runs it: files, summary, and errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from plexictl.offline import ROOT
from tests.release_state import pinned_release, project_copy
from tests.test_diff import edit


def plexictl(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plexictl", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path):
    """A copy of the project with each stack at its pinned release: what a render shows, and the
    text a test edits, must not depend on the release operators ran today."""
    (tmp_path / "project").mkdir()
    return project_copy(tmp_path / "project")


def test_render_writes_one_manifest_per_object_and_a_summary(project, tmp_path):
    out = tmp_path / "out"
    result = plexictl("--project-dir", str(project), "render", "--stack", "prod", "--out", str(out))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (out / "kubernetes").iterdir())
    assert "deployment-plexichat-web-canary.yaml" in files
    assert "namespace-plexichat.yaml" in files
    deployment = yaml.safe_load((out / "kubernetes" / "deployment-plexichat-web-canary.yaml").read_text())
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert list(deployment)[:4] == ["apiVersion", "kind", "metadata", "spec"]
    canary = pinned_release("prod")["canary"]
    assert yaml.safe_load((out / "outputs.yaml").read_text())["canaryWeightPercent"] == canary["weight"]
    assert f"track canary  {canary['version']}" in result.stdout
    assert f"{canary['weight']}% of traffic" in result.stdout


def test_a_second_render_removes_objects_that_no_longer_exist(tmp_path):
    stale = tmp_path / "kubernetes" / "deployment-gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Deployment\n")
    assert plexictl("render", "--stack", "dev", "--out", str(tmp_path)).returncode == 0
    assert not stale.exists()


def test_config_error_prints_the_run_error_and_exits_non_zero(project, tmp_path):
    edit(project / "Pulumi.prod.yaml", "weight: 10", "weight: 150")  # the pinned canary's weight
    result = plexictl("--project-dir", str(project), "render", "--stack", "prod", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "plexichat:release.canary.weight: must be an integer percent from 0 to 100 (got 150)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_stack_is_a_clear_error():
    result = plexictl("render", "--stack", "qa")
    assert result.returncode == 1 and "Pulumi.qa.yaml" in result.stderr


def test_a_stack_file_that_is_not_yaml_is_a_clear_error(tmp_path):
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  plexichat:domain: [unclosed\n")
    result = plexictl("--project-dir", str(tmp_path), "render", "--stack", "dev", "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "error: Pulumi.dev.yaml, line 3, column 1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_shows_the_data_tier(tmp_path):
    result = plexictl("render", "--stack", "prod", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "database  primary plexichat-prod.c0ffee123456.us-east-1.rds.amazonaws.com (Multi-AZ)" in out
    assert "backups kept 30 days" in out and "2 read replica(s): plexichat-prod-replica-1." in out
    assert "cache     master.plexichat-prod." in out
    assert "DR        us-west-2: s3://plexichat-prod-backups-123456789012-dr" in out
    assert "None" not in out


def test_summary_of_a_dr_standby_names_whose_copies_it_uses(tmp_path):
    result = plexictl("render", "--stack", "prod-dr", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "backups   s3://plexichat-prod-backups-123456789012-dr, vault plexichat-prod-dr (owned by prod" in out
    assert "DR        this stack is the DR side of prod" in out
    assert "Traceback" not in result.stderr
