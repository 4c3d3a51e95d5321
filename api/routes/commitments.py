"""Public commitments (三方联动): `/api/v1/commitments/...`, the staff's page `/desk/commitments`,
and the public board per community `/community/{code}/board` (no sign-in, phone first, no names).

The domain is `geo/community/commitments.py`; who may do what is `geo.access.CommunityWork`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import SessionDep
from api.routes.public import public_page
from api.security import ActorDep
from api.web import DeskUser, PageRefusal, PostingUser, lang_of, page
from geo import access
from geo.access import CommunityWork as W
from geo.cases.views import BIGINT_MAX
from geo.community import commitments
from geo.community import register_figures as figures
from geo.community.areas_named import Places
from geo.community.commitments import CommitmentIn, ProblemIn
from geo.errors import ActionForbidden, InvalidInput, NotFound

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
PartyKind = Literal["community", "owners_committee", "property_company"]
Source = Literal["resident", "meeting", "case"]
Verdict = Literal["satisfied", "basically_satisfied", "unsatisfied"]
Level = Literal["compound", "community", "street", "city"]
QUARTER = r"^(19|2\d)\d\dQ[1-4]$"
MAX_PHOTO_BYTES = 20 * 1024 * 1024


# -- the API ---------------------------------------------------------------------------------------
class ProblemCreate(BaseModel):
    """A collected problem (征集问题)."""

    community_code: str = Field(max_length=32)
    compound_code: str | None = Field(None, max_length=32)
    quarter: str = Field(pattern=QUARTER, description="e.g. 2026Q3")
    source: Source
    description: str = Field(max_length=2000)
    case_tracking_code: str | None = Field(
        None, max_length=40, description="the case it came from (optional)"
    )


class ProblemOut(BaseModel):
    id: int
    community_code: str
    compound_code: str | None
    quarter: str
    source: str
    description: str
    commitment_id: int | None


class CommitmentCreate(BaseModel):
    """A party's commitment for the quarter, taking on collected problems."""

    community_code: str = Field(max_length=32)
    compound_code: str | None = Field(None, max_length=32)
    quarter: str = Field(pattern=QUARTER)
    party_kind: PartyKind
    party_name: str = Field(max_length=200, description="the organisation, e.g. 某某物业服务中心")
    promise: str = Field(max_length=2000)
    due_on: date
    problem_ids: list[Annotated[int, Field(ge=1, le=BIGINT_MAX)]] = Field(min_length=1, max_length=200)


class ProgressIn(BaseModel):
    progress: str = Field(max_length=2000)


class SolveIn(BaseModel):
    note: str = Field(
        max_length=2000, description="the evidence in words (a photo: send multipart to the page)"
    )


class EvaluationIn(BaseModel):
    verdict: Verdict
    comment: str = Field("", max_length=2000)
    representative: str = Field("", max_length=200, description="who evaluated (kept, never public)")


class ItemOut(BaseModel):
    """A commitment as the public board shows it: no personal names."""

    id: int
    party_kind: str
    party_name: str
    compound: str
    promise: str
    problems: list[str]
    due_on: date
    state: str
    progress: str
    solved_on: date | None
    solution_note: str
    has_photo: bool
    verdicts: dict[str, int]


class BoardOut(BaseModel):
    """A community's quarter of commitments: counts and items."""

    community_code: str
    community: str
    quarter: str
    quarters: list[str]
    collected: int
    committed: int
    solved: int
    evaluated: int
    items: list[ItemOut]
    waiting: list[str]


class CommitmentFigure(BaseModel):
    level: str
    code: str | None
    name: str
    collected: int
    committed: int
    solved: int
    commitments: int
    evaluated: int
    share_satisfied: float | None


def _board(session: SessionDep, community: str, quarter: str | None, lang: str = "zh") -> BoardOut:
    return BoardOut.model_validate(
        commitments.board(session, community, quarter, lang=lang), from_attributes=True
    )


@router.post("/api/v1/commitments/problems", status_code=201, response_model=ProblemOut, tags=["commitments"])
def collect(body: ProblemCreate, actor: ActorDep, session: SessionDep) -> ProblemOut:
    """Collect a problem for the quarter's commitments."""
    row = commitments.collect_problem(session, actor, ProblemIn(**body.model_dump()))
    return ProblemOut.model_validate(row, from_attributes=True)


@router.post("/api/v1/commitments", status_code=201, response_model=ItemOut, tags=["commitments"])
def publish(body: CommitmentCreate, actor: ActorDep, session: SessionDep) -> ItemOut:
    """Publish a commitment of one of the three parties (公开承诺)."""
    data = body.model_dump()
    data["problem_ids"] = tuple(data["problem_ids"])
    row = commitments.publish(session, actor, CommitmentIn(**data))
    return _item(session, row.community_code, row.quarter, row.id)


def _item(session: SessionDep, community: str, quarter: str, commitment_id: int) -> ItemOut:
    board = _board(session, community, quarter)
    return next(i for i in board.items if i.id == commitment_id)


def _located(session: SessionDep, commitment_id: int) -> tuple[str, str]:
    row = commitments._commitment(session, commitment_id, open_only=False)
    return row.community_code, row.quarter


@router.post("/api/v1/commitments/{commitment_id}/progress", response_model=ItemOut, tags=["commitments"])
def progress(commitment_id: RowId, body: ProgressIn, actor: ActorDep, session: SessionDep) -> ItemOut:
    """Say where a commitment stands (进展)."""
    commitments.record_progress(session, actor, commitment_id, body.progress)
    return _item(session, *_located(session, commitment_id), commitment_id)


@router.post("/api/v1/commitments/{commitment_id}/solved", response_model=ItemOut, tags=["commitments"])
def solved(commitment_id: RowId, body: SolveIn, actor: ActorDep, session: SessionDep) -> ItemOut:
    """Mark a commitment solved with its evidence in words (办结)."""
    commitments.solve(session, actor, commitment_id, body.note)
    return _item(session, *_located(session, commitment_id), commitment_id)


@router.post("/api/v1/commitments/{commitment_id}/evaluations", response_model=ItemOut, tags=["commitments"])
def evaluation(commitment_id: RowId, body: EvaluationIn, actor: ActorDep, session: SessionDep) -> ItemOut:
    """Record the representatives' verdict (代表评议)."""
    commitments.evaluate(session, actor, commitment_id, body.verdict, body.comment, body.representative)
    return _item(session, *_located(session, commitment_id), commitment_id)


@router.get("/api/v1/commitments/board/{community_code}", response_model=BoardOut, tags=["commitments"])
def board_json(
    community_code: str,
    session: SessionDep,
    quarter: Annotated[str | None, Query(pattern=QUARTER)] = None,
    lang: Literal["zh", "en"] = "zh",
) -> BoardOut:
    """The public board of a community (no sign-in): the quarter's counts and items, no names."""
    return _board(session, community_code, quarter, lang)


@router.get("/api/v1/stats/commitments", response_model=list[CommitmentFigure], tags=["stats"])
def commitment_stats(
    actor: ActorDep,
    session: SessionDep,
    quarter: Annotated[str | None, Query(pattern=QUARTER, description="default: this quarter")] = None,
    level: Annotated[Level, Query()] = "community",
) -> list[CommitmentFigure]:
    """Problems collected, committed and solved; commitments published and evaluated, per area."""
    if not access.may_read_register_figures(actor):
        raise ActionForbidden(f"role {actor.role.value} may not read statistics", field="authorization")
    quarter = quarter or commitments.quarter_of(datetime.now(commitments.CHINA).date())
    rows = figures.commitment_figures(session, [quarter], level)
    return [CommitmentFigure.model_validate(r, from_attributes=True) for r in rows]


# -- the public board --------------------------------------------------------------------------
@router.get("/community", response_class=HTMLResponse, include_in_schema=False)
def board_index(request: Request, session: SessionDep) -> HTMLResponse:
    """Every community's board, by street (residents choose theirs)."""
    places = Places.load(session)
    streets = [
        (s, [c for c in places.of_level("community") if c.parent_code == s.code])
        for s in places.of_level("street")
    ]
    return public_page(request, "community/index.html", streets=streets)


@router.get("/community/{community_code}/board", response_class=HTMLResponse, include_in_schema=False)
def board_page(
    request: Request, community_code: str, session: SessionDep, quarter: str | None = None
) -> HTMLResponse:
    """A community's public board: collected / committed / solved, each item's state, no names."""
    lang = lang_of(request)
    if quarter is not None:
        commitments.quarter_days(quarter)
    board = commitments.board(session, community_code, quarter, lang=lang)
    return public_page(request, "community/board.html", board=board)


@router.get("/community/photos/{key}", include_in_schema=False)
def board_photo(key: str, request: Request, session: SessionDep) -> Response:
    """A solved commitment's evidence photo (the public copy: no metadata); nothing else."""
    if len(key) != 64 or not commitments.photo_of(session, key):
        raise NotFound("no such photo", field="photo")
    data = request.app.state.cases.blobs.get(key)
    media = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"})


# -- the staff's page --------------------------------------------------------------------------
def _require(user: DeskUser) -> None:
    if not access.may_do_community(user.actor, W.enter_commitment):
        raise PageRefusal(403, "err_403", facts={"desk": "commitments"})


@router.get("/desk/commitments", response_class=HTMLResponse, include_in_schema=False)
def desk_page(
    request: Request,
    user: DeskUser,
    session: SessionDep,
    community: str | None = None,
    quarter: str | None = None,
) -> Response:
    """Collect problems, publish commitments, record progress, solve, evaluate: one community's quarter."""
    _require(user)
    lang = lang_of(request)
    places = Places.load(session)
    communities = places.of_level("community")
    community = community or communities[0].code
    quarter = quarter or commitments.quarter_of(datetime.now(commitments.CHINA).date())
    board = commitments.board(session, community, quarter, lang=lang)
    today = datetime.now(commitments.CHINA).date()
    quarters = sorted({*board.quarters, commitments.quarter_of(today), quarter}, reverse=True)
    return page(
        request,
        "commitments/desk.html",
        user,
        board=board,
        communities=communities,
        compounds=places.compounds_of(community),
        quarters=quarters,
        waiting=commitments.open_problems(session, community, quarter),
        today=today,
        party_kinds=("community", "owners_committee", "property_company"),
        sources=("resident", "meeting", "case"),
        verdicts=("satisfied", "basically_satisfied", "unsatisfied"),
    )


def _back(request: Request, community: str, quarter: str) -> RedirectResponse:
    return RedirectResponse(
        f"/desk/commitments?community={community}&quarter={quarter}&lang={lang_of(request)}", status_code=303
    )


@router.post("/desk/commitments/problems", include_in_schema=False)
def collect_from_page(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    community_code: Annotated[str, Form()] = "",
    quarter: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    compound_code: Annotated[str, Form()] = "",
    case_tracking_code: Annotated[str, Form()] = "",
) -> Response:
    """Add a collected problem to the list."""
    data = ProblemIn(
        community_code, quarter, source, description, compound_code or None, case_tracking_code or None
    )
    commitments.collect_problem(session, user.actor, data)
    return _back(request, community_code, quarter)


@router.post("/desk/commitments/publish", include_in_schema=False)
def publish_from_page(
    request: Request,
    user: PostingUser,
    session: SessionDep,
    community_code: Annotated[str, Form()] = "",
    quarter: Annotated[str, Form()] = "",
    party_kind: Annotated[str, Form()] = "",
    party_name: Annotated[str, Form()] = "",
    promise: Annotated[str, Form()] = "",
    due_on: Annotated[str, Form()] = "",
    compound_code: Annotated[str, Form()] = "",
    problem_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Publish a commitment for the ticked problems."""
    try:
        due = date.fromisoformat(due_on)
    except ValueError:
        raise InvalidInput(f"due_on must be a date YYYY-MM-DD, not {due_on!r}", field="due_on") from None
    data = CommitmentIn(
        community_code,
        quarter,
        party_kind,
        party_name,
        promise,
        due,
        tuple(problem_ids or ()),
        compound_code or None,
    )
    commitments.publish(session, user.actor, data)
    return _back(request, community_code, quarter)


Step = Literal["progress", "solve", "evaluate"]


@router.post("/desk/commitments/{commitment_id}/{step}", include_in_schema=False)
async def step_from_page(
    request: Request,
    commitment_id: RowId,
    step: Step,
    user: PostingUser,
    session: SessionDep,
    note: Annotated[str, Form()] = "",
    verdict: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    representative: Annotated[str, Form()] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Progress, solved (with a note and/or a photo) or the representatives' verdict."""
    data = await photo.read(MAX_PHOTO_BYTES + 1) if photo is not None and photo.filename else b""
    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput("the photo is over 20 MB", field="photo")

    def work() -> tuple[str, str]:
        if step == "progress":
            commitments.record_progress(session, user.actor, commitment_id, note)
        elif step == "solve":
            ctx = request.app.state.cases
            commitments.solve(
                session,
                user.actor,
                commitment_id,
                note,
                data or None,
                blobs=ctx.blobs,
                limits=ctx.photo_limits,
            )
        else:
            commitments.evaluate(session, user.actor, commitment_id, verdict, comment, representative)
        return _located(session, commitment_id)

    community, quarter = await run_in_threadpool(work)
    return _back(request, community, quarter)
