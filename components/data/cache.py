"""ElastiCache (Valkey or Redis OSS) replication group: the app's write-through cache.

Encrypted at rest with its own customer-managed key and in transit (TLS required), only the
cluster's nodes may connect (6379). With two or more nodes the group fails over automatically
(and across AZs with `multiAz`). How the app logs in is `cache.appAuth`:

- `token` (default): an AUTH token whose source of truth is a Secrets Manager secret. The program
  writes its first value (from Secrets Manager's generator, never in a stack file) and ignores
  the token from then on: the rotation (components/data/cache_auth_rotation.py) replaces it every
  ROTATION_DAYS, ROTATE then SET, without refusing a client. External Secrets brings it into the
  cluster.
- `iam`: ElastiCache RBAC. The app's user authenticates with IAM (a short-lived token signed with
  the pods' IRSA role, which may `elasticache:Connect` as that user); the built-in `default` user,
  which any client gets without a name, is replaced by one that is off. No token, no secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.config.data import CacheSettings
from components.data.cache_auth_rotation import (
    ROTATION_DAYS,
    CacheAuthRotation,
    CacheAuthRotationArgs,
    log_group_name,
)
from components.data.shared import (
    cluster_only_security_group,
    data_key,
    generated_secret,
    log_group,
    logs_may_use_key,
    with_protection,
)

PORT = 6379  # forces a replacement when changed: a constant
APP_ACCESS = "on ~* +@all"
"""The app's user (iam mode): every key and command; the cache is the app's alone."""
DISABLED_DEFAULT_ACCESS = "off -@all"
"""The `default` user's replacement (iam mode): off, so no client logs in without a name."""
TOKEN_LENGTH = 64


@dataclass(frozen=True)
class CacheArgs:
    settings: CacheSettings
    network: NetworkSettings
    account_id: pulumi.Input[str]
    region: str
    stack: str
    protect: bool
    """Pulumi `protect` on the cache's key, group, slow log and AUTH token secret
    (dataProtection.protect)."""


class Cache(pulumi.ComponentResource):
    group: aws.elasticache.ReplicationGroup
    key: aws.kms.Key
    auth_secret: aws.secretsmanager.Secret | None
    """The AUTH token (appAuth token); none in iam mode."""
    auth_rotation: CacheAuthRotation | None
    app_user: aws.elasticache.User | None
    """The app's IAM-authenticated user (appAuth iam); none in token mode."""
    primary_address: pulumi.Output[str]
    reader_address: pulumi.Output[str]

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        group_id = s.replication_group_id

        token_auth = s.app_auth == "token"
        log_prefix = f"/aws/elasticache/{group_id}/"
        rotation_log = log_group_name(group_id)
        self.key = data_key(
            f"{name}-key",
            f"PlexiChat cache {group_id}: data at rest and its AUTH token secret",
            args.account_id,
            with_protection(child, args.protect),
            extra_statements=[
                logs_may_use_key(
                    args.region, args.account_id, [f"{log_prefix}*", *([rotation_log] if token_auth else [])]
                )
            ],
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
        protected = with_protection(child, args.protect)
        slow_log = log_group(f"{name}-slow-log", f"{log_prefix}slow-log", s.log_retention_days, self.key, protected)
        self.auth_secret, self.auth_rotation, self.app_user = None, None, None
        token = _first_token(self) if token_auth else None
        if token is not None:
            login = _token_login(token)
        else:
            self.app_user, users = _iam_users(name, s, self, child)
            login = _iam_login(users)
        self.group = _replication_group(
            name, args, parameters, subnets, self.security_group, self.key, slow_log, login, protected
        )
        if token is not None:
            self.auth_secret = _auth_secret(name, args, self.key, token, child)
            self.auth_rotation = self._rotation(name, args, self.auth_secret)

        self.primary_address = self.group.primary_endpoint_address
        self.reader_address = self.group.reader_endpoint_address
        self.register_outputs(
            {
                "primary_address": self.primary_address,
                "reader_address": self.reader_address,
            }
        )

    def _rotation(self, name: str, args: CacheArgs, secret: aws.secretsmanager.Secret) -> CacheAuthRotation:
        """The token's rotation every ROTATION_DAYS (token mode)."""
        return CacheAuthRotation(
            f"{name}-auth-rotation",
            CacheAuthRotationArgs(
                group_id=args.settings.replication_group_id,
                group=self.group,
                secret=secret,
                key=self.key,
                network=args.network,
                log_retention_days=args.settings.log_retention_days,
            ),
            opts=pulumi.ResourceOptions(parent=self),
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
    login: _Login,
    opts: pulumi.ResourceOptions,
) -> aws.elasticache.ReplicationGroup:
    """The cache itself: encrypted at rest and in transit, every client authenticated, slow log
    exported."""
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
        **login.inputs,
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
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=login.ignore_changes)),
    )


@dataclass(frozen=True)
class _Login:
    """How the group authenticates clients: its inputs for that, and which of them the program
    sets only on create."""

    inputs: dict[str, Any]
    ignore_changes: list[str] = field(default_factory=list)


def _first_token(component: pulumi.Resource) -> pulumi.Output[str]:
    """The first AUTH token, from Secrets Manager's generator (letters and digits, each kind at
    least once): never in a stack file, only encrypted in the state."""
    return generated_secret(component, TOKEN_LENGTH, each_kind=True)


def _token_login(token: pulumi.Output[str]) -> _Login:
    return _Login(
        # (The strategy applies to a token change only: there is none but the rotation's.)
        {"auth_token": token, "auth_token_update_strategy": "ROTATE"},
        # The first token only: the rotation owns it from then on (Secrets Manager is the source
        # of truth), and the generator answers differently on every run.
        ignore_changes=["authToken"],
    )


def _iam_login(users: aws.elasticache.UserGroup) -> _Login:
    # DELETE drops an AUTH token a group had in token mode; AWS allows it only together with the
    # move to a user group, and ignores it on create.
    return _Login({"user_group_ids": [users.user_group_id], "auth_token_update_strategy": "DELETE"})


def _iam_users(
    name: str, s: CacheSettings, component: pulumi.Resource, opts: pulumi.ResourceOptions
) -> tuple[aws.elasticache.User, aws.elasticache.UserGroup]:
    """The app's IAM user and the user group: it, and an off `default` user in place of
    ElastiCache's own (which any client without a name would get, with every right)."""
    group_id = s.replication_group_id
    app_user_id = f"{group_id}-app"
    app = aws.elasticache.User(
        f"{name}-app-user",
        user_id=app_user_id,
        user_name=app_user_id,  # IAM authentication: the name must equal the id
        engine=s.engine,
        access_string=APP_ACCESS,
        authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="iam"),
        opts=opts,
    )
    never_used = generated_secret(component, TOKEN_LENGTH)
    default = aws.elasticache.User(
        f"{name}-default-user",
        user_id=f"{group_id}-default",
        user_name="default",
        engine=s.engine,
        access_string=DISABLED_DEFAULT_ACCESS,
        # A Valkey user group admits only users with a password or IAM, and an IAM user's name is
        # its id, which cannot be `default`. The password never logs in: the user is off.
        authentication_mode=aws.elasticache.UserAuthenticationModeArgs(type="password", passwords=[never_used]),
        # The generator answers differently on every run; the first password is as good as any.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["authenticationMode"])),
    )
    users = aws.elasticache.UserGroup(
        f"{name}-users",
        user_group_id=f"{group_id}-users",
        engine=s.engine,
        user_ids=[default.user_id, app.user_id],
        opts=opts,
    )
    return app, users


def _auth_secret(
    name: str, args: CacheArgs, key: aws.kms.Key, token: pulumi.Output[str], opts: pulumi.ResourceOptions
) -> aws.secretsmanager.Secret:
    """The AUTH token's source of truth: the group got its first value, the rotation writes the
    next ones, and External Secrets brings the current one into the cluster (no manifest holds
    it)."""
    group_id = args.settings.replication_group_id
    secret = aws.secretsmanager.Secret(
        f"{name}-auth-secret",
        name=f"plexichat/{args.stack}/cache-auth-token",
        description=f"AUTH token of cache {group_id}, rotated every {ROTATION_DAYS} days",
        kms_key_id=key.arn,
        recovery_window_in_days=30,
        # protect the secret, not its value: a new token is a new version.
        opts=with_protection(opts, args.protect),
    )
    aws.secretsmanager.SecretVersion(
        f"{name}-auth-secret-value",
        secret_id=secret.id,
        secret_string=token,
        # The first value only, as on the group: the rotation writes the next ones.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["secretString"])),
    )
    return secret
