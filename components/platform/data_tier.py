"""The data tier: database, cache, backups, the roles' secrets and the restore tests; a DR stack's
replica of its primary and the copies its primary owns."""

from __future__ import annotations

from components.data.backups import Backups, BackupsArgs, PromotedBackups
from components.data.cache import Cache, CacheArgs
from components.data.database import Database, DatabaseArgs, ReplicaSource
from components.data.database_role_secrets import (
    DatabaseRoleSecrets,
    DatabaseRoleSecretsArgs,
    SecretReplica,
)
from components.data.dr_source import read_primary
from components.data.restore_testing import RestoreTesting, RestoreTestingArgs
from components.platform.state import PlatformState


class DataTierSteps(PlatformState):
    def _build_data_tier(self) -> None:
        """The database, the cache and the backups. A DR stack (standby or active) replicates the
        primary stack's database and uses the DR copies the primary owns (docs/dr.md)."""
        settings, account_id = self._settings, self._account_id
        region, protect = settings.aws.region, settings.data_protection.protect
        dr = settings.dr
        self.dr_primary = read_primary(dr, self.aws_opts) if dr is not None and dr.replicates_from_primary else None
        source = None
        if dr is not None and self.dr_primary is not None:
            source = ReplicaSource(self.dr_primary.database_arn, promoted=dr.is_promoted)
        self.database = Database(
            "database",
            DatabaseArgs(settings.database, settings.network, account_id, region, protect, source),
            opts=self.aws_opts,
        )
        self.cache = Cache(
            "cache",
            CacheArgs(
                settings.cache,
                settings.network,
                account_id,
                region,
                self._stack,
                protect,
            ),
            opts=self.aws_opts,
        )
        self._build_backups()
        self._build_role_secrets()

    def _build_backups(self) -> None:
        """The stack's backups. A DR stack's belong to its primary (the DR bucket, vault and key
        in this region): it creates none, and once promoted backs its database up into that
        vault with a plan of its own."""
        settings = self._settings
        self.backups = None
        self.promoted_backups = None
        if self.dr_primary is None:
            self.backups = Backups(
                "backups",
                BackupsArgs(
                    settings.backups,
                    self.database,
                    self._account_id,
                    self._stack,
                    settings.data_protection.protect,
                    self.dr_provider,
                ),
                opts=self.aws_opts,
            )
            self.backup_store = self.backups.store
            return
        self.backup_store = self.dr_primary.backups
        if settings.dr is not None and settings.dr.is_promoted:
            self.promoted_backups = PromotedBackups(
                "backups",
                settings.backups,
                self._stack,
                self.database,
                self.dr_primary.backup_vault,
                opts=self.aws_opts,
            )

    def _build_role_secrets(self) -> None:
        """Password mode: the roles' own secrets, rotated by AWS (iam mode: IAM tokens instead).
        A DR primary keeps a copy of each in its DR region; a DR stack's pods read those copies."""
        settings = self._settings
        self.role_secrets = None
        self.role_credentials = None
        if settings.database.app_auth != "password":
            return
        if self.dr_primary is not None:
            self.role_credentials = self.dr_primary.role_credentials()
            return
        replica = None
        if self.backups is not None and self.backups.dr_key is not None and settings.backups.dr_region:
            replica = SecretReplica(settings.backups.dr_region, self.backups.dr_key.arn)
        self.role_secrets = DatabaseRoleSecrets(
            "database-roles",
            DatabaseRoleSecretsArgs(settings.database, settings.network, self.database, settings.aws.region, replica),
            opts=self.aws_opts,
        )
        self.role_credentials = self.role_secrets.credentials

    def _build_restore_tests(self) -> None:
        """Monthly restore tests of the database's recovery points in this region, with a check
        of the restored data (components/data/restore_testing.py). A DR stack tests the copies
        its primary keeps in this region's vault (and, once promoted, its own recovery points
        there): where the DR network is, and where a failover would restore from."""
        settings = self._settings
        database = self.database.primary
        if self.backups is not None:
            vault_arn, tested = self.backups.vault.arn, [database.arn]
        else:
            vault_arn = self._dr_vault.arn
            promoted = settings.dr is not None and settings.dr.is_promoted
            tested = [self._dr_source.database_arn, *([database.arn] if promoted else [])]
        self.restore_testing = RestoreTesting(
            "restore-tests",
            RestoreTestingArgs(
                stack=self._stack,
                region=settings.aws.region,
                account_id=self._account_id,
                database=self.database,
                database_identifier=settings.database.identifier,
                network=settings.network,
                vault_arns=[vault_arn],
                protected_resource_arns=tested,
                log_retention_days=settings.database.log_retention_days,
            ),
            opts=self.aws_opts,
        )
