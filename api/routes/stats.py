"""Indicators and reports: `GET /api/v1/stats`, `GET /reports/weekly`, `GET /reports/monthly`.

Who may read them: planners and command-centre staff (operator, dispatcher, admin), signed in with
a bearer token or, for the reports, the desks' page session (cookie `gridcase_desk`, api/web.py):
a browser without either is sent to the sign-in page and back. Unit handlers, inspectors and
residents get a 403 (a page in the browser): a ranking of units is for the centre. The
definitions live in geo/stats.py; this module only parses, checks and renders.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from api import web
from api.deps import SessionDep
from api.i18n import Lang
from api.params import MonthQuery, day_query, month_start, parse_day
from api.scaling import ReadSessionDep
from api.security import ActorDep, oauth2, token_actor
from geo import access, stats, web_sessions
from geo.accounts import Actor, AuthenticationFailed
from geo.community import figures as community_figures
from geo.errors import InvalidInput

router = APIRouter(tags=["stats"])
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "reports"),
    autoescape=select_autoescape(["html"]),
)


def _may_read(actor: Actor) -> None:
    access.require(actor, access.Sight.statistics)


def report_reader(
    request: Request, session: SessionDep, token: Annotated[str | None, Depends(oauth2)]
) -> Actor:
    """Who reads a report: a bearer token, else the desks' page session (a browser).

    A browser (it asks for HTML) without a session goes to the sign-in page and comes back; a
    signed-in person the policy refuses sees a 403 page. API clients keep their JSON answers.
    """
    cookie = request.cookies.get(web.COOKIE)
    if token or not cookie:
        if not token and "text/html" in request.headers.get("accept", ""):
            raise web.SignInNeeded
        return token_actor(request, session, token)
    try:
        actor = web_sessions.resume(session, cookie).actor
    except AuthenticationFailed:
        raise web.SignInNeeded from None
    if not access.may(actor, access.Sight.statistics):
        raise web.PageRefusal(403, "err_403")
    return actor


ReaderDep = Annotated[Actor, Depends(report_reader)]
LangQuery = Annotated[Lang, Query(description="headers and labels: zh (default) or en")]


FORMATS = {
    "html": "text/html",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The choices are published in the document and checked by `_format`, which names the parameter.
FormatQuery = Annotated[
    str, Query(description="html, csv or xlsx", json_schema_extra={"enum": list(FORMATS)})
]
#: The report in each format, as the OpenAPI document says.
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the report", "content": {media: {} for media in FORMATS.values()}},
    303: {"description": "a browser (Accept: text/html) not signed in: to the desks' sign-in page and back"},
}


def _format(value: str) -> str:
    if value not in FORMATS:
        raise InvalidInput(f"format must be html, csv or xlsx, not {value!r}", field="format")
    return value


def _today() -> date:
    return datetime.now(stats.CHINA).date()


def _plain(value: Any) -> Any:
    """JSON-safe scalars: numpy to Python, NaN to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


class IndicatorDefinition(BaseModel):
    """How one indicator is computed."""

    name: str
    name_zh: str
    kind: str
    formula: str


class StatsOut(BaseModel):
    """Indicators of a period, in total and per group."""

    start: date
    end: date
    group_by: str | None
    totals: dict[str, float | int | None]
    groups: list[dict[str, Any]]
    definitions: list[IndicatorDefinition]


#: Only the cases of one channel (来源): where reports came from.
ChannelQuery = Annotated[
    str | None,
    Query(
        description="only the cases reported through this channel (来源): inspector (网格员), resident "
        "(市民), hotline_12345 (12345 热线), video_patrol, referral; counted on the raw event log",
        json_schema_extra={"enum": list(stats.CHANNEL_NAMES_ZH)},
    ),
]

# The period of an indicator query: China-time days, both included.
FirstDay = Annotated[str | None, day_query("first day (default: the first of this month)", alias="from")]
LastDay = Annotated[str | None, day_query("last day, included (default: today)", alias="to")]


@router.get("/api/v1/stats", response_model=StatsOut)
def get_stats(
    session: ReadSessionDep,
    actor: ActorDep,
    start: FirstDay = None,
    end: LastDay = None,
    group_by: Annotated[
        str | None,
        Query(
            description="unit, street, community, grid, inspector, category, channel (来源, with "
            "its name in words) or day",
            json_schema_extra={"enum": [*stats.GROUPS, *stats.CASE_GROUPS, "day"]},
        ),
    ] = None,
    channel: ChannelQuery = None,
) -> StatsOut:
    """Every indicator for the days from `from` to `to` (China time, both included), of every
    channel's cases or of one `channel`'s."""
    _may_read(actor)
    today = _today()
    first = parse_day(start, "from", today.replace(day=1))
    last = parse_day(end, "to", today)
    group = group_by or None
    only = channel or None
    if group is not None and group not in stats.GROUPS + stats.CASE_GROUPS + ("day",):
        choices = ", ".join(stats.GROUPS + stats.CASE_GROUPS)
        raise InvalidInput(
            f"group_by must be one of {choices}, day or empty, not {group!r}", field="group_by"
        )
    stats.check_channel(only)
    stats.period(first, last)
    total = stats.totals(session, start=first, end=last, channel=only)
    groups = (
        []
        if group is None
        else [
            {k: _plain(v) for k, v in row.items()}
            for row in stats.indicators(session, start=first, end=last, group_by=group, channel=only).to_dict(
                orient="records"
            )
        ]
    )
    return StatsOut(
        start=first,
        end=last,
        group_by=group,
        totals={k: _plain(v) for k, v in total.items()},
        groups=groups,
        definitions=[
            IndicatorDefinition(name=i.name, name_zh=i.name_zh, kind=i.kind, formula=i.formula)
            for i in stats.INDICATORS
        ],
    )


class SatisfactionOut(StatsOut):
    """回访率 and 满意率 of the cases closed in a period, in total and per group."""


@router.get("/api/v1/stats/satisfaction", response_model=SatisfactionOut)
def get_satisfaction(
    session: ReadSessionDep,
    actor: ActorDep,
    start: FirstDay = None,
    end: LastDay = None,
    group_by: Annotated[
        str | None,
        Query(
            description="unit, street, community, month or channel (来源)",
            json_schema_extra={"enum": list(stats.SATISFACTION_GROUPS)},
        ),
    ] = None,
    channel: ChannelQuery = None,
) -> SatisfactionOut:
    """Callback and satisfaction rates (回访率, 满意率) of the cases closed from `from` to `to`, of
    every channel's cases or of one `channel`'s."""
    _may_read(actor)
    today = _today()
    first = parse_day(start, "from", today.replace(day=1))
    last = parse_day(end, "to", today)
    group = group_by or None
    only = channel or None
    (total,) = stats.satisfaction(session, start=first, end=last, channel=only)
    groups = (
        []
        if group is None
        else stats.satisfaction(session, start=first, end=last, group_by=group, channel=only)
    )
    return SatisfactionOut(
        start=first,
        end=last,
        group_by=group,
        totals={k: v for k, v in total.items() if isinstance(v, int | float) or v is None},
        groups=groups,
        definitions=[
            IndicatorDefinition(name=i.name, name_zh=i.name_zh, kind=i.kind, formula=i.formula)
            for i in stats.SATISFACTION_INDICATORS
        ],
    )


# -- reports ------------------------------------------------------------------------------------
def _fmt(column: str, value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "–"
    indicator = stats.BY_NAME.get(column)
    counted = column in stats.AUXILIARY or column in stats.SATISFACTION_COUNTS
    kind = indicator.kind if indicator is not None else "count" if counted else None
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind == "count":
        return f"{int(value):,}"  # a count is a whole number, however pandas stored it
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _fmt_summary(row: dict[str, Any], column: str) -> str:
    # In the summary table each row is one indicator: format by the row's indicator.
    return _fmt(row["indicator"], row[column])


def render_report_html(report: stats.Report, lang: Lang = "zh") -> str:
    """The report as one self-contained HTML page: tables and an inline SVG chart, no script;
    headers in Chinese first (the column's code under it), English with `lang="en"`."""
    tables = []
    for name, frame in report.tables.items():
        records = frame.to_dict(orient="records")
        columns = [str(c) for c in frame.columns]
        labels = [(stats.column_label(c, "zh"), c) if lang == "zh" else (c, "") for c in columns]
        if name == "summary":
            rows = [
                [r["indicator"], r["指标"], *(_fmt_summary(r, c) for c in columns[2:4]), r["formula"]]
                for r in records
            ]
        else:
            rows = [[_fmt(c, r[c]) for c in columns] for r in records]
        tables.append(
            {
                "name": name,
                "label": stats.table_label(name, lang),
                "columns": columns,
                "labels": labels,
                "rows": rows,
            }
        )
    return TEMPLATES.get_template("report.html").render(
        report=report,
        tables=tables,
        chart=stats.report_svg(report),
        definitions=stats.REPORT_INDICATORS,
        lang=lang,
        other_lang="en" if lang == "zh" else "zh",
    )


def report_response(report: stats.Report, fmt: str, stem: str, lang: Lang = "zh") -> Response:
    """The report as HTML, CSV (main table, UTF-8 with BOM for Excel) or XLSX."""
    if fmt == "csv":
        return Response(
            "\ufeff" + stats.report_csv(report, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            stats.report_xlsx(report, lang),
            media_type=FORMATS["xlsx"],
            headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'},
        )
    return HTMLResponse(render_report_html(report, lang))


@router.get("/reports/weekly", response_class=HTMLResponse, responses=REPORT_RESPONSES)
def weekly(
    session: ReadSessionDep,
    actor: ReaderDep,
    week: Annotated[str | None, day_query("any day of the week (default: today)")] = None,
    format: FormatQuery = "html",
    lang: LangQuery = "zh",
) -> Response:
    """The weekly report (周报): intake and handling per day, streets, categories."""
    _may_read(actor)
    fmt = _format(format)
    day = parse_day(week, "week", _today())
    report = stats.weekly_report(session, day)
    return report_response(report, fmt, f"weekly-{report.period.start}", lang)


@router.get("/reports/monthly", response_class=HTMLResponse, responses=REPORT_RESPONSES)
def monthly(
    session: ReadSessionDep,
    actor: ReaderDep,
    month: MonthQuery = None,
    format: FormatQuery = "html",
    lang: LangQuery = "zh",
) -> Response:
    """The monthly ranking (月度排名) of units by disposal rate."""
    _may_read(actor)
    fmt = _format(format)
    first = month_start(month, _today().replace(day=1))
    report = stats.monthly_ranking(session, first)
    community_figures.add_to_report(report, session, first)  # 社区治理 (issue 16)
    return report_response(report, fmt, f"monthly-{first:%Y-%m}", lang)
