"""Time limits: every expectation below is computed by hand from DOMAIN.md and the 2025–2026 notices."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from geo.cases.timelimits import (
    CHINA_CALENDAR_CSV,
    TimeLimitUnit,
    WorkCalendar,
    deadline,
    extend_deadline,
    is_overdue,
    resume_deadline,
)
from geo.store import models

CST = ZoneInfo("Asia/Shanghai")
U = TimeLimitUnit
# An ordinary week with no holidays: Fri 2026-03-06, Sat 03-07, Sun 03-08, Mon 03-09, Tue 03-10.
FRI, SAT, SUN, MON, TUE = (date(2026, 3, d) for d in (6, 7, 8, 9, 10))


def at(d: date, hour: int, minute: int = 0) -> datetime:
    """Wall-clock time in Chibi (Asia/Shanghai)."""
    return datetime.combine(d, time(hour, minute), tzinfo=CST)


@pytest.fixture(scope="module")
def china() -> WorkCalendar:
    """The official calendar, loaded from the shipped CSV."""
    return WorkCalendar.china()


def test_unit_is_the_store_enum() -> None:
    """The unit is the one the category table stores, not a copy."""
    assert TimeLimitUnit is models.TimeLimitUnit


# --- the DOMAIN.md examples -------------------------------------------------------------------------


def test_missing_manhole_cover_urgent_hours_run_through_the_night(china: WorkCalendar) -> None:
    """2 urgent hours from Saturday 23:30 → Sunday 01:30: the 24/7 clock ignores weekend and night."""
    assert deadline(at(SAT, 23, 30), 2, U.urgent_hours, china) == at(SUN, 1, 30)


def test_exposed_garbage_skips_the_lunch_break(china: WorkCalendar) -> None:
    """4 working hours from Monday 08:33: 08:33–12:00 is 3 h 27 min, 33 min left from 14:00 → 14:33."""
    assert deadline(at(MON, 8, 33), 4, U.working_hours, china) == at(MON, 14, 33)


def test_working_hours_carry_over_the_weekend(china: WorkCalendar) -> None:
    """4 working hours from Friday 17:00: 17–18 is 1 h, then Monday 08:00 + 3 h → Monday 11:00."""
    assert deadline(at(FRI, 17), 4, U.working_hours, china) == at(MON, 11)


def test_start_outside_working_time_begins_at_the_next_period(china: WorkCalendar) -> None:
    """4 working hours from Saturday 11:00 start Monday 08:00 and end with the morning at 12:00."""
    assert deadline(at(SAT, 11), 4, U.working_hours, china) == at(MON, 12)
    # In the lunch break: the clock starts at 14:00, so 1 h → 15:00.
    assert deadline(at(MON, 12, 30), 1, U.working_hours, china) == at(MON, 15)
    # After hours: Monday 19:00 + 1 h → Tuesday 09:00.
    assert deadline(at(MON, 19), 1, U.working_hours, china) == at(TUE, 9)


# --- holidays and make-up days -------------------------------------------------------------------------


def test_national_day_2026_holiday_and_make_up_saturday(china: WorkCalendar) -> None:
    """National Day 2026 is off 10/1–10/7; Saturday 10/10 and Sunday 9/20 are worked."""
    # Wed 9/30 17:00 + 4 h: 17–18 is 1 h; 10/1–10/7 off; Thu 10/8 08:00 + 3 h → 11:00.
    assert deadline(at(date(2026, 9, 30), 17), 4, U.working_hours, china) == at(date(2026, 10, 8), 11)
    # Fri 10/9 17:00 + 4 h: 1 h on Friday, then the make-up Saturday 10/10 08:00 + 3 h → 11:00.
    assert deadline(at(date(2026, 10, 9), 17), 4, U.working_hours, china) == at(date(2026, 10, 10), 11)
    # Fri 9/18 17:00 + 4 h: Saturday 9/19 is off, the make-up Sunday 9/20 is worked → 9/20 11:00.
    assert deadline(at(date(2026, 9, 18), 17), 4, U.working_hours, china) == at(date(2026, 9, 20), 11)
    # Without the holiday data the same case would be due on Thursday 10/1 at 11:00.
    assert deadline(at(date(2026, 9, 30), 17), 4, U.working_hours, WorkCalendar()) == at(
        date(2026, 10, 1), 11
    )


def test_new_year_2026_crosses_the_year_boundary(china: WorkCalendar) -> None:
    """Wed 2025-12-31 17:00 + 4 h: 1 h, then 1/1–1/3 off, make-up Sunday 1/4 08:00 + 3 h → 11:00."""
    assert deadline(at(date(2025, 12, 31), 17), 4, U.working_hours, china) == at(date(2026, 1, 4), 11)


def test_working_days_across_spring_festival_2026(china: WorkCalendar) -> None:
    """Spring Festival 2026 is off 2/15–2/23 with make-up Saturdays 2/14 and 2/28."""
    assert china.is_working_day(date(2026, 2, 14))  # make-up Saturday
    assert not china.is_working_day(date(2026, 2, 15))
    assert not china.is_working_day(date(2026, 2, 23))  # a Monday inside the break
    assert china.is_working_day(date(2026, 2, 24))
    assert china.is_working_day(date(2026, 2, 28))  # make-up Saturday
    assert not china.is_working_day(date(2026, 3, 1))  # an ordinary Sunday
    start = at(date(2026, 2, 13), 10)  # Friday before the break
    # Day 1 ends Sat 2/14 10:00; day 2 jumps the break to Tue 2/24 10:00; day 3 ends Wed 2/25 10:00.
    assert deadline(start, 1, U.working_days, china) == at(date(2026, 2, 14), 10)
    assert deadline(start, 3, U.working_days, china) == at(date(2026, 2, 25), 10)


def test_a_working_day_is_one_day_of_working_hours(china: WorkCalendar) -> None:
    """N working days = N × 8 working hours counted from the start."""
    assert china.hours_per_day == 8
    # Monday 10:00 + 1 day: 10–12 (2) + 14–18 (4) + Tue 08–10 (2) → Tuesday 10:00.
    assert deadline(at(MON, 10), 1, U.working_days, china) == at(TUE, 10)
    # Monday 13:00 + 1 day: 14–18 (4) + Tue 08–12 (4) → Tuesday 12:00.
    assert deadline(at(MON, 13), 1, U.working_days, china) == at(TUE, 12)
    # Saturday + 1 day: the whole of Monday → Monday 18:00.
    assert deadline(at(SAT, 11), 1, U.working_days, china) == at(MON, 18)
    # Half a day is 4 working hours: Monday 10:00 → 10–12 + 14–16 → 16:00.
    assert deadline(at(MON, 10), 0.5, "working_days", china) == at(MON, 16)


def test_natural_days_are_24_hour_days_whatever_the_calendar(china: WorkCalendar) -> None:
    """Natural days count weekends and holidays alike."""
    assert deadline(at(FRI, 10), 3, U.natural_days, china) == at(MON, 10)
    assert deadline(at(date(2026, 9, 30), 10), 7, U.natural_days, china) == at(date(2026, 10, 7), 10)
    assert deadline(at(FRI, 10), 1.5, U.natural_days, china) == at(SAT, 22)


# --- extension, parking, overdue ----------------------------------------------------------------------


def test_extension_adds_exactly_one_original_limit(china: WorkCalendar) -> None:
    """Each extension (延期) adds one original limit from the current due time, on the same clock."""
    due = deadline(at(MON, 8, 33), 4, U.working_hours, china)  # Monday 14:33
    # +4 h from 14:33: 14:33–18:00 is 3 h 27 min, 33 min on Tuesday → 08:33.
    once = extend_deadline(due, 4, U.working_hours, china)
    assert once == at(TUE, 8, 33)
    # +4 h from Tue 08:33: 3 h 27 min to 12:00, 33 min from 14:00 → 14:33.
    twice = extend_deadline(once, 4, U.working_hours, china)
    assert twice == at(TUE, 14, 33)
    # Two extensions are the same as a limit of three times the original.
    assert twice == deadline(at(MON, 8, 33), 12, U.working_hours, china)
    # Urgent hours: 01:30 → 03:30 → 05:30.
    urgent = deadline(at(SAT, 23, 30), 2, U.urgent_hours, china)
    assert extend_deadline(extend_deadline(urgent, 2, "urgent_hours", china), 2, "urgent_hours", china) == at(
        SUN, 5, 30
    )


def test_parking_stops_the_working_clock(china: WorkCalendar) -> None:
    """Due Friday 15:00, parked Friday 10:00 with 3 h left (10–12, 14–15), resumed Monday 10:00 → 15:00."""
    due = at(FRI, 15)
    assert china.working_hours_between(at(FRI, 10), due) == 3
    # Monday 10–12 uses 2 h, the last hour runs 14:00–15:00.
    assert resume_deadline(due, at(FRI, 10), at(MON, 10), U.working_hours, china) == at(MON, 15)


def test_parking_outside_working_time_keeps_the_working_hours_left(china: WorkCalendar) -> None:
    """Due Monday 10:00, parked Friday 19:00 (2 h left: Mon 08–10), resumed Tuesday 15:00 → 17:00."""
    assert resume_deadline(at(MON, 10), at(FRI, 19), at(TUE, 15), U.working_days, china) == at(TUE, 17)


def test_parking_stops_the_urgent_clock(china: WorkCalendar) -> None:
    """Due Sunday 01:30, parked Sunday 00:30 (1 h left), resumed Monday 09:00 → Monday 10:00."""
    assert resume_deadline(at(SUN, 1, 30), at(SUN, 0, 30), at(MON, 9), U.urgent_hours, china) == at(MON, 10)
    # Natural days: 2 days left at parking, resumed Tuesday 08:00 → Thursday 08:00.
    thu = date(2026, 3, 12)
    assert resume_deadline(at(SUN, 10), at(FRI, 10), at(TUE, 8), U.natural_days, china) == at(thu, 8)


def test_parking_an_overdue_case_keeps_it_overdue_by_as_much(china: WorkCalendar) -> None:
    """Due Fri 15:00, parked 16:00 (1 h late), resumed Mon 10:00 → due Mon 09:00, still 1 h late."""
    due = resume_deadline(at(FRI, 15), at(FRI, 16), at(MON, 10), U.working_hours, china)
    assert due == at(MON, 9)
    assert china.working_hours_between(due, at(MON, 10)) == 1
    with pytest.raises(ValueError, match="resume before"):
        resume_deadline(at(FRI, 15), at(MON, 10), at(FRI, 16), U.working_hours, china)


def test_is_overdue() -> None:
    """Past due strictly after the due time, never while parked, never without a due time."""
    due = at(MON, 14, 33)
    assert is_overdue(due, due + timedelta(minutes=1), parked=False)
    assert not is_overdue(due, due, parked=False)  # closing at the due minute is on time
    assert not is_overdue(due, due + timedelta(days=30), parked=True)
    assert not is_overdue(None, due, parked=False)


# --- clock properties -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hours", [0.25, 1, 3.45, 4, 8, 17.25, 40, 123.5])
def test_working_hours_between_round_trips_add_working_hours(china: WorkCalendar, hours: float) -> None:
    """Adding h working hours and measuring back gives h, for starts every 50 min over 3 weeks round 10/1."""
    start = at(date(2026, 9, 26), 0, 10)
    for step in range(21 * 24 * 60 // 50):
        t = start + timedelta(minutes=50 * step)
        end = china.add_working_hours(t, hours)
        assert china.working_hours_between(t, end) == pytest.approx(hours, abs=1e-9)
        assert china.working_hours_between(end, t) == pytest.approx(-hours, abs=1e-9)
        if _in_working_time(china, t):
            # Counting back from the end lands on the start when the start is in working time.
            assert china.add_working_hours(end, -hours) == t


def _in_working_time(calendar: WorkCalendar, t: datetime) -> bool:
    """Whether `t` falls inside a working period, ends excluded."""
    local = t.astimezone(calendar.tz)
    return calendar.is_working_day(local.date()) and any(s < local.time() < e for s, e in calendar.periods)


def test_utc_inputs_give_the_same_instants(china: WorkCalendar) -> None:
    """The calendar works on Chibi's wall clock whatever zone the input is in; results come back in CST."""
    cases = [
        (at(MON, 8, 33), 4, U.working_hours, at(MON, 14, 33)),
        (at(FRI, 17), 4, U.working_hours, at(MON, 11)),
        (at(SAT, 23, 30), 2, U.urgent_hours, at(SUN, 1, 30)),
        (at(FRI, 10), 3, U.natural_days, at(MON, 10)),
        (at(date(2026, 2, 13), 10), 3, U.working_days, at(date(2026, 2, 25), 10)),
    ]
    for start, limit, unit, expected in cases:
        due = deadline(start.astimezone(UTC), limit, unit, china)
        assert due == expected
        assert due.utcoffset() == timedelta(hours=8)
        assert due.replace(tzinfo=None) == expected.replace(tzinfo=None)
    # Monday 00:30 in Chibi is still Sunday 16:30 in UTC: the working day is Chibi's Monday.
    sunday_utc = datetime(2026, 3, 8, 16, 30, tzinfo=UTC)
    assert deadline(sunday_utc, 4, U.working_hours, china) == at(MON, 12)
    assert china.working_hours_between(sunday_utc, at(MON, 9).astimezone(UTC)) == 1


def test_naive_datetimes_are_refused(china: WorkCalendar) -> None:
    """A naive datetime has no instant; every entry point refuses it."""
    naive = datetime(2026, 3, 9, 10)
    aware = at(MON, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(naive, 4, U.working_hours, china)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(naive, 2, U.urgent_hours, china)
    with pytest.raises(ValueError, match="timezone-aware"):
        china.add_working_hours(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        china.working_hours_between(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        resume_deadline(aware, naive, aware, U.working_hours, china)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_overdue(naive, aware, parked=False)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_overdue(aware, naive, parked=True)


def test_bad_limits_and_units_are_refused(china: WorkCalendar) -> None:
    """Negative or non-finite limits and unknown units are ValueErrors."""
    with pytest.raises(ValueError):
        deadline(at(MON, 10), -1, U.working_hours, china)
    with pytest.raises(ValueError):
        deadline(at(MON, 10), float("nan"), U.urgent_hours, china)
    with pytest.raises(ValueError):
        deadline(at(MON, 10), 1, "fortnights", china)


def test_a_calendar_without_working_time_is_refused() -> None:
    """Periods must be ordered and disjoint; a calendar with no working day cannot place a deadline."""
    with pytest.raises(ValueError, match="overlaps"):
        WorkCalendar(periods=((time(8), time(12)), (time(11), time(18))))
    with pytest.raises(ValueError, match="does not end"):
        WorkCalendar(periods=((time(12), time(8)),))
    with pytest.raises(ValueError, match="both off and worked"):
        WorkCalendar(holidays=frozenset({SAT}), workdays=frozenset({SAT}))
    with pytest.raises(ValueError, match="weekend"):
        WorkCalendar(workdays=frozenset({MON}))
    never = WorkCalendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError, match="no working time"):
        never.add_working_hours(at(MON, 10), 1)


# --- the calendar data -----------------------------------------------------------------------------------


def test_china_loads_the_shipped_csv() -> None:
    """The CSV holds 28 days off and 5 make-up days for 2025, 33 and 6 for 2026."""
    assert CHINA_CALENDAR_CSV.is_file()
    calendar = WorkCalendar.from_csv(CHINA_CALENDAR_CSV)
    assert calendar == WorkCalendar.china()
    assert calendar.tz == CST
    assert calendar.periods == ((time(8), time(12)), (time(14), time(18)))
    # 2025: 1 + 8 + 3 + 5 + 3 + 8 = 28 days off; make-up 1/26, 2/8, 4/27, 9/28, 10/11.
    # 2026: 3 + 9 + 3 + 5 + 3 + 3 + 7 = 33 days off; make-up 1/4, 2/14, 2/28, 5/9, 9/20, 10/10.
    assert sum(d.year == 2025 for d in calendar.holidays) == 28
    assert sum(d.year == 2026 for d in calendar.holidays) == 33
    assert sorted(d for d in calendar.workdays if d.year == 2025) == [
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
    ]
    assert sorted(d for d in calendar.workdays if d.year == 2026) == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    for day in (date(2025, 1, 1), date(2025, 6, 2), date(2025, 10, 8), date(2026, 6, 19), date(2026, 9, 25)):
        assert day in calendar.holidays


def test_china_by_year() -> None:
    """Asking for one year loads only that year; a year the file lacks is refused, not treated as plain."""
    only_2025 = WorkCalendar.china(years=[2025])
    assert {d.year for d in only_2025.holidays | only_2025.workdays} == {2025}
    with pytest.raises(ValueError, match="2027"):
        WorkCalendar.china(years=[2026, 2027])


def test_from_csv_and_with_days(tmp_path: Path) -> None:
    """A local calendar: comments and the name column are optional; later days override earlier kinds."""
    path = tmp_path / "local.csv"
    path.write_text(
        "# a city's own days\ndate,kind\n2026-03-09,holiday\n2026-03-07,workday\n", encoding="utf-8"
    )
    calendar = WorkCalendar.from_csv(path, tz=ZoneInfo("Asia/Urumqi"))
    assert calendar.tz == ZoneInfo("Asia/Urumqi")
    assert not calendar.is_working_day(MON) and calendar.is_working_day(SAT)
    # The city then cancels the day off and the make-up Saturday.
    changed = calendar.with_days(workdays=[], holidays=[SAT])
    assert not changed.is_working_day(SAT) and SAT not in changed.workdays
    assert changed.with_days(holidays=[], workdays=[SAT]).is_working_day(SAT)
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,name\n2026-03-09,holiday,x\n2026-03-10,day_off,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.csv:3: kind must be holiday or workday"):
        WorkCalendar.from_csv(bad)
