"""Production data safety and the production floors, on the resources.

The floors are defined once, over the settings, in components/config/floors.py; the program
refuses a production stack below them. These rules check the same floors, by name, on what the
program built, so a component that ignored a setting is caught too. A stack's `floors` (see
`Subject`) already leave out what it does not need: any floor outside production, a floor its
role does not hold (a DR standby's replica counts), and a floor it overrides with a reason.
"""

from __future__ import annotations

from .subject import Stack, Subject, get, is_set, is_true, is_unknown

MIN_PROD_BACKUP_RETENTION_DAYS = 7
"""Floor for RDS automated backups in production (the data tier may keep more)."""

RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
VAULT = "aws:backup/vault:Vault"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"

# The floors of components/config/floors.py these rules check (tests keep the two in step).
DELETION_PROTECTION = "database.deletionProtection"
PROTECT = "dataProtection.protect"
VAULT_LOCKED = "backups.vaultLock"
DATABASE_MULTI_AZ = "database.multiAz"
READ_REPLICAS = "database.readReplicas"
CACHE_MULTI_AZ = "cache.multiAz"
CACHE_NODES = "cache.nodes"
WEB_MIN_REPLICAS = "workloads.web.minReplicas"
WAF_BLOCKS = "ingress.waf.mode"
CHECKED_FLOORS = frozenset(
    {
        DELETION_PROTECTION,
        PROTECT,
        VAULT_LOCKED,
        DATABASE_MULTI_AZ,
        READ_REPLICAS,
        CACHE_MULTI_AZ,
        CACHE_NODES,
        WEB_MIN_REPLICAS,
        WAF_BLOCKS,
    }
)
MIN_COUNT = 2
"""Read replicas, cache nodes and web pods a production stack has at least."""

# The data itself, which `protect` must cover: every instance of these types, and the log groups
# under the prefixes AWS gives the data stores' logs.
_PROTECTED_TYPES = {
    RDS: "RDS instance",
    CACHE: "ElastiCache replication group",
    "aws:s3/bucket:Bucket": "S3 bucket",
    VAULT: "backup vault",
}
_DATA_LOG_PREFIXES = ("/aws/rds/", "/aws/elasticache/")


def prod_rds_protected(s: Subject) -> list[str]:
    """In production, databases cannot be deleted by accident, fail over, and keep backups."""
    if s.type != RDS or not s.production:
        return []
    out = []
    is_replica = is_set(get(s.inputs, "replicateSourceDb"))
    if DELETION_PROTECTION in s.floors and not is_true(get(s.inputs, "deletionProtection")):
        out.append("production RDS deletionProtection must be true")
    if DATABASE_MULTI_AZ in s.floors and not is_replica and not is_true(get(s.inputs, "multiAz")):
        out.append("production RDS primary must be multiAz")
    retention = get(s.inputs, "backupRetentionPeriod")
    if not is_replica and not is_unknown(retention) and (retention or 0) < MIN_PROD_BACKUP_RETENTION_DAYS:
        out.append(
            f"production RDS backupRetentionPeriod must be at least "
            f"{MIN_PROD_BACKUP_RETENTION_DAYS} days (is {retention})"
        )
    return out


def prod_data_protected(s: Subject) -> list[str]:
    """In production, Pulumi refuses to delete or replace the data: databases and their
    replicas, caches, buckets, vaults and the data stores' log groups carry `protect`."""
    if PROTECT not in s.floors or s.protect:
        return []
    what = _PROTECTED_TYPES.get(s.type)
    if what is None and s.type == "aws:cloudwatch/logGroup:LogGroup":
        name = get(s.inputs, "name")
        if isinstance(name, str) and name.startswith(_DATA_LOG_PREFIXES):
            what = f"log group {name}"
    return [f"production {what} must be created with the `protect` resource option"] if what else []


def prod_cache_resilient(s: Subject) -> list[str]:
    """In production, the cache has a replica in another AZ and fails over to it."""
    if s.type != CACHE:
        return []
    out = []
    nodes = get(s.inputs, "numCacheClusters")
    if CACHE_NODES in s.floors and not is_unknown(nodes) and (nodes or 0) < MIN_COUNT:
        out.append(f"production ElastiCache numCacheClusters must be at least {MIN_COUNT} (is {nodes})")
    if CACHE_MULTI_AZ in s.floors and not is_true(get(s.inputs, "multiAzEnabled")):
        out.append("production ElastiCache multiAzEnabled must be true")
    return out


def prod_web_redundant(s: Subject) -> list[str]:
    """In production, every web track keeps at least two pods."""
    if s.type != HPA or WEB_MIN_REPLICAS not in s.floors:
        return []
    if get(s.inputs, "metadata.labels", {}).get("app.kubernetes.io/component") != "web":
        return []
    least = get(s.inputs, "spec.minReplicas")
    if is_unknown(least) or (least or 1) >= MIN_COUNT:  # Kubernetes' default minReplicas is 1
        return []
    return [f"production web HorizontalPodAutoscaler minReplicas must be at least {MIN_COUNT} (is {least or 1})"]


def prod_waf_blocks(s: Subject) -> list[str]:
    """In production, the WAF blocks what its rules match; none of them only counts."""
    if s.type != WEB_ACL or WAF_BLOCKS not in s.floors:
        return []
    rules = get(s.inputs, "rules", [])
    if is_unknown(rules):
        return []
    counting = [
        rule.get("name")
        for rule in rules
        if "count" in (get(rule, "action") or {}) or "count" in (get(rule, "overrideAction") or {})
    ]
    return [f"production WAF rules must block, not count: {', '.join(map(str, counting))}"] if counting else []


def prod_stack_floors(stack: Stack) -> list[tuple[str, str]]:
    """The floors only the whole stack shows: enough read replicas, and every vault locked.
    Returns (URN, message); the replica count is reported on the primary."""
    out = []
    instances = [r for r in stack.resources if r.type == RDS]
    if READ_REPLICAS in stack.floors:
        replicas = [r for r in instances if is_set(get(r.inputs, "replicateSourceDb"))]
        primaries = [r for r in instances if r not in replicas]
        if len(replicas) < MIN_COUNT:
            urn = primaries[0].urn if primaries else ""
            out.append((urn, f"production database must have at least {MIN_COUNT} read replicas (has {len(replicas)})"))
    if VAULT_LOCKED in stack.floors:
        locked = {urn for r in stack.resources if r.type == VAULT_LOCK for urn in r.dependencies}
        out += [
            (vault.urn, f"production backup vault {vault.urn.rsplit('::', 1)[-1]!r} must have a vault lock")
            for vault in stack.resources
            if vault.type == VAULT and vault.urn not in locked
        ]
    return out
