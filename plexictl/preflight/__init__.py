"""`plexictl preflight --stack S`: the runbook's pre-deployment checks, against the live stack.

Each check is one small function that looks at one thing and returns a `Result`: pass, FAIL or
skipped, with a detail. `run_checks` runs all of them, so one table shows everything that is wrong.
A check that cannot look (no credentials, an API error, kubectl or Prometheus not answering)
fails: like the release loop, preflight never passes on missing data.

- database backup: the newest completed AWS Backup recovery point of the primary, in the stack's
  vault, is younger than 26 h.
- database instances: the primary and the read replicas it has are `available`. The replicas are
  the ones the primary lists now, not the ones the stack file asks for, so a deploy that adds a
  replica is not blocked by its absence; a cross-region replica (listed by ARN) is not looked at.
- replica lag: each replica's newest CloudWatch `ReplicaLag` is under
  plexichat:monitoring.thresholds.replicaLagMaxSeconds.
- cache: the ElastiCache replication group is `available`.
- cluster capacity: the pods the deploy starts from nothing fit on the nodes (`new_pods`).
- load balancer TLS: every HTTPS listener of ingress.waf.loadBalancerArn has a TLS 1.3 policy
  (`ELBSecurityPolicy-TLS13-*`), one that still admits TLS 1.2 where Route 53's health checks
  (dr.hostedZoneId) or CloudFront's origin requests (edge.cdn) must reach it. With one, the load
  balancer also speaks TLS 1.3 to NGINX, which accepts nothing older; with any other, it talks
  to NGINX with a policy NGINX refuses. Skipped without an ARN (the stack names no load balancer).
- load balancer access logs: the ALB writes its access logs into the stack's log bucket
  (`plexichat-<stack>-lb-<account>-access-logs`, prefix `alb`), which the program makes. Skipped
  without an ARN.
- cluster API endpoint: the EKS cluster (kubernetes.eksCluster) has a private endpoint, and a
  public one only for listed ranges, never 0.0.0.0/0 (docs/admin-access.md). Skipped without a
  cluster name.
- mesh mTLS: the mesh config (istiod's `istio` ConfigMap) sets meshMTLS.minProtocolVersion to
  TLSV1_3; Istio's default is TLS 1.2.
- critical alerts: no `severity="critical"` alert is firing in Prometheus. Without a Prometheus
  URL it is skipped: shown in the table, and it stops a deploy only with --strict (CI passes it).
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable

import boto3

from components import naming
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from components.data.access_log_bucket import LOAD_BALANCER_LOG_PREFIX, load_balancer_log_bucket_name
from plexictl import offline
from plexictl.preflight.cluster import (
    KUBECTL_TIMEOUT_SECONDS,
    MESH_MIN_TLS,
    Kubectl,
    NewPods,
    cluster_api_endpoint,
    cluster_capacity,
    kubectl_command,
    mesh_mtls,
    new_pods,
)
from plexictl.preflight.data import (
    LAG_WINDOW,
    MAX_BACKUP_AGE,
    cache,
    database_backup,
    database_instances,
    describe_lag,
    lag_within,
    newest_lag,
    replica_lag,
)
from plexictl.preflight.load_balancer import (
    CLOUDFRONT_ORIGIN_FETCHES,
    ROUTE53_HEALTH_CHECKERS,
    TLS13_LISTENER_POLICY,
    TLS13_ONLY_LISTENER_POLICY,
    load_balancer_access_logs,
    load_balancer_tls,
)
from plexictl.preflight.results import (
    CheckError,
    Outcome,
    Result,
    guarded,
    judged,
    readable_duration,
    stopping,
    summary,
    table,
)
from plexictl.release.prometheus import instant

CRITICAL_ALERTS = 'ALERTS{alertstate="firing", severity="critical"}'

Query = Callable[[str, str], list[tuple[dict[str, str], float]]]
"""An instant Prometheus query, (url, promql) -> (labels, value) per series: `prometheus.instant`."""

__all__ = [
    "CRITICAL_ALERTS",
    "KUBECTL_TIMEOUT_SECONDS",
    "LAG_WINDOW",
    "MAX_BACKUP_AGE",
    "MESH_MIN_TLS",
    "TLS13_LISTENER_POLICY",
    "TLS13_ONLY_LISTENER_POLICY",
    "CheckError",
    "Kubectl",
    "NewPods",
    "Outcome",
    "Query",
    "Result",
    "aws_session",
    "cache",
    "check_stack",
    "cluster_api_endpoint",
    "cluster_capacity",
    "critical_alerts",
    "database_backup",
    "database_instances",
    "describe_lag",
    "guarded",
    "judged",
    "kubectl_command",
    "lag_within",
    "load_balancer_access_logs",
    "load_balancer_tls",
    "mesh_mtls",
    "new_pods",
    "newest_lag",
    "readable_duration",
    "replica_lag",
    "run_checks",
    "stopping",
    "summary",
    "table",
]


def critical_alerts(url: str | None, query: Query) -> Result:
    if not url:
        return Result(Outcome.SKIPPED, "no Prometheus URL (--prometheus, or plexichat:monitoring.prometheusUrl)")
    firing = query(url, CRITICAL_ALERTS)
    names = sorted({labels.get("alertname", "(no alertname)") for labels, _ in firing})
    return judged(not firing, f"{len(firing)} firing: {', '.join(names)}" if firing else f"none firing ({url})")


def check_stack(stack: str, project_dir: pathlib.Path, prometheus_url: str | None = None) -> dict[str, Result]:
    """The command's run: the stack file's settings, AWS's default credential chain (environment,
    profile, the CI job's role) and kubectl with the stack's kubeconfig context."""
    config, secret_keys = offline.stack_config(stack, project_dir)
    settings = parse_stack_config(config, stack, secret_keys)
    url = prometheus_url or settings.monitoring.prometheus_url
    return run_checks(settings, stack, aws_session(), kubectl_command(settings.kubernetes.context), url)


def run_checks(
    settings: StackSettings,
    stack: str,
    session: boto3.Session,
    kubectl: Kubectl,
    prometheus_url: str | None,
    query: Query = instant,
    now: datetime.datetime | None = None,
) -> dict[str, Result]:
    """Every check, by name, in the table's order; one that cannot look fails, the rest still run."""
    now = now or datetime.datetime.now(datetime.UTC)
    region = settings.aws.region
    rds, backup = session.client("rds", region_name=region), session.client("backup", region_name=region)
    cloudwatch = session.client("cloudwatch", region_name=region)
    elasticache = session.client("elasticache", region_name=region)
    elbv2 = session.client("elbv2", region_name=region)
    db, lag_max_seconds = settings.database.identifier, settings.monitoring.thresholds.replica_lag_max_seconds
    checks: dict[str, Callable[[], Result]] = {
        "database backup": lambda: database_backup(backup, rds, db, naming.backup_vault_name(stack), now),
        "database instances": lambda: database_instances(rds, db),
        "replica lag": lambda: replica_lag(rds, cloudwatch, db, lag_max_seconds, now),
        "cache": lambda: cache(elasticache, settings.cache.replication_group_id),
        "cluster capacity": lambda: cluster_capacity(kubectl, settings),
        "cluster API endpoint": lambda: cluster_api_endpoint(
            session.client("eks", region_name=region), settings.kubernetes.eks_cluster
        ),
        "load balancer TLS": lambda: load_balancer_tls(
            elbv2,
            settings.ingress.waf.load_balancer_arn,
            _tls12_clients(settings),
        ),
        "load balancer access logs": lambda: load_balancer_access_logs(
            elbv2,
            settings.ingress.waf.load_balancer_arn,
            load_balancer_log_bucket_name(stack, _account(session, region)),
            LOAD_BALANCER_LOG_PREFIX,
        ),
        "mesh mTLS": lambda: mesh_mtls(kubectl, settings.kubernetes.istio_namespace),
        "critical alerts": lambda: critical_alerts(prometheus_url, query),
    }
    return {name: guarded(check) for name, check in checks.items()}


def _tls12_clients(settings: StackSettings) -> tuple[str, ...]:
    """Who must reach the stack's load balancer with TLS 1.2 (see `load_balancer_tls`)."""
    dns_failover = settings.dr is not None and settings.dr.hosted_zone_id is not None
    return (
        *([ROUTE53_HEALTH_CHECKERS] if dns_failover else []),
        *([CLOUDFRONT_ORIGIN_FETCHES] if settings.edge.cdn.enabled else []),
    )


def _account(session: boto3.Session, region: str) -> str:
    return session.client("sts", region_name=region).get_caller_identity()["Account"]


def aws_session() -> boto3.Session:
    return boto3.Session()
