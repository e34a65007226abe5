"""The ElastiCache replication group per stack, and the AUTH token's path as a secret."""

from __future__ import annotations

import pytest

from plexictl import render
from plexictl.offline import is_secret
from plexictl.offline.stack_files import FAKE_SECRET
from tests.conftest import STACKS, rendered

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
EXPECTED = {"dev": (1, False), "staging": (2, True), "prod": (3, True)}  # nodes, failover + multi-AZ


@pytest.mark.parametrize("stack", STACKS)
def test_group_is_encrypted_authenticated_and_fails_over_where_it_can(stack):
    group = rendered(stack).one(GROUP, "cache-group").inputs
    nodes, failover = EXPECTED[stack]
    assert group["engine"] == "valkey" and float(group["engineVersion"]) >= 7
    assert group["description"] and "replicationGroupDescription" not in group
    assert group["atRestEncryptionEnabled"] is True
    assert ":key/" in group["kmsKeyId"]
    assert group["transitEncryptionEnabled"] is True and group["transitEncryptionMode"] == "required"
    assert is_secret(group["authToken"])
    assert group["numCacheClusters"] == nodes
    assert group["automaticFailoverEnabled"] is failover
    assert group["multiAzEnabled"] is failover
    assert group["snapshotRetentionLimit"] >= 1 and group["snapshotWindow"]
    assert group["autoMinorVersionUpgrade"] is True
    assert group["port"] == 6379
    (log,) = group["logDeliveryConfigurations"]
    assert log["logType"] == "slow-log" and log["destinationType"] == "cloudwatch-logs"


@pytest.mark.parametrize("stack", STACKS)
def test_parameter_group_evicts_only_keys_with_a_ttl(stack):
    r = rendered(stack)
    params = r.one("aws:elasticache/parameterGroup:ParameterGroup", "cache-params").inputs
    assert params["family"] == "valkey8"
    assert {p["name"]: p["value"] for p in params["parameters"]}["maxmemory-policy"] == "volatile-lru"
    assert r.one(GROUP, "cache-group").inputs["parameterGroupName"] == params["name"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True])
def test_the_token_reaches_aws_only_as_a_secret_and_no_manifest_holds_it(stack, preview, tmp_path):
    r = rendered(stack, preview)
    value = r.one("aws:secretsmanager/secretVersion:SecretVersion", "cache-auth-secret-value")
    assert is_secret(value.inputs["secretString"])
    assert FAKE_SECRET not in str([k.manifest() for k in r.kubernetes_objects()])
    render.write(r, tmp_path)
    for path in tmp_path.rglob("*.yaml"):
        assert FAKE_SECRET not in path.read_text(), path
