"""A backup bucket (the primary region's, or its DR copy), hardened and locked.

Versioned, SSE-KMS encrypted with its own key (bucket key on), closed to the public, ACL-free, and
reachable over TLS 1.3 only; lifecycle rules follow the runbook (`daily/` 30 days, `monthly/`
archived then kept a year, `logs/` 90 days). With `backups.objectLock` on, S3 Object Lock keeps
every version at least dailyRetentionDays (the bucket's default retention) and every `monthly/`
copy at least monthlyRetentionDays (its own retention, given at write time: the bucket policy
refuses a `monthly/` write without one, or with less). docs/data-tier.md 'Backups nobody can
erase early' says who may write where and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.data import BackupSettings
from components.data.shared import close_to_public, with_protection

DAILY_PREFIX = "daily/"
"""The app's dumps (the app role writes here, and only here)."""
MONTHLY_PREFIX = "monthly/"
"""The monthly copies, written by the backup archiver's role alone, each locked for a year."""
LOGS_PREFIX = "logs/"
PREFIXES = (DAILY_PREFIX, MONTHLY_PREFIX, LOGS_PREFIX)
MINIMUM_TLS_VERSION = "1.3"  # S3 serves TLS 1.3 on every endpoint but PrivateLink and MRAPs
RETENTION_DAYS_KEY = "s3:object-lock-remaining-retention-days"
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


@dataclass(frozen=True)
class BackupBucket:
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    lock: aws.s3.BucketObjectLockConfiguration | None
    """The Object Lock configuration; None with `backups.objectLock.enabled: false`."""


def backup_bucket(
    name: str, bucket_name: str, key: aws.kms.Key, s: BackupSettings, protect: bool, opts: pulumi.ResourceOptions
) -> BackupBucket:
    """The bucket `bucket_name` and its side resources, named `<name>-<part>` under `opts`' parent
    (a resource name is a public API: these are the names they always had)."""
    bucket = aws.s3.Bucket(
        name,
        bucket=bucket_name,
        force_destroy=False,
        # Never `object_lock_enabled` here: it forces a new bucket. The lock comes from its own
        # resource below, which enables Object Lock on the existing bucket in place.
        # protect, and retain_on_delete: removing it from the program must not delete backups.
        opts=with_protection(opts, protect, retain=True),
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=opts,
    )
    _encrypt(name, bucket, key, opts)
    close_to_public(name, bucket.id, opts)
    _policy(name, bucket, s, opts)
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=bucket.id,
        rules=lifecycle_rules(s),
        # Lifecycle rules on an unversioned bucket would not expire old versions.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    return BackupBucket(bucket, versioning, _lock(name, bucket, versioning, s, opts))


def _lock(
    name: str,
    bucket: aws.s3.Bucket,
    versioning: aws.s3.BucketVersioning,
    s: BackupSettings,
    opts: pulumi.ResourceOptions,
) -> aws.s3.BucketObjectLockConfiguration | None:
    """Object Lock with a default retention of dailyRetentionDays in the configured mode. A
    default covers the whole bucket, never one prefix, so it is the shortest prefix's; monthly
    copies carry their longer retention themselves (the bucket policy sees to it)."""
    if not s.object_lock.enabled:
        return None
    return aws.s3.BucketObjectLockConfiguration(
        f"{name}-object-lock",
        bucket=bucket.id,
        object_lock_enabled="Enabled",
        rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
            default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                mode=s.object_lock.mode, days=s.daily_retention_days
            )
        ),
        # S3 enables Object Lock on an existing bucket only once versioning is on.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[versioning])),
    )


def _encrypt(name: str, bucket: aws.s3.Bucket, key: aws.kms.Key, opts: pulumi.ResourceOptions) -> None:
    """SSE-KMS with the bucket's own key by default."""
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key.arn
                ),
                bucket_key_enabled=True,  # far fewer KMS calls for many small objects
            )
        ],
        opts=opts,
    )


def _policy(name: str, bucket: aws.s3.Bucket, s: BackupSettings, opts: pulumi.ResourceOptions) -> None:
    """Denies, to everyone: plain HTTP, TLS older than 1.3, and (locked) a `monthly/` write that
    does not keep the copy for monthlyRetentionDays. Who may do what is IAM's; this only refuses."""
    everything = [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")]
    statements: list[dict] = [
        _deny("DenyInsecureTransport", "s3:*", everything, {"Bool": {"aws:SecureTransport": "false"}}),
        _deny("DenyOutdatedTls", "s3:*", everything, {"NumericLessThan": {"s3:TlsVersion": MINIMUM_TLS_VERSION}}),
    ]
    if s.object_lock.enabled:
        monthly = [pulumi.Output.concat(bucket.arn, "/", MONTHLY_PREFIX, "*")]
        statements += [
            # Without its own retention a copy would get the default, dailyRetentionDays. The key
            # is absent from UploadPart too: monthly copies are single PutObject / CopyObject calls.
            _deny("DenyMonthlyCopyWithoutRetention", "s3:PutObject", monthly, {"Null": {RETENTION_DAYS_KEY: "true"}}),
            _deny(
                "DenyMonthlyCopyWithShortRetention",
                "s3:PutObject",
                monthly,
                {"NumericLessThan": {RETENTION_DAYS_KEY: str(s.monthly_retention_days)}},
            ),
        ]
    aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
        opts=opts,
    )


def _deny(sid: str, action: str, resources: list, condition: dict) -> dict:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resources,
        "Condition": condition,
    }


def lifecycle_rules(s: BackupSettings) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """One rule per prefix, each expiring its own old versions, and a bucket-wide cleanup. The
    cleanup never expires versions: S3 honours the shorter of two overlapping expirations, so a
    bucket-wide one would cut `monthly/`'s short. A version is kept after an overwrite or delete
    at least as long as its lock (noncurrentVersionDays >= the default retention is validated)."""

    def prefix_rule(prefix: str, days: int, noncurrent_days: int, transitions=None):
        return aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=prefix.rstrip("/"),
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=noncurrent_days
            ),
            transitions=transitions,
        )

    archive = aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
        days=s.monthly_archive_after_days, storage_class="GLACIER"
    )
    return [
        prefix_rule(DAILY_PREFIX, s.daily_retention_days, s.noncurrent_version_days),
        prefix_rule(MONTHLY_PREFIX, s.monthly_retention_days, s.monthly_retention_days, [archive]),
        prefix_rule(LOGS_PREFIX, s.log_retention_days, s.noncurrent_version_days),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="cleanup",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_INCOMPLETE_UPLOADS_DAYS
            ),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
        ),
    ]
