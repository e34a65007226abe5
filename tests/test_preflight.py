"""`plexictl preflight`: each pre-deployment check passes and fails on what it reads, and the
command prints the table and exits 0, 1 or 3.

AWS is moto wherever moto models what a check reads: RDS instances (created, replicated and
stopped through the API, so states and the primary's replica list are moto's), ElastiCache
replication groups (present or not), and CloudWatch's metric store and statistics query (moto's
RDS publishes no ReplicaLag, so each test puts the datapoints RDS would publish). Two things moto
does not model are botocore Stubber clients, validated against the service model: AWS Backup
recovery points (moto answers ListRecoveryPointsByBackupVault with "Not yet implemented") and a
replication group in any state but `available` (moto's are always available).

The cluster is kubectl's JSON, served by an injected runner (or a fake `kubectl` on PATH for the
runner and the command); Prometheus is a stubbed `instant` (or, for the command, a fake HTTP API).
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber

from components import naming
from components.config.parse import parse_stack_config
from components.config.stack import StackSettings
from plexictl import preflight
from plexictl.__main__ import EXIT_CANNOT_DEPLOY, EXIT_DONE, EXIT_INVALID, main
from plexictl.offline import stack_config
from plexictl.preflight import CRITICAL_ALERTS, CheckError, Outcome, Result
from plexictl.release import RELEASE_KEY
from plexictl.release.prometheus import PrometheusUnavailable
from tests.conftest import stack_file
from tests.release_state import pinned_release, project_copy
from tests.tools import offline_aws


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def settings_of(stack: str, release: dict | None = None) -> StackSettings:
    """The stack file's settings at its pinned release (or at `release`)."""
    data = stack_file(stack)
    if release is not None:
        data["config"][RELEASE_KEY] = release
    config, secret_keys = stack_config(stack, stack_file=data)
    return parse_stack_config(config, stack, secret_keys)


PROD = settings_of("prod")
REGION = PROD.aws.region
DB = PROD.database.identifier
REPLICAS = [f"{DB}-replica-{n}" for n in range(1, PROD.database.read_replicas + 1)]
VAULT = naming.backup_vault_name("prod")


# --- AWS: moto, and Stubber clients where moto has no model ------------------------------------


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS (tests/tools.py `offline_aws`)."""
    with offline_aws(monkeypatch):
        yield boto3.Session(region_name=REGION)


def create_database(session, settings: StackSettings = PROD) -> dict:
    """The primary and its replicas, as the program creates them; the primary as RDS describes it."""
    rds = session.client("rds")
    db = settings.database
    rds.create_db_instance(
        DBInstanceIdentifier=db.identifier,
        Engine="postgres",
        EngineVersion=db.engine_version,
        DBInstanceClass=db.instance_class,
        AllocatedStorage=db.allocated_storage_gib,
        MultiAZ=db.multi_az,
        MasterUsername="plexichat",
        MasterUserPassword="not-a-real-password",
    )
    for n in range(1, db.read_replicas + 1):
        rds.create_db_instance_read_replica(
            DBInstanceIdentifier=f"{db.identifier}-replica-{n}", SourceDBInstanceIdentifier=db.identifier
        )
    return rds.describe_db_instances(DBInstanceIdentifier=db.identifier)["DBInstances"][0]


def put_replica_lag(session, lags: dict[str, float]) -> None:
    """The datapoints RDS publishes every minute, one a minute ago per replica."""
    session.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica}],
                "Timestamp": now() - datetime.timedelta(minutes=1),
                "Value": lag,
                "Unit": "Seconds",
            }
            for replica, lag in lags.items()
        ],
    )


def create_cache(session, settings: StackSettings = PROD) -> None:
    session.client("elasticache").create_replication_group(
        ReplicationGroupId=settings.cache.replication_group_id,
        ReplicationGroupDescription="PlexiChat cache",
        Engine=settings.cache.engine,
        CacheNodeType=settings.cache.node_type,
        NumCacheClusters=settings.cache.nodes,
    )


def recovery_point(arn: str, hours_ago: float, status: str = "COMPLETED") -> dict:
    created = now() - datetime.timedelta(hours=hours_ago)
    return {
        "RecoveryPointArn": f"arn:aws:rds:{REGION}:123456789012:snapshot:awsbackup:job-{int(hours_ago * 60):08x}",
        "BackupVaultName": VAULT,
        "ResourceArn": arn,
        "ResourceType": "RDS",
        "CreationDate": created,
        **({"CompletionDate": created + datetime.timedelta(minutes=20)} if status == "COMPLETED" else {}),
        "Status": status,
    }


def stubbed_backup(session, arn: str, points: list[dict]):
    """A Backup client that answers ListRecoveryPointsByBackupVault for the stack's vault and the
    primary's ARN, and nothing else (moto does not model recovery points)."""
    client = session.client("backup")
    stubber = Stubber(client)
    stubber.add_response(
        "list_recovery_points_by_backup_vault",
        {"RecoveryPoints": points},
        {"BackupVaultName": VAULT, "ByResourceArn": arn},
    )
    stubber.activate()
    return client


# --- database backup --------------------------------------------------------------------------


def test_a_backup_younger_than_26_hours_passes(aws):
    arn = create_database(aws)["DBInstanceArn"]
    points = [recovery_point(arn, 27), recovery_point(arn, 3), recovery_point(arn, 0.2, status="CREATING")]
    result = preflight.database_backup(stubbed_backup(aws, arn, points), aws.client("rds"), DB, VAULT, now())
    assert result.outcome is Outcome.PASS
    assert result.detail.startswith("newest recovery point 3h 00m old") and f"vault {VAULT}" in result.detail


def test_a_backup_older_than_26_hours_fails_and_one_in_progress_does_not_count(aws):
    arn = create_database(aws)["DBInstanceArn"]
    points = [recovery_point(arn, 30), recovery_point(arn, 0.5, status="CREATING")]
    result = preflight.database_backup(stubbed_backup(aws, arn, points), aws.client("rds"), DB, VAULT, now())
    assert result.outcome is Outcome.FAIL
    assert "30h 00m old" in result.detail and "limit 26h 00m" in result.detail


def test_no_recovery_point_at_all_fails(aws):
    arn = create_database(aws)["DBInstanceArn"]
    result = preflight.database_backup(stubbed_backup(aws, arn, []), aws.client("rds"), DB, VAULT, now())
    assert result == Result(Outcome.FAIL, f"no completed recovery point of {DB} in vault {VAULT}")


# --- database instances and replica lag (moto) ------------------------------------------------


def test_the_primary_and_its_replicas_available_pass(aws):
    create_database(aws)
    result = preflight.database_instances(aws.client("rds"), DB)
    assert result == Result(Outcome.PASS, f"{', '.join([DB, *REPLICAS])} available")


def test_a_stopped_primary_fails(aws):
    create_database(aws)
    aws.client("rds").stop_db_instance(DBInstanceIdentifier=DB)
    assert preflight.database_instances(aws.client("rds"), DB) == Result(Outcome.FAIL, f"{DB} is stopped")


def test_a_missing_primary_fails(aws):
    with pytest.raises(CheckError, match=f"^no RDS instance {DB} in the stack's region$"):
        preflight.database_instances(aws.client("rds"), DB)


def test_replica_lag_under_the_threshold_passes(aws):
    create_database(aws)
    put_replica_lag(aws, dict.fromkeys(REPLICAS, 2.0))
    limit = PROD.monitoring.thresholds.replica_lag_max_seconds
    result = preflight.replica_lag(aws.client("rds"), aws.client("cloudwatch"), DB, limit, now())
    assert result.outcome is Outcome.PASS
    assert result.detail == f"{', '.join(f'{r} 2s' for r in REPLICAS)} (limit {limit}s)"


def test_replica_lag_over_the_threshold_or_without_data_fails(aws):
    create_database(aws)
    limit = PROD.monitoring.thresholds.replica_lag_max_seconds
    put_replica_lag(aws, {REPLICAS[0]: limit + 15.0})  # the second replica publishes nothing
    result = preflight.replica_lag(aws.client("rds"), aws.client("cloudwatch"), DB, limit, now())
    assert result.outcome is Outcome.FAIL
    assert f"{REPLICAS[0]} {limit + 15}s" in result.detail
    assert f"{REPLICAS[1]}: no ReplicaLag data in the last 10 min" in result.detail


def test_replica_lag_passes_for_a_database_without_replicas(aws):
    dev = settings_of("dev")
    create_database(aws, dev)
    result = preflight.replica_lag(aws.client("rds"), aws.client("cloudwatch"), dev.database.identifier, 30, now())
    assert result == Result(Outcome.PASS, f"{dev.database.identifier} has no read replicas")


# --- cache ------------------------------------------------------------------------------------


def test_an_available_replication_group_passes(aws):
    create_cache(aws)
    group = PROD.cache.replication_group_id
    assert preflight.cache(aws.client("elasticache"), group) == Result(Outcome.PASS, f"{group} is available")


def test_a_missing_replication_group_fails(aws):
    group = PROD.cache.replication_group_id
    result = preflight.cache(aws.client("elasticache"), group)
    assert result == Result(Outcome.FAIL, f"no replication group {group} in the stack's region")


def test_a_replication_group_being_modified_fails(aws):
    """Stubbed: moto's replication groups are always `available`."""
    group = PROD.cache.replication_group_id
    client = aws.client("elasticache")
    with Stubber(client) as stubber:
        stubber.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{"ReplicationGroupId": group, "Status": "modifying"}]},
            {"ReplicationGroupId": group},
        )
        assert preflight.cache(client, group) == Result(Outcome.FAIL, f"{group} is modifying")


# --- cluster capacity -------------------------------------------------------------------------


def node(name: str, zone: str, *, cpu="3920m", memory="15147848Ki", not_ready=False, cordoned=False, taints=()) -> dict:
    """A Node as `kubectl get nodes -o json` lists it (an EKS m6i.xlarge by default)."""
    conditions = [
        {"type": kind, "status": "False", "reason": f"KubeletHas{reason}"}
        for kind, reason in (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"))
    ]
    conditions.append({"type": "Ready", "status": "False" if not_ready else "True", "reason": "KubeletReady"})
    spec = {"providerID": f"aws:///{zone}/i-0{hashlib.sha1(name.encode()).hexdigest()[:16]}"}
    if cordoned:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = list(taints)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": zone,
                "node.kubernetes.io/instance-type": "m6i.xlarge",
                "eks.amazonaws.com/nodegroup": "general",
            },
        },
        "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "memory": "16073544Ki", "pods": "58"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "58"},
            "conditions": conditions,
        },
    }


def pod(namespace: str, name: str, node_name: str, cpu: str, memory: str, **extra) -> dict:
    """A Pod as `kubectl get pods -A -o json` lists it; `mesh` adds Istio's init and sidecar."""
    spec: dict = {
        "nodeName": node_name,
        "containers": [
            {
                "name": name.split("-")[0],
                "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }
        ],
    }
    if extra.get("mesh"):
        spec["initContainers"] = [
            {"name": "istio-init", "resources": {"requests": {"cpu": "10m", "memory": "40Mi"}}},
            {
                "name": "istio-proxy",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            },
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": extra.get("labels", {})},
        "spec": spec,
        "status": {"phase": extra.get("phase", "Running"), "hostIP": "10.30.1.10"},
    }


NODES = [node(f"ip-10-30-{i}-10.ec2.internal", f"{REGION}{'abc'[i]}") for i in range(3)]


def system_pods(nodes: list[dict]) -> list[dict]:
    pods = []
    for n in nodes:
        name = n["metadata"]["name"]
        pods += [
            pod("kube-system", f"aws-node-{name[-8:]}", name, "25m", "0"),
            pod("kube-system", f"kube-proxy-{name[-8:]}", name, "100m", "0"),
        ]
    return pods + [
        pod("kube-system", f"coredns-5d8f-{i}", nodes[i]["metadata"]["name"], "100m", "70Mi") for i in range(2)
    ]


def app_pods(stack: str, settings: StackSettings, running: dict[tuple[str, str], str], nodes: list[dict]) -> list[dict]:
    """Each running (workload, track) at its minReplicas, meshed, spread over the nodes."""
    pods = []
    for (workload, track), version in running.items():
        w = settings.workloads[workload]
        for i in range(w.min_replicas):
            pods.append(
                pod(
                    settings.namespace,
                    f"{naming.object_name(workload, track)}-7d9f8b6c5d-{i:05d}",
                    nodes[i % len(nodes)]["metadata"]["name"],
                    w.cpu_request,
                    f"{w.memory_mib}Mi",
                    labels=naming.pod_labels(stack, workload, track, version),
                    mesh=True,
                )
            )
    return pods


def serving(nodes: list[dict], pods: list[dict]):
    """A kubectl runner answering `get nodes` and `get pods -A` with these objects."""
    calls: list[list[str]] = []

    def kubectl(args):
        calls.append(list(args))
        items = {("get", "nodes", "-o", "json"): nodes, ("get", "pods", "-A", "-o", "json"): pods}[tuple(args)]
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})

    kubectl.calls = calls  # type: ignore[attr-defined]
    return kubectl


STABLE_ONLY = {("web", "stable"): "v1.4.2", ("worker", "stable"): "v1.4.2"}
"""prod before its canary starts (the pinned release runs v1.5.0 as the canary)."""


def test_room_for_the_new_canary_track_passes():
    web = PROD.workloads["web"]
    pods = system_pods(NODES) + app_pods("prod", PROD, STABLE_ONLY, NODES)
    pods.append(pod("batch", "report-28391", NODES[0]["metadata"]["name"], "3", "12Gi", phase="Succeeded"))
    result = preflight.cluster_capacity(serving(NODES, pods), PROD)
    assert result.outcome is Outcome.PASS, result.detail
    assert result.detail == (
        f"web canary: {web.min_replicas} × {web.cpu_request} CPU, {web.memory_mib}Mi: "
        f"all {web.min_replicas} new pods fit on 3 schedulable nodes"
    )


def test_no_room_for_the_new_canary_track_fails_and_unusable_nodes_do_not_count():
    web = PROD.workloads["web"]
    unusable = [
        node("ip-10-30-9-11.ec2.internal", f"{REGION}a", cordoned=True),
        node(
            "ip-10-30-9-12.ec2.internal",
            f"{REGION}b",
            taints=[{"key": "dedicated", "value": "monitoring", "effect": "NoSchedule"}],
        ),
        node("ip-10-30-9-13.ec2.internal", f"{REGION}c", not_ready=True),
    ]
    busy = [pod("analytics", f"spark-{i}", n["metadata"]["name"], "3", "8Gi") for i, n in enumerate(NODES)]
    pods = system_pods(NODES) + app_pods("prod", PROD, STABLE_ONLY, NODES) + busy
    result = preflight.cluster_capacity(serving(NODES + unusable, pods), PROD)
    assert result.outcome is Outcome.FAIL
    assert result.detail.endswith(
        f"no room for {web.min_replicas} of the {web.min_replicas} new pods on 3 schedulable nodes"
    )


def test_a_release_whose_tracks_all_run_starts_nothing_new():
    running = {**STABLE_ONLY, ("web", "canary"): "v1.5.0"}
    tiny = [node("ip-10-30-0-10.ec2.internal", f"{REGION}a", cpu="100m", memory="1Gi")]
    result = preflight.cluster_capacity(serving(tiny, app_pods("prod", PROD, running, tiny)), PROD)
    assert result == Result(Outcome.PASS, "no new track: every Deployment of the release already has pods")


def test_blue_green_counts_the_colour_that_is_not_running_at_webs_min_replicas():
    staging = settings_of("staging")
    assert pinned_release("staging")["active"] == "blue"
    pods = app_pods("staging", staging, {("web", "blue"): "v1.4.2", ("worker", "stable"): "v1.4.2"}, NODES)
    new = preflight.new_pods(staging, pods)
    assert [(p.workload, p.track, p.count) for p in new] == [("web", "green", staging.workloads["web"].min_replicas)]


def test_a_first_deploy_counts_every_track_and_pods_elsewhere_do_not_count():
    elsewhere = app_pods("prod", PROD, STABLE_ONLY, NODES)
    for p in elsewhere:
        p["metadata"]["namespace"] = "plexichat-old"
    new = preflight.new_pods(PROD, elsewhere)
    assert {(p.workload, p.track) for p in new} == {("web", "stable"), ("web", "canary"), ("worker", "stable")}


# --- kubectl ----------------------------------------------------------------------------------


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch):
    """A `kubectl` first on PATH that prints what `get nodes` and `get pods -A` would; it records
    its arguments in `calls`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    context = PROD.kubernetes.context
    script.write_text(
        "#!/bin/sh\n"
        'here=$(dirname "$0")\n'
        'printf \'%s\\n\' "$*" >> "$here/calls"\n'
        'case "$*" in\n'
        f'  "--context {context} get nodes -o json") cat "$here/nodes.json" ;;\n'
        f'  "--context {context} get pods -A -o json") cat "$here/pods.json" ;;\n'
        f'  "--context {context} get configmap istio -n istio-system -o json") cat "$here/mesh.json" ;;\n'
        '  *) echo "error: not the stack\'s context, or not a command of preflight: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def serve(nodes: list[dict], pods: list[dict], mesh: str = MESH_TLS13) -> None:
        for name, items in (("nodes", nodes), ("pods", pods)):
            (bin_dir / f"{name}.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mesh": mesh}}
        (bin_dir / "mesh.json").write_text(json.dumps(config_map))

    serve.calls = bin_dir / "calls"  # type: ignore[attr-defined]
    return serve


MESH_TLS13 = "defaultConfig:\n  holdApplicationUntilProxyStarts: true\nmeshMTLS:\n  minProtocolVersion: TLSV1_3\n"


def test_a_mesh_requiring_tls_1_3_passes_and_istios_default_fails(fake_kubectl):
    kubectl = preflight.kubectl_command(PROD.kubernetes.context)
    fake_kubectl(NODES, [])
    assert preflight.mesh_mtls(kubectl, "istio-system") == Result(
        Outcome.PASS, "meshMTLS.minProtocolVersion TLSV1_3; wanted TLSV1_3"
    )
    for mesh in ("defaultConfig: {}\n", "meshMTLS:\n  minProtocolVersion: TLSV1_2\n"):
        fake_kubectl(NODES, [], mesh)
        assert preflight.mesh_mtls(kubectl, "istio-system").outcome is Outcome.FAIL
    fake_kubectl(NODES, [], "meshMTLS: [unclosed\n")
    with pytest.raises(CheckError, match="not YAML"):
        preflight.mesh_mtls(kubectl, "istio-system")


def test_kubectl_runs_with_the_stacks_context(fake_kubectl):
    fake_kubectl(NODES, system_pods(NODES))
    kubectl = preflight.kubectl_command(PROD.kubernetes.context)
    assert json.loads(kubectl(["get", "nodes", "-o", "json"]))["items"] == NODES
    assert fake_kubectl.calls.read_text() == f"--context {PROD.kubernetes.context} get nodes -o json\n"


def test_kubectl_failing_or_missing_fails_the_check(fake_kubectl, monkeypatch):
    fake_kubectl(NODES, [])
    with pytest.raises(CheckError, match=r"^`kubectl --context plexichat-qa get nodes -o json` failed: error: not the"):
        preflight.cluster_capacity(preflight.kubectl_command("plexichat-qa"), PROD)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CheckError, match=r"^kubectl is not installed \(not on PATH\)$"):
        preflight.cluster_capacity(preflight.kubectl_command(PROD.kubernetes.context), PROD)


# --- load balancer TLS (moto) -----------------------------------------------------------------


def load_balancer(session, *policies: str) -> str:
    """An ALB with one HTTPS listener per policy (ports 443, 8443, ...) and a plain HTTP one."""
    ec2, elbv2 = session.client("ec2"), session.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"]
        for n, zone in ((1, "a"), (2, "b"))
    ]
    arn = elbv2.create_load_balancer(Name="plexichat-prod", Subnets=[s["SubnetId"] for s in subnets])["LoadBalancers"][
        0
    ]["LoadBalancerArn"]
    certificate = session.client("acm").request_certificate(DomainName="app.plexichat.com")["CertificateArn"]
    action = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    elbv2.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=action)
    for n, policy in enumerate(policies):
        elbv2.create_listener(
            LoadBalancerArn=arn,
            Protocol="HTTPS",
            Port=443 + n * 8000,
            SslPolicy=policy,
            Certificates=[{"CertificateArn": certificate}],
            DefaultActions=action,
        )
    return arn


def test_https_listeners_with_tls_1_3_policies_pass(aws):
    arn = load_balancer(aws, "ELBSecurityPolicy-TLS13-1-3-2021-06", "ELBSecurityPolicy-TLS13-1-2-2021-06")
    result = preflight.load_balancer_tls(aws.client("elbv2"), arn)
    assert result == Result(
        Outcome.PASS, "HTTPS:443 ELBSecurityPolicy-TLS13-1-3-2021-06, HTTPS:8443 ELBSecurityPolicy-TLS13-1-2-2021-06"
    )


@pytest.mark.parametrize("dns_failover, cdn", [(True, False), (False, True), (True, True)])
def test_with_route53_health_checks_or_the_cdn_a_tls_1_3_only_policy_fails(aws, dns_failover, cdn):
    """Both reach the load balancer with TLS 1.2 at most: Route 53's checkers, and CloudFront
    towards its origin (the app host, docs/edge.md)."""
    arn = load_balancer(aws, "ELBSecurityPolicy-TLS13-1-3-2021-06")
    assert preflight.load_balancer_tls(aws.client("elbv2"), arn).outcome is Outcome.PASS
    settings = PROD.model_copy(
        update={
            "dr": PROD.dr.model_copy(update={"hosted_zone_id": "Z0A1B2C3D4E5F6PLEXI" if dns_failover else None}),
            "edge": PROD.edge.model_copy(update={"cdn": PROD.edge.cdn.model_copy(update={"enabled": cdn})}),
        }
    )
    clients = preflight._tls12_clients(settings)
    result = preflight.load_balancer_tls(aws.client("elbv2"), arn, clients)
    assert result.outcome is Outcome.FAIL
    assert ("Route 53's health checkers (TLS 1.2 at most)" in result.detail) is dns_failover
    assert ("CloudFront's origin requests" in result.detail) is cdn
    assert result.detail.endswith("cannot reach: use an ELBSecurityPolicy-TLS13-* policy (NGINX accepts TLS 1.3 only)")


def test_a_listener_without_tls_1_3_or_no_https_listener_fails(aws):
    arn = load_balancer(aws, "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-2016-08")
    result = preflight.load_balancer_tls(aws.client("elbv2"), arn)
    assert result.outcome is Outcome.FAIL
    assert result.detail.startswith("HTTPS:8443 uses ELBSecurityPolicy-2016-08: use an ELBSecurityPolicy-TLS13-*")
    plain = load_balancer(aws)
    assert preflight.load_balancer_tls(aws.client("elbv2"), plain) == Result(
        Outcome.FAIL, "the load balancer has no HTTPS listener"
    )


def test_without_a_load_balancer_the_check_is_skipped(aws):
    assert preflight.load_balancer_tls(aws.client("elbv2"), None).outcome is Outcome.SKIPPED


def stubbed_elbv2(session, arn: str, policy: str):
    """The stack's load balancer as ELB describes it (moto cannot create one with a given ARN)."""
    client = session.client("elbv2")
    stubber = Stubber(client)
    listener = {"ListenerArn": f"{arn}/listener", "Protocol": "HTTPS", "Port": 443, "SslPolicy": policy}
    stubber.add_response("describe_listeners", {"Listeners": [listener]}, {"LoadBalancerArn": arn})
    logging_into = {"enabled": "true", "bucket": f"plexichat-prod-lb-{ACCOUNT}-access-logs", "prefix": "alb"}
    attributes = [{"Key": f"access_logs.s3.{key}", "Value": value} for key, value in logging_into.items()]
    stubber.add_response("describe_load_balancer_attributes", {"Attributes": attributes}, {"LoadBalancerArn": arn})
    stubber.activate()
    return client


# --- load balancer access logs ------------------------------------------------------------------

ACCOUNT = "123456789012"
"""moto's account, and the one in the stack files' load balancer ARNs."""
LOG_BUCKET = f"plexichat-prod-lb-{ACCOUNT}-access-logs"


def logging_load_balancer(session, **attributes: str) -> str:
    """An ALB (moto) with the given `access_logs.s3.*` attributes."""
    arn = load_balancer(session)
    values = [{"Key": f"access_logs.s3.{key}", "Value": value} for key, value in attributes.items()]
    if values:
        session.client("elbv2").modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=values)
    return arn


def test_access_logs_into_the_stacks_log_bucket_pass(aws):
    arn = logging_load_balancer(aws, enabled="true", bucket=LOG_BUCKET, prefix="alb")
    result = preflight.load_balancer_access_logs(aws.client("elbv2"), arn, LOG_BUCKET, "alb")
    assert result == Result(Outcome.PASS, f"access logs into s3://{LOG_BUCKET}/alb/")


def test_access_logs_off_fail(aws):
    arn = logging_load_balancer(aws)  # a new load balancer logs nothing
    result = preflight.load_balancer_access_logs(aws.client("elbv2"), arn, LOG_BUCKET, "alb")
    assert result.outcome is Outcome.FAIL and result.detail.startswith("access logs are off")


@pytest.mark.parametrize(("bucket", "prefix"), [("someone-elses-logs", "alb"), (LOG_BUCKET, "elb")])
def test_access_logs_elsewhere_fail(aws, bucket, prefix):
    arn = logging_load_balancer(aws, enabled="true", bucket=bucket, prefix=prefix)
    result = preflight.load_balancer_access_logs(aws.client("elbv2"), arn, LOG_BUCKET, "alb")
    assert result == Result(
        Outcome.FAIL, f"access logs go to s3://{bucket}/{prefix}/, not the stack's log bucket s3://{LOG_BUCKET}/alb/"
    )


def test_access_logs_without_a_load_balancer_are_skipped(aws):
    result = preflight.load_balancer_access_logs(aws.client("elbv2"), None, LOG_BUCKET, "alb")
    assert result.outcome is Outcome.SKIPPED


# --- critical alerts --------------------------------------------------------------------------


def answering(*series: dict):
    queries: list[tuple[str, str]] = []

    def query(url, promql):
        queries.append((url, promql))
        return [(labels, 1.0) for labels in series]

    query.queries = queries  # type: ignore[attr-defined]
    return query


URL = "http://127.0.0.1:9090"


def test_no_critical_alert_firing_passes():
    query = answering()
    assert preflight.critical_alerts(URL, query) == Result(Outcome.PASS, f"none firing ({URL})")
    assert query.queries == [(URL, 'ALERTS{alertstate="firing", severity="critical"}')]


def test_a_firing_critical_alert_fails():
    firing = {"alertname": "PlexichatErrorRatioCritical", "alertstate": "firing", "severity": "critical"}
    result = preflight.critical_alerts(URL, answering(firing, {**firing, "track": "canary"}))
    assert result == Result(Outcome.FAIL, "2 firing: PlexichatErrorRatioCritical")


def test_without_a_prometheus_url_the_check_is_skipped_not_passed():
    result = preflight.critical_alerts(None, answering())
    assert result.outcome is Outcome.SKIPPED and result.detail.startswith("no Prometheus URL")
    results = {"critical alerts": result, "cache": Result(Outcome.PASS, "")}
    assert preflight.stopping(results, strict=False) == []
    assert preflight.stopping(results, strict=True) == ["critical alerts"]


# --- the cluster API endpoint (docs/admin-access.md) ---------------------------------------------


def eks_cluster(session, *, private: bool, public_cidrs: list[str] | None) -> str:
    """prod's EKS cluster in moto: a private endpoint or not, a public one for `public_cidrs`
    (None: no public endpoint; [] leaves EKS's default, everywhere)."""
    name = PROD.kubernetes.eks_cluster
    assert name is not None
    vpc = {"subnetIds": PROD.network.private_subnet_ids, "endpointPrivateAccess": private}
    vpc["endpointPublicAccess"] = public_cidrs is not None
    if public_cidrs:
        vpc["publicAccessCidrs"] = public_cidrs
    session.client("eks").create_cluster(name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig=vpc)
    return name


@pytest.mark.parametrize(
    ("private", "public", "outcome", "words"),
    [
        (True, None, Outcome.PASS, "private endpoint only"),
        (True, ["203.0.113.0/24", "198.51.100.7/32"], Outcome.PASS, "public only from 198.51.100.7/32, 203.0.113.0/24"),
        (True, ["0.0.0.0/0"], Outcome.FAIL, "the public endpoint admits 0.0.0.0/0"),
        (True, [], Outcome.FAIL, "the public endpoint admits 0.0.0.0/0"),  # EKS's default
        (False, ["203.0.113.0/24"], Outcome.FAIL, "no private endpoint"),
    ],
)
def test_the_cluster_api_is_private_or_open_to_listed_ranges_only(aws, private, public, outcome, words):
    name = eks_cluster(aws, private=private, public_cidrs=public)
    result = preflight.cluster_api_endpoint(aws.client("eks"), name)
    assert result.outcome is outcome and words in result.detail, result


def test_without_a_cluster_name_the_endpoint_check_is_skipped(aws):
    result = preflight.cluster_api_endpoint(aws.client("eks"), None)
    assert result.outcome is Outcome.SKIPPED and "plexichat:kubernetes.eksCluster" in result.detail


CHECKS = [
    "database backup",
    "database instances",
    "replica lag",
    "cache",
    "cluster capacity",
    "cluster API endpoint",
    "load balancer TLS",
    "load balancer access logs",
    "mesh mTLS",
    "critical alerts",
]
"""Every check of `preflight`, in the table's order."""


def test_checks_that_cannot_look_fail_and_the_others_still_run(aws, monkeypatch):
    """Nothing exists in this AWS account, kubectl is missing, Prometheus does not answer."""
    monkeypatch.setenv("PATH", "/nonexistent")

    def unavailable(url, promql):
        raise PrometheusUnavailable(f"{url}: connection refused")

    results = preflight.run_checks(PROD, "prod", aws, preflight.kubectl_command(None), URL, unavailable, now())
    assert list(results) == CHECKS
    assert {r.outcome for r in results.values()} == {Outcome.FAIL}
    assert results["critical alerts"].detail == f"Prometheus did not answer: {URL}: connection refused"


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def prometheus_api():
    """Prometheus's query API answering every query with the series in `firing`."""
    firing: list[dict] = []
    queries: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            queries.append(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["query"][0])
            result = [{"metric": labels, "value": [time.time(), "1"]} for labels in firing]
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.firing, server.queries = firing, queries  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_port}"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


class Session:
    """A boto3 session under moto, except for the services given as makers of stubbed clients
    (one per run of the command, as a real session makes)."""

    def __init__(self, **stubbed) -> None:
        self.stubbed = stubbed

    def client(self, service: str, region_name: str | None = None):
        make = self.stubbed.get(service)
        return make() if make else boto3.client(service, region_name=region_name)


@pytest.fixture
def live_prod(tmp_path, aws, fake_kubectl, monkeypatch):
    """prod healthy: a fresh backup, the data tier available, room for the canary."""
    project = project_copy(tmp_path)
    arn = create_database(aws)["DBInstanceArn"]
    put_replica_lag(aws, dict.fromkeys(REPLICAS, 1.0))
    create_cache(aws)
    backup = functools.partial(stubbed_backup, aws, arn, [recovery_point(arn, 4)])
    elbv2 = functools.partial(
        stubbed_elbv2, aws, PROD.ingress.waf.load_balancer_arn, "ELBSecurityPolicy-TLS13-1-2-2021-06"
    )
    monkeypatch.setattr(preflight, "aws_session", lambda: Session(backup=backup, elbv2=elbv2))
    fake_kubectl(NODES, system_pods(NODES) + app_pods("prod", PROD, STABLE_ONLY, NODES))
    eks_cluster(aws, private=True, public_cidrs=["203.0.113.0/24"])
    return project


def plexictl(project, *args: str) -> int:
    return main(["--project-dir", str(project), "preflight", "--stack", "prod", *args])


def rows(output: str) -> dict[str, str]:
    return {name: result for name, result in re.findall(r"^(\w[\w ]*?)\s{2,}(pass|FAIL|skipped)\s", output, re.M)}


def test_every_check_passing_prints_the_table_and_exits_0(live_prod, prometheus_api, capsys):
    assert plexictl(live_prod, "--prometheus", prometheus_api.url, "--strict") == EXIT_DONE
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "result", "detail"]
    assert rows(out) == dict.fromkeys(CHECKS, "pass")
    assert out.rstrip().endswith("prod: ready to deploy: every check passed")
    assert prometheus_api.queries == [CRITICAL_ALERTS]


def test_a_skipped_check_passes_but_stops_the_deploy_with_strict(live_prod, capsys):
    assert PROD.monitoring.prometheus_url is None  # so no --prometheus means no Prometheus
    assert plexictl(live_prod) == EXIT_DONE
    out = capsys.readouterr().out
    assert rows(out)["critical alerts"] == "skipped"
    assert "prod: ready to deploy, without critical alerts (skipped; --strict" in out
    assert plexictl(live_prod, "--strict") == EXIT_CANNOT_DEPLOY
    assert "prod: do not deploy now: critical alerts did not pass" in capsys.readouterr().out


def test_a_failing_check_exits_3_and_names_it(live_prod, prometheus_api, aws, capsys):
    prometheus_api.firing.append({"alertname": "PlexichatSmokeProbeFailing", "severity": "critical"})
    aws.client("elasticache").delete_replication_group(ReplicationGroupId=PROD.cache.replication_group_id)
    assert plexictl(live_prod, "--prometheus", prometheus_api.url) == EXIT_CANNOT_DEPLOY
    out = capsys.readouterr().out
    assert rows(out) == {
        **dict.fromkeys(
            [
                "database backup",
                "database instances",
                "replica lag",
                "cluster capacity",
                "cluster API endpoint",
                "load balancer TLS",
                "load balancer access logs",
                "mesh mTLS",
            ],
            "pass",
        ),
        "cache": "FAIL",
        "critical alerts": "FAIL",
    }
    assert "1 firing: PlexichatSmokeProbeFailing" in out
    assert "prod: do not deploy now: cache, critical alerts did not pass" in out


def test_an_unknown_stack_or_invalid_config_exits_1(tmp_path, capsys):
    project = project_copy(tmp_path)
    assert main(["--project-dir", str(project), "preflight", "--stack", "qa"]) == EXIT_INVALID
    assert "no stack 'qa'" in capsys.readouterr().err
    path = project / "Pulumi.prod.yaml"
    path.write_text(
        path.read_text().replace("replicationGroupId: plexichat-prod", "replicationGroupId: Plexichat_Prod")
    )
    assert plexictl(project) == EXIT_INVALID
    assert "plexichat:cache.replicationGroupId" in capsys.readouterr().err
