"""Disaster recovery: an active-passive pair of stacks in two regions (docs/dr.md).

The primary (`prod`) names its standby; the standby (`prod-dr`, in the DR region) names its
primary and reads the primary's outputs through a StackReference. Failover is one reviewed edit
of the standby, `role: standby` to `role: active`; failing back is a documented sequence.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import model_validator

from components.config.base import FieldError, Model, int_range, pattern

StackName = Annotated[
    str,
    pattern(re.compile(r"^([A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$"), "a stack name such as prod or org/project/prod"),
]
HostedZoneId = Annotated[
    str, pattern(re.compile(r"^Z[A-Z0-9]{4,31}$"), "a Route 53 hosted zone id such as Z0123456789ABC")
]
DrRegion = Annotated[
    str, pattern(re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$"), "an AWS region such as us-east-1")
]

ROLES = ("primary", "standby", "active")


class DrSettings(Model):
    """This stack's part in disaster recovery: the primary, its warm standby in the DR region, or
    that standby promoted (`active`) after a failover."""

    role: Literal["primary", "standby", "active"]
    """`primary`: serves users, replicates to its standby. `standby`: a warm copy in the DR region
    (read replica, standbyReplicas pods, paging only for replication), never sent users.
    `active`: the standby after failover (promoted database, full size, full paging). Failing
    over is the one edit standby -> active of the standby's stack file (`plexictl dr failover`)."""
    standby_stack: StackName | None = None
    """The primary's standby stack (e.g. prod-dr). Required with role primary."""
    primary_stack: StackName | None = None
    """The standby's primary stack (e.g. prod), whose outputs it reads through a StackReference.
    Required with role standby or active."""
    primary_region: DrRegion | None = None
    """The primary's AWS region, where the database the standby replicates lives. Required with
    role standby or active; must differ from the stack's own aws.region."""
    standby_replicas: Annotated[int, int_range(1, 20, "a number of pods")] = 1
    """Pods per workload track while the stack is standby (warm: deployed, ready to scale; the
    HPA's minimum and maximum both). Once active, the workloads' own range. Default 1."""
    hosted_zone_id: HostedZoneId | None = None
    """The Route 53 hosted zone of the app's domain: the primary holds the PRIMARY failover
    record, the standby the SECONDARY (docs/dr.md "DNS"); needs ingress.waf.loadBalancerArn, the
    load balancer they point at. Without it no DNS failover records are made."""
    replica_lag_alarm_minutes: Annotated[int, int_range(1, 60, "a number of minutes")] = 15
    """The DR replica's lag that raises an alarm: the replication part of the RPO budget.
    Default 15."""
    rpo_minutes: Annotated[int, int_range(5, 1440, "a number of minutes")] = 60
    """The recovery point objective every data store must stay within (runbook: 1 h). Default 60."""
    rto_minutes: Annotated[int, int_range(15, 2880, "a number of minutes")] = 240
    """The recovery time objective the failover checklist is timed against (runbook: 4 h)."""

    @model_validator(mode="after")
    def _partner_named(self) -> DrSettings:
        if self.role == "primary":
            if self.standby_stack is None:
                raise FieldError("standbyStack", "required with role primary (the stack that takes over)")
            if self.primary_stack is not None or self.primary_region is not None:
                raise FieldError(
                    "role",
                    "a primary names no primaryStack/primaryRegion; `active` is the role of a promoted "
                    "standby, set in the standby's own stack file (plexictl dr failover --stack <standby>)",
                )
        else:
            if self.role == "active" and self.standby_stack is not None:
                raise FieldError(
                    "role",
                    "active is the role of a promoted standby (set in the standby's stack file); a "
                    "primary with a standbyStack stays primary",
                )
            for field, key in (("primary_stack", "primaryStack"), ("primary_region", "primaryRegion")):
                if getattr(self, field) is None:
                    raise FieldError(key, f"required with role {self.role} (the stack it replicates)")
        return self

    @property
    def is_standby(self) -> bool:
        return self.role == "standby"

    @property
    def pages_only_for_replication(self) -> bool:
        """A standby pages on-call for replication problems alone (the DR replica's lag); every
        other alert goes to chat, every other CloudWatch alarm nowhere (docs/dr.md)."""
        return self.is_standby

    @property
    def is_promoted(self) -> bool:
        """The standby after a failover: its database promoted, full size, full paging."""
        return self.role == "active"

    def primary_reference(self, organization: str, project: str) -> str:
        """The primary's stack as `pulumi.StackReference` names it: `org/project/stack` (the
        documented form; `organization` with a self-managed backend), or primaryStack as given
        when it is qualified already."""
        if self.primary_stack is None:
            raise ValueError("only a standby or active stack references its primary")
        if "/" in self.primary_stack:
            return self.primary_stack
        return f"{organization}/{project}/{self.primary_stack}"

    @property
    def replicates_from_primary(self) -> bool:
        """Standby and active stacks are the DR side of a pair; active is promoted, so its data
        no longer follows the primary (the database's replicate_source_db is gone)."""
        return self.role in ("standby", "active")
