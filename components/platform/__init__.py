"""The whole PlexiChat environment of one stack: the one component `__main__.py` creates. It wires
the others together from the settings and the release plan, in named steps that read top-down like
the runbook, and exposes what operators need as outputs. No logic of its own beyond the wiring.

The steps live beside this file, one module per part of the runbook: `data_tier`, `workloads`,
`routing`, `observability`; `state` declares what they hand each other.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.config.stack import StackSettings
from components.platform.data_tier import DataTierSteps
from components.platform.observability import ObservabilitySteps
from components.platform.routing import RoutingSteps
from components.platform.workloads import WorkloadSteps
from components.release.plan import plan_release


class Platform(DataTierSteps, WorkloadSteps, RoutingSteps, ObservabilitySteps):
    """Every part of one environment, built in the order of the runbook: the explicit providers
    and the namespace, the data tier, who may use it, the workloads, routing, and observability."""

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
        self._build_static_assets()
        self._build_routing()
        self._build_dns_failover()
        self._build_observability()
        self._build_tracing_and_logs()
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
