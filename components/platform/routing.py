"""East-west policy inside the cluster, the way in (NGINX, the mesh's traffic split) and the
app hostname's DNS failover records."""

from __future__ import annotations

import pulumi

from components import naming
from components.cluster.app_service import AppService, AppServiceArgs
from components.cluster.authorization_policies import AuthorizationPolicies, AuthorizationPoliciesArgs
from components.cluster.network_policies import NetworkPolicies, NetworkPoliciesArgs
from components.cluster.traffic import Traffic, TrafficArgs
from components.config.edge import static_host, static_zone
from components.edge.dns_failover import DnsFailover, DnsFailoverArgs
from components.edge.edge import Edge, EdgeArgs, preview_host
from components.edge.static_assets_cdn import StaticAssetsCdn, StaticAssetsCdnArgs
from components.platform.state import PlatformState


class RoutingSteps(PlatformState):
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
                origin_verification=self.static_assets.origin_verification if self.static_assets else None,
                load_balancer_log_retention_days=settings.edge.load_balancer_log_retention_days,
                protect=settings.data_protection.protect,
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
        self.load_balancer_logs = self.edge.load_balancer_logs

    def _build_dns_failover(self) -> None:
        """The app hostname's Route 53 failover record and health checks, made in advance in
        both stacks of a DR pair (components/edge/dns_failover.py); none without a hosted zone."""
        settings = self._settings
        dr, arn = settings.dr, settings.ingress.waf.load_balancer_arn
        self.dns_failover = None
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

    def _build_static_assets(self) -> None:
        """CloudFront for the static assets (edge.cdn, docs/edge.md), before the edge: the
        regional WAF enforces the origin header this step stores."""
        settings = self._settings
        cdn, dr = settings.edge.cdn, settings.dr
        self.static_assets = None
        if not cdn.enabled:
            return
        zone = static_zone(cdn, dr.hosted_zone_id if dr else None)
        if zone is None:  # the settings require one
            raise ValueError("edge.cdn is enabled without a hosted zone")
        self.static_assets = StaticAssetsCdn(
            "static-assets",
            StaticAssetsCdnArgs(
                stack=self._stack,
                settings=cdn,
                host=static_host(cdn, settings.domain),
                origin_host=settings.domain,
                hosted_zone_id=zone,
                waf_mode=settings.ingress.waf.mode,
                hsts_max_age_seconds=settings.ingress.hsts_max_age_seconds,
                hsts_include_subdomains=settings.ingress.hsts_include_subdomains,
                account_id=self._account_id,
                protect=settings.data_protection.protect,
            ),
            opts=self.aws_opts,
        )
