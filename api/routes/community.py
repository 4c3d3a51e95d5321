"""Community governance (社区治理): the API under /api/v1/community and the workstation pages under
/desk/community (the community's staff and a compound's branch secretary). Thin: the domain is
geo/community/, who may see and do what is `geo.access` (its community part)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import community_schemas as s
from api.deps import SessionDep
from api.inputs import check_text
from api.params import MonthQuery, month_start
from api.routes.public import category_choices
from api.screen import ScreenDep
from api.security import ActorDep
from api.web import DeskUser, PostingUser, lang_of, page, require_desk
from geo import access
from geo.access import CommunityAction, Desk, Seat
from geo.accounts import Actor
from geo.cases.service import CaseContext
from geo.cases.views import BIGINT_MAX, MAX_PAGE
from geo.community import agenda, figures, lists, people, round_tables, views
from geo.community.models import GovernanceItem
from geo.errors import InvalidInput

CHINA = ZoneInfo("Asia/Shanghai")


async def form_text(request: Request) -> None:
    """Every form field of these routes: only text PostgreSQL can store (no NUL), named if not."""
    if request.method == "POST" and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        check_text({k: v for k, v in form.multi_items() if isinstance(v, str)})


api = APIRouter(prefix="/api/v1/community", tags=["community"], dependencies=[Depends(form_text)])
pages = APIRouter(prefix="/desk/community", include_in_schema=False, dependencies=[Depends(form_text)])
router = APIRouter()

ItemId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
MeetingId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CompoundCode = Annotated[str, Path(min_length=16, max_length=16, pattern=r"^[0-9]{12}C[0-9]{3}$")]
AreaQuery = Annotated[str | None, Query(min_length=12, max_length=32, pattern=r"^[0-9]{12}(C[0-9]{3})?$")]


def today() -> date:
    """Today in China (due dates and overdue are counted on China's days)."""
    return datetime.now(CHINA).date()


def _ctx(request: Request) -> CaseContext:
    return request.app.state.cases


def _item_out(session: Session, items: list[GovernanceItem]) -> list[s.ItemOut]:
    return [s.ItemOut(**asdict(v)) for v in views.describe(session, items, today())]


def _meeting_out(session: Session, meeting: Any) -> s.MeetingOut:
    view = views.meeting_view(session, meeting, today())
    data = asdict(view)
    for row in data["agenda"]:
        row.pop("open_cases", None)
    return s.MeetingOut(**data)


def _claimer(
    kind: str | None, unit: int | None, member: int | None, compound: str | None
) -> lists.Claimer | None:
    if kind is None:
        return None
    return lists.Claimer(kind, unit_id=unit, member_id=member, compound_code=compound)


# -- the API ----------------------------------------------------------------------------------------
@api.get("/items", response_model=s.ItemList)
def list_items(
    session: SessionDep,
    actor: ActorDep,
    list_name: Annotated[s.ListName | None, Query(alias="list")] = None,
    area: AreaQuery = None,
    kind: s.Kind | None = None,
    state: Literal["open", "claimed", "closed"] | None = None,
    overdue: bool | None = None,
    level: Literal["compound", "community"] | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> s.ItemList:
    """The demand list, the resource list and small wishes this person reads, with filters."""
    seat = people.seat_of(session, actor)
    access.require_community(actor, seat, CommunityAction.read)
    compound = area if area and len(area) > 12 else None
    community = area if area and len(area) == 12 else None
    f = lists.ItemFilter(list_name, community, compound, kind, state, overdue, level, q, page_no, page_size)
    total, rows = lists.search(session, actor, seat, f, today())
    return s.ItemList(total=total, page=page_no, page_size=page_size, items=_item_out(session, rows))


@api.post("/items", response_model=s.ItemOut, status_code=201)
def create_item(session: SessionDep, actor: ActorDep, body: s.ItemIn) -> s.ItemOut:
    """Raise a demand or a small wish for a compound, or offer a resource to a community."""
    seat = people.seat_of(session, actor)
    item = lists.raise_item(
        session,
        actor,
        seat,
        body.list,
        body.area,
        body.kind,
        body.title,
        body.description,
        body.raised_by,
        body.due_on,
        body.offered_by,
    )
    return _item_out(session, [item])[0]


def _detail(session: Session, item: GovernanceItem) -> s.ItemDetail:
    history = [
        s.NoteOut(at=n.at.isoformat(), by=n.by, kind=n.kind, text=n.text, photo_key=n.photo_key)
        for n in lists.history(session, item)
    ]
    matches = lists.matches(session, item) if item.list == "demand" else []
    return s.ItemDetail(
        item=_item_out(session, [item])[0], history=history, matches=_item_out(session, matches)
    )


@api.get("/items/{item_id}", response_model=s.ItemDetail)
def get_item(session: SessionDep, actor: ActorDep, item_id: ItemId) -> s.ItemDetail:
    """An item with its history (raise, claim, progress, close off) and matching resources."""
    return _detail(session, lists.get_item(session, actor, people.seat_of(session, actor), item_id))


@api.post("/items/{item_id}/claim", response_model=s.ItemOut)
def claim_item(session: SessionDep, actor: ActorDep, item_id: ItemId, body: s.ClaimIn) -> s.ItemOut:
    """Record a claim (认领/领办) by a co-building unit, a registered member or a compound's branch."""
    seat = people.seat_of(session, actor)
    item = lists.get_item(session, actor, seat, item_id)
    claimer = _claimer(body.claimer, body.unit, body.member, body.compound)
    assert claimer is not None
    lists.claim(session, actor, seat, item, claimer, body.due_on, body.resource, body.note)
    return _item_out(session, [item])[0]


@api.post("/items/{item_id}/notes", response_model=s.ItemDetail)
def note_item(session: SessionDep, actor: ActorDep, item_id: ItemId, body: s.NoteIn) -> s.ItemDetail:
    """A progress note (进展)."""
    seat = people.seat_of(session, actor)
    item = lists.get_item(session, actor, seat, item_id)
    lists.add_progress(session, actor, seat, item, body.text)
    return _detail(session, item)


@api.post("/items/{item_id}/close-off", response_model=s.ItemOut)
def close_off_item(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    item_id: ItemId,
    note: Annotated[str, Form(max_length=2000)] = "",
    photo: Annotated[UploadFile | None, File(description="evidence: a photo (JPEG, PNG, WebP, HEIC)")] = None,
) -> s.ItemOut:
    """Close the item off (销号) with a photo, a note or both."""
    seat = people.seat_of(session, actor)
    item = lists.get_item(session, actor, seat, item_id)
    data = photo.file.read() if photo is not None and photo.filename else None
    ctx = _ctx(request)
    lists.close_off(session, ctx.blobs, actor, seat, item, note, data, limits=ctx.photo_limits)
    return _item_out(session, [item])[0]


@api.get("/round-tables", response_model=list[s.MeetingSummary])
def list_meetings(session: SessionDep, actor: ActorDep, area: AreaQuery = None) -> list[s.MeetingSummary]:
    """The round tables this person reads, newest first."""
    seat = people.seat_of(session, actor)
    access.require_community(actor, seat, CommunityAction.read)
    return [
        s.MeetingSummary(
            id=m.id, level=m.level, area_code=m.area_code, held_on=m.held_on, chair=m.chair, state=m.state
        )
        for m in round_tables.meetings(session, actor, seat, area)
    ]


@api.get("/round-tables/proposal", response_model=list[s.ProposalOut])
def proposal(
    session: SessionDep,
    actor: ActorDep,
    area: Annotated[str, Query(min_length=12, max_length=32, pattern=r"^[0-9]{12}(C[0-9]{3})?$")],
    on: date,
) -> list[s.ProposalOut]:
    """The agenda gridcase would propose for a round table of this compound or community on this day."""
    seat = people.seat_of(session, actor)
    where = people.place(session, area, field="area")
    compound = where.code if where.level == "compound" else None
    access.require_community(actor, seat, CommunityAction.read, where.community_code, compound)
    return [
        s.ProposalOut(
            source=p.source,
            title=p.title,
            item_id=p.item_id,
            case_ids=p.case_ids,
            category_code=p.category_code,
        )
        for p in agenda.propose(session, where.level, where.code, on)
    ]


@api.post("/round-tables", response_model=s.MeetingOut, status_code=201)
def create_meeting(session: SessionDep, actor: ActorDep, body: s.MeetingIn) -> s.MeetingOut:
    """Prepare a round table: its agenda is proposed from what is open there."""
    seat = people.seat_of(session, actor)
    meeting = round_tables.prepare(session, actor, seat, body.area, body.held_on, body.chair, body.attendees)
    return _meeting_out(session, meeting)


@api.get("/round-tables/{meeting_id}", response_model=s.MeetingOut)
def get_meeting(session: SessionDep, actor: ActorDep, meeting_id: MeetingId) -> s.MeetingOut:
    """A round table and its agenda."""
    return _meeting_out(
        session, round_tables.get_meeting(session, actor, people.seat_of(session, actor), meeting_id)
    )


@api.post("/round-tables/{meeting_id}/record", response_model=s.MeetingOut)
def record_meeting(
    session: SessionDep, actor: ActorDep, meeting_id: MeetingId, body: s.RecordIn
) -> s.MeetingOut:
    """Record the chair, the attendees by party, the minutes, and that it was held."""
    seat = people.seat_of(session, actor)
    meeting = round_tables.get_meeting(session, actor, seat, meeting_id)
    round_tables.record(
        session,
        actor,
        seat,
        meeting,
        chair=body.chair,
        attendees=body.attendees,
        minutes=body.minutes,
        held=body.held,
    )
    return _meeting_out(session, meeting)


@api.post("/round-tables/{meeting_id}/agenda", response_model=s.MeetingOut)
def add_agenda_item(
    session: SessionDep, actor: ActorDep, meeting_id: MeetingId, body: s.AddIn
) -> s.MeetingOut:
    """Put one more item of the lists on the agenda."""
    seat = people.seat_of(session, actor)
    meeting = round_tables.get_meeting(session, actor, seat, meeting_id)
    round_tables.add_to_agenda(session, actor, seat, meeting, body.item)
    return _meeting_out(session, meeting)


@api.post("/agenda-items/{agenda_item_id}/decision", response_model=s.MeetingOut)
def decide(
    request: Request, session: SessionDep, actor: ActorDep, agenda_item_id: ItemId, body: s.DecisionIn
) -> s.MeetingOut:
    """End an agenda item: claimed (who, by when), escalated, turned into a case, or closed (why)."""
    seat = people.seat_of(session, actor)
    row = round_tables.agenda_row(session, actor, seat, agenda_item_id)
    decision = round_tables.Decision(
        body.outcome,
        _claimer(body.claimer, body.unit, body.member, body.compound),
        body.due_on,
        body.note,
        body.category,
        body.resource,
    )
    round_tables.decide(session, _ctx(request), actor, seat, row, decision)
    meeting = round_tables.get_meeting(session, actor, seat, row.meeting_id)
    return _meeting_out(session, meeting)


def _member_outs(session: Session, compound: str) -> list[s.MemberOut]:
    return [
        s.MemberOut(
            id=m.id,
            name=m.name,
            compound_code=m.compound_code,
            workplace=m.workplace,
            cadre=m.cadre,
            registered_on=m.registered_on,
            posts=posts,
        )
        for m, posts in people.members_of(session, compound)
    ]


@api.get("/compounds/{compound_code}", response_model=s.CompoundOut)
def get_compound(session: SessionDep, actor: ActorDep, compound_code: CompoundCode) -> s.CompoundOut:
    """A compound's three parties and the members registered to it (双报到)."""
    seat = people.seat_of(session, actor)
    where = people.place(session, compound_code)
    access.require_community(actor, seat, CommunityAction.read, where.community_code, compound_code)
    parties = [
        s.PartyOut(party=p.party, name=p.name, head=p.head)
        for p in people.three_parties(session, compound_code)
    ]
    return s.CompoundOut(
        code=where.code,
        name=where.name,
        community_code=where.community_code,
        parties=parties,
        members=_member_outs(session, compound_code),
    )


@api.post("/members", response_model=s.MemberOut, status_code=201)
def register_member(session: SessionDep, actor: ActorDep, body: s.MemberIn) -> s.MemberOut:
    """Register a cadre or party member to their compound, with the service posts they claim."""
    seat = people.seat_of(session, actor)
    m = people.register_member(
        session, actor, seat, body.compound, body.name, body.workplace, body.cadre, list(body.posts)
    )
    return s.MemberOut(
        id=m.id,
        name=m.name,
        compound_code=m.compound_code,
        workplace=m.workplace,
        cadre=m.cadre,
        registered_on=m.registered_on,
        posts=list(body.posts),
    )


@api.get("/co-units", response_model=list[s.CoUnitOut])
def list_co_units(
    session: SessionDep,
    actor: ActorDep,
    community: Annotated[str, Query(min_length=12, max_length=12, pattern=r"^[0-9]{12}$")],
) -> list[s.CoUnitOut]:
    """The co-building units with an agreement in a community."""
    seat = people.seat_of(session, actor)
    access.require_community(actor, seat, CommunityAction.read, community)
    return [s.CoUnitOut(id=u.id, name=u.name, kind=u.kind) for u in people.co_units_of(session, community)]


@api.post("/co-units", response_model=s.CoUnitOut, status_code=201)
def add_co_unit(session: SessionDep, actor: ActorDep, body: s.CoUnitIn) -> s.CoUnitOut:
    """Sign a co-building agreement with a unit for a community."""
    seat = people.seat_of(session, actor)
    u = people.add_co_unit(session, actor, seat, body.community, body.name, body.kind, body.signed_on)
    return s.CoUnitOut(id=u.id, name=u.name, kind=u.kind)


@api.get("/figures", response_model=list[s.FiguresRow])
def get_figures(
    session: SessionDep,
    actor: ActorDep,
    group_by: Literal["compound", "community", "street", "city"] = "community",
    as_of: date | None = None,
    raised_from: Annotated[date | None, Query(alias="from")] = None,
) -> list[s.FiguresRow]:
    """Items raised, claimed, closed off, overdue and the share answered, per area, as of a day."""
    access.require_community_figures(actor)
    return _figure_rows(session, group_by, as_of or today(), raised_from)


def _figure_rows(
    session: Session, group_by: str, as_of: date, raised_from: date | None
) -> list[s.FiguresRow]:
    rows = figures.item_figures(session, group_by, as_of, raised_from)
    names = people.names_of(session, {r.area_code for r in rows})
    return [
        s.FiguresRow(
            area_code=r.area_code,
            area=names.get(r.area_code, "赤壁市" if group_by == "city" else r.area_code),
            raised=r.raised,
            claimed=r.claimed,
            closed=r.closed,
            overdue=r.overdue,
            answered=r.answered,
            share_answered=r.share_answered,
        )
        for r in rows
    ]


@api.get("/screen", response_model=s.ScreenFigures, tags=["dashboard"], dependencies=[ScreenDep])
def screen_figures(session: SessionDep, month: MonthQuery = None) -> s.ScreenFigures:
    """The big screen's governance strip: the city's items as of today (or the month's end), and
    the compounds that held their round table in the month."""
    first = month_start(month, today().replace(day=1))
    end = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    f = figures.screen_figures(session, first, min(end, today()))
    return s.ScreenFigures(**asdict(f))


@api.get("/figures/headline", response_model=s.Headline)
def get_headline(session: SessionDep, actor: ActorDep, as_of: date | None = None) -> s.Headline:
    """The published headline (1,500+ claimed at compound level…), as of a day."""
    access.require_community_figures(actor)
    day = as_of or today()
    h = figures.headline(session, day)
    return s.Headline(as_of=day, counts=asdict(h), published=h.published())


# -- the pages --------------------------------------------------------------------------------------
def _desk(session: Session, user: Any) -> tuple[Actor, Seat]:
    require_desk(user, Desk.community)
    return user.actor, people.seat_of(session, user.actor)


def _back(request: Request, path: str, **query: object) -> RedirectResponse:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return RedirectResponse(f"{path}?lang={lang_of(request)}{extra}", status_code=303)


def _home_area(session: Session, actor: Actor, seat: Seat) -> people.Place | None:
    codes = sorted(seat.compounds or seat.communities)
    return people.place(session, codes[0]) if codes else None


@pages.get("", response_class=HTMLResponse)
def home_page(request: Request, session: SessionDep, user: DeskUser) -> Response:
    """The desk: where I serve, its figures, the lists, the round tables and preparing the next one."""
    actor, seat = _desk(session, user)
    home = _home_area(session, actor, seat)
    prefix = (home.code if home and home.level == "compound" else home.community_code) if home else None
    group = "compound" if home and home.level == "compound" else "community"
    rows = [
        r for r in figures.item_figures(session, group, today()) if prefix is None or r.area_code == prefix
    ]
    meetings = round_tables.meetings(session, actor, seat, limit=12)
    names = people.names_of(session, {m.area_code for m in meetings})
    compounds = _compound_choices(session, seat, home)
    return page(
        request,
        "community/home.html",
        user,
        active="community",
        home=home,
        figures=rows,
        meetings=meetings,
        names=names,
        compounds=compounds,
        today=today(),
        may_big=home is not None
        and access.may_community(actor, seat, CommunityAction.hold_big_meeting, home.community_code),
    )


def _compound_choices(session: Session, seat: Seat, home: people.Place | None) -> list[tuple[str, str]]:
    """The compounds a person works: a secretary's own, a community staff's all in the community."""
    from geo.store.models import Area

    if seat.compounds:
        codes = sorted(seat.compounds)
        names = people.names_of(session, set(codes))
        return [(c, names.get(c, c)) for c in codes]
    if home is None:
        return []
    rows = session.execute(
        select(Area.code, Area.name)
        .where(Area.level == "compound", Area.parent_code == home.community_code)
        .distinct()
        .order_by(Area.code)
    ).all()
    return [(c, n) for c, n in rows]


@pages.get("/items", response_class=HTMLResponse)
def items_page(
    request: Request,
    session: SessionDep,
    user: DeskUser,
    list_name: Annotated[Literal["demand", "resource", "wish", ""], Query(alias="list")] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    state: Annotated[Literal["open", "claimed", "closed", ""], Query()] = "",
    overdue: Annotated[Literal["yes", ""], Query()] = "",
    compound: Annotated[str, Query(max_length=32)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    """The lists with search and filters, and a form to raise a new item."""
    actor, seat = _desk(session, user)
    f = lists.ItemFilter(
        list_name or None,
        None,
        compound or None,
        kind or None,
        state or None,
        True if overdue else None,
        None,
        q or None,
        page_no,
        50,
    )
    total, rows = lists.search(session, actor, seat, f, today())
    home = _home_area(session, actor, seat)
    return page(
        request,
        "community/items.html",
        user,
        active="community",
        items=views.describe(session, rows, today()),
        total=total,
        f=f,
        kinds=lists.KINDS,
        compounds=_compound_choices(session, seat, home),
        home=home,
        co_units=people.co_units_of(session, home.community_code) if home else [],
        page_no=page_no,
    )


@pages.post("/items")
def create_item_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    list_name: Annotated[str, Form(alias="list")],
    area: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    raised_by: Annotated[str, Form()] = "",
    offered_by: Annotated[int | None, Form()] = None,
) -> Response:
    """Raise an item from the list page's form."""
    actor, seat = _desk(session, user)
    item = lists.raise_item(
        session, actor, seat, list_name, area, kind, title, description, raised_by, None, offered_by
    )
    return _back(request, f"/desk/community/items/{item.id}", done="raised")


@pages.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, session: SessionDep, user: DeskUser, item_id: ItemId) -> Response:
    """One item: its history, who could claim it (units, members, the branch), matches, close off."""
    actor, seat = _desk(session, user)
    item = lists.get_item(session, actor, seat, item_id)
    view = views.describe(session, [item], today())[0]
    members = people.members_of(session, item.compound_code) if item.compound_code else []
    return page(
        request,
        "community/item.html",
        user,
        active="community",
        item=view,
        history=lists.history(session, item),
        matches=views.describe(session, lists.matches(session, item), today())
        if item.list == "demand"
        else [],
        co_units=people.co_units_of(session, item.community_code),
        members=[m for m, _ in members],
        default_due=today() + timedelta(days=30),
        done=request.query_params.get("done", ""),
        tz=CHINA,
    )


@pages.post("/items/{item_id}/claim")
def claim_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    item_id: ItemId,
    claimer: Annotated[str, Form()],
    due_on: Annotated[date, Form()],
    unit: Annotated[int | None, Form()] = None,
    member: Annotated[int | None, Form()] = None,
    resource: Annotated[int | None, Form()] = None,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Record a claim from the item page."""
    actor, seat = _desk(session, user)
    item = lists.get_item(session, actor, seat, item_id)
    who = lists.Claimer(
        claimer,
        unit_id=unit,
        member_id=member,
        compound_code=item.compound_code if claimer == "branch" else None,
    )
    lists.claim(session, actor, seat, item, who, due_on, resource, note)
    return _back(request, f"/desk/community/items/{item_id}", done="claimed")


@pages.post("/items/{item_id}/notes")
def note_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    item_id: ItemId,
    text: Annotated[str, Form()] = "",
) -> Response:
    """A progress note from the item page."""
    actor, seat = _desk(session, user)
    lists.add_progress(session, actor, seat, lists.get_item(session, actor, seat, item_id), text)
    return _back(request, f"/desk/community/items/{item_id}", done="noted")


@pages.post("/items/{item_id}/close-off")
def close_off_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    item_id: ItemId,
    note: Annotated[str, Form()] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Close an item off with a photo and/or a note."""
    actor, seat = _desk(session, user)
    item = lists.get_item(session, actor, seat, item_id)
    data = photo.file.read() if photo is not None and photo.filename else None
    ctx = _ctx(request)
    lists.close_off(session, ctx.blobs, actor, seat, item, note, data, limits=ctx.photo_limits)
    return _back(request, f"/desk/community/items/{item_id}", done="closed")


@pages.get("/photos/{key}")
def close_photo(
    session: SessionDep,
    user: DeskUser,
    request: Request,
    key: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
) -> Response:
    """A close-off photo (the public copy: no EXIF), for whoever reads the item."""
    actor, seat = _desk(session, user)
    item = session.scalar(select(GovernanceItem).where(GovernanceItem.close_photo_key == key).limit(1))
    if item is None:
        raise InvalidInput("no such photo", field="photo")
    lists.get_item(session, actor, seat, item.id)
    return Response(_ctx(request).blobs.get(key), media_type="image/jpeg")


@pages.post("/round-tables")
def prepare_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    area: Annotated[str, Form()],
    held_on: Annotated[date, Form()],
    chair: Annotated[str, Form()] = "",
) -> Response:
    """Prepare a round table: its agenda is proposed at once."""
    actor, seat = _desk(session, user)
    meeting = round_tables.prepare(session, actor, seat, area, held_on, chair)
    return _back(request, f"/desk/community/round-tables/{meeting.id}", done="prepared")


@pages.get("/round-tables/{meeting_id}", response_class=HTMLResponse)
def meeting_page(request: Request, session: SessionDep, user: DeskUser, meeting_id: MeetingId) -> Response:
    """Run the meeting: attendees by party, the agenda with a decision per item, the minutes."""
    actor, seat = _desk(session, user)
    meeting = round_tables.get_meeting(session, actor, seat, meeting_id)
    view = views.meeting_view(session, meeting, today())
    members = people.members_of(session, meeting.area_code) if meeting.level == "compound" else []
    return page(
        request,
        "community/meeting.html",
        user,
        active="community",
        m=view,
        parties=round_tables.ATTENDEE_PARTIES,
        co_units=people.co_units_of(session, meeting.community_code),
        members=[x for x, _ in members],
        categories=category_choices(session, lang_of(request)),
        default_due=today() + timedelta(days=30),
        may_run=access.may_community(
            actor,
            seat,
            CommunityAction.hold_big_meeting
            if meeting.level == "community"
            else CommunityAction.hold_meeting,
            meeting.community_code,
            meeting.area_code if meeting.level == "compound" else None,
        ),
        done=request.query_params.get("done", ""),
    )


@pages.post("/round-tables/{meeting_id}/record")
async def record_page(
    request: Request, session: SessionDep, user: PostingUser, meeting_id: MeetingId
) -> Response:
    """Save the chair, the attendees (one name a line, per party), the minutes, and held."""
    form = await request.form()
    attendees = {p: str(form.get(f"attendees_{p}", "")).splitlines() for p in round_tables.ATTENDEE_PARTIES}
    actor, seat = _desk(session, user)
    meeting = round_tables.get_meeting(session, actor, seat, meeting_id)
    round_tables.record(
        session,
        actor,
        seat,
        meeting,
        chair=str(form.get("chair", "")),
        attendees=attendees,
        minutes=str(form.get("minutes", "")),
        held=form.get("held") == "yes",
    )
    return _back(request, f"/desk/community/round-tables/{meeting_id}", done="recorded")


@pages.post("/agenda-items/{agenda_item_id}/decision")
def decide_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    agenda_item_id: ItemId,
    outcome: Annotated[str, Form()],
    claimer: Annotated[str, Form()] = "",
    unit: Annotated[int | None, Form()] = None,
    member: Annotated[int | None, Form()] = None,
    due_on: Annotated[date | None, Form()] = None,
    note: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
) -> Response:
    """Decide one agenda item from the meeting page."""
    actor, seat = _desk(session, user)
    row = round_tables.agenda_row(session, actor, seat, agenda_item_id)
    meeting = round_tables.get_meeting(session, actor, seat, row.meeting_id)
    compound = meeting.area_code if meeting.level == "compound" else None
    who = (
        _claimer(claimer or None, unit, member, compound if claimer == "branch" else None)
        if outcome == "claimed"
        else None
    )
    if outcome == "claimed" and who is None:
        raise InvalidInput("say who claims it", field="claimer")
    decision = round_tables.Decision(outcome, who, due_on, note, category or None)
    round_tables.decide(session, _ctx(request), actor, seat, row, decision)
    return _back(request, f"/desk/community/round-tables/{row.meeting_id}", done=outcome)


@pages.get("/members", response_class=HTMLResponse)
def members_page(
    request: Request, session: SessionDep, user: DeskUser, compound: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    """A compound's three parties and registered members (双报到), and registering one."""
    actor, seat = _desk(session, user)
    home = _home_area(session, actor, seat)
    choices = _compound_choices(session, seat, home)
    code = compound or (choices[0][0] if choices else "")
    where = people.place(session, code) if code else None
    if where is not None:
        access.require_community(actor, seat, CommunityAction.read, where.community_code, where.code)
    return page(
        request,
        "community/members.html",
        user,
        active="community",
        where=where,
        compounds=choices,
        parties=people.three_parties(session, code) if code else [],
        members=people.members_of(session, code) if code else [],
        posts=people.POSTS,
        may_register=where is not None
        and access.may_community(actor, seat, CommunityAction.register, where.community_code, where.code),
    )


@pages.post("/members")
def register_page(
    request: Request,
    session: SessionDep,
    user: PostingUser,
    compound: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    workplace: Annotated[str, Form()] = "",
    posts: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Register a member from the members page."""
    actor, seat = _desk(session, user)
    people.register_member(session, actor, seat, compound, name, workplace, True, posts or [])
    return _back(request, "/desk/community/members", compound=compound)


router.include_router(api)
router.include_router(pages)
