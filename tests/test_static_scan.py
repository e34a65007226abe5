"""checkov over every stack's rendered Kubernetes manifests: zero failed checks.

Accepted findings are skipped in ONE place, `.checkov.yaml`, each with its reason. checkov lives
in its own venv (`.venv-checkov`, made by `make test` from requirements-checkov.txt) because it
cannot share pinned dependencies with pulumi. One checkov run per stack, the three in parallel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from plexictl import render
from plexictl.offline import ROOT
from tests.conftest import STACKS, rendered
from tests.tools import missing

CONFIG = ROOT / ".checkov.yaml"


def checkov() -> str:
    venv = ROOT / ".venv-checkov" / "bin" / "checkov"
    found = str(venv) if venv.exists() else shutil.which("checkov")
    if not found:
        missing("checkov", "PLEXICHAT_REQUIRE_CHECKOV", "`make test` creates .venv-checkov")
    return found


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    binary = checkov()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no platform lookups, offline
    runs = {}
    for stack in STACKS:
        out = tmp_path_factory.mktemp(stack)
        render.write(rendered(stack), out)  # what `plexictl render --stack S --out DIR` writes
        runs[stack] = subprocess.Popen(
            [
                binary,
                "--config-file",
                str(CONFIG),
                "-d",
                str(out / "kubernetes"),
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    results = {}
    for stack, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert stdout.strip(), f"checkov printed nothing for {stack}: {stderr[-2000:]}"
        report = json.loads(stdout)
        # One framework gives one report object; checkov prints a list when there are several.
        results[stack] = report[0] if isinstance(report, list) else report
    return results


@pytest.mark.external
@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_in_the_rendered_manifests(reports, stack):
    report = reports[stack]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 10 and summary["passed"] > 100  # it really scanned
    failed = [f"{f['check_id']} {f['check_name']}: {f['resource']}" for f in report["results"]["failed_checks"]]
    assert failed == []


def test_every_accepted_finding_has_its_reason_in_the_one_config_file():
    lines = CONFIG.read_text().splitlines()
    skips = [n for n, line in enumerate(lines) if re.match(r"\s*-\s*CKV", line)]
    assert skips, "no skip-check entries: drop this test or the file"
    for n in skips:
        assert lines[n - 1].lstrip().startswith("#"), f"{lines[n].strip()} has no reason above it"
    inline = [
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("components/*.py"), *ROOT.glob("plexictl/*.py"), ROOT / "__main__.py"]
        if "checkov:skip" in p.read_text()
    ]
    assert inline == [], "suppress findings in .checkov.yaml only"
