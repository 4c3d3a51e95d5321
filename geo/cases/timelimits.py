"""Time limits (时限): deadlines on a 24/7 clock or on a work calendar with holidays and make-up days.

Four clocks, one per `TimeLimitUnit`:

- ``urgent_hours``: elapsed hours, day and night, weekends and holidays included.
- ``natural_days``: N × 24 elapsed hours from the start.
- ``working_hours``: hours inside the calendar's working periods (08–12 and 14–18 by default) on
  working days; a start outside working time begins at the next working period.
- ``working_days``: N working days = N × (hours in one working day) working hours, counted from the
  start on the working-hours clock. A case dispatched at 10:00 with 1 working day is due at 10:00 on
  the next working day; dispatched on a Saturday it is due at 18:00 on Monday.

Every datetime must be timezone-aware (a naive one raises ValueError); any timezone may come in, and
results are returned in the calendar's timezone. Elapsed time is measured in UTC, so the answer is the
same instant whatever zone the input was given in. Working periods are wall-clock times in the
calendar's timezone (Asia/Shanghai has had no daylight saving since 1991).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from geo.store.models import TimeLimitUnit

__all__ = [
    "CHINA_CALENDAR_CSV",
    "TimeLimitUnit",
    "WorkCalendar",
    "deadline",
    "extend_deadline",
    "is_overdue",
    "resume_deadline",
]

# Official holidays and make-up days, from the State Council General Office notices; one file per span
# of years, updated yearly when the next notice is published (see the comment block in the file).
CHINA_CALENDAR_CSV = (
    Path(__file__).resolve().parent.parent.parent / "data" / "calendar" / "china-2025-2026.csv"
)

# How far to look for working time before declaring the calendar has none (ten years of days).
_HORIZON_DAYS = 3660
_WORKING_UNITS = (TimeLimitUnit.working_hours, TimeLimitUnit.working_days)


def _aware(value: datetime, name: str) -> datetime:
    """Return `value` unchanged, or raise ValueError if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _finite(value: float, name: str) -> float:
    """Return `value` as a float, or raise ValueError if it is NaN or infinite."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


@dataclass(frozen=True)
class WorkCalendar:
    """Working days and working periods in one timezone (工作日历)."""

    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")
    periods: tuple[tuple[time, time], ...] = ((time(8), time(12)), (time(14), time(18)))
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Monday is 0
    holidays: frozenset[date] = frozenset()  # days off (放假), weekend or not
    workdays: frozenset[date] = frozenset()  # weekend days that are worked (调休上班)
    # The last day whose holidays are known (the end of the last loaded year); None: no such limit.
    # Past it the calendar still counts, but as if there were no holidays: those deadlines are
    # provisional (`is_provisional`) until the year is loaded.
    ends: date | None = None

    def __post_init__(self) -> None:
        """Refuse periods that are empty, unordered or overlapping, and contradictory days."""
        if not self.periods:
            raise ValueError("a work calendar needs at least one working period")
        previous_end: time | None = None
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working periods are wall-clock times; give them without tzinfo")
            if not start < end:
                raise ValueError(f"working period {start}–{end} does not end after it starts")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"working period {start}–{end} overlaps or precedes the one before it")
            previous_end = end
        if not self.weekend <= set(range(7)):
            raise ValueError(f"weekend days are weekday numbers 0–6, got {sorted(self.weekend)}")
        if both := self.holidays & self.workdays:
            raise ValueError(f"days both off and worked: {sorted(both)}")
        # A make-up day on a weekday is almost always a typo in the data.
        if odd := sorted(d for d in self.workdays if d.weekday() not in self.weekend):
            raise ValueError(f"make-up working days must fall on the weekend: {odd}")

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day (8 with the default periods)."""
        day = date(2000, 1, 3)
        return sum(
            (datetime.combine(day, end) - datetime.combine(day, start)).total_seconds() / 3600
            for start, end in self.periods
        )

    def is_working_day(self, d: date) -> bool:
        """Whether `d` is worked: a make-up day, or a non-holiday weekday."""
        if d in self.workdays:
            return True
        return d.weekday() not in self.weekend and d not in self.holidays

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant `hours` working hours after `start` (before it when negative)."""
        _aware(start, "start")
        remaining = timedelta(hours=_finite(hours, "hours"))
        at = start.astimezone(UTC)
        if remaining >= timedelta(0):
            for begin, end in self._intervals_from(at):
                begin = max(begin, at)
                if remaining <= end - begin:
                    return (begin + remaining).astimezone(self.tz)
                remaining -= end - begin
        else:
            remaining = -remaining
            for begin, end in self._intervals_back_from(at):
                end = min(end, at)
                if remaining <= end - begin:
                    return (end - remaining).astimezone(self.tz)
                remaining -= end - begin
        raise ValueError(f"no working time within {_HORIZON_DAYS} days of {start.isoformat()}")

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """The instant `days` × hours_per_day working hours on: 10:00 + 1 → 10:00 next working day."""
        return self.add_working_hours(start, _finite(days, "days") * self.hours_per_day)

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from `start` to `end` (negative when `end` comes first)."""
        _aware(start, "start")
        _aware(end, "end")
        if end < start:
            return -self.working_hours_between(end, start)
        lo, hi = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        for begin, finish in self._intervals_from(lo):
            if begin >= hi:
                break
            total += min(finish, hi) - max(begin, lo)
        return total.total_seconds() / 3600

    def is_provisional(self, due: datetime, unit: TimeLimitUnit | str) -> bool:
        """Whether a deadline on this clock falls past the loaded days (counted without that year's
        holidays); a 24/7 or natural-day clock never is."""
        _aware(due, "due")
        return (
            TimeLimitUnit(unit) in _WORKING_UNITS
            and self.ends is not None
            and due.astimezone(self.tz).date() > self.ends
        )

    def with_days(self, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkCalendar:
        """A copy with more days off and make-up days; a day given here overrides its old kind."""
        holidays, workdays = frozenset(holidays), frozenset(workdays)
        return replace(
            self,
            holidays=(self.holidays - workdays) | holidays,
            workdays=(self.workdays - holidays) | workdays,
        )

    @classmethod
    def from_csv(cls, path: str | Path, years: Iterable[int] | None = None, **fields: Any) -> WorkCalendar:
        """A calendar from a CSV of `date,kind[,name]` rows, kind holiday or workday; '#' starts a comment."""
        rows = _read_days(Path(path))
        if years is not None:
            wanted = set(years)
            if missing := sorted(wanted - {d.year for d, _ in rows}):
                raise ValueError(f"{path} has no days for {missing}; add them from that year's notice")
            rows = [(d, kind) for d, kind in rows if d.year in wanted]
        if rows:  # the file's last year is where its holidays stop being known
            fields.setdefault("ends", date(max(d.year for d, _ in rows), 12, 31))
        return cls(**fields).with_days(
            holidays=[d for d, kind in rows if kind == "holiday"],
            workdays=[d for d, kind in rows if kind == "workday"],
        )

    @classmethod
    def china(cls, years: Iterable[int] = (2025, 2026)) -> WorkCalendar:
        """The mainland China calendar: Asia/Shanghai, 08–12 and 14–18, official holidays and 调休 days."""
        return cls.from_csv(CHINA_CALENDAR_CSV, years=years)

    def _day_intervals(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working periods of day `d` as UTC instants (none on a day off)."""
        if not self.is_working_day(d):
            return []
        return [
            (
                datetime.combine(d, start, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(d, end, tzinfo=self.tz).astimezone(UTC),
            )
            for start, end in self.periods
        ]

    def _intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after `at`, in time order, up to the horizon."""
        day = at.astimezone(self.tz).date()
        for offset in range(_HORIZON_DAYS):
            for begin, end in self._day_intervals(day + timedelta(days=offset)):
                if end > at:
                    yield begin, end

    def _intervals_back_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that begin before `at`, latest first, back to the horizon."""
        day = at.astimezone(self.tz).date()
        for offset in range(_HORIZON_DAYS):
            for begin, end in reversed(self._day_intervals(day - timedelta(days=offset))):
                if begin < at:
                    yield begin, end


def _read_days(path: Path) -> list[tuple[date, str]]:
    """The (date, kind) rows of a calendar CSV, refusing unknown kinds and bad dates with the line number."""
    with path.open(encoding="utf-8", newline="") as f:
        lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.startswith("#")]
    reader = csv.DictReader(line for _, line in lines)
    if reader.fieldnames is None or not {"date", "kind"} <= set(reader.fieldnames):
        raise ValueError(f"{path}: the header must name at least the columns date,kind")
    rows = []
    for (number, _), row in zip(lines[1:], reader, strict=True):
        kind = (row["kind"] or "").strip()
        if kind not in ("holiday", "workday"):
            raise ValueError(f"{path}:{number}: kind must be holiday or workday, got {kind!r}")
        try:
            day = date.fromisoformat((row["date"] or "").strip())
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
        rows.append((day, kind))
    return rows


def deadline(start: datetime, limit: float, unit: TimeLimitUnit | str, calendar: WorkCalendar) -> datetime:
    """When a case started at `start` with time limit `limit` in `unit` is due (办结时限)."""
    _aware(start, "start")
    unit = TimeLimitUnit(unit)
    limit = _finite(limit, "limit")
    if limit < 0:
        raise ValueError(f"a time limit cannot be negative, got {limit}")
    if unit is TimeLimitUnit.working_hours:
        return calendar.add_working_hours(start, limit)
    if unit is TimeLimitUnit.working_days:
        return calendar.add_working_days(start, limit)
    hours = limit if unit is TimeLimitUnit.urgent_hours else limit * 24
    return (start.astimezone(UTC) + timedelta(hours=hours)).astimezone(calendar.tz)


def extend_deadline(
    due: datetime, limit: float, unit: TimeLimitUnit | str, calendar: WorkCalendar
) -> datetime:
    """The due time after one extension (延期): one original limit more, from `due`, on the same clock."""
    return deadline(due, limit, unit, calendar)


def resume_deadline(
    due: datetime,
    parked_at: datetime,
    resumed_at: datetime,
    unit: TimeLimitUnit | str,
    calendar: WorkCalendar,
) -> datetime:
    """The due time after parking (挂账): the time left at `parked_at` is re-applied from `resumed_at`."""
    for value, name in ((due, "due"), (parked_at, "parked_at"), (resumed_at, "resumed_at")):
        _aware(value, name)
    if resumed_at < parked_at:
        raise ValueError("a case cannot resume before it was parked")
    # A case parked when already overdue keeps its overdue amount: the remaining time is negative and
    # is counted back from resumed_at, so parking neither forgives nor adds lateness.
    if TimeLimitUnit(unit) in _WORKING_UNITS:
        left = calendar.working_hours_between(parked_at, due)
        return calendar.add_working_hours(resumed_at, left)
    left_wall = due.astimezone(UTC) - parked_at.astimezone(UTC)
    return (resumed_at.astimezone(UTC) + left_wall).astimezone(calendar.tz)


def is_overdue(due: datetime | None, now: datetime, parked: bool) -> bool:
    """Whether a case is past due (超期) at `now`; never while parked or undated; `now == due` is on time."""
    _aware(now, "now")
    if parked or due is None:
        return False
    return now > _aware(due, "due")
