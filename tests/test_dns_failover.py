"""DNS failover (components/edge/dns_failover.py): each stack of a DR pair has one failover record
for the app's domain, PRIMARY in the primary and SECONDARY in the standby (also once it is
active), an alias of its own load balancer, and a Route 53 HTTPS health check of `/readyz` on
its own health host; the primary's record is also fenced by its standby serving. Nothing without
dr.hostedZoneId.
"""

from __future__ import annotations

import pytest

from components import naming
from components.config.parse import ConfigError, parse_stack_config
from components.edge import dns_failover
from plexictl.offline import Rendering, stack_config
from plexictl.offline.mocks import ELB_HOSTED_ZONES
from tests.conftest import render_edited, rendered, stack_file
from tests.test_settings import _remove, _set
from tests.test_traffic import VIRTUAL_SERVICE, _spec

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
DOMAIN = "app.plexichat.com"


def standby(role: str = "standby") -> Rendering:
    return rendered("prod-dr") if role == "standby" else render_edited("prod-dr", _set("dr.role", role))


def load_balancer_arn(stack_data: dict) -> str:
    return stack_data["config"]["plexichat:ingress"]["waf"]["loadBalancerArn"]


def record(rendering: Rendering) -> dict:
    return rendering.one(RECORD, "app-dns-record").inputs


def check(rendering: Rendering, name: str) -> dict:
    return rendering.one(HEALTH_CHECK, name).inputs


def test_the_primary_has_the_primary_record_an_alias_of_its_own_load_balancer():
    prod = rendered("prod")
    inputs = record(prod)
    assert inputs["name"] == DOMAIN and inputs["type"] == "A"
    assert inputs["zoneId"] == stack_file("prod")["config"]["plexichat:dr"]["hostedZoneId"]
    assert inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert inputs["setIdentifier"] == "prod"
    assert "ttl" not in inputs and "records" not in inputs  # an alias: the load balancer's 60 s TTL
    (alias,) = inputs["aliases"]
    # aws.lb.get_load_balancer(arn=...) answered (offline: by the mock) for the stack's own ALB.
    arn = load_balancer_arn(stack_file("prod"))
    assert alias["name"].startswith("plexichat-prod-") and alias["name"].endswith(".us-east-1.elb.amazonaws.com")
    assert alias["zoneId"] == ELB_HOSTED_ZONES["us-east-1"]
    assert alias["evaluateTargetHealth"] is True
    assert arn.split(":")[3] == "us-east-1"


@pytest.mark.parametrize("role", ["standby", "active"])
def test_the_standby_has_the_secondary_record_and_keeps_it_once_active(role):
    """Failover is driven by health: promotion changes no record."""
    rendering = standby(role)
    inputs = record(rendering)
    assert inputs["name"] == DOMAIN
    assert inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    assert inputs["setIdentifier"] == "prod-dr"
    (alias,) = inputs["aliases"]
    assert alias["name"].startswith("plexichat-prod-dr-") and alias["name"].endswith(".us-west-2.elb.amazonaws.com")
    assert alias["zoneId"] == ELB_HOSTED_ZONES["us-west-2"]
    assert inputs["healthCheckId"] == "app-dns-health-check-id"  # its own readiness, nothing else
    assert not [r for r in rendering.of_type(HEALTH_CHECK) if r.inputs["type"] == "CALCULATED"]
    assert rendering.outputs["dnsFailover"]["failover"] == "SECONDARY"


def test_each_health_check_asks_its_own_health_host_for_readyz_over_https():
    for stack, rendering in (("prod", rendered("prod")), ("prod-dr", standby())):
        host = naming.dns_health_host(stack, DOMAIN)
        assert host == f"{stack}.health.{DOMAIN}"
        inputs = check(rendering, "app-dns-health-check")
        assert inputs["type"] == "HTTPS" and inputs["port"] == 443
        assert inputs["fqdn"] == host and inputs["resourcePath"] == "/readyz"
        assert inputs["enableSni"] is True and inputs["invertHealthcheck"] is False
        assert (inputs["requestInterval"], inputs["failureThreshold"]) == (10, 3)
        assert "ipAddress" not in inputs  # Route 53 resolves the host: ALB addresses change
        # The health host is a plain alias of the same load balancer as the failover record.
        (health_record,) = [r.inputs for r in rendering.of_type(RECORD) if r.inputs["name"] == host]
        assert "failoverRoutingPolicies" not in health_record and "healthCheckId" not in health_record
        assert health_record["aliases"][0]["name"] == record(rendering)["aliases"][0]["name"]
        assert rendering.outputs["dnsFailover"]["healthHost"] == host
        assert rendering.outputs["dnsFailover"]["endpointHealthCheckId"] == "app-dns-health-check-id"


def test_the_primarys_record_is_healthy_only_while_ready_and_its_standby_is_not_serving():
    prod = rendered("prod")
    fence = check(prod, "app-dns-standby-not-serving")
    assert fence["fqdn"] == naming.dns_health_host("prod-dr", DOMAIN)
    assert fence["resourcePath"] == "/readyz" and fence["invertHealthcheck"] is True
    calculated = check(prod, "app-dns-primary-health")
    assert calculated["type"] == "CALCULATED"
    assert calculated["childHealthchecks"] == ["app-dns-health-check-id", "app-dns-standby-not-serving-id"]
    assert calculated["childHealthThreshold"] == 2  # both
    assert record(prod)["healthCheckId"] == "app-dns-primary-health-id"
    assert prod.outputs["dnsFailover"] == {
        "record": DOMAIN,
        "failover": "PRIMARY",
        "healthCheckId": "app-dns-primary-health-id",
        "endpointHealthCheckId": "app-dns-health-check-id",
        "healthHost": naming.dns_health_host("prod", DOMAIN),
    }


def test_the_health_host_serves_the_readiness_path_only_through_the_mesh():
    prod = rendered("prod")
    host = naming.dns_health_host("prod", DOMAIN)
    ingress = prod.one(INGRESS, "web-health").inputs
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/readyz", "Exact")
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "plexichat-web-tls"}]
    assert host in _spec(prod, VIRTUAL_SERVICE)["hosts"]  # F5 NGINX sends Host: <health host>
    certificate = prod.one("kubernetes:cert-manager.io/v1:Certificate", "web-certificate").inputs
    assert certificate["spec"]["dnsNames"] == [DOMAIN, host]


def test_without_a_hosted_zone_there_are_no_records_checks_or_health_host():
    for rendering in (rendered("dev"), rendered("staging"), render_edited("prod", _remove("dr.hostedZoneId"))):
        app_records = [x for x in rendering.of_type(RECORD) if "StaticAssetsCdn" not in x.urn]  # the CDN's own
        assert not app_records and not rendering.of_type(HEALTH_CHECK)
        assert not [i for i in rendering.of_type(INGRESS) if i.name == "web-health"]
        assert not [h for h in _spec(rendering, VIRTUAL_SERVICE)["hosts"] if ".health." in h]
        assert "dnsFailover" not in rendering.outputs


def test_a_preview_knows_the_records_inputs():
    """In a preview the load balancer lookup is an invoke (answered in previews too), and the
    health check ids are unknown until created."""
    prod = rendered("prod", preview=True)
    inputs = record(prod)
    assert inputs["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert inputs["aliases"][0]["zoneId"] == ELB_HOSTED_ZONES["us-east-1"]


def test_a_hosted_zone_needs_the_load_balancer_it_points_at():
    data = stack_file("prod")
    _set("ingress.waf", {"mode": "count"})(data["config"])
    config, secret_keys = stack_config("prod", stack_file=data)
    with pytest.raises(ConfigError) as error:
        parse_stack_config(config, "prod", secret_keys)
    problems = dict(error.value.problems)
    assert "needs ingress.waf.loadBalancerArn" in problems["plexichat:dr.hostedZoneId"]


def test_dns_failover_takes_a_minute_and_a_half_at_most():
    assert dns_failover.failover_seconds() == 10 * 3 + 60
