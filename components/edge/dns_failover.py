"""The app hostname's Route 53 failover records (docs/dr.md "DNS").

Each stack of a DR pair owns one record for `settings.domain` in the hosted zone
`dr.hostedZoneId`: PRIMARY in the primary stack, SECONDARY in the standby (and in it once it is
`active`: failover is driven by health, never by rewriting records). Both exist before any
disaster, so failing over needs no Route 53 change at all, least of all one made from the
primary's region (Route 53's control plane lives in us-east-1).

- **Target.** Each record is an alias of the stack's own load balancer, which this program does
  not create: its DNS name and canonical hosted zone come from `aws.lb.get_load_balancer` with
  `ingress.waf.loadBalancerArn`, so nothing is copied into settings that could go stale.
- **Health host.** A health check of `https://<domain>/readyz` would resolve the domain, i.e.
  follow the failover records themselves. Each stack gets a plain alias of its own load balancer,
  `<stack>.health.<domain>` (`naming.dns_health_host`), which NGINX routes for the readiness path
  only (components/edge/ingress.py). Route 53 sends that host as SNI and `Host`, resolves it
  itself, and does not validate the certificate.
- **Health.** An HTTPS check of `/readyz` there. The standby's app reports not ready while it is
  standby, so Route 53 never answers with it until it is promoted. Route 53 answers with PRIMARY
  when both records are unhealthy.
- **Fencing the old primary.** The primary's record is healthy only while its own check passes
  *and* its standby is not serving (an inverted check of the standby's health host, combined in a
  CALCULATED check). Once the standby is `active` its `/readyz` passes, the primary's record turns
  unhealthy, and a primary region that comes back later gets no users on a database that has
  diverged: failing back is a procedure, not an accident.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import naming
from components.config.dr import DrSettings

HEALTH_CHECK_INTERVAL_SECONDS = 10
"""Route 53's fast interval (10 or 30 allowed): a failed endpoint is seen in 30 s, not 90 s."""
FAILURE_THRESHOLD = 3
"""Consecutive failed (or, to recover, passed) checks before the status changes."""
ALIAS_TTL_SECONDS = 60
"""Alias records take their target's TTL: 60 s for a load balancer (Route 53 FAQ, DNS failover)."""
HTTPS_PORT = 443


def failover_seconds() -> int:
    """Worst case from an endpoint's change of health to resolvers using the other record."""
    return HEALTH_CHECK_INTERVAL_SECONDS * FAILURE_THRESHOLD + ALIAS_TTL_SECONDS


def failover_type(dr: DrSettings) -> str:
    """PRIMARY for the primary; SECONDARY for its standby, promoted or not."""
    return "PRIMARY" if dr.role == "primary" else "SECONDARY"


@dataclass(frozen=True)
class DnsFailoverArgs:
    stack: str
    domain: str
    dr: DrSettings
    hosted_zone_id: str
    """The zone of `domain` (dr.hostedZoneId)."""
    load_balancer_arn: str
    """This stack's ALB (ingress.waf.loadBalancerArn), in the stack's region."""
    readiness_path: str
    """What the health check asks for: the web workload's readiness path (/readyz)."""


class DnsFailover(pulumi.ComponentResource):
    """Needs the stack's AWS provider (the load balancer is looked up in its region)."""

    health_check_id: pulumi.Output[str]
    """The check the failover record follows (the primary's: its CALCULATED check)."""

    def __init__(self, name: str, args: DnsFailoverArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:edge:DnsFailover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        load_balancer = aws.lb.get_load_balancer_output(
            arn=args.load_balancer_arn, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.health_host = naming.dns_health_host(args.stack, args.domain)
        self.failover = failover_type(args.dr)
        aws.route53.Record(
            f"{name}-health-host",
            zone_id=args.hosted_zone_id,
            name=self.health_host,
            type="A",
            # A simple record: the health checkers must reach this region's load balancer, and
            # its health must not depend on the check it serves.
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=load_balancer.dns_name, zone_id=load_balancer.zone_id, evaluate_target_health=False
                )
            ],
            opts=child,
        )
        endpoint = _readiness_check(f"{name}-health-check", self.health_host, args, child)
        record_check = endpoint
        if args.dr.role == "primary" and args.dr.standby_stack is not None:
            record_check = _fenced_by_standby(name, endpoint, args, child)
        self.record = aws.route53.Record(
            f"{name}-record",
            zone_id=args.hosted_zone_id,
            name=args.domain,
            type="A",
            # The stack's name: unique in the zone, and unchanged when the pair's roles swap
            # (a new set identifier would replace the record).
            set_identifier=args.stack,
            failover_routing_policies=[aws.route53.RecordFailoverRoutingPolicyArgs(type=self.failover)],
            health_check_id=record_check.id,
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=load_balancer.dns_name, zone_id=load_balancer.zone_id, evaluate_target_health=True
                )
            ],
            opts=child,
        )
        self.health_check_id = record_check.id
        self.endpoint_health_check_id = endpoint.id
        self.register_outputs(
            {
                "health_host": self.health_host,
                "health_check_id": self.health_check_id,
                "endpoint_health_check_id": self.endpoint_health_check_id,
                "failover": self.failover,
            }
        )


def _readiness_check(
    name: str, host: str, args: DnsFailoverArgs, opts: pulumi.ResourceOptions, *, inverted: bool = False
) -> aws.route53.HealthCheck:
    """HTTPS `GET <readiness path>` on `host`. Checkers in every Route 53 region (`regions`
    unset): an outage near a few of them cannot decide alone. Route 53's HTTPS checks speak TLS
    1.2 at most: the load balancer's listener policy must admit it (docs/dr.md "DNS")."""
    return aws.route53.HealthCheck(
        name,
        type="HTTPS",
        fqdn=host,
        port=HTTPS_PORT,
        resource_path=args.readiness_path,
        enable_sni=True,
        request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
        failure_threshold=FAILURE_THRESHOLD,
        invert_healthcheck=inverted,
        tags={"Name": f"{host}{args.readiness_path}{' (inverted)' if inverted else ''}"},
        opts=opts,
    )


def _fenced_by_standby(
    name: str, endpoint: aws.route53.HealthCheck, args: DnsFailoverArgs, opts: pulumi.ResourceOptions
) -> aws.route53.HealthCheck:
    """Healthy while the primary is ready and its standby is not serving. The standby's health
    host is the standby stack's to create: until it exists, or while its region is down, the
    inverted check passes, so nothing but a promoted standby fences the primary."""
    standby_host = naming.dns_health_host(str(args.dr.standby_stack), args.domain)
    standby_serving = _readiness_check(f"{name}-standby-not-serving", standby_host, args, opts, inverted=True)
    return aws.route53.HealthCheck(
        f"{name}-primary-health",
        type="CALCULATED",
        child_healthchecks=[endpoint.id, standby_serving.id],
        child_health_threshold=2,
        tags={"Name": f"{args.domain} primary: ready, standby not serving"},
        opts=opts,
    )
