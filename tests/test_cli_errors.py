"""Bad input at the command line: exit code 1, one message naming the file, the key path and
what is allowed, no traceback, and every file of the project byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from plexictl.offline import ROOT
from plexictl.release import stack_file
from tests.release_state import project_copy


def break_file(stack: str, old: str, new: str):
    def edit(project: pathlib.Path) -> None:
        path = project / f"Pulumi.{stack}.yaml"
        text = path.read_text()
        assert old in text, f"{old!r} is not in {path.name}"
        path.write_text(text.replace(old, new, 1))

    return edit


DELETE = object()


def set_key(stack: str, path: str, value):
    """Set (or DELETE) `plexichat:<path>` in the stack file, the rest of it kept as it is."""

    def edit(project: pathlib.Path) -> None:
        file = project / f"Pulumi.{stack}.yaml"
        yaml = stack_file.round_trip_yaml()
        document = yaml.load(file.read_text())
        top, *rest = path.split(".")
        node, key = document["config"], f"plexichat:{top}"
        for part in rest:
            node, key = node[key], part
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
        buffer = io.StringIO()
        yaml.dump(document, buffer)
        file.write_text(buffer.getvalue())

    return edit


def both(*edits):
    def edit(project: pathlib.Path) -> None:
        for one in edits:
            one(project)

    return edit


def unchanged(project: pathlib.Path) -> None:
    """The request itself is the bad input."""


DUPLICATE_DOMAIN = "  plexichat:domain: app.plexichat.com\n  plexichat:domain: b.plexichat.com\n"

# (what the operator runs, how the file is broken first, the words the message must carry)
BAD_INPUTS = [
    (
        "switch --stack staging",
        break_file("staging", "active: blue", "active: purple"),
        ["Pulumi.staging.yaml", "plexichat:release.active: must be blue or green (got 'purple')"],
    ),
    (
        "switch --stack staging",
        break_file("staging", "    green: v1.5.0\n", ""),
        ["Pulumi.staging.yaml", "plexichat:release.green: required, but not set"],
    ),
    (
        "canary next --stack prod",
        break_file("prod", "weight: 10", 'weight: "ten"'),
        ["Pulumi.prod.yaml", "plexichat:release.canary.weight: must be an integer percent from 0 to 100 (got 'ten')"],
    ),
    (
        "canary next --stack prod",
        break_file("prod", "strategy: canary", "strategy: canary: yes"),
        ["Pulumi.prod.yaml, line ", "mapping values are not allowed"],
    ),
    (
        "render --stack prod",
        break_file("prod", "strategy: canary", "strategy: canary: yes"),
        ["Pulumi.prod.yaml, line ", "mapping values are not allowed"],
    ),
    (
        "render --stack prod",
        break_file("prod", "  plexichat:domain: app.plexichat.com\n", DUPLICATE_DOMAIN),
        ["Pulumi.prod.yaml, line ", "duplicate key 'plexichat:domain'", "may appear only once"],
    ),
    (
        "deploy v1.6.0 --stack dev",
        break_file(
            "dev",
            "  plexichat:domain: dev.plexichat.com\n",
            "  plexichat:domain: dev.plexichat.com\n  plexichat:domain: x.plexichat.com\n",
        ),
        ["Pulumi.dev.yaml, line ", "duplicate key 'plexichat:domain'"],
    ),
    (
        "canary next --stack prod",
        break_file("prod", "strategy: canary", "strategy: linear"),
        ["Pulumi.prod.yaml", "plexichat:release.strategy: must be one of rolling, canary, blueGreen (got 'linear')"],
    ),
    (
        "render --stack prod",
        break_file("prod", "      weight: 10\n", "      weight: 10\n      wieght: 10\n"),
        ["plexichat:release.canary.wieght: unknown key", "allowed here: analysis, header, steps, version, weight"],
    ),
    (
        "render --stack dev",
        break_file("dev", "  plexichat:release:", "  release:"),
        ["plexichat:release: written without its namespace as `release:`"],
    ),
    ("render --stack qa", unchanged, ["no stack 'qa'", "stacks here: dev, prod, prod-dr, staging"]),
    ("canary set 25 --stack qa", unchanged, ["no stack 'qa'", "stacks here: dev, prod, prod-dr, staging"]),
    ("canary set ten --stack prod", unchanged, ["argument weight: must be an integer percent, got 'ten'"]),
    ("canary next --stack prod --dry-run --apply", unchanged, ["not allowed with argument"]),
    ("canary start v1.6.0 --stack dev --header x-beta", unchanged, ["must be NAME=VALUE"]),
    ("canary start v1.6.0 --stack dev --header a=b --no-header", unchanged, ["not allowed with argument"]),
    ("canary unknown", unchanged, ["invalid choice: 'unknown'"]),
    (
        "canary next --stack dev",
        unchanged,
        [
            "`canary next` needs strategy canary, and this stack's is rolling",
            "a rolling stack releases with `deploy VERSION`",
        ],
    ),
    ("switch --stack prod", unchanged, ["`switch` needs strategy blueGreen, and this stack's is canary"]),
    ("deploy latest --stack dev", unchanged, ["plexichat:release.version: must be a release tag"]),
    # The CDN (docs/edge.md): nothing but assets goes through it, and nothing unprotected.
    (
        "render --stack staging",
        set_key("staging", "edge.cdn.pathPatterns", ["/api/*"]),
        ["Pulumi.staging.yaml", "plexichat:edge.cdn.pathPatterns.0: must not be under /api/"],
    ),
    (
        "render --stack prod",
        set_key("prod", "edge.cdn.pathPatterns", ["/*"]),
        ["plexichat:edge.cdn.pathPatterns.0: must be a CloudFront path pattern under one asset directory"],
    ),
    (
        "render --stack staging",
        set_key("staging", "edge.cdn.host", "staging.plexichat.com"),
        ["plexichat:edge.cdn.host: must be a host of its own, not the app's (staging.plexichat.com)"],
    ),
    # Dangerous settings, refused before anything is registered.
    (
        "render --stack dev",
        set_key("dev", "namespace", "kube-system"),
        [
            "Pulumi.dev.yaml",
            "plexichat:namespace: must be the app's own namespace, not default, istio-system or kube-*",
        ],
    ),
    (
        "render --stack dev",
        set_key("dev", "kubernetes.renderYamlToDirectory", "../../../../../etc/cron.d"),
        ["plexichat:kubernetes.renderYamlToDirectory: must be a relative path inside the project without '..'"],
    ),
    (
        "render --stack staging",
        set_key("staging", "network.vpcCidr", "0.0.0.0/0"),
        ["plexichat:network.vpcCidr: must be a private range", "(got '0.0.0.0/0')"],
    ),
    (
        "render --stack dev",
        set_key("dev", "kubernetes.context", DELETE),
        ["plexichat:kubernetes.context: required (the kubeconfig context of this stack's cluster)"],
    ),
    (
        "switch --stack staging",
        set_key("staging", "imageRepository", "ghcr.io/plexichat-evil/plexichat"),
        ["plexichat:imageRepository: must lie under one of allowedRegistries (ghcr.io/plexichat)"],
    ),
    (
        "render --stack prod",
        set_key("prod", "environment", DELETE),
        ["plexichat:environment: required, but not set; one of production, staging, development"],
    ),
    (
        "deploy v1.6.0 --stack dev",
        set_key("dev", "environment", "prod"),
        ["plexichat:environment: must be production, staging or development (got 'prod')"],
    ),
    (
        "render --stack prod",
        set_key("prod", "database.deletionProtection", False),
        ["plexichat:database.deletionProtection: is below the production floor: must be true", "got false"],
    ),
    (
        "canary next --stack prod",
        both(
            set_key("prod", "database.deletionProtection", False),
            set_key("prod", "productionFloorOverrides", {"database.deletionprotection": "teardown"}),
        ),
        [
            "plexichat:productionFloorOverrides.database.deletionprotection: is no production floor",
            "the floors are database.deletionProtection, ",
        ],
    ),
    (
        "render --stack prod",
        both(
            set_key("prod", "database.deletionProtection", False),
            set_key("prod", "productionFloorOverrides", {"database.deletionProtection": ""}),
        ),
        ["plexichat:productionFloorOverrides.database.deletionProtection: must not be empty"],
    ),
    # Tracing (docs/observability.md): the sampling is a percent, the provider one the mesh offers.
    (
        "render --stack staging",
        set_key("staging", "monitoring", {"tracing": {"extensionProviders": ["otel-tracing"], "samplingPercent": 150}}),
        ["Pulumi.staging.yaml", "plexichat:monitoring.tracing.samplingPercent: must be a percent from 0 to 100"],
    ),
    (
        "render --stack prod",
        set_key("prod", "monitoring", {"tracing": {"extensionProviders": ["otel-tracing"], "provider": "jaeger"}}),
        [
            "plexichat:monitoring.tracing.provider: must be one of the cluster's extensionProviders: otel-tracing",
            "(got 'jaeger')",
        ],
    ),
    # The break-glass path (docs/admin-access.md): the session asks for a reason; bad settings.
    (
        "render --stack prod",
        set_key("prod", "adminAccess.breakGlass.access", "admin"),
        ["Pulumi.prod.yaml", "plexichat:adminAccess.breakGlass.access: must be read or readWrite (got 'admin')"],
    ),
    (
        "break-glass --stack prod --reason ''",
        lambda project: None,
        ["--reason is required and must say why"],
    ),
    # Deployment windows and notifications (docs/releasing.md): an unknown day, an override with
    # no reason, a notification target given in plain text.
    (
        "deploy-window check --stack dev",
        set_key("dev", "deployWindows", [{"days": ["mon", "funday"], "hours": "09:00-16:00", "timeZone": "UTC"}]),
        ["plexichat:deployWindows.0.days.1: must be mon, tue, wed, thu, fri, sat or sun", "(got 'funday')"],
    ),
    ("canary next --stack prod --apply --emergency ' '", unchanged, ["an emergency override needs a reason"]),
    (
        "notify --stack dev --outcome deployed",
        set_key("dev", "deployChatWebhookUrl", "https://hooks.example.com/services/T0/B0/x"),
        ["plexichat:deployChatWebhookUrl: must be a secret", "pulumi config set --secret"],
    ),
    # Disaster recovery: the standby's own mistakes, and its primary's (read through its StackReference).
    (
        "render --stack prod-dr",
        set_key("prod-dr", "dr.primaryStack", DELETE),
        ["Pulumi.prod-dr.yaml", "plexichat:dr.primaryStack: required with role standby"],
    ),
    (
        "render --stack prod-dr",
        set_key("prod", "domain", "BAD"),
        ["stack prod-dr reads the outputs of stack prod (a StackReference), which does not render", "plexichat:domain"],
    ),
]


def fingerprint(project: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file() and "components" not in p.parts
    }


@pytest.mark.parametrize("command, damage, words", BAD_INPUTS, ids=[f"{i}:{b[0]}" for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_exits_1_with_one_clear_message_and_changes_nothing(tmp_path, command, damage, words):
    project = project_copy(tmp_path)
    damage(project)
    before = fingerprint(project)
    out = ["--out", str(project / "rendered")] if command.startswith("render ") else []
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}  # no Pulumi CLI: nothing deploys
    result = subprocess.run(
        [sys.executable, "-m", "plexictl", "--project-dir", str(project), *shlex.split(command), *out],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    # Nothing rendered (a render would write into the project: --out below), nothing edited.
    assert fingerprint(project) == before
    assert "wrote" not in result.stdout


def test_the_console_script_runs_from_any_directory(tmp_path):
    """`make demo` installs `plexictl` into the venv: the README's commands need no activation."""
    script = pathlib.Path(sys.executable).parent / "plexictl"
    if not script.exists():
        pytest.fail(f"{script} is missing: `make demo` installs it (pip install --editable .)")
    result = subprocess.run(
        [str(script), "render", "--stack", "dev", "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "outputs.yaml").exists()
