"""Who can reach an S3 bucket: public access blocked, TLS only, and every bucket guarded by both."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .encryption import ACCESS_LOG_BUCKET_SUFFIX
from .subject import Stack, Subject, get, is_true, is_unknown


def s3_public_access_blocked(s: Subject) -> list[str]:
    if s.type != "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        return []
    return [
        f"S3 public access block {key} must be true"
        for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not is_true(get(s.inputs, key))
    ]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    condition = get(statement, "Condition.Bool.aws:SecureTransport")
    if isinstance(condition, list):
        condition = condition[0] if len(condition) == 1 else None
    return get(statement, "Effect") == "Deny" and str(condition).lower() == "false"


def s3_tls_only(s: Subject) -> list[str]:
    """A bucket policy denies every request that does not come over TLS."""
    if s.type != "aws:s3/bucketPolicy:BucketPolicy":
        return []
    policy = get(s.inputs, "policy")
    if is_unknown(policy):
        return []
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return ["S3 bucket policy is not valid JSON"]
    statements = get(policy, "Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    if any(isinstance(st, Mapping) and _denies_insecure_transport(st) for st in statements):
        return []
    return ['S3 bucket policy must Deny requests with "aws:SecureTransport": "false" (TLS only)']


BUCKET = "aws:s3/bucket:Bucket"
BUCKET_GUARDS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "public access block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "default encryption configuration (SSE-KMS)"
    ),
    "aws:s3/bucketPolicy:BucketPolicy": "bucket policy (TLS only)",
    # Server access logging: a bucket is logged, or is itself the log target of one that is.
    "aws:s3/bucketLogging:BucketLogging": "server access logging (or be a log target)",
}
LOGGING = "aws:s3/bucketLogging:BucketLogging"


def is_log_bucket(bucket_name: object) -> bool:
    """The program's log buckets end in `-access-logs`: what AWS services deliver logs into (S3
    server access logs, ELB, CloudFront), whose writers their policy names. Logging a log bucket's
    own requests would only move the question one bucket further."""
    return isinstance(bucket_name, str) and bucket_name.endswith(ACCESS_LOG_BUCKET_SUFFIX)


def buckets_guarded(stack: Stack) -> list[tuple[str, str]]:
    """Every bucket has its public access block, encryption configuration, bucket policy and
    access logging (a log bucket, `is_log_bucket`, is the target of logging instead).
    The per-resource rules judge what those say; this one makes sure they exist at all, since a
    bucket without them would pass every per-resource rule. Returns (bucket URN, message)."""
    out = []
    for bucket in (r for r in stack.resources if r.type == BUCKET):
        guards = {r.type for r in stack.resources if bucket.urn in r.dependencies}
        if is_log_bucket(get(bucket.inputs, "bucket")):
            guards.add(LOGGING)
        out += [
            (bucket.urn, f"S3 bucket {bucket.urn.rsplit('::', 1)[-1]!r} has no {what} taking the bucket as input")
            for type_, what in BUCKET_GUARDS.items()
            if type_ not in guards
        ]
    return out
