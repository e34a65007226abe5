"""`plexictl dr failover --stack <standby>`: the failover edit and its checklist.

Failing over is one reviewed edit of the standby's stack file, `plexichat:dr.role: standby ->
active`, run through the release commands' machinery (`edit_stack` with the `plexichat:dr`
block): comments and untouched lines kept, the whole config validated by the program's models,
the stack rendered before and after and the desired-state diff shown. Deploying it promotes the
DR replica in place and scales the workloads up; Route 53 then moves users by health alone
(components/edge/dns_failover.py).

Only a standby fails over. A primary is refused (its standby is the stack to edit), and so is an
active stack: failing back is a sequence of its own (docs/dr.md "Failover and failback").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ruamel.yaml.comments import CommentedMap

from components.config.stack import StackSettings
from components.edge import dns_failover
from plexictl.release.changes import ReleaseError, reads

DR_KEY = "plexichat:dr"
FAILBACK_DOCS = 'docs/dr.md "Failover and failback"'


@reads("role")
def promote(dr: CommentedMap) -> str:
    """The failover edit: a standby becomes `active`; anything else is refused (ReleaseError)."""
    role = dr.get("role")
    if role == "active":
        raise ReleaseError(
            "this stack is already active (failed over); failing back is a sequence, not an edit "
            f"of this file: see {FAILBACK_DOCS}"
        )
    if role != "standby":
        standby = dr.get("standbyStack")
        target = f"its standby: plexictl dr failover --stack {standby}" if standby else "its standby stack"
        raise ReleaseError(f"only a standby fails over, and this stack's dr.role is {role}; fail over {target}")
    dr["role"] = "active"
    return "dr.role standby -> active: promote the DR replica, scale up to full size, page for everything"


@dataclass(frozen=True)
class Step:
    name: str
    minutes: int
    """The budget for the step: what the RTO is planned with."""
    automatic: bool
    what: str


# Budgets for the steps people do, from the runbook's paging and review practice; the drill
# (docs/dr.md) measures them against these numbers.
DETECT_MINUTES = 15
"""Route 53 sees the failure in 30 s; the rest is the page being sent and acknowledged."""
DECIDE_MINUTES = 30
PROMOTE_MINUTES = 45
"""The edit and its review (15), then `pulumi up`: RDS promotes a cross-region replica in
minutes, with a reboot; the budget leaves room for a slow promotion."""
SCALE_UP_MINUTES = 20
"""Deployments from standbyReplicas to minReplicas, with new nodes from the cluster autoscaler."""
VERIFY_MINUTES = 30


def checklist(stack: str, settings: StackSettings) -> list[Step]:
    """The failover of `stack` (a standby promoted to active), step by step, with budgets."""
    dr = settings.dr
    primary = dr.primary_stack if dr is not None else "the primary"
    dns_minutes = math.ceil(dns_failover.failover_seconds() / 60)
    return [
        Step(
            "detect",
            DETECT_MINUTES,
            True,
            f"Route 53 marks {primary} unhealthy after {dns_failover.FAILURE_THRESHOLD} failed checks "
            f"{dns_failover.HEALTH_CHECK_INTERVAL_SECONDS} s apart; its alarms page on-call, who acknowledges",
        ),
        Step(
            "decide",
            DECIDE_MINUTES,
            False,
            f"confirm a regional outage, not a bad release (AWS Health Dashboard, {primary}'s dashboards); "
            f"`plexictl dr status --stack {stack}`: the replica lag is the data the failover loses; "
            "the incident commander decides",
        ),
        Step(
            "promote",
            PROMOTE_MINUTES,
            False,
            f"this edit in a pull request, reviewed and merged; its deploy (`pulumi up --stack {stack}`) "
            "promotes the DR replica in place (RDS: minutes, one reboot)",
        ),
        Step(
            "scale up",
            SCALE_UP_MINUTES,
            True,
            "the same deploy: every workload from dr.standbyReplicas to its minReplicas, the autoscalers "
            "take over; alert routing pages for everything",
        ),
        Step(
            "DNS",
            dns_minutes,
            True,
            f"the promoted app passes /readyz: its health check turns healthy after "
            f"{dns_failover.FAILURE_THRESHOLD} × {dns_failover.HEALTH_CHECK_INTERVAL_SECONDS} s, {primary}'s "
            f"record is fenced, resolvers follow within the {dns_failover.ALIAS_TTL_SECONDS} s alias TTL "
            f"(no Route 53 change: both records exist already)",
        ),
        Step(
            "verify",
            VERIFY_MINUTES,
            False,
            f"`dig {settings.domain}` answers the DR load balancer; smoke tests on https://{settings.domain}; "
            f"error ratio and p99 on the dashboards; `plexictl dr status --stack {stack}`; announce",
        ),
    ]


def format_checklist(steps: list[Step], rto_minutes: int) -> str:
    """The checklist as a table with the running total, against the RTO."""
    rows = [("step", "budget", "by the end", "how", "what")]
    elapsed = 0
    for step in steps:
        elapsed += step.minutes
        rows.append(
            (step.name, f"{step.minutes} min", _clock(elapsed), "automatic" if step.automatic else "manual", step.what)
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(f"{cell:<{width}}" for cell, width in zip(row[:4], widths, strict=True)) + f"  {row[4]}"
        for row in rows
    ]
    margin = rto_minutes - elapsed
    verdict = (
        f"within the RTO of {_clock(rto_minutes)} ({_clock(margin)} to spare)"
        if margin >= 0
        else f"OVER the RTO of {_clock(rto_minutes)} by {_clock(-margin)}: shorten a step or revisit dr.rtoMinutes"
    )
    return "\n".join([*lines, f"\ntotal {_clock(elapsed)}: {verdict}"])


def _clock(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
