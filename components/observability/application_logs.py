"""Where the app's pods' logs are kept: a CloudWatch Logs group of this stack, encrypted with a key
of its own and kept monitoring.applicationLogRetentionDays (the runbook's 90 days).

The cluster's log shipping (Fluent Bit with its CloudWatch Logs output, a cluster prerequisite:
docs/delivery.md) writes the containers' stdout there, the sidecars' access logs included
(components/observability/tracing.py). The group exists before the agent writes to it, so it has
a retention: a group the agent creates keeps logs forever, unencrypted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.data.shared import data_key, log_group, logs_may_use_key, with_protection


@dataclass(frozen=True)
class ApplicationLogsArgs:
    stack: str
    group_name: str
    region: str
    account_id: pulumi.Input[str]
    retention_days: int
    protect: bool
    """Pulumi `protect` on the group and its key (dataProtection.protect), as on the data tier's
    log groups: a deleted group takes its logs with it."""


class ApplicationLogs(pulumi.ComponentResource):
    key: aws.kms.Key
    group: aws.cloudwatch.LogGroup

    def __init__(self, name: str, args: ApplicationLogsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("plexichat:observability:ApplicationLogs", name, None, opts)
        protected = with_protection(pulumi.ResourceOptions(parent=self), args.protect)
        # The logs hold user ids, IPs and URLs: a customer-managed key, usable by CloudWatch Logs
        # for this group alone.
        self.key = data_key(
            f"{name}-key",
            f"PlexiChat {args.stack}: application logs",
            args.account_id,
            protected,
            extra_statements=[logs_may_use_key(args.region, args.account_id, [args.group_name])],
        )
        self.group = log_group(f"{name}-group", args.group_name, args.retention_days, self.key, protected)
        self.register_outputs({"log_group_name": self.group.name, "key_arn": self.key.arn})
