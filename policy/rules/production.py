"""Production data safety: databases cannot be deleted by accident and keep their backups."""

from __future__ import annotations

from .subject import Subject, get, is_set, is_true, is_unknown

MIN_PROD_BACKUP_RETENTION_DAYS = 7
"""Floor for RDS automated backups in production (the data tier may keep more)."""


def prod_rds_protected(s: Subject) -> list[str]:
    """In production, databases cannot be deleted by accident and keep automated backups."""
    if s.type != "aws:rds/instance:Instance" or not s.production:
        return []
    out = []
    is_replica = is_set(get(s.inputs, "replicateSourceDb"))
    if not is_true(get(s.inputs, "deletionProtection")):
        out.append("production RDS deletionProtection must be true")
    # Replicas hold no data of their own: `protect` on them would only make scaling the replica
    # count down impossible without a state edit.
    if not s.protect and not is_replica:
        out.append("production RDS must be created with the `protect` resource option")
    retention = get(s.inputs, "backupRetentionPeriod")
    if not is_replica and not is_unknown(retention) and (retention or 0) < MIN_PROD_BACKUP_RETENTION_DAYS:
        out.append(
            f"production RDS backupRetentionPeriod must be at least "
            f"{MIN_PROD_BACKUP_RETENTION_DAYS} days (is {retention})"
        )
    return out
