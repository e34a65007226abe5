"""East-west least privilege (issue #14): who may reach which pod and port, and where pods may go.

The rendered policies are evaluated, not pattern-matched: a small Istio authorization evaluator
and a small NetworkPolicy evaluator answer "may X reach Y on port P", over a matrix of callers,
pods and ports. Both refuse fields they do not model, so a policy they cannot read fails here
rather than passing unread. The config each test needs is built in the test (`render_edited`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import pulumi
import pytest

from components.config.cluster import NetworkSettings
from plexictl.offline import Rendering
from tests.conftest import STACKS, render_edited, rendered
from tests.crd_models import validate_strictly

AUTHORIZATION_POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
APP_NAMESPACE = "plexichat"
NGINX_PRINCIPAL = "cluster.local/ns/nginx-ingress/sa/nginx-ingress"
SIDECAR_STATS_PORTS = (15020, 15090)

DATA_SUBNETS = ["10.30.32.0/24", "10.30.33.0/24"]
ENDPOINT_SUBNETS = ["10.30.48.0/24"]
S3_RANGES = ["52.216.0.0/15"]


def _network(**keys):
    """An edit that sets `plexichat:network` keys (and drops those given as None)."""

    def edit(config):
        network = config["plexichat:network"]
        for key, value in keys.items():
            if value is None:
                network.pop(key, None)
            else:
                network[key] = value

    return edit


EAST_WEST = _network(dataSubnetCidrs=DATA_SUBNETS, egressCidrs=ENDPOINT_SUBNETS, s3PrefixListCidrs=S3_RANGES)


@pytest.fixture(scope="module")
def prod() -> Rendering:
    """prod (vpcCidr 10.30.0.0/16) with the east-west settings of this module."""
    return render_edited("prod", EAST_WEST)


# --- the pods, from the rendered workloads ----------------------------------------------------


def _pod_template(rendering: Rendering, name: str) -> dict:
    """The pod template of the first Deployment or Job whose name starts with `name`."""
    owner = next(
        r
        for r in rendering.resources
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
        and r.inputs["metadata"]["name"].startswith(name)
    )
    return owner.inputs["spec"]["template"]


def _labels(rendering: Rendering, name: str) -> dict[str, str]:
    return _pod_template(rendering, name)["metadata"]["labels"]


def _ports(rendering: Rendering, name: str, port_name: str) -> set[int]:
    containers = _pod_template(rendering, name)["spec"]["containers"]
    return {p["containerPort"] for c in containers for p in c.get("ports", []) if p["name"] == port_name}


# --- Istio authorization ------------------------------------------------------------------------


def _authorization_policies(rendering: Rendering) -> list[dict]:
    return [p.inputs["spec"] for p in rendering.of_type(AUTHORIZATION_POLICY)]


def istio_allows(policies: list[dict], principal: str, pod_labels: Mapping[str, str], port: int) -> bool:
    """Istio's evaluation for a workload with a sidecar (no CUSTOM or DENY policy exists here):
    no ALLOW policy selects the workload -> allowed; else allowed iff some rule of one matches."""
    selecting = []
    for spec in policies:
        assert set(spec) <= {"selector", "action", "rules"}, spec
        assert spec.get("action", "ALLOW") == "ALLOW", spec
        if spec.get("selector", {}).get("matchLabels", {}).items() <= pod_labels.items():
            selecting.append(spec)
    if not selecting:
        return True
    return any(_rule_matches(rule, principal, port) for spec in selecting for rule in spec.get("rules", []))


def _rule_matches(rule: dict, principal: str, port: int) -> bool:
    assert set(rule) <= {"from", "to"}, rule
    sources = [f["source"] for f in rule.get("from", [])]
    operations = [t["operation"] for t in rule.get("to", [])]
    for source in sources:
        assert set(source) == {"principals"}, source
    for operation in operations:
        assert set(operation) == {"ports"}, operation
    from_ok = not sources or any(principal in s["principals"] for s in sources)
    to_ok = not operations or any(str(port) in o["ports"] for o in operations)
    return from_ok and to_ok


@pytest.mark.parametrize("stack", STACKS)
def test_authorization_policies_are_valid_against_the_istio_crd_models(stack):
    policies = rendered(stack).of_type(AUTHORIZATION_POLICY)
    assert {p.inputs["metadata"]["name"] for p in policies} == {"allow-nothing", "allow-web-from-ingress"}
    for policy in policies:
        validate_strictly(policy.manifest())


def test_the_namespace_denies_every_mesh_request_by_default(prod):
    (deny,) = [p for p in prod.of_type(AUTHORIZATION_POLICY) if p.inputs["metadata"]["name"] == "allow-nothing"]
    # An ALLOW policy with no selector and no rule: every sidecar of the namespace, nothing matches.
    assert deny.inputs["spec"] == {"action": "ALLOW"}
    assert deny.inputs["metadata"]["namespace"] == APP_NAMESPACE
    # Created after the one allowance, so NGINX never meets the deny alone.
    (allow,) = [p for p in prod.of_type(AUTHORIZATION_POLICY) if p.inputs["metadata"]["name"] != "allow-nothing"]
    assert allow.urn in deny.dependencies


def test_only_the_nginx_identity_reaches_web_and_only_on_the_web_port(prod):
    policies = _authorization_policies(prod)
    web, worker = _labels(prod, "plexichat-web-stable"), _labels(prod, "plexichat-worker-")
    (web_port,) = _ports(prod, "plexichat-web-stable", "http")
    callers = [
        NGINX_PRINCIPAL,
        f"cluster.local/ns/{APP_NAMESPACE}/sa/plexichat-worker-stable",
        f"cluster.local/ns/{APP_NAMESPACE}/sa/plexichat-web-canary",
        "cluster.local/ns/nginx-ingress/sa/default",
        "cluster.local/ns/default/sa/nginx-ingress",
        "cluster.local/ns/monitoring/sa/prometheus",
    ]
    for caller in callers:
        for pod_name, pod in (("web", web), ("worker", worker)):
            for port in (web_port, web_port + 1, 9090):
                expected = (caller, pod_name, port) == (NGINX_PRINCIPAL, "web", web_port)
                assert istio_allows(policies, caller, pod, port) is expected, (caller, pod_name, port)


def test_the_nginx_identity_follows_its_settings():
    def elsewhere(config):
        config["plexichat:kubernetes"].update({"ingressNamespace": "ingress-nginx", "ingressServiceAccount": "edge"})

    rendering = render_edited("dev", elsewhere)
    policies = _authorization_policies(rendering)
    web = _labels(rendering, "plexichat-web-")
    (port,) = _ports(rendering, "plexichat-web-", "http")
    assert istio_allows(policies, "cluster.local/ns/ingress-nginx/sa/edge", web, port)
    assert not istio_allows(policies, NGINX_PRINCIPAL, web, port)


# --- NetworkPolicies ------------------------------------------------------------------------------


class Pod:
    def __init__(self, namespace: str, labels: Mapping[str, str]) -> None:
        self.namespace, self.labels = namespace, dict(labels)


def _network_policies(rendering: Rendering) -> list[dict]:
    return [
        p.inputs["spec"]
        for p in rendering.of_type(NETWORK_POLICY)
        if p.inputs["metadata"]["namespace"] == APP_NAMESPACE
    ]


def _selects(selector: Mapping, labels: Mapping[str, str]) -> bool:
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "DoesNotExist":
            ok = key not in labels
        elif operator == "Exists":
            ok = key in labels
        elif operator == "In":
            ok = labels.get(key) in expression["values"]
        elif operator == "NotIn":
            ok = labels.get(key) not in expression["values"]
        else:
            raise AssertionError(expression)
        if not ok:
            return False
    return True


def _port_matches(ports: list[dict] | None, port: int) -> bool:
    return not ports or any(p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports)


def _peer_matches(peer: dict, target: Pod | ipaddress.IPv4Address) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector", "ipBlock"}, peer
    if "ipBlock" in peer:
        if isinstance(target, Pod):
            return True  # pod IPs could fall in it: count it as open (errs towards reachable)
        block = peer["ipBlock"]
        excepted = any(target in ipaddress.IPv4Network(e) for e in block.get("except", []))
        return target in ipaddress.IPv4Network(block["cidr"]) and not excepted
    if not isinstance(target, Pod):
        return False
    if "namespaceSelector" in peer:
        namespace_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": target.namespace})
    else:
        namespace_ok = target.namespace == APP_NAMESPACE  # a bare podSelector: the policy's namespace
    return namespace_ok and _selects(peer.get("podSelector", {}), target.labels)


def _allowed(policies: list[dict], pod: Pod, direction: str, other: Pod | ipaddress.IPv4Address, port: int) -> bool:
    """Kubernetes semantics: no policy of this direction selects the pod -> allowed; else allowed
    iff some rule of one of them matches the other end and the port."""
    kind, peers_key = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    if pod.namespace != APP_NAMESPACE:
        return True  # other namespaces' policies are not ours
    selecting = [p for p in policies if kind in p["policyTypes"] and _selects(p["podSelector"], pod.labels)]
    if not selecting:
        return True
    return any(
        _port_matches(rule.get("ports"), port)
        and (not rule.get(peers_key) or any(_peer_matches(peer, other) for peer in rule[peers_key]))
        for policy in selecting
        for rule in policy.get(direction, [])
    )


def can_reach(policies: list[dict], source: Pod, destination: Pod | ipaddress.IPv4Address, port: int) -> bool:
    """Whether `source` may open a TCP connection to `destination` (a pod or an address) on `port`."""
    egress = _allowed(policies, source, "egress", destination, port)
    if not isinstance(destination, Pod):
        return egress
    return egress and _allowed(policies, destination, "ingress", source, port)


def test_metrics_ports_are_reachable_only_from_the_monitoring_namespace(prod):
    policies = _network_policies(prod)
    web, worker = (
        Pod(APP_NAMESPACE, _labels(prod, "plexichat-web-stable")),
        Pod(APP_NAMESPACE, _labels(prod, "plexichat-worker-")),
    )
    metrics = {
        "web": (web, _ports(prod, "plexichat-web-stable", "metrics")),
        "worker": (worker, _ports(prod, "plexichat-worker-", "metrics")),
    }
    sources = {
        "web": web,
        "worker": worker,
        "migration": Pod(APP_NAMESPACE, _labels(prod, "plexichat-migrate-")),
        "prometheus": Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "nginx": Pod("nginx-ingress", {"app.kubernetes.io/name": "nginx-ingress"}),
        "elsewhere": Pod("default", {"app": "anything"}),
    }
    for target, (pod, ports) in metrics.items():
        assert ports, target
        for port in (*ports, *SIDECAR_STATS_PORTS):
            for name, source in sources.items():
                assert can_reach(policies, source, pod, port) is (name == "prometheus"), (name, target, port)


def test_the_web_port_is_open_to_nginx_and_the_mesh_not_to_prometheus(prod):
    policies = _network_policies(prod)
    web = Pod(APP_NAMESPACE, _labels(prod, "plexichat-web-stable"))
    (port,) = _ports(prod, "plexichat-web-stable", "http")
    assert can_reach(policies, Pod("nginx-ingress", {"app": "nginx"}), web, port)
    assert can_reach(policies, Pod(APP_NAMESPACE, _labels(prod, "plexichat-worker-")), web, port)
    assert not can_reach(policies, Pod("monitoring", {"app": "prometheus"}), web, port)
    assert not can_reach(policies, Pod("default", {"app": "x"}), web, port)


def test_the_pods_reach_the_tracing_collector_on_its_port_only_while_tracing_is_on():
    """The sidecars export spans to the collector of monitoring.tracing (issue #16)."""

    def traced(collector_namespace: str | None):
        def edit(config):
            EAST_WEST(config)
            monitoring = config.setdefault("plexichat:monitoring", {})
            monitoring.pop("tracing", None)
            if collector_namespace is not None:
                monitoring["tracing"] = {
                    "extensionProviders": ["otel-tracing"],
                    "provider": "otel-tracing",
                    "collectorNamespace": collector_namespace,
                    "collectorPort": 4317,
                }

        return edit

    collector = Pod("tracing", {"app.kubernetes.io/name": "opentelemetry-collector"})
    elsewhere = Pod("monitoring", {"app.kubernetes.io/name": "opentelemetry-collector"})
    on, off = render_edited("prod", traced("tracing")), render_edited("prod", traced(None))
    for rendering, reachable in ((on, True), (off, False)):
        policies = _network_policies(rendering)
        pods = _app_and_job_pods(rendering)
        for name in ("web", "worker"):
            assert can_reach(policies, pods[name], collector, 4317) is reachable, name
            assert not can_reach(policies, pods[name], collector, 4318), name
            assert not can_reach(policies, pods[name], elsewhere, 4317), name
        # The Jobs keep their own, narrower egress: their spans are not worth a wider one.
        assert not can_reach(policies, pods["migration"], collector, 4317)


def _addresses_in(cidrs: list[str]) -> list[ipaddress.IPv4Address]:
    """The first and last address of each CIDR."""
    return [a for c in cidrs for a in (ipaddress.IPv4Network(c)[0], ipaddress.IPv4Network(c)[-1])]


OUTSIDE_DATA_IN_VPC = [ipaddress.IPv4Address("10.30.0.10"), ipaddress.IPv4Address("10.30.200.5")]
INTERNET = [ipaddress.IPv4Address("8.8.8.8"), ipaddress.IPv4Address("140.82.112.3")]


def _app_and_job_pods(rendering: Rendering) -> dict[str, Pod]:
    return {
        name: Pod(APP_NAMESPACE, _labels(rendering, prefix))
        for name, prefix in (
            ("web", "plexichat-web-stable"),
            ("worker", "plexichat-worker-"),
            ("migration", "plexichat-migrate-"),
            ("bootstrap", "plexichat-db-bootstrap"),
        )
    }


def test_database_and_cache_egress_go_only_to_the_data_subnets(prod):
    policies = _network_policies(prod)
    for name, pod in _app_and_job_pods(prod).items():
        ports = (5432, 6379) if name in ("web", "worker") else (5432,)
        for port in ports:
            for address in _addresses_in(DATA_SUBNETS):
                assert can_reach(policies, pod, address, port), (name, address, port)
            for address in OUTSIDE_DATA_IN_VPC + INTERNET:
                assert not can_reach(policies, pod, address, port), (name, address, port)
        if name not in ("web", "worker"):
            assert not can_reach(policies, pod, _addresses_in(DATA_SUBNETS)[0], 6379), name


def test_https_egress_goes_only_to_the_allow_list(prod):
    policies = _network_policies(prod)
    pods = _app_and_job_pods(prod)
    for name in ("web", "worker"):
        for address in _addresses_in(ENDPOINT_SUBNETS + S3_RANGES):
            assert can_reach(policies, pods[name], address, 443), (name, address)
    # The migration reaches the AWS interface endpoints only: no S3, and the bootstrap no HTTPS.
    for address in _addresses_in(ENDPOINT_SUBNETS):
        assert can_reach(policies, pods["migration"], address, 443), address
    assert not any(can_reach(policies, pods["migration"], a, 443) for a in _addresses_in(S3_RANGES))
    assert not any(can_reach(policies, pods["bootstrap"], a, 443) for a in _addresses_in(ENDPOINT_SUBNETS))
    for name, pod in pods.items():
        for address in INTERNET + OUTSIDE_DATA_IN_VPC:
            assert not can_reach(policies, pod, address, 443), (name, address)


def test_internet_egress_needs_the_named_override_and_stays_out_of_the_jobs():
    rendering = render_edited(
        "prod",
        _network(
            egressCidrs=[*ENDPOINT_SUBNETS, "0.0.0.0/0"],
            allowInternetEgress={"reason": "the app calls the push-notification providers"},
        ),
    )
    policies = _network_policies(rendering)
    pods = _app_and_job_pods(rendering)
    assert can_reach(policies, pods["web"], INTERNET[0], 443)
    assert not can_reach(policies, pods["web"], INTERNET[0], 5432)
    assert not can_reach(policies, pods["migration"], INTERNET[0], 443)
    assert can_reach(policies, pods["migration"], _addresses_in(ENDPOINT_SUBNETS)[0], 443)


def test_unset_data_and_egress_cidrs_default_to_the_vpc():
    settings = NetworkSettings.model_validate(
        {
            "vpcId": "vpc-0a1b2c3d4e5f60001",
            "vpcCidr": "10.10.0.0/16",
            "privateSubnetIds": ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"],
            "clusterSecurityGroupId": "sg-0a1b2c3d4e5f60021",
            "s3PrefixListCidrs": [],
        }
    )
    assert settings.data_cidrs == settings.https_cidrs == settings.endpoint_cidrs == ["10.10.0.0/16"]


# --- bad config: one RunError naming the key, before anything is registered ----------------------

BAD_NETWORK = [
    (
        _network(egressCidrs=["0.0.0.0/0"]),
        "plexichat:network.egressCidrs",
        ["['0.0.0.0/0']", "network.allowInternetEgress"],
    ),
    (
        _network(egressCidrs=[*ENDPOINT_SUBNETS, "52.94.0.0/22"]),
        "plexichat:network.egressCidrs",
        ["52.94.0.0/22", "network.allowInternetEgress"],
    ),
    (
        _network(dataSubnetCidrs=["10.30.32.0/24", "10.99.0.0/24"]),
        "plexichat:network.dataSubnetCidrs",
        ["['10.99.0.0/24']", "outside vpcCidr (10.30.0.0/16)"],
    ),
    (_network(dataSubnetCidrs=["10.30.0.0/15"]), "plexichat:network.dataSubnetCidrs", ["outside vpcCidr"]),
    (_network(s3PrefixListCidrs=["0.0.0.0/0"]), "plexichat:network.s3PrefixListCidrs", ["wider than /8"]),
    (_network(s3PrefixListCidrs=None), "plexichat:network.s3PrefixListCidrs", ["required"]),
    (
        _network(egressCidrs=["0.0.0.0/0"], allowInternetEgress={"reason": "  "}),
        "plexichat:network.allowInternetEgress.reason",
        ["must not be empty"],
    ),
    (
        _network(allowInternetEgress={"reason": "just in case"}),
        "plexichat:network.allowInternetEgress",
        ["no public range", "remove the override"],
    ),
    (_network(awsEndpointCidrs=ENDPOINT_SUBNETS), "plexichat:network.awsEndpointCidrs", ["egressCidrs"]),
]


@pytest.mark.parametrize(
    "edit,key,hints", BAD_NETWORK, ids=[f"{b[1].split('.', 1)[1]}-{i}" for i, b in enumerate(BAD_NETWORK)]
)
def test_bad_network_config_is_one_run_error_naming_the_key(edit, key, hints):
    from plexictl.offline import recording

    registered: list[str] = []
    original = recording.record
    recording.record = lambda request, urn, *rest: registered.append(urn) or original(request, urn, *rest)
    try:
        with pytest.raises(pulumi.RunError) as raised:
            render_edited("prod", lambda config: (EAST_WEST(config), edit(config)))
    finally:
        recording.record = original
    message = str(raised.value)
    lines = [line for line in message.splitlines() if line.strip().startswith(f"- {key}:")]
    assert lines, f"no problem reported for {key}:\n{message}"
    assert all(any(hint in line for line in lines) for hint in hints), message
    assert "Traceback" not in message
    assert registered == []


def test_a_bad_ingress_service_account_is_refused():
    def edit(config):
        config["plexichat:kubernetes"]["ingressServiceAccount"] = "NGINX_Ingress"

    with pytest.raises(pulumi.RunError) as raised:
        render_edited("dev", edit)
    assert "- plexichat:kubernetes.ingressServiceAccount: must be a DNS label" in str(raised.value)
