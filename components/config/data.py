"""The data tier: database, cache, backups and DR, secrets into the cluster, protection of data."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config.base import (
    FieldError,
    LogRetentionDays,
    Model,
    int_range,
    pattern,
)
from components.config.cluster import AwsRegion

# Data tier: database, cache, backups and DR, secrets into the cluster, protection of data

_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,61}[a-z0-9]$")
_CACHE_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,38}[a-z0-9]$")
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SIZES = r"(micro|small|medium|large|xlarge|[1-9][0-9]?xlarge)"
_DB_CLASS = re.compile(rf"^db\.(t3|t4g|m5|m6g|m6i|m7g|m7i|r5|r6g|r6i|r7g|r7i|r8g)\.{_SIZES}$")
_CACHE_NODE = re.compile(rf"^cache\.(t3|t4g|m5|m6g|m7g|r5|r6g|r7g)\.{_SIZES}$")
# hh:mm-hh:mm (backup, snapshot) and ddd:hh:mm-ddd:hh:mm (maintenance), UTC, as AWS writes them.
_DAILY_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_WEEKLY_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$"
)
_OIDC_PROVIDER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/[a-z0-9.-]+(/[A-Za-z0-9/_-]+)?$")
_AZ = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")

RdsIdentifier = Annotated[
    str,
    pattern(
        _RDS_IDENTIFIER, "an RDS identifier: 2-63 lowercase letters, digits and single hyphens, starting with a letter"
    ),
]
CacheGroupId = Annotated[
    str,
    pattern(_CACHE_ID, "an ElastiCache id: 2-40 lowercase letters, digits and single hyphens, starting with a letter"),
]
BucketName = Annotated[str, pattern(_BUCKET, "an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'")]
DbInstanceClass = Annotated[str, pattern(_DB_CLASS, "an RDS instance class such as db.t4g.medium or db.r7g.2xlarge")]
CacheNodeType = Annotated[
    str, pattern(_CACHE_NODE, "an ElastiCache node type such as cache.t4g.small or cache.r7g.large")
]
DailyWindow = Annotated[str, pattern(_DAILY_WINDOW, "a daily UTC window hh:mm-hh:mm such as 03:00-04:00")]
WeeklyWindow = Annotated[
    str, pattern(_WEEKLY_WINDOW, "a weekly UTC window ddd:hh:mm-ddd:hh:mm such as sun:05:00-sun:06:00")
]
AvailabilityZone = Annotated[str, pattern(_AZ, "an availability zone such as us-east-1a")]
OidcProviderArn = Annotated[
    str,
    pattern(
        _OIDC_PROVIDER_ARN,
        "an IAM OIDC provider ARN such as "
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
    ),
]
# The values CloudWatch Logs accepts for retention_in_days.


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def _daily_minutes(window: str) -> set[int]:
    start, end = (_minutes(t) for t in window.split("-"))
    return {m % 1440 for m in range(start, end if end > start else end + 1440)}


def _weekly_daily_minutes(window: str) -> set[int]:
    # Time of day the weekly window covers: backups run daily, so any overlap is a clash.
    start, end = window.split("-")
    return _daily_minutes(f"{start[4:]}-{end[4:]}")


class DatabaseSettings(Model):
    """RDS PostgreSQL: a primary and N read replicas in the private subnets."""

    identifier: RdsIdentifier
    """RDS identifier of the primary (replicas add -replica-<n>). Required. Pinned in protected
    stacks (see dataProtection)."""
    engine_version: Annotated[str, AfterValidator(lambda v: _postgres_version(v))] = "17"
    """PostgreSQL major (17) or major.minor (17.6); minor upgrades are automatic. A new major
    needs majorVersionUpgrade in the same change. Default 17."""
    major_version_upgrade: bool = False
    """Set in the change that raises engineVersion's major (17 to 18), unset afterwards: RDS then
    upgrades the primary and its replicas together, at once instead of in the maintenance window
    (the database is down for several minutes: schedule it), and the old parameter group is
    detached so it can be deleted. While set, any other change to the instances applies at once
    too. Default off: RDS refuses a major change."""
    instance_class: DbInstanceClass = "db.t4g.medium"
    """Instance class of the primary and the replicas. Default db.t4g.medium."""
    allocated_storage_gib: Annotated[int, int_range(20, 65536, "a size in GiB")] = 20
    """Initial gp3 storage. Default 20 (20..65536)."""
    max_allocated_storage_gib: Annotated[int, int_range(20, 65536, "a size in GiB")] = 100
    """Storage autoscaling ceiling, >= allocatedStorageGib. Default 100."""
    multi_az: bool = True
    """Synchronous standby in a second AZ (failover in 60-120 s). Default on; dev turns it off."""
    read_replicas: Annotated[int, int_range(0, 5, "a number of read replicas")] = 0
    """Read replicas of the primary (0..5). Default 0; staging 1, prod 2."""
    replica_availability_zones: list[AvailabilityZone] = []
    """AZs the replicas are spread over, round-robin; in the primary region. Default: AWS picks."""
    backup_retention_days: Annotated[int, int_range(1, 35, "a number of days (the RDS limit is 35)")] = 30
    """Automated backup (point-in-time recovery) retention, 1..35. Default 30."""
    backup_window: DailyWindow = "03:00-04:00"
    """Daily UTC backup window. Default 03:00-04:00; must not overlap maintenanceWindow."""
    maintenance_window: WeeklyWindow = "sun:21:00-sun:22:00"
    """Weekly UTC maintenance window. Default sun:21:00-sun:22:00: clear of the backup window and
    of the AWS Backup jobs (daily from 05:00, up to 7 h)."""
    deletion_protection: bool = True
    """RDS refuses to delete the instance while on. Default on; dev turns it off."""
    performance_insights: bool = True
    """Performance Insights (KMS-encrypted, 7 days free tier). Default on."""
    monitoring_interval_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = 60
    """Enhanced Monitoring interval, 0 (off), 1, 5, 10, 15, 30 or 60. Default 60."""
    slow_statement_ms: Annotated[int, int_range(10, 60000, "a number of milliseconds")] = 500
    """Statements slower than this are logged (log_min_duration_statement). Default 500."""
    max_connections: Annotated[int, int_range(20, 5000, "a number of connections")] = 200
    """PostgreSQL max_connections, set explicitly (20..5000) so the pools' budget and the
    connections alarm share one number. Applied at the next reboot. Default 200."""
    log_retention_days: LogRetentionDays = 90
    """CloudWatch retention of the exported PostgreSQL logs. Default 90."""
    password_rotation_days: Annotated[int, int_range(1, 30, "a number of days")] = 30
    """Rotation period of the RDS-managed master password and, with appAuth password, of the
    roles' passwords: 1..30, the runbook rotates every credential at least every 30 days.
    Default 30 (RDS's own default is 7)."""
    app_auth: Literal["password", "iam"] = "password"
    """How the app and the migration log in as their own roles (plexichat_app, plexichat_migrator;
    never the master user). `password` (default): a Secrets Manager secret per role, rotated every
    passwordRotationDays by AWS's multi-user rotation function. `iam`: an IAM token through the
    pods' IRSA role, no passwords at all; set it only once the app (and its migrations) can log in
    with IAM tokens (docs/data-tier.md 'Database roles')."""

    @property
    def major_version(self) -> int:
        return int(self.engine_version.split(".")[0])

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseSettings:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise FieldError(
                "maxAllocatedStorageGib",
                f"must be >= allocatedStorageGib ({self.allocated_storage_gib})",
            )
        if _daily_minutes(self.backup_window) & _weekly_daily_minutes(self.maintenance_window):
            raise FieldError("backupWindow", f"must not overlap maintenanceWindow ({self.maintenance_window})")
        return self


def _postgres_version(value: str) -> str:
    if not re.match(r"^(1[4-9]|2\d)(\.\d+)?$", value):
        raise ValueError("must be a PostgreSQL version 14 or newer, such as 17 or 17.6")
    return value


class CacheSettings(Model):
    """ElastiCache (Valkey or Redis OSS) replication group used as a write-through cache."""

    replication_group_id: CacheGroupId
    """Replication group id. Required. Pinned in protected stacks (see dataProtection)."""
    engine: Literal["valkey", "redis"] = "valkey"
    """valkey (default) or redis. Changing valkey -> redis replaces the group."""
    engine_version: Annotated[str, AfterValidator(lambda v: _cache_version(v))] = "8.0"
    """Engine major.minor, 7.0 or newer. Default 8.0."""
    node_type: CacheNodeType = "cache.t4g.small"
    """Node type. Default cache.t4g.small."""
    nodes: Annotated[int, int_range(1, 6, "a number of cache nodes")] = 2
    """Primary plus replicas (1..6). With 2 or more, failover is automatic. Default 2; dev 1."""
    multi_az: bool = True
    """Place the replica in another AZ and fail over to it; needs nodes >= 2. Default on."""
    snapshot_retention_days: Annotated[int, int_range(1, 35, "a number of days")] = 7
    """Daily snapshots kept, 1..35. Default 7."""
    snapshot_window: DailyWindow = "04:00-05:00"
    """Daily UTC snapshot window. Default 04:00-05:00."""
    maintenance_window: WeeklyWindow = "sun:22:00-sun:23:00"
    """Weekly UTC maintenance window. Default sun:22:00-sun:23:00 (after the database's)."""
    maxmemory_policy: Literal["volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-lru", "allkeys-lfu"] = (
        "volatile-lru"
    )
    """Eviction when full; volatile-* evicts only keys with a TTL. Default volatile-lru."""
    log_retention_days: LogRetentionDays = 90
    """CloudWatch retention of the slow log (and of the token rotation's log). Default 90."""
    app_auth: Literal["token", "iam"] = "token"
    """How the app logs in. `token` (default): an AUTH token, held in Secrets Manager and rotated
    every 30 days without a refused client (ROTATE, then SET a day later). `iam`: RBAC, an IAM
    token signed with the pods' IRSA role for the app's cache user, and the `default` user off;
    needs engineVersion 7.0 or newer (as every engineVersion is). Set it only once the app can
    sign IAM tokens (docs/data-tier.md 'Cache authentication')."""

    @model_validator(mode="after")
    def _consistent(self) -> CacheSettings:
        if self.multi_az and self.nodes < 2:
            raise FieldError("multiAz", f"needs nodes >= 2 (a replica to fail over to), got nodes {self.nodes}")
        if _daily_minutes(self.snapshot_window) & _weekly_daily_minutes(self.maintenance_window):
            raise FieldError("snapshotWindow", f"must not overlap maintenanceWindow ({self.maintenance_window})")
        return self


def _cache_version(value: str) -> str:
    if not re.match(r"^([7-9]|[1-9]\d)\.\d+$", value):
        raise ValueError("must be an engine version 7.0 or newer, such as 8.0")
    return value


class ObjectLockSettings(Model):
    """S3 Object Lock on the backup bucket and the DR bucket: no object version can be deleted or
    overwritten before its retention ends (docs/data-tier.md 'Backups nobody can erase early').
    Every version is kept at least dailyRetentionDays (the buckets' default retention: a default
    covers a whole bucket, so it is the shortest prefix's); `monthly/` copies are written with
    their own retention of at least monthlyRetentionDays, and S3 refuses one with less."""

    enabled: bool = True
    """Lock the backup buckets. Default on. S3 never unlocks a bucket: turning this off later only
    drops the default retention and the monthly floor; versions already locked stay locked."""
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    """GOVERNANCE (default; dev, staging): nobody erases a version early without
    s3:BypassGovernanceRetention, which no role of this program has, so an administrator can, on
    purpose. COMPLIANCE (prod): nobody can, the account's root user included, until it expires."""


class BackupSettings(Model):
    """The backup bucket, the AWS Backup plan for the database, and cross-region DR."""

    bucket_name: BucketName
    """Name of the backup bucket (globally unique). Required. Pinned in protected stacks. Its
    server access logs go to `<bucketName>-access-logs` (and the DR copy's to
    `<bucketName>-dr-access-logs`), kept logRetentionDays. In a DR stack (dr.role standby or
    active): the primary's DR copy in this region (`<primary's bucketName>-dr`), which the app
    uses and the primary owns; the stack creates no bucket (docs/dr.md)."""
    daily_retention_days: Annotated[int, int_range(1, 35, "a number of days")] = 30
    """`daily/` objects and daily AWS Backup recovery points are kept this long. Default 30."""
    monthly_retention_days: Annotated[int, int_range(180, 3650, "a number of days")] = 365
    """`monthly/` objects and monthly recovery points are kept this long. Default 365."""
    monthly_archive_after_days: Annotated[int, int_range(1, 90, "a number of days")] = 30
    """`monthly/` objects move to Glacier Flexible Retrieval after this. Default 30."""
    log_retention_days: Annotated[int, int_range(1, 3650, "a number of days")] = 90
    """`logs/` objects are kept this long. Default 90."""
    noncurrent_version_days: Annotated[int, int_range(1, 365, "a number of days")] = 30
    """Overwritten or deleted versions of `daily/` and `logs/` objects are kept this long;
    >= dailyRetentionDays while objectLock is on. Those of `monthly/` objects are kept
    monthlyRetentionDays. Default 30."""
    dr_region: AwsRegion | None = None
    """Second region for DR (bucket replication, backup copies, RDS automated backups); must
    differ from aws.region. Default none (no DR); prod sets it. Pinned in protected stacks."""
    dr_automated_backup_retention_days: Annotated[int, int_range(1, 35, "a number of days")] = 7
    """Retention of the RDS automated backups replicated to drRegion (point-in-time restore
    there). Default 7."""
    vault_lock: bool = True
    """AWS Backup Vault Lock, governance mode, on the vault (and the DR vault): no recovery point
    can be deleted before dailyRetentionDays, or kept beyond monthlyRetentionDays, except by a
    principal allowed backup:DeleteBackupVaultLockConfiguration. Default on; dev turns it off so
    the stack can be torn down. (Compliance mode, which nobody can lift, is left to a deliberate
    manual step.)"""
    object_lock: ObjectLockSettings = ObjectLockSettings()
    """S3 Object Lock on the backup buckets. Default on, GOVERNANCE; prod sets COMPLIANCE."""

    @model_validator(mode="after")
    def _versions_outlive_their_lock(self) -> BackupSettings:
        if self.object_lock.enabled and self.noncurrent_version_days < self.daily_retention_days:
            raise FieldError(
                "noncurrentVersionDays",
                f"must be >= dailyRetentionDays ({self.daily_retention_days}) while objectLock is on: "
                "every version is locked that long, so lifecycle cannot expire an old one sooner",
            )
        return self


class IrsaSettings(Model):
    """IAM roles for service accounts: how pods of the app get AWS credentials."""

    oidc_provider_arn: OidcProviderArn
    """The cluster's IAM OIDC provider ARN (`aws eks describe-cluster ... identity.oidc.issuer`).
    Required."""
    secret_refresh_interval: Annotated[str, Field(pattern=r"^[1-9][0-9]*(m|h)$")] = "5m"
    """How often External Secrets re-reads Secrets Manager. A rotated database password stops
    working at once, so this bounds how long after a rotation new connections of running pods
    fail (the Secret changes, then the reloader rolls the pods). Default 5m."""


class PinnedIdentity(Model):
    """The replacement-forcing values a protected stack was deployed with (see docs/data-tier.md
    'No data loss by config edit'). The program refuses to run when the config derives other ones."""

    region: AwsRegion
    """Mirrors aws.region: every AWS resource lives there."""
    database_identifier: RdsIdentifier
    """Mirrors database.identifier."""
    cache_replication_group_id: CacheGroupId
    """Mirrors cache.replicationGroupId."""
    backup_bucket_name: BucketName
    """Mirrors backups.bucketName."""
    dr_region: AwsRegion | None = None
    """Mirrors backups.drRegion (none when the stack has no DR)."""
    cache_engine: Literal["valkey", "redis"] = "valkey"
    """Mirrors cache.engine."""


class DataProtectionSettings(Model):
    """Guards against losing data through a config edit or a refactor."""

    protect: bool = True
    """Pulumi `protect` on the primary database, KMS keys, backup buckets and vaults, and
    `retain_on_delete` on the buckets. Default on; only dev turns it off."""
    pinned: PinnedIdentity | None = None
    """The deployed identity. Required when `protect` is on, enforced whenever present. Editing a
    pinned value in the same change as the setting it mirrors is the explicit, reviewed
    confirmation that the resource is destroyed and re-created."""


# config key path of the mirrored setting -> (pinned field, what a change does). Which inputs of
# which resource types replace data is components/stateful.py; these are the settings that feed
# such inputs (or the provider's region), or rename a store, and therefore cannot be constants.
IDENTITY_PINS: dict[str, tuple[str, str]] = {
    "aws.region": ("region", "destroy every AWS resource of the stack, including the database, cache and backups"),
    # RDS renames an instance in place (so `identifier` is not in stateful.py), but the rest of a
    # rename is still an outage and a loss: pinned like the others.
    "database.identifier": (
        "database_identifier",
        "rename the RDS primary and its replicas (new endpoints: the database is unreachable until "
        "the rename settles and the pods roll) and replace their subnet, parameter and security "
        "groups and their log groups (the logs so far are deleted)",
    ),
    "cache.replicationGroupId": (
        "cache_replication_group_id",
        "destroy the ElastiCache replication group and its data",
    ),
    "cache.engine": ("cache_engine", "destroy the ElastiCache replication group (an engine downgrade re-creates it)"),
    "backups.bucketName": ("backup_bucket_name", "destroy the backup bucket and every backup in it"),
    "backups.drRegion": (
        "dr_region",
        "destroy the DR bucket, DR vault, DR key and replicated backups in the old DR region",
    ),
}


def _setting_at(settings: Any, path: str) -> Any:
    value = settings
    for part in path.split("."):
        value = getattr(value, re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower())
    return value


def check_data_tier(settings: Any) -> None:
    """Cross-block rules of the data tier; called by StackSettings' validator. The identity guard
    comes first: when a pinned value changed, that is the one thing the operator must read."""
    check_pinned_identity(settings)
    region = settings.aws.region
    if settings.backups.dr_region == region:
        raise FieldError("backups.drRegion", f"must differ from aws.region ({region}), or be left out")
    # The derived names: `<bucket>-access-logs`, and with a DR region `<bucket>-dr-access-logs`.
    longest = len("-dr-access-logs") if settings.backups.dr_region else len("-access-logs")
    if len(settings.backups.bucket_name) > 63 - longest:
        raise FieldError(
            "backups.bucketName",
            f"must be at most {63 - longest} characters: its access log bucket"
            f"{' and the DR copies' if settings.backups.dr_region else ''} add a suffix, and S3 names stop at 63",
        )
    for zone in settings.database.replica_availability_zones:
        if not zone.startswith(region):
            raise FieldError("database.replicaAvailabilityZones", f"must be zones of aws.region {region}, got {zone}")


def check_pinned_identity(settings: Any) -> None:
    # Pins hold whenever they exist, even with `protect` off: turning protection off and changing
    # an identity in the same edit must still be refused.
    protection = settings.data_protection
    if protection.pinned is None:
        if protection.protect:
            raise FieldError(
                "dataProtection.pinned", "is required when dataProtection.protect is on (copy the current values)"
            )
        return
    for path, (pin, consequence) in IDENTITY_PINS.items():
        current, pinned = _setting_at(settings, path), getattr(protection.pinned, pin)
        if current != pinned:
            raise FieldError(
                path,
                f"changing it from {pinned!r} to {current!r} would {consequence}; this stack is "
                f"protected. To do this on purpose, also set dataProtection.pinned.{to_camel(pin)} to "
                f"{current!r} "
                "in the same reviewed change (docs/data-tier.md 'No data loss by config edit')",
            )
