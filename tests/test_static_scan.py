"""checkov over every stack's rendering: the Kubernetes manifests and the AWS resources as a
Terraform plan (`terraform-plan.json`), each with zero unwaived failed checks.

Accepted findings live in one place, each with its reason: `.checkov-waivers.yaml` waives a check
per stack and resource (checkov can only skip a check everywhere, and a plan JSON has no inline
skips), applied here; neither checkov config skips anything. checkov
lives in its own venv (`.venv-checkov`, made by `make test` from requirements-checkov.txt)
because it cannot share pinned dependencies with pulumi. One checkov run per stack and scan, the
three stacks in parallel.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from plexictl import render
from plexictl.offline import ROOT, terraform_plan
from tests.conftest import STACKS, rendered
from tests.tools import missing

CONFIG = ROOT / ".checkov.yaml"
AWS_CONFIG = ROOT / ".checkov-aws.yaml"
WAIVERS = ROOT / ".checkov-waivers.yaml"


def checkov() -> str:
    venv = ROOT / ".venv-checkov" / "bin" / "checkov"
    found = str(venv) if venv.exists() else shutil.which("checkov")
    if not found:
        missing("checkov", "PLEXICHAT_REQUIRE_CHECKOV", "`make test` creates .venv-checkov")
    return found


@pytest.fixture(scope="module")
def render_dirs(tmp_path_factory) -> dict[str, pathlib.Path]:
    dirs = {stack: tmp_path_factory.mktemp(stack) for stack in STACKS}
    for stack, out in dirs.items():
        render.write(rendered(stack), out)  # what `plexictl render --stack S --out DIR` writes
    return dirs


def scan(scans: dict[str, list[str]]) -> dict[str, dict]:
    """checkov with each stack's arguments, all at once; each stack's JSON report."""
    binary = checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no platform lookups, offline
    runs = {
        stack: subprocess.Popen(
            [binary, *args, "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for stack, args in scans.items()
    }
    results = {}
    for stack, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert stdout.strip(), f"checkov printed nothing for {stack}: {stderr[-2000:]}"
        report = json.loads(stdout)
        # One framework gives one report object; checkov prints a list when there are several.
        results[stack] = report[0] if isinstance(report, list) else report
    return results


# --- the Kubernetes manifests ----------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(render_dirs) -> dict[str, dict]:
    return scan(
        {
            stack: ["--config-file", str(CONFIG), "-d", str(out / "kubernetes"), "--framework", "kubernetes", "--quiet"]
            for stack, out in render_dirs.items()
        }
    )


@pytest.mark.external
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_unwaived_in_the_rendered_manifests(reports, stack):
    report = reports[stack]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 10 and summary["passed"] > 100  # it really scanned
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']}"
        for f in report["results"]["failed_checks"]
        if not waived(stack, f["check_id"], f["resource"])
    ]
    assert failed == [], "fix it, or waive it with its reason in .checkov-waivers.yaml"


def test_nothing_is_skipped_globally_or_inline():
    for config in (CONFIG, AWS_CONFIG):
        assert "skip-check" not in yaml.safe_load(config.read_text()), f"{config.name}: waive per resource instead"
    inline = [
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("components/**/*.py"), *ROOT.glob("plexictl/**/*.py"), ROOT / "__main__.py"]
        if "checkov:skip" in p.read_text() or "checkov.io/skip" in p.read_text()
    ]
    assert inline == [], "waive findings in .checkov-waivers.yaml only"


# --- the AWS resources as a Terraform plan ----------------------------------------------------


@pytest.fixture(scope="module")
def aws_reports(render_dirs) -> dict[str, dict]:
    # Not --quiet: the passed checks are listed too, which show that the scan followed references.
    return scan(
        {
            stack: ["--config-file", str(AWS_CONFIG), "-f", str(out / render.PLAN_FILE)]
            for stack, out in render_dirs.items()
        }
    )


@functools.cache
def waivers() -> list[dict]:
    return yaml.safe_load(WAIVERS.read_text())


def covers(waiver: dict, stack: str, check_id: str, resource: str) -> bool:
    return (
        waiver["check"] == check_id
        and stack in waiver["stacks"]
        and any(fnmatch.fnmatchcase(resource, pattern) for pattern in waiver["resources"])
    )


def waived(stack: str, check_id: str, resource: str) -> bool:
    return any(covers(w, stack, check_id, resource) for w in waivers())


@functools.cache
def plan_addresses(stack: str) -> set[str]:
    return {r["address"] for r in terraform_plan.plan(rendered(stack))["planned_values"]["root_module"]["resources"]}


@functools.cache
def addresses(stack: str) -> set[str]:
    """checkov's names of the stack's AWS resources (plan addresses) and Kubernetes objects."""
    objects = [r.manifest() for r in rendered(stack).kubernetes_objects()]
    return plan_addresses(stack) | {
        f"{m['kind']}.{m['metadata'].get('namespace', 'default')}.{m['metadata']['name']}" for m in objects
    }


def outcomes(report: dict, result: str) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in report["results"].get(f"{result}_checks", [])}


@pytest.mark.external
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_unwaived_in_the_aws_plan(aws_reports, stack):
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']}"
        for f in aws_reports[stack]["results"]["failed_checks"]
        if not waived(stack, f["check_id"], f["resource"])
    ]
    assert failed == [], "fix it, or waive it with its reason in .checkov-waivers.yaml"


@pytest.mark.external
@pytest.mark.parametrize("stack", STACKS)
def test_the_aws_scan_reads_every_resource_and_follows_the_references(aws_reports, stack):
    report = aws_reports[stack]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == len(plan_addresses(stack))  # every AWS resource was read
    assert summary["passed"] > 150
    # Graph checks that pass only when the plan links a bucket to its side resources (public
    # access block, default encryption, lifecycle): without `references` they fail.
    bucket = "aws_s3_bucket.backups-bucket"
    if bucket not in plan_addresses(stack):  # a DR stack's buckets are its primary's (docs/dr.md)
        return
    assert {("CKV2_AWS_6", bucket), ("CKV_AWS_145", bucket), ("CKV2_AWS_61", bucket)} <= outcomes(report, "passed")


def test_every_waiver_names_a_check_its_stacks_resources_and_a_reason():
    for w in waivers():
        assert set(w) == {"check", "stacks", "resources", "reason"}, w
        assert re.fullmatch(r"CKV2?_(AWS|K8S)_\d+", w["check"]), w
        assert w["stacks"] and set(w["stacks"]) <= set(STACKS), w
        assert len(w["reason"]) > 40, f"{w['check']}: say why it is accepted"
        for pattern in w["resources"]:
            found = any(fnmatch.filter(addresses(stack), pattern) for stack in w["stacks"])
            assert found, f"{w['check']}: nothing is named {pattern}"


@pytest.mark.external
def test_every_waiver_still_matches_a_failure(reports, aws_reports):
    """A waiver for a finding that is gone (fixed, or the resource renamed) must go too: each
    pattern must cover a failure in every stack it names."""
    failures = {stack: outcomes(reports[stack], "failed") | outcomes(aws_reports[stack], "failed") for stack in STACKS}
    stale = [
        f"{w['check']} {pattern} in {stack}"
        for w in waivers()
        for stack in w["stacks"]
        for pattern in w["resources"]
        if fnmatch.filter(addresses(stack), pattern)
        and not any(c == w["check"] and fnmatch.fnmatchcase(r, pattern) for c, r in failures[stack])
    ]
    assert stale == [], "remove these waivers from .checkov-waivers.yaml"
