"""The security and safety rules of the runbook, as plain functions: one definition, two enforcers.

Each rule takes a `Subject` (a resource's type token, its inputs under their wire names in
camelCase, its `protect` option, whether its stack is a production stack and which production
floors it must meet) and returns the list of violation messages, empty when the resource
complies; a stack-wide rule takes a `Stack`. The same functions run

- online, in `pulumi preview/up --policy-pack policy` (`policy/__main__.py` adapts CrossGuard's
  `args.props` / `args.opts` to a `Subject`), and
- offline, in pytest over every stack's desired state as the mock engine records it
  (`tests/test_policy.py`).

A value that is not known yet (a preview of a resource whose input comes from another resource's
output) is never a violation: the rule runs again at `pulumi up`, when it is known.

One module per concern: `workloads` (Kubernetes pods), `encryption`, `s3_access`, `production`
(prod data safety and the production floors), `network` (exposure of the data ports) and
`credentials`; `subject` is how a rule sees a resource. This package lists them as the pack's policies.

The package imports nothing from the project or Pulumi, and only relatively within itself, so the
policy pack's own venv can load it as `rules` (its directory on `sys.path`) and the tests as
`policy.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .credentials import secrets_as_secrets
from .encryption import (
    elasticache_encrypted,
    kms_rotation,
    log_group_encrypted,
    rds_encrypted,
    s3_sse_kms,
    sns_encrypted,
)
from .network import no_world_data_ports
from .production import (
    CHECKED_FLOORS,
    prod_cache_resilient,
    prod_data_protected,
    prod_rds_protected,
    prod_stack_floors,
    prod_waf_blocks,
    prod_web_redundant,
)
from .s3_access import BUCKET, BUCKET_GUARDS, buckets_guarded, s3_public_access_blocked, s3_tls_only
from .subject import UNKNOWN, Rule, Stack, StackResource, StackRule, Subject, is_production
from .workloads import (
    container_hardening,
    container_probes,
    container_resources,
    image_pinned,
    prod_images_by_digest,
)

__all__ = [
    "BUCKET",
    "BUCKET_GUARDS",
    "CHECKED_FLOORS",
    "POLICIES",
    "STACK_POLICIES",
    "UNKNOWN",
    "Policy",
    "Rule",
    "Stack",
    "StackResource",
    "StackRule",
    "Subject",
    "buckets_guarded",
    "container_hardening",
    "container_probes",
    "container_resources",
    "elasticache_encrypted",
    "image_pinned",
    "is_production",
    "kms_rotation",
    "log_group_encrypted",
    "no_world_data_ports",
    "prod_cache_resilient",
    "prod_data_protected",
    "prod_images_by_digest",
    "prod_rds_protected",
    "prod_stack_floors",
    "prod_waf_blocks",
    "prod_web_redundant",
    "rds_encrypted",
    "s3_public_access_blocked",
    "s3_sse_kms",
    "s3_tls_only",
    "secrets_as_secrets",
    "sns_encrypted",
    "stack_violations",
    "violations",
]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    check: Rule
    """Judges one resource."""


@dataclass(frozen=True)
class StackPolicy:
    name: str
    description: str
    check: StackRule
    """Judges the whole stack at once (relations between resources)."""


STACK_POLICIES: tuple[StackPolicy, ...] = (
    StackPolicy(
        "s3-buckets-guarded",
        "Every S3 bucket has a public access block, SSE-KMS and a TLS-only policy",
        buckets_guarded,
    ),
    StackPolicy(
        "prod-stack-floors",
        "Production stacks: at least 2 read replicas, and every backup vault locked",
        prod_stack_floors,
    ),
)


def stack_violations(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    found = {p.name: p.check(stack) for p in STACK_POLICIES}
    return {name: v for name, v in found.items() if v}


POLICIES: tuple[Policy, ...] = (
    Policy(
        "container-hardening", "Containers run non-root and hardened (Pod Security restricted)", container_hardening
    ),
    Policy("container-resources", "Containers set CPU and memory requests and limits", container_resources),
    Policy("image-pinned", "Images are pinned to a version tag or digest, never latest", image_pinned),
    Policy(
        "prod-images-by-digest",
        "Production workloads that keep running use images pinned by digest",
        prod_images_by_digest,
    ),
    Policy("container-probes", "Long-running containers have readiness and liveness probes", container_probes),
    Policy("rds-encrypted", "RDS storage is encrypted with a customer-managed KMS key", rds_encrypted),
    Policy("elasticache-encrypted", "ElastiCache encrypts at rest and in transit", elasticache_encrypted),
    Policy("s3-sse-kms", "S3 buckets are encrypted with SSE-KMS under a customer-managed key", s3_sse_kms),
    Policy("sns-encrypted", "SNS topics are encrypted with KMS", sns_encrypted),
    Policy(
        "log-group-encrypted", "CloudWatch log groups are encrypted with a customer-managed key", log_group_encrypted
    ),
    Policy("kms-rotation", "KMS keys rotate automatically", kms_rotation),
    Policy("s3-public-access-blocked", "S3 public access blocks set all four flags", s3_public_access_blocked),
    Policy("s3-tls-only", "S3 bucket policies deny requests without TLS", s3_tls_only),
    Policy(
        "prod-rds-protected",
        "Production databases: deletion protection, Multi-AZ primary, automated backups",
        prod_rds_protected,
    ),
    Policy(
        "prod-data-protected",
        "Production data stores, their replicas and logs carry the `protect` option",
        prod_data_protected,
    ),
    Policy("prod-cache-resilient", "Production caches: 2+ nodes, Multi-AZ failover", prod_cache_resilient),
    Policy("prod-web-redundant", "Production web tracks keep 2+ pods", prod_web_redundant),
    Policy("prod-waf-blocks", "Production WAF rules block, never only count", prod_waf_blocks),
    Policy("no-world-data-ports", "PostgreSQL and Redis ports are never open to the internet", no_world_data_ports),
    Policy(
        "secrets-as-secrets",
        "Credentials are Pulumi secrets, never plain values (secrecy is "
        "checked by the offline tests; CrossGuard unwraps secrets, so previews check only that "
        "no credential-named env var holds a literal)",
        secrets_as_secrets,
    ),
)


def violations(subject: Subject) -> dict[str, list[str]]:
    """Every policy's violations for one resource (only policies that found some)."""
    found = {p.name: p.check(subject) for p in POLICIES}
    return {name: msgs for name, msgs in found.items() if msgs}
