"""ElastiCache (Valkey or Redis OSS) replication group: the app's write-through cache.

Encrypted at rest with its own customer-managed key and in transit (TLS required), AUTH token
from a Pulumi secret, only the cluster's nodes may connect (6379). With two or more nodes the
group fails over automatically (and across AZs with `multiAz`). The token is also stored in
Secrets Manager, from where External Secrets brings it into the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.config.data import CacheSettings
from components.data.shared import (
    cluster_only_security_group,
    data_key,
    log_group,
    logs_may_use_key,
    with_protection,
)

PORT = 6379  # forces a replacement when changed: a constant


@dataclass(frozen=True)
class CacheArgs:
    settings: CacheSettings
    network: NetworkSettings
    auth_token: pulumi.Input[str]
    """Must be a Pulumi secret (`pulumi.Output.secret`)."""
    account_id: pulumi.Input[str]
    region: str
    stack: str
    protect: bool
    """Pulumi `protect` on the cache's key (dataProtection.protect)."""


class Cache(pulumi.ComponentResource):
    group: aws.elasticache.ReplicationGroup
    key: aws.kms.Key
    auth_secret: aws.secretsmanager.Secret
    primary_address: pulumi.Output[str]
    reader_address: pulumi.Output[str]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        group_id = s.replication_group_id

        log_prefix = f"/aws/elasticache/{group_id}/"
        self.key = data_key(
            f"{name}-key",
            f"PlexiChat cache {group_id}: data at rest and its AUTH token secret",
            args.account_id,
            with_protection(child, args.protect),
            extra_statements=[logs_may_use_key(args.region, args.account_id, [f"{log_prefix}*"])],
        )
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            name=f"{group_id}-private",
            description=f"Private subnets of {group_id}",
            subnet_ids=args.network.private_subnet_ids,
            opts=child,
        )
        self.security_group = cluster_only_security_group(
            f"{name}-sg", f"{group_id}-cache", f"Cache {group_id}", PORT, args.network, child
        )
        parameters = _parameter_group(name, s, child)
        # Created before the group writes to it, so it has a retention.
        slow_log = log_group(f"{name}-slow-log", f"{log_prefix}slow-log", s.log_retention_days, self.key, child)
        self.group = _replication_group(name, args, parameters, subnets, self.security_group, self.key, slow_log, child)
        self.auth_secret = _auth_secret(name, args, self.key, child)

        self.primary_address = self.group.primary_endpoint_address
        self.reader_address = self.group.reader_endpoint_address
        self.register_outputs(
            {
                "primary_address": self.primary_address,
                "reader_address": self.reader_address,
            }
        )


def _parameter_group(name: str, s: CacheSettings, opts: pulumi.ResourceOptions) -> aws.elasticache.ParameterGroup:
    """One per engine and major version (the family is part of it)."""
    group_id = s.replication_group_id
    major = s.engine_version.split(".")[0]
    return aws.elasticache.ParameterGroup(
        f"{name}-params",
        name=f"{group_id}-{s.engine}{major}",
        family=f"{s.engine}{major}",
        description=f"{group_id}: write-through cache, entries expire by TTL",
        parameters=[
            # Only keys with a TTL are evicted: everything cached has one, so a full cache
            # drops stale entries first and never a key the app expects to keep.
            aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value=s.maxmemory_policy),
            aws.elasticache.ParameterGroupParameterArgs(name="slowlog-log-slower-than", value="10000"),
            aws.elasticache.ParameterGroupParameterArgs(name="slowlog-max-len", value="256"),
        ],
        opts=opts,
    )


def _replication_group(
    name: str,
    args: CacheArgs,
    parameters: aws.elasticache.ParameterGroup,
    subnets: aws.elasticache.SubnetGroup,
    security_group: aws.ec2.SecurityGroup,
    key: aws.kms.Key,
    slow_log: aws.cloudwatch.LogGroup,
    opts: pulumi.ResourceOptions,
) -> aws.elasticache.ReplicationGroup:
    """The cache itself: encrypted at rest and in transit, AUTH required, slow log exported."""
    s = args.settings
    group_id = s.replication_group_id
    return aws.elasticache.ReplicationGroup(
        f"{name}-group",
        replication_group_id=group_id,
        description=f"PlexiChat cache ({args.stack})",
        engine=s.engine,
        engine_version=s.engine_version,
        node_type=s.node_type,
        num_cache_clusters=s.nodes,
        port=PORT,
        parameter_group_name=parameters.name,
        subnet_group_name=subnets.name,
        security_group_ids=[security_group.id],
        at_rest_encryption_enabled=True,
        kms_key_id=key.arn,
        transit_encryption_enabled=True,
        transit_encryption_mode="required",
        auth_token=pulumi.Output.secret(args.auth_token),
        # A token change adds the new token next to the old one, so running clients keep
        # working; the old one stays valid until a second step (docs/runbook.md) retires it.
        auth_token_update_strategy="ROTATE",
        automatic_failover_enabled=s.nodes >= 2,  # a replica to promote exists
        multi_az_enabled=s.multi_az,
        snapshot_retention_limit=s.snapshot_retention_days,
        snapshot_window=s.snapshot_window,
        maintenance_window=s.maintenance_window,
        final_snapshot_identifier=f"{group_id}-final",
        auto_minor_version_upgrade=True,
        apply_immediately=False,
        log_delivery_configurations=[
            aws.elasticache.ReplicationGroupLogDeliveryConfigurationArgs(
                destination=slow_log.name,
                destination_type="cloudwatch-logs",
                log_format="json",
                log_type="slow-log",
            )
        ],
        opts=opts,
    )


def _auth_secret(
    name: str, args: CacheArgs, key: aws.kms.Key, opts: pulumi.ResourceOptions
) -> aws.secretsmanager.Secret:
    """The AUTH token again, in Secrets Manager: External Secrets brings it into the cluster
    from there, so no manifest ever holds it."""
    group_id = args.settings.replication_group_id
    secret = aws.secretsmanager.Secret(
        f"{name}-auth-secret",
        name=f"plexichat/{args.stack}/cache-auth-token",
        description=f"AUTH token of cache {group_id} (source: plexichat:redisAuthToken)",
        kms_key_id=key.arn,
        recovery_window_in_days=30,
        opts=opts,
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-auth-secret-value",
        secret_id=secret.id,
        secret_string=pulumi.Output.secret(args.auth_token),
        opts=opts,
    )
    return secret
