"""Report intake: a report is prepared (checked, photos stored, located, routed) without the
database, then filed together with the reports that arrived meanwhile, in one transaction.

Filing is what the database does for a report: the case row, its report event (the statement
trigger appends the indicators' deltas), its photos and the suggested duplicates. `file_reports`
does that for a list of reports with one statement per table, whatever the list's length, and the
duplicate search for all of them in one query. `IntakeWriter` is the group commit in front of it:
its threads take every report queued while the last transaction was being written and file them
in the next one, so under load a commit carries many reports and costs each a fraction of one,
and with one report waiting it is written at once (no timer, no added delay). A report is
acknowledged only after its transaction committed. If a batch fails on its data (an Idempotency-Key
raced by another process, a tracking code taken), its reports are filed again one by one, each in
a transaction of its own, so one report's trouble is never another's; if the database is away,
every report of the batch gets that error (the API answers 503 and the client retries).
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from geo import access
from geo.accounts import Actor
from geo.cases.workflow import OPEN, CaseState, apply_routing
from geo.coords import CoordinateSystem
from geo.errors import IdempotencyConflict, InvalidInput
from geo.photos import Photo, PhotoLimits, check_count, ingest_photo
from geo.routing import Router, RoutingDecision, RoutingStatus
from geo.storage import BlobStore
from geo.store.bulk import BulkInsert
from geo.store.models import Case, CaseEvent, CasePhoto

__all__ = ["Channel", "Filed", "IntakeWriter", "Prepared", "ReportIn", "file_reports", "prepare_report"]

TRACKING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone


class Channel(StrEnum):
    """Where a report came from."""

    inspector = "inspector"
    resident = "resident"
    hotline_12345 = "hotline_12345"
    video_patrol = "video_patrol"
    referral = "referral"
    open311 = "open311"  # another system, through Open311 GeoReport v2 (geo/open311.py)


class ReportIn(BaseModel):
    """A new report. Location may be omitted when a photo carries GPS."""

    category: str = Field(min_length=1, max_length=16, description="category code, e.g. E0102")
    description: str = Field(default="", max_length=2000)
    lon: float | None = Field(default=None, description="longitude in `crs`")
    lat: float | None = Field(default=None, description="latitude in `crs`")
    crs: CoordinateSystem = CoordinateSystem.wgs84
    channel: Channel | None = Field(default=None, description="default: the reporting role's own channel")
    reporter_contact: str | None = Field(
        default=None, max_length=200, description="private: never shown publicly"
    )


@dataclass(frozen=True)
class Located:
    """Where a report is, in its own coordinate system, and how that was found."""

    lon: float
    lat: float
    crs: CoordinateSystem
    by: str  # "report" or "photo EXIF GPS"


@dataclass
class Prepared:
    """A report ready to file: checked, its photos stored, located and routed."""

    actor: Actor
    category: str
    description: str
    channel: str
    reporter_contact: str | None
    key: str | None  # the Idempotency-Key scoped to the account
    fingerprint: str
    photos: list[Photo]
    where: Located
    decision: RoutingDecision
    now: datetime


@dataclass(frozen=True)
class Suggested:
    """A suggested duplicate of a new case: an open case of the same category nearby."""

    case_id: int
    other_case_id: int
    tracking_code: str  # the other case's
    distance_m: float
    hours_apart: float
    status: str = "suggested"


@dataclass
class Filed:
    """What filing a report gave: its case (new, or the first one for a retried key), and for a
    new case the rows written with it (so the answer needs no second read)."""

    case: Case
    created: bool
    event: CaseEvent | None = None
    photos: list[CasePhoto] = field(default_factory=list)
    links: list[Suggested] = field(default_factory=list)
    error: IdempotencyConflict | None = None  # a retried key with a different report

    def answer(self) -> Filed:
        """This, or its error raised."""
        if self.error is not None:
            raise self.error
        return self


# -- preparing: no database ---------------------------------------------------------------------
def prepare_report(
    router: Router,
    blobs: BlobStore,
    limits: PhotoLimits,
    actor: Actor,
    report: ReportIn,
    photos: Sequence[bytes],
    idempotency_key: str | None,
    now: datetime,
    *,
    session: Session | None = None,
) -> Prepared:
    """Check a report (`ReportIn`), store its photos, locate it and route it.

    The router answers from its cache; `session` is only read on a cache miss (reference data
    changed). Unknown categories are refused here, by the routing's own catalogue.
    """
    access.require(actor, access.Sight.submit_report)
    channel = access.channel_for(actor, report.channel.value if report.channel else None)
    key = scoped_key(actor, idempotency_key)
    fingerprint = report_fingerprint(actor, report, photos)
    check_count(len(photos), limits)
    lon, lat = report.lon, report.lat
    if (lon is None) != (lat is None):
        raise InvalidInput(
            "give both lon and lat, or neither (then a photo must carry GPS)",
            field="lon" if lon is None else "lat",
        )
    ingested = [ingest_photo(data, blobs, limits) for data in photos]
    where = locate(report, ingested)
    decision = router.route(where.lon, where.lat, report.category, where.crs, at=now, session=session)
    return Prepared(
        actor=actor,
        category=report.category,
        description=report.description,
        channel=channel,
        reporter_contact=report.reporter_contact,
        key=key,
        fingerprint=fingerprint,
        photos=ingested,
        where=where,
        decision=decision,
        now=now,
    )


def scoped_key(actor: Actor, idempotency_key: str | None) -> str | None:
    """Keys are scoped per account: two people's key "1" are different reports."""
    if not idempotency_key:
        return None
    if len(idempotency_key) > 100:
        raise InvalidInput("Idempotency-Key must be at most 100 characters", field="Idempotency-Key")
    return f"{actor.id}:{idempotency_key}"


def report_fingerprint(actor: Actor, report: ReportIn, photos: Sequence[bytes]) -> str:
    """What a retry must repeat exactly to be the same report."""
    body = json.dumps(
        {
            "by": actor.id,
            **report.model_dump(mode="json"),
            "photos": [hashlib.sha256(p).hexdigest() for p in photos],
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def locate(report: ReportIn, photos: list[Photo]) -> Located:
    """The report's own lon/lat, or else the first photo's EXIF GPS (always WGS-84)."""
    lon, lat = report.lon, report.lat
    if lon is not None and lat is not None:
        return Located(lon, lat, report.crs, "report")
    for photo in photos:
        if photo.lon is not None and photo.lat is not None:
            return Located(photo.lon, photo.lat, CoordinateSystem.wgs84, "photo EXIF GPS")
    raise InvalidInput("no location: give lon/lat, or a photo with GPS in its EXIF", field="location")


# -- filing: one statement per table for the whole list ------------------------------------------
def file_reports(
    session: Session, reports: Sequence[Prepared], default_radius_m: float, default_window_h: float
) -> list[Filed]:
    """File prepared reports in the session's transaction; a retried key answers with its case.

    Raises IntegrityError when another transaction took a key or tracking code meanwhile (the
    caller files the reports again one by one).
    """
    keys = [p.key for p in reports if p.key]
    earlier = (
        {c.idempotency_key: c for c in session.scalars(select(Case).where(Case.idempotency_key.in_(keys)))}
        if keys
        else {}
    )
    results: list[Filed | None] = [None] * len(reports)
    new: list[tuple[int, Prepared, Case]] = []
    first_of_key: dict[str, int] = {}
    for i, p in enumerate(reports):
        if p.key and p.key in earlier:
            results[i] = replay(earlier[p.key], p.fingerprint)
        elif p.key and p.key in first_of_key:
            continue  # the same key twice in one batch: answered with the first's case below
        else:
            if p.key:
                first_of_key[p.key] = i
            new.append((i, p, new_case(p)))
    if new:
        cases = [case for _, _, case in new]
        _insert_cases(session, cases)
        events = [report_event(p, case) for _, p, case in new]
        _insert_events(session, events)  # one statement: the trigger appends the deltas once for all
        photos = [photo_rows(p, case, event) for (_, p, case), event in zip(new, events, strict=True)]
        _insert_photos(session, [row for rows in photos for row in rows])
        links = suggest_duplicates(session, cases, default_radius_m, default_window_h)  # and linked
        for (i, _, case), event, rows in zip(new, events, photos, strict=True):
            results[i] = Filed(case, created=True, event=event, photos=rows, links=links[case.id])
    for i, p in enumerate(reports):
        if results[i] is None and p.key:  # a repeated key in this batch
            first = results[first_of_key[p.key]]
            assert first is not None
            results[i] = replay(first.case, p.fingerprint)
    return [r for r in results if r is not None]


# The rows are built as (transient) model objects, so the answer reads like any case; they are
# written with one fixed statement per table (geo/store/bulk.py) and given their ids back.
CASES = BulkInsert(
    "cases",
    """tracking_code text, category_code text, description text, channel text, reporter_contact text,
    reported_by text, reporter_account_id integer, reported_at timestamptz, reported_crs text,
    reported_lon float8, reported_lat float8, lon float8, lat float8, state text, grid_area_id integer,
    grid_code text, community_code text, street_code text, district_code text, unit_code text,
    cooperating text[], routing jsonb, idempotency_key text, idempotency_fingerprint text,
    created_at timestamptz""",
    returning="id, tracking_code",
    computed={
        "location": "ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)",
        "cooperating_unit_codes": "r.cooperating",
        "version": "1",
        "extensions": "0",
        "extension_requested": "false",
        "updated_at": "r.created_at",
    },
    via=("lon", "lat", "cooperating"),
)
EVENTS = BulkInsert(
    "case_event",
    """case_id bigint, at timestamptz, actor text, role text, action text, from_state text,
    to_state text, unit_code text, note text, data jsonb""",
    returning="id, case_id",
)
PHOTOS = BulkInsert(
    "case_photo",
    """case_id bigint, event_id bigint, purpose text, original_key text, public_key text,
    content_type text, public_content_type text, width integer, height integer, lon float8,
    lat float8, taken_at timestamptz""",
    returning="id, case_id, original_key",
)


def _insert_cases(session: Session, cases: Sequence[Case]) -> None:
    rows = []
    for case in cases:
        routing = case.routing or {}
        rows.append(
            {
                **{name: getattr(case, name) for name in CASES.names if name not in CASES.via},
                "lon": routing["lon"],
                "lat": routing["lat"],
                "cooperating": case.cooperating_unit_codes,
            }
        )
    ids = {code: id_ for id_, code in CASES.insert(session, rows)}
    for case in cases:
        case.id = ids[case.tracking_code]


def _insert_events(session: Session, events: Sequence[CaseEvent]) -> None:
    rows = [{name: getattr(e, name) for name in EVENTS.names} for e in events]
    ids = {case_id: id_ for id_, case_id in EVENTS.insert(session, rows)}  # one report event per case
    for e in events:
        e.id = ids[e.case_id]


def _insert_photos(session: Session, photos: Sequence[CasePhoto]) -> None:
    rows = [{name: getattr(p, name) for name in PHOTOS.names} for p in photos]
    ids = {(case_id, key): id_ for id_, case_id, key in PHOTOS.insert(session, rows)}
    for p in photos:
        p.id = ids[(p.case_id, p.original_key)]


def replay(existing: Case, fingerprint: str) -> Filed:
    """The answer to a retried key: its first case, if the retry is the same report."""
    if existing.idempotency_fingerprint != fingerprint:
        conflict = IdempotencyConflict(
            "this Idempotency-Key was used for a different report; use a new key for a new report",
            field="Idempotency-Key",
        )
        return Filed(existing, created=False, error=conflict)
    return Filed(existing, created=False)


def tracking_code(now: datetime) -> str:
    tail = "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(8))
    return f"GC{now:%y%m%d}{tail}"


def new_case(p: Prepared) -> Case:
    """The case row of a routed report (not yet added to a session)."""
    case = Case(
        tracking_code=tracking_code(p.now),
        category_code=p.category,
        description=p.description,
        channel=p.channel,
        reporter_contact=p.reporter_contact,
        reported_by=p.actor.username,
        reporter_account_id=p.actor.id,
        reported_at=p.now,
        reported_crs=p.where.crs.value,
        reported_lon=p.where.lon,
        reported_lat=p.where.lat,
        state=CaseState.reported.value,
        idempotency_key=p.key,
        idempotency_fingerprint=p.fingerprint,
        cooperating_unit_codes=[],
        version=1,
        extensions=0,
        extension_requested=False,
        created_at=p.now,
        updated_at=p.now,
    )
    # Stored in WGS-84 (EPSG:4326, lon/lat order): the routing's normalised point.
    apply_routing(case, p.decision, p.where.by)
    case.closed_at = case.deadline_at = case.parked_at = case.supervised_at = case.merged_into_id = None
    case.deadline_provisional = False  # no deadline until dispatch
    case.review_requested_at = None
    return case


def report_event(p: Prepared, case: Case) -> CaseEvent:
    """The report event, with the routing explanation as its note."""
    decision = p.decision
    note = (
        "unroutable: " + (decision.reason or "") + " → triage queue"
        if decision.status == RoutingStatus.unroutable
        else decision.explain()
    )
    return CaseEvent(
        case_id=case.id,
        at=p.now,
        actor=p.actor.username,
        role=p.actor.role.value,
        action="report",
        from_state=None,
        to_state=CaseState.reported.value,
        unit_code=case.unit_code,
        note=note,
        data={"routing_status": decision.status.value, "located_by": p.where.by},
    )


def photo_rows(p: Prepared, case: Case, event: CaseEvent) -> list[CasePhoto]:
    """The report's photos (the same photo sent twice is kept once)."""
    rows: dict[str, CasePhoto] = {}
    for photo in p.photos:
        rows.setdefault(photo.original_key, photo_row(case, event, photo, "report"))
    return list(rows.values())


def photo_row(case: Case, event: CaseEvent, photo: Photo, purpose: str) -> CasePhoto:
    return CasePhoto(
        case_id=case.id,
        event_id=event.id,
        purpose=purpose,
        original_key=photo.original_key,
        public_key=photo.public_key,
        content_type=photo.content_type,
        public_content_type=photo.public_content_type,
        width=photo.width,
        height=photo.height,
        lon=photo.lon,
        lat=photo.lat,
        taken_at=photo.taken_at,
    )


# The open cases of the same category within the category's distance and time window of each new
# case, nearest first, ten at most (at a hotspot with hundreds of open reports, linking each new
# one to all of them would grow every report's work with the pile). Candidates come through the
# GiST index on the geometry: a box in degrees that holds the whole radius (a degree of longitude,
# the shorter, is 111.32 km × cos(latitude); 10% to spare); then the exact test on the geography,
# in metres on the spheroid. A new case sees the cases filed before it, in its own batch too.
DUPLICATES_SQL = text(
    """
    WITH found AS (
        SELECT me.id AS case_id, d.id AS other_case_id, d.tracking_code, d.m AS distance_m,
               abs(extract(epoch FROM me.reported_at - d.reported_at)) / 3600 AS hours_apart
        FROM cases me
        JOIN category k ON k.code = me.category_code
        CROSS JOIN LATERAL (SELECT coalesce(k.duplicate_radius_m, :radius) AS radius,
                                   coalesce(k.duplicate_window_h, :window) AS window_h) w
        CROSS JOIN LATERAL (
            SELECT c.id, c.tracking_code, c.reported_at,
                   ST_Distance(geography(c.location), geography(me.location)) AS m
            FROM cases c
            WHERE ST_DWithin(
                    c.location, me.location,
                    w.radius * 1.1
                    / (111320 * greatest(cos(radians(least(abs(ST_Y(me.location)) + 0.01, 89.9))), 1e-3)))
              AND c.category_code = me.category_code
              AND c.id <> me.id
              AND NOT (c.id = ANY(CAST(:ids AS bigint[])) AND c.id > me.id)
              AND c.state = ANY(CAST(:open AS text[]))
              AND c.reported_at >= me.reported_at - make_interval(secs => w.window_h * 3600)
              AND ST_DWithin(geography(c.location), geography(me.location), w.radius)
            ORDER BY m, c.reported_at DESC, c.id
            LIMIT 10
        ) d
        WHERE me.id = ANY(CAST(:ids AS bigint[]))
    ), linked AS (
        INSERT INTO case_link (case_id, other_case_id, distance_m, hours_apart, status)
        SELECT case_id, other_case_id, distance_m, hours_apart, 'suggested' FROM found
    )
    SELECT case_id, other_case_id, tracking_code, distance_m, hours_apart FROM found
    ORDER BY case_id, distance_m, other_case_id
    """
)


def suggest_duplicates(
    session: Session, cases: Sequence[Case], default_radius_m: float, default_window_h: float
) -> dict[int, list[Suggested]]:
    """Link each new (written) case to its suggested duplicates, for all of them in one statement
    (the category's own radius and window, else the defaults); what was linked."""
    found: dict[int, list[Suggested]] = {case.id: [] for case in cases}
    if not cases:
        return found
    rows = session.execute(
        DUPLICATES_SQL,
        {
            "ids": [case.id for case in cases],
            "radius": default_radius_m,
            "window": default_window_h,
            "open": [s.value for s in OPEN],
        },
    )
    for case_id, other_id, code, metres, hours in rows:
        found[case_id].append(Suggested(case_id, other_id, code, float(metres), float(hours)))
    return found


# -- the group commit ------------------------------------------------------------------------------
#: Errors that mean the database could not be reached or answer: every report of the batch fails
#: alike (filing them one by one would only wait for the same timeout again, once per report).
UNREACHABLE = (PoolTimeout,)


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, UNREACHABLE):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class IntakeWriter:
    """Files prepared reports in shared transactions (group commit); thread-safe.

    `writers` threads each take every report waiting (up to `max_batch`) and file them together;
    while one waits on PostgreSQL the other gathers the next batch.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        default_radius_m: float = 50.0,
        default_window_h: float = 24.0,
        writers: int = 2,
        max_batch: int = 200,
    ):
        self.sessions = sessions
        self.default_radius_m = default_radius_m
        self.default_window_h = default_window_h
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Prepared, Future[Filed]] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"intake-writer-{n}", daemon=True) for n in range(writers)
        ]
        self._counting = threading.Lock()
        self.batches = 0  # how many transactions filed reports (for the benchmark and tests)
        self.filed = 0
        for thread in self._threads:
            thread.start()

    @property
    def writers(self) -> int:
        return len(self._threads)

    def submit(self, report: Prepared) -> Future[Filed]:
        """Queue a report; the future resolves once its transaction committed (or failed)."""
        future: Future[Filed] = Future()
        self._queue.put((report, future))
        return future

    def close(self) -> None:
        """File what is queued, then stop the threads."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # for this thread's next turn
                    break
                batch.append(more)
            self._file(batch)

    def _file(self, batch: list[tuple[Prepared, Future[Filed]]]) -> None:
        reports = [report for report, _ in batch]
        try:
            filed = self._write(reports)
        except Exception as error:  # noqa: BLE001 - each report gets its own answer below
            if _unreachable(error) or len(batch) == 1 and not isinstance(error, IntegrityError):
                for _, future in batch:
                    future.set_exception(error)
                return
            for report, future in batch:
                self._file_alone(report, future)
            return
        self._count(len(batch))
        for (_, future), result in zip(batch, filed, strict=True):
            _answer(future, result)

    def _write(self, reports: list[Prepared]) -> list[Filed]:
        """File reports in one transaction. The writer's connections are not pinged before use
        (a round trip per batch): one found dead before anything was written is replaced and the
        batch written once more; a failure while committing is never retried (the outcome is
        unknown: the client's retry with its Idempotency-Key finds out)."""
        for attempt in range(2):
            committing = False
            try:
                with self.sessions() as session:
                    with session.begin():
                        filed = file_reports(session, reports, self.default_radius_m, self.default_window_h)
                        committing = True
                    return filed
            except DBAPIError as error:
                if attempt or committing or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _file_alone(self, report: Prepared, future: Future[Filed]) -> None:
        """One report in a transaction of its own; a key another transaction took meanwhile
        answers with that transaction's case."""
        try:
            try:
                (result,) = self._write([report])
            except IntegrityError:
                if report.key is None:
                    raise
                with self.sessions() as session:
                    winner = session.scalar(select(Case).where(Case.idempotency_key == report.key))
                if winner is None:
                    raise
                result = replay(winner, report.fingerprint)
        except Exception as error:  # noqa: BLE001 - the report's own answer
            future.set_exception(error)
            return
        self._count(1)
        _answer(future, result)

    def _count(self, reports: int) -> None:
        with self._counting:
            self.batches += 1
            self.filed += reports


def _answer(future: Future[Filed], result: Filed) -> None:
    if result.error is not None:
        future.set_exception(result.error)
    else:
        future.set_result(result)
