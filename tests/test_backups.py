"""Backup bucket, AWS Backup plan and (prod) DR in the second region."""

from __future__ import annotations

import json

import pytest

from tests.conftest import STACKS, primary_of, rendered

OWNERS = [stack for stack in STACKS if primary_of(stack) is None]
"""The stacks with backups of their own: a DR stack's are its primary's, in its region
(docs/dr.md "The standby stack"; tests/test_dr_standby.py)."""


def bucket_parts(stack, bucket="backups-bucket"):
    r = rendered(stack)
    return {
        kind: r.one(f"aws:s3/{token}", f"{bucket}-{suffix}").inputs
        for kind, token, suffix in (
            ("versioning", "bucketVersioning:BucketVersioning", "versioning"),
            (
                "encryption",
                "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "encryption",
            ),
            ("public", "bucketPublicAccessBlock:BucketPublicAccessBlock", "public-access"),
            ("ownership", "bucketOwnershipControls:BucketOwnershipControls", "ownership"),
            ("policy", "bucketPolicy:BucketPolicy", "policy"),
            ("lifecycle", "bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lifecycle"),
        )
    }


def hardened_buckets():
    yield "dev", "backups-bucket"
    yield "staging", "backups-bucket"
    yield "prod", "backups-bucket"
    yield "prod", "backups-dr-bucket"


@pytest.mark.parametrize("stack,bucket", list(hardened_buckets()))
def test_bucket_is_versioned_encrypted_private_and_tls_13_only(stack, bucket):
    parts = bucket_parts(stack, bucket)
    resource = rendered(stack).one("aws:s3/bucket:Bucket", bucket)
    assert resource.inputs["forceDestroy"] is False
    assert parts["versioning"]["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = parts["encryption"]["rules"]
    assert rule["bucketKeyEnabled"] is True
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms" and ":key/" in default["kmsMasterKeyId"]
    assert all(
        parts["public"][k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert parts["ownership"]["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    statements = json.loads(parts["policy"]["policy"])["Statement"]
    conditions = {json.dumps(s["Condition"]) for s in statements if s["Effect"] == "Deny"}
    assert '{"Bool": {"aws:SecureTransport": "false"}}' in conditions
    # TLS 1.3, which S3 serves on every endpoint we use (not PrivateLink or Multi-Region Access
    # Points): docs/data-tier.md.
    assert '{"NumericLessThan": {"s3:TlsVersion": "1.3"}}' in conditions
    assert not any("1.2" in condition for condition in conditions)


@pytest.mark.parametrize("stack,bucket", list(hardened_buckets()))
def test_lifecycle_matches_the_runbook(stack, bucket):
    rules = {r["id"]: r for r in bucket_parts(stack, bucket)["lifecycle"]["rules"]}
    assert all(r["status"] == "Enabled" for r in rules.values())
    assert (rules["daily"]["filter"]["prefix"], rules["daily"]["expiration"]["days"]) == ("daily/", 30)
    monthly = rules["monthly"]
    assert (monthly["filter"]["prefix"], monthly["expiration"]["days"]) == ("monthly/", 365)
    assert monthly["transitions"] == [{"days": 30, "storageClass": "GLACIER"}]
    assert (rules["logs"]["filter"]["prefix"], rules["logs"]["expiration"]["days"]) == ("logs/", 90)
    # Old versions: each prefix keeps its own (a monthly copy's a year, like the copy itself).
    noncurrent = {rule: rules[rule]["noncurrentVersionExpiration"]["noncurrentDays"] for rule in ("daily", "logs")}
    assert noncurrent == {"daily": 30, "logs": 30}
    assert monthly["noncurrentVersionExpiration"]["noncurrentDays"] == 365
    cleanup = rules["cleanup"]
    # Never a bucket-wide version expiry: S3 would honour it over monthly's longer one.
    assert "noncurrentVersionExpiration" not in cleanup
    assert cleanup["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    assert cleanup["expiration"] == {"expiredObjectDeleteMarker": True}


@pytest.mark.parametrize("stack", OWNERS)
def test_backup_plan_keeps_daily_30_and_monthly_365_days_of_the_database(stack):
    r = rendered(stack)
    rules = {rule["ruleName"]: rule for rule in r.one("aws:backup/plan:Plan", "backups-plan").inputs["rules"]}
    assert rules["daily"]["lifecycle"]["deleteAfter"] == 30
    assert rules["monthly"]["lifecycle"]["deleteAfter"] == 365
    vault = r.one("aws:backup/vault:Vault", "backups-vault").inputs
    assert ":key/" in vault["kmsKeyArn"]
    selection = r.one("aws:backup/selection:Selection", "backups-selection").inputs
    assert selection["resources"] == ["arn:aws:rds:us-east-1:123456789012:db:plexichat-" + stack]
    has_dr = stack == "prod"
    assert all(("copyActions" in rule) is has_dr for rule in rules.values())


LOCKS = {"dev": set(), "staging": {"backups-vault-lock"}, "prod": {"backups-vault-lock", "backups-dr-vault-lock"}}


@pytest.mark.parametrize("stack", OWNERS)
def test_vaults_are_locked_in_governance_mode_around_the_plans_retentions(stack):
    """No recovery point can be deleted early or kept forever; dev (torn down) has no lock."""
    r = rendered(stack)
    locks = {lock.name: lock for lock in r.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration")}
    assert set(locks) == LOCKS[stack]
    vaults = r.of_type("aws:backup/vault:Vault")
    for lock in locks.values():
        assert lock.inputs["minRetentionDays"] == 30 and lock.inputs["maxRetentionDays"] == 365
        assert "changeableForDays" not in lock.inputs  # compliance mode could never be lifted
        # Locks its own vault, in its vault's region (the DR lock through the DR provider).
        (vault,) = [v for v in vaults if v.inputs["name"] == lock.inputs["backupVaultName"]]
        assert lock.provider == vault.provider and lock.name == f"{vault.name}-lock"


def _provider_name(resource) -> str:
    return resource.provider.rsplit("::", 2)[-2]


def test_prod_dr_pieces_live_in_the_second_region():
    r = rendered("prod")
    dr = r.one("pulumi:providers:aws", "plexichat-aws-dr")
    assert dr.inputs["region"] == "us-west-2" != r.one("pulumi:providers:aws", "plexichat-aws").inputs["region"]
    dr_resources = {
        ("aws:kms/key:Key", "backups-dr-key"),
        ("aws:s3/bucket:Bucket", "backups-dr-bucket"),
        ("aws:backup/vault:Vault", "backups-dr-vault"),
        ("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", "backups-dr-rds-backups"),
    }
    for type_, name in dr_resources:
        assert _provider_name(r.one(type_, name)) == "plexichat-aws-dr", name
    # Everything named backups-dr-* (bucket side resources too) is in the DR region; the rest not
    # (but CloudFront's pieces, in us-east-1 through their own provider: tests/test_cdn.py).
    for resource in r.resources:
        if resource.custom and resource.type.startswith("aws:") and not resource.parent.endswith("::static-assets"):
            expected = "plexichat-aws-dr" if resource.name.startswith("backups-dr-") else "plexichat-aws"
            assert _provider_name(resource) == expected, resource.name

    dr_vault_arn = "arn:aws:backup:us-west-2:123456789012:backup-vault:plexichat-prod-dr"
    for rule in r.one("aws:backup/plan:Plan", "backups-plan").inputs["rules"]:
        (copy,) = rule["copyActions"]
        assert copy["destinationVaultArn"] == dr_vault_arn
        assert copy["lifecycle"] == rule["lifecycle"]

    replication = r.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "backups-replication").inputs
    (rule,) = replication["rules"]
    assert rule["status"] == "Enabled"
    assert rule["destination"]["bucket"] == "arn:aws:s3:::plexichat-prod-backups-123456789012-dr"
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    assert rule["destination"]["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"

    rds = r.one(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", "backups-dr-rds-backups"
    ).inputs
    assert rds["sourceDbInstanceArn"] == "arn:aws:rds:us-east-1:123456789012:db:plexichat-prod"
    assert rds["kmsKeyId"].startswith("arn:aws:kms:us-west-2:")


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_no_dr_outside_prod(stack):
    r = rendered(stack)
    providers = [p for p in r.of_type("pulumi:providers:aws") if not p.parent.endswith("::static-assets")]
    assert [p.name for p in providers] == ["plexichat-aws"]  # CloudFront's own us-east-1 one aside
    assert rendered(stack).outputs["backups"]["drRegion"] is None


@pytest.mark.parametrize("stack", OWNERS)
def test_every_request_to_a_backup_bucket_is_logged_in_its_regions_access_log_bucket(stack):
    r = rendered(stack)
    pairs = [("backups-bucket", "backups-access-logs")]
    if any(b.name == "backups-dr-bucket" for b in r.of_type("aws:s3/bucket:Bucket")):
        pairs.append(("backups-dr-bucket", "backups-dr-access-logs"))
    for source, target in pairs:
        source_name = r.one("aws:s3/bucket:Bucket", source).inputs["bucket"]
        log_bucket = r.one("aws:s3/bucket:Bucket", target)
        assert log_bucket.inputs["bucket"] == f"{source_name}-access-logs"
        assert log_bucket.provider == r.one("aws:s3/bucket:Bucket", source).provider  # same region
        logging = r.one("aws:s3/bucketLogging:BucketLogging", f"{source}-access-logging").inputs
        assert logging["targetBucket"] == f"{target}-id" and logging["targetPrefix"] == f"s3/{source_name}/"
        # SSE-S3: log delivery cannot write SSE-KMS; closed to the public; kept 90 days.
        encryption = r.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{target}-encryption",
        )
        assert encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
        block = r.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{target}-public-access").inputs
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        (rule,) = r.one(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{target}-lifecycle"
        ).inputs["rules"]
        assert rule["expiration"]["days"] == 90
        policy = json.loads(r.one("aws:s3/bucketPolicy:BucketPolicy", f"{target}-policy").inputs["policy"])
        allow, deny = policy["Statement"]
        assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"} and allow["Action"] == "s3:PutObject"
        assert allow["Resource"] == [f"arn:aws:s3:::{source_name}-access-logs/s3/{source_name}/*"]
        assert allow["Condition"]["ArnLike"] == {"aws:SourceArn": [f"arn:aws:s3:::{source_name}"]}
        assert set(allow["Condition"]["StringEquals"]) == {"aws:SourceAccount"}
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
