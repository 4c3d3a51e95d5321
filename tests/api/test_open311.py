"""Open311 GeoReport v2 under /open311/v2 (issue 15), checked against the spec's own field lists:
every call in XML (parsed, element names checked) and JSON (bare arrays), the content types, the
W3C datetimes with China's offset, the error lists with 400/403/404, a request posted and read
back with its routed unit, a retry that files nothing twice, a closed case, mySociety's
servicerequestupdates after workflow steps, hostile input (never a 500), and the key commands."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from geo import admin, open311
from geo.store.models import AdminLog, Area, Case, Category, Open311Key, Open311Request, Unit
from tests.conftest import rolled_back, work_to_closing
from tests.test_cli import run

# -- the spec's field lists (http://wiki.open311.org/GeoReport_v2, Service_Discovery; mySociety's
# servicerequestupdates as FixMyStreet reads it), written from the documents, not from the code --
DISCOVERY_FIELDS = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT_FIELDS = {"specification", "url", "changeset", "type", "formats"}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
DEFINITION_FIELDS = {"service_code", "attributes"}
ATTRIBUTE_FIELDS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
VALUE_FIELDS = {"key", "name"}
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
POSTED_FIELDS = {"service_request_id", "token", "service_notice", "account_id"}
TOKEN_FIELDS = {"service_request_id", "token"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
UPDATE_REQUIRED = {
    "update_id",
    "service_request_id",
    "status",
    "updated_datetime",
    "description",
    "media_url",
}
UPDATE_OPTIONAL = {"external_status_code", "customer_reference", "fixmystreet_id", "extras"}
UPDATE_STATUSES = {
    "open",
    "closed",
    "fixed",
    "in_progress",
    "action_scheduled",
    "investigating",
    "duplicate",
    "not_councils_responsibility",
    "no_further_action",
    "internal_referral",
    "reopen",
    "for_triage",
}
ERROR_FIELDS = {"code", "description"}
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
CANAL = (113.9002, 29.7250)  # by the North Canal: the water bureau's (WATER) for E0106
V2 = "/open311/v2"


@pytest.fixture(scope="module")
def client(case_client):
    return case_client


@pytest.fixture(scope="module")
def api_key(cases_store):
    """A live key, made as the admin desk or the console makes one."""
    with cases_store.transaction() as session:
        _, secret = open311.create_key(session, admin.Admin("test", "cli"), "fixmystreet-test")
    return secret


def xml_of(response) -> ET.Element:
    assert response.headers["content-type"] == XML_TYPE, response.headers["content-type"]
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)


def json_of(response):
    assert response.headers["content-type"] == JSON_TYPE, response.headers["content-type"]
    return response.json()


def items(root: ET.Element, root_tag: str, item_tag: str) -> list[dict[str, ET.Element]]:
    """The XML items of a list answer, each as {child tag: element}, the tags checked."""
    assert root.tag == root_tag
    assert all(child.tag == item_tag for child in root), [c.tag for c in root]
    return [{child.tag: child for child in item} for item in root]


def spec_error(response, status: int, fmt: str = "xml") -> str:
    """The spec's error list with this status; its description."""
    assert response.status_code == status, response.text
    if fmt == "json":
        body = json_of(response)
        assert isinstance(body, list) and body and set(body[0]) == ERROR_FIELDS and body[0]["code"] == status
        return body[0]["description"]
    (error,) = items(xml_of(response), "errors", "error")
    assert set(error) == ERROR_FIELDS and error["code"].text == str(status)
    return error["description"].text or ""


def post(client, fmt: str = "xml", **fields):
    """A POST as the spec sends it: application/x-www-form-urlencoded, charset utf-8."""
    body = "&".join(f"{quote(k, safe='[]')}={quote(str(v))}" for k, v in fields.items())
    return client.post(
        f"{V2}/requests.{fmt}",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


def canal_request(api_key: str, **more):
    return {
        "api_key": api_key,
        "service_code": "E0106",
        "lat": CANAL[1],
        "long": CANAL[0],
        "description": "北渠边漂着一片垃圾",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.org",
        "phone": "13800001111",
        **more,
    }


def filed_id(response) -> int:
    (answer,) = items(xml_of(response), "service_requests", "request")
    assert set(answer) <= POSTED_FIELDS and {"service_request_id", "service_notice"} <= set(answer)
    return int(answer["service_request_id"].text or "")


# -- discovery and services --------------------------------------------------------------------------
def test_discovery_in_both_formats(client):
    root = xml_of(client.get(f"{V2}/discovery.xml"))
    assert root.tag == "discovery" and {c.tag for c in root} == DISCOVERY_FIELDS
    (endpoint,) = root.find("endpoints")  # type: ignore[union-attr]
    assert endpoint.tag == "endpoint" and {c.tag for c in endpoint} == ENDPOINT_FIELDS
    assert [f.text for f in endpoint.find("formats")] == ["text/xml", "application/json"]  # type: ignore[union-attr]
    assert all(f.tag == "format" for f in endpoint.find("formats"))  # type: ignore[union-attr]
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url", "").endswith("/open311/v2")
    assert W3C.match(root.findtext("changeset", ""))
    body = json_of(client.get(f"{V2}/discovery.json"))
    assert set(body) == DISCOVERY_FIELDS and set(body["endpoints"][0]) == ENDPOINT_FIELDS
    assert body["endpoints"][0]["type"] == "production" and body["key_service"]


def test_every_category_is_a_service_grouped_by_its_class(client, cases_store):
    with rolled_back(cases_store) as session:
        codes = set(session.scalars(select(Category.code)))
        components = set(session.scalars(select(Category.code).where(Category.kind == "component")))
    services = json_of(client.get(f"{V2}/services.json"))
    assert isinstance(services, list) and {s["service_code"] for s in services} == codes
    for s in services:
        assert set(s) == SERVICE_FIELDS and s["type"] == "realtime"
        assert s["metadata"] is (s["service_code"] in components or s["service_code"].startswith("E04"))
    garbage = next(s for s in services if s["service_code"] == "E0106")
    assert garbage["group"] == "事件 · 市容环境" and "市容环境" in garbage["keywords"].split(",")
    assert "处置时限" in garbage["description"]
    english = json_of(client.get(f"{V2}/services.json?lang=en"))
    assert next(s for s in english if s["service_code"] == "E0106")["group"].startswith("Event · ")
    xml_services = items(xml_of(client.get(f"{V2}/services.xml")), "services", "service")
    assert len(xml_services) == len(codes)
    for s in xml_services:
        assert set(s) == SERVICE_FIELDS and s["metadata"].text in ("true", "false")


def test_a_service_definition_lists_its_attributes_in_both_formats(client, cases_store):
    with rolled_back(cases_store) as session:
        component = session.scalar(select(Category.code).where(Category.kind == "component").limit(1))
    definition = json_of(client.get(f"{V2}/services/{component}.json"))
    assert set(definition) == DEFINITION_FIELDS and definition["service_code"] == component
    attributes = definition["attributes"]
    assert [a["order"] for a in attributes] == sorted(a["order"] for a in attributes)
    for a in attributes:
        assert set(a) == ATTRIBUTE_FIELDS and a["datatype"] in DATATYPES and a["description"]
        assert all(set(v) == VALUE_FIELDS for v in a["values"])
    condition = next(a for a in attributes if a["code"] == "condition")
    assert condition["required"] is True and {"key": "damaged", "name": "破损"} in condition["values"]
    root = xml_of(client.get(f"{V2}/services/{component}.xml"))
    assert root.tag == "service_definition" and {c.tag for c in root} == DEFINITION_FIELDS
    xml_attributes = items(root.find("attributes"), "attributes", "attribute")  # type: ignore[arg-type]
    assert all(set(a) == ATTRIBUTE_FIELDS for a in xml_attributes)
    values = next(a for a in xml_attributes if a["code"].text == "condition")["values"]
    assert [v.tag for v in values] == ["value"] * len(condition["values"])
    assert {c.tag for c in values[0]} == VALUE_FIELDS
    plain = json_of(client.get(f"{V2}/services/E0106.json"))
    assert plain == {"service_code": "E0106", "attributes": []}


def test_an_unknown_service_is_not_found(client, api_key):
    assert "ZZ99" in spec_error(client.get(f"{V2}/services/ZZ99.xml"), 404)
    spec_error(client.get(f"{V2}/services/ZZ99.json"), 404, "json")
    spec_error(post(client, **canal_request(api_key, service_code="ZZ99")), 404)
    assert "service_code" in spec_error(post(client, **canal_request(api_key, service_code="")), 400)


# -- posting and reading back ---------------------------------------------------------------------------
def test_a_posted_request_becomes_a_routed_case_read_back_with_its_unit(client, cases_store, api_key):
    response = post(client, **canal_request(api_key, description="渠边垃圾，往返测试"))
    assert response.status_code == 200, response.text
    case_id = filed_id(response)
    with rolled_back(cases_store) as session:
        case = session.get(Case, case_id)
        assert case is not None and case.channel == "open311" and case.reported_by == "open311"
        assert case.unit_code == "WATER" and case.state == "reported" and case.grid_code
        assert "Jane Doe" in (case.reporter_contact or "") and "13800001111" in (case.reporter_contact or "")
        water = session.get(Unit, "WATER")
        assert water is not None
        token = session.scalar(select(Open311Request.token).where(Open311Request.case_id == case_id))
    for fmt in ("json", "xml"):
        got = client.get(f"{V2}/requests/{case_id}.{fmt}")
        assert got.status_code == 200, got.text
        if fmt == "json":
            (request,) = json_of(got)
            assert set(request) == REQUEST_FIELDS
            assert request["service_request_id"] == case_id and request["status"] == "open"
            assert request["agency_responsible"] == water.name and request["service_code"] == "E0106"
            assert request["status_notes"] == "待受理" and request["description"] is None
            assert W3C.match(request["requested_datetime"]) and W3C.match(request["updated_datetime"])
            assert request["expected_datetime"] is None  # no deadline before dispatch
            assert abs(request["lat"] - CANAL[1]) < 0.001 and request["lat"] == round(request["lat"], 3)
            assert "网格" in request["address"] and "社区" in request["address"]
        else:
            (request_xml,) = items(xml_of(got), "service_requests", "request")
            assert set(request_xml) == REQUEST_FIELDS
            assert request_xml["agency_responsible"].text == water.name
        for private in ("jane@example.org", "13800001111", "Jane", "Doe", "渠边垃圾"):
            assert private not in got.text  # contacts never; the description only for a partner
    partner = json_of(client.get(f"{V2}/requests/{case_id}.json?api_key={api_key}"))[0]
    assert partner["description"] == "渠边垃圾，往返测试" and partner["lat"] == pytest.approx(
        CANAL[1], abs=1e-6
    )
    assert "jane@example.org" not in str(partner)
    listed = json_of(client.get(f"{V2}/requests.json?service_request_id={case_id},999999999"))
    assert [r["service_request_id"] for r in listed] == [case_id]
    by_token = client.get(f"{V2}/tokens/{token}.xml")
    (answer,) = items(xml_of(by_token), "service_requests", "request")
    assert set(answer) == TOKEN_FIELDS and answer["service_request_id"].text == str(case_id)
    assert json_of(client.get(f"{V2}/tokens/{token}.json")) == [
        {"service_request_id": case_id, "token": token}
    ]


def test_a_retry_files_nothing_twice(client, cases_store, api_key):
    fields = canal_request(api_key, description="重试测试：同一请求发两次")
    first = post(client, "json", **fields)
    again = post(client, "json", **fields)
    assert first.status_code == again.status_code == 200, again.text
    assert set(json_of(first)[0]) == POSTED_FIELDS
    assert json_of(first)[0]["service_request_id"] == json_of(again)[0]["service_request_id"]
    assert json_of(first)[0]["token"] == json_of(again)[0]["token"]
    different = post(client, "json", **{**fields, "description": "重试测试：另一个问题"})
    assert json_of(different)[0]["service_request_id"] != json_of(first)[0]["service_request_id"]
    with rolled_back(cases_store) as session:
        same = session.scalar(
            select(func.count()).select_from(Case).where(Case.description == fields["description"])
        )
    assert same == 1


def test_identical_posts_racing_each_other_file_one_case(client, cases_store, api_key):
    from concurrent.futures import ThreadPoolExecutor

    fields = canal_request(api_key, description="并发重试：四个相同请求同时到达")
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(client, "json", **fields), range(4)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({json_of(a)[0]["service_request_id"] for a in answers}) == 1
    assert len({json_of(a)[0]["token"] for a in answers}) == 1
    with rolled_back(cases_store) as session:
        same = session.scalar(
            select(func.count()).select_from(Case).where(Case.description == fields["description"])
        )
    assert same == 1


def test_a_component_needs_its_required_attribute(client, cases_store, api_key):
    with rolled_back(cases_store) as session:
        component = session.scalar(select(Category.code).where(Category.kind == "component").limit(1))
    fields = canal_request(api_key, service_code=component, description="井盖破了")
    assert "attribute[condition]" in spec_error(post(client, **fields), 400)
    wrong = {**fields, "attribute[condition]": "exploded"}
    assert "exploded" in spec_error(post(client, **wrong), 400)
    good = {
        **fields,
        "attribute[condition]": "damaged",
        "attribute[component_code]": "4212810101000123",
        "attribute[fixmystreet_id]": "1234",  # one it does not define: kept as sent
    }
    case_id = filed_id(post(client, **good))
    with rolled_back(cases_store) as session:
        row = session.get(Open311Request, case_id)
        assert row is not None and row.attributes == {
            "condition": "damaged",
            "component_code": "4212810101000123",
            "fixmystreet_id": "1234",
        }
        assert "fixmystreet_id" not in (session.get(Case, case_id).description or "")  # type: ignore[union-attr]
        assert "condition=damaged" in (session.get(Case, case_id).description or "")  # type: ignore[union-attr]


def test_an_address_string_is_found_among_the_area_names(client, cases_store, api_key):
    with rolled_back(cases_store) as session:
        grid, community = session.execute(
            select(Area.code, Area.parent_code).where(Area.level == "grid").order_by(Area.code).limit(1)
        ).one()
        grid_name = session.scalar(select(Area.name).where(Area.code == grid))
        community_name = session.scalar(select(Area.name).where(Area.code == community))
    fields = canal_request(api_key, description="按地址定位")
    del fields["lat"], fields["long"]
    case_id = filed_id(post(client, **fields, address_string=f"{community_name}{grid_name}"))
    with rolled_back(cases_store) as session:
        assert session.get(Case, case_id).grid_code == grid  # type: ignore[union-attr]
    nowhere = spec_error(post(client, **fields, address_string="火星大道 1 号"), 400)
    assert "address_string" in nowhere
    assert "lat" in spec_error(post(client, **fields), 400)  # no location at all


def test_a_location_outside_the_grids_is_the_specs_400(client, api_key):
    assert "outside" in spec_error(post(client, **canal_request(api_key, lat=31.2, long=121.5)), 400)
    assert "lat" in spec_error(post(client, **canal_request(api_key, lat=95)), 400)


def test_keys_are_refused_with_403(client, cases_store):
    with cases_store.transaction() as session:
        _, secret = open311.create_key(session, admin.Admin("test", "cli"), "revoked-partner")
        open311.revoke_key(session, admin.Admin("test", "cli"), "revoked-partner")
    missing = canal_request("")
    assert "api_key" in spec_error(post(client, **missing), 403)
    spec_error(post(client, "json", **missing), 403, "json")
    assert "invalid" in spec_error(post(client, **canal_request("o311_not-a-key")), 403)
    spec_error(post(client, **canal_request(secret)), 403)  # revoked
    spec_error(client.get(f"{V2}/servicerequestupdates.xml"), 403)
    spec_error(client.get(f"{V2}/requests.json?api_key=wrong"), 403, "json")


def test_unknown_resources_are_404(client):
    spec_error(client.get(f"{V2}/requests/999999999.xml"), 404)
    spec_error(client.get(f"{V2}/requests/999999999.json"), 404, "json")
    spec_error(client.get(f"{V2}/requests/abc.json"), 404, "json")
    spec_error(client.get(f"{V2}/requests/99999999999999999999.xml"), 404)
    spec_error(client.get(f"{V2}/tokens/TNOSUCHTOKEN.xml"), 404)
    spec_error(client.get(f"{V2}/services.csv"), 404)
    spec_error(client.get(f"{V2}/services"), 404)
    spec_error(client.get(f"{V2}/nothing-here.xml"), 404)
    spec_error(client.delete(f"{V2}/services.xml"), 400)


def test_get_requests_filters_and_its_default_window(client, cases_store, api_key):
    case_id = filed_id(post(client, **canal_request(api_key, description="筛选测试")))
    recent = json_of(client.get(f"{V2}/requests.json"))
    assert case_id in {r["service_request_id"] for r in recent} and len(recent) <= 1000
    assert all(set(r) == REQUEST_FIELDS for r in recent)
    xml_recent = items(xml_of(client.get(f"{V2}/requests.xml")), "service_requests", "request")
    assert len(xml_recent) == len(recent) and all(set(r) == REQUEST_FIELDS for r in xml_recent)
    only_open = json_of(client.get(f"{V2}/requests.json?status=open&service_code=E0106"))
    assert case_id in {r["service_request_id"] for r in only_open}
    assert all(r["status"] == "open" and r["service_code"] == "E0106" for r in only_open)
    assert case_id not in {
        r["service_request_id"] for r in json_of(client.get(f"{V2}/requests.json?status=closed"))
    }
    assert case_id not in {
        r["service_request_id"] for r in json_of(client.get(f"{V2}/requests.json?service_code=E0101"))
    }
    old = "start_date=2025-01-01T00:00:00Z&end_date=2025-02-01T00:00:00Z"
    assert case_id not in {r["service_request_id"] for r in json_of(client.get(f"{V2}/requests.json?{old}"))}
    now = datetime.now(UTC)
    start, end = (
        quote((now - timedelta(hours=1)).isoformat()),
        quote((now + timedelta(minutes=5)).isoformat()),
    )
    span = f"start_date={start}&end_date={end}"
    assert case_id in {r["service_request_id"] for r in json_of(client.get(f"{V2}/requests.json?{span}"))}
    assert "90 days" in spec_error(
        client.get(f"{V2}/requests.xml?start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z"), 400
    )


def test_a_closed_case_is_closed_and_its_updates_are_pulled(client, cases_store, api_key):
    case_id = filed_id(post(client, **canal_request(api_key, description="结案测试")))
    start = quote((datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    work_to_closing(cases_store, client.app.state.cases, case_id)
    (request,) = json_of(client.get(f"{V2}/requests/{case_id}.json"))
    assert request["status"] == "closed" and request["status_notes"].startswith("已结案")
    assert W3C.match(request["expected_datetime"])  # the deadline set at dispatch
    with rolled_back(cases_store) as session:
        closed_at = session.get(Case, case_id).closed_at  # type: ignore[union-attr]
    assert request["updated_datetime"] == open311.w3c(closed_at)
    assert case_id in {
        r["service_request_id"] for r in json_of(client.get(f"{V2}/requests.json?status=closed"))
    }
    end = quote((datetime.now(UTC) + timedelta(minutes=1)).isoformat())
    dates = f"start_date={start}&end_date={end}"
    updates = json_of(client.get(f"{V2}/servicerequestupdates.json?api_key={api_key}&{dates}"))
    mine = [u for u in updates if u["service_request_id"] == case_id]
    assert [u["external_status_code"] for u in mine] == [
        "reported",
        "verified",
        "filed",
        "dispatched",
        "signed",
        "handled",
        "checked",
        "closed",
    ]
    for u in mine:
        assert UPDATE_REQUIRED <= set(u) <= UPDATE_REQUIRED | UPDATE_OPTIONAL
        assert u["status"] in UPDATE_STATUSES and W3C.match(u["updated_datetime"])
    assert mine[3]["status"] == "action_scheduled" and "水利" in mine[3]["description"]
    assert mine[-1]["status"] == "fixed"
    assert (
        mine[5]["media_url"].startswith("http") and "/api/v1/photos/" in mine[5]["media_url"]
    )  # after-photo
    root = xml_of(client.get(f"{V2}/servicerequestupdates.xml?api_key={api_key}&{dates}"))
    xml_updates = items(root, "service_requests_updates", "request_update")
    assert set(xml_updates[0]) >= UPDATE_REQUIRED
    assert str(case_id) in {u["service_request_id"].text for u in xml_updates}


def test_a_configured_jurisdiction_is_checked(settings, cases_store, tmp_path, api_key):
    app = create_app(
        settings.model_copy(update={"state_dir": tmp_path, "open311_jurisdiction": "chibi.gov.cn"}),
        store=cases_store,
    )
    with TestClient(app) as client:
        assert client.get(f"{V2}/services.json?jurisdiction_id=chibi.gov.cn").status_code == 200
        assert client.get(f"{V2}/services.json").status_code == 200  # one jurisdiction: optional
        assert "jurisdiction_id" in spec_error(
            client.get(f"{V2}/services.xml?jurisdiction_id=sfgov.org"), 404
        )
        spec_error(post(client, **canal_request(api_key, jurisdiction_id="sfgov.org")), 404)


HOSTILE_POSTS = [
    ("a NUL", {"description": "a\x00b"}),
    ("a huge value", {"description": "x" * 5000}),
    ("a description over gridcase's limit", {"description": "长" * 2500}),
    ("lat only", {"long": ""}),
    ("a lat that is not a number", {"lat": "north"}),
    ("infinity", {"lat": "inf"}),
    ("nan", {"long": "nan"}),
    ("an attribute value over 200 characters", {"attribute[x]": "1" * 201}),
    ("an address_id", {"lat": "", "long": "", "address_id": "545483"}),
]


@pytest.mark.parametrize(("why", "change"), HOSTILE_POSTS, ids=[w for w, _ in HOSTILE_POSTS])
def test_hostile_posts_are_the_specs_400(client, api_key, why, change):
    fields = {**canal_request(api_key), **change}
    spec_error(post(client, **fields), 400)


def test_hostile_bodies_and_queries_never_500(client, api_key):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bodies = [
        (b"\xff\xfe\x00garbage", form),
        (b"&".join([b"a=1"] * 600), form),
        (b"x" * 300_000, form),
        (b'{"service_code": "E0106"}', {"Content-Type": "application/json"}),
        (b"api_key=%00&service_code=E0106", form),
    ]
    for body, headers in bodies:
        spec_error(client.post(f"{V2}/requests.xml", content=body, headers=headers), 400)
    twice = f"api_key={api_key}&service_code=E0106&lat={CANAL[1]}&long={CANAL[0]}&description=a&description=b"
    assert "twice" in spec_error(client.post(f"{V2}/requests.xml", content=twice.encode(), headers=form), 400)
    files = {"photo": ("a.jpg", b"\xff\xd8", "image/jpeg")}
    assert client.post(f"{V2}/requests.xml", files=files, data={"api_key": api_key}).status_code == 400
    queries = [
        "start_date=yesterday",
        "end_date=2026-13-45T00:00:00Z",
        "start_date=2026-01-01T00:00:00",  # no time zone
        "start_date=0001-01-01T00:00:00Z",
        "start_date=2026-02-01T00:00:00Z&end_date=2026-01-01T00:00:00Z",
        "status=pending",
        "service_request_id=1,two",
        "service_request_id=" + ",".join(["1"] * 1001),
        "service_code=%00",
    ]
    for query in queries:
        for fmt in ("xml", "json"):
            spec_error(client.get(f"{V2}/requests.{fmt}?{query}"), 400, fmt)
    spec_error(client.get(f"{V2}/servicerequestupdates.xml?api_key={api_key}&start_date=soon"), 400)
    spec_error(client.get(f"{V2}/services/{'E' * 5000}.xml"), 404)
    spec_error(client.get(f"{V2}/services/E01%0006.xml"), 400)
    spec_error(client.get(f"{V2}/tokens/T%00.json"), 400, "json")


# -- keys on the console --------------------------------------------------------------------------------
def test_the_key_commands_create_once_list_and_revoke(client, cases_store):
    env = {"DATABASE_URL": cases_store.url, "COLUMNS": "250"}
    made = run("open311", "key", "create", "fixmystreet-cli", env=env)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("o311_") and len(secret) > 30
    again = run("open311", "key", "create", "fixmystreet-cli", env=env)
    assert again.returncode == 1 and "already named" in again.stderr
    listed = run("open311", "key", "list", env=env)
    assert listed.returncode == 0 and "fixmystreet-cli" in listed.stdout and "live" in listed.stdout
    assert secret not in listed.stdout and secret[:12] in listed.stdout
    with rolled_back(cases_store) as session:
        key = session.scalar(select(Open311Key).where(Open311Key.name == "fixmystreet-cli"))
        assert key is not None and key.key_hash != secret and len(key.key_hash) == 64
        logged = session.scalar(select(AdminLog).where(AdminLog.subject == "fixmystreet-cli"))
        assert logged is not None and logged.via == "cli" and logged.action == "create_open311_key"
        assert secret not in str(logged.after)
    assert post(client, **canal_request(secret, description="命令行密钥")).status_code == 200
    revoked = run("open311", "key", "revoke", "fixmystreet-cli", env=env)
    assert revoked.returncode == 0, revoked.stderr
    spec_error(post(client, **canal_request(secret, description="命令行密钥 2")), 403)
    assert run("open311", "key", "revoke", "fixmystreet-cli", env=env).returncode == 1


# -- keys on the admin desk -------------------------------------------------------------------------------
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def desk_as(app, username: str) -> tuple[TestClient, str]:
    """A browser-like client signed in to the desks, and its CSRF token."""
    from geo.demo import DEMO_PASSWORD

    desk = TestClient(app)
    token = CSRF.search(desk.get("/desk/sign-in").text).group(1)  # type: ignore[union-attr]
    signed = desk.post(
        "/desk/sign-in", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 200, signed.text
    return desk, CSRF.search(desk.get("/desk").text).group(1)  # type: ignore[union-attr]


def test_the_admin_desk_makes_shows_once_and_revokes_keys(client, cases_store):
    boss, csrf = desk_as(client.app, "admin")
    page = boss.get("/desk/admin/open311")
    assert (
        page.status_code == 200 and "Open311 密钥" in page.text and "/open311/v2/discovery.xml" in page.text
    )
    made = boss.post("/desk/admin/open311", data={"csrf_token": csrf, "name": "desk-partner"})
    assert made.status_code == 200, made.text
    secret = re.search(r'id="new-key-value">(o311_[^<]+)<', made.text).group(1)  # type: ignore[union-attr]
    assert "创建 Open311 密钥" in made.text
    assert secret not in boss.get("/desk/admin/open311").text  # shown once
    assert post(client, **canal_request(secret, description="工作台密钥")).status_code == 200
    twice = boss.post("/desk/admin/open311", data={"csrf_token": csrf, "name": "desk-partner"})
    assert twice.status_code == 422 and "未撤销的密钥重名" in twice.text  # a page naming the field
    forged = boss.post("/desk/admin/open311", data={"name": "forged"})
    assert forged.status_code == 403
    revoked = boss.post("/desk/admin/open311/revoke", data={"csrf_token": csrf, "name": "desk-partner"})
    assert revoked.status_code == 200 and "撤销 Open311 密钥" in revoked.text
    spec_error(post(client, **canal_request(secret, description="工作台密钥 2")), 403)
    with rolled_back(cases_store) as session:
        logged = session.scalars(
            select(AdminLog.via).where(AdminLog.subject == "desk-partner").order_by(AdminLog.id)
        ).all()
    assert logged == ["web", "web"]
    clerk, clerk_csrf = desk_as(client.app, "operator")
    assert clerk.get("/desk/admin/open311").status_code == 403
    refused = clerk.post("/desk/admin/open311", data={"csrf_token": clerk_csrf, "name": "clerk-key"})
    assert refused.status_code == 403
