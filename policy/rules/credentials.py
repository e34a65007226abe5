"""Credentials travel as Pulumi secrets and Kubernetes Secrets, never as plain values."""

from __future__ import annotations

import re

from .subject import Subject, get, is_secret, is_unknown, reveal
from .workloads import containers, pod_spec

_SECRET_INPUTS = {
    "aws:rds/instance:Instance": ("password",),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("authToken",),
    "kubernetes:core/v1:Secret": ("data", "stringData"),
}
_SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)$", re.I)


def secrets_as_secrets(s: Subject) -> list[str]:
    """Credentials reach resources only as Pulumi secrets (encrypted in state, masked in output),
    and containers take them from Kubernetes Secrets, never as literal env values."""
    out = []
    if s.secrets_visible:
        for key in _SECRET_INPUTS.get(s.type, ()):
            value = s.inputs.get(key)
            if value is not None and not is_unknown(value) and not is_secret(value):
                out.append(f"{key} must be a Pulumi secret (pulumi.Output.secret / `secure:` config)")
    pod = pod_spec(s)
    for label, c in containers(pod) if pod is not None else ():
        for env in reveal(c.get("env")) or []:
            name = get(env, "name") or ""
            if _SECRET_ENV_NAME.search(name) and get(env, "value") is not None:
                out.append(f"{label}: env {name} holds a literal value; use valueFrom.secretKeyRef or a mounted Secret")
    return out
