"""Monitoring of one stack in the cluster: scraping, alert rules, routing, smoke probe, dashboard.

All of it is Prometheus Operator custom resources (the operator is a cluster prerequisite):
- a PodMonitor, not a ServiceMonitor: workers have no Service, and scraping pods directly lets
  `podTargetLabels` copy the track label onto every series, so a canary is judged on its own;
- a PrometheusRule built by `alert_rules` (pure, proven by promtool in the tests);
- an AlertmanagerConfig only when `alerting` routes a severity somewhere: each severity goes to
  its receiver, and a critical alert mutes the warning about the same signal and track. Receiver
  URLs and keys (Pulumi secrets in the stack's config) go to a Secrets Manager secret with a key
  of its own, and External Secrets brings them into the Secret the AlertmanagerConfig references,
  through the app's SecretStore (whose role this component lets read that secret alone): no
  manifest holds them, not even one rendered to a directory (`kubernetes.renderYamlToDirectory`).
  Their issuers (the chat tool, PagerDuty) create them, so they are not rotated here: a new URL
  or key is a config change (docs/data-tier.md 'Secrets and their rotation');
- a Blackbox-exporter Probe of the public readiness URL (the runbook's smoke test);
- a Grafana dashboard ConfigMap (`grafana_dashboard: "1"`, found by the Grafana sidecar).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.config.data import IrsaSettings
from components.config.monitoring import RECEIVERS, AlertingSettings, MonitoringSettings
from components.data.shared import data_key
from components.identity.external_secrets import StoreAccess, external_secret
from components.observability import alert_rules
from components.observability.dashboard import dashboard

DISCARD_RECEIVER = "discard"
"""Receives what no severity route takes (an alert without severity is a bug the tests catch)."""
RECEIVERS_SECRET = f"{naming.APP}-alert-receivers"
"""The Kubernetes Secret External Secrets keeps the receivers' URLs and keys in."""


@dataclass(frozen=True)
class AlertingArgs:
    stack: str
    namespace: pulumi.Input[str]
    """The app namespace (from the Namespace resource, so it exists first)."""
    namespace_name: str
    """The same namespace as plain text: rule expressions filter on it."""
    monitoring: MonitoringSettings
    alerting: AlertingSettings
    health_url: str
    """Public URL the smoke probe checks, e.g. https://app.plexichat.com/readyz."""
    account_id: pulumi.Input[str]
    irsa: IrsaSettings
    """External Secrets' refresh interval."""
    secret_store: StoreAccess
    """The SecretStore that delivers the receivers' secret (the app's)."""
    receiver_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Receiver kind (chat, lowPriority, pagerduty) -> URL or key, as Pulumi secrets."""


class Alerting(pulumi.ComponentResource):
    pod_monitor: k8s.apiextensions.CustomResource
    rules: k8s.apiextensions.CustomResource
    probe: k8s.apiextensions.CustomResource | None
    receivers_secret: k8s.apiextensions.CustomResource | None
    """The ExternalSecret that keeps RECEIVERS_SECRET."""
    alertmanager_config: k8s.apiextensions.CustomResource | None
    dashboard: k8s.core.v1.ConfigMap | None

    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:alerting:Alerting", name, None, opts)
        monitoring = args.monitoring
        children = _Children(
            self, name, args.namespace, {**naming.common_labels(args.stack), **monitoring.resource_labels}
        )
        self.pod_monitor = _pod_monitor(children, monitoring)
        self.rules = children.custom(
            "rules",
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            {
                "groups": alert_rules.rule_groups(monitoring, args.namespace_name),
            },
        )
        self.probe = _smoke_probe(children, monitoring, args.health_url) if monitoring.smoke_probe else None
        routes = args.alerting.routes
        self.receivers_secret, self.alertmanager_config = _routing(children, args) if routes else (None, None)
        self.dashboard = _dashboard(children, monitoring, args) if monitoring.dashboard else None
        self.register_outputs({"routed_severities": sorted(routes), "smoke_probe": monitoring.smoke_probe})


@dataclass(frozen=True)
class _Children:
    """Makes the component's children: `{name}-{role}`, parented to it, in the app namespace with
    the stack's labels."""

    component: pulumi.ComponentResource
    name: str
    namespace: pulumi.Input[str]
    labels: Mapping[str, str]

    def metadata(self, object_name: str, extra: Mapping[str, str] | None = None):
        return k8s.meta.v1.ObjectMetaArgs(
            name=object_name, namespace=self.namespace, labels={**self.labels, **(extra or {})}
        )

    def custom(
        self, role: str, api_version: str, kind: str, spec: dict, depends_on: list[pulumi.Resource] | None = None
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{self.name}-{role}",
            api_version=api_version,
            kind=kind,
            metadata=self.metadata(f"{naming.APP}-{role}"),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self.component, depends_on=depends_on),
        )

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.component)


def _pod_monitor(children: _Children, monitoring: MonitoringSettings) -> k8s.apiextensions.CustomResource:
    return children.custom(
        "pods",
        "monitoring.coreos.com/v1",
        "PodMonitor",
        {
            "selector": {"matchLabels": {"app.kubernetes.io/name": naming.APP}},
            "podTargetLabels": list(alert_rules.POD_TARGET_LABELS),
            # Every pod serves metrics on its `metrics` port, which bypasses the sidecar (see
            # components/workload.py): mTLS STRICT would otherwise refuse Prometheus.
            "podMetricsEndpoints": [
                {
                    "port": "metrics",
                    "path": monitoring.metrics_path,
                    "interval": f"{monitoring.scrape_interval_seconds}s",
                }
            ],
        },
    )


def _smoke_probe(
    children: _Children, monitoring: MonitoringSettings, health_url: str
) -> k8s.apiextensions.CustomResource:
    return children.custom(
        "smoke",
        "monitoring.coreos.com/v1",
        "Probe",
        {
            "jobName": alert_rules.SMOKE_JOB,
            "interval": f"{monitoring.scrape_interval_seconds}s",
            "module": "http_2xx",
            "prober": {"url": monitoring.blackbox_exporter_address},
            "targets": {"staticConfig": {"static": [health_url]}},
        },
    )


def _routing(
    children: _Children, args: AlertingArgs
) -> tuple[k8s.apiextensions.CustomResource, k8s.apiextensions.CustomResource]:
    """The receivers' ExternalSecret and the AlertmanagerConfig that routes each severity to one."""
    routes = args.alerting.routes
    kinds = sorted(set(routes.values()))
    missing = [k for k in kinds if k not in args.receiver_secrets]
    if missing:
        raise ValueError(f"no receiver secret for {missing}")  # settings validate this
    delivered = _receivers_secret(children, args, kinds)
    config = children.custom(
        "routing",
        "monitoring.coreos.com/v1alpha1",
        "AlertmanagerConfig",
        _routing_spec(routes, RECEIVERS_SECRET),
        # Referenced by name (known in previews too); created first all the same.
        depends_on=[delivered],
    )
    return delivered, config


def _store_may_read(
    name: str, role: aws.iam.Role, secret: aws.secretsmanager.Secret, key: aws.kms.Key, opts: pulumi.ResourceOptions
) -> aws.iam.RolePolicy:
    """The secret store's role may read the receivers' secret, and decrypt it, and nothing more."""
    return aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=pulumi.Output.json_dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadAlertReceivers",
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                        "Resource": [secret.arn],
                    },
                    {"Sid": "DecryptAlertReceivers", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": [key.arn]},
                ],
            }
        ),
        opts=opts,
    )


def _receivers_secret(children: _Children, args: AlertingArgs, kinds: list[str]) -> k8s.apiextensions.CustomResource:
    """The receivers' URLs and keys in Secrets Manager (with a key of their own), the store's
    permission to read them, and the ExternalSecret that brings them into RECEIVERS_SECRET."""
    name, opts = children.name, children.opts
    key = data_key(
        f"{name}-receivers-key",
        f"PlexiChat {args.stack}: the Alertmanager receivers' URLs and keys",
        args.account_id,
        opts,
    )
    secret = aws.secretsmanager.Secret(
        f"{name}-receivers-secret",
        name=f"plexichat/{args.stack}/alert-receivers",
        description="Alertmanager receivers' webhook URLs and routing keys, issued by the chat tool and PagerDuty",
        kms_key_id=key.arn,
        recovery_window_in_days=30,  # a deleted secret can be restored for 30 days
        opts=opts,
    )
    value = aws.secretsmanager.SecretVersion(
        f"{name}-receivers-secret-value",
        secret_id=secret.id,
        # Secret even if a caller forgot (the JSON of secrets is secret): these URLs let anyone
        # post or page.
        secret_string=pulumi.Output.json_dumps(
            {RECEIVERS[k].secret_key: pulumi.Output.secret(args.receiver_secrets[k]) for k in kinds}
        ),
        opts=opts,
    )
    store = args.secret_store
    read = _store_may_read(f"{name}-receivers-store-read", store.role, secret, key, opts)
    return external_secret(
        name,
        "receivers",
        RECEIVERS_SECRET,
        [
            {
                "secretKey": RECEIVERS[k].secret_key,
                "remoteRef": {"key": secret.arn, "property": RECEIVERS[k].secret_key},
            }
            for k in kinds
        ],
        store.name,
        args,
        store.store,
        # The store may read the secret, and it holds a value, before External Secrets tries.
        pulumi.ResourceOptions(parent=children.component, depends_on=[read, value]),
    )


def _dashboard(children: _Children, monitoring: MonitoringSettings, args: AlertingArgs) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        f"{children.name}-dashboard",
        metadata=children.metadata(f"{naming.APP}-dashboard", {"grafana_dashboard": "1"}),
        data={
            f"{naming.APP}-{args.stack}.json": json.dumps(
                dashboard(monitoring, args.namespace_name, args.stack), indent=1, sort_keys=True
            )
        },
        opts=children.opts,
    )


def _routing_spec(routes: Mapping[str, str], secret_name: str) -> dict:
    def receiver(kind: str) -> dict:
        spec = RECEIVERS[kind]
        ref = {"name": secret_name, "key": spec.secret_key}
        return {"name": spec.alertmanager_name, spec.config_kind: [{spec.secret_field: ref, "sendResolved": True}]}

    track = alert_rules.TRACK
    return {
        "route": {
            "receiver": DISCARD_RECEIVER,
            "groupBy": ["alertname", "namespace", track],
            "groupWait": "30s",
            "groupInterval": "5m",
            "repeatInterval": "4h",
            "routes": [
                {
                    "receiver": RECEIVERS[kind].alertmanager_name,
                    "matchers": [{"name": "severity", "value": severity, "matchType": "="}],
                }
                for severity, kind in routes.items()
            ],
        },
        "receivers": [{"name": DISCARD_RECEIVER}] + [receiver(k) for k in sorted(set(routes.values()))],
        "inhibitRules": [
            {
                "sourceMatch": [{"name": "severity", "value": "critical", "matchType": "="}],
                "targetMatch": [{"name": "severity", "value": "warning", "matchType": "="}],
                "equal": ["namespace", "signal", track],
            }
        ],
    }
