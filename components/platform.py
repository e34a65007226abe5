"""The whole PlexiChat environment of one stack: the one component `__main__.py` creates.

It wires the others together from the validated settings and the release plan, and exposes what
operators need as outputs. It holds no logic of its own beyond the wiring.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import SecretStr

from components import naming
from components.cluster.app_service import AppService, AppServiceArgs
from components.cluster.network_policies import NetworkPolicies, NetworkPoliciesArgs
from components.cluster.traffic import Traffic, TrafficArgs
from components.cluster.workload_track import WorkloadTrack, WorkloadTrackArgs
from components.config.monitoring import RECEIVERS
from components.config.stack import StackSettings
from components.data.backups import Backups, BackupsArgs
from components.data.cache import Cache, CacheArgs
from components.data.database import Database, DatabaseArgs
from components.edge.edge import Edge, EdgeArgs, preview_host
from components.identity.app_access import AppAccess, AppAccessArgs
from components.observability.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.observability.alerting import Alerting, AlertingArgs
from components.observability.cloud_alarms import CloudAlarms, CloudAlarmsArgs
from components.release.plan import ReleasePlan, plan_release


class Platform(pulumi.ComponentResource):
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
        cluster = settings.kubernetes

        # Every Kubernetes object goes through this explicit provider, never the ambient
        # default one, so a stack can only ever touch the cluster its config names.
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s",
            context=cluster.context,
            namespace=settings.namespace,
            render_yaml_to_directory=cluster.render_yaml_to_directory,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.k8s_provider)

        # Likewise for AWS: region from the validated settings, and one tag set on everything.
        self.aws_provider = aws.Provider(
            f"{name}-aws",
            region=settings.aws.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=naming.aws_tags(stack)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_opts = pulumi.ResourceOptions(parent=self, provider=self.aws_provider)

        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=settings.namespace,
                labels={
                    **naming.common_labels(stack),
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
            opts=k8s_opts,
        )
        namespace_name = namespace.metadata.name

        # Data tier, before the workloads: they get its endpoints and the IRSA role.
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(provider=self.aws_provider)
        ).account_id
        protect = settings.data_protection.protect
        self.database = Database(
            "database",
            DatabaseArgs(settings.database, settings.network, account_id, settings.aws.region, protect),
            opts=self.aws_opts,
        )
        self.cache = Cache(
            "cache",
            CacheArgs(settings.cache, settings.network, _secret(settings.redis_auth_token),
                      account_id, settings.aws.region, stack, protect),
            opts=self.aws_opts,
        )
        # DR lives in a second region, through its own explicit provider.
        self.dr_provider = (
            aws.Provider(
                f"{name}-aws-dr",
                region=settings.backups.dr_region,
                default_tags=aws.ProviderDefaultTagsArgs(tags=naming.aws_tags(stack)),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if settings.backups.dr_region
            else None
        )
        self.backups = Backups(
            "backups",
            BackupsArgs(settings.backups, self.database, account_id, stack, protect, self.dr_provider),
            opts=self.aws_opts,
        )
        self.app_access = AppAccess(
            "app-access",
            AppAccessArgs(
                stack=stack, region=settings.aws.region, namespace=namespace_name,
                namespace_name=settings.namespace, irsa=settings.irsa, database=self.database,
                cache=self.cache, backups=self.backups,
            ),
            # Both explicit providers: its children are IAM (AWS) and External Secrets (cluster).
            opts=pulumi.ResourceOptions(parent=self, providers=[self.aws_provider, self.k8s_provider]),
        )

        self.tracks: dict[str, dict[str, WorkloadTrack]] = {}
        for workload_name, workload in settings.workloads.items():
            tracks = self.plan.tracks if workload.role == "web" else (self.plan.worker_track,)
            self.tracks[workload_name] = {
                track.name: WorkloadTrack(
                    f"{workload_name}-{track.name}",
                    WorkloadTrackArgs(
                        stack=stack,
                        workload_name=workload_name,
                        workload=workload,
                        track=track,
                        image_repository=settings.image_repository,
                        namespace=namespace_name,
                        env=self.app_access.env,
                        service_account_annotations=self.app_access.service_account_annotations,
                        deployment_annotations=self.app_access.deployment_annotations,
                    ),
                    opts=k8s_opts,
                )
                for track in tracks
            }

        web = settings.workloads["web"]
        self.web_service = AppService(
            "web",
            AppServiceArgs(stack=stack, workload_name="web", port=web.port, namespace=namespace_name),
            opts=k8s_opts,
        )

        NetworkPolicies(
            "app",
            NetworkPoliciesArgs(
                stack=stack,
                namespace=namespace_name,
                cluster=cluster,
                vpc_cidr=settings.network.vpc_cidr,
                web_workload="web",
                web_port=web.port,
                metrics_ports=tuple(w.metrics_port for w in settings.workloads.values()),
            ),
            opts=k8s_opts,
        )

        # Traffic: NGINX (edge) forwards every request to the web Service; the mesh (traffic)
        # alone splits it between the release tracks. Blue-green adds the preview host.
        preview = preview_host(settings.domain) if self.plan.preview_track else None
        self.edge = Edge(
            "web",
            EdgeArgs(
                stack=stack,
                namespace=namespace_name,
                domain=settings.domain,
                preview_host=preview,
                service=self.web_service,
                settings=settings.ingress,
                account_id=account_id,
                region=settings.aws.region,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=[self.k8s_provider, self.aws_provider]),
        )
        self.traffic = Traffic(
            "web",
            TrafficArgs(
                stack=stack,
                namespace=namespace_name,
                plan=self.plan,
                settings=settings.traffic,
                service=self.web_service,
                deployments={track: w.deployment for track, w in self.tracks["web"].items()},
                public_hosts=[settings.domain] + ([preview] if preview else []),
                preview_host=preview,
            ),
            opts=k8s_opts,
        )
        self.preview_url = self.edge.preview_url
        # Monitoring: scraping, rules, routing, smoke probe, dashboard; then the topic the
        # CloudWatch alarms on the database and cache notify.
        receiver_secrets = {
            kind: _secret(value) for kind, receiver in RECEIVERS.items()
            if (value := getattr(settings, receiver.setting)) is not None
        }
        self.alerting = Alerting(
            "monitoring",
            AlertingArgs(
                stack=stack,
                namespace=namespace_name,
                namespace_name=settings.namespace,
                monitoring=settings.monitoring,
                alerting=settings.alerting,
                health_url=f"https://{settings.domain}{web.probes.readiness_path}",
                receiver_secrets=receiver_secrets,
            ),
            opts=k8s_opts,
        )
        pager_duty_url = None
        if settings.alerting.critical == "pagerduty":  # settings guarantee the URL is then set
            pager_duty_url = _secret(settings.pager_duty_cloudwatch_url)
        self.alarm_topic = AlarmTopic(
            "alarms", AlarmTopicArgs(stack=stack, pager_duty_url=pager_duty_url), opts=self.aws_opts
        )
        # The same thresholds as the Prometheus rules: one number changes both.
        self.cloud_alarms = CloudAlarms(
            "data",
            CloudAlarmsArgs(
                topic=self.alarm_topic.topic,
                thresholds=settings.monitoring.thresholds,
                db_primary_identifier=self.database.primary.identifier,
                db_max_connections=settings.database.max_connections,
                db_replica_identifiers={
                    f"replica-{i + 1}": replica.identifier
                    for i, replica in enumerate(self.database.replicas)
                },
                cache_replication_group_id=self.cache.group.id,
                cache_node_count=settings.cache.nodes,
            ),
            opts=self.aws_opts,
        )

        self.url = pulumi.Output.from_input(f"https://{settings.domain}")
        self.namespace = namespace_name
        self.register_outputs(
            {
                "url": self.url,
                "namespace": self.namespace,
                "release_strategy": self.plan.strategy,
                "tracks": {t.name: t.version for t in self.plan.tracks},
            }
        )


def _secret(value: SecretStr) -> pulumi.Output[str]:
    """A secret setting as a Pulumi secret: the one place a secret's value leaves its SecretStr."""
    return pulumi.Output.secret(value.get_secret_value())
