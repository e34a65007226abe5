"""A region's S3 server access log bucket: S3's record of every request to the backup buckets
(who read or wrote which dump, and when), kept logRetentionDays.

Unlike the buckets it watches, it is encrypted with SSE-S3: S3 log delivery cannot write into a
bucket whose default encryption is SSE-KMS, nor into one with Object Lock. Otherwise it is
hardened like them: versioned, closed to the public, ACL-free (log delivery is authorized by the
bucket policy, not by an ACL), TLS only; only S3's logging service may write to it, and only
on behalf of this account's buckets named here.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.data.shared import close_to_public, with_protection

LOG_DELIVERY = "logging.s3.amazonaws.com"


def access_log_prefix(bucket_name: str) -> str:
    """Where a bucket's access logs go: `s3/<bucket>/`, so one log bucket can serve several."""
    return f"s3/{bucket_name}/"


def access_log_bucket(
    name: str,
    bucket_name: str,
    *,
    account_id: pulumi.Input[str],
    sources: list[str],
    retention_days: int,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """The log bucket `bucket_name` for the buckets named in `sources` (same region and account)."""
    bucket = aws.s3.Bucket(name, bucket=bucket_name, force_destroy=False, opts=with_protection(opts, protect, True))
    # By name, not `bucket.id` (the same value once created): the policy pack tells a log bucket's
    # SSE-S3 from a mistake by this name, and a preview knows it before the bucket exists.
    on_bucket = {"bucket": bucket.bucket, "opts": opts}
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        **on_bucket,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
        ],
        **on_bucket,
    )
    close_to_public(name, bucket.bucket, opts)
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=retention_days),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=1
                ),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1
                ),
            )
        ],
        **on_bucket,
    )
    aws.s3.BucketPolicy(
        f"{name}-policy",
        policy=pulumi.Output.all(bucket.arn, account_id).apply(lambda a: json.dumps(_policy(a[0], a[1], sources))),
        **on_bucket,
    )
    return bucket


def _policy(log_bucket_arn: str, account_id: str, sources: list[str]) -> dict:
    objects = f"{log_bucket_arn}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "S3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": [f"{log_bucket_arn}/{access_log_prefix(source)}*" for source in sources],
                "Condition": {
                    "ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{source}" for source in sources]},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [log_bucket_arn, objects],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def log_requests(
    name: str, bucket: aws.s3.Bucket, bucket_name: str, log_bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
) -> aws.s3.BucketLogging:
    """Server access logging of `bucket` into `log_bucket`, under `s3/<bucket>/`."""
    return aws.s3.BucketLogging(
        f"{name}-access-logging",
        bucket=bucket.id,
        target_bucket=log_bucket.id,
        target_prefix=access_log_prefix(bucket_name),
        opts=opts,
    )
