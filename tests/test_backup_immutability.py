"""Backups nobody can erase early: S3 Object Lock on the backup buckets, who may write which
prefix, and TLS 1.3 (docs/data-tier.md 'Backups nobody can erase early').

The proof is a small IAM evaluator (`decide`) run on the real inputs of the rendered resources:
each role's inline policy together with the bucket's policy, for each action and prefix that
matters. Semantics as AWS documents them for one account: an explicit Deny in either policy wins;
otherwise an Allow in either admits the request; otherwise it is implicitly denied. Action and
Resource match with `*` and `?` (actions case-insensitively), and the condition operators our
policies use are modelled; a statement with an operator or element it does not model fails the
test rather than being guessed at. Object Lock itself (what a lock refuses) is S3's: the moto test
at the end checks the rendered lock configuration does that, in moto's model of S3.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from components.config.data import BackupSettings
from components.data.stateful import replacement_forcing_changes
from plexictl.diff import diff
from plexictl.offline import Rendering
from tests.conftest import STACKS, render_edited
from tests.test_settings import _set
from tests.test_settings import (
    test_bad_config_is_one_run_error_naming_the_key_and_registers_nothing as _check_bad_config,
)

# --- the evaluator ------------------------------------------------------------------------------

Decision = Literal["allow", "explicit deny", "implicit deny"]
ABSENT = object()
"""A condition key the request does not carry."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# operator -> (the request's value or ABSENT, the policy's values) -> does the condition hold.
# A missing key fails every operator but the negated and Null ones (IAM condition semantics).
OPERATORS: dict[str, Callable[[Any, list[str]], bool]] = {
    "StringEquals": lambda actual, wanted: actual is not ABSENT and actual in wanted,
    "StringNotEquals": lambda actual, wanted: actual is ABSENT or actual not in wanted,
    "StringLike": lambda actual, wanted: actual is not ABSENT and any(_wildcard(w, actual) for w in wanted),
    "NumericLessThan": lambda actual, wanted: actual is not ABSENT and any(float(actual) < float(w) for w in wanted),
    "Bool": lambda actual, wanted: actual is not ABSENT and actual.lower() in {w.lower() for w in wanted},
    "Null": lambda actual, wanted: any((actual is ABSENT) == (w.lower() == "true") for w in wanted),
}


def _applies(statement: Mapping[str, Any], request: Request, principal: str | None) -> bool:
    unmodelled = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
    unmodelled |= set(statement.get("Condition", {})) - set(OPERATORS)
    assert not unmodelled, f"the evaluator does not model {unmodelled}: {statement}"
    if principal is not None:  # a resource policy: whom does the statement name?
        named = statement["Principal"]
        named = _listed(named["AWS"]) if isinstance(named, dict) else _listed(named)
        if "*" not in named and principal not in named:
            return False
    if not any(_wildcard(a, request.action, ignore_case=True) for a in _listed(statement["Action"])):
        return False
    if not any(_wildcard(r, request.resource) for r in _listed(statement["Resource"])):
        return False
    for operator, tests in statement.get("Condition", {}).items():
        for key, wanted in tests.items():
            if not OPERATORS[operator](request.context.get(key, ABSENT), [str(w) for w in _listed(wanted)]):
                return False
    return True


def decide(request: Request, identity: list[dict], resource: list[dict], principal: str = "role") -> Decision:
    """One account's evaluation of `request` by a principal with the `identity` policies against
    the `resource` (bucket) policies."""
    matching = [(s, None) for p in identity for s in p["Statement"] if _applies(s, request, None)]
    matching += [(s, principal) for p in resource for s in p["Statement"] if _applies(s, request, principal)]
    if any(s["Effect"] == "Deny" for s, _ in matching):
        return "explicit deny"
    return "allow" if any(s["Effect"] == "Allow" for s, _ in matching) else "implicit deny"


def test_the_evaluator_follows_iam_semantics():
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}
    deny_old_tls = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.3"}},
            }
        ]
    }
    put = Request("S3:PutObject", "arn:aws:s3:::b/daily/x", {"s3:TlsVersion": "1.3"})
    assert decide(put, [allow_all], [deny_old_tls]) == "allow"
    assert decide(Request(put.action, put.resource, {"s3:TlsVersion": "1.2"}), [allow_all], [deny_old_tls]) == (
        "explicit deny"
    )
    # A Numeric condition on a key the request lacks does not hold; Null says whether it is there.
    assert decide(Request(put.action, put.resource), [allow_all], [deny_old_tls]) == "allow"
    assert decide(Request(put.action, "arn:aws:s3:::c/x"), [allow_all], []) == "implicit deny"
    null = {"Effect": "Allow", "Action": "s3:Get?bject", "Resource": "*", "Condition": {"Null": {"k": "true"}}}
    assert decide(Request("s3:GetObject", "x"), [{"Statement": [null]}], []) == "allow"
    assert decide(Request("s3:GetObject", "x", {"k": "1"}), [{"Statement": [null]}], []) == "implicit deny"
    with pytest.raises(AssertionError, match="NumericGreaterThan"):
        decide(put, [{"Statement": [{**null, "Condition": {"NumericGreaterThan": {"k": "1"}}}]}], [])


# --- the rendered policies ----------------------------------------------------------------------

MONTHLY_DAYS = 365
SECURE = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
BUCKETS = ("backups-bucket", "backups-dr-bucket")


def _backups(**values: Any) -> Callable[[dict], None]:
    """An edit of plexichat:backups: the values this module's claims rest on, not today's."""

    def edit(config: dict) -> None:
        for key, value in values.items():
            _set(f"backups.{key}", value)(config)

    return edit


@functools.cache
def locked(stack: str, mode: str = "GOVERNANCE") -> Rendering:
    return render_edited(
        stack,
        _backups(
            objectLock={"enabled": True, "mode": mode},
            dailyRetentionDays=30,
            monthlyRetentionDays=MONTHLY_DAYS,
            noncurrentVersionDays=30,
        ),
    )


def _policy(r: Rendering, type_: str, name: str) -> dict:
    return json.loads(r.one(type_, name).inputs["policy"])


def role(r: Rendering, name: str) -> list[dict]:
    return [_policy(r, "aws:iam/rolePolicy:RolePolicy", name)]


def bucket_policy(r: Rendering, bucket: str = "backups-bucket") -> list[dict]:
    return [_policy(r, "aws:s3/bucketPolicy:BucketPolicy", f"{bucket}-policy")]


def object_arn(r: Rendering, key: str, bucket: str = "backups-bucket") -> str:
    return f"arn:aws:s3:::{r.one('aws:s3/bucket:Bucket', bucket).inputs['bucket']}/{key}"


def write(key: str, retention_days: int | None = None, **context: str) -> tuple[str, str, dict]:
    """A PutObject of `key`, with `x-amz-object-lock-retain-until-date` that many days ahead."""
    lock = {} if retention_days is None else {"s3:object-lock-remaining-retention-days": str(retention_days)}
    return "s3:PutObject", key, {**SECURE, **lock, **context}


def decisions(r: Rendering, role_policy: str, requests: list[tuple[str, str, dict]]) -> list[Decision]:
    return [
        decide(Request(action, object_arn(r, key), context), role(r, role_policy), bucket_policy(r))
        for action, key, context in requests
    ]


ERASING = ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_app_writes_daily_only_and_can_erase_or_replace_nothing(stack):
    r = locked(stack)
    assert decisions(r, "app-access-policy", [write("daily/2026-05-01.dump")]) == ["allow"]
    # Restores read every prefix.
    reads = [("s3:GetObject", f"{prefix}x", SECURE) for prefix in ("daily/", "monthly/", "logs/")]
    assert decisions(r, "app-access-policy", reads) == ["allow"] * 3
    # Not even a correctly locked monthly copy: `monthly/` is the archiver's alone.
    refused = [write("monthly/2026-05.dump", MONTHLY_DAYS), write("logs/x")]
    refused += [(action, f"{prefix}x", SECURE) for action in ERASING for prefix in ("daily/", "monthly/")]
    refused += [("s3:PutObjectRetention", "daily/x", SECURE)]
    assert set(decisions(r, "app-access-policy", refused)) == {"implicit deny"}
    # TLS 1.3 only, never plain HTTP.
    stale = [write("daily/x", **{"s3:TlsVersion": "1.2"}), write("daily/x", **{"aws:SecureTransport": "false"})]
    assert decisions(r, "app-access-policy", stale) == ["explicit deny"] * 2


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_archiver_writes_monthly_only_and_only_with_a_years_retention(stack):
    r = locked(stack)
    archive = "backup-archiver-access-policy"
    assert decisions(r, archive, [("s3:GetObject", "daily/2026-05-01.dump", SECURE)]) == ["allow"]
    assert decisions(r, archive, [write("monthly/2026-05.dump", d) for d in (MONTHLY_DAYS, 400)]) == ["allow"] * 2
    # Without its own retention the copy would get the bucket default (30 days): refused, as is less.
    short = [write("monthly/2026-05.dump"), write("monthly/2026-05.dump", MONTHLY_DAYS - 1)]
    assert decisions(r, archive, short) == ["explicit deny"] * 2
    refused = [write("daily/x"), write("logs/x"), ("s3:GetObject", "logs/x", SECURE)]
    refused += [(action, f"{prefix}x", SECURE) for action in ERASING for prefix in ("daily/", "monthly/")]
    assert set(decisions(r, archive, refused)) == {"implicit deny"}
    assert decisions(r, archive, [write("monthly/x", MONTHLY_DAYS, **{"s3:TlsVersion": "1.2"})]) == ["explicit deny"]


LOOSENING = (
    "s3:BypassGovernanceRetention",
    "s3:DeleteObjectVersion",
    "s3:PutObjectLegalHold",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutReplicationConfiguration",
)


@pytest.mark.parametrize("stack", STACKS)
def test_no_role_of_the_program_can_bypass_loosen_or_erase_a_lock(stack):
    """A governance-mode lock yields only to s3:BypassGovernanceRetention (with the bypass header);
    no inline policy here grants it, nor anything that would erase a version or loosen the lock."""
    r = locked(stack)
    inline = [p.name for p in r.of_type("aws:iam/rolePolicy:RolePolicy")]
    assert {"app-access-policy", "backup-archiver-access-policy"} <= set(inline)
    buckets = [b for b in BUCKETS if any(x.name == b for x in r.of_type("aws:s3/bucket:Bucket"))]
    for bucket in buckets:
        targets = [f"arn:aws:s3:::{r.one('aws:s3/bucket:Bucket', bucket).inputs['bucket']}"]
        targets += [object_arn(r, f"{prefix}x", bucket) for prefix in ("daily/", "monthly/", "logs/")]
        for name in inline:
            for action in LOOSENING:
                for target in targets:
                    verdict = decide(Request(action, target, SECURE), role(r, name), bucket_policy(r, bucket))
                    assert verdict != "allow", (name, action, target)
        # The bucket policies only ever refuse.
        assert {s["Effect"] for s in bucket_policy(r, bucket)[0]["Statement"]} == {"Deny"}
    # Managed policies, which the evaluator cannot read, sit only on roles that an AWS service
    # assumes for its own job (AWS Backup, Lambda, RDS monitoring), never on one a pod can assume.
    roles = {x.name: x for x in r.of_type("aws:iam/role:Role")}
    for attachment in r.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        trust = json.loads(roles[attachment.inputs["role"]].inputs["assumeRolePolicy"])["Statement"]
        assert {key for statement in trust for key in statement["Principal"]} == {"Service"}, attachment.name


# --- the lock ----------------------------------------------------------------------------------

LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


@pytest.mark.parametrize("mode", ["GOVERNANCE", "COMPLIANCE"])
def test_both_buckets_are_locked_by_default_for_the_shortest_retention_in_the_chosen_mode(mode):
    r = render_edited("prod", _backups(objectLock={"mode": mode}, dailyRetentionDays=21, noncurrentVersionDays=21))
    for bucket in BUCKETS:
        lock = r.one(LOCK, f"{bucket}-object-lock")
        assert lock.inputs == {
            "bucket": f"{bucket}-id",
            "objectLockEnabled": "Enabled",
            # A default covers the whole bucket, so it is daily's; monthly copies carry their own.
            "rule": {"defaultRetention": {"mode": mode, "days": 21}},
        }
        target = r.one("aws:s3/bucket:Bucket", bucket)
        assert lock.provider == target.provider  # the DR lock in the DR region
        assert r.one("aws:s3/bucketVersioning:BucketVersioning", f"{bucket}-versioning").urn in lock.dependencies
        assert "objectLockEnabled" not in target.inputs  # it would force a new, empty bucket


def test_the_dr_copy_is_locked_before_replication_starts_and_keeps_each_retention():
    r = locked("prod")
    replication = r.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "backups-replication")
    for bucket in BUCKETS:  # S3 replicates locked objects only into a locked bucket
        assert r.one(LOCK, f"{bucket}-object-lock").urn in replication.dependencies
    replicator = role(r, "backups-replication-policy")
    for action in ("s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:GetObjectVersionForReplication"):
        assert decide(Request(action, object_arn(r, "monthly/x"), SECURE), replicator, bucket_policy(r)) == "allow"
    replica = Request("s3:ReplicateObject", object_arn(r, "monthly/x", "backups-dr-bucket"), SECURE)
    assert decide(replica, replicator, bucket_policy(r, "backups-dr-bucket")) == "allow"


def _kept_after_overwrite(rules: list[dict], prefix: str) -> float:
    """How long S3 keeps a noncurrent version under `prefix`: of every rule whose filter covers
    it, the shortest expiry wins (S3 User Guide, 'lifecycle conflicts')."""
    days = [
        rule["noncurrentVersionExpiration"]["noncurrentDays"]
        for rule in rules
        if rule["status"] == "Enabled"
        and prefix.startswith(rule["filter"]["prefix"])
        and "noncurrentVersionExpiration" in rule
    ]
    return min(days, default=float("inf"))


@pytest.mark.parametrize(
    "values",
    [{}, {"dailyRetentionDays": 14, "noncurrentVersionDays": 20, "monthlyRetentionDays": 400}],
    ids=["defaults", "tuned"],
)
def test_no_old_version_expires_before_its_lock_ends(values):
    """An overwrite or a delete makes a version noncurrent, in both buckets (the overwrite
    replicates); lifecycle keeps it at least as long as the lock that protects it."""
    r = render_edited("prod", _backups(**values))
    settings = BackupSettings.model_validate({"bucketName": "plexichat-backups", **values})
    locked_for = {
        "daily/": settings.daily_retention_days,
        "logs/": settings.daily_retention_days,
        "monthly/": settings.monthly_retention_days,
    }
    for bucket in BUCKETS:
        rules = r.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{bucket}-lifecycle")
        for prefix, days in locked_for.items():
            assert _kept_after_overwrite(rules.inputs["rules"], prefix) >= days, (bucket, prefix)


# --- no bucket is replaced ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_locking_the_buckets_replaces_nothing(stack):
    """`plexictl diff` from a rendering without the lock to one with it: the buckets keep every
    input (Object Lock comes in place from its own resource, never the bucket's replacing
    `object_lock_enabled`), no data-loss risk, and only the locks and bucket policies change."""
    base = render_edited(stack, _backups(objectLock={"enabled": False}))
    head = locked(stack, "COMPLIANCE")
    change = diff(base, head)
    assert change.risks == []
    buckets = {r.urn: r for r in base.of_type("aws:s3/bucket:Bucket")}
    after = head.by_urn()
    for urn, bucket in buckets.items():
        assert after[urn].inputs == bucket.inputs
        assert replacement_forcing_changes(bucket.type, bucket.inputs, after[urn].inputs) == []
    assert {(c.kind, c.type) for c in change.changes} == {
        ("added", LOCK),
        ("changed", "aws:s3/bucketPolicy:BucketPolicy"),  # the monthly retention floor
    }
    # A mode change later is an in-place update of the lock configurations alone.
    assert {(c.kind, c.type) for c in diff(head, locked(stack, "GOVERNANCE")).changes} == {("changed", LOCK)}


# --- settings -----------------------------------------------------------------------------------

BAD_LOCK_CONFIGS = [
    (_backups(objectLock={"mode": "governance"}), "plexichat:backups.objectLock.mode", "GOVERNANCE or COMPLIANCE"),
    (_backups(objectLock={"days": 30}), "plexichat:backups.objectLock.days", "unknown key"),
    (
        _backups(noncurrentVersionDays=10),
        "plexichat:backups.noncurrentVersionDays",
        "must be >= dailyRetentionDays (30) while objectLock is on",
    ),
]


@pytest.mark.parametrize("edit,key,hint", BAD_LOCK_CONFIGS, ids=[b[1] for b in BAD_LOCK_CONFIGS])
def test_bad_lock_config_is_one_run_error_naming_the_key(edit, key, hint):
    _check_bad_config("prod", edit, key, hint)


def test_lock_settings_default_to_governance_and_unlocked_versions_may_go_sooner():
    settings = BackupSettings.model_validate({"bucketName": "plexichat-backups"})
    assert (settings.object_lock.enabled, settings.object_lock.mode) == (True, "GOVERNANCE")
    unlocked = {"bucketName": "plexichat-backups", "objectLock": {"enabled": False}, "noncurrentVersionDays": 7}
    assert BackupSettings.model_validate(unlocked).noncurrent_version_days == 7


# --- what S3 does with the rendered lock (moto's model) ------------------------------------------


@pytest.mark.parametrize("mode", ["GOVERNANCE", "COMPLIANCE"])
def test_the_rendered_lock_keeps_every_version_in_moto(mode):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from botocore.exceptions import ClientError

    rule = locked("prod", mode).one(LOCK, "backups-bucket-object-lock").inputs
    retention = rule["rule"]["defaultRetention"]
    name = "plexichat-test-backups"
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=name)  # an existing bucket, locked afterwards: as in a real update
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": rule["objectLockEnabled"],
                "Rule": {"DefaultRetention": {"Mode": retention["mode"], "Days": int(retention["days"])}},
            },
        )
        daily = s3.put_object(Bucket=name, Key="daily/d.dump", Body=b"day")["VersionId"]
        assert s3.head_object(Bucket=name, Key="daily/d.dump")["ObjectLockMode"] == mode
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=MONTHLY_DAYS + 1)
        monthly = {"ObjectLockMode": mode, "ObjectLockRetainUntilDate": until}
        first = s3.put_object(Bucket=name, Key="monthly/m.dump", Body=b"one", **monthly)["VersionId"]
        s3.put_object(Bucket=name, Key="monthly/m.dump", Body=b"two", **monthly)  # an overwrite
        s3.delete_object(Bucket=name, Key="monthly/m.dump")  # a delete marker: allowed, erases nothing
        for key, version in (("daily/d.dump", daily), ("monthly/m.dump", first)):
            with pytest.raises(ClientError, match="AccessDenied"):
                s3.delete_object(Bucket=name, Key=key, VersionId=version)
        assert s3.get_object(Bucket=name, Key="monthly/m.dump", VersionId=first)["Body"].read() == b"one"
        # Only the bypass (which no role here may use) lifts a governance lock; nothing lifts compliance.
        if mode == "COMPLIANCE":
            with pytest.raises(ClientError, match="AccessDenied"):
                s3.delete_object(Bucket=name, Key="daily/d.dump", VersionId=daily, BypassGovernanceRetention=True)
        else:
            s3.delete_object(Bucket=name, Key="daily/d.dump", VersionId=daily, BypassGovernanceRetention=True)
