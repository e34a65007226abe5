"""What the steps of `Platform` share: the settings, the providers and what each step builds for
the ones after it. The steps live in one module per part of the runbook (data tier, workloads,
routing, observability); each reads only what an earlier step declared here."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster.app_service import AppService
from components.cluster.database_bootstrap_job import DatabaseBootstrapJob
from components.cluster.migration_job import MigrationJob
from components.cluster.traffic import Traffic
from components.cluster.workload_track import WorkloadTrack
from components.config.stack import StackSettings
from components.data.backups import Backups, BackupStore, PromotedBackups
from components.data.cache import Cache
from components.data.database import Database
from components.data.database_role_secrets import DatabaseRoleSecrets, RoleCredentials
from components.data.dr_source import PrimarySource
from components.data.restore_testing import RestoreTesting
from components.edge.dns_failover import DnsFailover
from components.edge.edge import Edge
from components.edge.static_assets_cdn import StaticAssetsCdn
from components.identity.app_access import AppAccess
from components.identity.backup_archiver_access import BackupArchiverAccess
from components.identity.break_glass_access import BreakGlassAccess
from components.identity.database_admin_access import DatabaseAdminAccess
from components.observability.alarm_topic import AlarmTopic
from components.observability.alerting import Alerting
from components.observability.application_logs import ApplicationLogs
from components.observability.cloud_alarms import CloudAlarms
from components.observability.data_path_alarms import DataPathAlarms, VaultRef
from components.observability.tracing import Tracing
from components.release.plan import ReleasePlan


class PlatformState(pulumi.ComponentResource):
    """The attributes of `Platform`, by the step that sets them."""

    # __init__ and the providers
    _component_name: str
    _settings: StackSettings
    _stack: str
    plan: ReleasePlan
    url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    k8s_provider: k8s.Provider
    k8s_opts: pulumi.ResourceOptions
    aws_provider: aws.Provider
    aws_opts: pulumi.ResourceOptions
    dr_provider: aws.Provider | None
    _account_id: pulumi.Output[str]
    # data tier
    dr_primary: PrimarySource | None
    database: Database
    cache: Cache
    backups: Backups | None
    promoted_backups: PromotedBackups | None
    backup_store: BackupStore
    role_secrets: DatabaseRoleSecrets | None
    role_credentials: RoleCredentials | None
    restore_testing: RestoreTesting
    # workloads
    app_access: AppAccess
    database_admin_access: DatabaseAdminAccess | None
    backup_archiver_access: BackupArchiverAccess
    break_glass_access: BreakGlassAccess | None
    database_bootstrap: DatabaseBootstrapJob | None
    schema_version: str
    migration: MigrationJob | None
    tracks: dict[str, dict[str, WorkloadTrack]]
    # routing
    static_assets: StaticAssetsCdn | None
    load_balancer_logs: aws.s3.Bucket | None
    web_service: AppService
    edge: Edge
    traffic: Traffic
    preview_url: str | None
    dns_failover: DnsFailover | None
    # observability
    alerting: Alerting
    alarm_topic: AlarmTopic
    cloud_alarms: CloudAlarms
    data_path_alarms: DataPathAlarms
    tracing: Tracing
    application_logs: ApplicationLogs

    @property
    def _dr_source(self) -> PrimarySource:
        if self.dr_primary is None:
            raise ValueError("only a DR stack reads its primary's DR copies")
        return self.dr_primary

    @property
    def _dr_vault(self) -> VaultRef:
        """The primary's DR vault in this region, which a DR stack's backups use."""
        name = self._dr_source.backup_vault
        arn = pulumi.Output.concat(
            "arn:aws:backup:", self._settings.aws.region, ":", self._account_id, ":backup-vault:", name
        )
        return VaultRef(name, arn)
