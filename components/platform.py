"""The whole PlexiChat environment of one stack: the one component `__main__.py` creates. It wires
the others together from the settings and the release plan, in named steps that read top-down like
the runbook, and exposes what operators need as outputs. No logic of its own beyond the wiring."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from components import naming
from components.cluster.app_service import AppService, AppServiceArgs
from components.cluster.authorization_policies import AuthorizationPolicies, AuthorizationPoliciesArgs
from components.cluster.database_bootstrap_job import DatabaseBootstrapJob, DatabaseBootstrapJobArgs
from components.cluster.migration_job import MigrationJob, MigrationJobArgs
from components.cluster.network_policies import NetworkPolicies, NetworkPoliciesArgs
from components.cluster.traffic import Traffic, TrafficArgs
from components.cluster.workload_track import DR_ROLE_ENV, WorkloadTrack, WorkloadTrackArgs
from components.config.monitoring import RECEIVERS
from components.config.stack import StackSettings
from components.data.backups import Backups, BackupsArgs, PromotedBackups
from components.data.cache import Cache, CacheArgs
from components.data.database import DB_NAME, PORT, Database, DatabaseArgs, ReplicaSource
from components.data.database_role_secrets import (
    DatabaseRoleSecrets,
    DatabaseRoleSecretsArgs,
    RoleCredentials,
    SecretReplica,
)
from components.data.database_roles import bootstrap_sql
from components.data.disaster_recovery import REPLICATION_RULE_ID
from components.data.dr_source import PrimarySource, read_primary
from components.data.restore_testing import RestoreTesting, RestoreTestingArgs
from components.edge.dns_failover import DnsFailover, DnsFailoverArgs
from components.edge.edge import Edge, EdgeArgs, preview_host
from components.identity.app_access import ROLE_CREDENTIALS_SECRETS, AppAccess, AppAccessArgs
from components.identity.backup_archiver_access import BackupArchiverAccess
from components.identity.database_admin_access import MASTER_CREDENTIALS_SECRET, DatabaseAdminAccess
from components.observability.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.observability.alerting import Alerting, AlertingArgs
from components.observability.cloud_alarms import CloudAlarms, CloudAlarmsArgs
from components.observability.data_path_alarms import (
    BucketReplication,
    DataPathAlarms,
    DataPathAlarmsArgs,
    DrReplica,
    VaultRef,
)
from components.release.migrations import kept_snapshot_versions, schema_version
from components.release.plan import ReleasePlan, plan_release


class Platform(pulumi.ComponentResource):
    """Every part of one environment, built in the order of the runbook: the explicit providers
    and the namespace, the data tier, who may use it, the workloads, routing, and observability."""

    plan: ReleasePlan
    url: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("plexichat:index:Platform", name, None, opts)
        self.plan = plan_release(settings.release)
        # Not `_name`: pulumi.Resource keeps its own attributes with leading underscores.
        self._component_name, self._settings, self._stack = name, settings, stack
        self._build_providers()
        self.namespace = self._build_namespace()
        # The data tier comes before the workloads: they get its endpoints and the IRSA role.
        self._account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(provider=self.aws_provider)
        ).account_id
        self._build_data_tier()
        self._build_restore_tests()
        self._build_identity()
        self._build_database_bootstrap()
        self._build_migration()
        self._build_workloads()
        self._build_east_west()
        self._build_routing()
        self._build_dns_failover()
        self._build_observability()
        self._build_data_path_alarms()
        self.url = pulumi.Output.from_input(f"https://{settings.domain}")
        self.register_outputs(
            {
                "url": self.url,
                "namespace": self.namespace,
                "release_strategy": self.plan.strategy,
                "tracks": {t.name: t.version for t in self.plan.tracks},
            }
        )

    def _build_providers(self) -> None:
        settings, name = self._settings, self._component_name
        # Every Kubernetes object goes through this explicit provider, never the ambient
        # default one, so a stack can only ever touch the cluster its config names.
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            context=settings.kubernetes.context,
            namespace=settings.namespace,
            render_yaml_to_directory=settings.kubernetes.render_yaml_to_directory,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.k8s_provider)
        # Likewise for AWS: region from the validated settings, and one tag set on everything.
        self.aws_provider = self._regional_aws_provider(f"{name}-aws", settings.aws.region)
        self.aws_opts = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)
        # DR lives in a second region, through its own explicit provider.
        dr_region = settings.backups.dr_region
        self.dr_provider = self._regional_aws_provider(f"{name}-aws-dr", dr_region) if dr_region else None

    def _regional_aws_provider(self, name: str, region: str) -> aws.Provider:
        return aws.Provider(
            name,
            region=region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=naming.aws_tags(self._stack)),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _build_namespace(self) -> pulumi.Output[str]:
        namespace = k8s.core.v1.Namespace(
            f"{self._component_name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self._settings.namespace,
                labels={
                    **naming.common_labels(self._stack),
                    # Sidecars in every pod: mTLS and the mesh's traffic split. Under Pod
                    # Security `restricted` this needs the Istio CNI node agent (no init
                    # container with NET_ADMIN), a prerequisite of the cluster.
                    "istio-injection": "enabled",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            ),
            opts=self.k8s_opts,
        )
        return namespace.metadata.name

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
        self.backups: Backups | None = None
        self.promoted_backups: PromotedBackups | None = None
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
        self.role_secrets: DatabaseRoleSecrets | None = None
        self.role_credentials: RoleCredentials | None = None
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

    def _build_database_bootstrap(self) -> None:
        """The database roles (components/data/database_roles.py), created and converged as the
        master user before any migration runs. None on a DR standby's read-only replica: the
        roles and their passwords replicate from the primary with the data."""
        settings = self._settings
        iam = settings.database.app_auth == "iam"
        self.database_bootstrap: DatabaseBootstrapJob | None = None
        if self.database_admin_access is None:
            return
        self.database_bootstrap = DatabaseBootstrapJob(
            "database-bootstrap",
            DatabaseBootstrapJobArgs(
                stack=self._stack,
                namespace=self.namespace,
                data_cidrs=settings.network.data_cidrs,
                sql=bootstrap_sql(DB_NAME, iam=iam),
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
        self.migration: MigrationJob | None = None
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
        self.tracks: dict[str, dict[str, WorkloadTrack]] = {}
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

    def _build_east_west(self) -> None:
        """Inside the cluster: deny everything, then allow the flows the app needs, per pod and
        port (NetworkPolicies) and per workload identity (Istio AuthorizationPolicies)."""
        settings, stack = self._settings, self._stack
        web = settings.workloads["web"]
        NetworkPolicies(
            "app",
            NetworkPoliciesArgs(
                stack=stack,
                namespace=self.namespace,
                cluster=settings.kubernetes,
                network=settings.network,
                web_workload="web",
                web_port=web.port,
                # A worker's only port is its metrics port, which bypasses the sidecar.
                serving_ports=tuple(w.port for w in settings.workloads.values() if w.port != w.metrics_port),
                metrics_ports=tuple(w.metrics_port for w in settings.workloads.values()),
            ),
            opts=self.k8s_opts,
        )
        AuthorizationPolicies(
            "app",
            AuthorizationPoliciesArgs(
                stack=stack,
                namespace=self.namespace,
                cluster=settings.kubernetes,
                web_workload="web",
                web_port=web.port,
            ),
            opts=self.k8s_opts,
        )

    def _build_routing(self) -> None:
        """NGINX (edge) forwards every request to the web Service; the mesh (traffic) alone
        splits it between the release tracks. Blue-green adds the preview host."""
        settings, stack = self._settings, self._stack
        web = settings.workloads["web"]
        self.web_service = AppService(
            "web",
            AppServiceArgs(stack=stack, workload_name="web", port=web.port, namespace=self.namespace),
            opts=self.k8s_opts,
        )
        preview = preview_host(settings.domain) if self.plan.preview_track else None
        dr = settings.dr
        health_host = naming.dns_health_host(stack, settings.domain) if dr and dr.hosted_zone_id else None
        self.edge = Edge(
            "web",
            EdgeArgs(
                stack=stack,
                namespace=self.namespace,
                domain=settings.domain,
                preview_host=preview,
                service=self.web_service,
                settings=settings.ingress,
                controller_namespace=settings.kubernetes.ingress_namespace,
                account_id=self._account_id,
                region=settings.aws.region,
                health_host=health_host,
                readiness_path=web.probes.readiness_path,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=[self.k8s_provider, self.aws_provider]),
        )
        self.traffic = Traffic(
            "web",
            TrafficArgs(
                stack=stack,
                namespace=self.namespace,
                plan=self.plan,
                settings=settings.traffic,
                service=self.web_service,
                deployments={track: w.deployment for track, w in self.tracks["web"].items()},
                public_hosts=[settings.domain] + [host for host in (preview, health_host) if host],
                preview_host=preview,
            ),
            opts=self.k8s_opts,
        )
        self.preview_url = self.edge.preview_url

    def _build_dns_failover(self) -> None:
        """The app hostname's Route 53 failover record and health checks, made in advance in
        both stacks of a DR pair (components/edge/dns_failover.py); none without a hosted zone."""
        settings = self._settings
        dr, arn = settings.dr, settings.ingress.waf.load_balancer_arn
        self.dns_failover: DnsFailover | None = None
        if dr is None or dr.hosted_zone_id is None or arn is None:  # the settings require the ARN
            return
        self.dns_failover = DnsFailover(
            "app-dns",
            DnsFailoverArgs(
                stack=self._stack,
                domain=settings.domain,
                dr=dr,
                hosted_zone_id=dr.hosted_zone_id,
                load_balancer_arn=arn,
                readiness_path=settings.workloads["web"].probes.readiness_path,
            ),
            opts=self.aws_opts,
        )

    def _build_observability(self) -> None:
        """Scraping, rules, routing, smoke probe, dashboard; then the topic the CloudWatch
        alarms on the database and cache notify, with the same thresholds as the rules."""
        settings = self._settings
        receiver_secrets = {
            kind: _secret(value)
            for kind, receiver in RECEIVERS.items()
            if (value := getattr(settings, receiver.setting)) is not None
        }
        readiness_path = settings.workloads["web"].probes.readiness_path
        self.alerting = Alerting(
            "monitoring",
            AlertingArgs(
                stack=self._stack,
                namespace=self.namespace,
                namespace_name=settings.namespace,
                monitoring=settings.monitoring,
                # A DR standby pages for nothing in the cluster (docs/dr.md).
                alerting=settings.alert_routing,
                health_url=f"https://{settings.domain}{readiness_path}",
                account_id=self._account_id,
                irsa=settings.irsa,
                # The receivers' secret reaches the cluster through the app's store.
                secret_store=self.app_access.store_access,
                receiver_secrets=receiver_secrets,
            ),
            # Both explicit providers: Prometheus Operator objects, and the receivers' secret.
            opts=pulumi.ResourceOptions(parent=self, providers=[self.k8s_provider, self.aws_provider]),
        )
        pager_duty_url = None
        if settings.pager_duty_cloudwatch_url is not None and settings.alerting.critical == "pagerduty":
            # (settings require the URL whenever critical alerts page). A DR standby's topic pages
            # too: its replication alarms notify it; its other alarms are off (CloudAlarms.notify).
            pager_duty_url = _secret(settings.pager_duty_cloudwatch_url)
        self.alarm_topic = AlarmTopic(
            "alarms", AlarmTopicArgs(stack=self._stack, pager_duty_url=pager_duty_url), opts=self.aws_opts
        )
        self.cloud_alarms = CloudAlarms(
            "data",
            CloudAlarmsArgs(
                topic=self.alarm_topic.topic,
                thresholds=settings.monitoring.thresholds,
                db_primary_identifier=self.database.primary.identifier,
                db_max_connections=settings.database.max_connections,
                db_replica_identifiers={
                    f"replica-{i + 1}": replica.identifier for i, replica in enumerate(self.database.replicas)
                },
                cache_replication_group_id=self.cache.group.id,
                cache_node_count=settings.cache.nodes,
                notify=not (settings.dr is not None and settings.dr.pages_only_for_replication),
            ),
            opts=self.aws_opts,
        )

    def _build_data_path_alarms(self) -> None:
        """Alarms on the data path to the DR region, in this region (components/observability/
        data_path_alarms.py): failed backup, copy and restore jobs, a missing recovery point,
        late or failed S3 replication, a failed restore test; in a standby, the DR replica's lag
        (it lives here, and so must its alarm: CloudWatch notifies topics of its own region)."""
        settings, backups, dr = self._settings, self.backups, self._settings.dr
        vaults, replication, replica = {}, None, None
        if backups is not None:
            vaults["primary"] = VaultRef(backups.vault.name, backups.vault.arn)
            if backups.dr_bucket is not None:
                replication = BucketReplication(backups.bucket.bucket, backups.dr_bucket.bucket, REPLICATION_RULE_ID)
        elif dr is not None and dr.is_promoted:
            vaults["dr"] = self._dr_vault  # the promoted database backs up into it
        if dr is not None and dr.is_standby:
            replica = DrReplica(self.database.primary.identifier, dr.replica_lag_alarm_minutes)
        self.data_path_alarms = DataPathAlarms(
            "data-path",
            DataPathAlarmsArgs(
                topic=self.alarm_topic.topic,
                runbook_url=settings.monitoring.runbook_url,
                vaults=vaults,
                replication=replication,
                dr_replica=replica,
                restore_validator=self.restore_testing.validator,
            ),
            opts=self.aws_opts,
        )


def _secret(value: SecretStr) -> pulumi.Output[str]:
    """A secret setting as a Pulumi secret: the one place a secret's value leaves its SecretStr."""
    return pulumi.Output.secret(value.get_secret_value())
