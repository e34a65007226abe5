"""Alarms on the data path to the DR region, to the alarm topic of the region they watch
(components/observability/alarm_topic.py): what tells on-call that the RPO no longer holds.

- AWS Backup jobs that end FAILED, ABORTED or EXPIRED: one EventBridge rule per kind of job
  (backup, copy, restore), the raw event to the topic. Backup and copy jobs are this stack's
  (its vaults'); restore jobs are any in the region, restore tests included. Backup and copy
  jobs report `state`, restore jobs `status` (AWS Backup developer guide, "Monitoring events
  using EventBridge"). A rule sees the events of its own region only, so each region's stack
  has its own rules and topic: the DR region's alarms must not depend on the primary region.
- A missing recovery point: no backup job of the vault completed in 26 h (AWS/Backup
  NumberOfBackupJobsCompleted by BackupVaultName; a day without any datapoint counts too).
- S3 replication to the DR bucket: any failed operation (OperationsFailedReplication), or an
  object later than Replication Time Control's 15 minutes (ReplicationLatency), by source
  bucket, destination bucket and rule; both reported in the source bucket's region.
- The DR read replica's lag above `dr.replicaLagAlarmMinutes` (AWS/RDS ReplicaLag), in the
  replica's region: the replication part of the RPO budget (components/config/rpo.py).
- A restore test whose data check failed: the validator function's errors (AWS/Lambda Errors).

Each alarm's description and each rule's links its section of the runbook (docs/runbook.md).
Every alarm notifies the topic when it fires and when it clears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config.rpo import (
    ALARM_PERIOD_SECONDS,
    REPLICA_LAG_DETECTION_MINUTES,
    REPLICATION_DETECTION_MINUTES,
    REPLICATION_TIME_CONTROL_MINUTES,
)

FAILED_STATES = ["FAILED", "ABORTED", "EXPIRED"]
RECOVERY_POINT_MAX_AGE_HOURS = 26
"""A day between backups, and two hours of slack (plexictl preflight refuses an older one too)."""
ABOVE, BELOW = "GreaterThanThreshold", "LessThanThreshold"

# The runbook's sections (docs/runbook.md), one per alert.
BACKUP_JOB_FAILED = "PlexichatBackupJobFailed"
RESTORE_TEST_FAILED = "PlexichatRestoreTestFailed"
RECOVERY_POINT_MISSING = "PlexichatRecoveryPointMissing"
S3_REPLICATION_FAILING = "PlexichatS3ReplicationFailing"
DR_REPLICA_LAGGING = "PlexichatDrReplicaLagging"


@dataclass(frozen=True)
class VaultRef:
    name: pulumi.Input[str]
    arn: pulumi.Input[str]


@dataclass(frozen=True)
class BucketReplication:
    source_bucket: pulumi.Input[str]
    destination_bucket: pulumi.Input[str]
    rule_id: str


@dataclass(frozen=True)
class DrReplica:
    identifier: pulumi.Input[str]
    lag_alarm_minutes: int
    """dr.replicaLagAlarmMinutes."""


@dataclass(frozen=True)
class DataPathAlarmsArgs:
    topic: aws.sns.Topic
    """The alarm topic of this region."""
    runbook_url: str
    """monitoring.runbookUrl: alarms link `<url>#<alert, lower case>`."""
    vaults: Mapping[str, VaultRef] = field(default_factory=dict)
    """This stack's vaults in this region by role (e.g. "primary"): their backup and copy jobs
    alarm, and each must get a recovery point every day."""
    replication: BucketReplication | None = None
    """The backup bucket's replication to the DR region, when this region is its source."""
    dr_replica: DrReplica | None = None
    """The DR read replica, when it lives in this region (the standby's)."""
    restore_validator: aws.lambda_.Function | None = None
    """The restore tests' check (components/data/restore_testing.py)."""


@dataclass(frozen=True)
class _Alarm:
    role: str
    alert: str
    summary: str
    namespace: str
    metric: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    operator: str
    threshold: float
    period_seconds: int = ALARM_PERIOD_SECONDS
    evaluation_periods: int = 1
    treat_missing_data: str = "notBreaching"


class DataPathAlarms(pulumi.ComponentResource):
    rules: dict[str, aws.cloudwatch.EventRule]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: DataPathAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:alerting:DataPathAlarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rules = {}
        for kind, pattern in _job_patterns(args).items():
            self.rules[kind] = rule = aws.cloudwatch.EventRule(
                f"{name}-{kind}-jobs-failed",
                description=_describe(
                    args,
                    RESTORE_TEST_FAILED if kind == "restore" else BACKUP_JOB_FAILED,
                    f"AWS Backup {kind} job FAILED, ABORTED or EXPIRED",
                ),
                event_pattern=pulumi.Output.json_dumps(pattern),
                state="ENABLED",
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{kind}-jobs-failed-to-topic", rule=rule.name, arn=args.topic.arn, opts=child
            )
        self.alarms = {}
        for alarm in _alarms(args):
            self.alarms[alarm.role] = aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.role}",
                alarm_description=_describe(args, alarm.alert, alarm.summary),
                namespace=alarm.namespace,
                metric_name=alarm.metric,
                dimensions=dict(alarm.dimensions),
                statistic=alarm.statistic,
                comparison_operator=alarm.operator,
                threshold=alarm.threshold,
                period=alarm.period_seconds,
                evaluation_periods=alarm.evaluation_periods,
                datapoints_to_alarm=alarm.evaluation_periods,
                treat_missing_data=alarm.treat_missing_data,
                actions_enabled=True,
                alarm_actions=[args.topic.arn],
                ok_actions=[args.topic.arn],
                opts=child,
            )
        self.register_outputs({"rules": sorted(self.rules), "alarms": sorted(self.alarms)})


def _describe(args: DataPathAlarmsArgs, alert: str, summary: str) -> str:
    return f"{alert}: {summary}. Runbook: {args.runbook_url}#{alert.lower()}"


def _job_patterns(args: DataPathAlarmsArgs) -> dict[str, dict]:
    """The EventBridge patterns of the jobs that end badly: this stack's backup and copy jobs
    (by vault), any restore job of the region."""
    patterns: dict[str, dict] = {}
    if args.vaults:
        vaults = list(args.vaults.values())
        patterns["backup"] = _pattern(
            "Backup Job State Change", {"state": FAILED_STATES, "backupVaultName": [v.name for v in vaults]}
        )
        patterns["copy"] = _pattern(
            "Copy Job State Change", {"state": FAILED_STATES, "sourceBackupVaultArn": [v.arn for v in vaults]}
        )
    patterns["restore"] = _pattern("Restore Job State Change", {"status": FAILED_STATES})
    return patterns


def _pattern(detail_type: str, detail: dict) -> dict:
    return {"source": ["aws.backup"], "detail-type": [detail_type], "detail": detail}


def _alarms(args: DataPathAlarmsArgs) -> list[_Alarm]:
    return [
        *_recovery_point_alarms(args),
        *_replication_alarms(args),
        *_replica_alarms(args),
        *_validator_alarms(args),
    ]


def _recovery_point_alarms(args: DataPathAlarmsArgs) -> list[_Alarm]:
    """Hourly periods, all 26 without a completed backup job; no datapoint is no backup."""
    return [
        _Alarm(
            f"{role}-recovery-point-missing",
            RECOVERY_POINT_MISSING,
            f"no backup job of vault {role} completed in {RECOVERY_POINT_MAX_AGE_HOURS} h",
            "AWS/Backup",
            "NumberOfBackupJobsCompleted",
            {"BackupVaultName": vault.name},
            "Sum",
            BELOW,
            1,
            period_seconds=3600,
            evaluation_periods=RECOVERY_POINT_MAX_AGE_HOURS,
            treat_missing_data="breaching",
        )
        for role, vault in args.vaults.items()
    ]


def _replication_alarms(args: DataPathAlarmsArgs) -> list[_Alarm]:
    """An idle bucket reports nothing: no data is no failure."""
    replication = args.replication
    if replication is None:
        return []
    rule = {
        "SourceBucket": replication.source_bucket,
        "DestinationBucket": replication.destination_bucket,
        "RuleId": replication.rule_id,
    }
    return [
        _Alarm(
            "s3-replication-failed",
            S3_REPLICATION_FAILING,
            "S3 failed to replicate backup objects to the DR bucket",
            "AWS/S3",
            "OperationsFailedReplication",
            rule,
            "Sum",
            ABOVE,
            0,
            period_seconds=300,
        ),
        _Alarm(
            "s3-replication-late",
            S3_REPLICATION_FAILING,
            f"backup objects reach the DR bucket later than Replication Time Control's "
            f"{REPLICATION_TIME_CONTROL_MINUTES} min",
            "AWS/S3",
            "ReplicationLatency",
            rule,
            "Maximum",
            ABOVE,
            REPLICATION_TIME_CONTROL_MINUTES * 60,
            evaluation_periods=REPLICATION_DETECTION_MINUTES,
        ),
    ]


def _replica_alarms(args: DataPathAlarmsArgs) -> list[_Alarm]:
    """A replica that reports no lag is not replicating either: missing data breaches."""
    replica = args.dr_replica
    if replica is None:
        return []
    return [
        _Alarm(
            "dr-replica-lag",
            DR_REPLICA_LAGGING,
            f"the DR read replica lags the primary by more than {replica.lag_alarm_minutes} min "
            "(dr.replicaLagAlarmMinutes)",
            "AWS/RDS",
            "ReplicaLag",
            {"DBInstanceIdentifier": replica.identifier},
            "Maximum",
            ABOVE,
            replica.lag_alarm_minutes * 60,
            evaluation_periods=REPLICA_LAG_DETECTION_MINUTES,
            treat_missing_data="breaching",
        )
    ]


def _validator_alarms(args: DataPathAlarmsArgs) -> list[_Alarm]:
    function = args.restore_validator
    if function is None:
        return []
    return [
        _Alarm(
            "restore-validation-failed",
            RESTORE_TEST_FAILED,
            "the data check of a restore test failed (or could not run)",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": function.name},
            "Sum",
            ABOVE,
            0,
            period_seconds=300,
        )
    ]
