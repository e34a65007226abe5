"""Bad data-tier config: one RunError naming the key path, before any resource is registered."""

from __future__ import annotations

import pulumi
import pytest

from plexictl.offline import recording, stack_files
from tests.conftest import render_edited
from tests.test_settings import _remove, _set
from tests.test_settings import (  # the same check as the rest of the contract
    test_bad_config_is_one_run_error_naming_the_key_and_registers_nothing as _check_bad_config,
)

BAD_DATA_CONFIGS = [
    ("prod", _set("database.readReplicas", 6), "plexichat:database.readReplicas", "0 to 5"),
    ("prod", _set("database.readReplicas", -1), "plexichat:database.readReplicas", "0 to 5"),
    ("prod", _set("database.backupRetentionDays", 36), "plexichat:database.backupRetentionDays", "35"),
    ("prod", _set("database.backupRetentionDays", 0), "plexichat:database.backupRetentionDays", "1 to 35"),
    ("prod", _set("database.instanceClass", "db.huge"), "plexichat:database.instanceClass", "db.t4g.medium"),
    ("prod", _set("database.instanceClass", "m5.large"), "plexichat:database.instanceClass", "RDS instance class"),
    ("prod", _set("database.engineVersion", "12"), "plexichat:database.engineVersion", "14 or newer"),
    (
        "prod",
        _set("database.maxAllocatedStorageGib", 100),
        "plexichat:database.maxAllocatedStorageGib",
        ">= allocatedStorageGib",
    ),
    ("prod", _set("database.backupWindow", "21:30-22:30"), "plexichat:database.backupWindow", "overlap"),
    ("prod", _set("database.monitoringIntervalSeconds", 7), "plexichat:database.monitoringIntervalSeconds", "60"),
    (
        "prod",
        _set("database.replicaAvailabilityZones", ["us-west-2a"]),
        "plexichat:database.replicaAvailabilityZones",
        "us-east-1",
    ),
    ("prod", _remove("database.identifier"), "plexichat:database.identifier", "required"),
    ("dev", _set("database.identifier", "Plexi_DB"), "plexichat:database.identifier", "RDS identifier"),
    ("prod", _set("cache.nodeType", "cache.giant"), "plexichat:cache.nodeType", "node type"),
    ("prod", _set("cache.nodes", 7), "plexichat:cache.nodes", "1 to 6"),
    ("dev", _set("cache.multiAz", True), "plexichat:cache.multiAz", "nodes >= 2"),
    ("prod", _set("cache.engineVersion", "6.2"), "plexichat:cache.engineVersion", "7.0 or newer"),
    # IAM authentication needs 7.0 or newer: every engineVersion is, so that is the error.
    (
        "prod",
        lambda c: [_set("cache.appAuth", "iam")(c), _set("cache.engineVersion", "6.2")(c)],
        "plexichat:cache.engineVersion",
        "7.0 or newer",
    ),
    ("prod", _set("cache.appAuth", "password"), "plexichat:cache.appAuth", "token"),
    ("prod", _set("database.passwordRotationDays", 45), "plexichat:database.passwordRotationDays", "1 to 30"),
    ("prod", _set("network.privateSubnetIds", []), "plexichat:network.privateSubnetIds", "at least 2"),
    ("prod", _remove("network.clusterSecurityGroupId"), "plexichat:network.clusterSecurityGroupId", "required"),
    ("prod", _remove("network.vpcId"), "plexichat:network.vpcId", "required"),
    (
        "prod",
        lambda c: [_set(k, "us-east-1")(c) for k in ("backups.drRegion", "dataProtection.pinned.drRegion")],
        "plexichat:backups.drRegion",
        "must differ from aws.region",
    ),
    ("dev", _set("backups.drRegion", "us-east-1"), "plexichat:backups.drRegion", "must differ from aws.region"),
    ("prod", _set("backups.drRegion", "mars-1"), "plexichat:backups.drRegion", "AWS region"),
    ("prod", _set("backups.bucketName", "Bad_Bucket"), "plexichat:backups.bucketName", "S3 bucket name"),
    (
        "prod",
        _set("irsa.oidcProviderArn", "arn:aws:iam::1:role/x"),
        "plexichat:irsa.oidcProviderArn",
        "OIDC provider ARN",
    ),
    ("prod", _remove("irsa"), "plexichat:irsa", "required"),
    # The cache token is Secrets Manager's (generated, then rotated), never a setting any more.
    ("prod", _set("redisAuthToken", {"secure": "v1:c2hvcnQ="}), "plexichat:redisAuthToken", "unknown"),
]


@pytest.mark.parametrize(
    "stack,edit,key,hint",
    BAD_DATA_CONFIGS,
    ids=[f"{b[0]}:{b[2].split(':')[1]}:{i}" for i, b in enumerate(BAD_DATA_CONFIGS)],
)
def test_bad_data_config_is_one_run_error_naming_the_key(stack, edit, key, hint):
    _check_bad_config(stack, edit, key, hint)


def test_bad_data_config_registers_nothing(monkeypatch):
    registered = []
    original = recording.record
    monkeypatch.setattr(
        recording, "record", lambda request, urn, *rest: registered.append(urn) or original(request, urn, *rest)
    )
    with pytest.raises(pulumi.RunError):
        render_edited("prod", _set("database.readReplicas", 6))
    assert registered == []


@pytest.mark.parametrize(
    "backup,maintenance,overlaps",
    [
        ("03:00-04:00", "sun:05:00-sun:06:00", False),
        ("03:00-04:00", "sun:03:30-sun:04:30", True),
        ("23:30-00:30", "mon:00:00-mon:01:00", True),  # across midnight
        ("22:00-23:00", "sat:23:00-sat:23:30", False),  # touching, not overlapping
    ],
)
def test_backup_and_maintenance_windows_must_not_overlap(backup, maintenance, overlaps):
    from pydantic import ValidationError

    from components.config.data import DatabaseSettings

    def parse():
        return DatabaseSettings(identifier="plexichat-x", backup_window=backup, maintenance_window=maintenance)

    if overlaps:
        with pytest.raises(ValidationError, match="must not overlap maintenanceWindow"):
            parse()
    else:
        parse()


def test_a_parsed_secret_never_shows_in_a_repr_of_the_settings():
    from components.config.parse import parse_stack_config
    from plexictl.offline import stack_config

    config, secret_keys = stack_config("prod")
    settings = parse_stack_config(config, "prod", secret_keys)
    assert stack_files.FAKE_SECRET not in repr(settings)
    assert settings.alert_chat_webhook_url is not None  # a secret setting prod has
    assert settings.alert_chat_webhook_url.get_secret_value() == stack_files.FAKE_SECRET
