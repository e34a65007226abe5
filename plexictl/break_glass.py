"""`plexictl break-glass`: a database session for an incident (docs/admin-access.md).

It writes the session pod's manifest and prints the kubectl commands that start it, attach to it
and end it; with `--start` it runs them. The pod is everything the stack declared for it
(components/identity/break_glass_access.py): the break-glass ServiceAccount and its IRSA role,
the connection ConfigMap, the session label its NetworkPolicy selects and the admission policy
requires, and the reason, which the admission policy also requires and the EKS audit log keeps.
An init container signs the 15-minute IAM token; psql uses it at once and keeps its connection.
The pod ends itself after `sessionMinutes`, whoever forgets it.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import yaml

from plexictl import offline
from plexictl.exit_codes import EXIT_CANNOT_DEPLOY, EXIT_DONE, EXIT_INVALID

AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.31.0"
"""Signs the IAM token (`aws rds generate-db-auth-token`): psql's image has no AWS CLI."""
TOKEN_DIR = "/run/session"
KEY = "plexichat:adminAccess.breakGlass.enabled"


class BreakGlassError(Exception):
    """A request the stack cannot serve: the path is closed, or the reason is missing."""


def session_pod(stack: str, settings, *, reason: str, requested_by: str, now: datetime.datetime) -> dict:
    """The session pod's manifest for `stack` (its parsed StackSettings)."""
    from components import naming
    from components.cluster.database_bootstrap_job import PSQL_IMAGE
    from components.cluster.jobs import POD_ANNOTATIONS
    from components.cluster.pod_security import RUN_AS_UID
    from components.identity.app_access import BREAK_GLASS_SERVICE_ACCOUNT
    from components.identity.break_glass_access import REASON_ANNOTATION, SESSION, SESSION_CONFIG_MAP

    break_glass = settings.admin_access.break_glass
    if not break_glass.enabled:
        raise BreakGlassError(f"stack {stack} has no break-glass path: {KEY} is false (docs/admin-access.md)")
    if not reason.strip():
        raise BreakGlassError("--reason is required and must say why (it goes to the audit log)")
    user = re.sub(r"[^a-z0-9-]+", "-", requested_by.lower()).strip("-")[:20] or "someone"
    name = f"{naming.object_name(SESSION)}-{user}-{now:%Y%m%d%H%M%S}"
    security = {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_UID,
        "runAsGroup": RUN_AS_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    common = {
        "envFrom": [{"configMapRef": {"name": SESSION_CONFIG_MAP}}],
        "env": [{"name": "HOME", "value": "/tmp"}],  # the AWS CLI's cache; the root fs is read-only
        "securityContext": security,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "volumeMounts": [{"name": "session", "mountPath": TOKEN_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    sign = 'aws rds generate-db-auth-token --hostname "$PGHOST" --port "$PGPORT" --username "$PGUSER"'
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": {**naming.common_labels(stack), **naming.selector_labels(SESSION), naming.JOB_LABEL: SESSION},
            "annotations": {
                **POD_ANNOTATIONS,
                REASON_ANNOTATION: reason.strip(),
                "plexichat.com/break-glass-requested-by": requested_by,
            },
        },
        "spec": {
            "serviceAccountName": BREAK_GLASS_SERVICE_ACCOUNT,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": break_glass.session_minutes * 60,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS_UID,
                "runAsGroup": RUN_AS_UID,
                "fsGroup": RUN_AS_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [
                {
                    "name": "sign-token",
                    "image": AWS_CLI_IMAGE,
                    "command": ["sh", "-c", f"{sign} > {TOKEN_DIR}/token"],
                    **common,
                }
            ],
            "containers": [
                {
                    "name": "psql",
                    "image": PSQL_IMAGE,
                    "command": ["sh", "-c", f'PGPASSWORD="$(cat {TOKEN_DIR}/token)" exec psql'],
                    "stdin": True,
                    "stdinOnce": True,
                    "tty": True,
                    **common,
                }
            ],
            "volumes": [
                {"name": "session", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            ],
        },
    }


def kubectl_commands(context: str | None, manifest_path: pathlib.Path, pod: dict) -> list[list[str]]:
    """Start the session, attach to its psql, end it."""
    base = ["kubectl", *(["--context", context] if context else []), "--namespace", pod["metadata"]["namespace"]]
    name = pod["metadata"]["name"]
    return [
        [*base, "create", "--filename", str(manifest_path)],
        [*base, "wait", "--for=condition=Ready", "--timeout=120s", f"pod/{name}"],
        [*base, "attach", "--stdin", "--tty", f"pod/{name}", "--container", "psql"],
        [*base, "delete", f"pod/{name}", "--wait=false"],
    ]


def _run(args: argparse.Namespace) -> int:
    from components.config.parse import parse_stack_config

    config, secret_keys = offline.stack_config(args.stack, args.project_dir)
    settings = parse_stack_config(config, args.stack, secret_keys)
    try:
        pod = session_pod(
            args.stack,
            settings,
            reason=args.reason,
            requested_by=args.requested_by or getpass.getuser(),
            now=datetime.datetime.now(datetime.UTC),
        )
    except BreakGlassError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    out = pathlib.Path(args.out or f"{pod['metadata']['name']}.yaml")
    out.write_text(yaml.safe_dump(pod, sort_keys=False))
    commands = kubectl_commands(settings.kubernetes.context, out, pod)
    print(f"wrote the session pod to {out}; it ends itself in {settings.admin_access.break_glass.session_minutes} min")
    if not args.start:
        print("start it, attach to psql, and end it:\n" + "\n".join(f"  {shlex.join(c)}" for c in commands))
        return EXIT_DONE
    if shutil.which("kubectl") is None:
        print("error: --start needs kubectl on PATH; nothing was started", file=sys.stderr)
        return EXIT_CANNOT_DEPLOY
    for command in commands[:-1]:
        if subprocess.run(command, check=False).returncode != 0:
            break
    return subprocess.run(commands[-1], check=False).returncode and EXIT_CANNOT_DEPLOY


def add_break_glass_command(commands) -> None:
    p = commands.add_parser(
        "break-glass",
        help="a database session for an incident, as the read-only break-glass role, with a reason (audited)",
    )
    p.add_argument("--stack", required=True, help="the stack whose database to open (Pulumi.<stack>.yaml)")
    p.add_argument("--reason", required=True, help="why: the incident, ticket or page (kept in the audit log)")
    p.add_argument("--requested-by", help="who asks (default: the local user name)")
    p.add_argument("--out", help="where to write the pod manifest (default: <pod name>.yaml)")
    p.add_argument("--start", action="store_true", help="run the kubectl commands (start, attach, end)")
    p.set_defaults(run=_run)
