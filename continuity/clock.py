"""The one source of time. Tests and drills move it; nothing else calls datetime.now()."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


class ScaledClock:
    """Time that runs `speed` times faster than the wall clock from `start` (drills)."""

    def __init__(self, start: datetime, speed: float) -> None:
        self._start = start
        self._t0 = time.monotonic()
        self._speed = speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)


def parse_clock_override(value: str) -> ManualClock:
    """`CONTINUITY_NOW=2026-11-23T10:00:00+00:00` pins the clock (drills, tests with real processes)."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return ManualClock(when)


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


__all__ = ["Clock", "SystemClock", "ManualClock", "ScaledClock", "parse_clock_override", "utc", "timedelta"]
