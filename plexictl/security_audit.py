"""`plexictl security-audit`: pip-audit's findings against the runbook's patch window.

The runbook asks for security patches within 30 days. pip-audit says which pinned dependency has
a known vulnerability, not since when; the advisory's publication date comes from OSV
(`GET https://api.osv.dev/v1/vulns/<id>`, its `published` field), the earliest over the finding's
id and aliases (a PYSEC and a GHSA record of one flaw may be published days apart: the clock starts
at the first). A finding older than the window fails the check; a younger one is a warning. A
finding whose age cannot be established (no OSV record for any of its ids) fails too: the check
cannot show it is inside the window.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

OSV_API = "https://api.osv.dev/v1/vulns/"
PATCH_WINDOW_DAYS = 30
"""The runbook's deadline for a security patch, from the advisory's publication."""


class AuditError(Exception):
    """A report that is not pip-audit's JSON, or an OSV answer that is not OSV's."""


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]
    published: dt.datetime | None = None

    def age_days(self, now: dt.datetime) -> int | None:
        return None if self.published is None else (now - self.published).days

    def describe(self, now: dt.datetime) -> str:
        fix = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version yet"
        age = self.age_days(now)
        when = "publication date unknown" if age is None else f"published {self.published:%Y-%m-%d}, {age} days ago"
        ids = ", ".join((self.id, *self.aliases))
        return f"{self.package} {self.version}: {ids} ({when}; {fix})"


def findings(report: Any) -> list[Finding]:
    """The vulnerabilities of a pip-audit JSON report (`--format json`; the legacy list form too)."""
    dependencies = report.get("dependencies") if isinstance(report, dict) else report
    if not isinstance(dependencies, list):
        raise AuditError("not a pip-audit JSON report: no `dependencies` list")
    found = []
    for dependency in dependencies:
        for vuln in dependency.get("vulns") or []:  # a skipped dependency has `skip_reason` instead
            found.append(
                Finding(
                    package=str(dependency["name"]),
                    version=str(dependency.get("version", "?")),
                    id=str(vuln["id"]),
                    aliases=tuple(sorted(str(a) for a in vuln.get("aliases") or [] if a != vuln["id"])),
                    fix_versions=tuple(str(v) for v in vuln.get("fix_versions") or []),
                )
            )
    return sorted(set(found), key=lambda f: (f.package, f.id))


Fetch = Callable[[str], dict[str, Any] | None]
"""An advisory id -> its OSV record, or None when OSV has none under that id."""


def osv_fetcher(base_url: str = OSV_API, timeout_seconds: float = 20) -> Fetch:
    def fetch(advisory: str) -> dict[str, Any] | None:
        url = base_url.rstrip("/") + "/" + urllib.parse.quote(advisory, safe="")
        try:
            with urllib.request.urlopen(url, timeout=timeout_seconds) as response:
                record = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:  # an alias (a CVE) OSV does not hold as a record of its own
                return None
            raise AuditError(f"OSV answered {error.code} for {advisory}: {error.reason}") from None
        if not isinstance(record, dict):
            raise AuditError(f"OSV's answer for {advisory} is not an object")
        return record

    return fetch


def published(finding: Finding, fetch: Fetch) -> dt.datetime | None:
    """The earliest publication of the finding's advisory, over its id and aliases."""
    dates = []
    for advisory in (finding.id, *finding.aliases):
        record = fetch(advisory)
        if record is not None and isinstance(record.get("published"), str):
            dates.append(_timestamp(record["published"], advisory))
    return min(dates, default=None)


def _timestamp(text: str, advisory: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AuditError(f"OSV's `published` for {advisory} is not a timestamp: {text!r}") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


@dataclass
class Assessment:
    overdue: list[Finding]
    """Older than the patch window, or of unknown age: the check fails."""
    within: list[Finding]
    """Inside the window: warnings."""

    @property
    def failed(self) -> bool:
        return bool(self.overdue)


def assess(found: Iterable[Finding], fetch: Fetch, now: dt.datetime) -> Assessment:
    dated = [Finding(**{**f.__dict__, "published": published(f, fetch)}) for f in found]
    overdue = [f for f in dated if (age := f.age_days(now)) is None or age > PATCH_WINDOW_DAYS]
    return Assessment(overdue, [f for f in dated if f not in overdue])


def markdown(assessment: Assessment, now: dt.datetime) -> str:
    lines = ["## Security audit (pip-audit)", ""]
    if not assessment.overdue and not assessment.within:
        return "\n".join([*lines, "No known vulnerability in the pinned dependencies.", ""])
    if assessment.overdue:
        lines += [
            f"**{len(assessment.overdue)} finding(s) past the {PATCH_WINDOW_DAYS}-day patch window** "
            "(or of unknown age): patch now.",
            "",
        ]
        lines += [f"- :x: {f.describe(now)}" for f in assessment.overdue] + [""]
    if assessment.within:
        lines += [f"{len(assessment.within)} finding(s) inside the patch window:", ""]
        lines += [f"- :warning: {f.describe(now)}" for f in assessment.within] + [""]
    return "\n".join(lines)


def workflow_commands(assessment: Assessment, now: dt.datetime) -> list[str]:
    """GitHub workflow commands: an error per overdue finding, a warning per young one."""
    return [f"::error title=Security patch overdue::{f.describe(now)}" for f in assessment.overdue] + [
        f"::warning title=Security patch due within {PATCH_WINDOW_DAYS} days::{f.describe(now)}"
        for f in assessment.within
    ]


def read_reports(paths: Iterable[pathlib.Path]) -> list[Finding]:
    found: set[Finding] = set()
    for path in paths:
        try:
            found.update(findings(json.loads(path.read_text())))
        except (OSError, ValueError, AuditError) as error:
            raise AuditError(f"cannot read {path}: {error}") from None
    return sorted(found, key=lambda f: (f.package, f.id))
