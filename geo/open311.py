"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): other systems report and follow.

The catalogue's categories are the services; a posted request becomes a normal case through the
normal intake (prepared here, filed by the app's intake writer, routed as usual), on the channel
`open311`, by the inactive account `open311`; the API key says which system sent it. What this
module gives the routes (api/routes/open311.py) is plain data: services and their attributes,
requests and updates as views; the routes write the spec's XML and JSON and the words.

- **Keys** are made by an administrator (`gridcase open311 key create`, the admin desk), shown
  once and kept as their SHA-256, like bearer tokens; every change goes to the admin log.
- **Retries**: a request posted again with the same key and the same fields within 24 hours is
  the same request (its case is answered, nothing is filed twice). The key and a fingerprint of
  the fields make the case's Idempotency-Key, scoped to the hour-day it was first sent, so two
  identical posts racing each other are settled by the database's unique index.
- **What anyone reads** (no key needed, as the spec says): status, service, the unit, times,
  the place by its grid, community and street, the location rounded to 0.001° (as the public
  pages), the public photo. A caller with a valid key (a partner system) also gets the exact
  location and the description. The requester's contacts are never in any answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from geo import access
from geo.accounts import Actor, actor_of, digest
from geo.admin import Admin, record
from geo.areas import current_generation
from geo.cases.intake import Prepared, ReportIn, prepare_report, scoped_key
from geo.cases.service import CaseContext
from geo.cases.views import PUBLIC_DECIMALS, location_of
from geo.cases.workflow import TERMINAL
from geo.coords import CoordinateSystem
from geo.errors import GridcaseError, InvalidInput, NotFound, OutsideCoverage
from geo.routing import RoutingStatus
from geo.store.models import (
    Account,
    Area,
    Case,
    CaseEvent,
    CasePhoto,
    Category,
    Open311Key,
    Open311Request,
    ReferenceVersion,
    Unit,
)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHINA = ZoneInfo("Asia/Shanghai")  # the offset of every datetime gridcase writes (+08:00)
WINDOW = timedelta(days=90)  # GET requests: the default span, and the longest one may ask for
MAX_REQUESTS = 1000  # ... and at most this many requests
RETRY_WINDOW = timedelta(hours=24)  # the same key and fields within this are the same request
KEY_PREFIX = "o311_"
MAX_FIELD = 4000  # the spec's limit on a description; other fields are shorter still
MAX_DESCRIPTION = 2000  # gridcase's own limit on a case's description (ReportIn)
MAX_IDS = 1000
TOKEN_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
STATUSES = ("open", "closed")
#: The fields a POST may carry (besides `attribute[code]`), from the spec's argument lists.
POST_FIELDS = frozenset(
    {
        "api_key",
        "jurisdiction_id",
        "service_code",
        "lat",
        "long",
        "address_string",
        "address_id",
        "email",
        "device_id",
        "account_id",
        "first_name",
        "last_name",
        "phone",
        "description",
        "media_url",
    }
)
ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_]{1,32})\](\[\])?$")


class ApiKeyRefused(GridcaseError):
    """No api_key, or one that is unknown or revoked (the spec's 403)."""


# -- keys ----------------------------------------------------------------------------------------
def create_key(session: Session, by: Admin, name: str) -> tuple[Open311Key, str]:
    """A new API key for a system named `name`; the secret is returned once and kept hashed."""
    by.authorise(access.AdminAction.create_open311_key)
    name = name.strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise InvalidInput("a key's name is 1 to 64 printable characters", field="key_name")
    if session.scalar(select(Open311Key.id).where(Open311Key.name == name, Open311Key.revoked_at.is_(None))):
        raise InvalidInput(
            f"a live key is already named {name!r}: revoke it or choose another name", field="key_name"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    key = Open311Key(name=name, key_hash=digest(secret), prefix=secret[:12], created_by=by.name)
    session.add(key)
    session.flush()
    record(session, by, access.AdminAction.create_open311_key, "open311_key", name, None, _key_facts(key))
    return key, secret


def list_keys(session: Session) -> list[Open311Key]:
    """Every key, live ones first, newest first."""
    return list(
        session.scalars(select(Open311Key).order_by(Open311Key.revoked_at.is_not(None), Open311Key.id.desc()))
    )


def revoke_key(session: Session, by: Admin, name: str) -> Open311Key:
    """Stop a live key (by its name or its shown prefix) at once; its requests stay."""
    by.authorise(access.AdminAction.revoke_open311_key)
    name = name.strip()
    key = session.scalar(
        select(Open311Key)
        .where(Open311Key.revoked_at.is_(None), or_(Open311Key.name == name, Open311Key.prefix == name))
        .order_by(Open311Key.id)
        .limit(1)
    )
    if key is None:
        raise NotFound(f"no live key named {name!r}", field="key_name")
    before = _key_facts(key)
    key.revoked_at = datetime.now(UTC)
    session.flush()
    record(
        session, by, access.AdminAction.revoke_open311_key, "open311_key", key.name, before, _key_facts(key)
    )
    return key


def _key_facts(key: Open311Key) -> dict[str, Any]:
    return {"name": key.name, "prefix": key.prefix, "revoked": key.revoked_at is not None}


def check_key(session: Session, api_key: str | None) -> Open311Key:
    """The live key a request carries, or the spec's 403."""
    if not api_key:
        raise ApiKeyRefused("api_key was not provided", field="api_key")
    key = session.scalar(
        select(Open311Key).where(Open311Key.key_hash == digest(api_key), Open311Key.revoked_at.is_(None))
    )
    if key is None:
        raise ApiKeyRefused("invalid api_key: unknown or revoked", field="api_key")
    return key


def partner_key(session: Session, api_key: str | None) -> Open311Key | None:
    """On a GET the key is optional: none is the public's view, a valid one a partner's; a wrong
    one is refused (403) rather than quietly read as none."""
    return check_key(session, api_key) if api_key else None


def check_jurisdiction(configured: str, given: str | None) -> None:
    """One jurisdiction: `jurisdiction_id` may be left out; a different one is not found (404)."""
    if configured and given and given != configured:
        raise NotFound(
            f"jurisdiction_id {given!r} not found; this endpoint serves {configured!r}",
            field="jurisdiction_id",
        )


# -- services ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attribute:
    """A field a service asks for beyond the spec's own (its words are the catalogue's in api/i18n)."""

    code: str
    datatype: str  # string | number | datetime | text | singlevaluelist | multivaluelist
    required: bool
    order: int
    values: tuple[str, ...] = ()
    variable: bool = True


#: Components (部件) have an owner and a plate: which one, and what is wrong with it.
COMPONENT_ATTRIBUTES = (
    Attribute("component_code", "string", required=False, order=1),
    Attribute(
        "condition",
        "singlevaluelist",
        required=True,
        order=2,
        values=("damaged", "missing", "displaced", "blocked", "other"),
    ),
)
#: Emergencies (事件 04) need to know at once whether someone is in danger.
EMERGENCY_ATTRIBUTES = (
    Attribute("danger", "singlevaluelist", required=True, order=1, values=("yes", "no", "unknown")),
)


def attributes_for(kind: str, class_code: str) -> tuple[Attribute, ...]:
    """The attributes a category asks for (its service definition)."""
    if kind == "component":
        return COMPONENT_ATTRIBUTES
    if kind == "event" and class_code == "04":
        return EMERGENCY_ATTRIBUTES
    return ()


@dataclass(frozen=True)
class Service:
    """A catalogue category as an Open311 service."""

    code: str
    name: str
    name_en: str | None
    kind: str
    class_code: str
    time_limit: float
    time_limit_unit: str
    department: str | None
    department_en: str | None
    attributes: tuple[Attribute, ...]


def _services(session: Session, code: str | None = None) -> list[Service]:
    query = (
        select(Category, Unit.name, Unit.name_en)
        .outerjoin(Unit, Unit.code == Category.department_code)
        .order_by(Category.kind.desc(), Category.code)
    )
    if code is not None:
        query = query.where(Category.code == code)
    return [
        Service(
            code=c.code,
            name=c.name,
            name_en=c.name_en,
            kind=c.kind,
            class_code=c.class_code,
            time_limit=float(c.time_limit),
            time_limit_unit=c.time_limit_unit,
            department=unit,
            department_en=unit_en,
            attributes=attributes_for(c.kind, c.class_code),
        )
        for c, unit, unit_en in session.execute(query)
    ]


def services(session: Session) -> list[Service]:
    """Every category of the catalogue, events first, by code."""
    return _services(session)


def service(session: Session, code: str | None) -> Service:
    """One service by its code: 400 if none is given, 404 if there is no such category."""
    if not code:
        raise InvalidInput("service_code was not provided", field="service_code")
    found = _services(session, code) if len(code) <= 16 else []
    if not found:
        raise NotFound(f"service_code {code!r} not found", field="service_code")
    return found[0]


def changeset(session: Session) -> datetime:
    """When the services last changed (the catalogue and the reference data are versioned)."""
    changed = session.scalar(select(func.max(ReferenceVersion.changed_at)))
    return changed or datetime(2026, 1, 1, tzinfo=UTC)


# -- posting a request -----------------------------------------------------------------------------
@dataclass
class Posted:
    """A POST's fields, read and checked (names as the spec gives them)."""

    fields: dict[str, str]
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        value = self.fields.get(name, "").strip()
        return value or None


def read_posted(items: Iterable[tuple[str, str]]) -> Posted:
    """The spec's fields and `attribute[code]` (or `attribute[code][]`, repeated) from a form."""
    posted = Posted({})
    for name, value in items:
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{name[:40]!r} contains a NUL character", field=name[:40].replace("\x00", ""))
        if len(value) > MAX_FIELD:
            raise InvalidInput(f"{name} is longer than {MAX_FIELD:,} characters", field=name[:40])
        if match := ATTRIBUTE.match(name):
            posted.attributes.setdefault(match.group(1), []).append(value.strip())
        elif name in POST_FIELDS:
            if name in posted.fields and name != "media_url":
                raise InvalidInput(f"{name} was given twice", field=name)
            posted.fields.setdefault(name, value)  # the first media_url is the one kept
        # Other fields are not the spec's: ignored, as clients send extensions servers do not know.
    return posted


def check_attributes(svc: Service, posted: Posted) -> dict[str, Any]:
    """The posted attributes against the service definition: 400 naming the attribute at fault."""
    values: dict[str, Any] = {}
    for attr in svc.attributes:
        given = [v for v in posted.attributes.get(attr.code, []) if v]
        name = f"attribute[{attr.code}]"
        if not given:
            if attr.required:
                raise InvalidInput(f"{name} is required for service {svc.code}", field=name)
            continue
        if attr.datatype in ("singlevaluelist", "multivaluelist"):
            wrong = [v for v in given if v not in attr.values]
            if wrong:
                raise InvalidInput(
                    f"{name} must be one of {', '.join(attr.values)}, not {wrong[0]!r}", field=name
                )
        if attr.datatype != "multivaluelist" and len(given) > 1:
            raise InvalidInput(f"{name} takes one value", field=name)
        if attr.datatype == "string" and len(given[0]) > 64:
            raise InvalidInput(f"{name} is at most 64 characters", field=name)
        values[attr.code] = given if attr.datatype == "multivaluelist" else given[0]
    return values


MAX_OTHER_ATTRIBUTES = 20


def other_attributes(svc: Service, posted: Posted) -> dict[str, Any]:
    """Attributes the service does not define, kept as sent (clients send extensions: FixMyStreet
    cobrands add their own); not checked beyond their number and length, not in the description."""
    known = {a.code for a in svc.attributes}
    other = {code: v for code, v in posted.attributes.items() if code not in known}
    if len(other) > MAX_OTHER_ATTRIBUTES:
        raise InvalidInput(
            f"at most {MAX_OTHER_ATTRIBUTES} attributes the service does not define", field="attribute"
        )
    for code, given in other.items():
        if len(given) > 20 or any(len(v) > 200 for v in given):
            raise InvalidInput(
                f"attribute[{code}] is at most 20 values of 200 characters", field=f"attribute[{code}]"
            )
    return {code: given[0] if len(given) == 1 else given for code, given in other.items()}


def _coordinate(posted: Posted, name: str, bound: float) -> float:
    raw = posted.get(name) or ""
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a number (WGS-84 degrees), not {raw[:40]!r}", field=name
        ) from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise InvalidInput(f"{name} must be between -{bound:g} and {bound:g}", field=name)
    return value


def locate(session: Session, posted: Posted) -> tuple[float, float]:
    """The request's WGS-84 lon/lat: its lat & long, or its address_string found among the names of
    gridcase's areas and places; the spec's 400 when neither locates it."""
    lat, lon = posted.get("lat"), posted.get("long")
    if lat is not None or lon is not None:
        if lat is None or lon is None:
            missing = "lat" if lat is None else "long"
            raise InvalidInput(f"lat and long are sent together; {missing} is missing", field=missing)
        return _coordinate(posted, "long", 180), _coordinate(posted, "lat", 90)
    address = posted.get("address_string")
    if address is not None:
        found = find_address(session, address)
        if found is None:
            raise InvalidInput(
                f"address_string {address[:80]!r} names no grid, community, street, compound or place "
                "gridcase knows; send lat and long",
                field="address_string",
            )
        return found
    if posted.get("address_id") is not None:
        raise InvalidInput(
            "address_id is not supported here: send lat and long or address_string", field="address_id"
        )
    raise InvalidInput(
        "required location was not provided: send lat and long, or address_string", field="lat"
    )


#: How specific each kind of named place is (a compound inside a grid beats the grid's community).
SPECIFIC = {"compound": 5, "grid": 4, "layer": 3.5, "community": 3, "street": 2, "district": 1}
ADDRESS_SQL = text(
    """
    SELECT level, code, name, parent_code, ST_X(p) AS x, ST_Y(p) AS y
    FROM (SELECT level, code, name, parent_code, ST_PointOnSurface(geom) AS p FROM area
          WHERE :generation BETWEEN generation_low AND generation_high
            AND char_length(name) >= 2 AND strpos(:address, name) > 0) a
    UNION ALL
    SELECT 'layer', code, name, NULL, ST_X(p), ST_Y(p)
    FROM (SELECT code, name, ST_PointOnSurface(zone) AS p FROM responsibility_layer
          WHERE char_length(name) >= 2 AND strpos(:address, name) > 0) l
    """
)


def find_address(session: Session, address: str) -> tuple[float, float] | None:
    """A point inside the most specific named place the address mentions (grid names repeat in
    every community, so a name that is not unique counts only with its parent named too)."""
    generation = current_generation(session)
    if generation is None:
        return None
    rows = session.execute(ADDRESS_SQL, {"generation": generation, "address": address[:500]}).all()
    codes = {r.code for r in rows}
    names: defaultdict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        names[(r.level, r.name)] += 1
    usable = [r for r in rows if names[(r.level, r.name)] == 1 or r.parent_code in codes]
    if not usable:
        return None
    best = max(usable, key=lambda r: (SPECIFIC.get(r.level, 0), len(r.name), r.code))
    return float(best.x), float(best.y)


def posted_fingerprint(key: Open311Key, posted: Posted) -> str:
    """What a retry repeats: every field but the key itself, and the attributes."""
    body = {k: v.strip() for k, v in posted.fields.items() if k != "api_key"}
    return hashlib.sha256(
        json.dumps({"key": key.id, "fields": body, "attributes": posted.attributes}, sort_keys=True).encode()
    ).hexdigest()


def _idempotency_key(key: Open311Key, fingerprint: str, day: int) -> str:
    return f"o311:{key.id}:{day}:{fingerprint}"


def _day(now: datetime) -> int:
    return int(now.timestamp() // RETRY_WINDOW.total_seconds())


def reporter(session: Session) -> Actor:
    """The account that files Open311 requests (inactive; migration 0010)."""
    account = session.scalar(select(Account).where(Account.username == access.OPEN311_ACCOUNT))
    if account is None:
        raise NotFound("the open311 account is missing: migrate the database", field="account")
    return actor_of(account)


def earlier_request(
    session: Session, actor: Actor, key: Open311Key, fingerprint: str, now: datetime
) -> Case | None:
    """The case of the same request posted with the same key in the last 24 hours, if any."""
    day = _day(now)
    keys = [scoped_key(actor, _idempotency_key(key, fingerprint, d)) for d in (day, day - 1)]
    return session.scalar(
        select(Case)
        .where(Case.idempotency_key.in_(keys), Case.reported_at >= now - RETRY_WINDOW)
        .order_by(Case.id)
        .limit(1)
    )


def _contact(posted: Posted) -> str | None:
    name = " ".join(p for p in (posted.get("first_name"), posted.get("last_name")) if p)
    return " / ".join(p for p in (name, posted.get("phone"), posted.get("email")) if p)[:200] or None


def _description(posted: Posted, attributes: dict[str, Any]) -> str:
    words = posted.get("description") or ""
    if attributes:
        listed = "; ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in attributes.items())
        words = f"{words}\n\n[Open311 attributes: {listed}]".strip()
    if len(words) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description (with the attributes) is {len(words):,} characters; gridcase keeps at most "
            f"{MAX_DESCRIPTION:,}",
            field="description",
        )
    return words


@dataclass
class Prepared311:
    """A posted request checked, located and routed: ready for the intake writer, or answered by
    the case of the same request posted earlier."""

    key: Open311Key
    service: Service
    posted: Posted
    attributes: dict[str, Any]
    other: dict[str, Any] = field(default_factory=dict)  # attributes the service does not define
    prepared: Prepared | None = None
    earlier: Case | None = None


def prepare_request(
    session: Session, ctx: CaseContext, posted: Posted, jurisdiction: str, now: datetime
) -> Prepared311:
    """Check a POST (key, jurisdiction, service, attributes, location), find a retry, or prepare
    the report for the intake writer (routed as every report is)."""
    key = check_key(session, posted.get("api_key"))
    check_jurisdiction(jurisdiction, posted.get("jurisdiction_id"))
    svc = service(session, posted.get("service_code"))
    attributes = check_attributes(svc, posted)
    actor = reporter(session)
    fingerprint = posted_fingerprint(key, posted)
    done = Prepared311(key, svc, posted, attributes, other_attributes(svc, posted))
    done.earlier = earlier_request(session, actor, key, fingerprint, now)
    if done.earlier is not None:
        return done
    lon, lat = locate(session, posted)
    report = ReportIn(
        category=svc.code,
        description=_description(posted, attributes),
        lon=lon,
        lat=lat,
        crs=CoordinateSystem.wgs84,
        reporter_contact=_contact(posted),
    )
    idempotency = _idempotency_key(key, fingerprint, _day(now))
    prepared = prepare_report(
        ctx.router, ctx.blobs, ctx.photo_limits, actor, report, [], idempotency, now, session=session
    )
    if prepared.decision.status == RoutingStatus.unroutable:
        raise OutsideCoverage(
            f"the location ({lat:.6f}, {lon:.6f}) is outside the area gridcase serves: "
            f"{prepared.decision.reason or 'in no grid'}",
            field="lat",
        )
    # Through the one intake path, on the channel that says where it came from.
    done.prepared = dataclasses.replace(prepared, channel=access.OPEN311_CHANNEL)
    return done


def new_token() -> str:
    return "T" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(15))


def remember(session: Session, done: Prepared311, case_id: int) -> str:
    """Keep what the request carried beyond its case (once; a retry finds it); its token."""
    posted = done.posted
    requester = {
        k: posted.get(k) for k in ("email", "phone", "first_name", "last_name", "device_id", "account_id")
    }
    session.execute(
        insert(Open311Request)
        .values(
            case_id=case_id,
            key_id=done.key.id,
            token=new_token(),
            attributes={**done.other, **done.attributes},
            media_url=posted.get("media_url"),
            requester={k: v for k, v in requester.items() if v},
            address_string=posted.get("address_string"),
        )
        .on_conflict_do_nothing(index_elements=["case_id"])
    )
    token = session.scalar(select(Open311Request.token).where(Open311Request.case_id == case_id))
    assert token is not None
    return token


def token_request(session: Session, token: str) -> tuple[int, str]:
    """The service_request_id of a token (404 if there is none)."""
    case_id = (
        session.scalar(select(Open311Request.case_id).where(Open311Request.token == token))
        if len(token) <= 32
        else None
    )
    if case_id is None:
        raise NotFound(f"token {token[:40]!r} not found", field="token")
    return case_id, token


# -- reading requests ------------------------------------------------------------------------------
@dataclass
class RequestView:
    """A case as an Open311 service request (facts; the route writes the words)."""

    id: int
    state: str
    status: str  # open | closed
    service_code: str
    service_name: str
    service_name_en: str | None
    unit: str | None
    unit_en: str | None
    requested: datetime
    updated: datetime
    expected: datetime | None
    grid: str | None
    community: str | None
    street: str | None
    lon: float | None
    lat: float | None
    media_path: str | None
    description: str | None  # a partner's view only
    merged_into: int | None
    time_limit: float | None
    time_limit_unit: str | None


def status_of(state: str) -> str:
    """open while the case lives; closed once it is closed, rejected, voided or merged."""
    return "closed" if state in TERMINAL else "open"


def _area_name(code_column: Any, level: str) -> Any:
    return (
        select(Area.name)
        .where(Area.code == code_column, Area.level == level)
        .order_by(Area.generation_high.desc())
        .limit(1)
        .scalar_subquery()
    )


def _request_query() -> Select:
    return (
        select(
            Case,
            Category.name,
            Category.name_en,
            Unit.name,
            Unit.name_en,
            _area_name(Case.grid_code, "grid"),
            _area_name(Case.community_code, "community"),
            _area_name(Case.street_code, "street"),
        )
        .join(Category, Category.code == Case.category_code)
        .outerjoin(Unit, Unit.code == Case.unit_code)
    )


def _views(session: Session, rows: Sequence[Any], partner: bool) -> list[RequestView]:
    ids = [row[0].id for row in rows]
    photos: dict[int, str] = {}
    if ids:
        for case_id, public_key in session.execute(
            select(CasePhoto.case_id, CasePhoto.public_key)
            .where(CasePhoto.case_id.in_(ids), CasePhoto.purpose == "report")
            .order_by(CasePhoto.id.desc())
        ):
            photos[case_id] = f"/api/v1/photos/{public_key}"  # the first one wins (ordered last)
    views = []
    for case, name, name_en, unit, unit_en, grid, community, street in rows:
        lon, lat = location_of(case)
        if not partner and lon is not None and lat is not None:
            lon, lat = round(lon, PUBLIC_DECIMALS), round(lat, PUBLIC_DECIMALS)
        status = status_of(case.state)
        views.append(
            RequestView(
                id=case.id,
                state=case.state,
                status=status,
                service_code=case.category_code,
                service_name=name,
                service_name_en=name_en,
                unit=unit,
                unit_en=unit_en,
                requested=case.reported_at,
                updated=(case.closed_at or case.updated_at) if status == "closed" else case.updated_at,
                expected=case.deadline_at,
                grid=grid,
                community=community,
                street=street,
                lon=lon,
                lat=lat,
                media_path=photos.get(case.id),
                description=case.description if partner else None,
                merged_into=case.merged_into_id,
                time_limit=float(case.time_limit) if case.time_limit is not None else None,
                time_limit_unit=case.time_limit_unit,
            )
        )
    return views


def request_view(session: Session, case_id: int, partner: bool = False) -> RequestView:
    """One service request by id (404 if there is no such case)."""
    rows = session.execute(_request_query().where(Case.id == case_id)).all() if 0 < case_id < 2**63 else []
    if not rows:
        raise NotFound(f"service_request_id {case_id} not found", field="service_request_id")
    return _views(session, rows, partner)[0]


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' arguments, read and checked."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def parse_datetime(value: str, name: str) -> datetime:
    """A W3C datetime (with Z or an offset), or a date (midnight in China); 400 otherwise."""
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            parsed = datetime.combine(day, time(), tzinfo=CHINA)
        else:
            parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} must be a W3C datetime such as 2026-09-30T08:00:00+08:00, not {raw[:40]!r}", field=name
        ) from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{name} needs its time zone: Z or an offset such as +08:00", field=name)
    if not 1900 <= parsed.year <= 2999:
        raise InvalidInput(f"{name} must fall between the years 1900 and 2999", field=name)
    return parsed


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def read_query(params: dict[str, str]) -> RequestQuery:
    """service_request_id (a comma list: it overrides the rest), service_code, status, dates."""
    ids = []
    for raw in _list(params.get("service_request_id")):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise InvalidInput(
                f"service_request_id {raw[:40]!r} is not a request id", field="service_request_id"
            )
        ids.append(int(raw))
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"at most {MAX_IDS:,} service_request_id at once", field="service_request_id")
    statuses = _list(params.get("status"))
    for status in statuses:
        if status not in STATUSES:
            raise InvalidInput(f"status must be open or closed, not {status[:40]!r}", field="status")
    start = parse_datetime(params["start_date"], "start_date") if params.get("start_date") else None
    end = parse_datetime(params["end_date"], "end_date") if params.get("end_date") else None
    if start and end and start > end:
        raise InvalidInput("start_date is after end_date", field="start_date")
    if start and end and end - start > WINDOW:
        raise InvalidInput("start_date and end_date may not span more than 90 days", field="end_date")
    return RequestQuery(tuple(ids), _list(params.get("service_code")), statuses, start, end)


def window(start: datetime | None, end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The span asked for, or the spec's default: the most recent 90 days (from a start, 90 days on)."""
    if start and end:
        return start, end
    if start:
        return start, min(start + WINDOW, max(now, start))
    end = end or now
    return end - WINDOW, end


def requests(
    session: Session, query: RequestQuery, now: datetime, partner: bool = False
) -> list[RequestView]:
    """The requests asked for, newest first, at most 1,000 (ids override every other argument)."""
    stmt = _request_query()
    if query.ids:
        stmt = stmt.where(Case.id.in_(query.ids))
    else:
        start, end = window(query.start, query.end, now)
        stmt = stmt.where(Case.reported_at >= start, Case.reported_at <= end)
        if query.service_codes:
            stmt = stmt.where(Case.category_code.in_(query.service_codes))
        if set(query.statuses) == {"closed"}:
            stmt = stmt.where(Case.state.in_([s.value for s in TERMINAL]))
        elif set(query.statuses) == {"open"}:
            stmt = stmt.where(Case.state.not_in([s.value for s in TERMINAL]))
    rows = session.execute(stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)).all()
    return _views(session, rows, partner)


# -- mySociety's servicerequestupdates ------------------------------------------------------------
#: gridcase's states in mySociety's extended statuses (FixMyStreet reads these).
UPDATE_STATUS = {
    "reported": "open",
    "verified": "investigating",
    "filed": "action_scheduled",
    "published": "action_scheduled",
    "claimed": "in_progress",
    "dispatched": "action_scheduled",
    "signed": "in_progress",
    "returned": "internal_referral",
    "handled": "in_progress",
    "rework": "in_progress",
    "checked": "in_progress",
    "closed": "fixed",
    "parked": "action_scheduled",
    "rejected": "no_further_action",
    "voided": "closed",
    "merged": "duplicate",
}


@dataclass
class UpdateView:
    """One change of a case's state, as an update (facts; the route writes the words)."""

    update_id: int
    service_request_id: int
    state: str
    status: str
    action: str
    unit: str | None
    unit_en: str | None
    at: datetime
    media_path: str | None


def updates(
    session: Session, start: datetime | None, end: datetime | None, now: datetime
) -> list[UpdateView]:
    """Every change of state in the span (default: the last 90 days), oldest first, at most 1,000."""
    if start and end and start > end:
        raise InvalidInput("start_date is after end_date", field="start_date")
    low, high = window(start, end, now)
    rows = session.execute(
        select(CaseEvent, Unit.name, Unit.name_en)
        .outerjoin(Unit, Unit.code == CaseEvent.unit_code)
        .where(
            CaseEvent.at >= low,
            CaseEvent.at <= high,
            CaseEvent.from_state.is_distinct_from(CaseEvent.to_state),
        )
        .order_by(CaseEvent.at, CaseEvent.id)
        .limit(MAX_REQUESTS)
    ).all()
    ids = [e.id for e, _, _ in rows]
    photos: dict[int, str] = {}
    if ids:
        for event_id, public_key in session.execute(
            select(CasePhoto.event_id, CasePhoto.public_key)
            .where(CasePhoto.event_id.in_(ids))
            .order_by(CasePhoto.id.desc())
        ):
            if event_id is not None:
                photos[event_id] = f"/api/v1/photos/{public_key}"
    return [
        UpdateView(
            update_id=e.id,
            service_request_id=e.case_id,
            state=e.to_state,
            status=UPDATE_STATUS.get(e.to_state, status_of(e.to_state)),
            action=e.action,
            unit=unit,
            unit_en=unit_en,
            at=e.at,
            media_path=photos.get(e.id),
        )
        for e, unit, unit_en in rows
    ]


def w3c(moment: datetime | None) -> str | None:
    """A datetime as the spec writes it: W3C, seconds, China's offset (2026-09-30T08:00:00+08:00)."""
    if moment is None:
        return None
    return moment.astimezone(CHINA).isoformat(timespec="seconds")
