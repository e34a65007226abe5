"""Deployment-window arithmetic: whether an instant is inside a stack's windows, and when that
next changes. Pure (no Pulumi, no clock): every function takes the instant it is asked about.

A window is defined on the wall clock of its time zone: an instant is inside it when, converted
to that zone, its weekday is one of the window's days and its time of day is in [start, end).
So daylight saving time behaves as a wall clock does:
- a window hour that does not exist (the spring-forward gap) is never open: a window 02:00-03:00
  in America/New_York is closed all of that Sunday, and 01:00-04:00 lasts two hours;
- a window hour that happens twice (fall back) is open both times: 01:00-02:00 lasts two hours.

No windows means always open. Several windows (in any time zones) are open when any one is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from components.config.deploy_windows import DeployWindow

HORIZON = timedelta(days=15)
"""How far ahead `next_change` looks: two weeks and a day cover any weekly window, also in a week
whose only opening falls into a DST gap."""
_ONE_HOUR = timedelta(hours=1)


def is_open(windows: Sequence[DeployWindow], instant: datetime) -> bool:
    """Whether `instant` (timezone-aware) is inside any of the windows; True without windows."""
    return not windows or any(_inside(window, instant) for window in windows)


def next_change(windows: Sequence[DeployWindow], instant: datetime) -> datetime | None:
    """The first instant after `instant` at which `is_open` changes (in UTC), or None when it does
    not change within HORIZON (no windows, or windows that cover every minute)."""
    if not windows:
        return None
    now_open = is_open(windows, instant)
    for candidate in sorted({c for window in windows for c in _candidates(window, instant) if c > instant}):
        if is_open(windows, candidate) != now_open:
            return candidate
    return None


def window_end(windows: Sequence[DeployWindow], instant: datetime) -> datetime | None:
    """When the window `instant` is in closes; None if it never does (within HORIZON) or if
    `instant` is outside every window."""
    return next_change(windows, instant) if is_open(windows, instant) else None


def next_opening(windows: Sequence[DeployWindow], instant: datetime) -> datetime | None:
    """When a window next opens after `instant`, which is outside every window; None if `instant`
    is inside one (or no window opens within HORIZON)."""
    return None if is_open(windows, instant) else next_change(windows, instant)


def open_seconds(windows: Sequence[DeployWindow], start: datetime, end: datetime) -> float:
    """How many seconds of [start, end) lie inside the windows (all of them without windows)."""
    total, at = 0.0, start
    while at < end:
        change = next_change(windows, at) or at + HORIZON
        until = min(change, end)
        if is_open(windows, at):
            total += (until - at).total_seconds()
        at = until
    return total


def describe(windows: Sequence[DeployWindow]) -> str:
    """`mon-thu 09:00-16:00 America/New_York`, several joined with `; `; `always open` without."""
    return "; ".join(window.describe() for window in windows) or "always open"


def _inside(window: DeployWindow, instant: datetime) -> bool:
    local = instant.astimezone(window.zone)
    minute = local.hour * 60 + local.minute
    return local.weekday() in window.weekdays and window.start_minute <= minute < window.end_minute


def _candidates(window: DeployWindow, instant: datetime) -> set[datetime]:
    """Every instant within HORIZON after `instant` at which `_inside(window, ...)` may change:
    each opening and closing wall time (both readings of a repeated one) and each UTC offset
    change of the zone (where a wall time in a gap, or a repeated hour, begins). Between two
    candidates the window's state is constant."""
    zone = window.zone
    first = instant.astimezone(zone).date() - timedelta(days=1)
    found = _offset_changes(zone, instant, instant + HORIZON)
    for offset in range(HORIZON.days + 2):
        day = first + timedelta(days=offset)
        for minute in (window.start_minute, window.end_minute):
            found.update(_wall_time_instants(zone, day, minute))
    return found


def _wall_time_instants(zone: ZoneInfo, day: date, minute: int) -> set[datetime]:
    """The UTC instants a local wall time (minute 1440: the next day's 00:00) reads as."""
    day += timedelta(days=minute // 1440)
    wall = datetime.combine(day, time(minute % 1440 // 60, minute % 60))
    return {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> set[datetime]:
    """The instants in (start, end] at which the zone's UTC offset changes, to the second (zones
    change offset at most once an hour, at whole seconds)."""
    changes = set()
    at = start.astimezone(UTC).replace(microsecond=0)
    while at < end:
        later = at + _ONE_HOUR
        if _offset_at(zone, at) != _offset_at(zone, later):
            changes.add(_bisect_offset_change(zone, at, later))
        at = later
    return changes


def _offset_at(zone: ZoneInfo, at: datetime) -> timedelta | None:
    return at.astimezone(zone).utcoffset()


def _bisect_offset_change(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first whole second in (before, after] with `after`'s offset; `before` has another."""
    low, high = before, after
    target = _offset_at(zone, after)
    while (high - low).total_seconds() > 1:
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if _offset_at(zone, middle) == target:
            high = middle
        else:
            low = middle
    return high
