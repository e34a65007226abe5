"""What a PostgreSQL instance runs with besides its own inputs: the parameter group (TLS only, at
the newest version the engine serves; slow statements and lock waits logged) and the role
Enhanced Monitoring publishes with. Primary, DR replica and read replicas share both."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.config.data import DatabaseSettings
from components.data.shared import service_role

TLS13_FROM_MAJOR = 16
"""RDS for PostgreSQL accepts TLS 1.3 from major version 16 (AWS: "Using SSL with a PostgreSQL DB
instance"); older majors stop at TLS 1.2."""


def min_tls_version(s: DatabaseSettings) -> str:
    """`ssl_min_protocol_version`: TLS 1.3 where RDS supports it, TLS 1.2 before (staging and
    production refuse such a version; see DatabaseSettings)."""
    return "TLSv1.3" if s.major_version >= TLS13_FROM_MAJOR else "TLSv1.2"


def parameter_group(name: str, s: DatabaseSettings, opts: pulumi.ResourceOptions) -> aws.rds.ParameterGroup:
    """One per major version (the family is part of it): TLS only, slow statements logged."""
    ident = s.identifier
    major = s.major_version
    return aws.rds.ParameterGroup(
        f"{name}-params",
        name=f"{ident}-postgres{major}",
        family=f"postgres{major}",
        description=f"{ident}: TLS only, slow statements logged",
        parameters=[
            aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
            aws.rds.ParameterGroupParameterArgs(name="ssl_min_protocol_version", value=min_tls_version(s)),
            # Static parameter: RDS accepts it only with a pending-reboot apply method.
            aws.rds.ParameterGroupParameterArgs(
                name="max_connections",
                value=str(s.max_connections),
                apply_method="pending-reboot",
            ),
            aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value=str(s.slow_statement_ms)),
            aws.rds.ParameterGroupParameterArgs(name="log_lock_waits", value="1"),
            aws.rds.ParameterGroupParameterArgs(name="log_temp_files", value="0"),
        ],
        opts=opts,
    )


def monitoring_role(name: str, s: DatabaseSettings, opts: pulumi.ResourceOptions) -> aws.iam.Role | None:
    """The role Enhanced Monitoring publishes with; none when monitoring is off."""
    if not s.monitoring_interval_seconds:
        return None
    return service_role(
        f"{name}-monitoring",
        "monitoring.rds.amazonaws.com",
        ["arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"],
        opts,
    )
