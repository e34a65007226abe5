"""Prometheus rules and alert routing, the CloudWatch alarm topic and alarms, and the alarms on
the data path to the DR region."""

from __future__ import annotations

import pulumi
from pydantic import SecretStr

from components import naming
from components.config.monitoring import RECEIVERS
from components.data.disaster_recovery import REPLICATION_RULE_ID
from components.observability.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.observability.alerting import Alerting, AlertingArgs
from components.observability.application_logs import ApplicationLogs, ApplicationLogsArgs
from components.observability.cloud_alarms import CloudAlarms, CloudAlarmsArgs
from components.observability.data_path_alarms import (
    BucketReplication,
    DataPathAlarms,
    DataPathAlarmsArgs,
    DrReplica,
    VaultRef,
)
from components.observability.tracing import Tracing, TracingArgs
from components.platform.state import PlatformState


class ObservabilitySteps(PlatformState):
    def _build_observability(self) -> None:
        """Scraping, rules, routing, smoke probe, dashboard; then the topic the CloudWatch
        alarms on the database and cache notify, with the same thresholds as the rules."""
        settings = self._settings
        receiver_secrets = {
            kind: _secret(value)
            for kind, receiver in RECEIVERS.items()
            if (value := getattr(settings, receiver.setting)) is not None
        }
        readiness_path = settings.workloads["web"].probes.readiness_path
        self.alerting = Alerting(
            "monitoring",
            AlertingArgs(
                stack=self._stack,
                namespace=self.namespace,
                namespace_name=settings.namespace,
                monitoring=settings.monitoring,
                # A DR standby pages for nothing in the cluster (docs/dr.md).
                alerting=settings.alert_routing,
                health_url=f"https://{settings.domain}{readiness_path}",
                account_id=self._account_id,
                irsa=settings.irsa,
                # The receivers' secret reaches the cluster through the app's store.
                secret_store=self.app_access.store_access,
                receiver_secrets=receiver_secrets,
            ),
            # Both explicit providers: Prometheus Operator objects, and the receivers' secret.
            opts=pulumi.ResourceOptions(parent=self, providers=[self.k8s_provider, self.aws_provider]),
        )
        pager_duty_url = None
        if settings.pager_duty_cloudwatch_url is not None and settings.alerting.critical == "pagerduty":
            # (settings require the URL whenever critical alerts page). A DR standby's topic pages
            # too: its replication alarms notify it; its other alarms are off (CloudAlarms.notify).
            pager_duty_url = _secret(settings.pager_duty_cloudwatch_url)
        self.alarm_topic = AlarmTopic(
            "alarms", AlarmTopicArgs(stack=self._stack, pager_duty_url=pager_duty_url), opts=self.aws_opts
        )
        self.cloud_alarms = CloudAlarms(
            "data",
            CloudAlarmsArgs(
                topic=self.alarm_topic.topic,
                thresholds=settings.monitoring.thresholds,
                db_primary_identifier=self.database.primary.identifier,
                db_max_connections=settings.database.max_connections,
                db_replica_identifiers={
                    f"replica-{i + 1}": replica.identifier for i, replica in enumerate(self.database.replicas)
                },
                cache_replication_group_id=self.cache.group.id,
                cache_node_count=settings.cache.nodes,
                notify=not (settings.dr is not None and settings.dr.pages_only_for_replication),
            ),
            opts=self.aws_opts,
        )

    def _build_tracing_and_logs(self) -> None:
        """Istio Telemetry (access logs; traces tagged with each web track when the stack picks a
        provider), then the log group the cluster's log shipping keeps the pods' logs in."""
        settings, stack = self._settings, self._stack
        self.tracing = Tracing(
            "tracing",
            TracingArgs(
                stack=stack,
                namespace=self.namespace,
                settings=settings.monitoring.tracing,
                web_workload="web",
                tracks=self.plan.tracks,
            ),
            opts=self.k8s_opts,
        )
        self.application_logs = ApplicationLogs(
            "application-logs",
            ApplicationLogsArgs(
                stack=stack,
                group_name=naming.application_log_group_name(stack),
                region=settings.aws.region,
                account_id=self._account_id,
                retention_days=settings.monitoring.application_log_retention_days,
                protect=settings.data_protection.protect,
            ),
            opts=self.aws_opts,
        )

    def _build_data_path_alarms(self) -> None:
        """Alarms on the data path to the DR region, in this region (components/observability/
        data_path_alarms.py): failed backup, copy and restore jobs, a missing recovery point,
        late or failed S3 replication, a failed restore test; in a standby, the DR replica's lag
        (it lives here, and so must its alarm: CloudWatch notifies topics of its own region)."""
        settings, backups, dr = self._settings, self.backups, self._settings.dr
        vaults, replication, replica = {}, None, None
        if backups is not None:
            vaults["primary"] = VaultRef(backups.vault.name, backups.vault.arn)
            if backups.dr_bucket is not None:
                replication = BucketReplication(backups.bucket.bucket, backups.dr_bucket.bucket, REPLICATION_RULE_ID)
        elif dr is not None and dr.is_promoted:
            vaults["dr"] = self._dr_vault  # the promoted database backs up into it
        if dr is not None and dr.is_standby:
            replica = DrReplica(self.database.primary.identifier, dr.replica_lag_alarm_minutes)
        self.data_path_alarms = DataPathAlarms(
            "data-path",
            DataPathAlarmsArgs(
                topic=self.alarm_topic.topic,
                runbook_url=settings.monitoring.runbook_url,
                vaults=vaults,
                replication=replication,
                dr_replica=replica,
                restore_validator=self.restore_testing.validator,
            ),
            opts=self.aws_opts,
        )


def _secret(value: SecretStr) -> pulumi.Output[str]:
    """A secret setting as a Pulumi secret: the one place a secret's value leaves its SecretStr."""
    return pulumi.Output.secret(value.get_secret_value())
