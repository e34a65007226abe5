"""What every check returns, and how a run is reported: the outcome, the table, the summary."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError

from plexictl.capacity import InvalidQuantity
from plexictl.release.prometheus import PrometheusUnavailable


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "FAIL"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str


class CheckError(Exception):
    """A check could not look; the message says why, and the check fails."""


def judged(ok: bool, detail: str) -> Result:
    return Result(Outcome.PASS if ok else Outcome.FAIL, detail)


def guarded(check: Callable[[], Result]) -> Result:
    try:
        return check()
    except (CheckError, InvalidQuantity) as error:
        return Result(Outcome.FAIL, str(error))
    except PrometheusUnavailable as error:
        return Result(Outcome.FAIL, f"Prometheus did not answer: {error}")
    except (BotoCoreError, ClientError) as error:
        return Result(Outcome.FAIL, f"AWS: {error}")


def stopping(results: dict[str, Result], strict: bool) -> list[str]:
    """The checks that stop a deploy: the failed ones, and with `strict` the skipped ones too."""
    stop = {Outcome.FAIL, Outcome.SKIPPED} if strict else {Outcome.FAIL}
    return [name for name, result in results.items() if result.outcome in stop]


def table(results: dict[str, Result]) -> str:
    rows = [("check", "result", "detail"), *((name, r.outcome.value, r.detail) for name, r in results.items())]
    check_width, result_width = (max(len(row[column]) for row in rows) for column in (0, 1))
    return "\n".join(f"{c:<{check_width}}  {r:<{result_width}}  {d}" for c, r, d in rows)


def summary(stack: str, results: dict[str, Result], strict: bool) -> str:
    stop = stopping(results, strict)
    if stop:
        return f"{stack}: do not deploy now: {', '.join(stop)} did not pass"
    skipped = [name for name, result in results.items() if result.outcome is Outcome.SKIPPED]
    if skipped:
        return f"{stack}: ready to deploy, without {', '.join(skipped)} (skipped; --strict makes a skip stop a deploy)"
    return f"{stack}: ready to deploy: every check passed"


def readable_duration(delta: datetime.timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"
