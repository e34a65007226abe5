"""Stateful resource types and the inputs that force their replacement: the one list in code.

A change to one of these inputs makes the provider delete and re-create the resource, which for
a database, cache, bucket, key or vault means data loss. The data tier refuses such edits in
protected stacks, and `plexictl diff` flags them in pull requests; both read this table.

Source: the pinned provider's schema (pulumi-aws 7.x, which wraps terraform-provider-aws; fields
marked ForceNew). Re-check it when pulumi-aws is bumped, since the list drifts between majors.
Keys are the inputs' wire names (camelCase), as the engine and `plexictl diff` see them.
"""

from __future__ import annotations

REPLACEMENT_FORCING_INPUTS: dict[str, frozenset[str]] = {
    "aws:rds/instance:Instance": frozenset(
        {
            "availabilityZone",
            "backupTarget",
            "characterSetName",
            "customIamInstanceProfile",
            "dbName",
            "engine",
            "kmsKeyId",
            "ncharCharacterSetName",
            "restoreToPointInTime",
            "s3Import",
            "snapshotIdentifier",
            "storageEncrypted",
            "timezone",
            "username",
            "region",
        }
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": frozenset(
        {
            "atRestEncryptionEnabled",
            "dataTieringEnabled",
            "globalReplicationGroupId",
            "kmsKeyId",
            "networkType",
            "port",
            "replicationGroupId",
            "securityGroupNames",
            "snapshotArns",
            "snapshotName",
            "subnetGroupName",
            "region",
        }
    ),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled", "region"}),
    "aws:kms/key:Key": frozenset({"customerMasterKeySpec", "keyUsage", "multiRegion", "region"}),
    "aws:backup/vault:Vault": frozenset({"name", "kmsKeyArn", "region"}),
    "aws:secretsmanager/secret:Secret": frozenset({"name", "namePrefix", "region"}),
}
"""Stateful type token -> inputs whose change replaces the resource (and loses its data)."""

STATEFUL_TYPES = frozenset(REPLACEMENT_FORCING_INPUTS)


PROVIDER_DEFAULTS: dict[str, dict[str, object]] = {
    "aws:kms/key:Key": {
        "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "keyUsage": "ENCRYPT_DECRYPT",
        "multiRegion": False,
    },
    "aws:rds/instance:Instance": {"storageEncrypted": False},
    "aws:elasticache/replicationGroup:ReplicationGroup": {"atRestEncryptionEnabled": False},
    "aws:s3/bucket:Bucket": {"objectLockEnabled": False},
}
"""What the provider assumes for an input left out: spelling a default out is no change."""


def replacement_forcing_changes(type_: str, before: dict, after: dict) -> list[str]:
    """The replacement-forcing inputs that differ between two input maps of one resource."""
    keys = REPLACEMENT_FORCING_INPUTS.get(type_, frozenset())
    defaults = PROVIDER_DEFAULTS.get(type_, {})

    def value(inputs: dict, key: str) -> object:
        return inputs.get(key, defaults.get(key))

    return sorted(k for k in keys if value(before, k) != value(after, k))
