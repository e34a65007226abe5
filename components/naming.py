"""Names and labels shared by every component: one place, so selectors can never disagree.

Kubernetes labels follow the recommended `app.kubernetes.io/*` set plus one track label. The
track label, not the version, selects pods (docs/design.md invariant 2); the version appears only in pod
labels and the image reference.
"""

from __future__ import annotations

import re

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


def dr_backup_vault_name(stack: str) -> str:
    """The vault in the DR region that the stack's backup plan copies every recovery point to."""
    return f"{backup_vault_name(stack)}-dr"


BACKUP_TESTING_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
"""AWS Backup's rule for restore testing plan and selection names: letters, digits and
underscores, at most 50 characters."""


def restore_testing_name(stack: str, scope: str) -> str:
    """`plexichat_<stack>_<scope>`: the name of a restore testing plan (or selection). Stack names
    may hold `-` and `.`, which AWS Backup refuses here: both become `_` (so `prod-dr` and
    `prod_dr` in one account and region would share a name). Anything else that breaks the rule,
    a name over 50 characters above all, is refused with the reason and the allowed form."""
    name = re.sub(r"[-.]", "_", f"{APP}_{stack}_{scope}")
    if not BACKUP_TESTING_NAME.match(name):
        raise ValueError(
            f"the restore testing name {name!r} (from stack {stack!r}) is not a valid AWS Backup "
            "restore testing name: letters, digits and underscores only, at most 50 characters; "
            "use a shorter stack name"
        )
    return name


RESTORE_TEST_INSTANCE_PREFIX = "awsbackup-restore-test-"
"""How AWS Backup names the instance a restore test creates (AWS Backup developer guide,
"Restore testing inferred metadata": dbInstanceIdentifier, Amazon RDS instances)."""


def restore_validator_name(database_identifier: str) -> str:
    """The Lambda function that checks the data of a restore test of database
    `database_identifier` (at most 40 + 18 of Lambda's 64 characters). The database's key admits
    its log group, `/aws/lambda/<this name>`."""
    return f"{database_identifier[:40]}-restore-validator"


def dns_health_host(stack: str, domain: str) -> str:
    """`<stack>.health.<domain>`: the host a stack's Route 53 health check asks for `/readyz`,
    resolving to that stack's own load balancer only (docs/dr.md "DNS"). The stack's short name
    (`org/project/prod-dr` -> `prod-dr`) as a DNS label; `dr status` finds the check by it."""
    label = stack.rsplit("/", 1)[-1].lower().replace("_", "-")
    return f"{label}.health.{domain}"


def application_log_group_name(stack: str) -> str:
    """`/plexichat/<stack>/application`: the log group the cluster's log shipping sends the app's
    pods' logs to (docs/delivery.md "Cluster prerequisites")."""
    return f"/{APP}/{stack}/application"


def aws_tags(stack: str) -> dict[str, str]:
    """The one tag set every AWS resource carries (through the provider's default_tags)."""
    return {"Project": APP, "Environment": stack, "ManagedBy": "pulumi"}
