"""Disaster recovery: how the backups reach the DR region (runbook: RPO 1 h, RTO 4 h).

The DR region's key, bucket and vault belong to `Backups`, hardened like the primary region's;
the functions here fill them. The backup bucket replicates into the DR bucket within 15 minutes,
re-encrypted with the DR key, and RDS automated backups are replicated there for point-in-time
restore; the plan's copy actions fill the DR vault. Every resource is a child of the Backups
component itself: a component of their own in between would change their URNs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.config.rpo import REPLICATION_TIME_CONTROL_MINUTES
from components.data.backup_bucket import BackupBucket
from components.data.database import Database
from components.data.shared import service_role

if TYPE_CHECKING:  # backups.py calls this module: a runtime import back would be a cycle
    from components.data.backups import Backups

REPLICATION_TIME_MINUTES = REPLICATION_TIME_CONTROL_MINUTES  # S3 RTC: well inside the 1 h RPO
REPLICATION_RULE_ID = "dr"
"""The replication rule's id: the S3 replication metrics (and their alarms) are per rule."""


def replicate_bucket(
    name: str,
    backups: Backups,
    source: BackupBucket,
    destination: BackupBucket,
    dr_key: aws.kms.Key,
    opts: pulumi.ResourceOptions,
) -> None:
    """S3 replication of every object (and delete marker) of the backup bucket into the DR
    bucket, re-encrypted with the DR key; locked versions keep their retention there."""
    role = _replication_role(name, backups, destination.bucket, dr_key, opts)
    # Replication needs versioning on both sides first, and S3 replicates locked objects only
    # into a locked bucket: the DR bucket's lock (and the source's) must exist before it.
    prerequisites = [source.versioning, destination.versioning]
    prerequisites += [lock for lock in (source.lock, destination.lock) if lock is not None]
    aws.s3.BucketReplicationConfig(
        f"{name}-replication",
        bucket=backups.bucket.id,
        role=role.arn,
        rules=[_replication_rule(destination.bucket, dr_key)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=prerequisites)),
    )


def replicate_automated_backups(
    name: str, database: Database, dr_key: aws.kms.Key, retention_days: int, dr_opts: pulumi.ResourceOptions
) -> None:
    """Point-in-time restore in the DR region, independent of the primary region."""
    aws.rds.InstanceAutomatedBackupsReplication(
        name,
        source_db_instance_arn=database.primary.arn,
        kms_key_id=dr_key.arn,
        retention_period=retention_days,
        opts=dr_opts,
    )


def _replication_role(
    name: str, backups: Backups, dr_bucket: aws.s3.Bucket, dr_key: aws.kms.Key, opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    """The role S3 replicates as: read the backup bucket's versions (with their Object Lock
    retention and legal hold, which S3 copies to the replica), write the DR bucket's, and use
    exactly the two keys involved."""
    role = service_role(f"{name}-replication-role", "s3.amazonaws.com", [], opts)
    aws.iam.RolePolicy(
        f"{name}-replication-policy",
        role=role.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        "Resource": [backups.bucket.arn],
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionTagging",
                            # Object Lock with replication needs both on the source (S3 User
                            # Guide, "Object Lock considerations": replication).
                            "s3:GetObjectRetention",
                            "s3:GetObjectLegalHold",
                        ],
                        "Resource": [pulumi.Output.concat(backups.bucket.arn, "/*")],
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                        "Resource": [pulumi.Output.concat(dr_bucket.arn, "/*")],
                    },
                    {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [backups.key.arn]},
                    {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Resource": [dr_key.arn]},
                ],
            }
        ),
        opts=opts,
    )
    return role


def _replication_rule(
    destination: aws.s3.Bucket, destination_key: aws.kms.Key
) -> aws.s3.BucketReplicationConfigRuleArgs:
    """Every object, delete markers and SSE-KMS objects included, re-encrypted with the DR key,
    under Replication Time Control (and its metrics): 15 minutes, well inside the 1 h RPO."""
    return aws.s3.BucketReplicationConfigRuleArgs(
        id=REPLICATION_RULE_ID,
        status="Enabled",
        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(status="Enabled"),
        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                status="Enabled"
            )
        ),
        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
            bucket=destination.arn,
            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                replica_kms_key_id=destination_key.arn
            ),
            replication_time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                status="Enabled",
                time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(
                    minutes=REPLICATION_TIME_MINUTES
                ),
            ),
            metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                status="Enabled",
                event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                    minutes=REPLICATION_TIME_MINUTES
                ),
            ),
        ),
    )
