"""Alarms on the data path (components/observability/data_path_alarms.py): the component on its
own (every alarm, rule, metric, dimension and threshold), then as the stacks wire it: each to the
alarm topic of its own region, which admits EventBridge, and each linking a runbook section that
exists."""

from __future__ import annotations

import json

import pytest

from components.config.rpo import REPLICA_LAG_DETECTION_MINUTES
from components.data.disaster_recovery import REPLICATION_RULE_ID
from components.observability import data_path_alarms as dpa
from components.observability.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.observability.data_path_alarms import (
    BucketReplication,
    DataPathAlarms,
    DataPathAlarmsArgs,
    DrReplica,
    VaultRef,
)
from plexictl.offline import Rendering, run
from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import STACKS, render_edited, rendered
from tests.test_docs import RUNBOOK, anchors

RULE = "aws:cloudwatch/eventRule:EventRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
RUNBOOK_URL = "https://example.com/runbook.md"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms-topic"
VAULT = VaultRef("plexichat-test", "arn:aws:backup:us-east-1:123456789012:backup-vault:plexichat-test")


def _component(**args) -> Rendering:
    def program():
        import pulumi_aws as aws

        topic = AlarmTopic("alarms", AlarmTopicArgs(stack="test"))
        validator = aws.lambda_.Function(
            "validator",
            name="plexichat-test-restore-validator",
            role="arn:aws:iam::123456789012:role/r",
            runtime="python3.13",
        )
        DataPathAlarms(
            "data-path",
            DataPathAlarmsArgs(topic=topic.topic, runbook_url=RUNBOOK_URL, restore_validator=validator, **args),
        )

    return run(program, "test")


def _by_name(rendering: Rendering, type_: str) -> dict[str, dict]:
    return {r.name: r.inputs for r in rendering.of_type(type_)}


def test_every_alarm_of_a_primary_region_and_a_standby_region():
    rendering = _component(
        vaults={"primary": VAULT},
        replication=BucketReplication("bucket", "bucket-dr", REPLICATION_RULE_ID),
        dr_replica=DrReplica("plexichat-test-dr", 15),
    )
    assert rendering.warnings == []
    alarms = _by_name(rendering, ALARM)
    assert set(alarms) == {
        "data-path-primary-recovery-point-missing",
        "data-path-s3-replication-failed",
        "data-path-s3-replication-late",
        "data-path-dr-replica-lag",
        "data-path-restore-validation-failed",
    }
    for name, alarm in alarms.items():
        assert alarm["alarmActions"] == [TOPIC] and alarm["okActions"] == [TOPIC], name
        assert alarm["actionsEnabled"] is True and alarm["datapointsToAlarm"] == alarm["evaluationPeriods"], name
    assert set(_by_name(rendering, RULE)) == {f"data-path-{kind}-jobs-failed" for kind in ("backup", "copy", "restore")}


def test_a_day_without_a_completed_backup_job_alarms():
    alarm = _by_name(_component(vaults={"primary": VAULT}), ALARM)["data-path-primary-recovery-point-missing"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Backup", "NumberOfBackupJobsCompleted")
    assert alarm["dimensions"] == {"BackupVaultName": "plexichat-test"}
    assert (alarm["statistic"], alarm["comparisonOperator"], alarm["threshold"]) == ("Sum", "LessThanThreshold", 1)
    # 26 hourly periods, every one without a completed job (no datapoint at all counts too).
    assert alarm["period"] * alarm["evaluationPeriods"] == 26 * 3600 and alarm["period"] >= 3600
    assert alarm["treatMissingData"] == "breaching"


def test_s3_replication_failures_and_late_objects_alarm_per_rule():
    rendering = _component(replication=BucketReplication("bucket", "bucket-dr", "dr"))
    alarms = _by_name(rendering, ALARM)
    rule = {"SourceBucket": "bucket", "DestinationBucket": "bucket-dr", "RuleId": "dr"}
    failed, late = alarms["data-path-s3-replication-failed"], alarms["data-path-s3-replication-late"]
    assert (failed["namespace"], failed["metricName"], failed["dimensions"]) == (
        "AWS/S3",
        "OperationsFailedReplication",
        rule,
    )
    assert (failed["statistic"], failed["comparisonOperator"], failed["threshold"]) == (
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert (late["metricName"], late["dimensions"], late["statistic"]) == ("ReplicationLatency", rule, "Maximum")
    assert late["threshold"] == 15 * 60  # seconds: Replication Time Control's 15 minutes
    assert failed["treatMissingData"] == late["treatMissingData"] == "notBreaching"  # an idle bucket


def test_the_dr_replica_lag_alarm_is_the_rpo_models():
    alarm = _by_name(_component(dr_replica=DrReplica("plexichat-test-dr", 20)), ALARM)["data-path-dr-replica-lag"]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/RDS", "ReplicaLag")
    assert alarm["dimensions"] == {"DBInstanceIdentifier": "plexichat-test-dr"}
    assert (alarm["statistic"], alarm["threshold"]) == ("Maximum", 20 * 60)
    assert alarm["period"] * alarm["evaluationPeriods"] == REPLICA_LAG_DETECTION_MINUTES * 60
    assert alarm["treatMissingData"] == "breaching"  # a replica that reports nothing replicates nothing


def test_backup_copy_and_restore_jobs_that_end_badly_go_to_the_topic():
    rendering = _component(vaults={"primary": VAULT})
    rules = {
        name.removeprefix("data-path-"): json.loads(r["eventPattern"]) for name, r in _by_name(rendering, RULE).items()
    }
    bad = ["FAILED", "ABORTED", "EXPIRED"]
    assert rules["backup-jobs-failed"] == {
        "source": ["aws.backup"],
        "detail-type": ["Backup Job State Change"],
        "detail": {"state": bad, "backupVaultName": ["plexichat-test"]},
    }
    assert rules["copy-jobs-failed"]["detail"] == {"state": bad, "sourceBackupVaultArn": [VAULT.arn]}
    # Restore jobs report `status`, not `state`; any restore job of the region.
    assert rules["restore-jobs-failed"]["detail-type"] == ["Restore Job State Change"]
    assert rules["restore-jobs-failed"]["detail"] == {"status": bad}
    targets = _by_name(rendering, TARGET)
    assert {t["arn"] for t in targets.values()} == {TOPIC} and len(targets) == 3


def test_a_region_without_vaults_still_watches_its_restore_jobs():
    rendering = _component()
    assert set(_by_name(rendering, RULE)) == {"data-path-restore-jobs-failed"}
    assert set(_by_name(rendering, ALARM)) == {"data-path-restore-validation-failed"}


def test_a_failed_data_check_alarms_on_the_validators_errors():
    alarm = _by_name(_component(), ALARM)["data-path-restore-validation-failed"]
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["dimensions"] == {"FunctionName": "plexichat-test-restore-validator"}


def test_every_alarm_and_rule_links_a_runbook_section_that_exists():
    rendering = _component(
        vaults={"primary": VAULT},
        replication=BucketReplication("b", "b-dr", "dr"),
        dr_replica=DrReplica("r", 15),
    )
    sections = anchors(RUNBOOK)
    descriptions = [a["alarmDescription"] for a in _by_name(rendering, ALARM).values()]
    descriptions += [r["description"] for r in _by_name(rendering, RULE).values()]
    for description in descriptions:
        url, _, fragment = description.rpartition("Runbook: ")[2].partition("#")
        assert url == RUNBOOK_URL and fragment in sections, description
    alerts = [dpa.BACKUP_JOB_FAILED, dpa.RESTORE_TEST_FAILED, dpa.RECOVERY_POINT_MISSING]
    alerts += [dpa.S3_REPLICATION_FAILING, dpa.DR_REPLICA_LAGGING]
    assert {a.lower() for a in alerts} <= sections


# --- as the stacks wire it ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_a_stack_with_its_own_backups_watches_its_vault_and_restore_tests(stack):
    r = rendered(stack)
    alarms = _by_name(r, ALARM)
    vault = r.one("aws:backup/vault:Vault", "backups-vault").inputs["name"]
    assert alarms["data-path-primary-recovery-point-missing"]["dimensions"] == {"BackupVaultName": vault}
    assert alarms["data-path-restore-validation-failed"]["dimensions"] == {
        "FunctionName": r.one("aws:lambda/function:Function", "restore-tests-validator").inputs["name"]
    }
    missing = r.one(ALARM, "data-path-primary-recovery-point-missing")
    assert missing.provider == r.one("aws:backup/vault:Vault", "backups-vault").provider  # this region's
    assert "data-path-dr-replica-lag" not in alarms  # the standby's


def test_prod_watches_its_bucket_replication_which_reports_metrics_under_rtc():
    r = rendered("prod")
    alarms = _by_name(r, ALARM)
    buckets = {b.name: b.inputs["bucket"] for b in r.of_type("aws:s3/bucket:Bucket")}
    rule = {
        "SourceBucket": buckets["backups-bucket"],
        "DestinationBucket": buckets["backups-dr-bucket"],
        "RuleId": "dr",
    }
    assert alarms["data-path-s3-replication-failed"]["dimensions"] == rule
    assert alarms["data-path-s3-replication-late"]["dimensions"] == rule
    (config,) = r.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (replication,) = config.inputs["rules"]
    destination = replication["destination"]
    assert replication["id"] == REPLICATION_RULE_ID
    assert destination["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}
    assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert "data-path-s3-replication-late" not in _by_name(rendered("staging"), ALARM)  # no DR copy there


@pytest.mark.parametrize("stack", STACKS)
def test_eventbridge_may_publish_to_the_encrypted_topic_of_this_account_only(stack):
    r = rendered(stack)
    key = json.loads(r.one("aws:kms/key:Key", "alarms-key").inputs["policy"])
    policy = json.loads(r.one("aws:sns/topicPolicy:TopicPolicy", "alarms-topic-policy").inputs["policy"])
    for document, action in ((key, "kms:GenerateDataKey*"), (policy, "SNS:Publish")):
        (events,) = [s for s in document["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}]
        assert events["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
        assert action in events["Action"] or events["Action"] == action
    for target in _by_name(r, TARGET).values():
        if target["rule"].startswith("data-path-"):
            assert target["arn"] == r.outputs["alarmTopicArn"]  # the stack's, in its region


def test_the_standby_alarms_on_its_replicas_lag_in_its_own_region():
    r = rendered("prod-dr")
    alarm = _by_name(r, ALARM)["data-path-dr-replica-lag"]
    primary = r.one("aws:rds/instance:Instance", "database-primary")
    assert primary.inputs.get("replicateSourceDb")  # the cross-region replica
    assert alarm["dimensions"] == {"DBInstanceIdentifier": primary.inputs["identifier"]}
    assert alarm["alarmActions"] == [
        computed_aws_outputs("aws:sns/topic:Topic", "alarms-topic", {}, "us-west-2")["arn"]
    ]

    def lag_20(config):
        config["plexichat:dr"]["replicaLagAlarmMinutes"] = 20

    edited = _by_name(render_edited("prod-dr", lag_20), ALARM)["data-path-dr-replica-lag"]
    assert edited["threshold"] == 20 * 60


def test_a_promoted_standby_watches_the_backups_it_now_takes_instead_of_a_lag():
    def failover(config):
        config["plexichat:dr"]["role"] = "active"

    alarms = _by_name(render_edited("prod-dr", failover), ALARM)
    assert "data-path-dr-replica-lag" not in alarms  # no replica any more
    assert alarms["data-path-dr-recovery-point-missing"]["dimensions"] == {"BackupVaultName": "plexichat-prod-dr"}
