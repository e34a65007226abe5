"""The stack configuration contract: every `plexichat:` key, its type, default and allowed range.

This is the only module that knows the shape of the config. `__main__.py` hands it the raw
`{"plexichat:key": "text"}` map the Pulumi CLI passes to the program; `parse_stack_config` returns
one validated `StackSettings` or raises a single `pulumi.RunError` that lists every problem by its
config key path (`plexichat:release.canary.weight`) and what is allowed. Nothing is registered
before that, so a bad edit never half-applies.

Keys are camelCase in the stack files (the Pulumi convention) and snake_case in Python.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pulumi
from pydantic import (
    AfterValidator,
    BeforeValidator,
    BaseModel,
    ConfigDict,
    SecretStr,
    Discriminator,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import versions

NAMESPACE = "plexichat"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$")
_CPU = re.compile(r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$")
_AWS_ID = {
    "vpc": re.compile(r"^vpc-[0-9a-f]{8,17}$"),
    "subnet": re.compile(r"^subnet-[0-9a-f]{8,17}$"),
    "sg": re.compile(r"^sg-[0-9a-f]{8,17}$"),
}


class Model(BaseModel):
    """Base of every settings model: camelCase keys, unknown keys are errors, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,  # the docstring under a field is its documentation
    )


# ---------------------------------------------------------------------------------------------
# Reusable constrained types. Each error message says what is allowed, in the user's words.


def _int_range(low: int, high: int, what: str):
    def check(value: Any) -> int:
        # One message for every failure (wrong type, fraction, out of range) that names the range.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return value

    return Annotated[int, BeforeValidator(check)]


def _pattern(regex: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"must be {what}")
        return value

    return Annotated[str, AfterValidator(check)]


Percent = _int_range(0, 100, "an integer percent")
Replicas = _int_range(1, 100, "a whole number of pods")
Seconds = _int_range(1, 3600, "a number of seconds")
Port = _int_range(1024, 65535, "an unprivileged port number")
DnsLabel = _pattern(_DNS_LABEL, "a DNS label: lowercase letters, digits and '-', at most 63 characters")
DomainName = _pattern(_DNS_NAME, "a lowercase DNS name such as app.plexichat.com")
Cpu = _pattern(_CPU, "a Kubernetes CPU quantity such as 250m or 1")
ImageRepository = _pattern(_IMAGE_REPOSITORY, "an image repository such as ghcr.io/plexichat/plexichat")
HttpPath = _pattern(re.compile(r"^/[A-Za-z0-9/._-]*$"), "an absolute URL path such as /healthz")
VpcId = _pattern(_AWS_ID["vpc"], "a VPC id such as vpc-0123456789abcdef0")
SubnetId = _pattern(_AWS_ID["subnet"], "a subnet id such as subnet-0123456789abcdef0")
SecurityGroupId = _pattern(_AWS_ID["sg"], "a security group id such as sg-0123456789abcdef0")


def _check_version(value: str) -> str:
    # The one definition of a version (components/versions.py); the message lists its forms.
    try:
        versions.parse(value)
    except versions.InvalidVersion:
        raise ValueError(f"must be {versions.ALLOWED_FORMS}") from None
    return value


Version = Annotated[str, AfterValidator(_check_version)]


def _check_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        raise ValueError("must be an IPv4 CIDR block such as 10.0.0.0/16") from None
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]


# ---------------------------------------------------------------------------------------------
# The release contract (README: Releases are config changes). Exactly one strategy;
# `strategy` selects the model.


class CanaryHeader(Model):
    """A/B opt-in: requests carrying this header with this exact value always go to the canary."""

    name: Annotated[str, AfterValidator(lambda v: _header_name(v))] = "x-plexichat-canary"
    """Lowercase header name. Default x-plexichat-canary."""
    # `pulumi config set --path release.canary.header.value true` stores a YAML boolean.
    value: Annotated[
        str,
        BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else v),
        Field(min_length=1, max_length=256),
    ] = "true"
    """Exact header value that opts a request in. Default "true"."""


def _header_name(value: str) -> str:
    if not re.match(r"^[a-z0-9][a-z0-9-]*$", value):
        raise ValueError("must be a lowercase HTTP header name such as x-plexichat-canary")
    return value


class CanaryTrack(Model):
    version: Version
    """Image tag or digest the canary track runs. Required."""
    weight: Percent = 0
    """Integer percent 0..100 of live traffic sent to the canary. Default 0 (header route only)."""
    header: CanaryHeader | None = None
    """Optional A/B match: requests with this header go to the canary whatever the weight."""
    steps: list[Percent] | None = None
    """Optional plan such as [10, 25, 50, 100]: strictly increasing; `weight` must then be 0 or a
    step, and `plexictl canary next` moves to the next one."""

    @model_validator(mode="after")
    def _weight_on_plan(self) -> CanaryTrack:
        if self.steps is not None:
            if not self.steps or any(a >= b for a, b in zip(self.steps, self.steps[1:])):
                raise _FieldError("steps", "must be a non-empty, strictly increasing list of percents")
            if 0 in self.steps:
                raise _FieldError("steps", "must not contain 0 (weight 0 is always allowed)")
            if self.weight != 0 and self.weight not in self.steps:
                raise _FieldError(
                    "weight", f"must be 0 or one of the steps {self.steps} (got {self.weight})"
                )
        return self


class RollingRelease(Model):
    """One track, `stable`; a version change is a Kubernetes rolling update."""

    strategy: Literal["rolling"]
    version: Version
    """Image tag or digest of the single `stable` track."""


class CanaryRelease(Model):
    """Tracks `stable` and `canary`; `canary.weight` percent of traffic goes to the canary."""

    strategy: Literal["canary"]
    stable: Version
    """Version of the `stable` track, which also runs the workers."""
    canary: CanaryTrack
    """The canary track: version, weight, optional header and step plan."""


class BlueGreenRelease(Model):
    """Tracks `blue` and `green`, each with the web workload's full autoscaling range; `active`
    gets all live traffic, the other only the preview route. Both are as large as the live
    traffic needs when workloads.web.requestsPerSecondPerPod is set; otherwise the idle one sits
    at minReplicas (raise it first when flipping under heavy load)."""

    strategy: Literal["blueGreen"]
    active: Literal["blue", "green"]
    """The colour that receives 100% of live traffic and runs the workers."""
    blue: Version
    """Version of the blue track."""
    green: Version
    """Version of the green track."""


Release = Annotated[
    Union[RollingRelease, CanaryRelease, BlueGreenRelease], Discriminator("strategy")
]
STRATEGIES = ("rolling", "canary", "blueGreen")


# ---------------------------------------------------------------------------------------------
# Workloads


class Probes(Model):
    readiness_path: HttpPath = "/readyz"
    """Answers 200 only when the pod can serve (dependencies reachable). Default /readyz."""
    liveness_path: HttpPath = "/livez"
    """Answers 200 while the process is not wedged; must not check dependencies. Default /livez."""
    startup_failure_threshold: _int_range(1, 120, "a number of 2-second checks") = 30
    """How many 2 s startup checks may fail before the pod is restarted. Default 30 (60 s)."""


class Workload(Model):
    """One PlexiChat process type. Every release track gets its own Deployment, HPA and PDB."""

    role: Literal["web", "worker"]
    """`web` serves HTTP and runs every release track; `worker` consumes background jobs and runs
    only the stable (canary) or active (blue-green) version."""
    port: Port = 8080
    """Container port: HTTP (and health) for `web`; health for `worker`, where it must equal
    metricsPort. Default 8080."""
    metrics_port: Port = 9090
    """Where Prometheus scrapes `/metrics`. It is kept out of the sidecar (mTLS STRICT would
    refuse Prometheus, which is outside the mesh) and open only to the monitoring namespace.
    Default 9090."""
    args: list[str] = []
    """Container arguments (the image's entrypoint is kept). Default none."""
    min_replicas: Replicas = 2
    """HPA floor per track. Default 2; keep at least 2 where a PDB must allow node drains."""
    max_replicas: Replicas = 10
    """HPA ceiling per track; must be >= minReplicas. Default 10."""
    target_cpu_percent: _int_range(10, 95, "a CPU utilisation percent") = 70
    """HPA CPU target (percent of request). Default 70, under the runbook's 80% CPU target."""
    target_memory_percent: _int_range(10, 95, "a memory utilisation percent") = 75
    """HPA memory target (percent of request). Default 75, under the runbook's 85% limit."""
    scale_down_stabilization_seconds: Seconds = 300
    """How long the HPA waits before removing pods. Default 300."""
    requests_per_second_per_pod: _int_range(1, 100000, "a number of requests per second") | None = None
    """Web only: requests per second one pod serves at its target load. With it, both blue-green
    colours also scale on the whole web Service's request rate (Istio's, through a custom
    metrics adapter: README prerequisites), so the idle colour is as large as the live one and a
    flip moves traffic onto full capacity. Default none: each colour scales on its own CPU and
    memory, and the idle one sits at minReplicas."""
    cpu_request: Cpu = "250m"
    """CPU request per pod (HPA utilisation is relative to it). Default 250m."""
    cpu_limit: Cpu = "1"
    """CPU limit per pod. Default 1."""
    memory_mib: _int_range(64, 65536, "a memory size in MiB") = 512
    """Memory request and limit (equal, so the pod is never OOM-killed for a neighbour). 512."""
    termination_grace_period_seconds: Seconds = 60
    """Time to drain on shutdown (WebSocket clients reconnect elsewhere). Default 60."""
    pre_stop_delay_seconds: _int_range(0, 120, "a number of seconds") = 10
    """Sleep before SIGTERM so endpoints and the mesh stop sending new requests. Default 10."""
    progress_deadline_seconds: Seconds = 600
    """A rollout that makes no progress for this long is reported failed. Default 600."""
    probes: Probes = Probes()
    """HTTP health endpoints on `port`."""

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        if self.role == "web" and self.metrics_port == self.port:
            raise _FieldError(
                "metricsPort", f"must differ from port ({self.port}): the metrics port bypasses "
                "the mesh, the serving port must not",
            )
        if self.role == "worker" and self.metrics_port != self.port:
            raise _FieldError(
                "metricsPort", f"must equal port ({self.port}) for a worker: it serves health "
                "and metrics on one port",
            )
        if self.role == "worker" and self.requests_per_second_per_pod is not None:
            raise _FieldError(
                "requestsPerSecondPerPod", "applies to web workloads only (a worker serves no requests)"
            )
        if self.max_replicas < self.min_replicas:
            raise _FieldError(
                "maxReplicas", f"must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}"
            )
        if self.pre_stop_delay_seconds >= self.termination_grace_period_seconds:
            raise _FieldError(
                "preStopDelaySeconds",
                "must be shorter than terminationGracePeriodSeconds "
                f"({self.termination_grace_period_seconds})",
            )
        return self


def _check_workloads(value: dict[str, Workload]) -> dict[str, Workload]:
    bad = [name for name in value if not _DNS_LABEL.match(name) or len(name) > 40]
    if bad:
        raise ValueError(f"workload names must be DNS labels of at most 40 characters, got {bad}")
    web = [name for name, w in value.items() if w.role == "web"]
    if web != ["web"]:
        raise ValueError(
            "exactly one workload must have role 'web' and it must be named 'web' "
            f"(the ingress backend); found {web or 'none'}"
        )
    return value


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


AwsRegion = _pattern(
    re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"), "an AWS region such as us-east-1"
)


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


# ---------------------------------------------------------------------------------------------
# Traffic (Istio) and edge (NGINX ingress, certificate, AWS WAF)


class RetrySettings(Model):
    """Mesh retries of a failed request (5xx, reset, connect-failure), per try and in total."""

    attempts: _int_range(0, 10, "a number of retries") = 2
    """Retries after the first try (Istio `attempts`), 0..10; 0 turns retries off. Default 2."""
    per_try_timeout_seconds: _int_range(1, 300, "a number of seconds") = 5
    """Timeout of each try (1..300); all tries must fit in requestTimeoutSeconds. Default 5."""


class TrafficSettings(Model):
    """How the mesh sends requests to the release tracks (DestinationRule and VirtualService)."""

    websocket_path: HttpPath = "/ws"
    """Path prefix of the long-lived chat WebSocket: routed with the same weights but without a
    request timeout. Default /ws; must not be /."""
    request_timeout_seconds: _int_range(1, 300, "a number of seconds") = 30
    """Whole-request timeout of every other route, retries included. Default 30 (1..300)."""
    retries: RetrySettings = RetrySettings()
    """Retry policy; (attempts + 1) * perTryTimeoutSeconds <= requestTimeoutSeconds."""
    max_connections: _int_range(1, 1_000_000, "a number of connections") = 10000
    """Connection cap per client proxy and track; every open WebSocket holds one. Default 10000."""
    max_requests: _int_range(1, 1_000_000, "a number of requests") = 10000
    """Concurrent requests per client proxy and track (`http2MaxRequests`). Default 10000."""
    max_pending_requests: _int_range(1, 1_000_000, "a number of requests") = 1024
    """Requests queued for a connection before the mesh answers 503. Default 1024."""
    consecutive_errors: _int_range(1, 100, "a number of errors") = 5
    """Consecutive 5xx answers (1..100) after which a pod is ejected from the pool. Default 5."""
    ejection_interval_seconds: _int_range(1, 300, "a number of seconds") = 10
    """How often outlier detection runs (1..300). Default 10."""
    base_ejection_seconds: _int_range(1, 3600, "a number of seconds") = 30
    """Minimum time (1..3600) an ejected pod stays out; grows with each ejection. Default 30."""
    max_ejection_percent: _int_range(1, 100, "an integer percent") = 50
    """At most this percent (1..100) of a track's pods is ejected at once. Default 50."""

    @model_validator(mode="after")
    def _retries_fit_the_timeout(self) -> TrafficSettings:
        if self.websocket_path == "/":
            raise _FieldError("websocketPath", "must not be / (every request would lose its timeout)")
        total = (self.retries.attempts + 1) * self.retries.per_try_timeout_seconds
        if total > self.request_timeout_seconds:
            raise _FieldError(
                "retries",
                f"(attempts + 1) * perTryTimeoutSeconds = {total} s must not exceed "
                f"requestTimeoutSeconds ({self.request_timeout_seconds} s)",
            )
        return self


_ALB_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$"
)
# The values CloudWatch Logs accepts for a log group's retention.
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653]


class WafSettings(Model):
    """The stack's AWS WAFv2 web ACL (regional) on the load balancer in front of NGINX."""

    mode: Literal["count", "block"]
    """`block` enforces the rules; `count` only counts and logs matches (tune before enforcing).
    Required: every stack states it. Block needs loadBalancerArn."""
    load_balancer_arn: Annotated[str, AfterValidator(lambda v: _alb_arn(v))] | None = None
    """ARN of the Application Load Balancer in front of the ingress controller (WAF attaches to
    ALBs only), in the stack's AWS region. Required when mode is block; without it the ACL exists
    but inspects nothing."""
    rate_limit_per_5_minutes: _int_range(100, 2_000_000_000, "a number of requests") = 2000
    """Requests one client IP may send in any 5 minutes before the rate rule acts (at least
    100). Default 2000."""
    log_retention_days: LogRetentionDays = 90
    """Retention of the WAF log group (a CloudWatch retention value). Default 90."""

    @model_validator(mode="after")
    def _block_needs_a_target(self) -> WafSettings:
        if self.mode == "block" and self.load_balancer_arn is None:
            raise _FieldError(
                "loadBalancerArn",
                "required when mode is block (an enforcing ACL attached to nothing protects "
                "nothing); set the ALB's ARN, or use mode count",
            )
        return self


def _alb_arn(value: str) -> str:
    if not _ALB_ARN.match(value):
        raise ValueError(
            "must be an Application Load Balancer ARN such as arn:aws:elasticloadbalancing:"
            "us-east-1:123456789012:loadbalancer/app/plexichat/0123456789abcdef (WAF cannot "
            "attach to a Network Load Balancer)"
        )
    return value


class IngressSettings(Model):
    """The NGINX Ingress for the domain (and the blue-green preview host), and its edge."""

    controller: Literal["f5", "community"] = "f5"
    """Which NGINX controller serves the class: `f5` (F5 NGINX Ingress Controller, `nginx.org/*`
    annotations; maintained) or `community` (kubernetes/ingress-nginx, end of life since March
    2026; only for clusters that still run it). Default f5."""
    class_name: DnsLabel = "nginx"
    """IngressClass of that controller. Default nginx."""
    cluster_issuer: DnsLabel = "letsencrypt-prod"
    """cert-manager ClusterIssuer that signs the TLS certificate. Default letsencrypt-prod."""
    rate_limit_requests_per_second: _int_range(1, 100000, "a number of requests") = 50
    """Sustained requests per second per client IP at NGINX; more get 429. Default 50."""
    rate_limit_burst_multiplier: _int_range(1, 100, "a multiplier") = 5
    """Burst allowed above the rate, as a multiple of it (1..100). Default 5."""
    hsts_max_age_seconds: _int_range(86400, 63072000, "a number of seconds") = 31536000
    """HSTS max-age (1 day .. 2 years). Default 31536000 (1 year)."""
    hsts_include_subdomains: bool = True
    """Whether HSTS covers subdomains of the domain (the preview host is one). Default true."""
    websocket_idle_timeout_seconds: _int_range(60, 86400, "a number of seconds") = 3600
    """NGINX closes a WebSocket after this long without a frame (60..86400). Default 3600."""
    waf: WafSettings
    """The AWS WAF web ACL. Required: `mode` is stated per stack."""
# Monitoring and alerting. One number drives both the Prometheus rule and the CloudWatch alarm
# that watch the same thing (the runbook's targets and alert thresholds are the defaults).


def _float_range(low: float, high: float, what: str):
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"must be {what} from {low} to {high}")
        return float(value)

    return Annotated[float, BeforeValidator(check)]


MetricName = _pattern(
    re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"), "a Prometheus metric name such as http_requests_total"
)
LabelName = _pattern(re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$"), "a Prometheus label name such as code")
AlertPercent = _float_range(0.1, 100, "a percent")
ReceiverKind = Literal["none", "chat", "lowPriority", "pagerduty"]


class MetricNames(Model):
    """Names of the series the rules read; change them to match what the app exports."""

    requests_total: MetricName = "http_requests_total"
    """Counter of HTTP requests served by the app. Default http_requests_total."""
    status_code_label: LabelName = "code"
    """Label of `requestsTotal` holding the HTTP status code (5xx counts as an error). Default code."""
    request_duration: MetricName = "http_request_duration_seconds"
    """Histogram (without `_bucket`) of request durations in seconds. Default
    http_request_duration_seconds."""
    db_pool_in_use: MetricName = "plexichat_db_pool_connections_in_use"
    """Gauge: database connections the app's pool has checked out. Default
    plexichat_db_pool_connections_in_use."""
    db_pool_max: MetricName = "plexichat_db_pool_connections_max"
    """Gauge: the pool's size limit. Default plexichat_db_pool_connections_max."""
    cache_hits_total: MetricName = "redis_keyspace_hits_total"
    """redis-exporter counter of key lookups that hit. Default redis_keyspace_hits_total."""
    cache_misses_total: MetricName = "redis_keyspace_misses_total"
    """redis-exporter counter of key lookups that missed. Default redis_keyspace_misses_total."""


class AlertThresholds(Model):
    """The runbook's numbers. Each one feeds every Prometheus rule and CloudWatch alarm that
    watches the same signal, so changing it here changes both."""

    error_ratio_critical_percent: AlertPercent = 5.0
    """5xx share of a track's requests that pages (critical, for 5 min). Default 5."""
    error_ratio_target_percent: AlertPercent = 1.0
    """Error-rate target: a warning when missed for 15 min; below errorRatioCriticalPercent.
    Default 1."""
    latency_warning_ms: _int_range(10, 60000, "a number of milliseconds") = 1000
    """p99 response time that warns after 5 min. Default 1000."""
    latency_target_ms: _int_range(10, 60000, "a number of milliseconds") = 500
    """p99 response-time target: a warning when missed for 15 min; below latencyWarningMs.
    Default 500."""
    cpu_info_percent: AlertPercent = 90.0
    """Pod CPU (percent of limit) that raises an info alert after 5 min. Default 90."""
    cpu_target_percent: AlertPercent = 80.0
    """CPU target: pods over it for 30 min warn; also the RDS and ElastiCache CPU alarms.
    Default 80."""
    memory_target_percent: AlertPercent = 85.0
    """Memory target: pods over it (percent of limit) warn; also the ElastiCache memory alarm.
    Default 85."""
    cache_hit_rate_min_percent: AlertPercent = 90.0
    """Cache hit-rate target: below it warns (Prometheus and the ElastiCache alarm). Default 90."""
    connection_utilisation_percent: AlertPercent = 80.0
    """App DB pool use (percent of pool size) that warns; also the RDS connections alarm, as
    percent of the instance's max_connections. Default 80."""
    min_requests_per_second: _float_range(0.01, 10000, "a request rate per second") = 1.0
    """Minimum-traffic guard: request-based alerts stay silent for a track serving less, so one
    failed request at a low canary weight pages nobody. Default 1."""
    canary_error_ratio_factor: _float_range(1.1, 100, "a factor") = 2.0
    """The canary alert fires when the canary's error ratio misses the target and exceeds
    stable's by this factor. Default 2."""
    replica_lag_max_seconds: Seconds = 30
    """RDS read-replica lag that alarms. Default 30."""
    db_free_storage_min_gib: _int_range(1, 65536, "a size in GiB") = 10
    """RDS free storage below which the alarm fires. Default 10."""
    db_freeable_memory_min_mib: _int_range(16, 1048576, "a size in MiB") = 256
    """RDS freeable memory below which the alarm fires. Default 256."""
    cache_evictions_per_minute_max: _int_range(0, 10000000, "a number of evictions") = 100
    """ElastiCache evictions per minute above which the alarm fires. Default 100."""

    @model_validator(mode="after")
    def _ordered(self) -> AlertThresholds:
        for lower, upper in (
            ("error_ratio_target_percent", "error_ratio_critical_percent"),
            ("latency_target_ms", "latency_warning_ms"),
            ("cpu_target_percent", "cpu_info_percent"),
        ):
            if getattr(self, lower) >= getattr(self, upper):
                raise _FieldError(
                    to_camel(lower), f"must be below {to_camel(upper)} ({getattr(self, upper)}), "
                    f"got {getattr(self, lower)}",
                )
        return self


class MonitoringSettings(Model):
    """Scraping, rules, smoke probe and dashboard (Prometheus Operator, Grafana sidecar)."""

    scrape_interval_seconds: _int_range(5, 300, "a number of seconds") = 30
    """How often Prometheus scrapes every pod's metrics endpoint. Default 30."""
    metrics_path: HttpPath = "/metrics"
    """Path of the metrics endpoint on each workload's port. Default /metrics."""
    resource_labels: dict[str, str] = {"release": "kube-prometheus-stack"}
    """Labels on every monitoring object, matching the Prometheus and Alertmanager selectors.
    Default {release: kube-prometheus-stack}."""
    smoke_probe: bool = True
    """Blackbox-exporter probe of the public readiness URL, with a critical alert. Default on."""
    blackbox_exporter_address: _pattern(
        re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$"), "host:port such as blackbox.monitoring.svc:9115"
    ) = "prometheus-blackbox-exporter.monitoring.svc:9115"
    """host:port of the Blackbox exporter. Default prometheus-blackbox-exporter.monitoring.svc:9115."""
    dashboard: bool = True
    """Grafana dashboard ConfigMap (label grafana_dashboard=1) for the sidecar. Default on."""
    runbook_url: _pattern(re.compile(r"^https://[^\s#]+$"), "an https URL without a #fragment") = (
        "https://github.com/plexichat/infrastructure/blob/main/README.md"
    )
    """Where the README lives; each alert links to its section there."""
    metrics: MetricNames = MetricNames()
    """Metric names the rules read."""
    thresholds: AlertThresholds = AlertThresholds()
    """The runbook's numbers (Prometheus rules and CloudWatch alarms)."""


class AlertingSettings(Model):
    """Where alerts go, per severity. `none` everywhere (the default) creates no routing at all.
    Receiver URLs and keys are secrets: plexichat:alertChatWebhookUrl,
    plexichat:alertLowPriorityWebhookUrl, plexichat:pagerDutyRoutingKey and
    plexichat:pagerDutyCloudwatchUrl."""

    critical: ReceiverKind = "none"
    """Receiver of critical alerts: none, chat, lowPriority or pagerduty. Default none. With
    pagerduty the CloudWatch alarm topic also pages (pagerDutyCloudwatchUrl)."""
    warning: ReceiverKind = "none"
    """Receiver of warnings. Default none."""
    info: ReceiverKind = "none"
    """Receiver of info alerts. Default none."""

    @property
    def routes(self) -> dict[str, str]:
        """Severity -> receiver kind, for the severities that go somewhere."""
        return {s: k for s in ("critical", "warning", "info") if (k := getattr(self, s)) != "none"}


ReceiverSecret = Annotated[SecretStr, Field(min_length=8)]
_RECEIVER_SECRETS = {
    "chat": "alert_chat_webhook_url",
    "lowPriority": "alert_low_priority_webhook_url",
    "pagerduty": "pager_duty_routing_key",
}


# Data tier: database, cache, backups and DR, secrets into the cluster, protection of data

_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,61}[a-z0-9]$")
_CACHE_ID = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,38}[a-z0-9]$")
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SIZES = r"(micro|small|medium|large|xlarge|[1-9][0-9]?xlarge)"
_DB_CLASS = re.compile(rf"^db\.(t3|t4g|m5|m6g|m6i|m7g|m7i|r5|r6g|r6i|r7g|r7i|r8g)\.{_SIZES}$")
_CACHE_NODE = re.compile(rf"^cache\.(t3|t4g|m5|m6g|m7g|r5|r6g|r7g)\.{_SIZES}$")
# hh:mm-hh:mm (backup, snapshot) and ddd:hh:mm-ddd:hh:mm (maintenance), UTC, as AWS writes them.
_DAILY_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_WEEKLY_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$"
)
_OIDC_PROVIDER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/[a-z0-9.-]+(/[A-Za-z0-9/_-]+)?$")
_AZ = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")

RdsIdentifier = _pattern(
    _RDS_IDENTIFIER, "an RDS identifier: 2-63 lowercase letters, digits and single hyphens, starting with a letter"
)
CacheGroupId = _pattern(
    _CACHE_ID, "an ElastiCache id: 2-40 lowercase letters, digits and single hyphens, starting with a letter"
)
BucketName = _pattern(_BUCKET, "an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'")
DbInstanceClass = _pattern(_DB_CLASS, "an RDS instance class such as db.t4g.medium or db.r7g.2xlarge")
CacheNodeType = _pattern(_CACHE_NODE, "an ElastiCache node type such as cache.t4g.small or cache.r7g.large")
DailyWindow = _pattern(_DAILY_WINDOW, "a daily UTC window hh:mm-hh:mm such as 03:00-04:00")
WeeklyWindow = _pattern(_WEEKLY_WINDOW, "a weekly UTC window ddd:hh:mm-ddd:hh:mm such as sun:05:00-sun:06:00")
AvailabilityZone = _pattern(_AZ, "an availability zone such as us-east-1a")
OidcProviderArn = _pattern(
    _OIDC_PROVIDER_ARN,
    "an IAM OIDC provider ARN such as arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
)
# The values CloudWatch Logs accepts for retention_in_days.


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def _daily_minutes(window: str) -> set[int]:
    start, end = (_minutes(t) for t in window.split("-"))
    return {m % 1440 for m in range(start, end if end > start else end + 1440)}


def _weekly_daily_minutes(window: str) -> set[int]:
    # Time of day the weekly window covers: backups run daily, so any overlap is a clash.
    start, end = window.split("-")
    return _daily_minutes(f"{start[4:]}-{end[4:]}")


def _check_redis_token(secret: SecretStr) -> SecretStr:
    # Never echo the value: it is a secret (the error handler hides it too, and SecretStr keeps
    # it out of every repr of the settings).
    value = secret.get_secret_value()
    if not 16 <= len(value) <= 128:
        raise ValueError("must be 16 to 128 characters long")
    # AWS's rule, stricter than "no @ \" /": letters, digits and only these symbols.
    if not re.fullmatch(r"[A-Za-z0-9!&#$^<>-]*", value):
        raise ValueError("must be made of letters, digits and the symbols ! & # $ ^ < > - only")
    return secret


RedisAuthToken = Annotated[SecretStr, AfterValidator(_check_redis_token)]


class DatabaseSettings(Model):
    """RDS PostgreSQL: a primary and N read replicas in the private subnets."""

    identifier: RdsIdentifier
    """RDS identifier of the primary (replicas add -replica-<n>). Required. Pinned in protected
    stacks (see dataProtection)."""
    engine_version: Annotated[str, AfterValidator(lambda v: _postgres_version(v))] = "17"
    """PostgreSQL major (17) or major.minor (17.6); minor upgrades are automatic. A new major
    needs majorVersionUpgrade in the same change. Default 17."""
    major_version_upgrade: bool = False
    """Set in the change that raises engineVersion's major (17 to 18), unset afterwards: RDS then
    upgrades the primary and its replicas together, at once instead of in the maintenance window
    (the database is down for several minutes: schedule it), and the old parameter group is
    detached so it can be deleted. While set, any other change to the instances applies at once
    too. Default off: RDS refuses a major change."""
    instance_class: DbInstanceClass = "db.t4g.medium"
    """Instance class of the primary and the replicas. Default db.t4g.medium."""
    allocated_storage_gib: _int_range(20, 65536, "a size in GiB") = 20
    """Initial gp3 storage. Default 20 (20..65536)."""
    max_allocated_storage_gib: _int_range(20, 65536, "a size in GiB") = 100
    """Storage autoscaling ceiling, >= allocatedStorageGib. Default 100."""
    multi_az: bool = True
    """Synchronous standby in a second AZ (failover in 60-120 s). Default on; dev turns it off."""
    read_replicas: _int_range(0, 5, "a number of read replicas") = 0
    """Read replicas of the primary (0..5). Default 0; staging 1, prod 2."""
    replica_availability_zones: list[AvailabilityZone] = []
    """AZs the replicas are spread over, round-robin; in the primary region. Default: AWS picks."""
    backup_retention_days: _int_range(1, 35, "a number of days (the RDS limit is 35)") = 30
    """Automated backup (point-in-time recovery) retention, 1..35. Default 30."""
    backup_window: DailyWindow = "03:00-04:00"
    """Daily UTC backup window. Default 03:00-04:00; must not overlap maintenanceWindow."""
    maintenance_window: WeeklyWindow = "sun:21:00-sun:22:00"
    """Weekly UTC maintenance window. Default sun:21:00-sun:22:00: clear of the backup window and
    of the AWS Backup jobs (daily from 05:00, up to 7 h)."""
    deletion_protection: bool = True
    """RDS refuses to delete the instance while on. Default on; dev turns it off."""
    performance_insights: bool = True
    """Performance Insights (KMS-encrypted, 7 days free tier). Default on."""
    monitoring_interval_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = 60
    """Enhanced Monitoring interval, 0 (off), 1, 5, 10, 15, 30 or 60. Default 60."""
    slow_statement_ms: _int_range(10, 60000, "a number of milliseconds") = 500
    """Statements slower than this are logged (log_min_duration_statement). Default 500."""
    max_connections: _int_range(20, 5000, "a number of connections") = 200
    """PostgreSQL max_connections, set explicitly (20..5000) so the pools' budget and the
    connections alarm share one number. Applied at the next reboot. Default 200."""
    log_retention_days: LogRetentionDays = 90
    """CloudWatch retention of the exported PostgreSQL logs. Default 90."""
    password_rotation_days: _int_range(1, 365, "a number of days") = 30
    """Rotation period of the RDS-managed master password. Default 30 (RDS's own default is 7)."""

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseSettings:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise _FieldError(
                "maxAllocatedStorageGib",
                f"must be >= allocatedStorageGib ({self.allocated_storage_gib})",
            )
        if _daily_minutes(self.backup_window) & _weekly_daily_minutes(self.maintenance_window):
            raise _FieldError("backupWindow", f"must not overlap maintenanceWindow ({self.maintenance_window})")
        return self


def _postgres_version(value: str) -> str:
    if not re.match(r"^(1[4-9]|2\d)(\.\d+)?$", value):
        raise ValueError("must be a PostgreSQL version 14 or newer, such as 17 or 17.6")
    return value


class CacheSettings(Model):
    """ElastiCache (Valkey or Redis OSS) replication group used as a write-through cache."""

    replication_group_id: CacheGroupId
    """Replication group id. Required. Pinned in protected stacks (see dataProtection)."""
    engine: Literal["valkey", "redis"] = "valkey"
    """valkey (default) or redis. Changing valkey -> redis replaces the group."""
    engine_version: Annotated[str, AfterValidator(lambda v: _cache_version(v))] = "8.0"
    """Engine major.minor, 7.0 or newer. Default 8.0."""
    node_type: CacheNodeType = "cache.t4g.small"
    """Node type. Default cache.t4g.small."""
    nodes: _int_range(1, 6, "a number of cache nodes") = 2
    """Primary plus replicas (1..6). With 2 or more, failover is automatic. Default 2; dev 1."""
    multi_az: bool = True
    """Place the replica in another AZ and fail over to it; needs nodes >= 2. Default on."""
    snapshot_retention_days: _int_range(1, 35, "a number of days") = 7
    """Daily snapshots kept, 1..35. Default 7."""
    snapshot_window: DailyWindow = "04:00-05:00"
    """Daily UTC snapshot window. Default 04:00-05:00."""
    maintenance_window: WeeklyWindow = "sun:22:00-sun:23:00"
    """Weekly UTC maintenance window. Default sun:22:00-sun:23:00 (after the database's)."""
    maxmemory_policy: Literal["volatile-lru", "volatile-lfu", "volatile-ttl", "allkeys-lru", "allkeys-lfu"] = "volatile-lru"
    """Eviction when full; volatile-* evicts only keys with a TTL. Default volatile-lru."""
    log_retention_days: LogRetentionDays = 90
    """CloudWatch retention of the slow log. Default 90."""

    @model_validator(mode="after")
    def _consistent(self) -> CacheSettings:
        if self.multi_az and self.nodes < 2:
            raise _FieldError("multiAz", f"needs nodes >= 2 (a replica to fail over to), got nodes {self.nodes}")
        if _daily_minutes(self.snapshot_window) & _weekly_daily_minutes(self.maintenance_window):
            raise _FieldError("snapshotWindow", f"must not overlap maintenanceWindow ({self.maintenance_window})")
        return self


def _cache_version(value: str) -> str:
    if not re.match(r"^([7-9]|[1-9]\d)\.\d+$", value):
        raise ValueError("must be an engine version 7.0 or newer, such as 8.0")
    return value


class BackupSettings(Model):
    """The backup bucket, the AWS Backup plan for the database, and cross-region DR."""

    bucket_name: BucketName
    """Name of the backup bucket (globally unique). Required. Pinned in protected stacks."""
    daily_retention_days: _int_range(1, 35, "a number of days") = 30
    """`daily/` objects and daily AWS Backup recovery points are kept this long. Default 30."""
    monthly_retention_days: _int_range(180, 3650, "a number of days") = 365
    """`monthly/` objects and monthly recovery points are kept this long. Default 365."""
    monthly_archive_after_days: _int_range(1, 90, "a number of days") = 30
    """`monthly/` objects move to Glacier Flexible Retrieval after this. Default 30."""
    log_retention_days: _int_range(1, 3650, "a number of days") = 90
    """`logs/` objects are kept this long. Default 90."""
    noncurrent_version_days: _int_range(1, 365, "a number of days") = 30
    """Overwritten or deleted object versions are kept this long. Default 30."""
    dr_region: AwsRegion | None = None
    """Second region for DR (bucket replication, backup copies, RDS automated backups); must
    differ from aws.region. Default none (no DR); prod sets it. Pinned in protected stacks."""
    dr_automated_backup_retention_days: _int_range(1, 35, "a number of days") = 7
    """Retention of the RDS automated backups replicated to drRegion (point-in-time restore
    there). Default 7."""
    vault_lock: bool = True
    """AWS Backup Vault Lock, governance mode, on the vault (and the DR vault): no recovery point
    can be deleted before dailyRetentionDays, or kept beyond monthlyRetentionDays, except by a
    principal allowed backup:DeleteBackupVaultLockConfiguration. Default on; dev turns it off so
    the stack can be torn down. (Compliance mode, which nobody can lift, is left to a deliberate
    manual step.)"""


class IrsaSettings(Model):
    """IAM roles for service accounts: how pods of the app get AWS credentials."""

    oidc_provider_arn: OidcProviderArn
    """The cluster's IAM OIDC provider ARN (`aws eks describe-cluster ... identity.oidc.issuer`).
    Required."""
    secret_refresh_interval: Annotated[str, Field(pattern=r"^[1-9][0-9]*(m|h)$")] = "5m"
    """How often External Secrets re-reads Secrets Manager. A rotated database password stops
    working at once, so this bounds how long after a rotation new connections of running pods
    fail (the Secret changes, then the reloader rolls the pods). Default 5m."""


class PinnedIdentity(Model):
    """The replacement-forcing values a protected stack was deployed with (see README
    'No data loss by config edit'). The program refuses to run when the config derives other ones."""

    region: AwsRegion
    """Mirrors aws.region: every AWS resource lives there."""
    database_identifier: RdsIdentifier
    """Mirrors database.identifier."""
    cache_replication_group_id: CacheGroupId
    """Mirrors cache.replicationGroupId."""
    backup_bucket_name: BucketName
    """Mirrors backups.bucketName."""
    dr_region: AwsRegion | None = None
    """Mirrors backups.drRegion (none when the stack has no DR)."""
    cache_engine: Literal["valkey", "redis"] = "valkey"
    """Mirrors cache.engine."""


class DataProtectionSettings(Model):
    """Guards against losing data through a config edit or a refactor."""

    protect: bool = True
    """Pulumi `protect` on the primary database, KMS keys, backup buckets and vaults, and
    `retain_on_delete` on the buckets. Default on; only dev turns it off."""
    pinned: PinnedIdentity | None = None
    """The deployed identity. Required when `protect` is on, enforced whenever present. Editing a
    pinned value in the same change as the setting it mirrors is the explicit, reviewed
    confirmation that the resource is destroyed and re-created."""


# config key path of the mirrored setting -> (pinned field, what a change does). Which inputs of
# which resource types replace data is components/stateful.py; these are the settings that feed
# such inputs (or the provider's region), or rename a store, and therefore cannot be constants.
IDENTITY_PINS: dict[str, tuple[str, str]] = {
    "aws.region": ("region", "destroy every AWS resource of the stack, including the database, cache and backups"),
    # RDS renames an instance in place (so `identifier` is not in stateful.py), but the rest of a
    # rename is still an outage and a loss: pinned like the others.
    "database.identifier": (
        "database_identifier",
        "rename the RDS primary and its replicas (new endpoints: the database is unreachable until "
        "the rename settles and the pods roll) and replace their subnet, parameter and security "
        "groups and their log groups (the logs so far are deleted)",
    ),
    "cache.replicationGroupId": ("cache_replication_group_id", "destroy the ElastiCache replication group and its data"),
    "cache.engine": ("cache_engine", "destroy the ElastiCache replication group (an engine downgrade re-creates it)"),
    "backups.bucketName": ("backup_bucket_name", "destroy the backup bucket and every backup in it"),
    "backups.drRegion": ("dr_region", "destroy the DR bucket, DR vault, DR key and replicated backups in the old DR region"),
}


def _setting_at(settings: Any, path: str) -> Any:
    value = settings
    for part in path.split("."):
        value = getattr(value, re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower())
    return value


def check_data_tier(settings: Any) -> None:
    """Cross-block rules of the data tier; called by StackSettings' validator. The identity guard
    comes first: when a pinned value changed, that is the one thing the operator must read."""
    _check_pinned_identity(settings)
    region = settings.aws.region
    if settings.backups.dr_region == region:
        raise _FieldError("backups.drRegion", f"must differ from aws.region ({region}), or be left out")
    if settings.backups.dr_region and len(settings.backups.bucket_name) > 60:
        raise _FieldError("backups.bucketName", "must be at most 60 characters with a drRegion (the DR bucket adds -dr)")
    for zone in settings.database.replica_availability_zones:
        if not zone.startswith(region):
            raise _FieldError(
                "database.replicaAvailabilityZones", f"must be zones of aws.region {region}, got {zone}"
            )


def _check_pinned_identity(settings: Any) -> None:
    # Pins hold whenever they exist, even with `protect` off: turning protection off and changing
    # an identity in the same edit must still be refused.
    protection = settings.data_protection
    if protection.pinned is None:
        if protection.protect:
            raise _FieldError(
                "dataProtection.pinned", "is required when dataProtection.protect is on (copy the current values)"
            )
        return
    for path, (pin, consequence) in IDENTITY_PINS.items():
        current, pinned = _setting_at(settings, path), getattr(protection.pinned, pin)
        if current != pinned:
            raise _FieldError(
                path,
                f"changing it from {pinned!r} to {current!r} would {consequence}; this stack is "
                f"protected. To do this on purpose, also set dataProtection.pinned.{to_camel(pin)} to "
                f"{current!r} "
                "in the same reviewed change (README 'No data loss by config edit')",
            )


# ---------------------------------------------------------------------------------------------
# The whole stack


class StackSettings(Model):
    """Everything under the `plexichat:` namespace of one `Pulumi.<stack>.yaml`."""

    domain: DomainName
    """Public host name of the stack, e.g. app.plexichat.com. Required."""
    namespace: DnsLabel = "plexichat"
    """Kubernetes namespace of the app. Default plexichat."""
    image_repository: ImageRepository = "ghcr.io/plexichat/plexichat"
    """Container image repository; versions come from `release`. Default ghcr.io/plexichat/plexichat."""
    release: Release
    """The release contract: rolling, canary or blueGreen (README: Releases are config changes)."""
    workloads: Annotated[dict[str, Workload], AfterValidator(_check_workloads)]
    """Process types by name: exactly one `web`, any number of workers."""
    kubernetes: KubernetesSettings = KubernetesSettings()
    """How to reach the cluster and where its add-ons run."""
    aws: AwsSettings
    """The AWS account side of the stack."""
    network: NetworkSettings
    """The VPC the cluster and the data tier share."""
    traffic: TrafficSettings = TrafficSettings()
    """Mesh routing: timeouts, retries, connection pool, outlier detection, WebSocket path."""
    ingress: IngressSettings
    """NGINX Ingress, TLS certificate and the AWS WAF in front of it."""
    monitoring: MonitoringSettings = MonitoringSettings()
    """Scraping, alert rules, smoke probe and dashboard."""
    alerting: AlertingSettings = AlertingSettings()
    """Alert routing per severity (Alertmanager, CloudWatch alarm topic)."""
    alert_chat_webhook_url: ReceiverSecret | None = None
    """Secret: chat (Slack-compatible) incoming-webhook URL; required when a severity routes to
    chat."""
    alert_low_priority_webhook_url: ReceiverSecret | None = None
    """Secret: incoming-webhook URL of the low-priority channel; required for lowPriority."""
    pager_duty_routing_key: ReceiverSecret | None = None
    """Secret: PagerDuty Events v2 routing key; required when a severity routes to pagerduty."""
    pager_duty_cloudwatch_url: ReceiverSecret | None = None
    """Secret: PagerDuty CloudWatch integration URL (https) the alarm topic posts to; required
    when critical routes to pagerduty."""
    database: DatabaseSettings
    """RDS PostgreSQL primary and read replicas."""
    cache: CacheSettings
    """ElastiCache replication group."""
    redis_auth_token: RedisAuthToken
    """Cache AUTH token: set it with `pulumi config set --secret plexichat:redisAuthToken ...`
    (16..128 characters: letters, digits and ! & # $ ^ < > -, as ElastiCache demands, so no
    '@', '"' or '/'). Required, and must be a secret."""
    backups: BackupSettings
    """Backup bucket, AWS Backup plan and DR region."""
    irsa: IrsaSettings
    """The cluster's OIDC provider, for the app's IAM role."""
    data_protection: DataProtectionSettings = DataProtectionSettings()
    """Protection of stateful resources against deletes and replacing edits."""

    # First: an edit that would destroy data must be reported as that, whatever else is wrong.
    @model_validator(mode="after")
    def _data_tier(self) -> StackSettings:
        check_data_tier(self)
        return self

    @model_validator(mode="after")
    def _waf_in_the_stack_region(self) -> StackSettings:
        arn = self.ingress.waf.load_balancer_arn
        if arn is not None and _ALB_ARN.match(arn)["region"] != self.aws.region:
            raise _FieldError(
                "ingress.waf.loadBalancerArn",
                f"must be in the stack's region {self.aws.region} (a REGIONAL web ACL attaches "
                "only to resources in its own region)",
            )
        return self

    @model_validator(mode="after")
    def _receivers_configured(self) -> StackSettings:
        for kind in set(self.alerting.routes.values()):
            field = _RECEIVER_SECRETS[kind]
            if getattr(self, field) is None:
                raise _FieldError(
                    to_camel(field), f"required (as a secret) when plexichat:alerting routes a "
                    f"severity to {kind}: pulumi config set --secret {to_camel(field)} ...",
                )
        if self.alerting.critical == "pagerduty" and self.pager_duty_cloudwatch_url is None:
            raise _FieldError(
                "pagerDutyCloudwatchUrl", "required (as a secret) when critical alerts page "
                "(the CloudWatch alarm topic pages too)",
            )
        return self



# ---------------------------------------------------------------------------------------------
# Parsing and error reporting


class _FieldError(ValueError):
    """A model-level check that blames one field, so the error names that field's key path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_TOP_LEVEL_KEYS = {field.alias or name: name for name, field in StackSettings.model_fields.items()}
# Keys whose stack-file value is a YAML scalar: the CLI passes them as plain text, not JSON.
# Secrets must be set with `pulumi config set --secret`; their values are never shown in errors.
_SECRET_KEYS = {
    "redisAuthToken", "alertChatWebhookUrl", "alertLowPriorityWebhookUrl", "pagerDutyRoutingKey",
    "pagerDutyCloudwatchUrl",
}
_SCALAR_KEYS = {"domain", "namespace", "imageRepository"} | _SECRET_KEYS  # "1234" stays text


class ConfigError(pulumi.RunError):
    """Invalid stack config: every problem, as (key path, what is wrong and what is allowed)."""

    def __init__(self, stack: str, problems: list[tuple[str, str]]) -> None:
        self.problems = sorted(set(problems))
        super().__init__(
            f"invalid configuration for stack '{stack}' (Pulumi.{stack}.yaml); nothing was changed:\n"
            + "\n".join(f"  - {key}: {message}" for key, message in self.problems)
        )


def parse_stack_config(
    raw: Mapping[str, Any], stack: str, secret_keys: Collection[str] = ()
) -> StackSettings:
    """Validate the `plexichat:` part of a stack's config map, or raise one ConfigError (a RunError).

    `raw` is the map the CLI hands the program: `{"plexichat:release": "<json text>", ...}`.
    Keys of other namespaces (`aws:region`, `kubernetes:context`) are not ours and are ignored.
    `secret_keys` are the full keys the CLI marks secret; a key of `_SECRET_KEYS` must be one.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    bare: set[str] = set()
    for full_key, text in raw.items():
        namespace, colon, key = full_key.partition(":")
        if not colon:  # `release:` for `plexichat:release:`; the Pulumi CLI refuses it too
            meant = f"{NAMESPACE}:{full_key}" if full_key in _TOP_LEVEL_KEYS else full_key
            problems.append((meant, f"written without its namespace as `{full_key}:`; "
                                    f"a stack file key is `<namespace>:<key>`, here `{NAMESPACE}:{full_key}:`"))
            bare.add(meant)
            continue
        if namespace != NAMESPACE:
            continue
        if key not in _TOP_LEVEL_KEYS:
            problems.append((full_key, "unknown key; allowed keys are "
                             + ", ".join(f"{NAMESPACE}:{k}" for k in sorted(_TOP_LEVEL_KEYS))))
            continue
        values[key] = _decode(text) if key not in _SCALAR_KEYS else text
        if key in _SECRET_KEYS and full_key not in secret_keys:
            problems.append((full_key, "must be a secret; set it with "
                             f"`pulumi config set --secret {full_key} ...`"))
    try:
        settings = StackSettings.model_validate(values)
    except ValidationError as error:
        described = (_describe(e) for e in error.errors())
        # A required key written without its namespace is that one problem, not two.
        problems.extend(p for p in described if p[0] not in bare)
        settings = None
    if problems:
        raise ConfigError(stack, problems)
    return settings


def _decode(text: Any) -> Any:
    """Structured values arrive as JSON text; a plain string that is not JSON stays a string."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


_RELEASE_MODELS = {
    get_args(model.model_fields["strategy"].annotation)[0]: model
    for model in (RollingRelease, CanaryRelease, BlueGreenRelease)
}
_RELEASE_KEYS = {strategy: {field.alias or name for name, field in model.model_fields.items()}
                 for strategy, model in _RELEASE_MODELS.items()}


def _allowed_keys(loc: list[Any], strategy: str | None) -> list[str]:
    """The keys allowed next to the unknown key at `loc` (the user's path), if known: inside the
    release block, those of the strategy the user chose."""
    if loc[0] == "release" and strategy is None:
        return []
    annotation: Any = _RELEASE_MODELS[strategy] if strategy else StackSettings
    for part in loc[1:-1] if strategy else loc[:-1]:
        if get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]  # `part` is a workload name or a list index
            continue
        model = _model_in(annotation)
        fields = {f.alias or n: f for n, f in model.model_fields.items()} if model else {}
        if part not in fields:
            return []
        annotation = fields[part].annotation
    model = _model_in(annotation)
    return sorted(f.alias or n for n, f in model.model_fields.items()) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds: `Model` or `Model | None`."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error as (key path, message in the user's words)."""
    loc = list(error["loc"])
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    strategy = loc[1] if len(loc) > 1 and loc[0] == "release" and loc[1] in STRATEGIES else None
    if loc and loc[0] == "release":
        if kind.startswith("union_tag"):
            message = "must be one of " + ", ".join(STRATEGIES)
            if kind == "union_tag_invalid":
                message += f" (got {error['input'].get('strategy')!r})"
            loc = ["release", "strategy"]
        elif strategy is not None:
            del loc[1]  # pydantic puts the union tag (`canary`) in the path; users never write it
    context = error.get("ctx") or {}
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        message = "must be a mapping of keys to values"
        if loc == ["release"]:
            message += " with a strategy (" + ", ".join(STRATEGIES) + ") and its versions"
    elif kind == "literal_error":
        message = "must be " + str(context.get("expected", "")).replace("'", "")
    field_error = context.get("error")
    if isinstance(field_error, _FieldError):
        loc.append(field_error.field)
    key = f"{NAMESPACE}:" + ".".join(str(p) for p in loc) if loc else f"{NAMESPACE}"
    if kind == "missing":
        return key, "required, but not set"
    if kind == "extra_forbidden":
        if len(loc) == 2 and strategy is not None:
            owners = [name for name in STRATEGIES if loc[1] in _RELEASE_KEYS[name]]
            if owners:  # a leftover from another strategy, e.g. `version` on a canary stack
                return key, (f"belongs to strategy {' and '.join(owners)}, not {strategy}; remove "
                             f"it (pulumi config rm --path release.{loc[1]})")
        allowed = _allowed_keys(loc, strategy)
        return key, ("unknown key (check the spelling"
                     + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
                     + "; see README 'Configuration reference')")
    shown = error.get("input")
    if loc and loc[0] in _SECRET_KEYS:
        return key, f"{message} (value hidden: it is a secret)"
    if kind.startswith("union_tag") or isinstance(shown, (dict, list)):
        return key, message
    return key, f"{message} (got {shown!r})"
