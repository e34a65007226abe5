"""The whole stack: everything under the `plexichat:` namespace of one `Pulumi.<stack>.yaml`."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.config import floors, versions
from components.config.admin_access import AdminAccessSettings
from components.config.base import (
    AppNamespace,
    DomainName,
    FieldError,
    FieldErrors,
    ImageRepository,
    Model,
    NonBlank,
    Registry,
    registry_allows,
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
    check_data_tier,
)
from components.config.deploy_windows import DeployWindow
from components.config.dr import DrSettings
from components.config.edge import ALB_ARN, EdgeSettings, IngressSettings, cdn_problems
from components.config.migrations import MigrationSettings
from components.config.monitoring import (
    RECEIVERS,
    AlertingSettings,
    MonitoringSettings,
    ReceiverSecret,
)
from components.config.release import BlueGreenRelease, CanaryRelease, Release
from components.config.rpo import check_rpo_budget
from components.config.workloads import Workload, check_workloads

# ---------------------------------------------------------------------------------------------
# The whole stack


def _known_floor(name: str) -> str:
    if name not in floors.BY_NAME:
        raise ValueError("is no production floor; the floors are " + ", ".join(floors.BY_NAME))
    return name


FloorName = Annotated[str, AfterValidator(_known_floor)]


class StackSettings(Model):
    """Everything under the `plexichat:` namespace of one `Pulumi.<stack>.yaml`."""

    environment: Literal["production", "staging", "development"]
    """What the stack is: production, staging or development. Required, stated in every stack
    file (never inferred from the stack's name). A production stack must meet the production
    floors (docs/design.md 'Production floors') unless productionFloorOverrides names one."""
    production_floor_overrides: dict[FloorName, NonBlank] = {}
    """Production floors this production stack goes below on purpose: `{floor: reason}`, the
    floor named like its setting (`database.deletionProtection`) and the reason non-empty.
    `plexictl diff` shows every override in red. Default none."""
    domain: DomainName
    """Public host name of the stack, e.g. app.plexichat.com. Required."""
    namespace: AppNamespace = "plexichat"
    """Kubernetes namespace of the app, which the program owns (Pod Security restricted, default
    deny): not default, istio-system, kube-* or a kubernetes.*Namespace. Default plexichat."""
    image_repository: ImageRepository = "ghcr.io/plexichat/plexichat"
    """Container image repository; versions come from `release`. Must lie under one of
    allowedRegistries. Default ghcr.io/plexichat/plexichat."""
    allowed_registries: Annotated[list[Registry], Field(min_length=1)] = ["ghcr.io/plexichat"]
    """Registries (host, optionally a path) imageRepository may come from, matched on host and
    path boundaries: ghcr.io/plexichat admits ghcr.io/plexichat/app, not
    ghcr.io/plexichat-evil/app. Default [ghcr.io/plexichat], the project's own."""
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
    edge: EdgeSettings = EdgeSettings()
    """In front of the load balancer: CloudFront for the static assets (docs/edge.md). Default off."""
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
    deploy_chat_webhook_url: ReceiverSecret | None = None
    """Secret: chat (Slack-compatible) incoming-webhook URL the pipeline posts every deploy,
    rollback and release-analysis decision to (`plexictl notify`). Default none: no
    notifications. Plain text is refused: set it with `pulumi config set --secret`."""
    deploy_windows: list[DeployWindow] = []
    """When `pulumi up` may run without an emergency override (`--emergency REASON`, or the deploy
    workflow's emergency_reason input): a list of windows, each with days, hours and timeZone.
    Default none: always open. The release loop waits outside them (docs/releasing.md)."""
    database: DatabaseSettings
    """RDS PostgreSQL primary and read replicas."""
    cache: CacheSettings
    """ElastiCache replication group."""
    backups: BackupSettings
    """Backup bucket, AWS Backup plan and DR region."""
    irsa: IrsaSettings
    """The cluster's OIDC provider, for the app's IAM role."""
    data_protection: DataProtectionSettings = DataProtectionSettings()
    """Protection of stateful resources against deletes and replacing edits."""
    migrations: MigrationSettings = MigrationSettings()
    """Schema migrations: a Job per schema version, before its pods start."""
    dr: DrSettings | None = None
    """Disaster recovery: this stack's role in an active-passive pair (docs/dr.md). Default none:
    a stack on its own."""
    admin_access: AdminAccessSettings = AdminAccessSettings()
    """Administrative access by hand: the database break-glass path (docs/admin-access.md).
    Default: none."""

    # First: an edit that would destroy data must be reported as that, whatever else is wrong.
    @model_validator(mode="after")
    def _data_tier(self) -> StackSettings:
        check_data_tier(self)
        return self

    @property
    def alert_routing(self) -> AlertingSettings:
        """Where this stack's Alertmanager sends each severity: `alerting`, except on a DR standby
        (`dr.role: standby`), which pages for nothing in the cluster: what would page goes to chat
        (nowhere without alertChatWebhookUrl). Its replication alarms page through the alarm
        topic (docs/dr.md "The standby stack")."""
        if self.dr is None or not self.dr.is_standby:
            return self.alerting
        return self.alerting.without_paging("chat" if self.alert_chat_webhook_url is not None else "none")

    @property
    def floor_role(self) -> floors.Role:
        """Which production floors hold (components/config/floors.py): a DR standby's
        (`dr.role: standby`) keep its data safe; every other stack, a promoted standby too, is
        `active` and meets them all."""
        return "standby" if self.dr is not None and self.dr.is_standby else "active"

    # After the data tier's: one error with every problem of the stack's own rules.
    @model_validator(mode="after")
    def _stack_rules(self) -> StackSettings:
        problems = [*_target_problems(self), *_floor_problems(self), *_environment_problems(self)]
        dr = self.dr
        problems += cdn_problems(
            self.edge.cdn,
            domain=self.domain,
            load_balancer_arn=self.ingress.waf.load_balancer_arn,
            dr_hosted_zone_id=dr.hosted_zone_id if dr else None,
            dr_replicates_from_primary=dr is not None and dr.replicates_from_primary,
            websocket_path=self.traffic.websocket_path,
        )
        if problems:
            raise FieldErrors(problems)
        return self

    @model_validator(mode="after")
    def _rpo_within_budget(self) -> StackSettings:
        """A primary's data stores stay within dr.rpoMinutes by construction (components/config/rpo.py)."""
        dr = self.dr
        if dr is not None and dr.role == "primary":
            check_rpo_budget(dr.replica_lag_alarm_minutes, dr.rpo_minutes, self.backups.dr_region)
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


def _target_problems(settings: StackSettings) -> list[FieldError]:
    """Where the stack deploys, and from which registry: never a system namespace, never the
    kubeconfig's current context, never an untrusted registry."""
    problems = []
    kubernetes = settings.kubernetes
    for field in ("ingress_namespace", "monitoring_namespace", "istio_namespace"):
        if settings.namespace == getattr(kubernetes, field):
            problems.append(
                FieldError(
                    "namespace",
                    f"must not be kubernetes.{to_camel(field)} ({settings.namespace}): that namespace "
                    "belongs to a cluster add-on, and the program labels its own Pod Security "
                    "restricted and denies all traffic in it by default",
                )
            )
    if kubernetes.context is None and kubernetes.render_yaml_to_directory is None:
        problems.append(
            FieldError(
                "kubernetes.context",
                "required (the kubeconfig context of this stack's cluster), unless "
                "kubernetes.renderYamlToDirectory is set: the program never deploys to whatever "
                "context is current",
            )
        )
    if not any(registry_allows(r, settings.image_repository) for r in settings.allowed_registries):
        problems.append(
            FieldError(
                "imageRepository",
                f"must lie under one of allowedRegistries ({', '.join(settings.allowed_registries)}), "
                f"got {settings.image_repository!r}; to trust its registry, add it to "
                "plexichat:allowedRegistries",
            )
        )
    return problems


POSTGRES_TLS13_MAJOR = 16
"""The first PostgreSQL major RDS serves TLS 1.3 with (docs/design.md 'TLS 1.3')."""


def release_versions(release: Release) -> dict[str, str]:
    """Every version a release names, by its key path under `release`."""
    if isinstance(release, CanaryRelease):
        return {"stable": release.stable, "canary.version": release.canary.version}
    if isinstance(release, BlueGreenRelease):
        return {"blue": release.blue, "green": release.green}
    return {"version": release.version}


def _environment_problems(settings: StackSettings) -> list[FieldError]:
    """What the stack's environment asks beyond the floors: production runs only images pinned by
    digest, and staging and production speak TLS 1.3 to PostgreSQL."""
    problems = []
    if settings.environment == floors.PRODUCTION:
        # The schema version names the migration Job's image: pinned like the release it belongs to.
        schema = settings.migrations.schema_version
        pinned = {f"release.{path}": version for path, version in release_versions(settings.release).items()}
        for path, version in {**pinned, **({"migrations.schemaVersion": schema} if schema else {})}.items():
            if versions.parse(version).digest is None:
                problems.append(
                    FieldError(
                        path,
                        f"must name its image by digest in a production stack: {version}@sha256:<64 hex> "
                        f"(or a bare sha256:<64 hex>), got {version}; `plexictl deploy|canary start "
                        f"--pin` looks the digest up in the registry",
                    )
                )
    dr = settings.dr
    if dr is not None and dr.role == "primary" and settings.backups.dr_region is None:
        problems.append(
            FieldError(
                "backups.drRegion",
                "is required with dr.role primary: the DR copies there (bucket, vault, key, the "
                "database roles' secrets) are what the standby uses, and the primary owns them",
            )
        )
    if dr is not None and dr.primary_region == settings.aws.region:
        problems.append(
            FieldError(
                "dr.primaryRegion",
                f"must differ from aws.region ({settings.aws.region}): a standby in its primary's "
                "region survives nothing the primary does not",
            )
        )
    if dr is not None and dr.hosted_zone_id is not None and settings.ingress.waf.load_balancer_arn is None:
        problems.append(
            FieldError(
                "dr.hostedZoneId",
                "needs ingress.waf.loadBalancerArn: the failover record and its health check point "
                "at this stack's load balancer (docs/dr.md 'DNS'); set the ARN, or remove hostedZoneId",
            )
        )
    major = settings.database.major_version
    if settings.environment != "development" and major < POSTGRES_TLS13_MAJOR:
        problems.append(
            FieldError(
                "database.engineVersion",
                f"must be {POSTGRES_TLS13_MAJOR} or newer in a {settings.environment} stack (RDS serves TLS "
                f"1.3 from PostgreSQL {POSTGRES_TLS13_MAJOR}; older majors stop at TLS 1.2), got {major}",
            )
        )
    return problems


def _floor_problems(settings: StackSettings) -> list[FieldError]:
    """Every production floor the stack falls below, and every override with nothing to override
    (components/config/floors.py)."""
    role = settings.floor_role
    problems = [
        FieldError(
            floor.name,
            f"is below the production floor: must be {floor.requirement} ({floor.why}), got "
            f"{json.dumps(floor.value(settings))}; to go below it on purpose, add it to "
            "plexichat:productionFloorOverrides with the reason",
        )
        for floor in floors.unmet(settings, role)
    ]
    applicable = floors.applicable(settings.environment, role)
    for name in settings.production_floor_overrides:
        if settings.environment != floors.PRODUCTION:
            why = f"floors hold only in production stacks, and this one's environment is {settings.environment}"
        elif name not in applicable:
            why = f"it is no floor of a {role} stack"
        elif floors.BY_NAME[name].met_by(settings):
            why = "the stack meets this floor"
        else:
            continue
        problems.append(FieldError(f"productionFloorOverrides.{name}", f"overrides nothing: {why}; remove it"))
    return problems
