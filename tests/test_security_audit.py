"""Monthly dependency updates and the 30-day security patch window (issue #17, runbook).

`plexictl security-audit` reads pip-audit JSON reports and asks OSV when each advisory was
published; here OSV is a real local HTTP server answering in OSV's shape (`GET /v1/vulns/<id>`,
404 for an id it does not hold). The Dependabot configuration and the scheduled workflow are
checked against their schemas and for what the runbook asks of them."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import subprocess
import sys
import threading

import pytest
import yaml

from plexictl.offline import ROOT
from tests.test_workflows import load

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
PROVIDER_SDKS = {"pulumi", "pulumi-aws", "pulumi-kubernetes", "pulumi-policy"}


def report(*vulns: dict) -> dict:
    """pip-audit's `--format json` shape: dependencies with their vulns, and skipped ones."""
    return {
        "dependencies": [
            {"name": "requests", "version": "2.31.0", "vulns": list(vulns)},
            {"name": "pyyaml", "version": "6.0.3", "vulns": []},
            {"name": "plexichat-infra", "skip_reason": "Dependency not found on PyPI"},
        ],
        "fixes": [],
    }


def vuln(advisory: str, aliases: list[str]) -> dict:
    return {"id": advisory, "fix_versions": ["2.32.0"], "aliases": aliases, "description": "..."}


@pytest.fixture
def osv():
    """A local OSV: `records` maps an id to its publication date; other ids answer 404."""
    records: dict[str, dt.datetime] = {}
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            advisory = self.path.removeprefix("/v1/vulns/")
            asked.append(advisory)
            if advisory not in records:
                body, status = {"code": 5, "message": "Bug not found."}, 404
            else:
                published = records[advisory].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                body, status = {"id": advisory, "published": published, "modified": published, "aliases": []}, 200
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield records, asked, f"http://127.0.0.1:{server.server_address[1]}/v1/vulns/"
    server.shutdown()
    server.server_close()


def audit(tmp_path, osv_url: str, body: dict, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "pip-audit.json"
    path.write_text(json.dumps(body))
    summary = tmp_path / "summary.md"
    options = ["--osv-url", osv_url, "--now", NOW.isoformat(), "--summary", str(summary), *extra]
    return subprocess.run(
        [sys.executable, "-m", "plexictl", "security-audit", str(path), *options],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GITHUB_ACTIONS": "true"},
    )


def test_a_finding_published_31_days_ago_fails(osv, tmp_path):
    records, _, url = osv
    records["GHSA-aaaa-bbbb-cccc"] = NOW - dt.timedelta(days=31)
    result = audit(tmp_path, url, report(vuln("GHSA-aaaa-bbbb-cccc", ["CVE-2026-0001"])))
    assert result.returncode == 3, result.stderr
    assert "1 finding(s) past the 30-day patch window" in result.stdout
    assert "::error title=Security patch overdue::requests 2.31.0: GHSA-aaaa-bbbb-cccc, CVE-2026-0001" in result.stdout
    assert "31 days ago" in (tmp_path / "summary.md").read_text()


def test_a_finding_published_29_days_ago_warns_and_passes(osv, tmp_path):
    records, _, url = osv
    records["PYSEC-2026-1"] = NOW - dt.timedelta(days=29)
    result = audit(tmp_path, url, report(vuln("PYSEC-2026-1", [])))
    assert result.returncode == 0, result.stderr
    assert "::warning title=Security patch due within 30 days::requests 2.31.0: PYSEC-2026-1" in result.stdout
    assert "::error" not in result.stdout
    assert "1 finding(s) inside the patch window" in (tmp_path / "summary.md").read_text()


def test_no_finding_passes_without_asking_osv(osv, tmp_path):
    _, asked, url = osv
    result = audit(tmp_path, url, report())
    assert result.returncode == 0, result.stderr
    assert "No known vulnerability" in result.stdout and asked == []


def test_the_clock_starts_at_the_earliest_record_of_the_advisory(osv, tmp_path):
    """A PYSEC record published late for a GHSA published 40 days ago: overdue all the same."""
    records, asked, url = osv
    records["PYSEC-2026-2"] = NOW - dt.timedelta(days=3)
    records["GHSA-dddd-eeee-ffff"] = NOW - dt.timedelta(days=40)
    result = audit(tmp_path, url, report(vuln("PYSEC-2026-2", ["GHSA-dddd-eeee-ffff", "CVE-2026-0002"])))
    assert result.returncode == 3 and "40 days ago" in result.stdout
    assert sorted(asked) == ["CVE-2026-0002", "GHSA-dddd-eeee-ffff", "PYSEC-2026-2"]  # the CVE: a 404, skipped


def test_a_finding_of_unknown_age_fails(osv, tmp_path):
    _, _, url = osv
    result = audit(tmp_path, url, report(vuln("GHSA-zzzz-zzzz-zzzz", [])))
    assert result.returncode == 3 and "publication date unknown" in result.stdout


def test_a_file_that_is_not_a_pip_audit_report_is_a_clear_error(osv, tmp_path):
    _, _, url = osv
    result = audit(tmp_path, url, {"results": []})
    assert result.returncode == 1 and "not a pip-audit JSON report" in result.stderr


# --- the workflow and Dependabot -------------------------------------------------------------


def test_the_scheduled_audit_runs_pip_audit_on_every_requirements_file_and_judges_by_age():
    workflow = load("security-audit.yml")
    assert workflow["on"]["schedule"] and "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    script = "\n".join(s.get("run", "") for s in workflow["jobs"]["audit"]["steps"])
    (files,) = re.findall(r"for requirements in (.+); do", script)
    assert files.split() == [
        "requirements.txt",
        "requirements-dev.txt",
        "requirements-checkov.txt",
        "policy/requirements.txt",
    ]
    assert 'pip-audit -r "$requirements" --format json' in script
    assert re.search(r"plexictl security-audit .*--summary \"\$GITHUB_STEP_SUMMARY\"", script)


def dependabot() -> dict:
    return yaml.safe_load(DEPENDABOT.read_text())


@pytest.mark.external
def test_the_dependabot_file_matches_its_schema(tmp_path):
    def check(path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    result = check(DEPENDABOT)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "dependabot.yml"
    broken.write_text(
        "version: 2\nupdates:\n  - package-ecosystem: pip\n    directory: /\n    schedule: {interval: sometimes}\n"
    )
    assert check(broken).returncode != 0


def test_dependabot_updates_pip_npm_and_actions_monthly_with_the_sdks_in_one_pr():
    updates = {u["package-ecosystem"]: u for u in dependabot()["updates"]}
    assert set(updates) == {"pip", "npm", "github-actions"}
    for update in updates.values():
        assert update["schedule"]["interval"] == "monthly"
        assert update["directory"] == "/"
    # One pip entry at the root covers every requirements*.txt there (runtime, dev, checkov).
    (sdks,) = [g for g in updates["pip"]["groups"].values() if set(g["patterns"]) & PROVIDER_SDKS]
    assert set(sdks["patterns"]) == PROVIDER_SDKS
    pins = {
        line.split("==")[0]
        for name in ("requirements.txt", "requirements-dev.txt")
        for line in (ROOT / name).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert pins >= PROVIDER_SDKS  # the group names real pins, in the root's requirements files


def test_the_policy_packs_pins_follow_the_roots_in_the_same_pr():
    """policy/requirements.txt is outside Dependabot's root entry (a second directory would be a
    second PR); the SDK PR must carry its pins too, and this test fails until it does."""

    def pins(path) -> dict[str, str]:
        return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", path.read_text(), re.MULTILINE))

    policy = pins(ROOT / "policy" / "requirements.txt")
    root = {**pins(ROOT / "requirements.txt"), **pins(ROOT / "requirements-dev.txt")}
    assert policy and {name: root.get(name) for name in policy} == policy
