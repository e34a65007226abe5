"""The RPO by construction (components/config/rpo.py): the model's properties, every primary's
stack file within its budget, and a settings change that breaks the budget refused as every
config error is, naming the key path and the computed RPO against the budget."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import rpo
from components.config.parse import ConfigError, parse_stack_config
from components.config.rpo import RpoInputs, rpo_inputs, worst_case_rpo
from plexictl.offline import stack_config, stack_names
from tests.conftest import current_config, current_stack_file

MINUTES = st.integers(min_value=0, max_value=10_000)
OPTIONAL_MINUTES = st.none() | MINUTES
NUMERIC_FIELDS = [f.name for f in dataclasses.fields(RpoInputs) if f.name != "automated_backups_replicated"]

inputs = st.builds(
    RpoInputs,
    replica_lag_alarm_minutes=OPTIONAL_MINUTES,
    replica_lag_detection_minutes=MINUTES,
    automated_backups_replicated=st.booleans(),
    backup_interval_minutes=OPTIONAL_MINUTES,
    backup_start_window_minutes=MINUTES,
    backup_completion_window_minutes=MINUTES,
    replication_time_control_minutes=OPTIONAL_MINUTES,
    replication_detection_minutes=MINUTES,
)


def rpos(i: RpoInputs) -> dict[str, float]:
    """Each store's worst-case RPO, an unbounded one as infinity (excluded stores left out)."""
    return {s.store: float("inf") if s.minutes is None else s.minutes for s in worst_case_rpo(i) if s.excluded is None}


@given(inputs, st.sampled_from(NUMERIC_FIELDS), st.integers(min_value=1, max_value=1000))
def test_the_rpo_never_falls_when_a_delay_grows(base, name, more):
    """Monotonic in each setting: a longer alarm threshold, detection, interval or window never
    makes any store's worst case better."""
    value = getattr(base, name)
    grown = dataclasses.replace(base, **{name: None if value is None else value + more})
    before, after = rpos(base), rpos(grown)
    assert all(after[store] >= before[store] for store in before)


@given(
    inputs,
    st.sampled_from(["replica_lag_alarm_minutes", "backup_interval_minutes", "replication_time_control_minutes"]),
)
def test_losing_a_copy_never_helps(base, name):
    without = dataclasses.replace(base, **{name: None})
    before, after = rpos(base), rpos(without)
    assert all(after[store] >= before[store] for store in before)


@given(inputs)
def test_a_best_effort_copy_bounds_nothing(base):
    """Automated backups replication has no SLA: it is listed, never counted."""
    assert rpos(dataclasses.replace(base, automated_backups_replicated=True)) == rpos(
        dataclasses.replace(base, automated_backups_replicated=False)
    )


@given(st.integers(min_value=1, max_value=60), st.sampled_from([None, "us-west-2"]))
def test_the_database_bound_is_the_replica_threshold_plus_detection(threshold, dr_region):
    (database, bucket, cache) = worst_case_rpo(rpo_inputs(threshold, dr_region))
    assert database.minutes == threshold + rpo.REPLICA_LAG_DETECTION_MINUTES
    assert bucket.minutes == (
        None if dr_region is None else rpo.REPLICATION_TIME_CONTROL_MINUTES + rpo.REPLICATION_DETECTION_MINUTES
    )
    assert cache.excluded and "sessions" in cache.excluded


def test_without_a_standby_the_database_falls_back_to_the_daily_copies():
    (database, _, _) = worst_case_rpo(rpo_inputs(None, "us-west-2"))
    assert database.best is not None and database.best.name == "AWS Backup copy in the DR vault"
    assert database.minutes == 24 * 60 + rpo.BACKUP_START_WINDOW_MINUTES + rpo.BACKUP_COMPLETION_WINDOW_MINUTES


def test_every_primary_stays_within_its_budget():
    """`dr.role: primary` stack files, as they are: each store within dr.rpoMinutes (prod: 1 h)."""
    primaries = []
    for stack in stack_names():
        config, secret_keys = current_config(stack)
        settings = parse_stack_config(config, stack, secret_keys)
        if settings.dr is None or settings.dr.role != "primary":
            continue
        primaries.append(stack)
        assert settings.dr.rpo_minutes <= 60  # the runbook's promise
        for store in worst_case_rpo(rpo_inputs(settings.dr.replica_lag_alarm_minutes, settings.backups.dr_region)):
            assert store.excluded or (store.minutes is not None and store.minutes <= settings.dr.rpo_minutes), store
    assert primaries, "no stack file is a DR primary"


def _prod_with(**dr: object) -> tuple[dict[str, str], list[str]]:
    data = current_stack_file("prod")
    data["config"]["plexichat:dr"] = {**data["config"]["plexichat:dr"], **dr}
    return stack_config("prod", stack_file=data)


def _problems(config: dict[str, str], secret_keys: list[str]) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(config, "prod", secret_keys)
    return str(raised.value)


def test_a_lag_alarm_past_the_budget_is_a_config_error_naming_the_key_and_the_numbers():
    message = _problems(*_prod_with(replicaLagAlarmMinutes=58))
    (line,) = [line for line in message.splitlines() if "worst-case RPO" in line]
    assert line.strip().startswith("- plexichat:dr.replicaLagAlarmMinutes:")
    assert "63 min" in line and "dr.rpoMinutes 60 min" in line and "replica lag alarm at 58 min" in line


def test_a_budget_below_what_the_program_can_do_names_the_budget():
    message = _problems(*_prod_with(rpoMinutes=15))
    lines = [line.strip() for line in message.splitlines() if "worst-case RPO" in line]
    assert any(line.startswith("- plexichat:dr.replicaLagAlarmMinutes:") for line in lines)  # the database
    bucket = next(line for line in lines if "backups bucket" in line)
    assert bucket.startswith("- plexichat:dr.rpoMinutes:") and "raise dr.rpoMinutes" in bucket


def test_a_store_without_a_bounded_copy_is_over_any_budget():
    """A primary must have DR copies (the settings refuse one without backups.drRegion first);
    the model says the same on its own."""
    (problem,) = rpo.budget_problems(worst_case_rpo(rpo_inputs(15, None)), 60)
    assert problem.field == "backups.drRegion" and "backups bucket" in str(problem) and "unbounded" in str(problem)


def test_only_a_primary_is_held_to_the_budget():
    """A standby's lag alarm bounds its primary's RPO, which the primary's file states."""
    data = current_stack_file("prod-dr")
    assert data["config"]["plexichat:dr"]["role"] == "standby"
    data["config"]["plexichat:dr"]["replicaLagAlarmMinutes"] = 58
    config, secret_keys = stack_config("prod-dr", stack_file=data)
    assert parse_stack_config(config, "prod-dr", secret_keys).dr is not None


def test_the_rto_budget_in_the_docs_is_the_failover_checklists():
    """docs/dr.md "RTO" names each step of `plexictl dr failover`'s checklist with its budget, and
    the sum, under dr.rtoMinutes: the page and the command cannot disagree."""
    import re

    from plexictl.dr.failover import checklist
    from tests.test_docs import ROOT

    config, secret_keys = current_config("prod-dr")
    settings = parse_stack_config(config, "prod-dr", secret_keys)
    steps = checklist("prod-dr", settings)
    page = (ROOT / "docs" / "dr.md").read_text()
    rto = " ".join(page.split("### RTO", 1)[1].split())
    for step in steps:
        assert f"{step.name} {step.minutes} min" in rto, step.name
    total = sum(step.minutes for step in steps)
    assert total < settings.dr.rto_minutes
    assert re.search(rf"\b{total // 60} h {total % 60} min against the 4 h of `dr.rtoMinutes`", rto)
