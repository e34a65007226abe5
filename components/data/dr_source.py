"""What a DR primary hands its standby: the stack output `drSource`, and reading it back.

The primary (`dr.role: primary`) exports what the standby in its DR region needs and cannot name
itself; the standby (and, after a failover, the promoted `active` stack) reads it through a
`pulumi.StackReference` to the primary's stack. One module holds both sides, so the keys cannot
drift apart:

| key | what | the standby uses it for |
|---|---|---|
| `region`, `drRegion` | the primary's region, and the region of its DR copies | documentation, `dr status` |
| `databaseArn`, `databaseIdentifier` | the primary database | `replicate_source_db` (cross-region: by ARN) |
| `roleSecretArns` | role -> ARN of its secret's copy in the DR region (password mode) | the pods' credentials |
| `roleSecretsKeyArn` | the key that encrypts those copies (the DR backups key) | the External Secrets store's decrypt |
| `backupBucket`, `backupBucketArn`, `backupKeyArn` | the DR copy of the backup bucket, its key | the app's backups |
| `backupVault` | the DR backup vault | the promoted database's backup plan |

The DR copies (bucket, vault, key, replicated secrets) belong to the primary: the standby creates
none of them (docs/dr.md "The standby stack").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.config.dr import DrSettings
from components.data.backups import Backups, BackupStore
from components.data.database import Database
from components.data.database_role_secrets import DatabaseRoleSecrets, RoleCredentials
from components.data.database_roles import ROLES

OUTPUT = "drSource"
"""The primary's stack output the standby reads."""


def export_value(
    database: Database, backups: Backups, role_secrets: DatabaseRoleSecrets | None, region: str, dr_region: str
) -> pulumi.Output[dict[str, Any]]:
    """The primary's `drSource`: every key of the table above."""
    if backups.dr_bucket is None or backups.dr_key is None or backups.dr_vault is None:
        raise ValueError("a DR primary has DR copies (backups.drRegion)")  # settings require it
    secrets = role_secrets.secrets if role_secrets is not None else {}
    return pulumi.Output.all(
        region=region,
        drRegion=dr_region,
        databaseArn=database.primary.arn,
        databaseIdentifier=database.primary.identifier,
        # Secrets Manager gives a replica the primary's ARN in its own region.
        roleSecretArns=pulumi.Output.all(
            **{role: secret.arn.apply(lambda arn: in_region(arn, dr_region)) for role, secret in secrets.items()}
        ),
        roleSecretsKeyArn=backups.dr_key.arn,
        backupBucket=backups.dr_bucket.bucket,
        backupBucketArn=backups.dr_bucket.arn,
        backupKeyArn=backups.dr_key.arn,
        backupVault=backups.dr_vault.name,
    )


def in_region(arn: str, region: str) -> str:
    """`arn` (arn:partition:service:region:account:...) in `region`."""
    parts = arn.split(":", 5)
    return ":".join([*parts[:3], region, *parts[4:]])


@dataclass(frozen=True)
class PrimarySource:
    """The primary's `drSource`, as a DR stack reads it."""

    outputs: pulumi.Output[Mapping[str, Any]]

    def get(self, key: str) -> pulumi.Output[Any]:
        return self.outputs.apply(lambda source: source[key])

    @property
    def database_arn(self) -> pulumi.Output[str]:
        return self.get("databaseArn")

    @property
    def backups(self) -> BackupStore:
        """The primary's copy of the backup bucket in this region, and its key."""
        return BackupStore(self.get("backupBucket"), self.get("backupBucketArn"), self.get("backupKeyArn"))

    @property
    def backup_vault(self) -> pulumi.Output[str]:
        return self.get("backupVault")

    def role_credentials(self) -> RoleCredentials:
        """The copies of the database roles' secrets in this region (password mode)."""
        arns = self.get("roleSecretArns")

        def arn_of(role: str) -> pulumi.Output[str]:
            return arns.apply(lambda found: found[role])

        return RoleCredentials({role: arn_of(role) for role in ROLES}, self.get("roleSecretsKeyArn"))


def read_primary(dr: DrSettings, opts: pulumi.ResourceOptions) -> PrimarySource:
    """The primary's `drSource`, through a StackReference to `org/project/<dr.primaryStack>`."""
    name = dr.primary_reference(pulumi.get_organization(), pulumi.get_project())
    reference = pulumi.StackReference("dr-primary", stack_name=name, opts=opts)
    return PrimarySource(reference.require_output(OUTPUT))
