"""`plexictl dr failover` and `plexictl dr status` (docs/dr.md).

failover: the one edit `plexichat:dr.role: standby -> active` of the standby's stack file, made by
the release commands' machinery on a copy of the project (comments and every other line kept, the
desired-state diff shown), refused on a primary and on an active stack with the file untouched,
and a checklist whose budgets add up to less than the RTO.

status: AWS is moto wherever moto models what a check reads: RDS instances and a cross-region read
replica (created through the API, so the primary's replica list and the replica's source are
moto's), CloudWatch's metric store (moto publishes no ReplicaLag or S3 replication metrics, so
each test puts the datapoints RDS and S3 would), S3 buckets and their replication configuration,
and Route 53 health checks (listed by moto; its status report always says Success). botocore
Stubber clients, validated against the service model, stand in where moto has no model: AWS
Backup recovery points and restore jobs (moto answers neither), and a Route 53 health check that
checkers report failing. The cluster is a fake `kubectl` on PATH or an injected runner.
"""

from __future__ import annotations

import datetime
import os

import boto3
import pytest
from botocore.stub import ANY, Stubber

from components import naming
from components.data.disaster_recovery import REPLICATION_TIME_MINUTES
from plexictl.__main__ import EXIT_CANNOT_DEPLOY, EXIT_DONE, EXIT_INVALID, main
from plexictl.dr import failover, status
from plexictl.dr.status import Pair
from plexictl.offline import ROOT
from plexictl.preflight import CheckError, Outcome, Result, kubectl_command
from tests.conftest import STACK_FILES
from tests.release_state import project_copy
from tests.tools import offline_aws

pytestmark = STACK_FILES  # reads Pulumi.prod.yaml and Pulumi.prod-dr.yaml as they are (properties only)

PRIMARY_REGION, DR_REGION = "us-east-1", "us-west-2"
ACCOUNT = "123456789012"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def pair(stack: str) -> Pair:
    return status.pair_of(stack, ROOT)


PROD, PROD_DR = pair("prod"), pair("prod-dr")
PRIMARY_DB, STANDBY_DB = PROD.settings.database.identifier, PROD_DR.settings.database.identifier
BUCKET = PROD.settings.backups.bucket_name
VAULT, DR_VAULT = naming.backup_vault_name("prod"), naming.dr_backup_vault_name("prod")


# --- failover ---------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    """A copy of the project, the pair's stack files included, at their pinned releases."""
    return project_copy(tmp_path)


def plexictl(project, *args: str) -> int:
    return main(["--project-dir", str(project), "dr", *args])


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_failover_is_the_one_edit_role_active_with_its_diff_and_checklist(project, capsys):
    path = project / "Pulumi.prod-dr.yaml"
    before = path.read_text()
    assert plexictl(project, "failover", "--stack", "prod-dr", "--dry-run") == EXIT_DONE
    assert path.read_text() == before
    dry = capsys.readouterr().out
    assert "dry run, not written" in dry and "the failover, step by step" in dry

    assert plexictl(project, "failover", "--stack", "prod-dr") == EXIT_DONE
    out = capsys.readouterr().out
    assert changed_lines(before, path.read_text()) == [("    role: standby", "    role: active")]
    assert "prod-dr: dr.role standby -> active" in out
    assert "stack prod-dr (Pulumi.prod-dr.yaml before -> after)" in out  # the desired-state diff
    assert "pulumi config set --path dr.role active -s prod-dr" in out
    assert "total 2 h 22 min: within the RTO of 4 h 00 min" in out

    # Promoted once: failing back is a sequence, and the command says where it is written.
    promoted = path.read_text()
    assert plexictl(project, "failover", "--stack", "prod-dr") == EXIT_INVALID
    err = capsys.readouterr().err
    assert "already active" in err and 'docs/dr.md "Failover and failback"' in err
    assert path.read_text() == promoted


def test_failover_refuses_a_primary_and_a_stack_outside_dr_and_changes_nothing(project, capsys):
    for stack, message in (
        (
            "prod",
            "only a standby fails over, and this stack's dr.role is primary; fail over its standby: "
            "plexictl dr failover --stack prod-dr",
        ),
        ("dev", "Pulumi.dev.yaml has no plexichat:dr block to edit"),
    ):
        path = project / f"Pulumi.{stack}.yaml"
        before = path.read_bytes()
        assert plexictl(project, "failover", "--stack", stack) == EXIT_INVALID
        assert message in capsys.readouterr().err
        assert path.read_bytes() == before


def test_the_checklist_gets_the_failover_under_the_rto():
    steps = failover.checklist("prod-dr", PROD_DR.settings)
    assert [s.name for s in steps] == ["detect", "decide", "promote", "scale up", "DNS", "verify"]
    assert {s.name for s in steps if s.automatic} == {"detect", "scale up", "DNS"}
    dns = next(s for s in steps if s.name == "DNS")
    assert dns.minutes == 2  # 3 checks 10 s apart, then the 60 s alias TTL: 90 s
    assert sum(s.minutes for s in steps) <= PROD_DR.settings.dr.rto_minutes == 240
    table = failover.format_checklist(steps, 240)
    assert table.splitlines()[0].split()[:5] == ["step", "budget", "by", "the", "end"]
    assert table.endswith("total 2 h 22 min: within the RTO of 4 h 00 min (1 h 38 min to spare)")
    assert "OVER the RTO of 2 h 00 min by 22 min" in failover.format_checklist(steps, 120)


# --- status: AWS ------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS (tests/tools.py `offline_aws`)."""
    with offline_aws(monkeypatch):
        yield


class Session:
    """boto3 under moto, except the (service, region) clients given (Stubber clients)."""

    def __init__(self, stubbed: dict[tuple[str, str], object] | None = None) -> None:
        self.stubbed = stubbed or {}

    def client(self, service: str, region_name: str | None = None):
        return self.stubbed.get((service, region_name)) or boto3.client(service, region_name=region_name)


def create_databases(standby: str = "replica") -> None:
    """prod's primary, and prod-dr's database: a cross-region replica of it, or (`promoted`) one
    of its own, or (`none`) nothing."""
    east = boto3.client("rds", region_name=PRIMARY_REGION)
    instance = {
        "Engine": "postgres",
        "DBInstanceClass": "db.r7g.large",
        "AllocatedStorage": 200,
        "MasterUsername": "plexichat",
        "MasterUserPassword": "not-a-real-password",
    }
    arn = east.create_db_instance(DBInstanceIdentifier=PRIMARY_DB, **instance)["DBInstance"]["DBInstanceArn"]
    west = boto3.client("rds", region_name=DR_REGION)
    if standby == "replica":
        west.create_db_instance_read_replica(DBInstanceIdentifier=STANDBY_DB, SourceDBInstanceIdentifier=arn)
    elif standby == "promoted":
        west.create_db_instance(DBInstanceIdentifier=STANDBY_DB, **instance)


def put_metric(region: str, namespace: str, metric: str, dimensions: dict[str, str], value: float) -> None:
    boto3.client("cloudwatch", region_name=region).put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": now() - datetime.timedelta(minutes=2),
                "Value": value,
            }
        ],
    )


def put_replica_lag(seconds: float) -> None:
    put_metric(DR_REGION, "AWS/RDS", "ReplicaLag", {"DBInstanceIdentifier": STANDBY_DB}, seconds)


def create_replicated_bucket(metrics: bool = True) -> dict[str, str]:
    """The backup bucket replicating to its DR copy as components/data/disaster_recovery.py
    configures it; the metric dimensions of its rule."""
    s3 = boto3.client("s3", region_name=PRIMARY_REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    destination = {
        "Bucket": f"arn:aws:s3:::{BUCKET}-dr",
        "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": REPLICATION_TIME_MINUTES}},
        "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": REPLICATION_TIME_MINUTES}},
    }
    if not metrics:
        del destination["Metrics"], destination["ReplicationTime"]
    s3.put_bucket_replication(
        Bucket=BUCKET,
        ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "Rules": [
                {
                    "ID": "dr",
                    "Status": "Enabled",
                    "Priority": 1,
                    "Filter": {"Prefix": ""},
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "Destination": destination,
                }
            ],
        },
    )
    return {"SourceBucket": BUCKET, "DestinationBucket": f"{BUCKET}-dr", "RuleId": "dr"}


def put_replication_metrics(dimensions: dict[str, str], pending: float, latency_seconds: float) -> None:
    for metric, value in (
        ("OperationsPendingReplication", pending),
        ("BytesPendingReplication", pending * 1024),
        ("ReplicationLatency", latency_seconds),
    ):
        put_metric(PRIMARY_REGION, "AWS/S3", metric, dimensions, value)


def create_health_check(stack: str) -> None:
    boto3.client("route53", region_name=PRIMARY_REGION).create_health_check(
        CallerReference=stack,
        HealthCheckConfig={
            "Type": "HTTPS",
            "FullyQualifiedDomainName": naming.dns_health_host(stack, "app.plexichat.com"),
            "Port": 443,
            "ResourcePath": "/readyz",
            "RequestInterval": 10,
            "FailureThreshold": 3,
        },
    )


def recovery_point(vault: str, region: str, hours_ago: float, status_: str = "COMPLETED") -> dict:
    return {
        "RecoveryPointArn": f"arn:aws:rds:{region}:{ACCOUNT}:snapshot:awsbackup:job-{int(hours_ago * 60):08x}",
        "BackupVaultName": vault,
        "ResourceType": "RDS",
        "CreationDate": now() - datetime.timedelta(hours=hours_ago),
        "Status": status_,
    }


def restore_job(vault: str, region: str, days_ago: float, status_: str = "COMPLETED", **extra) -> dict:
    return {
        "RestoreJobId": f"job-{int(days_ago * 24):04d}",
        "BackupVaultArn": f"arn:aws:backup:{region}:{ACCOUNT}:backup-vault:{vault}",
        "CreationDate": now() - datetime.timedelta(days=days_ago),
        "Status": status_,
        "CreatedBy": {"RestoreTestingPlanArn": f"arn:aws:backup:{region}:{ACCOUNT}:restore-testing-plan:monthly"},
        **extra,
    }


def stubbed_backup(region: str, vault: str, points: list[dict] | None = None, jobs: list[dict] | None = None):
    """A Backup client answering, in this order, the vault's recovery points and the restore jobs."""
    client = boto3.client("backup", region_name=region)
    stubber = Stubber(client)
    if points is not None:
        stubber.add_response(
            "list_recovery_points_by_backup_vault", {"RecoveryPoints": points}, {"BackupVaultName": vault}
        )
    if jobs is not None:
        stubber.add_response("list_restore_jobs", {"RestoreJobs": jobs}, {"ByCreatedAfter": ANY})
    stubber.activate()
    return client


# --- status: replica lag (moto) ---------------------------------------------------------------


def test_the_dr_replica_lag_passes_from_either_stack_under_the_alarm(aws):
    create_databases()
    put_replica_lag(30.0)
    expected = Result(Outcome.PASS, f"{STANDBY_DB} ({DR_REGION}) 30s (alarm at 15 min)")
    assert status.replica_lag(Session(), PROD_DR, now()) == expected
    assert status.replica_lag(Session(), PROD, now()) == expected  # the primary's cross-region replica


def test_the_dr_replica_lag_fails_over_the_alarm_or_without_data(aws):
    create_databases()
    result = status.replica_lag(Session(), PROD_DR, now())
    assert result == Result(
        Outcome.FAIL, f"{STANDBY_DB} ({DR_REGION}): no ReplicaLag data in the last 10 min (alarm at 15 min)"
    )
    put_replica_lag(16 * 60.0)
    assert status.replica_lag(Session(), PROD_DR, now()).outcome is Outcome.FAIL


def test_a_primary_without_its_replica_or_a_standby_that_is_no_replica_fails(aws):
    create_databases(standby="promoted")
    assert status.replica_lag(Session(), PROD, now()) == Result(
        Outcome.FAIL, f"{PRIMARY_DB} has no cross-region replica: is its standby (prod-dr) deployed?"
    )
    assert status.replica_lag(Session(), PROD_DR, now()) == Result(
        Outcome.FAIL, f"{STANDBY_DB} is no read replica, yet the stack is a standby"
    )


def test_an_active_stacks_database_is_promoted_so_its_lag_is_skipped(aws):
    active = Pair(
        "prod-dr",
        PROD_DR.settings.model_copy(update={"dr": PROD_DR.settings.dr.model_copy(update={"role": "active"})}),
        "prod",
        PROD.settings,
    )
    create_databases(standby="promoted")
    assert status.replica_lag(Session(), active, now()).outcome is Outcome.SKIPPED


def test_a_missing_database_cannot_be_looked_at(aws):
    with pytest.raises(CheckError, match=f"^no RDS instance {STANDBY_DB} in {DR_REGION}$"):
        status.replica_lag(Session(), PROD_DR, now())


# --- status: recovery points and restore tests (Stubber) --------------------------------------


def test_the_newest_recovery_point_in_each_vault_is_judged_by_its_age(aws):
    points = [
        recovery_point(VAULT, PRIMARY_REGION, 27),
        recovery_point(VAULT, PRIMARY_REGION, 3),
        recovery_point(VAULT, PRIMARY_REGION, 0.1, "CREATING"),
    ]
    result = status.recovery_point(stubbed_backup(PRIMARY_REGION, VAULT, points), VAULT, now())
    assert result.outcome is Outcome.PASS and result.detail.startswith("3h 00m old (RDS, ")
    assert result.detail.endswith(f"vault {VAULT}); limit 26h 00m")
    old = [recovery_point(DR_VAULT, DR_REGION, 30)]
    assert status.recovery_point(stubbed_backup(DR_REGION, DR_VAULT, old), DR_VAULT, now()).outcome is Outcome.FAIL
    assert status.recovery_point(stubbed_backup(DR_REGION, DR_VAULT, []), DR_VAULT, now()) == Result(
        Outcome.FAIL, f"no completed recovery point in vault {DR_VAULT}"
    )


def test_the_last_restore_test_passes_when_it_completed_and_validated(aws):
    jobs = [
        restore_job(VAULT, PRIMARY_REGION, 40 - 10, ValidationStatus="FAILED"),
        restore_job(VAULT, PRIMARY_REGION, 2, ValidationStatus="SUCCESSFUL"),
        restore_job(VAULT, PRIMARY_REGION, 0.1, "RUNNING"),
    ]
    result = status.restore_test(stubbed_backup(PRIMARY_REGION, VAULT, jobs=jobs), VAULT, now())
    assert result.outcome is Outcome.PASS and result.detail.endswith(f"completed, validated (vault {VAULT})")
    unvalidated = [restore_job(VAULT, PRIMARY_REGION, 2)]
    result = status.restore_test(stubbed_backup(PRIMARY_REGION, VAULT, jobs=unvalidated), VAULT, now())
    assert result.outcome is Outcome.PASS and "no validation reported" in result.detail


def test_a_failed_restore_or_validation_fails_and_other_restores_do_not_count(aws):
    failed = [restore_job(VAULT, PRIMARY_REGION, 2, "FAILED", StatusMessage="insufficient capacity")]
    result = status.restore_test(stubbed_backup(PRIMARY_REGION, VAULT, jobs=failed), VAULT, now())
    assert result.outcome is Outcome.FAIL and result.detail.endswith("FAILED: insufficient capacity")
    invalid = [restore_job(VAULT, PRIMARY_REGION, 2, ValidationStatus="FAILED", ValidationStatusMessage="0 rows")]
    result = status.restore_test(stubbed_backup(PRIMARY_REGION, VAULT, jobs=invalid), VAULT, now())
    assert result.outcome is Outcome.FAIL and result.detail.endswith("its validation FAILED: 0 rows")
    manual = restore_job(VAULT, PRIMARY_REGION, 1)
    del manual["CreatedBy"]  # an operator's restore, not a test
    elsewhere = restore_job("plexichat-staging", PRIMARY_REGION, 1)
    result = status.restore_test(stubbed_backup(PRIMARY_REGION, VAULT, jobs=[manual, elsewhere]), VAULT, now())
    assert result == Result(Outcome.FAIL, f"no restore test of vault {VAULT} finished in the last 35 days")


# --- status: S3 replication (moto) ------------------------------------------------------------


def test_the_s3_replication_backlog_is_read_from_the_rules_metrics(aws):
    dimensions = create_replicated_bucket()
    cloudwatch = boto3.client("cloudwatch", region_name=PRIMARY_REGION)
    s3 = boto3.client("s3", region_name=PRIMARY_REGION)
    assert status.s3_replication(s3, cloudwatch, BUCKET, now()) == Result(
        Outcome.FAIL, f"rule dr -> {BUCKET}-dr: no replication metrics in the last 26h 00m"
    )
    put_replication_metrics(dimensions, pending=3, latency_seconds=42)
    assert status.s3_replication(s3, cloudwatch, BUCKET, now()) == Result(
        Outcome.PASS, f"rule dr -> {BUCKET}-dr: 3 operations (3072 B) pending, latency 42s (limit 15 min)"
    )


def test_replication_late_or_without_metrics_or_missing_fails(aws):
    dimensions = create_replicated_bucket()
    put_replication_metrics(dimensions, pending=800, latency_seconds=20 * 60)
    cloudwatch = boto3.client("cloudwatch", region_name=PRIMARY_REGION)
    s3 = boto3.client("s3", region_name=PRIMARY_REGION)
    assert status.s3_replication(s3, cloudwatch, BUCKET, now()).outcome is Outcome.FAIL
    create_replicated_bucket(metrics=False)
    result = status.s3_replication(s3, cloudwatch, BUCKET, now())
    assert (
        result.outcome is Outcome.FAIL and "replication metrics are off, so the backlog cannot be read" in result.detail
    )
    s3.delete_bucket_replication(Bucket=BUCKET)
    assert status.s3_replication(s3, cloudwatch, BUCKET, now()) == Result(
        Outcome.FAIL, f"{BUCKET} replicates nowhere (no replication configuration)"
    )


# --- status: DNS health check and cluster -----------------------------------------------------


def stubbed_route53(host: str, *statuses: str):
    client = boto3.client("route53", region_name=PRIMARY_REGION)
    stubber = Stubber(client)
    config = {"Type": "HTTPS", "FullyQualifiedDomainName": host, "Port": 443, "ResourcePath": "/readyz"}
    check = {"Id": "hc-1", "CallerReference": "r", "HealthCheckConfig": config, "HealthCheckVersion": 1}
    stubber.add_response(
        "list_health_checks", {"HealthChecks": [check], "Marker": "", "IsTruncated": False, "MaxItems": "100"}
    )
    observations = [
        {"Region": "us-east-1", "IPAddress": f"192.0.2.{n}", "StatusReport": {"Status": s}}
        for n, s in enumerate(statuses)
    ]
    stubber.add_response(
        "get_health_check_status", {"HealthCheckObservations": observations}, {"HealthCheckId": "hc-1"}
    )
    stubber.activate()
    return client


def test_the_primary_must_be_ready_and_the_standby_must_not(aws):
    for stack in ("prod", "prod-dr"):
        create_health_check(stack)
    route53 = boto3.client("route53", region_name=PRIMARY_REGION)
    prod_host, dr_host = (naming.dns_health_host(s, "app.plexichat.com") for s in ("prod", "prod-dr"))
    assert status.dns_health_check(route53, prod_host, "primary") == Result(
        Outcome.PASS, f"1 of 1 checkers see {prod_host} ready"
    )
    ready = status.dns_health_check(route53, dr_host, "standby")
    assert ready.outcome is Outcome.FAIL and ready.detail.endswith(
        "a standby reports ready, so Route 53 could send users to it"
    )
    failing = "Failure: HTTP Status Code 503, Service Unavailable"
    result = status.dns_health_check(stubbed_route53(dr_host, failing, failing), dr_host, "standby")
    assert result == Result(
        Outcome.PASS, f"0 of 2 checkers see {dr_host} ready ({failing}): not ready, as a standby must be"
    )
    result = status.dns_health_check(stubbed_route53(prod_host, failing, failing), prod_host, "primary")
    assert result == Result(Outcome.FAIL, f"0 of 2 checkers see {prod_host} ready ({failing})")
    assert status.dns_health_check(route53, "nowhere.health.app.plexichat.com", "primary").detail.startswith(
        "no Route 53 health check of nowhere.health.app.plexichat.com"
    )


def test_the_cluster_is_reachable_or_skipped_without_a_context():
    assert status.cluster(lambda args: "ok\n", "plexichat-prod-dr") == Result(
        Outcome.PASS, "plexichat-prod-dr: the API server's /readyz says ok"
    )
    assert status.cluster(lambda args: "", None).outcome is Outcome.SKIPPED


# --- the command ------------------------------------------------------------------------------


ROWS = [
    "DR replica lag",
    f"recovery point {PRIMARY_REGION}",
    f"recovery point {DR_REGION}",
    "S3 replication",
    f"restore test {PRIMARY_REGION}",
    f"restore test {DR_REGION}",
    "DNS health check",
    "cluster",
]


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch):
    """`kubectl` first on PATH: `/readyz` of the API server is `ok` for the given contexts."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    script.write_text(
        '#!/bin/sh\ncase "$*" in\n'
        '  "--context plexichat-prod get --raw /readyz"|"--context plexichat-prod-dr get --raw /readyz") echo ok ;;\n'
        '  *) echo "error: context not found: $*" >&2; exit 1 ;;\nesac\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def healthy_pair(aws, monkeypatch, fake_kubectl):
    """Everything `dr status` reads, as it is when the pair is healthy."""
    create_databases()
    put_replica_lag(12.0)
    put_replication_metrics(create_replicated_bucket(), pending=0, latency_seconds=30)
    create_health_check("prod")
    backups = {
        ("backup", region): stubbed_backup(
            region,
            vault,
            [recovery_point(vault, region, 5)],
            [restore_job(vault, region, 9, ValidationStatus="SUCCESSFUL")],
        )
        for region, vault in ((PRIMARY_REGION, VAULT), (DR_REGION, DR_VAULT))
    }
    monkeypatch.setattr(status, "aws_session", lambda: Session(backups))


def test_status_of_a_healthy_pair_prints_the_table_and_exits_0(healthy_pair, capsys):
    assert main(["dr", "status", "--stack", "prod"]) == EXIT_DONE
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "result", "detail"]
    for row in ROWS:
        assert any(line.startswith(row) and "  pass  " in line for line in out.splitlines()), row
    assert out.rstrip().endswith("prod: every recovery check passed")


def test_status_fails_on_what_it_cannot_look_at_and_exits_3(aws, monkeypatch, capsys):
    """Nothing exists in this AWS account and kubectl is not installed."""
    monkeypatch.setenv("PATH", "/nonexistent")
    results = status.run_checks(PROD_DR, Session(), kubectl_command("plexichat-prod-dr"), now())
    assert list(results) == ROWS
    assert {r.outcome for r in results.values()} == {Outcome.FAIL}
    assert results["cluster"].detail == "kubectl is not installed (not on PATH)"
    monkeypatch.setattr(status, "aws_session", Session)
    assert main(["dr", "status", "--stack", "prod-dr"]) == EXIT_CANNOT_DEPLOY
    assert "prod-dr: recovery is at risk: DR replica lag, " in capsys.readouterr().out


def test_status_of_a_stack_outside_dr_is_an_invalid_request(capsys):
    assert main(["dr", "status", "--stack", "dev"]) == EXIT_INVALID
    assert "dev takes no part in disaster recovery" in capsys.readouterr().err
