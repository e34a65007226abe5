"""Names and labels shared by every component: one place, so selectors can never disagree.

Kubernetes labels follow the recommended `app.kubernetes.io/*` set plus one track label. The
track label, not the version, selects pods (docs/design.md invariant 2); the version appears only in pod
labels and the image reference.
"""

from __future__ import annotations

from components.config import versions

APP = "plexichat"
TRACK_LABEL = "plexichat.com/track"
COMPONENT_LABEL = "app.kubernetes.io/component"
JOB_LABEL = "plexichat.com/job"
"""Set on Job pods only (the migration): namespace-wide NetworkPolicies select pods without it."""


def object_name(workload: str, track: str | None = None) -> str:
    """`plexichat-web` for a workload, `plexichat-web-canary` for one of its tracks."""
    return f"{APP}-{workload}" if track is None else f"{APP}-{workload}-{track}"


def common_labels(stack: str) -> dict[str, str]:
    """Labels on every object: what it is part of and who manages it."""
    return {
        "app.kubernetes.io/part-of": APP,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/instance": f"{APP}-{stack}",
    }


def selector_labels(workload: str, track: str | None = None) -> dict[str, str]:
    """The immutable selector: workload (and track). Never the version."""
    labels = {"app.kubernetes.io/name": APP, COMPONENT_LABEL: workload}
    if track is not None:
        labels[TRACK_LABEL] = track
    return labels


def pod_labels(stack: str, workload: str, track: str, version: str) -> dict[str, str]:
    """Selector labels plus the version. `app`/`version` are what Istio telemetry reads, so
    metrics can tell a canary's requests from stable's (destination_version)."""
    labels = {
        **common_labels(stack),
        **selector_labels(workload, track),
        "app": object_name(workload),
        "version": versions.label_value(version),
        "app.kubernetes.io/version": versions.label_value(version),
    }
    return labels


def backup_vault_name(stack: str) -> str:
    """The stack's AWS Backup vault (its copy in the DR region adds `-dr`); preflight reads it."""
    return f"{APP}-{stack}"


def aws_tags(stack: str) -> dict[str, str]:
    """The one tag set every AWS resource carries (through the provider's default_tags)."""
    return {"Project": APP, "Environment": stack, "ManagedBy": "pulumi"}
