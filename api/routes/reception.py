"""The reception room (会客室): `/api/v1/reception/...` and the member on duty's pages `/desk/reception`.

Registering, following and answering are `geo/community/reception.py`; who may do what is the one
policy (`geo.access.CommunityWork`). The duty chief's desk loads the overdue card from here, and
the big screen polls `/api/v1/reception/overdue` (the screen's key, no names).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import SessionDep
from api.desk_pages import china_time
from api.params import day_query, parse_day
from api.routes.desk import _category_groups
from api.screen import ScreenDep
from api.security import ActorDep
from api.templating import templates
from api.web import DeskUser, PageRefusal, PostingUser, lang_of, page
from geo import access
from geo.access import CommunityWork as W
from geo.cases.views import BIGINT_MAX
from geo.community import reception
from geo.community import register_figures as figures
from geo.community.areas_named import Places
from geo.community.reception import RequestIn, RequestView
from geo.errors import ActionForbidden, InvalidInput
from geo.store.models import Unit

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
# The desks' header lists the community pages a person works (api/templates/desk/base.html).
templates.env.globals["community_pages"] = access.community_desks

Kind = Literal["consultation", "help", "complaint", "dispute", "suggestion"]
ListName = Literal["open", "overdue", "answered", "all"]
Level = Literal["compound", "community", "street", "city"]


# -- the API ---------------------------------------------------------------------------------------
class RequestCreate(BaseModel):
    """A walk-in request as the member on duty registers it."""

    community_code: str = Field(max_length=32, description="the community (社区) code")
    compound_code: str | None = Field(None, max_length=32, description="a compound (小区) of that community")
    kind: Kind = Field(
        description="sets the due date: consultation 1, help 3, complaint and dispute 5, "
        "suggestion 10 working days"
    )
    asked: str = Field(max_length=2000, description="what the visitor asked")
    visitor: str = Field("", max_length=200, description="who came (optional, never public)")
    visitor_contact: str | None = Field(
        None, max_length=64, description="how to reach them (optional, never public)"
    )
    received_at: datetime | None = Field(None, description="when they came (default: now)")


class FollowOut(BaseModel):
    """One follow-up step."""

    at: datetime
    by: str
    kind: str
    note: str


class RequestOut(BaseModel):
    """A request of the register; visitor and contact only for the register's keepers."""

    id: int
    reference: str
    community_code: str
    community: str
    compound_code: str | None
    compound: str
    kind: str
    asked: str
    received_at: datetime
    due_at: datetime
    state: str
    overdue: bool
    answered_at: datetime | None
    answer: str
    answered_on_time: bool | None
    referred_unit: str | None
    case_tracking_code: str | None
    taken_by: str
    visitor: str | None = None
    visitor_contact: str | None = None
    follows: list[FollowOut] = []


class RequestList(BaseModel):
    """A page of the register and how many match."""

    total: int
    items: list[RequestOut]


class NoteIn(BaseModel):
    note: str = Field(max_length=2000)


class ReferIn(BaseModel):
    unit_code: str = Field(max_length=32)
    note: str = Field("", max_length=2000)


class CaseIn(BaseModel):
    category: str = Field(max_length=16, description="the catalogue subclass code, e.g. E0102")


class AnswerIn(BaseModel):
    answer: str = Field(max_length=2000)


class OverdueItem(BaseModel):
    """An overdue request as the big screen shows it: no names, no contacts, no words of the visitor."""

    reference: str
    community: str
    compound: str
    kind: str
    due_at: datetime
    days_overdue: int


class OverdueOut(BaseModel):
    overdue: int
    items: list[OverdueItem]


class ReceptionFigure(BaseModel):
    level: str
    code: str | None
    name: str
    registered: int
    answered: int
    answered_on_time: int
    overdue: int
    share_answered: float | None
    share_answered_on_time: float | None


def _out(view: RequestView) -> RequestOut:
    return RequestOut.model_validate(view, from_attributes=True)


@router.post("/api/v1/reception/requests", status_code=201, response_model=RequestOut, tags=["reception"])
def register_request(body: RequestCreate, actor: ActorDep, session: SessionDep) -> RequestOut:
    """Register a walk-in request (来访登记); its due date comes from its kind and the work calendar."""
    row = reception.register(session, actor, RequestIn(**body.model_dump()))
    return _out(reception.get_request(session, actor, row.id))


@router.get("/api/v1/reception/requests", response_model=RequestList, tags=["reception"])
def list_requests(
    actor: ActorDep,
    session: SessionDep,
    list: Annotated[ListName, Query(description="open, overdue, answered or all")] = "open",
    community: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> RequestList:
    """The register; the duty chief (an operator) reads only what is overdue, without who came."""
    total, rows = reception.list_requests(session, actor, list, community_code=community, limit=limit)
    return RequestList(total=total, items=[_out(r) for r in rows])


@router.get("/api/v1/reception/requests/{request_id}", response_model=RequestOut, tags=["reception"])
def get_request(request_id: RowId, actor: ActorDep, session: SessionDep) -> RequestOut:
    """One request with its follow-up."""
    return _out(reception.get_request(session, actor, request_id))


@router.post("/api/v1/reception/requests/{request_id}/notes", response_model=RequestOut, tags=["reception"])
def note_request(request_id: RowId, body: NoteIn, actor: ActorDep, session: SessionDep) -> RequestOut:
    """Write down how the request is followed (跟进)."""
    reception.add_note(session, actor, request_id, body.note)
    return _out(reception.get_request(session, actor, request_id))


@router.post(
    "/api/v1/reception/requests/{request_id}/referral", response_model=RequestOut, tags=["reception"]
)
def refer_request(request_id: RowId, body: ReferIn, actor: ActorDep, session: SessionDep) -> RequestOut:
    """Refer the request to a unit (转办); it still needs its answer."""
    reception.refer(session, actor, request_id, body.unit_code, body.note)
    return _out(reception.get_request(session, actor, request_id))


@router.post("/api/v1/reception/requests/{request_id}/case", response_model=RequestOut, tags=["reception"])
def request_to_case(
    request_id: RowId, body: CaseIn, actor: ActorDep, session: SessionDep, request: Request
) -> RequestOut:
    """Turn the request into a case at its compound, routed as usual (转为案件)."""
    reception.to_case(session, request.app.state.cases, actor, request_id, body.category)
    return _out(reception.get_request(session, actor, request_id))


@router.post("/api/v1/reception/requests/{request_id}/answer", response_model=RequestOut, tags=["reception"])
def answer_request(request_id: RowId, body: AnswerIn, actor: ActorDep, session: SessionDep) -> RequestOut:
    """Record the answer (答复): the request is done and stays in the register for good."""
    reception.answer(session, actor, request_id, body.answer)
    return _out(reception.get_request(session, actor, request_id))


def _overdue_items(session: SessionDep, limit: int, lang: str) -> OverdueOut:
    now = datetime.now(UTC)
    total, rows = reception.overdue_summary(session, now, limit=limit, lang=lang)
    return OverdueOut(
        overdue=total,
        items=[
            OverdueItem(
                reference=r.reference,
                community=r.community,
                compound=r.compound,
                kind=r.kind,
                due_at=r.due_at,
                days_overdue=days_overdue(r.due_at, now),
            )
            for r in rows
        ],
    )


@router.get(
    "/api/v1/reception/overdue", response_model=OverdueOut, tags=["reception"], dependencies=[ScreenDep]
)
def overdue_feed(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=20)] = 4,
    lang: Annotated[Literal["zh", "en"], Query()] = "zh",
) -> OverdueOut:
    """The big screen's block: how many requests are unanswered past due, the longest first."""
    return _overdue_items(session, limit, lang)


@router.get("/api/v1/stats/reception", response_model=list[ReceptionFigure], tags=["stats"])
def reception_stats(
    actor: ActorDep,
    session: SessionDep,
    level: Annotated[Level, Query(description="compound, community, street or city")] = "community",
    start: Annotated[
        str | None, day_query("first day (default: the first of this month)", alias="from")
    ] = None,
    end: Annotated[str | None, day_query("last day, included (default: today)", alias="to")] = None,
) -> list[ReceptionFigure]:
    """Requests registered, answered, answered within due, overdue, and the shares, per area."""
    if not access.may_read_register_figures(actor):
        raise ActionForbidden(f"role {actor.role.value} may not read statistics", field="authorization")
    today = datetime.now(reception.CHINA).date()
    first = parse_day(start, "from", today.replace(day=1))
    last = parse_day(end, "to", today)
    rows = figures.reception_figures(session, first, last, level)
    return [ReceptionFigure.model_validate(r, from_attributes=True) for r in rows]


# -- the pages -------------------------------------------------------------------------------------
def _require(user: DeskUser, work: W) -> None:
    if not access.may_do_community(user.actor, work):
        raise PageRefusal(403, "err_403", facts={"desk": "reception"})


def _form_choices(session: SessionDep) -> dict[str, Any]:
    places = Places.load(session)
    units = session.execute(select(Unit.code, Unit.name).order_by(Unit.name)).all()
    return {"communities": places.of_level("community"), "units": units, "places": places}


@router.get("/desk/reception", response_class=HTMLResponse, include_in_schema=False)
def register_page(
    request: Request,
    user: DeskUser,
    session: SessionDep,
    list: ListName = "open",
    registered: str | None = None,
) -> Response:
    """The register of the member on duty: a form for the next visitor, and the list."""
    _require(user, W.read_register)
    lang = lang_of(request)
    now = datetime.now(UTC)
    counts = {
        name: reception.list_requests(session, user.actor, name, now=now, limit=1)[0]
        for name in reception.LISTS
    }
    _, rows = reception.list_requests(session, user.actor, list, now=now, lang=lang)
    return page(
        request,
        "reception/register.html",
        user,
        active_page="reception",
        which=list,
        counts=counts,
        rows=rows,
        kinds=reception.DUE_WORKING_DAYS,
        registered=registered,
        when=china_time,
        **_form_choices(session),
    )


@router.get("/desk/reception/compounds", response_class=HTMLResponse, include_in_schema=False)
def compound_options(
    request: Request, user: DeskUser, session: SessionDep, community_code: str = ""
) -> Response:
    """The compounds of a community, as the options of the form's second drop-down (htmx)."""
    _require(user, W.register_request)
    compounds = Places.load(session).compounds_of(community_code)
    return page(request, "reception/_compounds.html", user, compounds=compounds)


@router.post("/desk/reception", include_in_schema=False)
def register_from_page(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    community_code: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    asked: Annotated[str, Form()] = "",
    compound_code: Annotated[str, Form()] = "",
    visitor: Annotated[str, Form(max_length=200)] = "",
    visitor_contact: Annotated[str, Form()] = "",
    received_at: Annotated[str, Form()] = "",
) -> Response:
    """Register the visitor's request (a visit written down later gets its own time), then show it."""
    came = None
    if received_at:
        try:
            came = datetime.fromisoformat(received_at).replace(tzinfo=reception.CHINA)
        except ValueError:
            raise InvalidInput(
                f"received_at must be a date and time, not {received_at!r}", field="received_at"
            ) from None
    row = reception.register(
        session,
        user.actor,
        RequestIn(community_code, kind, asked, compound_code or None, visitor, visitor_contact or None, came),
    )
    return RedirectResponse(f"/desk/reception/{row.id}?lang={lang_of(request)}&registered=1", status_code=303)


@router.get("/desk/reception/overdue-card", response_class=HTMLResponse, include_in_schema=False)
def overdue_card(request: Request, user: DeskUser, session: SessionDep) -> Response:
    """The duty chief's card: requests unanswered past due (loaded into the chief's desk)."""
    if not access.may_do_community(user.actor, W.watch_overdue):
        raise PageRefusal(403, "err_403", facts={"desk": "chief"})
    now = datetime.now(UTC)
    total, rows = reception.list_requests(
        session, user.actor, "overdue", now=now, lang=lang_of(request), limit=50
    )
    return page(
        request, "reception/_overdue_card.html", user, total=total, rows=rows, now=now, when=china_time
    )


@router.get("/desk/reception/{request_id}", response_class=HTMLResponse, include_in_schema=False)
def request_page(
    request: Request, request_id: RowId, user: DeskUser, session: SessionDep, registered: str | None = None
) -> Response:
    """One request: what was asked, its follow-up, and the forms to follow and answer it."""
    _require(user, W.read_register)
    lang = lang_of(request)
    view = reception.get_request(session, user.actor, request_id, lang=lang)
    return page(
        request,
        "reception/request.html",
        user,
        active_page="reception",
        r=view,
        registered=registered,
        when=china_time,
        now_utc=datetime.now(UTC),
        category_groups=_category_groups(session, lang),
        **_form_choices(session),
    )


Step = Literal["note", "refer", "case", "answer"]


@router.post("/desk/reception/{request_id}/{step}", include_in_schema=False)
def follow_from_page(
    request: Request,
    request_id: RowId,
    step: Step,
    user: PostingUser,
    session: SessionDep,
    note: Annotated[str, Form()] = "",
    unit_code: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    answer: Annotated[str, Form()] = "",
) -> Response:
    """A follow-up step from the request's page: a note, a referral, a case, or the answer."""
    if step == "note":
        reception.add_note(session, user.actor, request_id, note)
    elif step == "refer":
        reception.refer(session, user.actor, request_id, unit_code, note)
    elif step == "case":
        reception.to_case(session, request.app.state.cases, user.actor, request_id, category)
    else:
        reception.answer(session, user.actor, request_id, answer)
    back = "/desk/reception" if step == "answer" else f"/desk/reception/{request_id}"
    return RedirectResponse(f"{back}?lang={lang_of(request)}", status_code=303)


def days_overdue(due: datetime, now: datetime) -> int:
    """Whole days past due, counting a started day (for the lists)."""
    late = now - due
    return max(1, late.days + (1 if late.seconds else 0))


templates.env.globals["days_overdue"] = days_overdue
