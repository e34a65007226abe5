"""The cluster side: how to reach it, the AWS account and VPC, and mesh (Istio) traffic settings."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    Field,
    model_validator,
)

from components.config.base import (
    Cidr,
    DnsLabel,
    FieldError,
    HttpPath,
    Model,
    SecurityGroupId,
    SubnetId,
    VpcId,
    int_range,
    pattern,
)

# ---------------------------------------------------------------------------------------------
# Cluster and network


class KubernetesSettings(Model):
    """How the program reaches the cluster, and where the cluster add-ons run."""

    context: str | None = None
    """kubeconfig context to deploy to. Default: the kubeconfig's current context."""
    render_yaml_to_directory: str | None = None
    """GitOps mode: write manifests to this directory instead of applying them. Default off."""
    ingress_namespace: DnsLabel = "nginx-ingress"
    """Namespace of the NGINX ingress controller (allowed to reach `web`). Default nginx-ingress."""
    monitoring_namespace: DnsLabel = "monitoring"
    """Namespace of Prometheus (allowed to scrape every pod). Default monitoring."""
    istio_namespace: DnsLabel = "istio-system"
    """Namespace of istiod (sidecars fetch their config from it). Default istio-system."""


AwsRegion = Annotated[
    str, pattern(re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"), "an AWS region such as us-east-1")
]


class AwsSettings(Model):
    """Where the stack's AWS resources live."""

    region: AwsRegion
    """Primary AWS region of the stack, e.g. us-east-1. Required."""


class NetworkSettings(Model):
    """The VPC the cluster runs in; the data tier is placed in its private subnets."""

    vpc_id: VpcId
    """The cluster's VPC, e.g. vpc-0123456789abcdef0."""
    vpc_cidr: Cidr
    """The VPC's CIDR: pods may reach PostgreSQL and Redis ports only inside it."""
    private_subnet_ids: Annotated[list[SubnetId], Field(min_length=2)]
    """At least two private subnets in different AZs (RDS and ElastiCache require two)."""
    cluster_security_group_id: SecurityGroupId
    """Security group of the cluster's nodes: the only source allowed into the data tier."""
    aws_endpoint_cidrs: list[Cidr] | None = None
    """Where the VPC interface endpoints of the AWS APIs the Jobs call live (STS for IRSA): the
    migration Job reaches HTTPS only there. Default: the VPC CIDR."""

    @property
    def endpoint_cidrs(self) -> list[str]:
        return list(self.aws_endpoint_cidrs or [self.vpc_cidr])


# ---------------------------------------------------------------------------------------------
# Traffic (Istio) and edge (NGINX ingress, certificate, AWS WAF)


class RetrySettings(Model):
    """Mesh retries of a failed request (5xx, reset, connect-failure), per try and in total."""

    attempts: Annotated[int, int_range(0, 10, "a number of retries")] = 2
    """Retries after the first try (Istio `attempts`), 0..10; 0 turns retries off. Default 2."""
    per_try_timeout_seconds: Annotated[int, int_range(1, 300, "a number of seconds")] = 5
    """Timeout of each try (1..300); all tries must fit in requestTimeoutSeconds. Default 5."""


class TrafficSettings(Model):
    """How the mesh sends requests to the release tracks (DestinationRule and VirtualService)."""

    websocket_path: HttpPath = "/ws"
    """Path prefix of the long-lived chat WebSocket: routed with the same weights but without a
    request timeout. Default /ws; must not be /."""
    request_timeout_seconds: Annotated[int, int_range(1, 300, "a number of seconds")] = 30
    """Whole-request timeout of every other route, retries included. Default 30 (1..300)."""
    retries: RetrySettings = RetrySettings()
    """Retry policy; (attempts + 1) * perTryTimeoutSeconds <= requestTimeoutSeconds."""
    max_connections: Annotated[int, int_range(1, 1_000_000, "a number of connections")] = 10000
    """Connection cap per client proxy and track; every open WebSocket holds one. Default 10000."""
    max_requests: Annotated[int, int_range(1, 1_000_000, "a number of requests")] = 10000
    """Concurrent requests per client proxy and track (`http2MaxRequests`). Default 10000."""
    max_pending_requests: Annotated[int, int_range(1, 1_000_000, "a number of requests")] = 1024
    """Requests queued for a connection before the mesh answers 503. Default 1024."""
    consecutive_errors: Annotated[int, int_range(1, 100, "a number of errors")] = 5
    """Consecutive 5xx answers (1..100) after which a pod is ejected from the pool. Default 5."""
    ejection_interval_seconds: Annotated[int, int_range(1, 300, "a number of seconds")] = 10
    """How often outlier detection runs (1..300). Default 10."""
    base_ejection_seconds: Annotated[int, int_range(1, 3600, "a number of seconds")] = 30
    """Minimum time (1..3600) an ejected pod stays out; grows with each ejection. Default 30."""
    max_ejection_percent: Annotated[int, int_range(1, 100, "an integer percent")] = 50
    """At most this percent (1..100) of a track's pods is ejected at once. Default 50."""

    @model_validator(mode="after")
    def _retries_fit_the_timeout(self) -> TrafficSettings:
        if self.websocket_path == "/":
            raise FieldError("websocketPath", "must not be / (every request would lose its timeout)")
        total = (self.retries.attempts + 1) * self.retries.per_try_timeout_seconds
        if total > self.request_timeout_seconds:
            raise FieldError(
                "retries",
                f"(attempts + 1) * perTryTimeoutSeconds = {total} s must not exceed "
                f"requestTimeoutSeconds ({self.request_timeout_seconds} s)",
            )
        return self
