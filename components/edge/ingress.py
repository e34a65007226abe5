"""NGINX Ingresses for the domain (and the blue-green preview host) and their cert-manager
certificate.

NGINX never splits traffic (no canary annotations): it forwards every request to the web
Service's cluster IP, where its own Istio sidecar applies the VirtualService. That only works if
the request reaches the sidecar addressed to a VirtualService host, so each controller gets the
annotations that make it so:

- F5 NGINX Ingress Controller (default): `nginx.org/use-cluster-ip` sends to the cluster IP
  instead of pod IPs, and the controller always sends `Host: $host` (the Ingress rule's host).
  The VirtualService lists the domain and the preview host among its hosts, so that Host is one
  of them. (Its `nginx.org/proxy-set-headers` cannot replace Host on an Ingress: the template
  still adds its own `Host $host` line.)
- community ingress-nginx (opt-in, end of life): `service-upstream` for the cluster IP, and
  `upstream-vhost` rewrites Host to the Service FQDN (the preview Ingress to the preview host).

The preview host reaches the inactive blue-green colour because the mesh matches it: the
VirtualService's preview route matches the preview header or the preview host as authority.
A stack with DNS failover also serves its health host (`<stack>.health.<domain>`), for the
readiness path only, to the Route 53 health checks (components/edge/dns_failover.py).
No `*-snippet` annotation anywhere (arbitrary NGINX config, CVE-2021-25742 class).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components import naming
from components.cluster.app_service import AppService
from components.config.edge import IngressSettings


def controller_annotations(
    settings: IngressSettings, service: AppService, upstream_host: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """The annotations of one Ingress for the configured controller.

    `upstream_host` is the Host the mesh must see (community controller only; the F5 controller
    sends the rule's host, see module docstring).
    """
    rate = settings.rate_limit_requests_per_second
    idle = settings.websocket_idle_timeout_seconds
    if settings.controller == "f5":
        return {
            "nginx.org/use-cluster-ip": "true",
            "nginx.org/ssl-redirect": "true",
            # Also redirect plain HTTP that the load balancer forwarded (X-Forwarded-Proto).
            "nginx.org/redirect-to-https": "true",
            "nginx.org/hsts": "true",
            "nginx.org/hsts-max-age": str(settings.hsts_max_age_seconds),
            "nginx.org/hsts-include-subdomains": str(settings.hsts_include_subdomains).lower(),
            "nginx.org/limit-req-rate": f"{rate}r/s",
            "nginx.org/limit-req-burst": str(rate * settings.rate_limit_burst_multiplier),
            "nginx.org/limit-req-no-delay": "true",
            "nginx.org/limit-req-reject-code": "429",
            "nginx.org/websocket-services": service.service_name,
            "nginx.org/proxy-read-timeout": f"{idle}s",
            "nginx.org/proxy-send-timeout": f"{idle}s",
        }
    # community ingress-nginx: HSTS is controller-wide there (ConfigMap `hsts`, on by default);
    # no per-Ingress annotation exists for it short of a snippet, which we never use.
    return {
        "nginx.ingress.kubernetes.io/service-upstream": "true",
        "nginx.ingress.kubernetes.io/upstream-vhost": upstream_host,
        "nginx.ingress.kubernetes.io/ssl-redirect": "true",
        "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
        "nginx.ingress.kubernetes.io/limit-rps": str(rate),
        "nginx.ingress.kubernetes.io/limit-burst-multiplier": str(settings.rate_limit_burst_multiplier),
        "nginx.ingress.kubernetes.io/proxy-read-timeout": str(idle),
        "nginx.ingress.kubernetes.io/proxy-send-timeout": str(idle),
    }


def ingresses(
    name: str,
    parent: pulumi.Resource,
    *,
    stack: str,
    namespace: pulumi.Input[str],
    domain: str,
    preview_host: str | None,
    service: AppService,
    settings: IngressSettings,
    health_host: str | None = None,
    health_path: str = "/readyz",
) -> tuple[k8s.networking.v1.Ingress, k8s.networking.v1.Ingress | None, k8s.networking.v1.Ingress | None]:
    """The certificate, the domain's Ingress, (blue-green only) the preview host's Ingress and
    (DNS failover only) the health host's.

    Children of `parent` named `{name}-certificate`, `{name}-ingress`, `{name}-preview` and
    `{name}-health`.
    """
    labels = {**naming.common_labels(stack), **naming.selector_labels("web")}
    secret_name = f"{naming.object_name('web')}-tls"
    certificate = _certificate(
        name,
        parent,
        namespace=namespace,
        labels=labels,
        secret_name=secret_name,
        hosts=[domain] + [host for host in (preview_host, health_host) if host],
        cluster_issuer=settings.cluster_issuer,
    )

    def ingress(
        role: str, host: str, upstream_host: pulumi.Input[str], paths: tuple[str, str] = ("/", "Prefix")
    ) -> k8s.networking.v1.Ingress:
        return k8s.networking.v1.Ingress(
            f"{name}-{role}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.object_name("web") if role == "ingress" else naming.object_name("web", role),
                namespace=namespace,
                labels=labels,
                annotations=controller_annotations(settings, service, upstream_host),
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=settings.class_name,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[host], secret_name=secret_name)],
                rules=[_rule_to_service(host, service, *paths)],
            ),
            # The TLS secret is cert-manager's to create; declare the Certificate first.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[certificate]),
        )

    # The community controller must present the Service FQDN to the mesh; the preview Ingress
    # presents the preview host, which the VirtualService's preview route matches.
    main = ingress("ingress", domain, service.fqdn)
    preview = ingress("preview", preview_host, preview_host) if preview_host else None
    # The Route 53 health check's host (components/edge/dns_failover.py): the readiness path and
    # nothing else.
    health = ingress("health", health_host, service.fqdn, (health_path, "Exact")) if health_host else None
    return main, preview, health


TLS_PROTOCOLS = "TLSv1.3"
"""What NGINX accepts from the load balancer and clients. The load balancer speaks TLS 1.3 to its
targets when its listener has a TLS 1.3 policy (a prerequisite `preflight` checks)."""


def controller_tls(
    name: str, parent: pulumi.Resource, *, stack: str, namespace: str, settings: IngressSettings
) -> k8s.core.v1.ConfigMapPatch:
    """TLS 1.3 only at NGINX: `ssl-protocols` is controller-wide in both controllers (no annotation
    sets it per Ingress), so the program owns that one key of the controller's ConfigMap through a
    server-side-apply patch. A field another manager owns makes `pulumi up` fail, not overwrite."""
    return k8s.core.v1.ConfigMapPatch(
        f"{name}-controller-tls",
        metadata=k8s.meta.v1.ObjectMetaPatchArgs(
            name=settings.config_map_name, namespace=namespace, labels=naming.common_labels(stack)
        ),
        data={"ssl-protocols": TLS_PROTOCOLS},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _certificate(
    name: str,
    parent: pulumi.Resource,
    *,
    namespace: pulumi.Input[str],
    labels: dict[str, str],
    secret_name: str,
    hosts: list[str],
    cluster_issuer: str,
) -> k8s.apiextensions.CustomResource:
    """One cert-manager Certificate for every host; cert-manager writes it to `secret_name`."""
    return k8s.apiextensions.CustomResource(
        f"{name}-certificate",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=secret_name, namespace=namespace, labels=labels),
        spec={
            "secretName": secret_name,
            "dnsNames": hosts,
            "issuerRef": {"name": cluster_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            # A fresh key on every renewal, so a leaked key dies with its certificate.
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _rule_to_service(
    host: str, service: AppService, path: str = "/", path_type: str = "Prefix"
) -> k8s.networking.v1.IngressRuleArgs:
    """Everything for `host` (under `path`) goes to the web Service; the mesh picks the track."""
    return k8s.networking.v1.IngressRuleArgs(
        host=host,
        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
            paths=[
                k8s.networking.v1.HTTPIngressPathArgs(
                    path=path,
                    path_type=path_type,
                    backend=k8s.networking.v1.IngressBackendArgs(
                        service=k8s.networking.v1.IngressServiceBackendArgs(
                            name=service.service_name,
                            # A number, not the port name: the F5 controller's use-cluster-ip
                            # does not resolve named ports.
                            port=k8s.networking.v1.ServiceBackendPortArgs(number=service.port),
                        )
                    ),
                )
            ]
        ),
    )
