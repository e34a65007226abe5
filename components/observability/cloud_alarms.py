"""CloudWatch alarms on the data tier, to the stack's alarm topic.

It takes plain identifiers (RDS instance identifiers, the ElastiCache replication group id), so
it does not depend on how the database and cache components are built. Every threshold comes
from `AlertThresholds`, the same settings the Prometheus rules read: one number, both systems.
Each alarm notifies the topic when it fires and when it clears (`ok_actions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config.monitoring import AlertThresholds

GIB = 1024**3
MIB = 1024**2
ABOVE, BELOW = "GreaterThanThreshold", "LessThanThreshold"


@dataclass(frozen=True)
class CloudAlarmsArgs:
    topic: aws.sns.Topic
    thresholds: AlertThresholds
    db_primary_identifier: pulumi.Input[str]
    """RDS identifier of the primary."""
    db_max_connections: int
    """The primary's max_connections: the connections alarm fires at connectionUtilisationPercent
    of it."""
    cache_replication_group_id: pulumi.Input[str]
    """ElastiCache replication group id."""
    cache_node_count: int
    """Nodes in the (cluster-mode disabled) group: `<group>-001` ... are its member clusters."""
    db_replica_identifiers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Replica name (used in resource names, e.g. "replica-1") -> RDS identifier."""
    notify: bool = True
    """Whether the alarms notify the topic. Off on a DR standby (dr.pagesOnlyForReplication): its
    database and cache serve nobody, so their alarms show in the console and page no one; at
    failover they notify again (docs/dr.md)."""


@dataclass(frozen=True)
class _Alarm:
    role: str
    namespace: str
    metric: str
    dimensions: dict
    statistic: str
    operator: str
    threshold: float
    description: str
    period_seconds: int = 300
    evaluation_periods: int = 3
    treat_missing_data: str = "missing"


class CloudAlarms(pulumi.ComponentResource):
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: CloudAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:alerting:CloudAlarms", name, None, opts)
        self.alarms = {}
        for alarm in _alarms(args):
            self.alarms[alarm.role] = aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.role}",
                alarm_description=alarm.description,
                namespace=alarm.namespace,
                metric_name=alarm.metric,
                dimensions=alarm.dimensions,
                statistic=alarm.statistic,
                comparison_operator=alarm.operator,
                threshold=alarm.threshold,
                period=alarm.period_seconds,
                evaluation_periods=alarm.evaluation_periods,
                treat_missing_data=alarm.treat_missing_data,
                actions_enabled=args.notify,
                alarm_actions=[args.topic.arn],
                ok_actions=[args.topic.arn],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"alarms": sorted(self.alarms)})


def _alarms(args: CloudAlarmsArgs) -> list[_Alarm]:
    """Every alarm, per resource family: the database primary, its replicas, the cache nodes."""
    return [*_db_primary_alarms(args), *_db_replica_alarms(args), *_cache_alarms(args)]


def _db_primary_alarms(args: CloudAlarmsArgs) -> list[_Alarm]:
    """CPU, free storage, freeable memory and connections of the RDS primary."""
    t = args.thresholds
    db = {"DBInstanceIdentifier": args.db_primary_identifier}
    return [
        _Alarm(
            "db-primary-cpu",
            "AWS/RDS",
            "CPUUtilization",
            db,
            "Average",
            ABOVE,
            t.cpu_target_percent,
            f"RDS primary CPU above {t.cpu_target_percent:g}%",
        ),
        _Alarm(
            "db-primary-free-storage",
            "AWS/RDS",
            "FreeStorageSpace",
            db,
            "Minimum",
            BELOW,
            t.db_free_storage_min_gib * GIB,
            f"RDS primary free storage below {t.db_free_storage_min_gib} GiB",
        ),
        _Alarm(
            "db-primary-freeable-memory",
            "AWS/RDS",
            "FreeableMemory",
            db,
            "Minimum",
            BELOW,
            t.db_freeable_memory_min_mib * MIB,
            f"RDS primary freeable memory below {t.db_freeable_memory_min_mib} MiB",
        ),
        _Alarm(
            "db-primary-connections",
            "AWS/RDS",
            "DatabaseConnections",
            db,
            "Maximum",
            ABOVE,
            args.db_max_connections * t.connection_utilisation_percent / 100,
            f"RDS primary connections above {t.connection_utilisation_percent:g}% of "
            f"max_connections ({args.db_max_connections})",
        ),
    ]


def _db_replica_alarms(args: CloudAlarmsArgs) -> list[_Alarm]:
    """Lag of each RDS read replica behind the primary."""
    t = args.thresholds
    return [
        _Alarm(
            f"db-{replica}-lag",
            "AWS/RDS",
            "ReplicaLag",
            {"DBInstanceIdentifier": identifier},
            "Maximum",
            ABOVE,
            t.replica_lag_max_seconds,
            f"RDS {replica} lags the primary by more than {t.replica_lag_max_seconds} s",
        )
        for replica, identifier in args.db_replica_identifiers.items()
    ]


def _cache_alarms(args: CloudAlarmsArgs) -> list[_Alarm]:
    """Engine CPU, memory, evictions and hit rate of each Redis node (`<group>-001`, ...)."""
    t = args.thresholds
    found: list[_Alarm] = []
    for index in range(1, args.cache_node_count + 1):
        node = f"cache-{index:03d}"
        cluster = {"CacheClusterId": pulumi.Output.concat(args.cache_replication_group_id, f"-{index:03d}")}
        found += [
            _Alarm(
                f"{node}-engine-cpu",
                "AWS/ElastiCache",
                "EngineCPUUtilization",
                cluster,
                "Average",
                ABOVE,
                t.cpu_target_percent,
                f"Redis {node} engine CPU above {t.cpu_target_percent:g}%",
            ),
            _Alarm(
                f"{node}-memory",
                "AWS/ElastiCache",
                "DatabaseMemoryUsagePercentage",
                cluster,
                "Average",
                ABOVE,
                t.memory_target_percent,
                f"Redis {node} memory above {t.memory_target_percent:g}%",
            ),
            _Alarm(
                f"{node}-evictions",
                "AWS/ElastiCache",
                "Evictions",
                cluster,
                "Sum",
                ABOVE,
                t.cache_evictions_per_minute_max,
                f"Redis {node} evicts more than {t.cache_evictions_per_minute_max} keys a minute",
                period_seconds=60,
                evaluation_periods=5,
            ),
            # An idle cache has no hit rate: no data is not an incident.
            _Alarm(
                f"{node}-hit-rate",
                "AWS/ElastiCache",
                "CacheHitRate",
                cluster,
                "Average",
                BELOW,
                t.cache_hit_rate_min_percent,
                f"Redis {node} hit rate below {t.cache_hit_rate_min_percent:g}%",
                treat_missing_data="notBreaching",
            ),
        ]
    return found
