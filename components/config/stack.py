"""The whole stack: everything under the `plexichat:` namespace of one `Pulumi.<stack>.yaml`."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config.base import (
    DnsLabel,
    DomainName,
    FieldError,
    ImageRepository,
    Model,
)
from components.config.cluster import (
    AwsSettings,
    KubernetesSettings,
    NetworkSettings,
    TrafficSettings,
)
from components.config.data import (
    BackupSettings,
    CacheSettings,
    DatabaseSettings,
    DataProtectionSettings,
    IrsaSettings,
    RedisAuthToken,
    check_data_tier,
)
from components.config.edge import ALB_ARN, IngressSettings
from components.config.migrations import MigrationSettings
from components.config.monitoring import (
    RECEIVERS,
    AlertingSettings,
    MonitoringSettings,
    ReceiverSecret,
)
from components.config.release import Release
from components.config.workloads import Workload, check_workloads

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
    """The release contract: rolling, canary or blueGreen (docs/releasing.md: Releases are config changes)."""
    workloads: Annotated[dict[str, Workload], AfterValidator(check_workloads)]
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
    migrations: MigrationSettings = MigrationSettings()
    """Schema migrations: a Job per schema version, before its pods start."""

    # First: an edit that would destroy data must be reported as that, whatever else is wrong.
    @model_validator(mode="after")
    def _data_tier(self) -> StackSettings:
        check_data_tier(self)
        return self

    @model_validator(mode="after")
    def _waf_in_the_stack_region(self) -> StackSettings:
        arn = self.ingress.waf.load_balancer_arn
        matched = ALB_ARN.match(arn) if arn is not None else None  # the field's own check held
        if matched is not None and matched["region"] != self.aws.region:
            raise FieldError(
                "ingress.waf.loadBalancerArn",
                f"must be in the stack's region {self.aws.region} (a REGIONAL web ACL attaches "
                "only to resources in its own region)",
            )
        return self

    @model_validator(mode="after")
    def _receivers_configured(self) -> StackSettings:
        for kind in set(self.alerting.routes.values()):
            field = RECEIVERS[kind].setting
            if getattr(self, field) is None:
                raise FieldError(
                    to_camel(field),
                    f"required (as a secret) when plexichat:alerting routes a "
                    f"severity to {kind}: pulumi config set --secret {to_camel(field)} ...",
                )
        if self.alerting.critical == "pagerduty" and self.pager_duty_cloudwatch_url is None:
            raise FieldError(
                "pagerDutyCloudwatchUrl",
                "required (as a secret) when critical alerts page (the CloudWatch alarm topic pages too)",
            )
        return self
