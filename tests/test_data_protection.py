"""No data loss by config edit or refactor: protection options, the pinned-identity guard, and
stable URNs of every stateful resource."""

from __future__ import annotations

import fnmatch
import json

import pulumi
import pytest

from components.config import floors
from components.data.stateful import STATEFUL_TYPES, replacement_forcing_changes
from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import STACKS, render_edited, rendered, stack_file
from tests.release_state import version_for
from tests.test_settings import _remove, _set

PROTECTED = {  # (type, name) -> retain_on_delete as well
    ("aws:rds/instance:Instance", "database-primary"): False,
    ("aws:kms/key:Key", "database-key"): False,
    ("aws:kms/key:Key", "cache-key"): False,
    ("aws:kms/key:Key", "backups-key"): False,
    ("aws:s3/bucket:Bucket", "backups-bucket"): True,
    ("aws:s3/bucket:Bucket", "backups-access-logs"): True,
    ("aws:backup/vault:Vault", "backups-vault"): False,
    ("aws:elasticache/replicationGroup:ReplicationGroup", "cache-group"): False,
    ("aws:secretsmanager/secret:Secret", "cache-auth-secret"): False,
    ("aws:cloudwatch/logGroup:LogGroup", "cache-slow-log"): False,
    ("aws:cloudwatch/logGroup:LogGroup", "database-primary-log-postgresql"): False,
    ("aws:cloudwatch/logGroup:LogGroup", "database-primary-log-upgrade"): False,
    # The 90-day records (docs/observability.md, docs/edge.md): the app's logs and their key, the
    # load balancer's and CloudFront's access logs.
    ("aws:kms/key:Key", "application-logs-key"): False,
    ("aws:cloudwatch/logGroup:LogGroup", "application-logs-group"): False,
    ("aws:s3/bucket:Bucket", "web-load-balancer-access-logs"): True,
    ("aws:s3/bucket:Bucket", "static-assets-access-logs"): True,
}
PROTECTED_DR = {
    ("aws:kms/key:Key", "backups-dr-key"): False,
    ("aws:s3/bucket:Bucket", "backups-dr-bucket"): True,
    ("aws:s3/bucket:Bucket", "backups-dr-access-logs"): True,
    ("aws:backup/vault:Vault", "backups-dr-vault"): False,
}


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_protect_the_data(stack):
    r = rendered(stack)
    expected = {**PROTECTED, **(PROTECTED_DR if stack == "prod" else {})}
    replicas = [i.name for i in r.of_type("aws:rds/instance:Instance") if i.inputs.get("replicateSourceDb")]
    assert replicas  # staging and prod have read replicas: each is protected, with its logs
    for replica in replicas:
        expected[("aws:rds/instance:Instance", replica)] = False
        for export in ("postgresql", "upgrade"):
            expected[("aws:cloudwatch/logGroup:LogGroup", f"{replica}-log-{export}")] = False
    for (type_, name), retain in expected.items():
        resource = r.one(type_, name)
        assert resource.protect is True, name
        assert resource.retain_on_delete is retain, name
    # Nothing else is protected: a protected side resource would block routine changes.
    assert {(res.type, res.name) for res in r.resources if res.protect} == set(expected)


def test_dev_protects_nothing_so_it_can_be_torn_down():
    assert not [r.name for r in rendered("dev").resources if r.protect or r.retain_on_delete]


GUARDED_EDITS = [
    # (edit of a protected stack, the key path the error names, what it says the edit would do)
    (_set("aws", {"region": "eu-west-1"}), "plexichat:aws.region", "destroy every AWS resource"),
    (
        _set("database.identifier", "plexichat-prod-2"),
        "plexichat:database.identifier",
        "rename the RDS primary and its replicas (new endpoints",
    ),
    (
        _set("cache.replicationGroupId", "plexichat-prod-2"),
        "plexichat:cache.replicationGroupId",
        "destroy the ElastiCache replication group",
    ),
    (_set("cache.engine", "redis"), "plexichat:cache.engine", "destroy the ElastiCache replication group"),
    (
        _set("backups.bucketName", "plexichat-prod-backups-2"),
        "plexichat:backups.bucketName",
        "destroy the backup bucket",
    ),
    (_set("backups.drRegion", "eu-west-1"), "plexichat:backups.drRegion", "destroy the DR bucket"),
    (_remove("backups.drRegion"), "plexichat:backups.drRegion", "destroy the DR bucket"),
]


@pytest.mark.parametrize("edit,key,consequence", GUARDED_EDITS, ids=[g[1] for g in GUARDED_EDITS])
def test_the_guard_refuses_each_replacing_edit_in_prod(edit, key, consequence):
    with pytest.raises(pulumi.RunError) as raised:
        render_edited("prod", edit)
    lines = [line for line in str(raised.value).splitlines() if line.strip().startswith(f"- {key}:")]
    assert lines and f"would {consequence}" in lines[0], str(raised.value)
    assert "dataProtection.pinned" in lines[0]  # it says how to do it on purpose


def test_moving_the_pin_with_the_setting_is_the_explicit_override():
    def edit(config):
        _set("backups.bucketName", "plexichat-prod-backups-2")(config)
        _set("dataProtection.pinned.backupBucketName", "plexichat-prod-backups-2")(config)

    before, after = rendered("prod").by_urn(), render_edited("prod", edit).by_urn()
    bucket = next(urn for urn, r in before.items() if r.name == "backups-bucket")
    # Allowed now, and the replacement stays visible to `plexictl diff` through the shared table.
    assert replacement_forcing_changes("aws:s3/bucket:Bucket", before[bucket].inputs, after[bucket].inputs) == [
        "bucket"
    ]


def test_turning_protection_off_does_not_lift_the_pins():
    def edit(config):
        _set("dataProtection.protect", False)(config)
        _set("database.identifier", "plexichat-prod-2")(config)

    with pytest.raises(pulumi.RunError, match=r"plexichat:database\.identifier: changing it"):
        render_edited("prod", edit)


def test_a_protected_stack_must_pin_its_identity():
    with pytest.raises(pulumi.RunError, match=r"plexichat:dataProtection\.pinned: is required"):
        render_edited("staging", _remove("dataProtection.pinned"))


def test_an_unprotected_stack_may_change_identity_freely():
    render_edited("dev", _set("database.identifier", "plexichat-dev-2"))


TUNABLE_EDITS = {
    "database.instanceClass": "db.r7g.xlarge",
    "database.engineVersion": "17.6",
    "database.allocatedStorageGib": 300,
    "database.maxAllocatedStorageGib": 2000,
    "database.multiAz": False,
    "database.backupRetentionDays": 35,
    "database.backupWindow": "01:00-02:00",
    "database.maintenanceWindow": "sat:05:00-sat:06:00",
    "database.deletionProtection": False,
    "database.performanceInsights": False,
    "database.monitoringIntervalSeconds": 0,
    "database.slowStatementMs": 1000,
    "database.logRetentionDays": 30,
    "database.passwordRotationDays": 14,
    "cache.engineVersion": "8.1",
    "cache.nodeType": "cache.r7g.xlarge",
    "cache.nodes": 2,
    "cache.snapshotRetentionDays": 35,
    "cache.maxmemoryPolicy": "allkeys-lru",
    "backups.dailyRetentionDays": 14,
    "backups.monthlyRetentionDays": 730,
    "backups.drAutomatedBackupRetentionDays": 14,
}


def test_no_tunable_setting_reaches_an_input_that_replaces_stateful_data():
    """Every data-tier setting that is not pinned, changed at once in prod: no stateful resource
    sees a replacement-forcing change (so only the pins can ever replace data)."""

    def edit(config):
        for path, value in TUNABLE_EDITS.items():
            _set(path, value)(config)
        # The production floors those values go below (deletion protection, Multi-AZ), on purpose.
        below = [p for p, value in TUNABLE_EDITS.items() if p in floors.BY_NAME and not floors.BY_NAME[p].holds(value)]
        config["plexichat:productionFloorOverrides"] = dict.fromkeys(below, "tuning test")

    before, after = rendered("prod").by_urn(), render_edited("prod", edit).by_urn()
    stateful = [urn for urn, r in before.items() if r.type in STATEFUL_TYPES]
    assert len(stateful) >= 10
    for urn in stateful:
        assert urn in after, f"{urn} would be deleted"
        assert replacement_forcing_changes(before[urn].type, before[urn].inputs, after[urn].inputs) == [], urn
    assert any(before[u].inputs != after[u].inputs for u in stateful)  # the edits did reach them


STATEFUL_URNS_PROD = {
    "plexichat:data:Database$aws:rds/instance:Instance::database-primary",
    "plexichat:data:Database$aws:rds/instance:Instance::database-replica-1",
    "plexichat:data:Database$aws:rds/instance:Instance::database-replica-2",
    "plexichat:data:Database$aws:kms/key:Key::database-key",
    "plexichat:data:Cache$aws:elasticache/replicationGroup:ReplicationGroup::cache-group",
    "plexichat:data:Cache$aws:kms/key:Key::cache-key",
    "plexichat:data:Cache$aws:secretsmanager/secret:Secret::cache-auth-secret",
    "plexichat:data:DatabaseRoleSecrets$aws:secretsmanager/secret:Secret::database-roles-plexichat_app",
    "plexichat:data:DatabaseRoleSecrets$aws:secretsmanager/secret:Secret::database-roles-plexichat_migrator",
    "plexichat:data:Backups$aws:kms/key:Key::backups-key",
    "plexichat:data:Backups$aws:kms/key:Key::backups-dr-key",
    "plexichat:data:Backups$aws:s3/bucket:Bucket::backups-bucket",
    "plexichat:data:Backups$aws:s3/bucket:Bucket::backups-dr-bucket",
    "plexichat:data:Backups$aws:s3/bucket:Bucket::backups-access-logs",
    "plexichat:data:Backups$aws:s3/bucket:Bucket::backups-dr-access-logs",
    "plexichat:data:Backups$aws:backup/vault:Vault::backups-vault",
    "plexichat:data:Backups$aws:backup/vault:Vault::backups-dr-vault",
    "plexichat:alerting:AlarmTopic$aws:kms/key:Key::alarms-key",
    "plexichat:alerting:Alerting$aws:kms/key:Key::monitoring-receivers-key",
    "plexichat:alerting:Alerting$aws:secretsmanager/secret:Secret::monitoring-receivers-secret",
    "plexichat:ingress:Edge$aws:kms/key:Key::web-waf-logs-key",
    "plexichat:ingress:Edge$aws:s3/bucket:Bucket::web-load-balancer-access-logs",
    "plexichat:edge:StaticAssetsCdn$aws:kms/key:Key::static-assets-waf-logs-key",
    "plexichat:edge:StaticAssetsCdn$aws:kms/key:Key::static-assets-origin-secret-key",
    "plexichat:edge:StaticAssetsCdn$aws:secretsmanager/secret:Secret::static-assets-origin-secret",
    "plexichat:edge:StaticAssetsCdn$aws:s3/bucket:Bucket::static-assets-access-logs",
    "plexichat:observability:ApplicationLogs$aws:kms/key:Key::application-logs-key",
}


@pytest.mark.parametrize("preview", [False, True])
def test_stateful_urns_are_stable(preview):
    """A rename of a component or resource changes these URNs and replaces the data: do it only
    with an alias, and keep this list as it is."""
    prefix = "urn:pulumi:prod::plexichat::"  # the mock monitor shows only the parent type
    urns = {r.urn.removeprefix(prefix) for r in rendered("prod", preview).resources if r.type in STATEFUL_TYPES}
    assert urns == STATEFUL_URNS_PROD


@pytest.mark.parametrize("stack", STACKS)
def test_canary_and_release_edits_never_touch_the_data_tier(stack):
    edited = render_edited(stack, _set("release", {"strategy": "rolling", "version": version_for(stack, "v9.9.9")}))
    before = rendered(stack).by_urn()
    for urn, resource in edited.by_urn().items():
        if not resource.type.startswith("aws:"):
            continue
        if urn not in before:
            # The one AWS resource a newer version adds: the snapshot before its migration.
            assert resource.type == "aws:rds/snapshot:Snapshot", urn
            continue
        assert before[urn].inputs == resource.inputs, urn


@pytest.mark.parametrize("stack", STACKS)
def test_every_key_rotates_waits_30_days_and_has_an_explicit_policy(stack):
    keys = [k for k in rendered(stack).of_type("aws:kms/key:Key") if ":plexichat:data:" in k.urn]
    # database, cache, backups (+ DR); a DR stack's backup keys are its primary's (docs/dr.md)
    assert len(keys) == {"prod": 4, "prod-dr": 2}.get(stack, 3)
    region = _region(stack)
    for key in keys:
        inputs = key.inputs
        assert inputs["enableKeyRotation"] is True and inputs["isEnabled"] is True, key.name
        assert inputs["deletionWindowInDays"] == 30 and inputs["description"], key.name
        assert inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT" and inputs["multiRegion"] is False
        root, *services = json.loads(inputs["policy"])["Statement"]
        assert root["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}, key.name
        # Beyond the account's IAM, only CloudWatch Logs, for the store's own log groups (below).
        assert all(s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"} for s in services), key.name


def _region(stack: str) -> str:
    return stack_file(stack)["config"]["plexichat:aws"]["region"]


def _arn_like(patterns: list[str], arn: str) -> bool:
    """IAM's ArnLike with a list (any may match): each of the six colon-separated parts matched
    on its own, `*` and `?` as wildcards."""
    return any(
        all(
            fnmatch.fnmatchcase(part, wanted)
            for wanted, part in zip(pattern.split(":", 5), arn.split(":", 5), strict=True)
        )
        for pattern in patterns
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_log_group_is_encrypted_with_a_key_that_admits_exactly_its_log_groups(stack):
    """A log group's key must let CloudWatch Logs use it for that group (or the association
    fails at deploy time), and for no log group that is not encrypted with it."""
    r = rendered(stack)
    region = _region(stack)
    groups = r.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) >= 4  # database (per instance), cache slow log, WAF
    keys = {computed_aws_outputs(k.type, k.name, k.inputs, region)["arn"]: k for k in r.of_type("aws:kms/key:Key")}
    for key_arn, key in keys.items():
        statements = [
            s
            for s in json.loads(key.inputs["policy"])["Statement"]
            if s["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
        ]
        encrypted_here = {g.inputs["name"] for g in groups if g.inputs.get("kmsKeyId") == key_arn}
        admitted = {
            g.inputs["name"]
            for g in groups
            for s in statements
            if _arn_like(
                s["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"],
                f"arn:aws:logs:{region}:123456789012:log-group:{g.inputs['name']}",
            )
        }
        assert admitted == encrypted_here, key.name
        for s in statements:
            assert {"kms:GenerateDataKey*", "kms:Decrypt*"} <= set(s["Action"]) and "kms:*" not in s["Action"]
    for group in groups:
        assert group.inputs["kmsKeyId"] in keys, group.inputs["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_use_a_customer_key_and_a_30_day_recovery_window(stack):
    for secret in rendered(stack).of_type("aws:secretsmanager/secret:Secret"):
        assert ":key/" in secret.inputs["kmsKeyId"] and secret.inputs["recoveryWindowInDays"] == 30


def test_spelling_out_a_provider_default_is_no_replacement():
    """`multiRegion: false` where it was left out changes nothing at AWS: no false alarm."""
    key = "aws:kms/key:Key"
    assert replacement_forcing_changes(key, {}, {"multiRegion": False, "keyUsage": "ENCRYPT_DECRYPT"}) == []
    assert replacement_forcing_changes(key, {}, {"multiRegion": True}) == ["multiRegion"]


def test_the_database_key_does_not_admit_a_neighbouring_instances_logs():
    """`plexichat-prod-restored` (a restore drill) shares the identifier's prefix: not its logs."""
    key = rendered("prod").one("aws:kms/key:Key", "database-key")
    (logs,) = [s for s in json.loads(key.inputs["policy"])["Statement"] if "Condition" in s]
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/rds/instance/{}/postgresql"
    assert _arn_like(patterns, arn.format("plexichat-prod-replica-2"))
    assert not _arn_like(patterns, arn.format("plexichat-prod-restored"))
