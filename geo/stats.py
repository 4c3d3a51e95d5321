"""Indicators (考核指标) of the case workflow, defined once: here, for the code, the API and the docs.

Periods are whole days in China Standard Time (Asia/Shanghai), `start` and `end` both included.
Three kinds of count:

- **flows**: events of the case log that happened in the period (reported, verified, filed,
  received, handled, closed, returned, reworked, extended), each counted once, for the group of
  its case (grid, community, street, category, inspector = the grid worker who reported it) and for
  the unit named on the event (the unit holding the case when it happened). Every event counts for
  exactly one group, so per-group counts always add up to the totals.
- **the dispatched cohort** (派遣案件): each case that was dispatched counts once, on the day of
  its latest dispatch or re-dispatch, for the unit holding it after that dispatch (no unit while
  it is returned and waits for a re-dispatch: a unit that returns a case that is not its own is
  not charged with it). `dispatched_closed` counts the cohort's cases that are closed, whenever
  they closed (as of the query), credited to the same day and unit: 处置率 is the share of the
  period's dispatched cases that are closed, as Chibi publishes it, and never above 100%.
- **due** (应结案): cases whose deadline in force (`cases.deadline_at`, after extensions and parking)
  falls in the period, except cases now parked (挂账: the clock stops and unparking moves the
  deadline), voided or merged. Counted for the case's current unit.

Flows and the cohort come from the daily rollup `stats_daily` (one row per day and per value of
each grouping) plus the deltas not yet folded into it (`stats_delta`), and handling hours from
`stats_handling` (one row per handle event). A statement trigger on every insert into
`case_event` appends the deltas (migration 0005: no shared row in the writer's transaction),
`fold_rollup` moves them into `stats_daily` (a periodic job: `RollupFolder`), and
`rebuild_rollup` recomputes everything from the log. With `source="events"` the same definitions
run straight on the raw event log (same numbers, slower: the benchmark compares them). "Due"
figures come from `cases` through a covering index on `deadline_at`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.community import register_figures as community_figures
from geo.errors import InvalidInput

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
CHINA = ZoneInfo("Asia/Shanghai")
GroupBy = Literal["unit", "street", "community", "grid", "inspector", "category", "day"]
GROUPS: tuple[str, ...] = ("unit", "street", "community", "grid", "inspector", "category")
#: Groups the rollup has no dimension for: counted on the raw event log (`source="events"`),
#: as is any query for one channel only. The channel (来源) is where a report came from.
CASE_GROUPS: tuple[str, ...] = ("channel",)
#: Each channel in words (the reports' names; the pages' are in api/i18n.py).
CHANNEL_NAMES_ZH: dict[str, str] = {
    "inspector": "网格员上报",
    "resident": "市民上报",
    "hotline_12345": "12345热线",
    "video_patrol": "视频巡查",
    "referral": "部门转办",
    "open311": "Open311 接口",
}
Source = Literal["rollup", "events"]


@dataclass(frozen=True)
class Indicator:
    """One indicator: its name, Chinese name, formula in words, and how SQL computes it.

    `sql` is an expression over the aggregated columns of one group (the flow and due counts named
    in the formulas), so the definition in the docs and the number in a report cannot drift apart.
    """

    name: str
    name_zh: str
    kind: Literal["count", "rate", "hours"]
    formula: str
    sql: str


def _rate(num: str, den: str) -> str:
    # float8 at the end: the value is exact to 6 places, and Python reads floats much faster
    # than Decimals (10,000 groups per query).
    return f"round(({num})::numeric / nullif({den}, 0), 6)::float8"


INDICATORS: tuple[Indicator, ...] = (
    Indicator("reported", "上报数", "count", "cases reported in the period (report events)", "reported"),
    Indicator("verified", "受理数", "count", "cases verified (受理/核实) in the period", "verified"),
    Indicator("filed", "立案数", "count", "cases filed (立案) in the period", "filed"),
    Indicator(
        "dispatched",
        "派遣数",
        "count",
        "cases dispatched in the period, each once, on the day of its latest dispatch or "
        "re-dispatch and for the unit holding it after it (none while returned and waiting for "
        "a re-dispatch)",
        "dispatched",
    ),
    Indicator(
        "received",
        "派遣次数",
        "count",
        "dispatch and re-dispatch events in the period, for the unit each sent the case to "
        "(a case returned and re-dispatched counts once for each unit)",
        "received",
    ),
    Indicator(
        "handled",
        "回告数",
        "count",
        "handle events in the period: the unit reported the case handled (处置回告), with "
        "after-photos; a reworked case that is handled again counts again",
        "handled",
    ),
    Indicator(
        "closed",
        "结案数",
        "count",
        "cases closed (结案) in the period: handled, passed the on-site check (核查) and closed "
        "by the command centre",
        "closed",
    ),
    Indicator(
        "returned",
        "回退数",
        "count",
        "return events (回退) in the period, for the unit that returned the case",
        "returned",
    ),
    Indicator(
        "reworked", "返工数", "count", "failed on-site checks (核查不通过 → 返工) in the period", "reworked"
    ),
    Indicator("extended", "延期数", "count", "approved extensions (延期) in the period", "extended"),
    Indicator(
        "due",
        "应结案数",
        "count",
        "cases whose deadline in force falls in the period (not parked, voided or merged)",
        "due",
    ),
    Indicator(
        "overdue",
        "超期数",
        "count",
        "due cases not closed by their deadline (closed late or still open): due − closed on time",
        "due - closed_on_time",
    ),
    Indicator(
        "closure_rate",
        "结案率",
        "rate",
        "closed / due, where closed counts due cases closed by the end of the period",
        _rate("closed_due", "due"),
    ),
    Indicator(
        "on_time_closure_rate",
        "按期结案率",
        "rate",
        "closed on time / due: due cases closed at or before their deadline",
        _rate("closed_on_time", "due"),
    ),
    Indicator(
        "disposal_rate",
        "处置率",
        "rate",
        "of the cases dispatched in the period (dispatched), the share closed so far "
        "(dispatched_closed: handled, passed the on-site check and closed, whenever that was), "
        "for the unit holding each case; as Chibi publishes it (6,967 / 7,389 = 94.29%)",
        _rate("dispatched_closed", "dispatched"),
    ),
    Indicator(
        "handled_rate",
        "回告率",
        "rate",
        "handled / dispatched: the standard's literal 处置数/派遣数, counting the unit's "
        "report back before the on-site check (a reworked case handled again counts again)",
        _rate("handled", "dispatched"),
    ),
    Indicator(
        "on_time_disposal_rate",
        "按期处置率",
        "rate",
        "handled on time / handled: handle events at or before the deadline in force "
        "when the case was handled",
        _rate("handled_on_time", "handled"),
    ),
    Indicator(
        "return_rate",
        "回退率",
        "rate",
        "returned / received: the share of the dispatches a unit received that it returned",
        _rate("returned", "received"),
    ),
    Indicator(
        "rework_rate",
        "返工率",
        "rate",
        "reworked / handled: the share of handlings sent back by the on-site check",
        _rate("reworked", "handled"),
    ),
    Indicator("extension_rate", "延期率", "rate", "extended / dispatched", _rate("extended", "dispatched")),
    Indicator(
        "handling_hours_mean",
        "平均处置时长",
        "hours",
        "mean of the hours from the case's latest dispatch (or re-dispatch) to each handle "
        "event in the period; wall-clock hours (parked time included)",
        "round(handling_hours_mean::numeric, 2)::float8",
    ),
    Indicator(
        "handling_hours_p90",
        "处置时长P90",
        "hours",
        "90th percentile (continuous) of the same hours",
        "round(handling_hours_p90::numeric, 2)::float8",
    ),
)
BY_NAME: dict[str, Indicator] = {i.name: i for i in INDICATORS}
ReportLang = Literal["zh", "en"]
#: What the reports' columns and tables are called in Chinese (the downloads' headers; English
#: keeps the product's column names, which scripts read).
COLUMN_LABELS_ZH: dict[str, str] = (
    {i.name: i.name_zh for i in INDICATORS}
    | {
        "rank": "排名",
        "unit": "单位编码",
        "name": "名称",
        "street": "街道编码",
        "community": "社区编码",
        "grid": "网格编码",
        "inspector": "网格员",
        "category": "类别编码",
        "day": "日期",
        "dispatched_closed": "派遣已结案数",
        "handled_on_time": "按期回告数",
        "closed_due": "应结案已结案数",
        "closed_on_time": "按期结案数",
        "indicator": "指标代码",
        "指标": "指标",
        "formula": "口径",
        "this week": "本周",
        "previous week": "上周",
        "this month": "本月",
        "previous month": "上月",
    }
    | community_figures.COLUMN_LABELS_ZH
)
TABLE_LABELS_ZH: dict[str, str] = {
    "daily": "每日",
    "summary": "指标汇总",
    "streets": "街道",
    "top categories": "类别前十",
    "ranking": "单位排名",
    "definitions": "指标定义",
} | community_figures.TABLE_LABELS_ZH


def column_label(column: str, lang: ReportLang = "zh") -> str:
    """A report column's header: Chinese first (the code in English)."""
    return COLUMN_LABELS_ZH.get(column, column) if lang == "zh" else column


def table_label(name: str, lang: ReportLang = "zh") -> str:
    """A report table's (and XLSX sheet's) name in the language."""
    return TABLE_LABELS_ZH.get(name, name) if lang == "zh" else name


def _whole_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Count columns as integers (nullable: a missing count stays empty, never "12.0")."""
    frame = frame.copy()
    for column in frame.columns:
        indicator = BY_NAME.get(str(column))
        counted = column in AUXILIARY or column in SATISFACTION_COUNTS or column == "rank"
        if (indicator is not None and indicator.kind == "count") or counted:
            frame[column] = pd.to_numeric(frame[column]).round().astype("Int64")
    return frame


COLUMNS: tuple[str, ...] = tuple(i.name for i in INDICATORS)


@dataclass
class Period:
    """Whole days in China Standard Time, both ends included; `t0`/`t1` bound it half-open."""

    start: date
    end: date

    @property
    def t0(self) -> datetime:
        """The first instant of the period."""
        return datetime.combine(self.start, time(), CHINA)

    @property
    def t1(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(), CHINA)


@dataclass
class Report:
    """What a weekly report or monthly ranking shows; renderers turn it into HTML, CSV, XLSX."""

    kind: Literal["weekly", "monthly"]
    title: str
    period: Period
    totals: pd.Series
    # Named tables in display order; the first is the main one (CSV has it, XLSX has them all).
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # Data of the chart: one row per bar or point.
    chart: pd.DataFrame = field(default_factory=pd.DataFrame)
    chart_title: str = ""


def period(start: date, end: date) -> Period:
    """A checked period (InvalidInput naming `from`/`to` otherwise)."""
    if end < start:
        raise InvalidInput(f"`to` ({end}) is before `from` ({start})", field="to")
    if (end - start).days > 366 * 20:
        raise InvalidInput("a period of at most 20 years", field="from")
    return Period(start, end)


# -- SQL ----------------------------------------------------------------------------------------
# Group keys per source, chosen from these fixed tables (never from request text).
# r: stats_daily, d: stats_delta, e: case_event, c: cases. "day" is the event's (or deadline's)
# China-time date. The rollup holds one row per day and value of each dimension (`dim`), "all"
# for the city; a delta row holds every group column of one effect.
_DIM_ROLLUP = {g: g for g in GROUPS} | {"day": "all", None: "all"}
_KEY_ROLLUP = {g: "r.key" for g in GROUPS} | {"day": "r.day", None: "NULL::text"}
_CASE_KEYS = {
    "street": "c.street_code",
    "community": "c.community_code",
    "grid": "c.grid_code",
    "inspector": "c.reported_by",
    "category": "c.category_code",
    "channel": "c.channel",
}
_KEY_DELTA = {
    "unit": "d.unit_code",
    "street": "d.street_code",
    "community": "d.community_code",
    "grid": "d.grid_code",
    "inspector": "d.inspector",
    "category": "d.category_code",
    "day": "d.day",
    None: "NULL::text",
}
_KEY_EVENTS = _CASE_KEYS | {
    "unit": "coalesce(e.unit_code, c.unit_code)",
    "day": "(e.at AT TIME ZONE 'Asia/Shanghai')::date",
    None: "NULL::text",
}
# The cohort on the raw log: `l` is a case's latest dispatch, `x.returned` whether a return
# followed it (then no unit holds the case).
_KEY_COHORT = _CASE_KEYS | {
    "unit": "CASE WHEN x.returned THEN NULL ELSE l.unit_code END",
    "day": "(l.at AT TIME ZONE 'Asia/Shanghai')::date",
    None: "NULL::text",
}
_KEY_DUE = _CASE_KEYS | {
    "unit": "c.unit_code",
    "day": "(c.deadline_at AT TIME ZONE 'Asia/Shanghai')::date",
    None: "NULL::text",
}
FLOWS = (
    "reported",
    "verified",
    "filed",
    "received",
    "handled",
    "handled_on_time",
    "closed",
    "returned",
    "reworked",
    "extended",
)
COHORT = ("dispatched", "dispatched_closed")
DUES = ("due", "closed_due", "closed_on_time")
# Auxiliary counts shown next to the indicators so every rate can be checked by hand.
AUXILIARY = ("dispatched_closed", "handled_on_time", "closed_due", "closed_on_time")
# The same tests as the rollup trigger's SQL in migration 0005. That stays frozen as it was
# released (a migration never imports live code), so they are written there again; the
# rollup-equals-raw-log tests keep both in step.
DISPATCHES = "('dispatch', 'redispatch')"
_EVENT_TESTS = {
    "reported": "e.action = 'report'",
    "verified": "e.action = 'verify'",
    "filed": "e.action = 'file'",
    "received": f"e.action IN {DISPATCHES}",
    "handled": "e.action = 'handle'",
    "handled_on_time": "e.action = 'handle' AND e.at <= c.deadline_at",
    "closed": "e.action = 'close'",
    "returned": "e.action = 'return'",
    "reworked": "e.action = 'check_fail'",
    "extended": "e.action = 'approve_extension'",
}
_ACTIONS = (
    "report",
    "verify",
    "file",
    "dispatch",
    "redispatch",
    "handle",
    "close",
    "return",
    "check_fail",
    "approve_extension",
)


_KEY_HANDLING = {
    "unit": "h.unit_code",
    "street": "h.street_code",
    "community": "h.community_code",
    "grid": "h.grid_code",
    "inspector": "h.inspector",
    "category": "h.category_code",
    "day": "h.day",
    None: "NULL::text",
}
_NO_HOURS = "NULL::float8 AS handling_hours_mean, NULL::float8 AS handling_hours_p90"


def _zeros(names: tuple[str, ...]) -> str:
    return ", ".join(f"0 AS {n}" for n in names)


def _due_rows(group_by: str | None, only: str = "") -> str:
    # Cases whose deadline in force falls in the period; parked ones wait for their new deadline.
    return f"""
        SELECT {_KEY_DUE[group_by]} AS key, {_zeros(FLOWS + COHORT)},
               count(*) AS due,
               count(*) FILTER (WHERE c.state = 'closed' AND c.closed_at < :t1) AS closed_due,
               count(*) FILTER (WHERE c.state = 'closed' AND c.closed_at <= c.deadline_at)
                   AS closed_on_time,
               {_NO_HOURS}
        FROM cases c
        WHERE c.deadline_at >= :t0 AND c.deadline_at < :t1
          AND c.state NOT IN ('parked', 'voided', 'merged'){only}
        GROUP BY 1"""


def _flow_rows(group_by: str | None, source: Source, only: str = "") -> str:
    if source == "rollup":
        # Folded rows plus the deltas appended since the last fold (few: a fold runs often).
        rollup = ", ".join(f"sum(r.{n}) AS {n}" for n in FLOWS + COHORT)
        delta = ", ".join(f"sum(d.{n}) AS {n}" for n in FLOWS + COHORT)
        return f"""
        SELECT {_KEY_ROLLUP[group_by]} AS key, {rollup}, {_zeros(DUES)}, {_NO_HOURS}
        FROM stats_daily r WHERE r.dim = :dim AND r.day BETWEEN :d0 AND :d1
        GROUP BY 1
        UNION ALL
        SELECT {_KEY_DELTA[group_by]} AS key, {delta}, {_zeros(DUES)}, {_NO_HOURS}
        FROM stats_delta d WHERE d.day BETWEEN :d0 AND :d1
        GROUP BY 1"""
    counts = ", ".join(f"count(*) FILTER (WHERE {test}) AS {n}" for n, test in _EVENT_TESTS.items())
    actions = ", ".join(f"'{a}'" for a in _ACTIONS)
    return f"""
        SELECT {_KEY_EVENTS[group_by]} AS key, {counts}, {_zeros(COHORT + DUES)}, {_NO_HOURS}
        FROM case_event e
        JOIN cases c ON c.id = e.case_id
        WHERE e.at >= :t0 AND e.at < :t1 AND e.action IN ({actions}){only}
        GROUP BY 1
        UNION ALL {_cohort_rows(group_by, only)}"""


def _cohort_rows(group_by: str | None, only: str = "") -> str:
    # The raw-log cohort: dispatch events of the period that are their case's latest, with
    # whether a return or a close followed. Events are ordered by (at, id), as in the trigger.
    later = "n.case_id = l.case_id AND (n.at, n.id) > (l.at, l.id)"
    return f"""
        SELECT {_KEY_COHORT[group_by]} AS key, {_zeros(FLOWS)},
               count(*) AS dispatched, count(*) FILTER (WHERE x.closed) AS dispatched_closed,
               {_zeros(DUES)}, {_NO_HOURS}
        FROM case_event l
        JOIN cases c ON c.id = l.case_id
        CROSS JOIN LATERAL (
            SELECT coalesce(bool_or(n.action = 'return'), false) AS returned,
                   coalesce(bool_or(n.action = 'close'), false) AS closed
            FROM case_event n WHERE {later} AND n.action IN ('return', 'close')
        ) x
        WHERE l.at >= :t0 AND l.at < :t1 AND l.action IN {DISPATCHES}
          AND NOT EXISTS (SELECT 1 FROM case_event n WHERE {later} AND n.action IN {DISPATCHES}){only}
        GROUP BY 1"""


def _handling_rows(group_by: str | None, source: Source, only: str = "") -> str:
    # Hours from the case's latest dispatch or re-dispatch to each handle event in the period.
    hours = (
        "avg(h.hours) AS handling_hours_mean, percentile_cont(0.9) WITHIN GROUP "
        "(ORDER BY h.hours) AS handling_hours_p90"
    )
    zeros = _zeros(FLOWS + COHORT + DUES)
    if source == "rollup":
        return f"""
        SELECT {_KEY_HANDLING[group_by]} AS key, {zeros}, {hours}
        FROM stats_handling h WHERE h.day BETWEEN :d0 AND :d1
        GROUP BY 1"""
    return f"""
        SELECT {_KEY_EVENTS[group_by]} AS key, {zeros}, {hours}
        FROM case_event e
        JOIN cases c ON c.id = e.case_id
        CROSS JOIN LATERAL (
            SELECT (extract(epoch FROM e.at - max(d.at)) / 3600)::real AS hours
            FROM case_event d
            WHERE d.case_id = e.case_id AND d.action IN {DISPATCHES}
              AND d.at <= e.at
        ) h
        WHERE e.at >= :t0 AND e.at < :t1 AND e.action = 'handle' AND h.hours IS NOT NULL{only}
        GROUP BY 1"""


def indicators_sql(
    group_by: str | None, source: Source = "rollup", *, one_key: bool = False, one_channel: bool = False
) -> str:
    """The one SQL statement behind `indicators` (parameters :d0 :d1 :t0 :t1 :dim, and :key for
    `one_key`: only the group with that key, which PostgreSQL pushes down into every part; and
    :channel for `one_channel`: only that channel's cases, on the raw log).

    Parts per group key, added up: the flows and the cohort (rollup and unfolded deltas, or the
    raw log), the due cases (`cases` by deadline), and the handling hours (`stats_handling` or
    the raw log). A group whose counts are all zero (a return and its re-dispatch cancelled out)
    and that has no handling hours is left out, as on the raw log.
    """
    counted = FLOWS + COHORT + DUES
    sums = ", ".join(f"sum({n})::bigint AS {n}" for n in counted)
    outputs = ",\n       ".join(f"{i.sql} AS {i.name}" for i in INDICATORS)
    aux = ", ".join(n for n in AUXILIARY)
    empty = " AND ".join(f"{n} = 0" for n in counted)
    if (one_channel or group_by in CASE_GROUPS) and source == "rollup":
        raise ValueError("channels are counted on the raw event log: source='events'")
    only = " AND c.channel = :channel" if one_channel else ""
    return f"""
SELECT key, {outputs}, {aux}
FROM (
    SELECT key, {sums},
           max(handling_hours_mean) AS handling_hours_mean,
           max(handling_hours_p90) AS handling_hours_p90
    FROM ({_flow_rows(group_by, source, only)}
        UNION ALL {_due_rows(group_by, only)}
        UNION ALL {_handling_rows(group_by, source, only)}
    ) x
    GROUP BY key
) a
WHERE NOT ({empty} AND handling_hours_mean IS NULL){" AND key = :key" if one_key else ""}
ORDER BY key"""


def _check_group(group_by: str | None) -> None:
    if group_by is not None and group_by not in GROUPS + CASE_GROUPS + ("day",):
        raise InvalidInput(
            f"group_by must be one of {', '.join(GROUPS + CASE_GROUPS)}, day (or empty), not {group_by!r}",
            field="group_by",
        )


def check_channel(channel: str | None) -> None:
    """A channel filter must name a channel (InvalidInput naming `channel` otherwise)."""
    if channel is not None and channel not in CHANNEL_NAMES_ZH:
        raise InvalidInput(
            f"channel must be one of {', '.join(CHANNEL_NAMES_ZH)} (or empty), not {channel!r}",
            field="channel",
        )


def indicators(
    session: Session,
    *,
    start: date,
    end: date,
    group_by: GroupBy | str | None = None,
    source: Source = "rollup",
    key: str | None = None,
    channel: str | None = None,
) -> pd.DataFrame:
    """Every indicator for the period, one row per group (or one row when `group_by` is None);
    with `key`, only that group's row (none when it had no activity); with `channel`, of that
    channel's cases only. Per channel or for one channel, the raw event log is read (the rollup
    has no channel dimension): the same definitions, slower.

    Columns: the group key (named after `group_by`) and its `name`, then `COLUMNS` (counts as
    integers, rates as fractions with None when the denominator is 0, hours as floats), then the
    auxiliary counts `AUXILIARY`. Groups with no activity at all are absent.
    """
    _check_group(group_by)
    check_channel(channel)
    if key is not None and group_by is None:
        raise InvalidInput("a key needs a group_by", field="group_by")
    if channel is not None or group_by in CASE_GROUPS:
        source = "events"
    p = period(start, end)
    result = session.execute(
        text(indicators_sql(group_by, source, one_key=key is not None, one_channel=channel is not None)),
        {
            "d0": p.start,
            "d1": p.end,
            "t0": p.t0,
            "t1": p.t1,
            "dim": _DIM_ROLLUP.get(group_by, "all"),
            "key": key,
            "channel": channel,
        },
    )
    # Plain tuples: pandas probes each Row's attributes, slow at 10,000 rows.
    frame = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
    if group_by is None:
        if frame.empty:  # nothing happened: zero counts, no rates
            frame = pd.DataFrame([dict.fromkeys(("key", *COLUMNS, *AUXILIARY))])
        frame = frame.drop(columns="key")
    else:
        frame = frame.rename(columns={"key": group_by})
        # Keys stay plain objects (None for "no unit/grid/inspector"), never NaN.
        keys = frame[group_by].astype(object)
        frame[group_by] = keys.where(keys.notna(), None)
        frame.insert(1, "name", _labels(session, group_by, frame[group_by].tolist()))
    for column in COLUMNS + AUXILIARY:
        kind = BY_NAME[column].kind if column in BY_NAME else "count"
        if column not in frame:
            continue
        if kind == "count":
            frame[column] = frame[column].fillna(0).astype("int64")
        else:
            frame[column] = frame[column].astype("float64")
    if group_by is None:
        frame = frame.reset_index(drop=True)
    return frame


def totals(
    session: Session, *, start: date, end: date, source: Source = "rollup", channel: str | None = None
) -> pd.Series:
    """The indicators of the whole period as one Series (name → value; counts stay integers),
    of one channel's cases with `channel`."""
    frame = indicators(session, start=start, end=end, source=source, channel=channel)
    # iloc on a frame of int and float columns would upcast every count to float.
    return pd.Series({c: _scalar(frame[c].iloc[0]) for c in frame.columns}, dtype=object)


def unit_totals(
    session: Session, unit_code: str, *, start: date, end: date, source: Source = "rollup"
) -> pd.Series:
    """One unit's indicators for the period, as in the unit ranking (zero counts and no rates
    when nothing happened there): what a unit desk shows of its own unit."""
    frame = indicators(session, start=start, end=end, group_by="unit", source=source, key=unit_code)
    if frame.empty:
        counted = {c for c in (*COLUMNS, *AUXILIARY) if c not in BY_NAME or BY_NAME[c].kind == "count"}
        zero = {c: 0 if c in counted else None for c in (*COLUMNS, *AUXILIARY)}
        return pd.Series({"unit": unit_code, **zero}, dtype=object)
    return pd.Series({c: _scalar(frame[c].iloc[0]) for c in frame.columns}, dtype=object)


def month_period(day: date) -> Period:
    """The calendar month containing `day` (China time, both ends included)."""
    first = day.replace(day=1)
    return period(first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1))


def _scalar(value: object) -> object:
    """A plain Python int, float or None (numpy scalars and NaN are not)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and pd.isna(value):
        return None
    return value


def _labels(session: Session, group_by: str, keys: list) -> list[str | None]:
    """Display names of group keys: unit, area and category names (codes stay the key)."""
    codes = [str(k) for k in keys if k is not None]
    names: dict[str, str] = {}
    if group_by == "unit":
        sql = "SELECT code, name FROM unit WHERE code = ANY(:codes)"
    elif group_by in ("street", "community", "grid"):
        # The name in the newest generation that has the code.
        sql = (
            "SELECT DISTINCT ON (code) code, name FROM area WHERE level = :level "
            "AND code = ANY(:codes) ORDER BY code, generation_high DESC"
        )
    elif group_by == "category":
        sql = "SELECT code, name FROM category WHERE code = ANY(:codes)"
    elif group_by == "inspector":
        sql = "SELECT username, coalesce(display_name, username) FROM account WHERE username = ANY(:codes)"
    elif group_by == "channel":
        return [CHANNEL_NAMES_ZH.get(str(k), str(k)) if k is not None else "（无）" for k in keys]
    else:
        return [str(k) if k is not None else None for k in keys]
    if codes:
        rows = session.execute(text(sql), {"codes": codes, "level": group_by}).all()
        names = {code: name for code, name in rows}
    return [names.get(str(k), str(k)) if k is not None else "（无）" for k in keys]


# -- satisfaction (回访率, 满意率) -------------------------------------------------------------------
#: Satisfaction groups: a case counts for the unit that closed it and its street and community,
#: in the China-time month it closed in.
SATISFACTION_GROUPS: tuple[str, ...] = ("unit", "street", "community", "month", "channel")
_SATISFACTION_KEYS = {
    "unit": "c.unit_code",
    "street": "c.street_code",
    "community": "c.community_code",
    "month": "to_char(c.closed_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
    "channel": "c.channel",
    None: "NULL::text",
}
SATISFACTION_INDICATORS = (
    Indicator(
        "callback_rate",
        "回访率",
        "rate",
        "rated ÷ closed: of the cases closed in the period, the share whose reporter rated them "
        "(on the case page or in the callback, 回访)",
        "rated / closed",
    ),
    Indicator(
        "satisfaction_rate",
        "满意率",
        "rate",
        "(satisfied + basically satisfied) ÷ rated: 满意 and 基本满意 among the rated cases",
        "(satisfied + basically_satisfied) / rated",
    ),
)


def satisfaction(
    session: Session, *, start: date, end: date, group_by: str | None = None, channel: str | None = None
) -> list[dict[str, object]]:
    """回访率 and 满意率 of the cases closed from `start` to `end` (China days, both included),
    one row per group (or one row): counts closed, rated, satisfied, basically_satisfied,
    unsatisfied, and the two rates (None where the denominator is 0). Computed from `cases` and
    `case_rating` directly: the other indicators and their rollups are untouched. With `channel`,
    of that channel's cases only (12345 热线: the callback's verdicts)."""
    if group_by not in _SATISFACTION_KEYS:
        raise InvalidInput(
            f"group_by must be one of {', '.join(SATISFACTION_GROUPS)} (or empty), not {group_by!r}",
            field="group_by",
        )
    check_channel(channel)
    p = period(start, end)
    key = _SATISFACTION_KEYS[group_by]
    only = " AND c.channel = :channel" if channel is not None else ""
    rows = session.execute(
        text(
            f"""
            SELECT {key} AS key, count(*) AS closed, count(r.case_id) AS rated,
                   count(*) FILTER (WHERE r.rating = 'satisfied') AS satisfied,
                   count(*) FILTER (WHERE r.rating = 'basically_satisfied') AS basically_satisfied,
                   count(*) FILTER (WHERE r.rating = 'unsatisfied') AS unsatisfied
            FROM cases c LEFT JOIN case_rating r ON r.case_id = c.id
            WHERE c.state = 'closed' AND c.closed_at >= :t0 AND c.closed_at < :t1{only}
            GROUP BY 1 ORDER BY 1 NULLS LAST
            """
        ),
        {"t0": p.t0, "t1": p.t1, "channel": channel},
    ).mappings()
    found: list[dict[str, object]] = []
    for record in rows:
        counts = {
            k: int(record[k]) for k in ("closed", "rated", "satisfied", "basically_satisfied", "unsatisfied")
        }
        rated, closed = counts["rated"], counts["closed"]
        found.append(
            {
                **({group_by: record["key"]} if group_by else {}),
                **counts,
                "callback_rate": round(rated / closed, 6) if closed else None,
                "satisfaction_rate": round((counts["satisfied"] + counts["basically_satisfied"]) / rated, 6)
                if rated
                else None,
            }
        )
    if group_by is None and not found:
        found.append(
            {
                "closed": 0,
                "rated": 0,
                "satisfied": 0,
                "basically_satisfied": 0,
                "unsatisfied": 0,
                "callback_rate": None,
                "satisfaction_rate": None,
            }
        )
    if group_by in ("unit", "street", "community", "channel"):
        labels = _labels(session, group_by, [entry[group_by] for entry in found])
        for entry, label in zip(found, labels, strict=True):
            entry["name"] = label
    return found


#: Every indicator a report defines: the workflow's, then satisfaction's (its two rates read
#: like the others: by name, formatted as rates, listed with their formulas).
REPORT_INDICATORS: tuple[Indicator, ...] = INDICATORS + SATISFACTION_INDICATORS
BY_NAME.update({i.name: i for i in SATISFACTION_INDICATORS})
COLUMN_LABELS_ZH.update(
    {i.name: i.name_zh for i in SATISFACTION_INDICATORS}
    | {
        "channel": "来源",
        "closed_cases": "结案案件数",
        "rated": "评价数",
        "satisfied": "满意",
        "basically_satisfied": "基本满意",
        "unsatisfied": "不满意",
    }
)
TABLE_LABELS_ZH.update({"channels": "按来源", "communities": "社区满意度"})
#: Satisfaction's counts: whole numbers in every format (as the indicators' counts are).
SATISFACTION_COUNTS = ("closed_cases", "rated", "satisfied", "basically_satisfied", "unsatisfied")


def satisfaction_frame(session: Session, *, start: date, end: date, group_by: str) -> pd.DataFrame:
    """`satisfaction` per group as a frame for a report: the key, `closed_cases` (satisfaction's
    denominator: cases closed in the period and still closed), the ratings and both rates."""
    rows = satisfaction(session, start=start, end=end, group_by=group_by)
    columns = [group_by, *SATISFACTION_COUNTS, "callback_rate", "satisfaction_rate"]
    frame = pd.DataFrame(rows).rename(columns={"closed": "closed_cases"})
    if frame.empty:
        # A month with nothing closed: the same columns, `name` too where the groups have names.
        named = group_by in ("unit", "street", "community", "channel")
        return pd.DataFrame(columns=columns + (["name"] if named else []))
    for column in ("callback_rate", "satisfaction_rate"):
        frame[column] = frame[column].astype("float64")
    return frame[columns + (["name"] if "name" in frame else [])]


def _with_satisfaction(frame: pd.DataFrame, sat: pd.DataFrame, key: str) -> pd.DataFrame:
    """A report table with each group's satisfaction next to it (none where nothing closed)."""
    merged = frame.merge(sat.drop(columns=["name"], errors="ignore"), on=key, how="left")
    for column in SATISFACTION_COUNTS:
        merged[column] = merged[column].fillna(0).astype("int64")
    return merged


# -- reports ------------------------------------------------------------------------------------
SUMMARY = (
    "reported",
    "verified",
    "filed",
    "dispatched",
    "received",
    "handled",
    "closed",
    "returned",
    "reworked",
    "extended",
    "due",
    "overdue",
    "closure_rate",
    "on_time_closure_rate",
    "disposal_rate",
    "on_time_disposal_rate",
    "return_rate",
    "rework_rate",
    "extension_rate",
    "handling_hours_mean",
    "handling_hours_p90",
)
RANKING = (
    "dispatched",
    "dispatched_closed",
    "received",
    "handled",
    "closed",
    "returned",
    "reworked",
    "due",
    "overdue",
    "disposal_rate",
    "on_time_disposal_rate",
    "return_rate",
    "on_time_closure_rate",
    "rework_rate",
    "handling_hours_mean",
)


def _summary_table(
    this: pd.Series, before: pd.Series, this_label: str, before_label: str, names: tuple[str, ...] = SUMMARY
) -> pd.DataFrame:
    def shown(n: str, value: object) -> object:
        # A count is a whole number however the totals' Series stored it (float64 beside rates).
        if BY_NAME[n].kind == "count" and value is not None and not pd.isna(value):  # type: ignore[call-overload]
            return int(value)  # type: ignore[call-overload]
        return value

    rows = [
        {
            "indicator": n,
            "指标": BY_NAME[n].name_zh,
            this_label: shown(n, this[n]),
            before_label: shown(n, before[n]),
            "formula": BY_NAME[n].formula,
        }
        for n in names
    ]
    # object columns: counts stay integers next to the rates in the same column.
    return pd.DataFrame(rows, dtype=object)


def weekly_report(session: Session, week: date, source: Source = "rollup") -> Report:
    """The weekly report (周报) of the Monday-to-Sunday week containing `week`."""
    monday = week - timedelta(days=week.weekday())
    p = period(monday, monday + timedelta(days=6))
    this = totals(session, start=p.start, end=p.end, source=source)
    before = totals(session, start=p.start - timedelta(days=7), end=p.end - timedelta(days=7), source=source)
    daily = indicators(session, start=p.start, end=p.end, group_by="day", source=source)
    days = pd.DataFrame({"day": [p.start + timedelta(days=i) for i in range(7)]})
    daily = days.merge(daily.drop(columns="name"), on="day", how="left")
    for column in ("reported", "dispatched", "handled", "closed", "returned", "overdue"):
        daily[column] = daily[column].fillna(0).astype("int64")
    daily = daily[["day", "reported", "dispatched", "handled", "closed", "returned", "overdue"]]
    streets = indicators(session, start=p.start, end=p.end, group_by="street", source=source)
    streets = streets[
        [
            "street",
            "name",
            "reported",
            "dispatched",
            "handled",
            "closed",
            "overdue",
            "disposal_rate",
            "on_time_disposal_rate",
        ]
    ]
    categories = indicators(session, start=p.start, end=p.end, group_by="category", source=source)
    categories = (
        categories.sort_values(["reported", "category"], ascending=[False, True])
        .head(10)[["category", "name", "reported", "dispatched", "closed", "disposal_rate"]]
        .reset_index(drop=True)
    )
    iso = monday.isocalendar()
    return Report(
        kind="weekly",
        title=f"周报 Weekly report {iso.year}-W{iso.week:02d} ({p.start} – {p.end})",
        period=p,
        totals=this,
        tables={
            "daily": daily,
            "summary": _summary_table(this, before, "this week", "previous week"),
            "streets": streets,
            "top categories": categories,
        },
        chart=daily.set_index("day")[["reported", "dispatched", "handled", "closed"]],
        chart_title="每日上报、派遣、回告、结案 (intake and handling per day)",
    )


def unit_ranking(session: Session, *, start: date, end: date, source: Source = "rollup") -> pd.DataFrame:
    """Units ranked by disposal rate over the period (单位处置率排名): `rank` then `indicators`.

    Units with no dispatch in the period have no disposal rate and are not ranked. Ties: more
    cases dispatched first, then the better on-time disposal rate, then the unit code.
    """
    units = indicators(session, start=start, end=end, group_by="unit", source=source)
    ranked = (
        units[units["dispatched"] > 0]
        .sort_values(
            ["disposal_rate", "dispatched", "on_time_disposal_rate", "unit"],
            ascending=[False, False, False, True],
            na_position="last",
        )
        .reset_index(drop=True)
    )
    ranked.insert(0, "rank", ranked.index + 1)
    return ranked


#: The monthly summary: the workflow's indicators, then satisfaction's (回访率, 满意率).
MONTHLY_SUMMARY = SUMMARY + ("callback_rate", "satisfaction_rate")


def _satisfaction_totals(session: Session, p: Period, series: pd.Series) -> pd.Series:
    (sat,) = satisfaction(session, start=p.start, end=p.end)
    return pd.concat(
        [series, pd.Series({n: sat[n] for n in ("callback_rate", "satisfaction_rate")}, dtype=object)]
    )


def monthly_ranking(session: Session, month: date, source: Source = "rollup") -> Report:
    """The monthly ranking (月度排名) of units by disposal rate for the month containing `month`
    (`unit_ranking`), with the month's totals against the previous month's, and streets; 回访率
    and 满意率 per unit, street and community; and the month per channel (来源: 12345 热线 …)."""
    first = month.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    p = period(first, last)
    ranked = unit_ranking(session, start=p.start, end=p.end, source=source)
    ranked = ranked[["rank", "unit", "name", *RANKING]]
    prev_last = first - timedelta(days=1)
    before_period = period(prev_last.replace(day=1), prev_last)
    this = _satisfaction_totals(session, p, totals(session, start=p.start, end=p.end, source=source))
    before = _satisfaction_totals(
        session,
        before_period,
        totals(session, start=before_period.start, end=before_period.end, source=source),
    )
    streets = indicators(session, start=p.start, end=p.end, group_by="street", source=source)[
        ["street", "name", "dispatched", "closed", "overdue", "disposal_rate", "on_time_closure_rate"]
    ]
    sat = functools.partial(satisfaction_frame, session, start=p.start, end=p.end)
    ranked = _with_satisfaction(ranked, sat(group_by="unit"), "unit")
    streets = _with_satisfaction(streets, sat(group_by="street"), "street")
    communities = sat(group_by="community")
    communities = communities[
        ["community", "name", *SATISFACTION_COUNTS, "callback_rate", "satisfaction_rate"]
    ]
    channels = _with_satisfaction(
        indicators(session, start=p.start, end=p.end, group_by="channel")[
            ["channel", "name", "reported", "dispatched", "closed", "overdue", "disposal_rate"]
        ],
        sat(group_by="channel"),
        "channel",
    )
    kinds = {code: kind for code, kind in session.execute(text("SELECT code, kind FROM unit"))}
    chart = ranked.set_index("name")[["rank", "unit", "dispatched", "disposal_rate"]].assign(
        kind=[kinds.get(code, "other") for code in ranked["unit"]]
    )
    return Report(
        kind="monthly",
        title=f"月度排名 Monthly ranking of units by disposal rate, {first:%Y-%m}",
        period=p,
        totals=this,
        tables={
            "ranking": ranked,
            "summary": _summary_table(this, before, "this month", "previous month", MONTHLY_SUMMARY),
            "streets": streets,
            "communities": communities.reset_index(drop=True),
            "channels": channels,
            # Community governance: the reception room's month, the quarter's public commitments.
            **community_figures.report_tables(session, p.start, p.end),
        },
        chart=chart,
        chart_title="处置率 = 结案数 ÷ 派遣数 (disposal rate = closed / dispatched)",
    )


# -- rendering helpers shared by the API and the CLI --------------------------------------------
def report_csv(report: Report, lang: ReportLang = "zh") -> str:
    """The main table of a report as CSV, headers in `lang` (UTF-8; the caller adds a BOM for
    Excel if wanted)."""
    table = _whole_counts(next(iter(report.tables.values())))
    return table.rename(columns=lambda c: column_label(str(c), lang)).to_csv(index=False)


def report_xlsx(report: Report, lang: ReportLang = "zh") -> bytes:
    """Every table of a report, one sheet each, as an .xlsx workbook (openpyxl), headers and
    sheet names in `lang`."""
    import io

    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for name, table in report.tables.items():
        sheet = book.create_sheet(title=table_label(name, lang)[:31])
        if name != "summary":  # the summary's rows mix counts and rates in one column
            table = _whole_counts(table)
        sheet.append([column_label(str(c), lang) for c in table.columns])
        for row in table.itertuples(index=False):
            sheet.append([_cell(v) for v in row])
        for i, column in enumerate(table.columns, start=1):
            if BY_NAME.get(str(column)) and BY_NAME[str(column)].kind == "rate":
                for cell in sheet[get_column_letter(i)][1:]:
                    cell.number_format = "0.00%"
        sheet.freeze_panes = "A2"
    meta = book.create_sheet(title=table_label("definitions", lang))
    meta.append([column_label(c, lang) for c in ("indicator", "指标", "formula")])
    for indicator in REPORT_INDICATORS:
        meta.append([indicator.name, indicator.name_zh, indicator.formula])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


@functools.cache
def _svg_text_as_text() -> None:
    """Keep text as text in SVG output (svg.fonttype "none": no glyph paths, the browser's CJK
    fonts draw it), measured with a CJK font when one is installed (run.sh installs Noto Sans
    CJK). matplotlib reads both only from rcParams, so they are set once per process, never
    changed per request: no rc_context racing between threads (nor warnings.catch_warnings,
    which is process-wide too)."""
    import warnings

    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", *matplotlib.rcParams["font.sans-serif"]]
    # Without a CJK font matplotlib warns about glyphs it only measures: the SVG keeps text as
    # text and the browser draws it with its own fonts.
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)


#: Unit kinds as the monthly chart groups them (单位类型).
UNIT_KINDS_ZH = {
    "bureau": "职能部门",
    "street_office": "街道办事处",
    "community_committee": "社区居委会",
    "property_company": "物业公司",
    "utility": "公用事业单位",
    "other": "其他",
}
# With more ranked units than this, the chart shows the top and the bottom and every unit by kind.
CHART_ALL_UNITS = 25
CHART_ENDS = 12
CHART_FONT = 11  # points: at the page's width the labels read at about 15 px


def report_svg(report: Report) -> str:
    """The report's chart as an inline SVG (matplotlib, text kept as text: no fonts embedded).

    Built on a `Figure` of its own (matplotlib's object API: no pyplot, no global rc state), so
    reports rendered at once in the server's threadpool do not share a figure or settings.
    """
    import io

    from matplotlib.backends.backend_svg import FigureCanvasSVG

    _svg_text_as_text()
    fig = _weekly_chart(report) if report.kind == "weekly" else _monthly_chart(report)
    buffer = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buffer)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: it goes inline in HTML


def _weekly_chart(report: Report) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    data = report.chart
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    labels = [f"{d:%m-%d} {'一二三四五六日'[d.weekday()]}" for d in data.index]
    width = 0.2
    for i, column in enumerate(data.columns):
        label = f"{COLUMN_LABELS_ZH.get(column, column)} {column}"
        ax.bar([x + (i - 1.5) * width for x in range(len(data))], data[column], width=width, label=label)
    ax.set_xticks(range(len(data)), labels)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers on the axis
    ax.legend(ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, fontsize=CHART_FONT)
    ax.set_ylabel("件 cases", fontsize=CHART_FONT)
    ax.tick_params(labelsize=CHART_FONT)
    ax.set_title(report.chart_title, loc="left", fontsize=CHART_FONT + 1, pad=28)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _monthly_chart(report: Report) -> Figure:
    """Units by disposal rate, ranked. Up to CHART_ALL_UNITS units: one bar each. More (a city has
    100+): the top and the bottom CHART_ENDS as bars with their rank, and every unit as a dot in
    its kind's row (grouped), so no label is smaller than CHART_FONT and none overlaps another."""
    from matplotlib.figure import Figure, SubFigure

    data = report.chart
    rates = data["disposal_rate"].astype("float64").fillna(0) * 100
    if len(data) <= CHART_ALL_UNITS:
        fig = Figure(figsize=(10, max(2.2, 0.32 * len(data) + 1.0)), layout="constrained")
        _ranked_bars(fig.add_subplot(), data, rates, report.chart_title)
        return fig
    kinds = data.get("kind", pd.Series("other", index=data.index))
    groups = [k for k in UNIT_KINDS_ZH if (kinds == k).any()]
    fig = Figure(figsize=(10, 0.32 * CHART_ENDS * 2 + 0.5 * len(groups) + 3.2), layout="constrained")
    panels = fig.subfigures(3, 1, height_ratios=[CHART_ENDS, CHART_ENDS, 1.5 * len(groups) + 2])
    assert not isinstance(panels, SubFigure)  # three rows: an array of SubFigures
    top, bottom, by_kind = (panels.flat[i] for i in range(3))
    n = len(data)
    _ranked_bars(
        top.add_subplot(),
        data.iloc[:CHART_ENDS],
        rates.iloc[:CHART_ENDS],
        f"前 {CHART_ENDS} 名 top {CHART_ENDS} of {n} units",
    )
    _ranked_bars(
        bottom.add_subplot(),
        data.iloc[-CHART_ENDS:],
        rates.iloc[-CHART_ENDS:],
        f"后 {CHART_ENDS} 名 bottom {CHART_ENDS} of {n} units",
    )
    ax = by_kind.add_subplot()
    for row, kind in enumerate(groups):
        values = rates[kinds == kind]
        # A small vertical spread keeps equal rates apart (deterministic: by rank).
        jitter = [((i % 5) - 2) * 0.07 for i in range(len(values))]
        ax.scatter(values, [row + j for j in jitter], s=22, alpha=0.75, color="#3b7dd8")
        ax.plot([values.median()] * 2, [row - 0.3, row + 0.3], color="#d6452b", linewidth=2)
    ax.set_yticks(range(len(groups)), [f"{UNIT_KINDS_ZH[k]} {k} ({int((kinds == k).sum())})" for k in groups])
    ax.invert_yaxis()
    ax.set_xlim(0, 102)
    ax.set_xlabel("处置率 disposal rate, %（红线：中位数 red: median）", fontsize=CHART_FONT)
    ax.tick_params(labelsize=CHART_FONT)
    ax.set_title(f"全部 {n} 个单位按类型 all units by kind", loc="left", fontsize=CHART_FONT + 1)
    ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(report.chart_title, x=0.01, ha="left", fontsize=CHART_FONT + 1)
    return fig


def _ranked_bars(ax: Axes, data: pd.DataFrame, rates: pd.Series, title: str) -> None:
    """Horizontal bars, best first, each labelled with its rank, name and rate."""
    ranks = data["rank"] if "rank" in data else pd.Series(range(1, len(data) + 1), index=data.index)
    ax.barh(range(len(data)), rates, color="#3b7dd8")
    ax.set_yticks(range(len(data)), [f"{int(r)}. {name}" for r, name in zip(ranks, data.index, strict=True)])
    for y, value in enumerate(rates):
        ax.text(value + 1, y, f"{value:.1f}%", va="center", fontsize=CHART_FONT)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xlabel("处置率 disposal rate, %", fontsize=CHART_FONT)
    ax.tick_params(labelsize=CHART_FONT)
    ax.set_title(title, loc="left", fontsize=CHART_FONT + 1)
    ax.spines[["top", "right"]].set_visible(False)


def rebuild_rollup(session: Session) -> int:
    """Recompute `stats_daily` and `stats_handling` from the whole event log (after a bulk
    load; unfolded deltas are dropped, the log has them); returns the rollup's row count."""
    return int(session.scalar(text("SELECT stats_daily_rebuild()")) or 0)


def fold_rollup(session: Session) -> int:
    """Fold the committed rollup deltas into `stats_daily` (each exactly once); returns how many.

    Returns 0 at once when another fold holds the lock. Readers add unfolded deltas anyway, so
    folding changes no figure: it keeps the delta table small and reads fast.
    """
    return int(session.scalar(text("SELECT stats_fold()")) or 0)


class RollupFolder:
    """The periodic fold: a daemon thread that folds every `interval_s` seconds until stopped.

    `sessions` is a context manager factory of committing sessions (`Store.transaction`).
    """

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]], interval_s: float = 2.0):
        self._sessions = sessions
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.folded = 0  # deltas folded
        self.batches = 0  # folds that moved any
        self.errors = 0

    def fold_once(self) -> int:
        """One fold in its own transaction."""
        with self._sessions() as session:
            moved = fold_rollup(session)
        self.folded += moved
        self.batches += moved > 0
        return moved

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.fold_once()
            except Exception:  # noqa: BLE001 - a failed fold loses nothing: the deltas stay
                self.errors += 1
                log.exception("folding the stats rollup failed; will retry")

    def start(self) -> RollupFolder:
        """Start folding in the background."""
        self._thread = threading.Thread(target=self._run, name="stats-fold", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current fold, then fold what is left once more."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.fold_once()
        except Exception:  # noqa: BLE001 - e.g. the database is away at shutdown: the deltas stay
            self.errors += 1
            log.exception("the last fold of the stats rollup failed; the next start folds it")
