"""The backup archiver: the one identity that writes `monthly/` copies into the backup bucket.

Once a month, a copy of the newest `daily/` dump goes to `monthly/`, locked for a year. The app's
role cannot do this (it writes `daily/` only), so a compromised app pod can neither erase nor
replace the archive. The archiver gets its own IRSA role, trusted by exactly one ServiceAccount
(`plexichat-backup-archiver`, created here, with the role on it), and allowed to: list `daily/`
and `monthly/`, read `daily/`, write `monthly/` and set a retention there, and use the backup key.
It cannot delete, read `logs/`, or bypass a governance-mode lock. The bucket policy refuses its
`monthly/` write unless the request keeps the copy locked for monthlyRetentionDays
(components/data/backup_bucket.py), so it must send `x-amz-object-lock-mode` and a
`x-amz-object-lock-retain-until-date` at least that far ahead.

The monthly CronJob that runs as this ServiceAccount is the cluster layer's; until it exists, an
operator runs the copy as a one-off Job with the same ServiceAccount (docs/data-tier.md 'Backups
nobody can erase early').
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.data.backup_bucket import DAILY_PREFIX, MONTHLY_PREFIX
from components.identity.app_access import (
    ARCHIVER_SERVICE_ACCOUNT,
    AppAccessArgs,
    irsa_role,
    service_account_subject,
)
from components.identity.external_secrets import ROLE_ARN_ANNOTATION


class BackupArchiverAccess(pulumi.ComponentResource):
    service_account: k8s.core.v1.ServiceAccount

    def __init__(self, name: str, args: AppAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:identity:BackupArchiverAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        backups = args.backups
        bucket = backups.bucket_arn

        def objects(prefix: str) -> list[pulumi.Output[str]]:
            return [pulumi.Output.concat(bucket, "/", prefix, "*")]

        role = irsa_role(
            name,
            "",
            f"PlexiChat monthly backup copies ({args.stack}), via IRSA",
            args,
            {"StringEquals": service_account_subject(args, ARCHIVER_SERVICE_ACCOUNT)},
            [
                {
                    "Sid": "ListDailyAndMonthly",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": [bucket],
                    "Condition": {"StringLike": {"s3:prefix": [f"{DAILY_PREFIX}*", f"{MONTHLY_PREFIX}*"]}},
                },
                {"Sid": "ReadDaily", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects(DAILY_PREFIX)},
                {
                    "Sid": "WriteLockedMonthlyCopies",
                    "Effect": "Allow",
                    # PutObjectRetention: the copy's own retention, given with the write.
                    "Action": ["s3:PutObject", "s3:PutObjectRetention"],
                    "Resource": objects(MONTHLY_PREFIX),
                },
                {
                    "Sid": "UseBackupKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": [backups.key_arn],
                },
            ],
            child,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ARCHIVER_SERVICE_ACCOUNT,
                namespace=args.namespace,
                labels=naming.common_labels(args.stack),
                annotations={ROLE_ARN_ANNOTATION: role.arn},
            ),
            # The pod calls no Kubernetes API; the IRSA webhook mounts its own AWS token.
            automount_service_account_token=False,
            opts=child,
        )
        self.register_outputs({"role_arn": role.arn, "service_account": ARCHIVER_SERVICE_ACCOUNT})
