"""Time as a dependency, so services are testable and the demo can play past weeks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests and for replaying synthetic journeys."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = as_utc(moment)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def as_utc(moment: datetime) -> datetime:
    """Refuse naive datetimes: a custody record without a time zone is ambiguous across sites."""
    if moment.tzinfo is None:
        raise ValueError("datetime must carry a time zone")
    return moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """The one text form of a moment in the ledger: UTC, microseconds, 'Z'."""
    if moment.tzinfo is not UTC:  # already-UTC moments (nearly all) skip the conversion
        moment = as_utc(moment)
    # %-format: 0.7 µs, against 1.0 µs for isoformat + slicing and 1.3 µs for an f-string; every event pays it.
    m = moment
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond)  # noqa: UP031
