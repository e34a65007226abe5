"""The edge: NGINX Ingresses for the domain (and the blue-green preview host), their cert-manager
certificate, and the AWS WAF web ACL on the load balancer in front of the controller.

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
No `*-snippet` annotation anywhere (arbitrary NGINX config, CVE-2021-25742 class).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_aws import wafv2

from components import naming
from components.cluster.app_service import AppService
from components.config.edge import IngressSettings
from components.data.shared import data_key, log_group, logs_may_use_key

MANAGED_RULE_GROUPS = (
    ("aws-common", "AWSManagedRulesCommonRuleSet"),
    ("aws-known-bad-inputs", "AWSManagedRulesKnownBadInputsRuleSet"),
    ("aws-sqli", "AWSManagedRulesSQLiRuleSet"),
)
"""(rule name, AWS managed rule group): common exploits (OWASP), known bad inputs (Log4j and the
like), SQL injection."""


def preview_host(domain: str) -> str:
    """`preview.<domain>`: where the inactive blue-green colour is smoke-tested before a flip."""
    return f"preview.{domain}"


@dataclass(frozen=True)
class EdgeArgs:
    stack: str
    namespace: pulumi.Input[str]
    domain: str
    preview_host: str | None
    """Only for blue-green; None otherwise (no preview Ingress)."""
    service: AppService
    settings: IngressSettings
    account_id: pulumi.Input[str]
    region: str
    """Where the WAF logs' key lets CloudWatch Logs use it."""


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


class Edge(pulumi.ComponentResource):
    """Needs the Kubernetes and the AWS provider (pass both through `providers=`)."""

    web_acl: wafv2.WebAcl

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:ingress:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        labels = {**naming.common_labels(args.stack), **naming.selector_labels("web")}
        hosts = [args.domain] + ([args.preview_host] if args.preview_host else [])
        secret_name = f"{naming.object_name('web')}-tls"

        certificate = k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=secret_name, namespace=args.namespace, labels=labels
            ),
            spec={
                "secretName": secret_name,
                "dnsNames": hosts,
                "issuerRef": {"name": s.cluster_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
                # A fresh key on every renewal, so a leaked key dies with its certificate.
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
            opts=child,
        )

        def ingress(role: str, host: str, upstream_host: pulumi.Input[str]) -> k8s.networking.v1.Ingress:
            return k8s.networking.v1.Ingress(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=naming.object_name("web") if role == "ingress" else naming.object_name("web", role),
                    namespace=args.namespace,
                    labels=labels,
                    annotations=controller_annotations(s, args.service, upstream_host),
                ),
                spec=k8s.networking.v1.IngressSpecArgs(
                    ingress_class_name=s.class_name,
                    tls=[k8s.networking.v1.IngressTLSArgs(hosts=[host], secret_name=secret_name)],
                    rules=[
                        k8s.networking.v1.IngressRuleArgs(
                            host=host,
                            http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                                paths=[
                                    k8s.networking.v1.HTTPIngressPathArgs(
                                        path="/",
                                        path_type="Prefix",
                                        backend=k8s.networking.v1.IngressBackendArgs(
                                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                                name=args.service.service_name,
                                                # A number, not the port name: the F5 controller's
                                                # use-cluster-ip does not resolve named ports.
                                                port=k8s.networking.v1.ServiceBackendPortArgs(
                                                    number=args.service.port
                                                ),
                                            )
                                        ),
                                    )
                                ]
                            ),
                        )
                    ],
                ),
                # The TLS secret is cert-manager's to create; declare the Certificate first.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[certificate]),
            )

        self.ingress = ingress("ingress", args.domain, args.service.fqdn)
        self.preview_ingress = (
            ingress("preview", args.preview_host, args.preview_host) if args.preview_host else None
        )

        waf = s.waf
        acl_name = f"plexichat-{args.stack}"
        counting = waf.mode == "count"

        def visibility(metric: str) -> dict:
            return {
                "cloudwatch_metrics_enabled": True,
                "metric_name": f"{acl_name}-{metric}",
                "sampled_requests_enabled": True,
            }

        rules = [
            wafv2.WebAclRuleArgs(
                name="rate-limit-per-ip",
                priority=0,  # cheapest first: a flood is cut before the managed rules run
                action=wafv2.WebAclRuleActionArgs(**({"count": {}} if counting else {"block": {}})),
                statement=wafv2.WebAclRuleStatementArgs(
                    rate_based_statement=wafv2.WebAclRuleStatementRateBasedStatementArgs(
                        limit=waf.rate_limit_per_5_minutes, aggregate_key_type="IP"
                    )
                ),
                visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**visibility("rate-limit-per-ip")),
            ),
            *(
                wafv2.WebAclRuleArgs(
                    name=rule_name,
                    priority=10 * (index + 1),
                    # `none` keeps the group's own block actions; `count` only counts them.
                    override_action=wafv2.WebAclRuleOverrideActionArgs(
                        **({"count": {}} if counting else {"none": {}})
                    ),
                    statement=wafv2.WebAclRuleStatementArgs(
                        managed_rule_group_statement=wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                            name=group, vendor_name="AWS"
                        )
                    ),
                    visibility_config=wafv2.WebAclRuleVisibilityConfigArgs(**visibility(rule_name)),
                )
                for index, (rule_name, group) in enumerate(MANAGED_RULE_GROUPS)
            ),
        ]
        self.web_acl = wafv2.WebAcl(
            f"{name}-waf",
            name=acl_name,
            description=f"PlexiChat {args.stack}: managed rule groups and a per-IP rate limit",
            scope="REGIONAL",
            default_action=wafv2.WebAclDefaultActionArgs(allow={}),
            rules=rules,
            visibility_config=wafv2.WebAclVisibilityConfigArgs(**visibility("web-acl")),
            opts=child,
        )
        # WAF logs only to destinations named `aws-waf-logs-*`. They hold client IPs and URLs:
        # encrypted with a key of their own.
        log_name = f"aws-waf-logs-{acl_name}"
        log_key = data_key(
            f"{name}-waf-logs-key", f"PlexiChat {args.stack}: WAF logs", args.account_id, child,
            extra_statements=[logs_may_use_key(args.region, args.account_id, [log_name])],
        )
        waf_logs = log_group(f"{name}-waf-logs", log_name, waf.log_retention_days, log_key, child)
        wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[waf_logs.arn],
            # Session credentials must not end up in logs that many people can read.
            redacted_fields=[
                wafv2.WebAclLoggingConfigurationRedactedFieldArgs(
                    single_header=wafv2.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
                )
                for header in ("authorization", "cookie")
            ],
            opts=child,
        )
        if waf.load_balancer_arn is not None:
            wafv2.WebAclAssociation(
                f"{name}-waf-association",
                resource_arn=waf.load_balancer_arn,
                web_acl_arn=self.web_acl.arn,
                opts=child,
            )

        self.url = f"https://{args.domain}"
        self.preview_url = f"https://{args.preview_host}" if args.preview_host else None
        self.register_outputs(
            {"url": self.url, "preview_url": self.preview_url, "web_acl_arn": self.web_acl.arn}
        )
