"""The cluster side: how to reach it, the AWS account and VPC, and mesh (Istio) traffic settings."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.config.base import (
    CGNAT_RANGE,
    PRIVATE_RANGES,
    Cidr,
    DnsLabel,
    FieldError,
    HttpPath,
    Model,
    NonBlank,
    PrivateCidr,
    RelativeDirectory,
    SecurityGroupId,
    SubnetId,
    VpcId,
    int_range,
    pattern,
)

# ---------------------------------------------------------------------------------------------
# Cluster and network


EksClusterName = Annotated[
    str,
    pattern(
        re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$"),
        "an EKS cluster name: letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters",
    ),
]


class KubernetesSettings(Model):
    """How the program reaches the cluster, and where the cluster add-ons run."""

    context: NonBlank | None = None
    """kubeconfig context to deploy to. Required unless renderYamlToDirectory is set: never
    whatever context the kubeconfig happens to have current."""
    eks_cluster: EksClusterName | None = None
    """Name of the EKS cluster, for `plexictl preflight`'s check that its API is reachable only
    privately or from listed ranges (docs/admin-access.md). Default none: that check is skipped,
    which fails a `--strict` preflight."""
    render_yaml_to_directory: RelativeDirectory | None = None
    """GitOps mode: write manifests to this directory instead of applying them; a relative path
    without `..` (the manifests, Secrets included, are written in plain text). Default off."""
    ingress_namespace: DnsLabel = "nginx-ingress"
    """Namespace of the NGINX ingress controller (allowed to reach `web`). Default nginx-ingress."""
    monitoring_namespace: DnsLabel = "monitoring"
    """Namespace of Prometheus (allowed to scrape every pod). Default monitoring."""
    istio_namespace: DnsLabel = "istio-system"
    """Namespace of istiod (sidecars fetch their config from it). Default istio-system."""
    ingress_service_account: DnsLabel = "nginx-ingress"
    """ServiceAccount of the NGINX controller pods in ingressNamespace: its mesh identity
    (`cluster.local/ns/<ingressNamespace>/sa/<this>`) is the only caller the Istio
    AuthorizationPolicy admits to the web pods. Default nginx-ingress (the F5 chart installed as
    release `nginx-ingress`; the community chart's is `ingress-nginx`)."""


AwsRegion = Annotated[
    str, pattern(re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"), "an AWS region such as us-east-1")
]


class AwsSettings(Model):
    """Where the stack's AWS resources live."""

    region: AwsRegion
    """Primary AWS region of the stack, e.g. us-east-1. Required."""


class InternetEgressOverride(Model):
    """Why the app's pods may reach HTTPS beyond private ranges (network.allowInternetEgress)."""

    reason: NonBlank
    """Why the pods need the internet, for the reviewer of the stack file. Required, not blank."""


WIDEST_S3_PREFIX = 8
"""The S3 prefix lists' entries are /14 to /28; anything wider than /8 is not S3."""


class NetworkSettings(Model):
    """The VPC the cluster runs in; the data tier is placed in its private subnets, and the app's
    pods reach only the data subnets (PostgreSQL, Redis) and an HTTPS allow-list."""

    vpc_id: VpcId
    """The cluster's VPC, e.g. vpc-0123456789abcdef0."""
    vpc_cidr: PrivateCidr
    """The VPC's CIDR, a private range (RFC 1918, or 100.64.0.0/10); dataSubnetCidrs must lie
    inside it."""
    private_subnet_ids: Annotated[list[SubnetId], Field(min_length=2)]
    """At least two private subnets in different AZs (RDS and ElastiCache require two)."""
    cluster_security_group_id: SecurityGroupId
    """Security group of the cluster's nodes: the only source allowed into the data tier."""
    data_subnet_cidrs: list[Cidr] | None = None
    """CIDRs of the subnets the database and cache live in (those of privateSubnetIds): pods and
    Jobs reach the PostgreSQL and Redis ports only there. Each must lie inside vpcCidr. Default:
    the whole vpcCidr; every stack file sets it."""
    allow_internet_egress: InternetEgressOverride | None = None
    """The override that lets egressCidrs hold public ranges, up to 0.0.0.0/0: `{reason: ...}`.
    Default unset: egressCidrs must be private (RFC 1918 or 100.64.0.0/10)."""
    egress_cidrs: list[Cidr] | None = None
    """The app pods' HTTPS (443) allow-list besides S3: the subnets of the VPC interface endpoints
    of the AWS APIs they call (STS for IRSA, Secrets Manager, KMS). The Jobs reach HTTPS only at
    its private entries. Private (RFC 1918 or 100.64.0.0/10) unless allowInternetEgress is set.
    Default: the whole vpcCidr; every stack file sets it."""
    s3_prefix_list_cidrs: list[Cidr]
    """The CIDRs of the region's S3 managed prefix list (`com.amazonaws.<region>.s3`, from `aws
    ec2 get-managed-prefix-list-entries`): S3 is reached through the VPC's gateway endpoint,
    whose route a NetworkPolicy cannot name, so the pods get HTTPS to these CIDRs. Required;
    `[]` when S3 is reached through an interface endpoint listed in egressCidrs. Each at most
    /8 wide."""

    @field_validator("data_subnet_cidrs")
    @classmethod
    def _inside_the_vpc(cls, cidrs: list[str] | None, info: ValidationInfo) -> list[str] | None:
        vpc = info.data.get("vpc_cidr")
        outside = [c for c in cidrs or [] if vpc and not _network(c).subnet_of(_network(vpc))]
        if outside:
            raise ValueError(f"{outside} lie outside vpcCidr ({vpc}): the data subnets are in the VPC")
        return cidrs

    @field_validator("egress_cidrs")
    @classmethod
    def _private_unless_overridden(cls, cidrs: list[str] | None, info: ValidationInfo) -> list[str] | None:
        public = [c for c in cidrs or [] if not _private(c)]
        if public and info.data.get("allow_internet_egress") is None:
            raise ValueError(
                f"{public} reach beyond private ranges (the internet): list the VPC interface "
                "endpoints' subnets instead (S3 goes in s3PrefixListCidrs), or set "
                "network.allowInternetEgress: {reason: ...} to say why the pods need the internet"
            )
        return cidrs

    @field_validator("s3_prefix_list_cidrs")
    @classmethod
    def _narrow(cls, cidrs: list[str]) -> list[str]:
        wide = [c for c in cidrs if _network(c).prefixlen < WIDEST_S3_PREFIX]
        if wide:
            raise ValueError(
                f"{wide} are wider than /{WIDEST_S3_PREFIX}, so not S3's ranges; HTTPS to the internet "
                "belongs in egressCidrs, with network.allowInternetEgress"
            )
        return cidrs

    @model_validator(mode="after")
    def _override_is_used(self) -> NetworkSettings:
        if self.allow_internet_egress is not None and all(map(_private, self.https_cidrs)):
            raise FieldError(
                "allowInternetEgress", "is set, but egressCidrs lists no public range: remove the override"
            )
        return self

    @property
    def data_cidrs(self) -> list[str]:
        """Where PostgreSQL and Redis are reachable."""
        return list(self.data_subnet_cidrs or [self.vpc_cidr])

    @property
    def https_cidrs(self) -> list[str]:
        """The pods' HTTPS allow-list without S3: egressCidrs, or the VPC."""
        return [self.vpc_cidr] if self.egress_cidrs is None else list(self.egress_cidrs)

    @property
    def endpoint_cidrs(self) -> list[str]:
        """The Jobs' HTTPS allow-list: the private part of egressCidrs (the AWS interface
        endpoints), never the internet, whatever allowInternetEgress says."""
        return [c for c in self.https_cidrs if _private(c)]


def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def _private(cidr: str) -> bool:
    """Inside RFC 1918 or 100.64.0.0/10, where a VPC (and its interface endpoints) can live."""
    return any(_network(cidr).subnet_of(r) for r in (*PRIVATE_RANGES, CGNAT_RANGE))


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
