"""The stored work calendar (工作日历): loading a year's holidays, how far it reaches, and the
deadlines counted past its end.

Official holidays and make-up days are known one year at a time, from the State Council General
Office's notice (usually published in November or December for the next year). The calendar in the
database (`work_calendar_year`, `work_calendar_day`) ends on 31 December of the last loaded year;
a deadline on a working clock that falls past that day is counted as if that year had no holidays,
so it is stored as provisional (`cases.deadline_provisional`) and recomputed when the year is
loaded (`gridcase calendar import FILE`). From `WARN_DAYS` before the end, the health check, the big
screen and the duty chief's desk say so.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import delete, extract, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from geo.cases.timelimits import WorkCalendar
from geo.cases.workflow import ENDED
from geo.errors import InvalidImport
from geo.store.models import Case, WorkCalendarDay, WorkCalendarYear

WARN_DAYS = 60  # how long before the calendar ends the screens start to say so
KINDS = ("holiday", "workday")
WEEKDAYS_ZH = "一二三四五六日"


@dataclass(frozen=True)
class CalendarFinding:
    """A bad row of a calendar file: its line, the field, and why."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass(frozen=True)
class CalendarDay:
    """One row of a calendar file."""

    day: date
    kind: str
    name: str
    line: int


def read_calendar_file(path: Path) -> tuple[list[CalendarDay], list[CalendarFinding]]:
    """The rows of a `date,kind[,name]` CSV ('#' lines are comments), and every bad one by line and field."""
    with Path(path).open(encoding="utf-8-sig", newline="") as f:
        numbered = [
            (n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.startswith("#")
        ]
    if not numbered:
        return [], [
            CalendarFinding(1, "file", "no rows: expected a header date,kind,name and one row per day")
        ]
    reader = csv.DictReader(line for _, line in numbered)
    header = [h.strip() for h in reader.fieldnames or []]
    if missing := [c for c in ("date", "kind") if c not in header]:
        return [], [CalendarFinding(numbered[0][0], "header", f"the header must name the columns {missing}")]
    reader.fieldnames = header
    rows: list[CalendarDay] = []
    findings: list[CalendarFinding] = []
    seen: dict[date, int] = {}
    for (line, _), raw in zip(numbered[1:], reader, strict=True):
        day, bad = _row(line, raw, seen)
        findings += bad
        if day is not None:
            seen[day.day] = line
            rows.append(day)
    for year, kinds in sorted(_kinds_by_year(rows).items()):
        if not kinds["holiday"]:
            first = min(r.line for r in rows if r.day.year == year)
            findings.append(
                CalendarFinding(
                    first, "date", f"year {year} has no holiday: a year is loaded whole, from its notice"
                )
            )
    return rows, findings


def _row(line: int, raw: dict, seen: dict[date, int]) -> tuple[CalendarDay | None, list[CalendarFinding]]:
    """One row checked: (the day, or None when it cannot be read; what is wrong with it)."""
    findings = []
    text = (raw.get("date") or "").strip()
    try:
        day: date | None = date.fromisoformat(text)
    except ValueError:
        findings.append(CalendarFinding(line, "date", f"{text!r} is not a date like 2027-01-01"))
        day = None
    kind = (raw.get("kind") or "").strip()
    if kind not in KINDS:
        findings.append(CalendarFinding(line, "kind", f"{kind!r} must be holiday (a day off) or workday"))
    name = (raw.get("name") or "").strip()
    if len(name) > 200:
        findings.append(CalendarFinding(line, "name", "longer than 200 characters"))
    if day is not None:
        if day in seen:
            findings.append(CalendarFinding(line, "date", f"{day} is already on line {seen[day]}"))
        if kind == "workday" and day.weekday() < 5:
            findings.append(
                CalendarFinding(
                    line,
                    "kind",
                    f"{day} is a weekday (星期{WEEKDAYS_ZH[day.weekday()]}); a make-up working day "
                    "(调休上班) is a Saturday or Sunday",
                )
            )
    if findings or day is None:
        return None, findings
    return CalendarDay(day, kind, name, line), []


def _kinds_by_year(rows: list[CalendarDay]) -> dict[int, Counter[str]]:
    years: dict[int, Counter[str]] = {}
    for r in rows:
        years.setdefault(r.day.year, Counter())[r.kind] += 1
    return years


# -- the stored calendar ------------------------------------------------------------------------
def loaded_years(session: Session) -> list[int]:
    """The years whose holidays are loaded, in order."""
    return list(session.scalars(select(WorkCalendarYear.year).order_by(WorkCalendarYear.year)))


def calendar_end(years: list[int]) -> date | None:
    """The last day the loaded years cover without a gap from the first one (None: nothing loaded)."""
    if not years:
        return None
    last = years[0]
    for year in years[1:]:
        if year != last + 1:
            break
        last = year
    return date(last, 12, 31)


def stored_calendar(session: Session, base: WorkCalendar | None = None) -> WorkCalendar:
    """The work calendar in the database, ending where the loaded years end."""
    base = base or WorkCalendar()
    days = session.execute(select(WorkCalendarDay.day, WorkCalendarDay.kind)).all()
    return WorkCalendar(
        tz=base.tz,
        periods=base.periods,
        weekend=base.weekend,
        holidays=frozenset(d for d, kind in days if kind == "holiday"),
        workdays=frozenset(d for d, kind in days if kind == "workday"),
        ends=calendar_end(loaded_years(session)),
    )


@dataclass(frozen=True)
class CalendarStatus:
    """How far the loaded calendar reaches, seen from one day, and whether to warn about it."""

    ends: date | None
    today: date
    warn_days: int = WARN_DAYS

    @property
    def days_left(self) -> int | None:
        """Days from today to the calendar's last day (negative once past it)."""
        return None if self.ends is None else (self.ends - self.today).days

    @property
    def warning(self) -> bool:
        """Whether the screens should say the calendar is ending (or has ended, or is missing)."""
        return self.days_left is None or self.days_left <= self.warn_days

    @property
    def next_year(self) -> int:
        """The year to load next."""
        return (self.ends.year + 1) if self.ends else self.today.year


def calendar_status(calendar: WorkCalendar, now: datetime | None = None) -> CalendarStatus:
    """The status of a calendar on the China-time day of `now`."""
    now = now or datetime.now(UTC)
    return CalendarStatus(calendar.ends, now.astimezone(calendar.tz).date())


# -- loading a year -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recomputed:
    """A provisional deadline counted again on the loaded calendar."""

    tracking_code: str
    before: datetime
    after: datetime
    still_provisional: bool


@dataclass
class CalendarImport:
    """What `gridcase calendar import` loaded, and what it changed."""

    source: str
    years: dict[int, Counter[str]]
    replaced: list[int]
    ends_before: date | None
    ends_after: date | None
    recomputed: list[Recomputed] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one line each, for the console and the admin log."""
        out = []
        for year, kinds in sorted(self.years.items()):
            again = " (replaces the loaded year)" if year in self.replaced else ""
            out.append(f"{year}: {kinds['holiday']} holidays, {kinds['workday']} make-up working days{again}")
        out.append(f"calendar ends {self.ends_before or 'nowhere'} → {self.ends_after or 'nowhere'}")
        out.append(f"provisional deadlines recomputed: {len(self.recomputed)}")
        for r in self.recomputed:
            flag = " (still provisional)" if r.still_provisional else ""
            before, after = r.before.astimezone(UTC), r.after.astimezone(UTC)
            out.append(f"  {r.tracking_code}: {before:%Y-%m-%d %H:%M} → {after:%Y-%m-%d %H:%M} UTC{flag}")
        return out


def import_calendar(
    session: Session, path: Path, *, source: str | None = None, loaded_by: str | None = None
) -> CalendarImport:
    """Load the years of a calendar file (each replacing what was loaded for it) and recompute the
    provisional deadlines; a file with any bad row writes nothing and names every bad row."""
    path = Path(path)
    rows, findings = read_calendar_file(path)
    if findings:
        raise InvalidImport(
            f"calendar file {path.name} has errors; nothing was written\n" + "\n".join(map(str, findings)),
            field="file",
        )
    before = stored_calendar(session)
    years = _kinds_by_year(rows)
    replaced = [y for y in loaded_years(session) if y in years]
    session.execute(delete(WorkCalendarDay).where(extract("year", WorkCalendarDay.day).in_(list(years))))
    session.add_all(WorkCalendarDay(day=r.day, kind=r.kind, name=r.name) for r in rows)
    stmt = pg_insert(WorkCalendarYear).values(
        [{"year": y, "source": source or path.name, "loaded_by": loaded_by} for y in years]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[WorkCalendarYear.year],
            set_={
                "source": stmt.excluded.source,
                "loaded_by": stmt.excluded.loaded_by,
                "loaded_at": datetime.now(UTC),
            },
        )
    )
    session.flush()
    after = stored_calendar(session)
    from geo.importing import bump_reference_version  # importing reads areas; keep this module light

    bump_reference_version(session, "calendar")
    result = CalendarImport(source or path.name, years, replaced, before.ends, after.ends)
    result.recomputed = recompute_provisional(session, before, after)
    return result


def recompute_provisional(session: Session, old: WorkCalendar, new: WorkCalendar) -> list[Recomputed]:
    """Count the provisional deadlines of open cases again on `new`.

    What a case had used of its limit up to the old calendar's end stays as it was; the working
    hours it had left from there (or from its dispatch, if later) are counted again on the new
    calendar, so extensions and parking already folded into the deadline are kept.
    """
    cases = session.scalars(
        select(Case)
        .where(
            Case.deadline_provisional,
            Case.deadline_at.is_not(None),
            Case.state.not_in([s.value for s in ENDED]),
        )
        .order_by(Case.id)
    ).all()
    if old.ends is None:
        return []
    old_end = datetime.combine(old.ends + timedelta(days=1), time(0), tzinfo=old.tz)
    changed = []
    for case in cases:
        due = case.deadline_at
        unit = case.time_limit_unit
        if due is None or unit is None:
            continue
        anchor = max(old_end, case.dispatched_at or old_end)
        left = old.working_hours_between(anchor, due)
        after = new.add_working_hours(anchor, left) if left > 0 else due
        provisional = new.is_provisional(after, unit)
        if after != due or provisional != case.deadline_provisional:
            changed.append(Recomputed(case.tracking_code, due, after, provisional))
        case.deadline_at = after
        case.deadline_provisional = provisional
    session.flush()
    return changed
