"""Who may use the data tier, the database roles and the schema migration, then the workloads
that wait for it."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.database_bootstrap_job import DatabaseBootstrapJob, DatabaseBootstrapJobArgs
from components.cluster.migration_job import MigrationJob, MigrationJobArgs
from components.cluster.workload_track import DR_ROLE_ENV, WorkloadTrack, WorkloadTrackArgs
from components.data.database import DB_NAME, PORT
from components.data.database_roles import bootstrap_sql
from components.identity.app_access import ROLE_CREDENTIALS_SECRETS, AppAccess, AppAccessArgs
from components.identity.backup_archiver_access import BackupArchiverAccess
from components.identity.break_glass_access import BreakGlassAccess, BreakGlassAccessArgs
from components.identity.database_admin_access import MASTER_CREDENTIALS_SECRET, DatabaseAdminAccess
from components.platform.state import PlatformState
from components.release.migrations import kept_snapshot_versions, schema_version


class WorkloadSteps(PlatformState):
    def _build_identity(self) -> None:
        settings = self._settings
        args = AppAccessArgs(
            stack=self._stack,
            region=settings.aws.region,
            namespace=self.namespace,
            namespace_name=settings.namespace,
            irsa=settings.irsa,
            database=self.database,
            cache=self.cache,
            backups=self.backup_store,
            role_secrets=self.role_credentials,
        )
        # Both explicit providers: their children are IAM (AWS) and External Secrets (cluster).
        opts = pulumi.ResourceOptions(parent=self, providers=[self.aws_provider, self.k8s_provider])
        self.app_access = AppAccess("app-access", args, opts=opts)
        # The master credential: for the database bootstrap only, through its own store. A DR
        # standby's replica has none of its own (nor a bootstrap: the roles come with the data).
        self.database_admin_access = (
            DatabaseAdminAccess("database-admin-access", args, opts=opts)
            if self.database.master_secret_arn is not None
            else None
        )
        # The monthly backup copies: the one identity that may write `monthly/`.
        self.backup_archiver_access = BackupArchiverAccess("backup-archiver-access", args, opts=opts)
        break_glass = settings.admin_access.break_glass
        self.break_glass_access = (
            BreakGlassAccess(
                "break-glass-access",
                BreakGlassAccessArgs(access=args, settings=break_glass, network=settings.network),
                opts=opts,
            )
            if break_glass.enabled
            else None
        )

    def _build_database_bootstrap(self) -> None:
        """The database roles (components/data/database_roles.py), created and converged as the
        master user before any migration runs. None on a DR standby's read-only replica: the
        roles and their passwords replicate from the primary with the data."""
        settings = self._settings
        iam = settings.database.app_auth == "iam"
        break_glass = settings.admin_access.break_glass
        self.database_bootstrap = None
        if self.database_admin_access is None:
            return
        self.database_bootstrap = DatabaseBootstrapJob(
            "database-bootstrap",
            DatabaseBootstrapJobArgs(
                stack=self._stack,
                namespace=self.namespace,
                data_cidrs=settings.network.data_cidrs,
                sql=bootstrap_sql(DB_NAME, iam=iam, break_glass=break_glass.access if break_glass.enabled else None),
                host=self.database.address,
                port=PORT,
                database=DB_NAME,
                master_credentials_secret=MASTER_CREDENTIALS_SECRET,
                role_credentials_secrets={} if iam else ROLE_CREDENTIALS_SECRETS,
                after=[self.database_admin_access.master_credentials, *self.app_access.credential_secrets],
            ),
            opts=self.k8s_opts,
        )

    def _build_migration(self) -> None:
        """The schema migration of the schema version (components/release/migrations.py), after a
        snapshot of the database where the stack asks for one; its version's pods wait for it.
        None on a DR standby: its database is a read-only replica, migrated with the primary."""
        settings = self._settings
        self.schema_version = schema_version(settings.release, settings.migrations)
        self.migration = None
        if not settings.migrations.enabled or self.database_bootstrap is None:
            return
        after: list[pulumi.Resource] = [self.database_bootstrap.job]
        if settings.migrations.snapshot_before_migrate:
            snapshots = {
                version: self.database.snapshot_before_migration(version)
                for version in kept_snapshot_versions(settings.migrations, self.schema_version)
            }
            after.append(snapshots[self.schema_version])
        self.migration = MigrationJob(
            "migrations",
            MigrationJobArgs(
                stack=self._stack,
                namespace=self.namespace,
                version=self.schema_version,
                image_repository=settings.image_repository,
                settings=settings.migrations,
                data_cidrs=settings.network.data_cidrs,
                endpoint_cidrs=settings.network.endpoint_cidrs,
                env=self.app_access.migrator_env,
                service_account_annotations=self.app_access.migrator_service_account_annotations,
                after=after,
            ),
            opts=self.k8s_opts,
        )

    def _waits_for_migration(self, version: str) -> list[pulumi.Resource]:
        migrated = self.migration is not None and version == self.schema_version
        return [self.migration.job] if migrated and self.migration is not None else []

    def _build_workloads(self) -> None:
        """One WorkloadTrack per release track of the web workload; workers run one track. A DR
        stack's pods learn its role (PLEXICHAT_DR_ROLE); a standby's run dr.standbyReplicas each."""
        settings = self._settings
        dr = settings.dr
        standby_replicas = dr.standby_replicas if dr is not None and dr.is_standby else None
        env = list(self.app_access.env)
        if dr is not None and dr.replicates_from_primary:
            env.append(k8s.core.v1.EnvVarArgs(name=DR_ROLE_ENV, value=dr.role))
        self.tracks = {}
        for workload_name, workload in settings.workloads.items():
            tracks = self.plan.tracks if workload.role == "web" else (self.plan.worker_track,)
            self.tracks[workload_name] = {
                track.name: WorkloadTrack(
                    f"{workload_name}-{track.name}",
                    WorkloadTrackArgs(
                        stack=self._stack,
                        workload_name=workload_name,
                        workload=workload,
                        track=track,
                        image_repository=settings.image_repository,
                        namespace=self.namespace,
                        env=env,
                        service_account_annotations=self.app_access.service_account_annotations,
                        deployment_annotations=self.app_access.deployment_annotations,
                        wait_for=self._waits_for_migration(track.version),
                        standby_replicas=standby_replicas,
                    ),
                    opts=self.k8s_opts,
                )
                for track in tracks
            }
