"""The RDS PostgreSQL primary and its replicas, per stack, on the real resource inputs."""

from __future__ import annotations

import pytest

from plexictl.offline.mocks import computed_aws_outputs
from tests.conftest import STACKS, is_dr_standby, render_edited, rendered
from tests.test_settings import _set

INSTANCE = "aws:rds/instance:Instance"
EXPECTED = {  # stack -> (replicas, multi-AZ, deletion protection, retention days, PI, monitoring s)
    "dev": (0, False, False, 7, False, 0),
    "staging": (1, True, True, 14, True, 60),
    "prod": (2, True, True, 30, True, 15),
}


PRIMARIES = [stack for stack in STACKS if not is_dr_standby(stack)]
"""The stacks whose database is their own primary; a DR standby's is a cross-region replica
(tests/test_dr_standby.py)."""


def primary(stack, preview=False):
    return rendered(stack, preview).one(INSTANCE, "database-primary")


def replicas(stack, preview=False):
    return [r for r in rendered(stack, preview).of_type(INSTANCE) if r.name != "database-primary"]


@pytest.mark.parametrize("stack", PRIMARIES)
def test_primary_is_encrypted_private_and_durable(stack):
    db = primary(stack).inputs
    key_arn = computed_aws_outputs("aws:kms/key:Key", "database-key", {})["arn"]
    n_replicas, multi_az, deletion_protection, retention, insights, monitoring = EXPECTED[stack]
    assert db["engine"] == "postgres" and db["engineVersion"].startswith("17")
    assert db["storageType"] == "gp3" and db["maxAllocatedStorage"] > db["allocatedStorage"]
    assert db["storageEncrypted"] is True
    # The key's ARN, never an alias ARN (an alias forces a replacement on every update).
    assert db["kmsKeyId"] == key_arn and ":alias/" not in key_arn
    assert db["publiclyAccessible"] is False
    assert db["manageMasterUserPassword"] is True and "password" not in db
    assert db["masterUserSecretKmsKeyId"] == db["kmsKeyId"]
    assert db["iamDatabaseAuthenticationEnabled"] is True
    assert db["multiAz"] is multi_az
    assert db["deletionProtection"] is deletion_protection
    assert db["backupRetentionPeriod"] == retention
    assert db["backupWindow"] == "03:00-04:00" and db["maintenanceWindow"] == "sun:21:00-sun:22:00"
    assert db["copyTagsToSnapshot"] is True and db["autoMinorVersionUpgrade"] is True
    assert db["skipFinalSnapshot"] is False and db["finalSnapshotIdentifier"] == f"plexichat-{stack}-final"
    assert db["deleteAutomatedBackups"] is False
    assert db["performanceInsightsEnabled"] is insights
    assert ("performanceInsightsKmsKeyId" in db) is insights
    assert db["monitoringInterval"] == monitoring and ("monitoringRoleArn" in db) is bool(monitoring)
    assert db["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert db["caCertIdentifier"].startswith("rds-ca-")
    assert len(replicas(stack)) == n_replicas


@pytest.mark.parametrize("stack", STACKS)
def test_parameter_group_forces_tls_and_logs_slow_statements(stack):
    r = rendered(stack)
    group = r.one("aws:rds/parameterGroup:ParameterGroup", "database-params").inputs
    assert group["family"] == "postgres17"
    parameters = {p["name"]: p["value"] for p in group["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == "500"
    assert primary(stack).inputs["parameterGroupName"] == group["name"]


@pytest.mark.parametrize("stack", PRIMARIES)
def test_password_is_rotated_every_30_days_and_only_on_the_primary(stack):
    r = rendered(stack)
    # The master's; the roles' are tests/test_database_roles_wiring.py's.
    (rotation,) = [
        x for x in r.of_type("aws:secretsmanager/secretRotation:SecretRotation") if x.component == "Database database"
    ]
    assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] == 30
    assert "rotationLambdaArn" not in rotation.inputs  # RDS-managed: no Lambda
    assert rotation.inputs["secretId"].startswith("arn:aws:secretsmanager:")
    for replica in replicas(stack):
        # AWS: replicas inherit the source's credentials and must not manage their own.
        assert "manageMasterUserPassword" not in replica.inputs and "password" not in replica.inputs


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("preview", [False, True])
def test_replicas_reference_the_primary_and_are_hardened_alike(stack, preview):
    source = primary(stack, preview)
    zones = []
    for replica in replicas(stack, preview):
        inputs = replica.inputs
        assert inputs["replicateSourceDb"] in ("plexichat-" + stack, "[unknown until apply]")
        assert source.urn in replica.dependencies
        for same in (
            "instanceClass",
            "publiclyAccessible",
            "deletionProtection",
            "copyTagsToSnapshot",
            "autoMinorVersionUpgrade",
            "performanceInsightsEnabled",
            "monitoringInterval",
            "iamDatabaseAuthenticationEnabled",
            "parameterGroupName",
            "vpcSecurityGroupIds",
        ):
            assert inputs[same] == source.inputs[same], same
        # Inherited from the source: setting them on a same-region replica is an error or a no-op.
        for inherited in ("engine", "storageEncrypted", "kmsKeyId", "username", "dbSubnetGroupName"):
            assert inherited not in inputs, inherited
        zones.append(inputs["availabilityZone"])
    assert len(set(zones)) == len(zones)  # spread over AZs


def test_replica_reader_endpoints_reach_the_outputs():
    outputs = rendered("prod").outputs["database"]
    assert outputs["readReplicas"] == 2
    assert outputs["readerEndpoints"] == [
        f"plexichat-prod-replica-{n}.c0ffee123456.us-east-1.rds.amazonaws.com" for n in (1, 2)
    ]
    assert rendered("dev").outputs["database"]["readerEndpoints"] == [
        rendered("dev").outputs["database"]["primaryEndpoint"]
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_log_groups_exist_with_90_day_retention_before_the_instances(stack):
    r = rendered(stack)
    groups = {g.inputs["name"]: g for g in r.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for instance in r.of_type(INSTANCE):
        ident = instance.inputs["identifier"]
        for export in ("postgresql", "upgrade"):
            group = groups[f"/aws/rds/instance/{ident}/{export}"]
            assert group.inputs["retentionInDays"] == 90
            assert group.urn in instance.dependencies


def test_no_password_ever_passes_through_the_program():
    """RDS generates and keeps the master password (Secrets Manager): no instance takes one."""
    for stack in STACKS:
        for instance in rendered(stack).of_type("aws:rds/instance:Instance"):
            assert "password" not in instance.inputs and "passwordWo" not in instance.inputs
            is_primary = "replicateSourceDb" not in instance.inputs
            assert instance.inputs.get("manageMasterUserPassword", False) is is_primary, instance.name


@pytest.mark.parametrize("stack", STACKS)
def test_a_major_upgrade_is_refused_and_changes_wait_for_the_window_by_default(stack):
    instances = rendered(stack).of_type(INSTANCE)
    assert "allowMajorVersionUpgrade" not in primary(stack).inputs  # RDS's default: refused
    assert all(i.inputs["applyImmediately"] is False for i in instances)


def test_a_major_upgrade_applies_at_once_to_the_primary_and_the_replicas():
    """17 -> 18 in one change: allowed on the primary (replicas follow it), and applied now by
    every instance, so none stays on the postgres17 parameter group Pulumi is deleting."""

    def upgrade(config):
        _set("database.engineVersion", "18")(config)
        _set("database.majorVersionUpgrade", True)(config)

    r = render_edited("prod", upgrade)
    params = r.one("aws:rds/parameterGroup:ParameterGroup", "database-params").inputs
    assert params["family"] == "postgres18" and params["name"] == "plexichat-prod-postgres18"
    instances = r.of_type(INSTANCE)
    assert len(instances) == 3
    for instance in instances:
        assert instance.inputs["applyImmediately"] is True, instance.name
        assert instance.inputs["parameterGroupName"] == "plexichat-prod-postgres18", instance.name
    db = r.one(INSTANCE, "database-primary").inputs
    assert db["engineVersion"] == "18" and db["allowMajorVersionUpgrade"] is True
    assert all("engineVersion" not in i.inputs for i in instances if i.name != "database-primary")
