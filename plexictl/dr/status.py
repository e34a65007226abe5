"""`plexictl dr status --stack S`: the recovery state of S's DR pair, from AWS and the cluster.

Like preflight (plexictl/preflight.py, whose Result, table and guard it shares), each check looks
at one thing with the default AWS credentials and returns pass, FAIL or skipped; one that cannot
look (no credentials, an API error, nothing to read) fails, never passes on missing data.

The pair is the primary and its standby. A standby's stack file names its primary, whose stack
file (in the same project) names the backup bucket and vault and the DR region: both stacks of a
pair report the same data, and each its own cluster and health check.

- DR replica lag: the standby's database (a cross-region read replica of the primary's) and its
  newest CloudWatch `ReplicaLag`, under dr.replicaLagAlarmMinutes. From the primary, the replicas
  it lists by ARN (another region's). An `active` stack's database is promoted: skipped.
- recovery point <region>: the newest completed recovery point in the pair's vault in each region
  (`plexichat-<primary>`, and its copy `plexichat-<primary>-dr` in the DR region), younger than
  26 h (a daily plan, like preflight).
- S3 replication: the backup bucket's replication rules; per rule the newest
  `OperationsPendingReplication`, `BytesPendingReplication` and `ReplicationLatency` (the
  replication metrics, which components/data/disaster_recovery.py enables with Replication Time
  Control) in the last 26 h, the latency under the 15-minute RTC target. A rule without metrics
  fails and says so: its backlog cannot be read.
- restore test <region>: the newest restore job a restore testing plan started from the pair's
  vault in that region, in the last 35 days (the tests are monthly): COMPLETED, and its data
  validation not FAILED or TIMED_OUT (SUCCESSFUL when a validator reports one).
- DNS health check: the Route 53 check of the stack's health host (components/edge/dns_failover.py):
  healthy for a primary or an active stack, and *unhealthy* for a standby, which must never be
  sent users. Skipped without dr.hostedZoneId.
- cluster: `kubectl --context <kubernetes.context> get --raw /readyz` answers `ok`. Skipped when
  the stack names no context.
"""

from __future__ import annotations

import datetime
import functools
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from components import naming
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from components.data.disaster_recovery import REPLICATION_TIME_MINUTES
from plexictl import offline
from plexictl.preflight import (
    MAX_BACKUP_AGE,
    CheckError,
    Kubectl,
    Outcome,
    Result,
    aws_session,
    describe_lag,
    guarded,
    judged,
    kubectl_command,
    lag_within,
    newest_lag,
    readable_duration,
)

if TYPE_CHECKING:  # the stubs are a development dependency (requirements-dev.txt)
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_rds import RDSClient

REPLICATION_WINDOW = datetime.timedelta(hours=26)
"""How far back to look for S3 replication metrics: S3 publishes them while it replicates, and
the backups arrive at least daily."""
RESTORE_TEST_MAX_AGE = datetime.timedelta(days=35)
"""The restore tests run monthly: the newest must have started within a month and a few days."""
HEALTHY_CHECKER_SHARE = 0.18
"""Route 53 considers an endpoint healthy when more than 18% of its health checkers do."""
FINISHED = ("COMPLETED", "FAILED", "ABORTED")


class NoDisasterRecovery(Exception):
    """The stack takes no part in DR (no plexichat:dr): nothing to report."""


@dataclass(frozen=True)
class Pair:
    """What `dr status` reads about the stack asked for and the primary of its pair."""

    stack: str
    settings: StackSettings
    primary: str
    primary_settings: StackSettings

    @property
    def role(self) -> str:
        assert self.settings.dr is not None  # a Pair is only built for a DR stack
        return self.settings.dr.role

    @property
    def vaults(self) -> dict[str | None, str]:
        """The pair's backup vault per region: the primary's, and its copy in the DR region."""
        return {
            self.primary_settings.aws.region: naming.backup_vault_name(self.primary),
            self.primary_settings.backups.dr_region: naming.dr_backup_vault_name(self.primary),
        }


def pair_of(stack: str, project_dir: pathlib.Path) -> Pair:
    settings = _settings(stack, project_dir)
    if settings.dr is None:
        raise NoDisasterRecovery(f"{stack} takes no part in disaster recovery (no plexichat:dr in its stack file)")
    if settings.dr.role == "primary":
        return Pair(stack, settings, stack, settings)
    # Required for standby and active; `org/project/prod` names the stack file Pulumi.prod.yaml.
    primary = str(settings.dr.primary_stack).rsplit("/", 1)[-1]
    return Pair(stack, settings, primary, _settings(primary, project_dir))


def _settings(stack: str, project_dir: pathlib.Path) -> StackSettings:
    config, secret_keys = offline.stack_config(stack, project_dir)  # StackFileError without its file
    return parse_stack_config(config, stack, secret_keys)


# -- the checks --------------------------------------------------------------------------------


def replica_lag(session: Any, pair: Pair, now: datetime.datetime) -> Result:
    assert pair.settings.dr is not None
    limit_seconds = pair.settings.dr.replica_lag_alarm_minutes * 60
    if pair.role == "primary":
        replicas = _cross_region_replicas(session, pair.primary_settings)
        if not replicas:
            return Result(
                Outcome.FAIL,
                f"{pair.primary_settings.database.identifier} has no cross-region replica: "
                f"is its standby ({pair.settings.dr.standby_stack}) deployed?",
            )
    else:
        region, identifier = pair.settings.aws.region, pair.settings.database.identifier
        instance = _instance(session.client("rds", region_name=region), identifier)
        source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
        if pair.role == "active":
            if source:
                return Result(Outcome.FAIL, f"{identifier} still replicates from {source}: the promotion is not done")
            return Result(Outcome.SKIPPED, f"{identifier} is promoted (the stack is active): it replicates nothing")
        if not source:
            return Result(Outcome.FAIL, f"{identifier} is no read replica, yet the stack is a standby")
        replicas = [(region, identifier)]
    shown, ok = [], True
    for region, identifier in replicas:
        lag = newest_lag(session.client("cloudwatch", region_name=region), identifier, now)
        shown.append(describe_lag(f"{identifier} ({region})", lag))
        ok = ok and lag_within(lag, limit_seconds)
    return judged(ok, f"{', '.join(shown)} (alarm at {pair.settings.dr.replica_lag_alarm_minutes} min)")


def recovery_point(backup: BackupClient, vault: str, now: datetime.datetime) -> Result:
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(BackupVaultName=vault)
    completed = [p for page in pages for p in page["RecoveryPoints"] if p["Status"] == "COMPLETED"]
    if not completed:
        return Result(Outcome.FAIL, f"no completed recovery point in vault {vault}")
    newest = max(completed, key=lambda p: p["CreationDate"])
    age = now - newest["CreationDate"]
    return judged(
        age < MAX_BACKUP_AGE,
        f"{readable_duration(age)} old ({newest.get('ResourceType', 'resource')}, "
        f"{newest['CreationDate'].astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC, vault {vault}); "
        f"limit {readable_duration(MAX_BACKUP_AGE)}",
    )


def s3_replication(s3: Any, cloudwatch: CloudWatchClient, bucket: str, now: datetime.datetime) -> Result:
    try:
        rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]["Rules"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError":
            return Result(Outcome.FAIL, f"{bucket} replicates nowhere (no replication configuration)")
        raise
    enabled = [rule for rule in rules if rule.get("Status") == "Enabled"]
    if not enabled:
        return Result(Outcome.FAIL, f"{bucket} has no enabled replication rule")
    shown, ok = [], True
    for rule in enabled:
        rule_ok, detail = _replication_rule(cloudwatch, bucket, rule, now)
        shown.append(detail)
        ok = ok and rule_ok
    return judged(ok, "; ".join(shown))


def _replication_rule(
    cloudwatch: CloudWatchClient, bucket: str, rule: dict[str, Any], now: datetime.datetime
) -> tuple[bool, str]:
    rule_id = rule.get("ID", "(no id)")
    destination = rule["Destination"]["Bucket"].rsplit(":", 1)[-1]  # arn:aws:s3:::<name>
    name = f"rule {rule_id} -> {destination}"
    if (rule["Destination"].get("Metrics") or {}).get("Status") != "Enabled":
        return False, f"{name}: replication metrics are off, so the backlog cannot be read (enable Destination.Metrics)"
    dimensions = {"SourceBucket": bucket, "DestinationBucket": destination, "RuleId": rule_id}
    newest = {
        metric: _newest_datapoint(cloudwatch, "AWS/S3", metric, dimensions, now - REPLICATION_WINDOW, now)
        for metric in ("OperationsPendingReplication", "BytesPendingReplication", "ReplicationLatency")
    }
    latency = newest["ReplicationLatency"]
    if latency is None or newest["OperationsPendingReplication"] is None:
        return False, f"{name}: no replication metrics in the last {readable_duration(REPLICATION_WINDOW)}"
    pending_bytes = newest["BytesPendingReplication"]
    limit = REPLICATION_TIME_MINUTES * 60
    return latency <= limit, (
        f"{name}: {newest['OperationsPendingReplication']:g} operations"
        f"{f' ({pending_bytes:g} B)' if pending_bytes is not None else ''} pending, "
        f"latency {latency:g}s (limit {REPLICATION_TIME_MINUTES} min)"
    )


def restore_test(backup: BackupClient, vault: str, now: datetime.datetime) -> Result:
    pages = backup.get_paginator("list_restore_jobs").paginate(ByCreatedAfter=now - RESTORE_TEST_MAX_AGE)
    tests = [
        job
        for page in pages
        for job in page["RestoreJobs"]
        if (job.get("CreatedBy") or {}).get("RestoreTestingPlanArn")
        and job.get("BackupVaultArn", "").endswith(f":backup-vault:{vault}")
        and job.get("Status") in FINISHED
    ]
    if not tests:
        return Result(
            Outcome.FAIL, f"no restore test of vault {vault} finished in the last {RESTORE_TEST_MAX_AGE.days} days"
        )
    job = max(tests, key=lambda j: j["CreationDate"])
    when = f"{job['CreationDate'].astimezone(datetime.UTC):%Y-%m-%d}"
    if job["Status"] != "COMPLETED":
        return Result(Outcome.FAIL, f"restore job of {when} {job['Status']}: {job.get('StatusMessage', 'no message')}")
    validation = job.get("ValidationStatus")
    if validation in ("FAILED", "TIMED_OUT"):
        message = job.get("ValidationStatusMessage", "no message")
        return Result(Outcome.FAIL, f"restore job of {when} completed, its validation {validation}: {message}")
    validated = {"SUCCESSFUL": "validated", "VALIDATING": "validation running"}.get(
        str(validation), "no validation reported"
    )
    return Result(Outcome.PASS, f"restore job of {when} completed, {validated} (vault {vault})")


def dns_health_check(route53: Any, host: str, role: str) -> Result:
    checks = [
        check
        for page in route53.get_paginator("list_health_checks").paginate()
        for check in page["HealthChecks"]
        if check["HealthCheckConfig"].get("FullyQualifiedDomainName") == host
        and not check["HealthCheckConfig"].get("Inverted")
    ]
    if not checks:
        return Result(Outcome.FAIL, f"no Route 53 health check of {host}: is the stack deployed?")
    check_id = checks[0]["Id"]
    observations = route53.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
    if not observations:
        return Result(Outcome.FAIL, f"health check {check_id}: no checker has reported yet")
    statuses = [o["StatusReport"]["Status"] for o in observations]
    passing = sum(status.startswith("Success") for status in statuses)
    healthy = passing / len(statuses) > HEALTHY_CHECKER_SHARE
    seen = f"{passing} of {len(statuses)} checkers see {host} ready"
    failure = next((status for status in statuses if not status.startswith("Success")), None)
    why = f" ({failure})" if failure and not healthy else ""
    if role == "standby":
        return judged(
            not healthy,
            f"{seen}{why}: not ready, as a standby must be"
            if not healthy
            else f"{seen}: a standby reports ready, so Route 53 could send users to it",
        )
    return judged(healthy, f"{seen}{why}")


def cluster(kubectl: Kubectl, context: str | None) -> Result:
    if context is None:
        return Result(Outcome.SKIPPED, "no kubernetes.context: the stack renders YAML, no cluster to ask")
    answer = kubectl(["get", "--raw", "/readyz"]).strip()
    return judged(answer == "ok", f"{context}: the API server's /readyz says {answer or '(nothing)'}")


# -- running them ------------------------------------------------------------------------------


def run_checks(pair: Pair, session: Any, kubectl: Kubectl, now: datetime.datetime | None = None) -> dict[str, Result]:
    """Every check, by name, in the table's order; one that cannot look fails, the rest still run."""
    at = now or datetime.datetime.now(datetime.UTC)
    settings, primary = pair.settings, pair.primary_settings

    def in_vaults(check: Callable[[Any, str, datetime.datetime], Result], name: str) -> dict[str, Callable[[], Result]]:
        """`check` of the pair's vault in each region, with that region's Backup client."""
        return {
            f"{name} {region or '(DR region)'}": functools.partial(_in_region, session, region, vault, check, at)
            for region, vault in pair.vaults.items()
        }

    checks: dict[str, Callable[[], Result]] = {
        "DR replica lag": lambda: replica_lag(session, pair, at),
        **in_vaults(recovery_point, "recovery point"),
        # The backup bucket's region: where S3 reports its replication.
        "S3 replication": lambda: s3_replication(
            session.client("s3", region_name=primary.aws.region),
            session.client("cloudwatch", region_name=primary.aws.region),
            primary.backups.bucket_name,
            at,
        ),
        **in_vaults(restore_test, "restore test"),
        "DNS health check": lambda: _dns(session, pair),
        "cluster": lambda: cluster(kubectl, settings.kubernetes.context),
    }
    return {name: guarded(check) for name, check in checks.items()}


def _in_region(
    session: Any,
    region: str | None,
    vault: str,
    check: Callable[[Any, str, datetime.datetime], Result],
    now: datetime.datetime,
) -> Result:
    if region is None:
        raise CheckError("the primary copies nothing to another region (its backups.drRegion is unset)")
    return check(session.client("backup", region_name=region), vault, now)


def _dns(session: Any, pair: Pair) -> Result:
    dr = pair.settings.dr
    if dr is None or dr.hosted_zone_id is None:
        return Result(Outcome.SKIPPED, "no DNS failover (dr.hostedZoneId is unset)")
    host = naming.dns_health_host(pair.stack, pair.settings.domain)
    return dns_health_check(session.client("route53", region_name=pair.settings.aws.region), host, pair.role)


def check_stack(stack: str, project_dir: pathlib.Path) -> dict[str, Result]:
    """The command's run: the stack files' settings, AWS's default credential chain and kubectl
    with the stack's context."""
    pair = pair_of(stack, project_dir)
    return run_checks(pair, aws_session(), kubectl_command(pair.settings.kubernetes.context))


def summary(stack: str, results: dict[str, Result]) -> str:
    failed = [name for name, result in results.items() if result.outcome is Outcome.FAIL]
    if failed:
        return f"{stack}: recovery is at risk: {', '.join(failed)} did not pass"
    return f"{stack}: every recovery check passed"


# -- AWS ---------------------------------------------------------------------------------------


def _instance(rds: RDSClient, identifier: str) -> dict[str, Any]:
    try:
        return dict(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])
    except rds.exceptions.DBInstanceNotFoundFault:
        raise CheckError(f"no RDS instance {identifier} in {rds.meta.region_name}") from None


def _cross_region_replicas(session: Any, primary: StackSettings) -> list[tuple[str, str]]:
    """(region, identifier) of each replica the primary lists by ARN (`arn:aws:rds:<region>:<account>:db:<id>`)."""
    instance = _instance(session.client("rds", region_name=primary.aws.region), primary.database.identifier)
    arns = [r for r in instance.get("ReadReplicaDBInstanceIdentifiers", []) if r.startswith("arn:")]
    return [(arn.split(":")[3], arn.rsplit(":", 1)[-1]) for arn in arns]


def _newest_datapoint(
    cloudwatch: CloudWatchClient,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    start: datetime.datetime,
    end: datetime.datetime,
) -> float | None:
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=300,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max(points, key=lambda point: point["Timestamp"])["Maximum"] if points else None
