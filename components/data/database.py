"""RDS PostgreSQL: a primary and N read replicas in the VPC's private subnets.

Secure and durable by default: storage, Performance Insights and the master password encrypted
with the database's own customer-managed key; no public access; TLS forced by the parameter
group; only the cluster's nodes may connect (5432); the master password is managed by RDS in
Secrets Manager and rotated every `passwordRotationDays`; a final snapshot and the automated
backups survive a delete. Replicas inherit engine, storage encryption and credentials from the
primary and never set a password of their own: AWS lists "creating a read replica when the
source manages credentials with Secrets Manager" among the limits of the managed-password
integration (all engines but SQL Server), i.e. the replica cannot manage its own, so it sets
neither `password` nor `manage_master_user_password` (staging creates a replica first, before
prod does).

A DR stack's instance (`DatabaseArgs.source`) is a cross-region read replica of its primary
stack's database while standby, and the same instance promoted once active (`_dr_instance`,
docs/dr.md "The standby stack").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import NetworkSettings
from components.config.data import DatabaseSettings
from components.config.versions import name_slug
from components.data.database_parameters import monitoring_role, parameter_group
from components.data.shared import (
    cluster_only_security_group,
    data_key,
    log_group,
    logs_may_use_key,
    with_protection,
)
from components.naming import restore_validator_name

PORT = 5432
DB_NAME = "plexichat"
USERNAME = "plexichat"
# Fixed on purpose: the exported logs and the CA are part of the security baseline.
LOG_EXPORTS = ["postgresql", "upgrade"]
CA_CERT = "rds-ca-rsa2048-g1"
LOG_GROUP_PREFIX = "/aws/rds/instance/"  # where RDS writes an instance's exported logs
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7  # the free tier


@dataclass(frozen=True)
class ReplicaSource:
    """What a DR stack's database follows (docs/dr.md "The standby stack")."""

    arn: pulumi.Input[str]
    """The primary stack's database, by ARN (a cross-region replica names its source so)."""
    promoted: bool
    """`dr.role: active`: replication has stopped, the instance is a primary of its own."""


@dataclass(frozen=True)
class DatabaseArgs:
    settings: DatabaseSettings
    network: NetworkSettings
    account_id: pulumi.Input[str]
    region: str
    protect: bool
    """Pulumi `protect` on the primary, its replicas, its key and the exported log groups
    (dataProtection.protect)."""
    source: ReplicaSource | None = None
    """A DR stack's: the instance is a cross-region read replica of `source` (standby), or that
    replica promoted (active). None: the stack's own primary."""


class Database(pulumi.ComponentResource):
    primary: aws.rds.Instance
    """The writer: the stack's own primary, or a DR stack's instance (a replica while standby)."""
    replicas: list[aws.rds.Instance]
    key: aws.kms.Key
    address: pulumi.Output[str]
    reader_addresses: pulumi.Output[list[str]]
    master_secret_arn: pulumi.Output[str] | None
    """The RDS-managed master secret; none while a DR standby replicates (a replica has none)."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:data:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        ident = s.identifier

        self.key = _key(name, args, child)
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=f"{ident}-private",
            description=f"Private subnets of {ident}",
            subnet_ids=args.network.private_subnet_ids,
            opts=child,
        )
        self.security_group = cluster_only_security_group(
            f"{name}-sg", f"{ident}-db", f"PostgreSQL {ident}", PORT, args.network, child
        )
        hardening = _hardening(
            s,
            self.security_group,
            parameter_group(name, s, child),
            self.key,
            monitoring_role(name, s, child),
        )
        if args.source is None:
            self.primary = _primary(name, args, hardening, subnets, self.key, child)
        else:
            self.primary = _dr_instance(name, args, args.source, hardening, subnets, self.key, child)
        self.master_secret_arn = None
        if args.source is None or args.source.promoted:
            self.master_secret_arn = self.primary.master_user_secrets.apply(lambda s_: s_[0].secret_arn)
            _password_rotation(name, self.master_secret_arn, s, child)
        # A standby's replica is the DR copy itself: read replicas of its own only once promoted.
        count = 0 if args.source is not None and not args.source.promoted else s.read_replicas
        self.replicas = _replicas(
            name, s, count, hardening, self.primary, self.key, with_protection(child, args.protect)
        )

        self.address = self.primary.address
        self.reader_addresses = (
            pulumi.Output.all(*[r.address for r in self.replicas])
            if self.replicas
            else pulumi.Output.all(self.primary.address)  # no replicas: reads go to the primary
        )
        self._component_name = name  # not `_name`: pulumi.Resource keeps its own
        self.register_outputs(
            {
                "address": self.address,
                "reader_addresses": self.reader_addresses,
                "master_secret_arn": self.master_secret_arn,
            }
        )

    def snapshot_before_migration(self, version: str) -> aws.rds.Snapshot:
        """A manual snapshot of the primary, named after the schema version about to be migrated
        to: the restore point if the migration goes wrong (docs/runbook.md). Declared for the
        schema versions `migrations.keepSnapshots` keeps, so the oldest is deleted when a new one
        is taken: never a growing pile (RDS allows 100 manual snapshots per region)."""
        slug = name_slug(version)
        return aws.rds.Snapshot(
            f"{self._component_name}-snapshot-{slug}",
            db_instance_identifier=self.primary.identifier,
            db_snapshot_identifier=self.primary.identifier.apply(lambda ident: f"{ident}-before-{slug}"),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _key(name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """The database's own key: storage, the managed master password, Performance Insights, and
    the exported logs of the primary and every replica."""
    ident = args.settings.identifier
    return data_key(
        f"{name}-key",
        f"PlexiChat database {ident}: storage, password, Performance Insights",
        args.account_id,
        with_protection(opts, args.protect),
        extra_statements=[
            logs_may_use_key(
                args.region,
                args.account_id,
                [
                    f"{LOG_GROUP_PREFIX}{ident}/*",
                    f"{LOG_GROUP_PREFIX}{ident}-replica-*/*",
                    # The restore tests' check (components/data/restore_testing.py) logs here too.
                    f"/aws/lambda/{restore_validator_name(ident)}",
                ],
            )
        ],
    )


def _hardening(
    s: DatabaseSettings,
    security_group: aws.ec2.SecurityGroup,
    parameters: aws.rds.ParameterGroup,
    key: aws.kms.Key,
    monitoring_role: aws.iam.Role | None,
) -> dict:
    """The instance inputs primary and replicas share (checkov flags replicas that omit any)."""
    return dict(
        instance_class=s.instance_class,
        storage_type="gp3",
        max_allocated_storage=s.max_allocated_storage_gib,
        publicly_accessible=False,
        vpc_security_group_ids=[security_group.id],
        parameter_group_name=parameters.name,
        iam_database_authentication_enabled=True,
        deletion_protection=s.deletion_protection,
        auto_minor_version_upgrade=True,
        copy_tags_to_snapshot=True,
        ca_cert_identifier=CA_CERT,
        maintenance_window=s.maintenance_window,
        performance_insights_enabled=s.performance_insights,
        performance_insights_kms_key_id=key.arn if s.performance_insights else None,
        performance_insights_retention_period=(PERFORMANCE_INSIGHTS_RETENTION_DAYS if s.performance_insights else None),
        monitoring_interval=s.monitoring_interval_seconds,
        monitoring_role_arn=monitoring_role.arn if monitoring_role else None,
        enabled_cloudwatch_logs_exports=LOG_EXPORTS,
        # Changes wait for the maintenance window, except a major upgrade: deferred, it
        # would leave every instance on the old parameter group, which Pulumi then
        # fails to delete at the end of the same update.
        apply_immediately=s.major_version_upgrade,
    )


def _exported_logs(
    name: str,
    role: str,
    identifier: str,
    s: DatabaseSettings,
    key: aws.kms.Key,
    opts: pulumi.ResourceOptions,
) -> list[aws.cloudwatch.LogGroup]:
    """The log groups one instance (`role`: primary, replica-N) exports to; the instance
    depends on them, so they exist first and keep their retention. `opts` carries the data's
    protection: a deleted log group takes its logs with it."""
    return [
        log_group(
            f"{name}-{role}-log-{export}",
            f"{LOG_GROUP_PREFIX}{identifier}/{export}",
            s.log_retention_days,
            key,
            opts,
        )
        for export in LOG_EXPORTS
    ]


def _primary(
    name: str,
    args: DatabaseArgs,
    hardening: dict,
    subnets: aws.rds.SubnetGroup,
    key: aws.kms.Key,
    opts: pulumi.ResourceOptions,
) -> aws.rds.Instance:
    """The primary: the one writer, and the owner of the data, backups and credentials."""
    s = args.settings
    ident = s.identifier
    logs = _exported_logs(name, "primary", ident, s, key, with_protection(opts, args.protect))
    return aws.rds.Instance(
        f"{name}-primary",
        identifier=ident,
        **hardening,
        engine="postgres",
        engine_version=s.engine_version,
        # Replicas follow the primary's major upgrade (RDS upgrades them with it). Left out,
        # not false, otherwise: RDS's default, and no update of existing primaries.
        allow_major_version_upgrade=s.major_version_upgrade or None,
        db_name=DB_NAME,
        username=USERNAME,
        port=PORT,
        allocated_storage=s.allocated_storage_gib,
        storage_encrypted=True,
        kms_key_id=key.arn,
        # RDS keeps the password in Secrets Manager; it never passes through Pulumi state.
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        db_subnet_group_name=subnets.name,
        multi_az=s.multi_az,
        backup_retention_period=s.backup_retention_days,
        backup_window=s.backup_window,
        skip_final_snapshot=False,
        final_snapshot_identifier=f"{ident}-final",
        # Point-in-time backups outlive the instance: a mistaken delete is recoverable.
        delete_automated_backups=False,
        # protect: Pulumi refuses any delete or replacement of the data (staging, prod).
        # depends_on: the log groups exist first, so they keep their retention.
        opts=pulumi.ResourceOptions.merge(with_protection(opts, args.protect), pulumi.ResourceOptions(depends_on=logs)),
    )


def _dr_instance(
    name: str,
    args: DatabaseArgs,
    source: ReplicaSource,
    hardening: dict,
    subnets: aws.rds.SubnetGroup,
    key: aws.kms.Key,
    opts: pulumi.ResourceOptions,
) -> aws.rds.Instance:
    """A DR stack's database (docs/dr.md): one resource, `{name}-primary` as in every stack, so
    the failover is an update of it, never a replacement.

    - standby: a cross-region read replica of the primary stack's database, named by its ARN
      (cross-region). The source is encrypted, so the replica needs a key of this region:
      `kms_key_id`, this database's own key (pulumi-aws rds.Instance: "if you are creating a
      cross-region replica of an encrypted database you will also need to specify a
      `kms_key_id`"). Engine, version, database name, master user and port come from the source
      and cannot be set on a replica. Same hardening as the primary (parameter group, monitoring,
      Performance Insights, log exports, deletion protection), Multi-AZ per the settings (so the
      promotion changes nothing about it), automated backups on (AWS recommends them before a
      promotion: none is taken during it).
    - active: the same instance promoted in place. The pulumi-aws docs of rds.Instance: "Removing
      the `replicate_source_db` attribute from an existing RDS Replicate database managed by the
      provider will promote the database to a fully standalone database." The provider promotes
      first (PromoteReadReplica, with backup_retention_period and backup_window), then applies
      the other changes of the edit, at once: RDS manages a new master password in this region's
      Secrets Manager (the primary's secret is in the region that failed), and a delete would
      leave a final snapshot.
    """
    s = args.settings
    ident, promoted = s.identifier, source.promoted
    logs = _exported_logs(name, "primary", ident, s, key, with_protection(opts, args.protect))
    return aws.rds.Instance(
        f"{name}-primary",
        identifier=ident,
        **{**hardening, "apply_immediately": hardening["apply_immediately"] or promoted},
        replicate_source_db=None if promoted else source.arn,
        allocated_storage=s.allocated_storage_gib,
        storage_encrypted=True,  # ignored while a cross-region replica: kms_key_id decides
        kms_key_id=key.arn,
        # A cross-region replica would otherwise land in the region's `default` subnet group.
        db_subnet_group_name=subnets.name,
        multi_az=s.multi_az,
        backup_retention_period=s.backup_retention_days,
        backup_window=s.backup_window,
        manage_master_user_password=True if promoted else None,
        master_user_secret_kms_key_id=key.arn if promoted else None,
        # AWS refuses a final snapshot of a replica; the promoted instance leaves one.
        skip_final_snapshot=not promoted,
        final_snapshot_identifier=f"{ident}-final" if promoted else None,
        delete_automated_backups=False,
        # protect + retain: the DR copy survives a mistaken delete, even from the program.
        opts=pulumi.ResourceOptions.merge(
            with_protection(opts, args.protect, retain=True), pulumi.ResourceOptions(depends_on=logs)
        ),
    )


def _password_rotation(
    name: str, secret_arn: pulumi.Output[str], s: DatabaseSettings, opts: pulumi.ResourceOptions
) -> None:
    # RDS rotates a managed password every 7 days unless told otherwise; no Lambda is needed
    # for an RDS-managed secret. Replicas share the primary's credentials.
    aws.secretsmanager.SecretRotation(
        f"{name}-password-rotation",
        secret_id=secret_arn,
        rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
            automatically_after_days=s.password_rotation_days
        ),
        opts=opts,
    )


def _replicas(
    name: str,
    s: DatabaseSettings,
    count: int,
    hardening: dict,
    primary: aws.rds.Instance,
    key: aws.kms.Key,
    opts: pulumi.ResourceOptions,
) -> list[aws.rds.Instance]:
    """`count` (readReplicas) same-region replicas, spread over the configured zones in turn. `opts`
    carries dataProtection.protect: a replica serves reads, so deleting one by accident is an
    outage; scaling readReplicas down therefore needs `pulumi state unprotect` on the removed
    replica and its log groups first (docs/data-tier.md)."""
    zones = s.replica_availability_zones
    replicas = []
    for number in range(1, count + 1):
        identifier = f"{s.identifier}-replica-{number}"
        logs = _exported_logs(name, f"replica-{number}", identifier, s, key, opts)
        replicas.append(
            aws.rds.Instance(
                f"{name}-replica-{number}",
                identifier=identifier,
                **hardening,
                # Same region: the source's identifier. Engine, storage encryption (same key),
                # subnet group and master credentials are inherited and must not be set.
                replicate_source_db=primary.identifier,
                availability_zone=zones[(number - 1) % len(zones)] if zones else None,
                multi_az=False,  # a replica's redundancy is the other replicas
                # A PostgreSQL replica keeps no backups of its own; the primary's are the record.
                skip_final_snapshot=True,
                opts=pulumi.ResourceOptions.merge(
                    opts,
                    pulumi.ResourceOptions(depends_on=[primary, *logs]),
                ),
            )
        )
    return replicas
