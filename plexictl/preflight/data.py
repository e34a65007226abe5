"""The data tier's checks: the newest backup, the database instances, replica lag, the cache."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from plexictl.preflight.results import CheckError, Outcome, Result, judged, readable_duration

if TYPE_CHECKING:  # the stubs are a development dependency (requirements-dev.txt)
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef

MAX_BACKUP_AGE = datetime.timedelta(hours=26)
"""The backup plan runs daily (05:00 UTC): one day, and two hours for the job to start and finish."""
LAG_WINDOW = datetime.timedelta(minutes=10)
"""How old the newest ReplicaLag datapoint may be (RDS publishes it every minute)."""


def database_backup(
    backup: BackupClient, rds: RDSClient, identifier: str, vault: str, now: datetime.datetime
) -> Result:
    primary = _instance(rds, identifier)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, ByResourceArn=primary["DBInstanceArn"]
    )
    created = [p["CreationDate"] for page in pages for p in page["RecoveryPoints"] if p["Status"] == "COMPLETED"]
    if not created:
        return Result(Outcome.FAIL, f"no completed recovery point of {identifier} in vault {vault}")
    newest = max(created)
    return judged(
        now - newest < MAX_BACKUP_AGE,
        f"newest recovery point {readable_duration(now - newest)} old "
        f"({newest.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC, vault {vault}); "
        f"limit {readable_duration(MAX_BACKUP_AGE)}",
    )


def database_instances(rds: RDSClient, identifier: str) -> Result:
    primary = _instance(rds, identifier)
    states = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in [primary, *_replicas(rds, primary)]}
    unavailable = [f"{name} is {state}" for name, state in states.items() if state != "available"]
    return judged(not unavailable, ", ".join(unavailable) or f"{', '.join(states)} available")


def replica_lag(
    rds: RDSClient, cloudwatch: CloudWatchClient, identifier: str, max_seconds: int, now: datetime.datetime
) -> Result:
    replicas = [r["DBInstanceIdentifier"] for r in _replicas(rds, _instance(rds, identifier))]
    if not replicas:
        return Result(Outcome.PASS, f"{identifier} has no read replicas")
    lags = {replica: newest_lag(cloudwatch, replica, now) for replica in replicas}
    shown = [describe_lag(replica, lag) for replica, lag in lags.items()]
    ok = all(lag_within(lag, max_seconds) for lag in lags.values())
    return judged(ok, f"{', '.join(shown)} (limit {max_seconds}s)")


def describe_lag(replica: str, lag: float | None) -> str:
    """A replica's newest ReplicaLag as a table cell (`newest_lag`: None without data, negative
    when replication has stopped)."""
    if lag is None:
        return f"{replica}: no ReplicaLag data in the last {readable_duration(LAG_WINDOW)}"
    if lag < 0:
        return f"{replica}: replication is not running (ReplicaLag {lag:g})"
    return f"{replica} {lag:g}s"


def lag_within(lag: float | None, limit_seconds: float) -> bool:
    """Replication runs, and is behind by less than `limit_seconds`."""
    return lag is not None and 0 <= lag < limit_seconds


def cache(elasticache: ElastiCacheClient, group_id: str) -> Result:
    try:
        group = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    except elasticache.exceptions.ReplicationGroupNotFoundFault:
        return Result(Outcome.FAIL, f"no replication group {group_id} in the stack's region")
    return judged(group["Status"] == "available", f"{group_id} is {group['Status']}")


def _instance(rds: RDSClient, identifier: str) -> DBInstanceTypeDef:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise CheckError(f"no RDS instance {identifier} in the stack's region") from None


def _replicas(rds: RDSClient, primary: DBInstanceTypeDef) -> list[DBInstanceTypeDef]:
    """The primary's read replicas in its own region (another region's are listed by ARN)."""
    listed = primary.get("ReadReplicaDBInstanceIdentifiers", [])
    return [_instance(rds, replica) for replica in listed if not replica.startswith("arn:")]


def newest_lag(cloudwatch: CloudWatchClient, replica: str, now: datetime.datetime) -> float | None:
    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": replica}],
        StartTime=now - LAG_WINDOW,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max(datapoints, key=lambda point: point["Timestamp"])["Maximum"] if datapoints else None
