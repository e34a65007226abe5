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
  (`ELBSecurityPolicy-TLS13-*`). With one, the load balancer also speaks TLS 1.3 to NGINX, which
  accepts nothing older; with any other, it talks to NGINX with a policy NGINX refuses. Skipped
  without an ARN (the stack names no load balancer).
- mesh mTLS: the mesh config (istiod's `istio` ConfigMap) sets meshMTLS.minProtocolVersion to
  TLSV1_3; Istio's default is TLS 1.2.
- critical alerts: no `severity="critical"` alert is firing in Prometheus. Without a Prometheus
  URL it is skipped: shown in the table, and it stops a deploy only with --strict (CI passes it).
"""

from __future__ import annotations

import datetime
import json
import pathlib
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from components import naming
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from components.release.plan import plan_release
from plexictl import offline
from plexictl.capacity import MIB, InvalidQuantity, Resources, free_capacity, millicores, unplaced
from plexictl.release.prometheus import PrometheusUnavailable, instant

if TYPE_CHECKING:  # the stubs are a development dependency (requirements-dev.txt)
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_elasticache import ElastiCacheClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef

MAX_BACKUP_AGE = datetime.timedelta(hours=26)
"""The backup plan runs daily (05:00 UTC): one day, and two hours for the job to start and finish."""
LAG_WINDOW = datetime.timedelta(minutes=10)
"""How old the newest ReplicaLag datapoint may be (RDS publishes it every minute)."""
CRITICAL_ALERTS = 'ALERTS{alertstate="firing", severity="critical"}'
KUBECTL_TIMEOUT_SECONDS = 60
TLS13_LISTENER_POLICY = "ELBSecurityPolicy-TLS13-"
"""Prefix of the load balancer security policies that offer TLS 1.3 (front end and, then, targets)."""
TLS13_ONLY_LISTENER_POLICY = "ELBSecurityPolicy-TLS13-1-3-"
"""Policies that refuse TLS 1.2 clients, Route 53's health checkers among them."""
MESH_MIN_TLS = "TLSV1_3"

Kubectl = Callable[[Sequence[str]], str]
"""Runs `kubectl ARGS` against the stack's cluster and returns its stdout; CheckError if it cannot."""
Query = Callable[[str, str], list[tuple[dict[str, str], float]]]
"""An instant Prometheus query, (url, promql) -> (labels, value) per series: `prometheus.instant`."""


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str


class CheckError(Exception):
    """A check could not look; the message says why, and the check fails."""


def judged(ok: bool, detail: str) -> Result:
    return Result(Outcome.PASS if ok else Outcome.FAIL, detail)


# -- the checks --------------------------------------------------------------------------------


def database_backup(
    backup: BackupClient, rds: RDSClient, identifier: str, vault: str, now: datetime.datetime
) -> Result:
    primary = _instance(rds, identifier)
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, ByResourceArn=primary["DBInstanceArn"]
    )
    created = [p["CreationDate"] for page in pages for p in page["RecoveryPoints"] if p["Status"] == "COMPLETED"]
    if not created:
        return Result(Outcome.FAIL, f"no completed recovery point of {identifier} in vault {vault}")
    newest = max(created)
    return judged(
        now - newest < MAX_BACKUP_AGE,
        f"newest recovery point {readable_duration(now - newest)} old "
        f"({newest.astimezone(datetime.UTC):%Y-%m-%d %H:%M} UTC, vault {vault}); "
        f"limit {readable_duration(MAX_BACKUP_AGE)}",
    )


def database_instances(rds: RDSClient, identifier: str) -> Result:
    primary = _instance(rds, identifier)
    states = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in [primary, *_replicas(rds, primary)]}
    unavailable = [f"{name} is {state}" for name, state in states.items() if state != "available"]
    return judged(not unavailable, ", ".join(unavailable) or f"{', '.join(states)} available")


def replica_lag(
    rds: RDSClient, cloudwatch: CloudWatchClient, identifier: str, max_seconds: int, now: datetime.datetime
) -> Result:
    replicas = [r["DBInstanceIdentifier"] for r in _replicas(rds, _instance(rds, identifier))]
    if not replicas:
        return Result(Outcome.PASS, f"{identifier} has no read replicas")
    lags = {replica: newest_lag(cloudwatch, replica, now) for replica in replicas}
    shown = []
    for replica, lag in lags.items():
        if lag is None:
            shown.append(f"{replica}: no ReplicaLag data in the last {readable_duration(LAG_WINDOW)}")
        elif lag < 0:
            shown.append(f"{replica}: replication is not running (ReplicaLag {lag:g})")
        else:
            shown.append(f"{replica} {lag:g}s")
    ok = all(lag is not None and 0 <= lag < max_seconds for lag in lags.values())
    return judged(ok, f"{', '.join(shown)} (limit {max_seconds}s)")


def cache(elasticache: ElastiCacheClient, group_id: str) -> Result:
    try:
        group = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    except elasticache.exceptions.ReplicationGroupNotFoundFault:
        return Result(Outcome.FAIL, f"no replication group {group_id} in the stack's region")
    return judged(group["Status"] == "available", f"{group_id} is {group['Status']}")


def cluster_capacity(kubectl: Kubectl, settings: StackSettings) -> Result:
    nodes = _items(kubectl, "nodes")
    pods = [pod for pod in _items(kubectl, "pods", "-A") if pod["status"].get("phase") not in ("Succeeded", "Failed")]
    wanted = new_pods(settings, pods)
    if not wanted:
        return Result(Outcome.PASS, "no new track: every Deployment of the release already has pods")
    free = free_capacity(nodes, pods)
    left = unplaced([w.per_pod for w in wanted for _ in range(w.count)], free)
    total = sum(w.count for w in wanted)
    needed = "; ".join(f"{w.workload} {w.track}: {w.count} × {w.per_pod}" for w in wanted)
    where = f"{len(free)} schedulable node{'s' if len(free) != 1 else ''}"
    if left:
        return Result(Outcome.FAIL, f"{needed}: no room for {left} of the {total} new pods on {where}")
    return Result(Outcome.PASS, f"{needed}: all {total} new pods fit on {where}")


def load_balancer_tls(elbv2: ElasticLoadBalancingv2Client, arn: str | None, health_checked: bool = False) -> Result:
    """With Route 53 health checks on the stack (dr.hostedZoneId), the policy must also admit
    TLS 1.2: Route 53's HTTPS checkers speak TLS 1.0 to 1.2 only, and would find it down."""
    if arn is None:
        return Result(Outcome.SKIPPED, "no load balancer (plexichat:ingress.waf.loadBalancerArn)")
    listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    policies = {
        f"{ln['Protocol']}:{ln['Port']}": ln.get("SslPolicy", "") for ln in listeners if ln["Protocol"] == "HTTPS"
    }
    if not policies:
        return Result(Outcome.FAIL, "the load balancer has no HTTPS listener")
    weak = [
        f"{port} uses {policy}"
        for port, policy in sorted(policies.items())
        if not policy.startswith(TLS13_LISTENER_POLICY)
    ]
    if health_checked:
        weak += [
            f"{port} uses {policy}, which Route 53's health checkers (TLS 1.2 at most) cannot reach"
            for port, policy in sorted(policies.items())
            if policy.startswith(TLS13_ONLY_LISTENER_POLICY)
        ]
    if weak:
        return Result(
            Outcome.FAIL, f"{', '.join(weak)}: use an {TLS13_LISTENER_POLICY}* policy (NGINX accepts TLS 1.3 only)"
        )
    return Result(Outcome.PASS, ", ".join(f"{port} {policy}" for port, policy in sorted(policies.items())))


def mesh_mtls(kubectl: Kubectl, istio_namespace: str) -> Result:
    config_map = json.loads(kubectl(["get", "configmap", "istio", "-n", istio_namespace, "-o", "json"]))
    try:
        mesh = yaml.safe_load(config_map.get("data", {}).get("mesh") or "") or {}
    except yaml.YAMLError as error:
        raise CheckError(f"the mesh config in {istio_namespace}/istio is not YAML: {error}") from error
    found = (mesh.get("meshMTLS") or {}).get("minProtocolVersion") or "unset (Istio's default, TLS 1.2)"
    return judged(found == MESH_MIN_TLS, f"meshMTLS.minProtocolVersion {found}; wanted {MESH_MIN_TLS}")


def critical_alerts(url: str | None, query: Query) -> Result:
    if not url:
        return Result(Outcome.SKIPPED, "no Prometheus URL (--prometheus, or plexichat:monitoring.prometheusUrl)")
    firing = query(url, CRITICAL_ALERTS)
    names = sorted({labels.get("alertname", "(no alertname)") for labels, _ in firing})
    return judged(not firing, f"{len(firing)} firing: {', '.join(names)}" if firing else f"none firing ({url})")


# -- running them ------------------------------------------------------------------------------


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
        "load balancer TLS": lambda: load_balancer_tls(
            elbv2,
            settings.ingress.waf.load_balancer_arn,
            health_checked=settings.dr is not None and settings.dr.hosted_zone_id is not None,
        ),
        "mesh mTLS": lambda: mesh_mtls(kubectl, settings.kubernetes.istio_namespace),
        "critical alerts": lambda: critical_alerts(prometheus_url, query),
    }
    return {name: guarded(check) for name, check in checks.items()}


def guarded(check: Callable[[], Result]) -> Result:
    try:
        return check()
    except (CheckError, InvalidQuantity) as error:
        return Result(Outcome.FAIL, str(error))
    except PrometheusUnavailable as error:
        return Result(Outcome.FAIL, f"Prometheus did not answer: {error}")
    except (BotoCoreError, ClientError) as error:
        return Result(Outcome.FAIL, f"AWS: {error}")


def stopping(results: dict[str, Result], strict: bool) -> list[str]:
    """The checks that stop a deploy: the failed ones, and with `strict` the skipped ones too."""
    stop = {Outcome.FAIL, Outcome.SKIPPED} if strict else {Outcome.FAIL}
    return [name for name, result in results.items() if result.outcome in stop]


def table(results: dict[str, Result]) -> str:
    rows = [("check", "result", "detail"), *((name, r.outcome.value, r.detail) for name, r in results.items())]
    check_width, result_width = (max(len(row[column]) for row in rows) for column in (0, 1))
    return "\n".join(f"{c:<{check_width}}  {r:<{result_width}}  {d}" for c, r, d in rows)


def summary(stack: str, results: dict[str, Result], strict: bool) -> str:
    stop = stopping(results, strict)
    if stop:
        return f"{stack}: do not deploy now: {', '.join(stop)} did not pass"
    skipped = [name for name, result in results.items() if result.outcome is Outcome.SKIPPED]
    if skipped:
        return f"{stack}: ready to deploy, without {', '.join(skipped)} (skipped; --strict makes a skip stop a deploy)"
    return f"{stack}: ready to deploy: every check passed"


# -- AWS ---------------------------------------------------------------------------------------


def aws_session() -> boto3.Session:
    return boto3.Session()


def _instance(rds: RDSClient, identifier: str) -> DBInstanceTypeDef:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise CheckError(f"no RDS instance {identifier} in the stack's region") from None


def _replicas(rds: RDSClient, primary: DBInstanceTypeDef) -> list[DBInstanceTypeDef]:
    """The primary's read replicas in its own region (another region's are listed by ARN)."""
    listed = primary.get("ReadReplicaDBInstanceIdentifiers", [])
    return [_instance(rds, replica) for replica in listed if not replica.startswith("arn:")]


def newest_lag(cloudwatch: CloudWatchClient, replica: str, now: datetime.datetime) -> float | None:
    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": replica}],
        StartTime=now - LAG_WINDOW,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return max(datapoints, key=lambda point: point["Timestamp"])["Maximum"] if datapoints else None


def readable_duration(delta: datetime.timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


# -- Kubernetes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPods:
    workload: str
    track: str
    count: int
    per_pod: Resources


def new_pods(settings: StackSettings, pods: Iterable[dict[str, Any]]) -> list[NewPods]:
    """The pods a deploy of the stack file starts from nothing.

    Every Deployment the release plan asks for (web: one per track; a worker: the worker track)
    that has no pod in the namespace yet starts at its autoscaler's floor, the workload's
    minReplicas, each pod requesting cpuRequest and memoryMib. So a canary start counts web's
    minReplicas canary pods; a blue-green deploy whose colour is not running counts that colour at
    web's minReplicas (both colours are sized for all traffic, but the autoscaler starts a colour at
    its floor); a first deploy counts every track; a weight change or a flip between running
    colours counts nothing. Not counted: a new version on a running track, which rolls a few pods
    at a time (maxSurge 25%, maxUnavailable 0), the migration Job's one pod, and the Istio
    sidecar's requests (the mesh installation's, not the stack's).
    """
    pods = list(pods)
    plan = plan_release(settings.release)
    wanted = []
    for name, workload in settings.workloads.items():
        for track in plan.tracks if workload.role == "web" else (plan.worker_track,):
            selector = naming.selector_labels(name, track.name)
            if not any(_selected(pod, settings.namespace, selector) for pod in pods):
                per_pod = Resources(millicores(workload.cpu_request), workload.memory_mib * MIB, 1)
                wanted.append(NewPods(name, track.name, workload.min_replicas, per_pod))
    return wanted


def kubectl_command(context: str | None) -> Kubectl:
    """`kubectl --context CONTEXT ARGS` (the kubeconfig's current context if the stack names none)."""
    prefix = ["kubectl", *(["--context", context] if context else [])]

    def run(args: Sequence[str]) -> str:
        command = [*prefix, *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_SECONDS, check=False)
        except FileNotFoundError:
            raise CheckError("kubectl is not installed (not on PATH)") from None
        except subprocess.TimeoutExpired:
            raise CheckError(f"`{' '.join(command)}` did not answer in {KUBECTL_TIMEOUT_SECONDS}s") from None
        if done.returncode != 0:
            raise CheckError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
        return done.stdout

    return run


def _items(kubectl: Kubectl, *what: str) -> list[dict[str, Any]]:
    output = kubectl(["get", *what, "-o", "json"])
    try:
        return json.loads(output)["items"]
    except (ValueError, KeyError, TypeError):
        raise CheckError(f"`kubectl get {' '.join(what)} -o json` did not print a list of objects") from None


def _selected(pod: dict[str, Any], namespace: str, selector: dict[str, str]) -> bool:
    metadata = pod["metadata"]
    labels = metadata.get("labels") or {}
    return metadata.get("namespace") == namespace and all(labels.get(k) == v for k, v in selector.items())
