"""The edge: NGINX Ingress (either controller) hands every request to the mesh addressed to a
VirtualService host, TLS comes from a cert-manager Certificate, and the AWS WAF guards the load
balancer; in count mode only where the stack file says so. Bad edge settings are one RunError."""

from __future__ import annotations

import functools

import pulumi
import pytest

from components.release.plan import PREVIEW_HEADER
from plexictl.offline import Rendering
from tests.conftest import (
    STACKS,
    current_stack_file,
    render_edited,
    rendered,
    rendered_current,
)
from tests.crd_models import validate_strictly
from tests.release_state import pinned_release
from tests.test_settings import _remove, _set
from tests.test_traffic import (
    DEPLOYMENT,
    DESTINATION_RULE,
    VIRTUAL_SERVICE,
    _spec,
    choose,
)

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
CONTROLLERS = ("f5", "community")


@functools.cache
def _with_controller(stack: str, controller: str) -> Rendering:
    if controller == "f5":
        return rendered(stack)  # the stack files use the default controller
    return render_edited(stack, _set("ingress.controller", controller))


def mesh_host(ingress: dict, rule: dict) -> str | None:
    """The Host header the NGINX sidecar sees for a request matched by `rule`, or None when the
    controller would bypass the mesh (sending to pod IPs, so the VirtualService never applies).

    F5 NGINX Ingress Controller: upstreams are pod IPs unless `nginx.org/use-cluster-ip`; it
    always sends `proxy_set_header Host $host`. Community ingress-nginx: pod IPs unless
    `service-upstream`; Host is `upstream-vhost` when set, else the request's host.
    """
    annotations = ingress["metadata"].get("annotations", {})
    if "nginx.org/use-cluster-ip" in annotations:
        return rule["host"] if annotations["nginx.org/use-cluster-ip"] == "true" else None
    if annotations.get("nginx.ingress.kubernetes.io/service-upstream") != "true":
        return None
    return annotations.get("nginx.ingress.kubernetes.io/upstream-vhost", rule["host"])


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("stack", STACKS)
def test_the_mesh_sees_every_ingress_request_addressed_to_a_virtual_service_host(stack, controller):
    rendering = _with_controller(stack, controller)
    vs_hosts = _spec(rendering, VIRTUAL_SERVICE)["hosts"]
    ingresses = rendering.of_type(INGRESS)
    assert ingresses
    for ingress in ingresses:
        for rule in ingress.inputs["spec"]["rules"]:
            assert mesh_host(ingress.inputs, rule) in vs_hosts, (ingress.name, rule["host"])


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_preview_host_reaches_the_inactive_colour_end_to_end(controller):
    """Follow a request in the desired state: preview Ingress -> Service -> the host the mesh sees
    -> the first matching VirtualService route -> subset -> the Deployment whose pods it selects."""
    rendering = _with_controller("staging", controller)
    vs = _spec(rendering, VIRTUAL_SERVICE)
    subsets = {s["name"]: s["labels"] for s in _spec(rendering, DESTINATION_RULE)["subsets"]}
    service = rendering.one("kubernetes:core/v1:Service", "web-service").inputs

    def versions_reached(host: str, path: str, headers: dict[str, str] | None = None) -> set[str]:
        (ingress,) = [i for i in rendering.of_type(INGRESS) if i.inputs["spec"]["rules"][0]["host"] == host]
        rule = ingress.inputs["spec"]["rules"][0]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"]["number"] == service["spec"]["ports"][0]["port"]
        route = choose(vs["http"], mesh_host(ingress.inputs, rule), path, headers or {})
        reached = set()
        for destination in route["route"]:
            if destination["weight"] == 0:
                continue
            labels = subsets[destination["destination"]["subset"]]
            for d in rendering.of_type(DEPLOYMENT):
                pod_labels = d.inputs["spec"]["template"]["metadata"]["labels"]
                if d.inputs["metadata"]["name"].startswith("plexichat-web-") and labels.items() <= pod_labels.items():
                    reached.add(pod_labels["app.kubernetes.io/version"])
        return reached

    release = pinned_release("staging")
    live, idle = release[release["active"]], release["green" if release["active"] == "blue" else "blue"]
    assert live != idle  # else the routes below could not be told apart
    for path in ("/", "/ws/chat"):
        assert versions_reached("preview.staging.plexichat.com", path) == {idle}
        assert versions_reached("staging.plexichat.com", path) == {live}
        preview_header = dict([PREVIEW_HEADER])
        assert versions_reached("staging.plexichat.com", path, preview_header) == {idle}
    assert rendered("staging").outputs["previewUrl"] == "https://preview.staging.plexichat.com"


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("stack", STACKS)
def test_only_the_mesh_splits_and_no_snippets(stack, controller):
    for ingress in _with_controller(stack, controller).of_type(INGRESS):
        for key in ingress.inputs["metadata"]["annotations"]:
            assert "canary" not in key, key
            assert "snippet" not in key, key


def test_f5_annotations_use_cluster_ip_tls_hsts_and_rate_limits():
    ingress = rendered("prod").one(INGRESS, "web-ingress").inputs
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.org/use-cluster-ip"] == "true"
    assert annotations["nginx.org/ssl-redirect"] == "true"
    assert annotations["nginx.org/hsts"] == "true"
    assert annotations["nginx.org/hsts-max-age"] == "31536000"
    assert annotations["nginx.org/limit-req-rate"] == "100r/s"  # prod's explicit setting
    assert annotations["nginx.org/websocket-services"] == "plexichat-web"
    assert all(key.startswith("nginx.org/") for key in annotations)


def test_community_annotations_send_to_the_service_as_its_fqdn():
    rendering = _with_controller("prod", "community")
    annotations = rendering.one(INGRESS, "web-ingress").inputs["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/service-upstream"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/upstream-vhost"] == "plexichat-web.plexichat.svc.cluster.local"
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/limit-rps"] == "100"
    assert all(key.startswith("nginx.ingress.kubernetes.io/") for key in annotations)


def test_tls_comes_from_a_cert_manager_certificate_for_every_host(any_stack):
    (certificate,) = any_stack.of_type(CERTIFICATE)
    validate_strictly(certificate.manifest())
    spec = certificate.inputs["spec"]
    assert spec["issuerRef"] == {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    for ingress in any_stack.of_type(INGRESS):
        assert ingress.inputs["spec"]["ingressClassName"] == "nginx"
        assert certificate.urn in ingress.dependencies
        for tls in ingress.inputs["spec"]["tls"]:
            assert tls["secretName"] == spec["secretName"]
            assert set(tls["hosts"]) <= set(spec["dnsNames"])
        assert {r["host"] for r in ingress.inputs["spec"]["rules"]} <= {
            h for t in ingress.inputs["spec"]["tls"] for h in t["hosts"]
        }


def test_a_preview_ingress_exists_only_for_blue_green(current_stack):
    rendering = rendered_current(current_stack)
    preview = current_stack_file(current_stack)["config"]["plexichat:release"]["strategy"] == "blueGreen"
    hosts = {r["host"] for i in rendering.of_type(INGRESS) for r in i.inputs["spec"]["rules"]}
    assert (any(h.startswith("preview.") for h in hosts)) == preview
    assert ("previewUrl" in rendering.outputs) == preview


# --- AWS WAF ----------------------------------------------------------------------------------

WEB_ACL = "aws:wafv2/webAcl:WebAcl"


@pytest.mark.parametrize("stack,mode", [("dev", "count"), ("staging", "block"), ("prod", "block")])
def test_waf_rules_and_mode_per_stack(stack, mode):
    rendering = rendered(stack)
    # The regional ACL (with the CDN, a CLOUDFRONT-scope one too: tests/test_cdn.py).
    acl = rendering.one(WEB_ACL, "web-waf")
    spec = acl.inputs
    assert spec["scope"] == "REGIONAL" and spec["defaultAction"] == {"allow": {}}
    assert spec["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
    rules = {r["name"]: r for r in spec["rules"]}
    groups = {
        r["statement"]["managedRuleGroupStatement"]["name"]
        for r in spec["rules"]
        if "managedRuleGroupStatement" in r["statement"]
    }
    assert groups == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    }
    assert len({r["priority"] for r in spec["rules"]}) == len(spec["rules"])
    for rule in spec["rules"]:
        assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
        assert rule["visibilityConfig"]["sampledRequestsEnabled"] is True
        if "managedRuleGroupStatement" in rule["statement"]:
            assert rule["overrideAction"] == ({"count": {}} if mode == "count" else {"none": {}})
    rate = rules["rate-limit-per-ip"]
    assert rate["statement"]["rateBasedStatement"]["aggregateKeyType"] == "IP"
    assert rate["action"] == {mode: {}}
    (association,) = rendering.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")
    assert association.inputs["resourceArn"].endswith(
        f"loadbalancer/app/plexichat-{stack}/0a1b2c3d4e5f607{STACKS.index(stack) + 1}"
    )
    logging = rendering.one("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "web-waf-logging")
    (log_group,) = [
        g
        for g in rendering.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == f"aws-waf-logs-{spec['name']}"
    ]
    assert log_group.inputs["retentionInDays"] > 0
    # Session credentials stay out of the logs, and with the CDN its origin header too.
    cdn = bool(rendering.of_type("aws:cloudfront/distribution:Distribution"))
    redacted = {f["singleHeader"]["name"] for f in logging.inputs["redactedFields"]}
    assert redacted == {"authorization", "cookie", *(["x-plexichat-origin-verify"] if cdn else [])}
    assert association.inputs["webAclArn"].endswith(f":{acl.name}")  # the mock's ARN of this ACL
    assert logging.inputs["resourceArn"] == association.inputs["webAclArn"]
    assert rate["statement"]["rateBasedStatement"]["limit"] == (5000 if stack == "prod" else 2000)


def test_count_mode_without_a_load_balancer_creates_no_association():
    rendering = render_edited("dev", _remove("ingress.waf.loadBalancerArn"))
    assert rendering.of_type(WEB_ACL)
    assert rendering.of_type("aws:wafv2/webAclAssociation:WebAclAssociation") == []


# --- bad settings -----------------------------------------------------------------------------

ALB = "arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/{kind}/plexichat/0123456789abcdef"

BAD_EDGE_CONFIGS = [
    (
        "prod",
        _remove("ingress.waf.loadBalancerArn"),
        "plexichat:ingress.waf.loadBalancerArn",
        "required when mode is block",
    ),
    (
        "prod",
        _set("ingress.waf.loadBalancerArn", ALB.format(region="us-east-1", kind="net")),
        "plexichat:ingress.waf.loadBalancerArn",
        "Network Load Balancer",
    ),
    (
        "prod",
        _set("ingress.waf.loadBalancerArn", ALB.format(region="eu-west-1", kind="app")),
        "plexichat:ingress.waf.loadBalancerArn",
        "region us-east-1",
    ),
    ("prod", _set("ingress.waf.mode", "off"), "plexichat:ingress.waf.mode", "must be count or block (got 'off')"),
    ("dev", _remove("ingress.waf.mode"), "plexichat:ingress.waf.mode", "required"),
    ("dev", _remove("ingress"), "plexichat:ingress", "required"),
    ("prod", _set("ingress.waf.rateLimitPer5Minutes", 50), "plexichat:ingress.waf.rateLimitPer5Minutes", "100 to"),
    ("prod", _set("ingress.waf.logRetentionDays", 10), "plexichat:ingress.waf.logRetentionDays", "90"),
    (
        "prod",
        _set("ingress.controller", "haproxy"),
        "plexichat:ingress.controller",
        "must be f5 or community (got 'haproxy')",
    ),
    ("prod", _set("ingress.hstsMaxAgeSeconds", 60), "plexichat:ingress.hstsMaxAgeSeconds", "86400"),
    ("prod", _set("ingress.clusterIssuer", "Lets Encrypt"), "plexichat:ingress.clusterIssuer", "DNS label"),
    ("prod", _set("ingress.canaryWeight", 10), "plexichat:ingress.canaryWeight", "unknown key"),
    (
        "prod",
        _set("traffic", {"requestTimeoutSeconds": 10, "retries": {"attempts": 3, "perTryTimeoutSeconds": 5}}),
        "plexichat:traffic.retries",
        "must not exceed requestTimeoutSeconds",
    ),
    ("prod", _set("traffic", {"websocketPath": "/"}), "plexichat:traffic.websocketPath", "must not be /"),
    ("prod", _set("traffic", {"websocketPath": "ws"}), "plexichat:traffic.websocketPath", "absolute URL path"),
    ("prod", _set("traffic", {"requestTimeoutSeconds": 0}), "plexichat:traffic.requestTimeoutSeconds", "1 to 300"),
    ("prod", _set("traffic", {"maxEjectionPercent": 101}), "plexichat:traffic.maxEjectionPercent", "1 to 100"),
]


@pytest.mark.parametrize(
    "stack,edit,key,hint",
    BAD_EDGE_CONFIGS,
    ids=[f"{b[0]}:{b[2].split(':')[1]}:{i}" for i, b in enumerate(BAD_EDGE_CONFIGS)],
)
def test_bad_edge_config_is_one_run_error_naming_the_key(stack, edit, key, hint):
    with pytest.raises(pulumi.RunError) as raised:
        render_edited(stack, edit)
    lines = [line for line in str(raised.value).splitlines() if line.strip().startswith(f"- {key}:")]
    assert lines and any(hint in line for line in lines), str(raised.value)
