"""What the desk pages show, shaped for the templates: names instead of codes, China time, forms.

The case itself comes from the read side (`geo/cases/views.py`) and what a person may do from the
access policy (`geo/access.py`, through `CaseView.allowed_actions`); this module only turns codes
into the words of the person's language and says which fields each action's form needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.i18n import ACTION_LABELS, CHANNEL_LABELS, REASONS, TIME_UNITS, Lang, calendar_notice, rule_text
from geo.cases.timelimits import WorkCalendar, extend_deadline
from geo.cases.views import CaseView, EventView
from geo.cases.work_calendar import calendar_status
from geo.cases.workflow import ACTIONS
from geo.stats import BY_NAME
from geo.store.models import AdminLog, Category, Unit

CHINA = ZoneInfo("Asia/Shanghai")
#: Actions whose form picks one unit, and the one that picks several (联办).
UNIT_ACTIONS = frozenset({"dispatch", "redispatch"})
#: Actions offered elsewhere on the case page than among the buttons (merge: by the duplicates).
NOT_A_BUTTON = frozenset({"merge"})


def china_time(at: datetime | None) -> str:
    """A time as people in the command centre read it (Asia/Shanghai), to the minute."""
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if at else ""


@dataclass
class Names:
    """Unit and category names by code (two small reads per page)."""

    units: dict[str, str]
    categories: dict[str, str]

    @classmethod
    def load(cls, session: Session, lang: Lang) -> Names:
        """All units and categories, named in this language (Chinese when no English name)."""
        units = {
            code: (name_en if lang == "en" and name_en else name)
            for code, name, name_en in session.execute(select(Unit.code, Unit.name, Unit.name_en))
        }
        categories = {
            code: (name_en if lang == "en" and name_en else name)
            for code, name, name_en in session.execute(select(Category.code, Category.name, Category.name_en))
        }
        return cls(units, categories)

    def unit(self, code: str | None) -> str:
        """A unit's name ('—' when none)."""
        return self.units.get(code or "", code or "—")

    def category(self, code: str) -> str:
        """A category's name."""
        return self.categories.get(code, code)


@dataclass
class ActionForm:
    """One button of the case page and the fields its form needs."""

    name: str
    label: str
    reasons: tuple[str, ...] = ()
    needs_reason: bool = False
    needs_unit: bool = False
    needs_units: bool = False
    needs_photos: bool = False
    needs_note: bool = False
    needs_location: bool = False
    preselected_unit: str | None = None
    extension: dict[str, str] | None = None


@dataclass
class CaseRow:
    """A case as a queue's row."""

    view: CaseView
    category: str
    grid: str
    community: str
    street: str
    unit: str
    routed_unit_code: str | None
    channel: str
    reported: str
    waiting: str
    thumbnail: str | None
    deadline: str
    deadline_iso: str | None
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _area_name(routing: dict | None, key: str, code: str | None) -> str:
    ref = (routing or {}).get(key)  # a router's decision names areas; older seeds keep codes only
    return str((ref.get("name") if isinstance(ref, dict) else None) or code or "—")


def waited(since: datetime, now: datetime, t: dict[str, str]) -> str:
    """How long something has waited, in days, hours or minutes."""
    minutes = int((now - since).total_seconds() // 60)
    if minutes >= 24 * 60:
        return f"{minutes // (24 * 60)} {t['days']}"
    if minutes >= 60:
        return f"{minutes // 60} {t['hours']}"
    return f"{max(minutes, 0)} {t['minutes']}"


def routed_unit(view: CaseView) -> str | None:
    """The unit routing suggested at intake."""
    unit = (view.routing or {}).get("primary_unit")
    return unit.get("code") if isinstance(unit, dict) else None


def row(view: CaseView, names: Names, lang: Lang, t: dict[str, str], now: datetime) -> CaseRow:
    """A queue's row for a case."""
    photo = next((p for p in view.photos if p.purpose == "report"), None)
    return CaseRow(
        view=view,
        category=names.category(view.category_code),
        grid=_area_name(view.routing, "grid", view.grid_code),
        community=_area_name(view.routing, "community", view.community_code),
        street=_area_name(view.routing, "street", view.street_code),
        unit=names.unit(view.unit_code),
        routed_unit_code=routed_unit(view) or view.unit_code,
        channel=CHANNEL_LABELS[lang].get(view.channel, view.channel),
        reported=china_time(view.reported_at),
        waiting=waited(view.reported_at, now, t),
        thumbnail=photo.url if photo else None,
        deadline=china_time(view.deadline_at),
        deadline_iso=view.deadline_at.isoformat() if view.deadline_at else None,
    )


def action_forms(
    view: CaseView, names: Names, lang: Lang, calendar: WorkCalendar, time_limit: tuple[float, str] | None
) -> list[ActionForm]:
    """The buttons of the actions this person may take now, each with the fields it needs."""
    forms = []
    for name in view.allowed_actions:
        if name in NOT_A_BUTTON:
            continue
        action = ACTIONS[name]
        form = ActionForm(
            name=name,
            label=ACTION_LABELS[lang].get(name, name),
            reasons=REASONS[lang].get(name, ()),
            needs_reason=action.needs_reason,
            needs_unit=name in UNIT_ACTIONS,
            needs_units=name == "join",
            needs_photos=action.needs_after_photo,
            needs_note=name in ("handle", "close_off", "check_pass"),
            needs_location=name == "place",
        )
        if form.needs_unit:
            suggested = routed_unit(view) or view.unit_code
            form.preselected_unit = (
                None if name == "redispatch" and suggested == view.unit_code else suggested
            )
        if name == "approve_extension" and view.deadline_at and time_limit:
            limit, unit = time_limit
            after = extend_deadline(view.deadline_at, limit, unit, calendar)
            form.extension = {
                "now": china_time(view.deadline_at),
                "after": china_time(after),
                "limit": f"{limit:g} {TIME_UNITS[lang].get(unit, unit)}",
            }
        forms.append(form)
    return forms


def timeline(events: list[EventView], names: Names, lang: Lang) -> list[dict[str, str]]:
    """The case's events as lines: when, what, who (and for which unit), the note."""
    return [
        {
            "at": china_time(e.at),
            "what": ACTION_LABELS[lang].get(e.action, e.action),
            "who": e.actor or "",
            "unit": names.unit(e.unit_code) if e.unit_code else "",
            # A report's note is the router's explanation in English; the page explains it in words.
            "note": "" if e.action == "report" and lang == "zh" else (e.note or ""),
            "to_state": e.to_state,
        }
        for e in events
    ]


def explanation(view: CaseView, lang: Lang) -> list[str]:
    """The routing decision's steps in this language."""
    decision = view.routing or {}
    return [rule_text(lang, step, decision) for step in decision.get("rules", []) if isinstance(step, dict)]


#: A unit desk's own figures, in the order shown (indicators of geo/stats.py).
UNIT_FIGURES = (
    "dispatched",
    "handled",
    "closed",
    "disposal_rate",
    "on_time_disposal_rate",
    "returned",
    "return_rate",
    "extended",
    "handling_hours_mean",
)
# Not the month's 超期数 (due in the month − closed on time): in a month still running it counts
# cases due later this month as overdue; the desk shows the cases overdue now instead.


def figure(value: Any, kind: str, t: dict[str, str]) -> str:
    """An indicator as people read it: counts as whole numbers, rates in percent, hours."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{float(value) * 100:.2f}%"
    if kind == "hours":
        return f"{float(value):.1f} {t['hours']}"
    return f"{int(value):,}"


def unit_figures(
    this: Mapping[str, Any], last: Mapping[str, Any], overdue_now: int, t: dict[str, str]
) -> list[dict[str, str]]:
    """The unit desk's table: one line per indicator, this month and last."""
    lines = [
        {
            "key": name,
            "label": t[f"fig_{name}"],
            "this": figure(this[name], BY_NAME[name].kind, t),
            "last": figure(last[name], BY_NAME[name].kind, t),
        }
        for name in UNIT_FIGURES
    ]
    lines.append(
        {"key": "overdue_now", "label": t["fig_overdue_now"], "this": f"{overdue_now:,}", "last": "—"}
    )
    return lines


def now_utc() -> datetime:
    """The time a page is drawn at."""
    return datetime.now(UTC)


def calendar_warning(request: Request, session: Session, lang: Lang) -> str | None:
    """The work calendar's warning for a page (from 60 days before it ends), or None."""
    return calendar_notice(lang, calendar_status(request.app.state.cases.calendar_for(session)))


@dataclass(frozen=True)
class AdminLogRow:
    """One admin log entry as the admin page shows it."""

    at: str
    actor: str
    via: str
    action: str
    subject: str
    before: str
    after: str


def _facts_text(facts: dict | None) -> str:
    if not facts:
        return "—"
    return "；".join(
        f"{key}={'、'.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in facts.items()
    )


def admin_log_row(entry: AdminLog) -> AdminLogRow:
    """What the page says of one change: when (China time), who, through what, before and after."""
    return AdminLogRow(
        china_time(entry.at),
        entry.actor,
        entry.via,
        entry.action,
        f"{entry.subject_kind} {entry.subject}",
        _facts_text(entry.before),
        _facts_text(entry.after),
    )
