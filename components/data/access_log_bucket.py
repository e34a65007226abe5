"""A log bucket: where an AWS service delivers access logs, kept retention_days.

S3's server access logs of the backup buckets (who read or wrote which dump, and when), the load
balancer's access logs, CloudFront's (standard logging v2): each in a bucket like this one, the
writers it admits named by its policy (`S3ServerAccessLogs`, `LoadBalancerAccessLogs`,
`VendedLogs`).

Unlike the buckets it watches, it is encrypted with SSE-S3: S3, ELB and CloudFront log delivery
cannot write into a bucket whose default encryption is SSE-KMS, nor into one with Object Lock.
Otherwise it is hardened like them: versioned, closed to the public, ACL-free (log delivery is
authorized by the bucket policy, not by an ACL), TLS only; only the log delivery services named
here may write to it, only under their prefixes and on behalf of this account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.data.shared import close_to_public, with_protection

LOG_DELIVERY = "logging.s3.amazonaws.com"
ELB_LOG_DELIVERY = "logdelivery.elasticloadbalancing.amazonaws.com"
VENDED_LOG_DELIVERY = "delivery.logs.amazonaws.com"


LOAD_BALANCER_LOG_PREFIX = "alb"


def load_balancer_log_bucket_name(stack: str, account_id: str) -> str:
    """The bucket of the stack's load balancer access logs, in the stack's region (ELB writes only
    into a bucket of its own region); `plexictl preflight` checks the load balancer names it."""
    return f"plexichat-{stack}-lb-{account_id}-access-logs"


def access_log_prefix(bucket_name: str) -> str:
    """Where a bucket's access logs go: `s3/<bucket>/`, so one log bucket can serve several."""
    return f"s3/{bucket_name}/"


@dataclass(frozen=True)
class S3ServerAccessLogs:
    """S3 server access logging of this account's buckets named in `sources` (same region)."""

    sources: Sequence[str]

    def statements(self, log_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str]) -> list[dict]:
        return [
            {
                "Sid": "S3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": [
                    pulumi.Output.concat(log_bucket_arn, "/", access_log_prefix(source), "*") for source in self.sources
                ],
                "Condition": {
                    "ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{source}" for source in self.sources]},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        ]


@dataclass(frozen=True)
class LoadBalancerAccessLogs:
    """An Application Load Balancer's access logs under `<prefix>/AWSLogs/<account>/`. ELB writes
    as the service principal `logdelivery.elasticloadbalancing.amazonaws.com` in the regions
    opened since August 2022, and as the region's ELB account in older ones (us-east-1,
    us-west-2): `elb_account_arn` (`aws.elb.get_service_account`), granted only that prefix."""

    prefix: str
    elb_account_arn: pulumi.Input[str]

    def statements(self, log_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str]) -> list[dict]:
        return [
            {
                "Sid": "LoadBalancerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": ELB_LOG_DELIVERY, "AWS": self.elb_account_arn},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(log_bucket_arn, "/", self.prefix, "/AWSLogs/", account_id, "/*"),
            }
        ]


@dataclass(frozen=True)
class VendedLogs:
    """CloudWatch Logs' delivery of vended logs (CloudFront standard logging v2) from this
    account's delivery sources in `source_region`, under `<prefix>/AWSLogs/<account>/`."""

    prefix: str
    source_region: str

    def statements(self, log_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str]) -> list[dict]:
        condition = {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {
                "aws:SourceArn": pulumi.Output.concat(
                    "arn:aws:logs:", self.source_region, ":", account_id, ":delivery-source:*"
                )
            },
        }
        return [
            {
                "Sid": "VendedLogsWrite",
                "Effect": "Allow",
                "Principal": {"Service": VENDED_LOG_DELIVERY},
                "Action": "s3:PutObject",
                "Resource": pulumi.Output.concat(log_bucket_arn, "/", self.prefix, "/AWSLogs/", account_id, "/*"),
                "Condition": {
                    **condition,
                    "StringEquals": {"aws:SourceAccount": account_id, "s3:x-amz-acl": "bucket-owner-full-control"},
                },
            },
            {
                "Sid": "VendedLogsAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": VENDED_LOG_DELIVERY},
                "Action": "s3:GetBucketAcl",
                "Resource": log_bucket_arn,
                "Condition": condition,
            },
        ]


LogWriter = S3ServerAccessLogs | LoadBalancerAccessLogs | VendedLogs


def access_log_bucket(
    name: str,
    bucket_name: pulumi.Input[str],
    *,
    account_id: pulumi.Input[str],
    sources: Sequence[str] = (),
    writers: Sequence[LogWriter] = (),
    retention_days: int,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.s3.Bucket:
    """The log bucket `bucket_name`, written only by `writers`. Its name ends in `-access-logs`:
    the policy pack knows a log bucket (SSE-S3, itself not logged) by it. `sources` is short
    for the writer `S3ServerAccessLogs(sources)`."""
    writers = [*([S3ServerAccessLogs(sources)] if sources else []), *writers]
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
        policy=pulumi.Output.json_dumps(_policy(bucket.arn, account_id, writers)),
        **on_bucket,
    )
    return bucket


def _policy(log_bucket_arn: pulumi.Input[str], account_id: pulumi.Input[str], writers: Sequence[LogWriter]) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            *(statement for writer in writers for statement in writer.statements(log_bucket_arn, account_id)),
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [log_bucket_arn, pulumi.Output.concat(log_bucket_arn, "/*")],
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
