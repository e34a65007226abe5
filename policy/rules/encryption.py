"""Encryption at rest under customer-managed keys (and in transit where the same resource decides it)."""

from __future__ import annotations

from .subject import Subject, get, is_set, is_true, is_unknown, reveal


def rds_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:rds/instance:Instance":
        return []
    source = get(s.inputs, "replicateSourceDb")
    if is_set(source) and not (isinstance(source, str) and source.startswith("arn:")):
        # A same-region read replica is always encrypted with its source's key, and AWS refuses
        # a key on it ("do not specify"); the source is held to this rule instead. A
        # cross-region one (its source named by ARN) needs a key of its own region: checked below.
        return []
    out = []
    if not is_true(get(s.inputs, "storageEncrypted")):
        out.append("RDS storageEncrypted must be true")
    if not is_set(get(s.inputs, "kmsKeyId")):
        out.append("RDS kmsKeyId must name a customer-managed KMS key (not the AWS-managed default)")
    return out


def elasticache_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:elasticache/replicationGroup:ReplicationGroup":
        return []
    return [
        f"ElastiCache {key} must be true"
        for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled")
        if not is_true(get(s.inputs, key))
    ]


ACCESS_LOG_BUCKET_SUFFIX = "-access-logs"
"""The program's S3 access log buckets (`<bucket>-access-logs`): S3 log delivery writes only into
SSE-S3 buckets, so theirs is AES256."""


def s3_sse_kms(s: Subject) -> list[str]:
    if s.type != "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        return []
    rules = reveal(get(s.inputs, "rules")) or []
    bucket = get(s.inputs, "bucket")
    if is_unknown(rules) or is_unknown(bucket):
        return []
    if isinstance(bucket, str) and bucket.endswith(ACCESS_LOG_BUCKET_SUFFIX):
        return [] if rules else ["S3 encryption configuration has no rules"]
    if not rules:
        return ["S3 encryption configuration has no rules"]
    out = []
    for rule in rules:
        algorithm = get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse") and not is_unknown(algorithm):
            out.append(f"S3 sseAlgorithm must be aws:kms or aws:kms:dsse (is {algorithm!r})")
        if not is_set(get(rule, "applyServerSideEncryptionByDefault.kmsMasterKeyId")):
            out.append("S3 SSE-KMS must name a customer-managed key (kmsMasterKeyId)")
    return out


def sns_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:sns/topic:Topic" or is_set(get(s.inputs, "kmsMasterKeyId")):
        return []
    return ["SNS topic kmsMasterKeyId must be set (messages encrypted at rest)"]


def log_group_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:cloudwatch/logGroup:LogGroup" or is_set(get(s.inputs, "kmsKeyId")):
        return []
    return ["CloudWatch log group kmsKeyId must be set (logs hold client IPs, URLs and SQL)"]


def kms_rotation(s: Subject) -> list[str]:
    if s.type != "aws:kms/key:Key" or is_true(get(s.inputs, "enableKeyRotation")):
        return []
    return ["KMS key enableKeyRotation must be true"]
