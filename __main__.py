"""PlexiChat infrastructure: one stack = one environment (see Pulumi.<stack>.yaml)."""

import gc

# The provider SDKs build about 400k long-lived objects as they import (their type tables), and a
# program allocates steadily while it registers resources. With CPython's default thresholds the
# collector walks that heap over and over, which doubled the run time (`make bench`). A Pulumi
# program is a short batch run: collect less often. Set before the SDK imports below.
gc.set_threshold(50_000, 20, 20)

import pulumi  # noqa: E402 (after the collector is tuned, so the imports benefit too)
from pulumi.runtime import config as runtime_config  # noqa: E402

from components.config.parse import ConfigError, parse_stack_config  # noqa: E402
from components.data import dr_source  # noqa: E402
from components.data.access_log_bucket import LOAD_BALANCER_LOG_PREFIX  # noqa: E402
from components.platform import Platform  # noqa: E402

stack = pulumi.get_stack()
# The whole `plexichat:` namespace, parsed once and validated before any resource exists. The
# language host passes the stack's config as this map (PULUMI_CONFIG as a fallback).
raw_config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
# Which keys are secrets (`config set --secret`): a secret setting given in plain text is refused.
secret_keys = {
    *runtime_config.get_config_secret_keys_env(),
    *(key for key in raw_config if runtime_config.is_config_secret(key)),
}
try:
    settings = parse_stack_config(raw_config, stack, secret_keys)
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None  # the operator's mistake: a message, no traceback

platform = Platform("plexichat", settings, stack)
plan = platform.plan

pulumi.export("url", platform.url)
# What the stack is, and the production floors it goes below on purpose, each with its reason:
# `plexictl diff` shows every override (components/config/floors.py).
pulumi.export("environment", settings.environment)
if settings.production_floor_overrides:
    pulumi.export("productionFloorOverrides", dict(settings.production_floor_overrides))
pulumi.export("namespace", platform.namespace)
pulumi.export("releaseStrategy", plan.strategy)
pulumi.export("tracks", {t.name: {"version": t.version, "weightPercent": plan.weight_of(t.name)} for t in plan.tracks})
pulumi.export("workerVersion", plan.worker_track.version)
if plan.canary_weight_percent is not None:
    pulumi.export("canaryWeightPercent", plan.canary_weight_percent)
if plan.active_colour is not None:
    pulumi.export("activeColour", plan.active_colour)
if platform.preview_url is not None:
    pulumi.export("previewUrl", platform.preview_url)
pulumi.export("alarmTopicArn", platform.alarm_topic.topic.arn)
# CloudFront for the static assets (docs/edge.md): the host, and what CloudFront calls it.
if platform.static_assets is not None:
    pulumi.export(
        "staticAssets",
        {
            "host": platform.static_assets.host,
            "distributionId": platform.static_assets.distribution_id,
            "distributionDomainName": platform.static_assets.domain_name,
        },
    )
# Where the load balancer must write its access logs (`plexictl preflight` checks it does).
if platform.load_balancer_logs is not None:
    pulumi.export(
        "loadBalancerAccessLogs",
        {"bucket": platform.load_balancer_logs.bucket, "prefix": LOAD_BALANCER_LOG_PREFIX},
    )
# Where the cluster's log shipping must send the app's pods' logs (docs/delivery.md).
pulumi.export("applicationLogGroup", platform.application_logs.group.name)
# DNS failover (docs/dr.md "DNS"): the health check this stack's record follows, and the host
# Route 53 checks for /readyz.
if platform.dns_failover is not None:
    pulumi.export(
        "dnsFailover",
        {
            "record": settings.domain,
            "failover": platform.dns_failover.failover,
            "healthCheckId": platform.dns_failover.health_check_id,
            "endpointHealthCheckId": platform.dns_failover.endpoint_health_check_id,
            "healthHost": platform.dns_failover.health_host,
        },
    )

# Data tier: what operators need for connections, restores and DR.
pulumi.export(
    "database",
    {
        "primaryEndpoint": platform.database.address,
        "readerEndpoints": platform.database.reader_addresses,
        "readReplicas": len(platform.database.replicas),
        "multiAz": settings.database.multi_az,
        "backupRetentionDays": settings.database.backup_retention_days,
        "masterSecretArn": platform.database.master_secret_arn,
    },
)
pulumi.export(
    "cache",
    {
        "primaryEndpoint": platform.cache.primary_address,
        "readerEndpoint": platform.cache.reader_address,
        "nodes": settings.cache.nodes,
    },
)
if platform.backups is not None:
    pulumi.export(
        "backups",
        {
            "bucket": platform.backups.bucket.bucket,
            "vault": platform.backups.vault.name,
            "drRegion": settings.backups.dr_region,
            "drBucket": platform.backups.dr_bucket.bucket if platform.backups.dr_bucket else None,
        },
    )
elif platform.dr_primary is not None and settings.dr is not None:
    # A DR stack's backups are its primary's copies in this region (docs/dr.md).
    pulumi.export(
        "backups",
        {
            "bucket": platform.backup_store.bucket_name,
            "vault": platform.dr_primary.backup_vault,
            "ownedBy": settings.dr.primary_stack,
        },
    )
# Disaster recovery (docs/dr.md): what a primary's standby reads through its StackReference.
if settings.dr is not None and settings.dr.role == "primary" and platform.backups is not None:
    pulumi.export(
        dr_source.OUTPUT,
        dr_source.export_value(
            platform.database,
            platform.backups,
            platform.role_secrets,
            settings.aws.region,
            settings.backups.dr_region or "",
        ),
    )
pulumi.export("appRoleArn", platform.app_access.role.arn)
