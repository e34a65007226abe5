"""Istio AuthorizationPolicies for the app namespace: deny every mesh request, then allow exactly
the callers the app has.

- `allow-nothing`: an ALLOW policy without rules and without a selector. Once a workload has an
  ALLOW policy, a request no ALLOW rule matches is denied, so this one makes every sidecar of
  the namespace deny by default.
- `allow-web-from-ingress`: the NGINX controller's identity (its ServiceAccount's mTLS
  principal) may call the web pods on the web port; no other caller, no other port.

Nothing else calls into the namespace through the mesh: the workers serve no requests (their only
port is the metrics port), no workload calls another (the app talks to PostgreSQL, Redis and
AWS only), and the Jobs run without a sidecar and call nothing in the namespace. What these
policies cannot guard is what bypasses the sidecar: the metrics ports (excluded from it for
Prometheus, which is outside the mesh) and the sidecar's own stats ports; the NetworkPolicies
open those to the monitoring namespace only (components/cluster/network_policies.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.config.cluster import KubernetesSettings

TRUST_DOMAIN = "cluster.local"
"""Istio's default trust domain, the first part of every workload principal."""


def principal(namespace: str, service_account: str) -> str:
    """The mTLS identity of a ServiceAccount's pods, as AuthorizationPolicy `principals` spell it."""
    return f"{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class AuthorizationPoliciesArgs:
    stack: str
    namespace: pulumi.Input[str]
    cluster: KubernetesSettings
    """Where the NGINX controller runs and as which ServiceAccount."""
    web_workload: str
    web_port: int
    """The web container's serving port (an AuthorizationPolicy names the pod's port, not the
    Service's)."""


class AuthorizationPolicies(pulumi.ComponentResource):
    def __init__(self, name: str, args: AuthorizationPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:mesh:AuthorizationPolicies", name, None, opts)
        cluster = args.cluster
        ingress = principal(cluster.ingress_namespace, cluster.ingress_service_account)
        allow_web = self._policy(
            name,
            args,
            "allow-web-from-ingress",
            {
                "selector": {"matchLabels": naming.selector_labels(args.web_workload)},
                "action": "ALLOW",
                "rules": [
                    {
                        "from": [{"source": {"principals": [ingress]}}],
                        "to": [{"operation": {"ports": [str(args.web_port)]}}],
                    }
                ],
            },
        )
        # After the allowance: were the default deny first, NGINX would get 403s in between.
        self._policy(name, args, "allow-nothing", {"action": "ALLOW"}, depends_on=[allow_web])
        self.register_outputs({"ingress_principal": ingress})

    def _policy(
        self,
        name: str,
        args: AuthorizationPoliciesArgs,
        role: str,
        spec: dict[str, Any],
        depends_on: list[pulumi.Resource] | None = None,
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{role}",
            api_version="security.istio.io/v1",
            kind="AuthorizationPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=role, namespace=args.namespace, labels=naming.common_labels(args.stack)
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
