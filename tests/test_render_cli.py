"""`plexictl render`, the main job, as a user runs it: files, summary, and errors."""

from __future__ import annotations

import subprocess
import sys

import yaml

from plexictl.engine import ROOT


def plexictl(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plexictl", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_render_writes_one_manifest_per_object_and_a_summary(tmp_path):
    result = plexictl("render", "--stack", "prod", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "kubernetes").iterdir())
    assert "deployment-plexichat-web-canary.yaml" in files
    assert "namespace-plexichat.yaml" in files
    deployment = yaml.safe_load((tmp_path / "kubernetes" / "deployment-plexichat-web-canary.yaml").read_text())
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert list(deployment)[:4] == ["apiVersion", "kind", "metadata", "spec"]
    assert yaml.safe_load((tmp_path / "outputs.yaml").read_text())["canaryWeightPercent"] == 10
    assert "track canary  v1.5.0" in result.stdout and "10% of traffic" in result.stdout


def test_a_second_render_removes_objects_that_no_longer_exist(tmp_path):
    stale = tmp_path / "kubernetes" / "deployment-gone.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: Deployment\n")
    assert plexictl("render", "--stack", "dev", "--out", str(tmp_path)).returncode == 0
    assert not stale.exists()


def test_config_error_prints_the_run_error_and_exits_non_zero(tmp_path):
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "components").symlink_to(ROOT / "components")
    bad = (ROOT / "Pulumi.prod.yaml").read_text().replace("weight: 10", "weight: 150")
    (tmp_path / "Pulumi.prod.yaml").write_text(bad)
    result = plexictl("--project-dir", str(tmp_path), "render", "--stack", "prod", "--out", str(tmp_path / "out"))
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
    assert result.returncode == 1 and "not valid YAML" in result.stderr
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
