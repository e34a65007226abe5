"""Backups: the backup bucket, the AWS Backup vault and plan for the database, and DR.

The bucket (components/data/backup_bucket.py) is versioned, SSE-KMS encrypted, private, TLS 1.3
only and under S3 Object Lock; lifecycle rules follow the runbook (`daily/` 30 days, `monthly/`
archived then kept a year, `logs/` 90 days). AWS Backup keeps daily recovery points 30 days and
monthly ones 365 days (RDS's own retention stops at 35). With a DR region (prod) the bucket
replicates there within 15 minutes, every recovery point is copied to a vault there, and RDS
automated backups are replicated there for point-in-time restore (runbook: RPO 1 h, RTO 4 h).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.data import BackupSettings
from components.config.rpo import BACKUP_COMPLETION_WINDOW_MINUTES, BACKUP_START_WINDOW_MINUTES
from components.data.access_log_bucket import access_log_bucket, log_requests
from components.data.backup_bucket import BackupBucket, backup_bucket
from components.data.database import Database
from components.data.disaster_recovery import replicate_automated_backups, replicate_bucket
from components.data.shared import data_key, service_role, with_protection
from components.naming import backup_vault_name, dr_backup_vault_name

DAILY_SCHEDULE = "cron(0 5 * * ? *)"  # after the RDS backup window (03:00-04:00 UTC)
MONTHLY_SCHEDULE = "cron(0 6 1 * ? *)"
# The windows are the RPO model's (components/config/rpo.py), imported so the two never drift.


@dataclass(frozen=True)
class BackupStore:
    """Where the app's backups go: a bucket and the key that encrypts it. The stack's own
    (`Backups.store`), or in a DR stack the primary's copy in this region, which the primary
    owns (docs/dr.md "The standby stack")."""

    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]


@dataclass(frozen=True)
class BackupsArgs:
    settings: BackupSettings
    database: Database
    account_id: pulumi.Input[str]
    stack: str
    protect: bool
    """Pulumi `protect` on keys, buckets and vaults, `retain_on_delete` on buckets."""
    dr_provider: aws.Provider | None = None
    """Provider of the DR region; required when settings.dr_region is set."""


class Backups(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    key: aws.kms.Key
    vault: aws.backup.Vault
    dr_key: aws.kms.Key | None
    dr_bucket: aws.s3.Bucket | None
    dr_vault: aws.backup.Vault | None

    def __init__(self, name: str, args: BackupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:Backups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings

        self.key = data_key(
            f"{name}-key", f"PlexiChat backups ({args.stack})", args.account_id, with_protection(child, args.protect)
        )
        primary = backup_bucket(f"{name}-bucket", s.bucket_name, self.key, s, args.protect, child)
        self.bucket = primary.bucket
        self.access_logs = self._access_logs(f"{name}-access-logs", s.bucket_name, args, child)
        log_requests(f"{name}-bucket", primary.bucket, s.bucket_name, self.access_logs, child)
        self.vault = _vault(f"{name}-vault", backup_vault_name(args.stack), self.key, child, args)

        self.dr_bucket = self.dr_vault = self.dr_key = None
        if s.dr_region:
            self._disaster_recovery(name, args, primary, child)

        self.store = BackupStore(self.bucket.bucket, self.bucket.arn, self.key.arn)
        self.plan = _plan(
            name,
            _PlanArgs(
                s, args.stack, args.database.primary.arn, self.vault.name, self.dr_vault.arn if self.dr_vault else None
            ),
            child,
        )
        self.register_outputs(
            {
                "bucket": self.bucket.bucket,
                "vault": self.vault.name,
                "dr_bucket": self.dr_bucket.bucket if self.dr_bucket else None,
            }
        )

    def _disaster_recovery(
        self, name: str, args: BackupsArgs, primary: BackupBucket, opts: pulumi.ResourceOptions
    ) -> None:
        """The DR region's copies (runbook: RPO 1 h, RTO 4 h): its own key, bucket and vault, built
        like the primary region's and filled by `disaster_recovery` (the bucket replicated there, RDS
        automated backups for point-in-time restore there). The plan copies every recovery point
        into the DR vault."""
        s = args.settings
        if args.dr_provider is None:
            raise ValueError("backups.drRegion is set but no DR provider was given")
        dr = pulumi.ResourceOptions(parent=self, provider=args.dr_provider)
        self.dr_key = dr_key = data_key(
            f"{name}-dr-key",
            f"PlexiChat DR copies ({args.stack}, {s.dr_region})",
            args.account_id,
            with_protection(dr, args.protect),
        )
        copy = backup_bucket(f"{name}-dr-bucket", f"{s.bucket_name}-dr", dr_key, s, args.protect, dr)
        self.dr_bucket = copy.bucket
        dr_logs = self._access_logs(f"{name}-dr-access-logs", f"{s.bucket_name}-dr", args, dr)
        log_requests(f"{name}-dr-bucket", copy.bucket, f"{s.bucket_name}-dr", dr_logs, dr)
        self.dr_vault = _vault(f"{name}-dr-vault", dr_backup_vault_name(args.stack), dr_key, dr, args)
        replicate_bucket(name, self, primary, copy, dr_key, opts)
        replicate_automated_backups(
            f"{name}-dr-rds-backups", args.database, dr_key, s.dr_automated_backup_retention_days, dr
        )

    @staticmethod
    def _access_logs(name: str, source: str, args: BackupsArgs, opts: pulumi.ResourceOptions) -> aws.s3.Bucket:
        """The region's access log bucket, `<source>-access-logs`, for the backup bucket `source`."""
        return access_log_bucket(
            name,
            f"{source}-access-logs",
            account_id=args.account_id,
            sources=[source],
            retention_days=args.settings.log_retention_days,
            protect=args.protect,
            opts=opts,
        )


def _vault(
    name: str, vault_name: str, key: aws.kms.Key, opts: pulumi.ResourceOptions, args: BackupsArgs
) -> aws.backup.Vault:
    """A vault encrypted with `key`, protected with the data, and locked when the settings ask."""
    vault = aws.backup.Vault(name, name=vault_name, kms_key_arn=key.arn, opts=with_protection(opts, args.protect))
    _lock(f"{name}-lock", vault, args.settings, opts)
    return vault


def _lock(name: str, vault: aws.backup.Vault, s: BackupSettings, opts: pulumi.ResourceOptions) -> None:
    """Governance-mode Vault Lock (no `changeable_for_days`), when the settings ask for one. Its
    bounds are the plan's own retentions, so every recovery point the plan makes or copies fits."""
    if s.vault_lock:
        aws.backup.VaultLockConfiguration(
            name,
            backup_vault_name=vault.name,
            min_retention_days=s.daily_retention_days,
            max_retention_days=s.monthly_retention_days,
            opts=opts,
        )


class PromotedBackups(pulumi.ComponentResource):
    """The backups of a promoted DR database (`dr.role: active`): the stack's own AWS Backup plan,
    daily and monthly like the primary's, into the DR vault the primary owns in this region
    (named by the primary's `drSource`, locked by the primary). The DR bucket and vault stay the
    primary's: this stack creates neither (docs/dr.md "Failover and failback")."""

    plan: aws.backup.Plan

    def __init__(
        self,
        name: str,
        settings: BackupSettings,
        stack: str,
        database: Database,
        vault_name: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("plexichat:data:PromotedBackups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.plan = _plan(name, _PlanArgs(settings, stack, database.primary.arn, vault_name, None), child)
        self.register_outputs({"plan": self.plan.name})


@dataclass(frozen=True)
class _PlanArgs:
    settings: BackupSettings
    stack: str
    database_arn: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    dr_vault_arn: pulumi.Input[str] | None
    """Where each recovery point is copied, if anywhere."""


def _plan(name: str, args: _PlanArgs, opts: pulumi.ResourceOptions) -> aws.backup.Plan:
    """AWS Backup for the database primary: daily and monthly recovery points, kept longer than
    RDS's own retention allows (35 days), and copied to the DR vault when there is one."""
    s = args.settings
    backup_role = service_role(
        f"{name}-backup-role",
        "backup.amazonaws.com",
        [
            "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
            "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
        ],
        opts,
    )
    plan = aws.backup.Plan(
        f"{name}-plan",
        name=f"plexichat-{args.stack}-database",
        rules=[
            _plan_rule("daily", DAILY_SCHEDULE, s.daily_retention_days, args.vault_name, args.dr_vault_arn),
            _plan_rule("monthly", MONTHLY_SCHEDULE, s.monthly_retention_days, args.vault_name, args.dr_vault_arn),
        ],
        opts=opts,
    )
    aws.backup.Selection(
        f"{name}-selection",
        name=f"plexichat-{args.stack}-database",
        plan_id=plan.id,
        iam_role_arn=backup_role.arn,
        resources=[args.database_arn],
        opts=opts,
    )
    return plan


def _plan_rule(
    rule_name: str,
    schedule: str,
    keep_days: int,
    vault_name: pulumi.Input[str],
    dr_vault_arn: pulumi.Input[str] | None,
) -> aws.backup.PlanRuleArgs:
    """One schedule; its copies in the DR vault are kept exactly as long as the originals."""
    lifecycle = aws.backup.PlanRuleLifecycleArgs(delete_after=keep_days)
    return aws.backup.PlanRuleArgs(
        rule_name=rule_name,
        target_vault_name=vault_name,
        schedule=schedule,
        start_window=BACKUP_START_WINDOW_MINUTES,
        completion_window=BACKUP_COMPLETION_WINDOW_MINUTES,
        lifecycle=lifecycle,
        copy_actions=[aws.backup.PlanRuleCopyActionArgs(destination_vault_arn=dr_vault_arn, lifecycle=lifecycle)]
        if dr_vault_arn is not None
        else None,
    )
