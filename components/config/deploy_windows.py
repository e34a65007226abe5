"""Deployment windows: when a stack may be deployed without an emergency override
(docs/releasing.md "Deployment windows"). The arithmetic is in components/release/deploy_windows.py."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from components.config.base import Model

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[str, ...] = get_args(Day)
"""In `datetime.weekday()` order: Monday is 0."""

_HOURS = re.compile(r"^(?P<start>([01]\d|2[0-3]):[0-5]\d)-(?P<end>([01]\d|2[0-3]):[0-5]\d|24:00)$")
HOURS_FORM = (
    "HH:MM-HH:MM in the window's local time, 24-hour, the end after the start, such as 09:00-16:00 "
    "(24:00 ends at midnight; a window across midnight is two windows, one on each day)"
)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _check_hours(value: str) -> str:
    matched = _HOURS.match(value)
    if matched is None or _minutes(matched["end"]) <= _minutes(matched["start"]):
        raise ValueError(f"must be {HOURS_FORM}")
    return value


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            "must be an IANA time zone name such as America/New_York, Europe/Berlin or UTC "
            "(the tz database's Area/Location names, not an abbreviation such as PST or an offset such as +05:00)"
        ) from None
    return value


Hours = Annotated[str, AfterValidator(_check_hours)]
TimeZone = Annotated[str, AfterValidator(_check_time_zone)]


class DeployWindow(Model):
    """One recurring window: on these days, between these local times, in this time zone."""

    days: Annotated[list[Day], Field(min_length=1)]
    """Days of the week the window opens, in the window's time zone: mon, tue, wed, thu, fri, sat,
    sun (at least one). Required."""
    hours: Hours
    """Local opening and closing time, `HH:MM-HH:MM` (24-hour; the end after the start, `24:00`
    for midnight): open from the first minute up to, not including, the second. Required. Wall
    clock time: a window on a day that skips an hour for daylight saving time is shorter, and
    one over a repeated hour is open during both."""
    time_zone: TimeZone
    """IANA time zone the days and hours are in, e.g. America/New_York. Required."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def weekdays(self) -> frozenset[int]:
        """The days as `datetime.weekday()` numbers."""
        return frozenset(DAYS.index(day) for day in self.days)

    @property
    def start_minute(self) -> int:
        """Minutes after local midnight the window opens."""
        return _minutes(self.hours.partition("-")[0])

    @property
    def end_minute(self) -> int:
        """Minutes after local midnight the window closes (1440: midnight)."""
        return _minutes(self.hours.partition("-")[2])

    def describe(self) -> str:
        """`mon-thu 09:00-16:00 America/New_York`."""
        numbers = sorted(self.weekdays)
        consecutive = len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1))
        days = f"{DAYS[numbers[0]]}-{DAYS[numbers[-1]]}" if consecutive else ",".join(DAYS[n] for n in numbers)
        return f"{days} {self.hours} {self.time_zone}"
