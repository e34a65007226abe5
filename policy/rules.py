"""The security and safety rules of the runbook, as plain functions: one definition, two enforcers.

Each rule takes a `Subject` (a resource's type token, its inputs under their wire names in
camelCase, its `protect` option, and whether its stack is a production stack) and returns the
list of violation messages, empty when the resource complies. The same functions run

- online, in `pulumi preview/up --policy-pack policy` (`policy/__main__.py` adapts CrossGuard's
  `args.props` / `args.opts` to a `Subject`), and
- offline, in pytest over every stack's desired state as the mock engine records it
  (`tests/test_policy.py`).

A value that is not known yet (a preview of a resource whose input comes from another resource's
output) is never a violation: the rule runs again at `pulumi up`, when it is known.

This module imports nothing from the project or Pulumi, so the policy pack's own venv can load it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "[unknown until apply]"
"""How an input that is unknown during preview appears here (the engine's and the adapter's)."""

_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"

DATA_PORTS = {5432: "PostgreSQL", 6379: "Redis"}
MIN_PROD_BACKUP_RETENTION_DAYS = 7
"""Floor for RDS automated backups in production (the data tier may keep more)."""

WORLD_CIDRS = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Subject:
    """One resource as a rule sees it."""

    type: str
    inputs: Mapping[str, Any]
    protect: bool = False
    production: bool = False
    """True for production stacks (the prod-only rules apply); from the stack name or config."""
    secrets_visible: bool = True
    """Whether a secret input can be told from a plain one. True for the engine's recorded inputs;
    False under CrossGuard's Python SDK, which hands policies secrets already unwrapped."""


Rule = Callable[[Subject], list[str]]


def is_production(stack: str, production_stacks: tuple[str, ...] = ("prod",)) -> bool:
    """A stack is production when its name (the last part of org/project/stack) is listed."""
    return stack.rsplit("/", 1)[-1] in production_stacks


# --- value helpers --------------------------------------------------------------------------

def is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(_SECRET_SIG_KEY) == _SECRET_SIG_VALUE


def reveal(value: Any) -> Any:
    """The plain value of a (possibly secret) input."""
    return value["value"] if is_secret(value) else value


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value == UNKNOWN


def get(inputs: Any, path: str, default: Any = None) -> Any:
    """`inputs` at a dotted path (`spec.template.spec`), through secrets; `default` if absent."""
    value = reveal(inputs)
    for key in path.split("."):
        value = reveal(value)
        if not isinstance(value, Mapping) or value.get(key) is None:
            return default
        value = value[key]
    return reveal(value)


def _is_true(value: Any) -> bool:
    return value is True or is_unknown(value)


def _is_false(value: Any) -> bool:
    return value is False or is_unknown(value)


def _is_false_or_absent(value: Any) -> bool:
    return value in (None, False) or is_unknown(value)


def _set(value: Any) -> bool:
    return value not in (None, "", [], {})


# --- Kubernetes workloads -------------------------------------------------------------------

_POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
_LONG_RUNNING = {
    "kubernetes:core/v1:Pod", "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:ReplicaSet",
}


def _pod_spec(s: Subject) -> Mapping[str, Any] | None:
    path = _POD_SPEC_PATHS.get(s.type)
    spec = get(s.inputs, path) if path else None
    return spec if isinstance(spec, Mapping) else None


def _containers(pod: Mapping[str, Any], init: bool = True) -> Iterator[tuple[str, Mapping]]:
    kinds = ("containers", "initContainers") if init else ("containers",)
    for kind in kinds:
        for c in reveal(pod.get(kind)) or []:
            c = reveal(c)
            if isinstance(c, Mapping):
                yield f"container {c.get('name', '?')!r}", c


def container_hardening(s: Subject) -> list[str]:
    """Non-root, no privilege escalation, read-only root fs, all capabilities dropped,
    RuntimeDefault seccomp, not privileged, no host namespaces, ports or paths."""
    pod = _pod_spec(s)
    if pod is None:
        return []
    out = []
    pod_sc = get(pod, "securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag) is True:
            out.append(f"pod sets {flag}: true (shares the node's namespace)")
    for volume in reveal(pod.get("volumes")) or []:
        if _set(get(volume, "hostPath")):
            out.append(f"volume {get(volume, 'name')!r} is a hostPath (node filesystem)")
    pod_seccomp = get(pod_sc, "seccompProfile.type")
    for label, c in _containers(pod):
        sc = get(c, "securityContext") or {}
        # A container's own setting wins; otherwise it inherits the pod's.
        run_as_non_root, run_as_user = (
            get(pod_sc, key) if get(sc, key) is None else get(sc, key)
            for key in ("runAsNonRoot", "runAsUser")
        )
        if not _is_true(run_as_non_root):
            out.append(f"{label}: runAsNonRoot must be true")
        if run_as_user == 0:
            out.append(f"{label}: runAsUser must not be 0 (root)")
        if not _is_false(get(sc, "allowPrivilegeEscalation")):
            out.append(f"{label}: allowPrivilegeEscalation must be false")
        if not _is_true(get(sc, "readOnlyRootFilesystem")):
            out.append(f"{label}: readOnlyRootFilesystem must be true")
        drop = reveal(get(sc, "capabilities.drop")) or []
        if not is_unknown(drop) and "ALL" not in drop:
            out.append(f"{label}: capabilities.drop must include ALL")
        added = [cap for cap in reveal(get(sc, "capabilities.add")) or [] if cap != "NET_BIND_SERVICE"]
        if added:
            out.append(f"{label}: adds capabilities {added}")
        seccomp = get(sc, "seccompProfile.type") or pod_seccomp
        if seccomp != "RuntimeDefault" and not is_unknown(seccomp):
            out.append(f"{label}: seccompProfile.type must be RuntimeDefault (is {seccomp!r})")
        if not _is_false_or_absent(get(sc, "privileged")):
            out.append(f"{label}: privileged must be false")
        for port in reveal(c.get("ports")) or []:
            if _set(get(port, "hostPort")):
                out.append(f"{label}: hostPort {get(port, 'hostPort')} binds a node port")
    return out


def container_resources(s: Subject) -> list[str]:
    """Every container requests and is limited in CPU and memory."""
    pod = _pod_spec(s)
    if pod is None:
        return []
    out = []
    for label, c in _containers(pod):
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not _set(get(c, f"resources.{kind}.{resource}")):
                    out.append(f"{label}: resources.{kind}.{resource} must be set")
    return out


def image_pinned(s: Subject) -> list[str]:
    """Images carry an explicit version tag or a digest; never `:latest` or no tag."""
    pod = _pod_spec(s)
    if pod is None:
        return []
    out = []
    for label, c in _containers(pod):
        image = reveal(c.get("image"))
        if not isinstance(image, str) or is_unknown(image) or "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else ""
        if tag in ("", "latest"):
            out.append(f"{label}: image {image!r} must be pinned to a version tag or digest, not "
                       f"{'latest' if tag else 'untagged'}")
    return out


def container_probes(s: Subject) -> list[str]:
    """Long-running containers have a readiness and a liveness probe (init containers and Jobs
    run to completion and have none)."""
    if s.type not in _LONG_RUNNING:
        return []
    pod = _pod_spec(s)
    if pod is None:
        return []
    return [
        f"{label}: {probe} must be set"
        for label, c in _containers(pod, init=False)
        for probe in ("readinessProbe", "livenessProbe")
        if not _set(reveal(c.get(probe)))
    ]


# --- encryption at rest (and in transit where the same resource decides it) -----------------

def rds_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:rds/instance:Instance":
        return []
    if _set(get(s.inputs, "replicateSourceDb")):
        # A same-region read replica is always encrypted with its source's key, and AWS refuses
        # a key on it ("do not specify"); the source is held to this rule instead.
        return []
    out = []
    if not _is_true(get(s.inputs, "storageEncrypted")):
        out.append("RDS storageEncrypted must be true")
    if not _set(get(s.inputs, "kmsKeyId")):
        out.append("RDS kmsKeyId must name a customer-managed KMS key (not the AWS-managed default)")
    return out


def elasticache_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:elasticache/replicationGroup:ReplicationGroup":
        return []
    return [
        f"ElastiCache {key} must be true"
        for key in ("atRestEncryptionEnabled", "transitEncryptionEnabled")
        if not _is_true(get(s.inputs, key))
    ]


def s3_sse_kms(s: Subject) -> list[str]:
    if s.type != "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        return []
    rules = reveal(get(s.inputs, "rules")) or []
    if is_unknown(rules):
        return []
    if not rules:
        return ["S3 encryption configuration has no rules"]
    out = []
    for rule in rules:
        algorithm = get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse") and not is_unknown(algorithm):
            out.append(f"S3 sseAlgorithm must be aws:kms or aws:kms:dsse (is {algorithm!r})")
        if not _set(get(rule, "applyServerSideEncryptionByDefault.kmsMasterKeyId")):
            out.append("S3 SSE-KMS must name a customer-managed key (kmsMasterKeyId)")
    return out


def sns_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:sns/topic:Topic" or _set(get(s.inputs, "kmsMasterKeyId")):
        return []
    return ["SNS topic kmsMasterKeyId must be set (messages encrypted at rest)"]


def log_group_encrypted(s: Subject) -> list[str]:
    if s.type != "aws:cloudwatch/logGroup:LogGroup" or _set(get(s.inputs, "kmsKeyId")):
        return []
    return ["CloudWatch log group kmsKeyId must be set (logs hold client IPs, URLs and SQL)"]


def kms_rotation(s: Subject) -> list[str]:
    if s.type != "aws:kms/key:Key" or _is_true(get(s.inputs, "enableKeyRotation")):
        return []
    return ["KMS key enableKeyRotation must be true"]


# --- S3 access ------------------------------------------------------------------------------

def s3_public_access_blocked(s: Subject) -> list[str]:
    if s.type != "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        return []
    return [
        f"S3 public access block {key} must be true"
        for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not _is_true(get(s.inputs, key))
    ]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    condition = get(statement, "Condition.Bool.aws:SecureTransport")
    if isinstance(condition, list):
        condition = condition[0] if len(condition) == 1 else None
    return get(statement, "Effect") == "Deny" and str(condition).lower() == "false"


def s3_tls_only(s: Subject) -> list[str]:
    """A bucket policy denies every request that does not come over TLS."""
    if s.type != "aws:s3/bucketPolicy:BucketPolicy":
        return []
    policy = get(s.inputs, "policy")
    if is_unknown(policy):
        return []
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return ["S3 bucket policy is not valid JSON"]
    statements = get(policy, "Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    if any(isinstance(st, Mapping) and _denies_insecure_transport(st) for st in statements):
        return []
    return ['S3 bucket policy must Deny requests with "aws:SecureTransport": "false" (TLS only)']


# --- production data safety -----------------------------------------------------------------

def prod_rds_protected(s: Subject) -> list[str]:
    """In production, databases cannot be deleted by accident and keep automated backups."""
    if s.type != "aws:rds/instance:Instance" or not s.production:
        return []
    out = []
    is_replica = _set(get(s.inputs, "replicateSourceDb"))
    if not _is_true(get(s.inputs, "deletionProtection")):
        out.append("production RDS deletionProtection must be true")
    # Replicas hold no data of their own: `protect` on them would only make scaling the replica
    # count down impossible without a state edit.
    if not s.protect and not is_replica:
        out.append("production RDS must be created with the `protect` resource option")
    retention = get(s.inputs, "backupRetentionPeriod")
    if not is_replica and not is_unknown(retention) and (retention or 0) < MIN_PROD_BACKUP_RETENTION_DAYS:
        out.append(f"production RDS backupRetentionPeriod must be at least "
                   f"{MIN_PROD_BACKUP_RETENTION_DAYS} days (is {retention})")
    return out


# --- network exposure -----------------------------------------------------------------------

def _world(cidrs: Any) -> list[str]:
    cidrs = reveal(cidrs)
    if isinstance(cidrs, str):
        cidrs = [cidrs]
    out = []
    for cidr in cidrs or []:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                out.append(str(cidr))
        except ValueError:
            continue
    return out


def _data_ports_in(from_port: Any, to_port: Any, protocol: Any) -> list[int]:
    if str(protocol) in ("-1", "all"):
        return sorted(DATA_PORTS)
    if str(protocol).lower() not in ("tcp", "6"):
        return []
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        return []
    return [p for p in sorted(DATA_PORTS) if low <= p <= high]


def _exposure(ports: list[int], world: list[str], where: str) -> list[str]:
    if not ports or not world:
        return []
    names = ", ".join(f"{p} ({DATA_PORTS[p]})" for p in ports)
    return [f"{where} opens {names} to {', '.join(world)}"]


def no_world_data_ports(s: Subject) -> list[str]:
    """No security group rule or NetworkPolicy lets the whole internet reach PostgreSQL/Redis."""
    i = s.inputs
    if s.type == "aws:ec2/securityGroup:SecurityGroup":
        return [
            msg
            for rule in reveal(get(i, "ingress")) or []
            for msg in _exposure(
                _data_ports_in(get(rule, "fromPort"), get(rule, "toPort"), get(rule, "protocol")),
                _world(get(rule, "cidrBlocks")) + _world(get(rule, "ipv6CidrBlocks")),
                "security group ingress",
            )
        ]
    if s.type == "aws:ec2/securityGroupRule:SecurityGroupRule" and get(i, "type") == "ingress":
        return _exposure(
            _data_ports_in(get(i, "fromPort"), get(i, "toPort"), get(i, "protocol")),
            _world(get(i, "cidrBlocks")) + _world(get(i, "ipv6CidrBlocks")),
            "security group rule",
        )
    if s.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        return _exposure(
            _data_ports_in(get(i, "fromPort"), get(i, "toPort"), get(i, "ipProtocol")),
            _world(get(i, "cidrIpv4")) + _world(get(i, "cidrIpv6")),
            "security group ingress rule",
        )
    if s.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
        return _network_policy_exposure(i)
    return []


def _network_policy_exposure(inputs: Mapping[str, Any]) -> list[str]:
    out = []
    for n, rule in enumerate(reveal(get(inputs, "spec.ingress")) or []):
        peers = reveal(get(rule, "from")) or []
        # No `from` at all admits every source; otherwise only an ipBlock can reach outside.
        world = ["any source"] if not peers else [
            c for peer in peers for c in _world(get(peer, "ipBlock.cidr"))
        ]
        ports = reveal(get(rule, "ports")) or []
        if not ports:
            exposed = sorted(DATA_PORTS)
        else:
            exposed = []
            for port in ports:
                number, end = get(port, "port"), get(port, "endPort")
                if number is None:
                    exposed = sorted(DATA_PORTS)
                elif isinstance(number, (int, float)):
                    exposed += _data_ports_in(number, end or number, get(port, "protocol") or "TCP")
        out += _exposure(sorted(set(exposed)), world, f"NetworkPolicy ingress rule {n}")
    return out


# --- secrets ------------------------------------------------------------------------------

_SECRET_INPUTS = {
    "aws:rds/instance:Instance": ("password",),
    "aws:elasticache/replicationGroup:ReplicationGroup": ("authToken",),
    "kubernetes:core/v1:Secret": ("data", "stringData"),
}
_SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)$", re.I)


def secrets_as_secrets(s: Subject) -> list[str]:
    """Credentials reach resources only as Pulumi secrets (encrypted in state, masked in output),
    and containers take them from Kubernetes Secrets, never as literal env values."""
    out = []
    if s.secrets_visible:
        for key in _SECRET_INPUTS.get(s.type, ()):
            value = s.inputs.get(key)
            if value is not None and not is_unknown(value) and not is_secret(value):
                out.append(f"{key} must be a Pulumi secret (pulumi.Output.secret / `secure:` config)")
    pod = _pod_spec(s)
    for label, c in _containers(pod) if pod is not None else ():
        for env in reveal(c.get("env")) or []:
            name = get(env, "name") or ""
            if _SECRET_ENV_NAME.search(name) and get(env, "value") is not None:
                out.append(f"{label}: env {name} holds a literal value; use valueFrom.secretKeyRef "
                           f"or a mounted Secret")
    return out


# --- stack-wide: relations between resources ------------------------------------------------

@dataclass(frozen=True)
class StackResource:
    """One resource of a whole stack, for rules about how resources relate."""

    type: str
    urn: str
    inputs: Mapping[str, Any]
    dependencies: frozenset[str]
    """URNs of the resources whose outputs this one takes (or that it depends on explicitly)."""


BUCKET = "aws:s3/bucket:Bucket"
BUCKET_GUARDS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "public access block",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration":
        "default encryption configuration (SSE-KMS)",
    "aws:s3/bucketPolicy:BucketPolicy": "bucket policy (TLS only)",
}


def buckets_guarded(resources: list[StackResource]) -> list[tuple[str, str]]:
    """Every bucket has its public access block, encryption configuration and bucket policy.
    The per-resource rules judge what those say; this one makes sure they exist at all, since a
    bucket without them would pass every per-resource rule. Returns (bucket URN, message)."""
    out = []
    for bucket in (r for r in resources if r.type == BUCKET):
        guards = {r.type for r in resources if bucket.urn in r.dependencies}
        out += [
            (bucket.urn, f"S3 bucket {bucket.urn.rsplit('::', 1)[-1]!r} has no {what} "
                         f"taking the bucket as input")
            for type_, what in BUCKET_GUARDS.items() if type_ not in guards
        ]
    return out


StackRule = Callable[[list[StackResource]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    check: Rule | StackRule
    """A `Rule` in POLICIES (one resource), a `StackRule` in STACK_POLICIES (the whole stack)."""


STACK_POLICIES: tuple[Policy, ...] = (
    Policy("s3-buckets-guarded",
           "Every S3 bucket has a public access block, SSE-KMS and a TLS-only policy",
           buckets_guarded),
)


def stack_violations(resources: list[StackResource]) -> dict[str, list[tuple[str, str]]]:
    found = {p.name: p.check(resources) for p in STACK_POLICIES}
    return {name: v for name, v in found.items() if v}


POLICIES: tuple[Policy, ...] = (
    Policy("container-hardening", "Containers run non-root and hardened (Pod Security restricted)",
           container_hardening),
    Policy("container-resources", "Containers set CPU and memory requests and limits",
           container_resources),
    Policy("image-pinned", "Images are pinned to a version tag or digest, never latest",
           image_pinned),
    Policy("container-probes", "Long-running containers have readiness and liveness probes",
           container_probes),
    Policy("rds-encrypted", "RDS storage is encrypted with a customer-managed KMS key",
           rds_encrypted),
    Policy("elasticache-encrypted", "ElastiCache encrypts at rest and in transit",
           elasticache_encrypted),
    Policy("s3-sse-kms", "S3 buckets are encrypted with SSE-KMS under a customer-managed key",
           s3_sse_kms),
    Policy("sns-encrypted", "SNS topics are encrypted with KMS", sns_encrypted),
    Policy("log-group-encrypted", "CloudWatch log groups are encrypted with a customer-managed key",
           log_group_encrypted),
    Policy("kms-rotation", "KMS keys rotate automatically", kms_rotation),
    Policy("s3-public-access-blocked", "S3 public access blocks set all four flags",
           s3_public_access_blocked),
    Policy("s3-tls-only", "S3 bucket policies deny requests without TLS", s3_tls_only),
    Policy("prod-rds-protected",
           "Production databases: deletion protection, `protect`, automated backups",
           prod_rds_protected),
    Policy("no-world-data-ports", "PostgreSQL and Redis ports are never open to the internet",
           no_world_data_ports),
    Policy("secrets-as-secrets", "Credentials are Pulumi secrets, never plain values (secrecy is "
           "checked by the offline tests; CrossGuard unwraps secrets, so previews check only that "
           "no credential-named env var holds a literal)",
           secrets_as_secrets),
)


def violations(subject: Subject) -> dict[str, list[str]]:
    """Every policy's violations for one resource (only policies that found some)."""
    found = {p.name: p.check(subject) for p in POLICIES}
    return {name: msgs for name, msgs in found.items() if msgs}
