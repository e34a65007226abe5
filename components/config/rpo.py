"""Recovery point objective by construction: each data store's worst-case RPO computed from the
settings, for the loss of the primary region (docs/dr.md "RPO and RTO budgets").

A store can be recovered in the DR region from several copies ("paths"); its worst-case RPO is
the best bound any path guarantees. A path is bounded only by what the program makes true and
watches: a lag that raises an alarm at a threshold bounds the loss at that threshold plus the
alarm's own detection time (past it, someone is paged and the loss is an incident being handled,
not a silent one). A copy with no such bound (RDS automated backups replication, S3 replication
without Replication Time Control) is best effort: listed, never counted.

- database: the DR read replica (`dr.replicaLagAlarmMinutes` + detection), the replicated
  automated backups (best effort), the AWS Backup copies in the DR vault (a day between
  recovery points plus the plan's start and completion windows).
- backups bucket: S3 replication with Replication Time Control (15 minutes + detection), or best
  effort without it.
- cache: holds sessions only and is rebuilt empty in the DR region: excluded, with the reason.

The numbers the program builds with live here too (the alarms' periods, the plan's windows), so
the model and the resources cannot drift apart. Pure: no Pulumi (tests/test_architecture.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.base import FieldError, FieldErrors

# --- what the program builds, in minutes -------------------------------------------------------

ALARM_PERIOD_SECONDS = 60
REPLICA_LAG_DETECTION_MINUTES = 5
"""The DR replica lag alarm fires after this many one-minute periods above its threshold."""
REPLICATION_DETECTION_MINUTES = 5
"""The S3 replication latency alarm fires after this many one-minute periods above RTC's 15."""
REPLICATION_TIME_CONTROL_MINUTES = 15
"""S3 Replication Time Control: AWS replicates 99.99 % of objects within 15 minutes (its SLA);
the only value S3 accepts."""
BACKUP_INTERVAL_MINUTES = 24 * 60
"""AWS Backup's daily rule: one recovery point a day (components/data/backups.py)."""
BACKUP_START_WINDOW_MINUTES = 60
BACKUP_COMPLETION_WINDOW_MINUTES = 360
"""The plan's windows: a job that has not started or finished within them fails (and alarms)."""


@dataclass(frozen=True)
class RpoInputs:
    """What the worst-case RPO depends on, as plain numbers (None: the copy does not exist)."""

    replica_lag_alarm_minutes: int | None
    """The DR replica's lag alarm threshold; None without a standby."""
    replica_lag_detection_minutes: int = REPLICA_LAG_DETECTION_MINUTES
    automated_backups_replicated: bool = False
    backup_interval_minutes: int | None = BACKUP_INTERVAL_MINUTES
    """Between two recovery points copied to the DR vault; None without a DR vault."""
    backup_start_window_minutes: int = BACKUP_START_WINDOW_MINUTES
    backup_completion_window_minutes: int = BACKUP_COMPLETION_WINDOW_MINUTES
    replication_time_control_minutes: int | None = REPLICATION_TIME_CONTROL_MINUTES
    """S3 RTC; None without a DR bucket (or without RTC: best effort)."""
    replication_detection_minutes: int = REPLICATION_DETECTION_MINUTES


@dataclass(frozen=True)
class RecoveryPath:
    name: str
    minutes: int | None
    """The worst-case loss through this path; None: best effort, no bound."""
    how: str
    keys: tuple[str, ...] = ()
    """The settings (key paths under `plexichat:`) that move the bound."""


@dataclass(frozen=True)
class StoreRpo:
    store: str
    paths: tuple[RecoveryPath, ...] = ()
    excluded: str | None = None
    """Why the store is outside the budget (its loss is accepted), or None."""

    @property
    def best(self) -> RecoveryPath | None:
        bounded = [p for p in self.paths if p.minutes is not None]
        return min(bounded, key=lambda p: p.minutes or 0) if bounded else None

    @property
    def minutes(self) -> int | None:
        """The worst-case RPO: the best bounded path's; None when no path is bounded."""
        best = self.best
        return best.minutes if best else None


CACHE_EXCLUDED = (
    "holds sessions only and is rebuilt empty in the DR region at failover: users sign in again "
    "(docs/dr.md 'The standby stack'); its daily snapshots stay in the primary region"
)


def worst_case_rpo(inputs: RpoInputs) -> tuple[StoreRpo, ...]:
    """Every data store's recovery paths into the DR region and its worst-case RPO."""
    return (_database(inputs), _backups_bucket(inputs), StoreRpo("cache", excluded=CACHE_EXCLUDED))


def _database(i: RpoInputs) -> StoreRpo:
    paths = []
    if i.replica_lag_alarm_minutes is not None:
        paths.append(
            RecoveryPath(
                "DR read replica, promoted",
                i.replica_lag_alarm_minutes + i.replica_lag_detection_minutes,
                f"replica lag alarm at {i.replica_lag_alarm_minutes} min + {i.replica_lag_detection_minutes} "
                "min to detect",
                ("dr.replicaLagAlarmMinutes",),
            )
        )
    if i.automated_backups_replicated:
        paths.append(
            RecoveryPath(
                "automated backups replicated to the DR region (point-in-time restore)",
                None,
                "RDS ships transaction logs every 5 min and copies them when ready: best effort, no SLA",
            )
        )
    if i.backup_interval_minutes is not None:
        paths.append(
            RecoveryPath(
                "AWS Backup copy in the DR vault",
                i.backup_interval_minutes + i.backup_start_window_minutes + i.backup_completion_window_minutes,
                f"a recovery point every {i.backup_interval_minutes // 60} h, within a "
                f"{i.backup_start_window_minutes} min start and {i.backup_completion_window_minutes} min "
                "completion window (plus the copy's transfer)",
            )
        )
    return StoreRpo("database", tuple(paths))


def _backups_bucket(i: RpoInputs) -> StoreRpo:
    if i.replication_time_control_minutes is None:
        return StoreRpo("backups bucket")
    return StoreRpo(
        "backups bucket",
        (
            RecoveryPath(
                "S3 replication to the DR bucket",
                i.replication_time_control_minutes + i.replication_detection_minutes,
                f"Replication Time Control {i.replication_time_control_minutes} min + "
                f"{i.replication_detection_minutes} min to detect a late object",
            ),
        ),
    )


def rpo_inputs(replica_lag_alarm_minutes: int | None, dr_region: str | None) -> RpoInputs:
    """The inputs as the program builds them: a standby has a replica watched at the given
    threshold; a DR region gets the bucket replicated (with RTC), the automated backups
    replicated and every recovery point copied."""
    has_dr_region = dr_region is not None
    return RpoInputs(
        replica_lag_alarm_minutes=replica_lag_alarm_minutes,
        automated_backups_replicated=has_dr_region,
        backup_interval_minutes=BACKUP_INTERVAL_MINUTES if has_dr_region else None,
        replication_time_control_minutes=REPLICATION_TIME_CONTROL_MINUTES if has_dr_region else None,
    )


def budget_problems(stores: tuple[StoreRpo, ...], budget_minutes: int) -> list[FieldError]:
    """One error per store outside `dr.rpoMinutes`, naming the setting that brings it back (or
    the budget, when no setting moves the bound)."""
    problems = []
    for store in stores:
        if store.excluded is not None:
            continue
        best = store.best
        if best is None:
            problems.append(
                FieldError(
                    "backups.drRegion",
                    f"the {store.store} has no copy outside aws.region with a bounded delay: its worst-case "
                    f"RPO is unbounded, over the budget dr.rpoMinutes {budget_minutes} min; set "
                    "backups.drRegion (components/config/rpo.py)",
                )
            )
            continue
        if best.minutes is None or best.minutes <= budget_minutes:
            continue
        found = f"the {store.store}'s worst-case RPO is {best.minutes} min ({best.name}: {best.how})"
        over = f"over the budget dr.rpoMinutes {budget_minutes} min"
        if best.keys:
            fix = f"lower {' or '.join(best.keys)}, or raise dr.rpoMinutes in a reviewed change"
            problems.append(FieldError(best.keys[0], f"{found}, {over}: {fix}"))
        else:
            fix = "no setting makes that copy faster: raise dr.rpoMinutes in a reviewed change"
            problems.append(FieldError("dr.rpoMinutes", f"{found}, {over}; {fix}"))
    return problems


def check_rpo_budget(replica_lag_alarm_minutes: int, rpo_minutes: int, dr_region: str | None) -> None:
    """For a `dr.role: primary` stack: every store within `dr.rpoMinutes`, or one error per store."""
    problems = budget_problems(worst_case_rpo(rpo_inputs(replica_lag_alarm_minutes, dr_region)), rpo_minutes)
    if problems:
        raise FieldErrors(problems)
