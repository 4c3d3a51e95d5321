"""Public commitments (三方联动): problems collected, committed to by one of three parties, solved.

Each quarter the community's party organisation and committee (社区党组织·居委会), the owners'
committee (业委会) and the property company (物业公司) publish commitments, each taking on problems
collected in the community or a compound (from residents, a meeting, or a case), with a due date
and progress; a commitment is solved with its evidence (a note or a photo); residents'
representatives evaluate it (满意/基本满意/不满意). Residents read a public board per community:
collected / committed / solved for the quarter and each item's state in words, with no personal
names (Shiyan published 119 collected, 98 committed, 93 solved for one quarter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geo import access
from geo.accounts import Actor
from geo.community.areas_named import Places
from geo.community.register_models import (
    PARTY_KINDS,
    PROBLEM_SOURCES,
    VERDICTS,
    Commitment,
    CommitmentEvaluation,
    CommitmentProblem,
)
from geo.errors import ConcurrentUpdate, InvalidInput, InvalidTransition, NotFound
from geo.photos import PhotoLimits, ingest_photo
from geo.storage import BlobStore
from geo.store.models import Case

CHINA = ZoneInfo("Asia/Shanghai")
W = access.CommunityWork
QUARTER = re.compile(r"^((?:19|2\d)\d\d)Q([1-4])$")  # 1900–2999, as the reports' days
MAX_TEXT = 2000


def quarter_of(day: date) -> str:
    """The quarter a day falls in, as 2026Q3."""
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_days(quarter: str) -> tuple[date, date]:
    """The first and last day of a quarter (2026Q3 → 1 July, 30 September)."""
    match = QUARTER.match(quarter or "")
    if not match:
        raise InvalidInput(f"quarter must look like 2026Q3 (1900–2999), not {quarter!r}", field="quarter")
    year, q = int(match[1]), int(match[2])
    first = date(year, 3 * q - 2, 1)
    after = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return first, date.fromordinal(after.toordinal() - 1)


def _text(value: str | None, name: str, *, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{name} is needed", field=name)
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} is {len(value)} characters, at most {MAX_TEXT}", field=name)
    return value


@dataclass(frozen=True)
class ProblemIn:
    """A problem collected for the quarter's commitments (征集)."""

    community_code: str
    quarter: str
    source: str
    description: str
    compound_code: str | None = None
    case_tracking_code: str | None = None  # a case it came from, optional


@dataclass(frozen=True)
class CommitmentIn:
    """A party's commitment for a quarter, and the collected problems it takes on."""

    community_code: str
    quarter: str
    party_kind: str
    party_name: str
    promise: str
    due_on: date
    problem_ids: tuple[int, ...]
    compound_code: str | None = None


def collect_problem(
    session: Session, actor: Actor, data: ProblemIn, *, now: datetime | None = None
) -> CommitmentProblem:
    """Write down a collected problem (征集问题), optionally linked to the case it came from."""
    access.require_community_work(actor, W.enter_commitment)
    quarter_days(data.quarter)
    if data.source not in PROBLEM_SOURCES:
        raise InvalidInput(
            f"source must be one of {', '.join(PROBLEM_SOURCES)}, not {data.source!r}", field="source"
        )
    Places.load(session).check(data.community_code, data.compound_code or None)
    case_id = None
    if data.case_tracking_code:
        case_id = session.scalar(select(Case.id).where(Case.tracking_code == data.case_tracking_code.strip()))
        if case_id is None:
            raise InvalidInput(f"no case {data.case_tracking_code!r}", field="case_tracking_code")
    row = CommitmentProblem(
        community_code=data.community_code,
        compound_code=data.compound_code or None,
        quarter=data.quarter,
        source=data.source,
        case_id=case_id,
        description=_text(data.description, "description"),
        collected_at=now or datetime.now(UTC),
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    return row


def publish(session: Session, actor: Actor, data: CommitmentIn, *, now: datetime | None = None) -> Commitment:
    """Publish a commitment (公开承诺) taking on collected problems of its community and quarter."""
    access.require_community_work(actor, W.enter_commitment)
    first, last = quarter_days(data.quarter)
    if data.party_kind not in PARTY_KINDS:
        raise InvalidInput(
            f"party_kind must be one of {', '.join(PARTY_KINDS)}, not {data.party_kind!r}", field="party_kind"
        )
    Places.load(session).check(data.community_code, data.compound_code or None)
    if data.due_on < first:
        raise InvalidInput(f"due_on {data.due_on} is before the quarter starts ({first})", field="due_on")
    if not data.problem_ids:
        raise InvalidInput("a commitment takes on at least one collected problem", field="problem_ids")
    if any(not 1 <= i < 2**63 for i in data.problem_ids):
        raise InvalidInput("problem ids are positive whole numbers", field="problem_ids")
    problems = list(
        session.scalars(
            select(CommitmentProblem).where(CommitmentProblem.id.in_(data.problem_ids)).with_for_update()
        )
    )
    found = {p.id for p in problems}
    if missing := [i for i in data.problem_ids if i not in found]:
        raise InvalidInput(f"no collected problem {missing[0]}", field="problem_ids")
    for p in problems:
        if p.community_code != data.community_code or p.quarter != data.quarter:
            raise InvalidInput(
                f"problem {p.id} was collected in {p.community_code} for {p.quarter}", field="problem_ids"
            )
        if p.commitment_id is not None:
            raise InvalidInput(f"problem {p.id} is already committed to", field="problem_ids")
    row = Commitment(
        community_code=data.community_code,
        compound_code=data.compound_code or None,
        quarter=data.quarter,
        party_kind=data.party_kind,
        party_name=_text(data.party_name, "party_name"),
        promise=_text(data.promise, "promise"),
        due_on=data.due_on,
        published_at=now or datetime.now(UTC),
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    for p in problems:
        p.commitment_id = row.id
    session.flush()
    return row


def _commitment(session: Session, commitment_id: int, *, open_only: bool = True) -> Commitment:
    row = session.get(Commitment, commitment_id)
    if row is None:
        raise NotFound(f"no commitment {commitment_id}", field="commitment")
    if open_only and row.solved_at is not None:
        raise InvalidTransition(f"commitment {commitment_id} is solved already", field="commitment")
    return row


def _flush(session: Session, row: Commitment) -> None:
    try:
        session.flush()
    except StaleDataError:
        raise ConcurrentUpdate(f"commitment {row.id} was changed meanwhile; reload it") from None


def record_progress(session: Session, actor: Actor, commitment_id: int, progress: str) -> None:
    """Say where a commitment stands now (进展); every earlier word stays in the history."""
    access.require_community_work(actor, W.enter_commitment)
    row = _commitment(session, commitment_id)
    row.progress = _text(progress, "progress")
    _flush(session, row)


def solve(
    session: Session,
    actor: Actor,
    commitment_id: int,
    note: str = "",
    photo: bytes | None = None,
    *,
    blobs: BlobStore | None = None,
    limits: PhotoLimits | None = None,
    now: datetime | None = None,
) -> None:
    """Mark a commitment solved (办结) with its evidence: a note, a photo (its public copy), or both."""
    access.require_community_work(actor, W.enter_commitment)
    row = _commitment(session, commitment_id)
    text = _text(note, "note", required=False)
    key = None
    if photo:
        if blobs is None:
            raise InvalidInput("photos cannot be stored here", field="photo")
        key = ingest_photo(photo, blobs, limits or PhotoLimits()).public_key
    if not text and key is None:
        raise InvalidInput("a solved commitment needs its evidence: a note or a photo", field="note")
    row.solution_note = text
    row.solution_photo_key = key
    row.solved_at = now or datetime.now(UTC)
    _flush(session, row)


def evaluate(
    session: Session,
    actor: Actor,
    commitment_id: int,
    verdict: str,
    comment: str = "",
    representative: str = "",
    *,
    now: datetime | None = None,
) -> CommitmentEvaluation:
    """Record the representatives' verdict on a commitment (满意/基本满意/不满意, 代表评议)."""
    access.require_community_work(actor, W.record_evaluation)
    _commitment(session, commitment_id, open_only=False)
    if verdict not in VERDICTS:
        raise InvalidInput(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}", field="verdict")
    row = CommitmentEvaluation(
        commitment_id=commitment_id,
        verdict=verdict,
        comment=_text(comment, "comment", required=False),
        representative=_text(representative, "representative", required=False),
        evaluated_at=now or datetime.now(UTC),
        recorded_by=actor.username,
    )
    session.add(row)
    session.flush()
    return row


# -- reading: the public board and the workstation --------------------------------------------
@dataclass
class ItemView:
    """One commitment as the public reads it: no personal names."""

    id: int
    party_kind: str
    party_name: str
    compound: str
    promise: str
    problems: list[str]
    due_on: date
    state: str  # in_progress | overdue | solved
    progress: str
    solved_on: date | None
    solution_note: str
    has_photo: bool
    photo_key: str | None
    verdicts: dict[str, int] = field(default_factory=dict)


@dataclass
class Board:
    """A community's quarter: counts and each item in words."""

    community_code: str
    community: str
    quarter: str
    quarters: list[str]
    collected: int
    committed: int
    solved: int
    evaluated: int
    items: list[ItemView]
    waiting: list[str]  # collected problems no party has committed to yet


def quarters_of(session: Session, community_code: str) -> list[str]:
    """The quarters a community has problems in, newest first."""
    return list(
        session.scalars(
            select(CommitmentProblem.quarter)
            .where(CommitmentProblem.community_code == community_code)
            .distinct()
            .order_by(CommitmentProblem.quarter.desc())
        )
    )


def commitment_state(row: Commitment, today: date) -> str:
    """A commitment's state in the product's words: solved, overdue, or in progress."""
    if row.solved_at is not None:
        return "solved"
    return "overdue" if row.due_on < today else "in_progress"


def board(
    session: Session,
    community_code: str,
    quarter: str | None = None,
    *,
    now: datetime | None = None,
    lang: str = "zh",
) -> Board:
    """The public board of a community (no sign-in): its quarter's counts and items, no names.

    Without a quarter: the newest one with collected problems (or the current one when none)."""
    places = Places.load(session)
    place = places.by_code.get(community_code)
    if place is None or place.level != "community":
        raise NotFound(f"no community {community_code!r}", field="community")
    now = now or datetime.now(UTC)
    today = now.astimezone(CHINA).date()
    quarters = quarters_of(session, community_code)
    if quarter is None:
        quarter = quarters[0] if quarters else quarter_of(today)
    quarter_days(quarter)
    problems = list(
        session.scalars(
            select(CommitmentProblem)
            .where(CommitmentProblem.community_code == community_code, CommitmentProblem.quarter == quarter)
            .order_by(CommitmentProblem.id)
        )
    )
    commitments = list(
        session.scalars(
            select(Commitment)
            .where(Commitment.community_code == community_code, Commitment.quarter == quarter)
            .order_by(Commitment.due_on, Commitment.id)
        )
    )
    verdicts: dict[int, dict[str, int]] = {}
    if commitments:
        for cid, verdict, n in session.execute(
            select(CommitmentEvaluation.commitment_id, CommitmentEvaluation.verdict, func.count())
            .where(CommitmentEvaluation.commitment_id.in_([c.id for c in commitments]))
            .group_by(CommitmentEvaluation.commitment_id, CommitmentEvaluation.verdict)
        ):
            verdicts.setdefault(cid, {})[verdict] = n
    by_commitment: dict[int, list[str]] = {}
    for p in problems:
        if p.commitment_id is not None:
            by_commitment.setdefault(p.commitment_id, []).append(p.description)
    solved_ids = {c.id for c in commitments if c.solved_at is not None}
    items = [
        ItemView(
            id=c.id,
            party_kind=c.party_kind,
            party_name=c.party_name,
            compound=places.name(c.compound_code, lang),
            promise=c.promise,
            problems=by_commitment.get(c.id, []),
            due_on=c.due_on,
            state=commitment_state(c, today),
            progress=c.progress,
            solved_on=c.solved_at.astimezone(CHINA).date() if c.solved_at else None,
            solution_note=c.solution_note,
            has_photo=c.solution_photo_key is not None,
            photo_key=c.solution_photo_key,
            verdicts=verdicts.get(c.id, {}),
        )
        for c in commitments
    ]
    return Board(
        community_code=community_code,
        community=place.named(lang),
        quarter=quarter,
        quarters=quarters,
        collected=len(problems),
        committed=sum(1 for p in problems if p.commitment_id is not None),
        solved=sum(1 for p in problems if p.commitment_id in solved_ids),
        evaluated=sum(1 for c in commitments if c.id in verdicts),
        items=items,
        waiting=[p.description for p in problems if p.commitment_id is None],
    )


def open_problems(session: Session, community_code: str, quarter: str) -> list[CommitmentProblem]:
    """Collected problems of a community's quarter that no commitment has taken on yet."""
    return list(
        session.scalars(
            select(CommitmentProblem)
            .where(
                CommitmentProblem.community_code == community_code,
                CommitmentProblem.quarter == quarter,
                CommitmentProblem.commitment_id.is_(None),
            )
            .order_by(CommitmentProblem.id)
        )
    )


def photo_of(session: Session, key: str) -> bool:
    """Whether a blob key is a solved commitment's public evidence photo (the only ones served)."""
    return bool(
        session.scalar(
            select(func.count()).select_from(Commitment).where(Commitment.solution_photo_key == key)
        )
    )
