"""The stored work calendar: checked against a maintained package, loaded from a validated file,
and the deadlines counted past its end marked provisional and recomputed when the year is loaded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from sqlalchemy import select, update

from geo import admin
from geo.accounts import actor_of
from geo.cases import work_calendar
from geo.cases.service import ActionIn, ReportIn, act, submit_report
from geo.cases.timelimits import WorkCalendar
from geo.errors import InvalidImport
from geo.store.models import Account, Case, ReferenceVersion
from tests.conftest import FIXTURES, rolled_back

CST = ZoneInfo("Asia/Shanghai")
TEST_2027 = FIXTURES / "calendar" / "test-2027.csv"
CANAL = (113.8999, 29.7249)


@pytest.fixture
def tx(cases_store):
    with rolled_back(cases_store) as session:
        yield session


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_stored_calendar_agrees_with_chinese_calendar(session, year):
    """The seeded 2025 and 2026 days match the maintained `chinesecalendar` package, day by day."""
    calendar = work_calendar.stored_calendar(session)
    day, differ = date(year, 1, 1), []
    while day.year == year:
        if calendar.is_working_day(day) != chinese_calendar.is_workday(day):
            differ.append(day)
        day += timedelta(days=1)
    assert differ == []
    assert calendar.ends == date(2026, 12, 31)


def test_a_past_year_from_chinese_calendar_loads_and_agrees(session, tmp_path):
    """A year before the seeded ones (2024), written from the package, loads; the calendar's end stays."""
    rows = ["date,kind,name"]
    day = date(2024, 1, 1)
    while day.year == 2024:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        if is_holiday and name:  # an official day off (weekends without a name are just weekends)
            rows.append(f"{day},holiday,{name or ''}")
        elif not is_holiday and day.weekday() >= 5:
            rows.append(f"{day},workday,{name or ''}")
        day += timedelta(days=1)
    path = tmp_path / "china-2024.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = work_calendar.import_calendar(session, path)
    assert sorted(result.years) == [2024] and result.ends_after == date(2026, 12, 31)
    calendar = work_calendar.stored_calendar(session)
    assert all(
        calendar.is_working_day(d) == chinese_calendar.is_workday(d)
        for d in (date(2024, 1, 1) + timedelta(days=n) for n in range(366))
    )


def test_every_bad_row_is_named_by_line_and_field_and_nothing_is_written(session, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "# a comment line\n"
        "date,kind,name\n"
        "2027-01-01,holiday,元旦\n"
        "2027-13-01,holiday,no such month\n"
        "2027-01-01,holiday,again\n"
        "2027-02-03,workday,a Wednesday\n"
        "2027-02-06,dayoff,unknown kind\n",
        encoding="utf-8",
    )
    rows, findings = work_calendar.read_calendar_file(path)
    assert [(f.line, f.field) for f in findings] == [(4, "date"), (5, "date"), (6, "kind"), (7, "kind")]
    assert "already on line 3" in findings[1].message and "星期三" in findings[2].message
    before = work_calendar.loaded_years(session)
    with pytest.raises(InvalidImport) as caught:
        work_calendar.import_calendar(session, path)
    assert "line 4, date" in caught.value.message and "line 7, kind" in caught.value.message
    assert work_calendar.loaded_years(session) == before


def test_a_header_without_kind_and_a_year_without_holidays_are_refused(tmp_path):
    no_kind = tmp_path / "no_kind.csv"
    no_kind.write_text("date,name\n2027-01-01,元旦\n", encoding="utf-8")
    assert [(f.line, f.field) for f in work_calendar.read_calendar_file(no_kind)[1]] == [(1, "header")]
    only_workdays = tmp_path / "only_workdays.csv"
    only_workdays.write_text("date,kind\n2027-02-06,workday\n", encoding="utf-8")
    (finding,) = work_calendar.read_calendar_file(only_workdays)[1]
    assert (finding.line, finding.field) == (2, "date") and "no holiday" in finding.message


def test_the_warning_starts_sixty_days_before_the_end():
    calendar = WorkCalendar(ends=date(2026, 12, 31))
    far = work_calendar.calendar_status(calendar, datetime(2026, 11, 1, tzinfo=CST))
    near = work_calendar.calendar_status(calendar, datetime(2026, 11, 1, 1, tzinfo=CST) + timedelta(days=1))
    today = work_calendar.calendar_status(calendar, datetime(2026, 12, 1, 12, tzinfo=CST))
    after = work_calendar.calendar_status(calendar, datetime(2027, 1, 2, tzinfo=CST))
    assert (far.days_left, far.warning) == (60, True)
    assert work_calendar.calendar_status(calendar, datetime(2026, 10, 31, tzinfo=CST)).warning is False
    assert near.warning and today.days_left == 30 and today.next_year == 2027
    assert after.days_left == -2 and after.warning
    assert work_calendar.calendar_status(WorkCalendar(), datetime.now(UTC)).warning  # nothing loaded


def _dispatched_case(session, context, at: datetime) -> Case:
    """A canal report (now), filed, then dispatched to WATER at `at` by the demo operator."""
    inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
    operator = actor_of(session.scalar(select(Account).where(Account.username == "operator")))
    case, _ = submit_report(
        session, context, inspector, ReportIn(category="E0102", lon=CANAL[0], lat=CANAL[1])
    )
    session.execute(update(Case).where(Case.id == case.id).values(state="filed", unit_code="WATER"))
    session.expire(case)
    return act(session, context, operator, case.tracking_code, "dispatch", ActionIn(), now=at)


def test_a_deadline_past_the_calendar_is_provisional_and_recomputed_when_the_year_is_loaded(tx, case_client):
    context = case_client.app.state.cases
    by = admin.Admin("test-admin", "cli")
    admin.change_category(
        tx, by, "E0102", time_limit=10, time_limit_unit="working_days", department_code="CGJ"
    )
    # Thursday 24 December 2026, 10:00: ten working days run into 2027, whose holidays are not loaded.
    case = _dispatched_case(tx, context, datetime(2026, 12, 24, 10, tzinfo=CST))
    # Without 2027's days, New Year's Day (Friday) counts as a working day: due Thursday 7 January.
    assert case.deadline_at == datetime(2027, 1, 7, 10, tzinfo=CST)
    assert case.deadline_provisional is True
    inside = _dispatched_case(tx, context, datetime(2026, 12, 2, 10, tzinfo=CST))
    assert inside.deadline_provisional is False  # due 16 December: inside the loaded calendar

    result = work_calendar.import_calendar(tx, TEST_2027, source="test fixture", loaded_by="test-admin")
    assert result.ends_before == date(2026, 12, 31) and result.ends_after == date(2027, 12, 31)
    assert [r.tracking_code for r in result.recomputed] == [case.tracking_code]
    tx.refresh(case)
    # With 1 January 2027 off, the tenth working day is Friday 8 January.
    assert case.deadline_at == datetime(2027, 1, 8, 10, tzinfo=CST)
    assert case.deadline_provisional is False
    assert any(case.tracking_code in line and "→" in line for line in result.lines())
    # The next action counts on the loaded year at once (the context reloads the stored calendar).
    assert context.calendar_for(tx).ends == date(2027, 12, 31)
    version = tx.scalar(select(ReferenceVersion.version).where(ReferenceVersion.name == "calendar"))
    assert version and version >= 1


def test_a_deadline_past_even_the_loaded_year_stays_provisional(tx, case_client):
    context = case_client.app.state.cases
    by = admin.Admin("test-admin", "cli")
    admin.change_category(
        tx, by, "E0102", time_limit=300, time_limit_unit="working_days", department_code=None
    )
    case = _dispatched_case(tx, context, datetime(2026, 12, 24, 10, tzinfo=CST))
    assert case.deadline_provisional
    result = work_calendar.import_calendar(tx, TEST_2027)
    (again,) = result.recomputed
    assert again.still_provisional and again.after > again.before  # 2027-01-01 and 2027-02-08 off
