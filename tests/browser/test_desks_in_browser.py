"""The workstations in a real Chromium with the network closed and the CSP enforced: the Chibi
canal case from the phone to closing through pages only, the other paths, two people on one case,
refusals drawn as pages, and the API docs drawn offline. Screenshots in test-artifacts/desk-*.png."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from playwright.sync_api import Browser, Page, expect
from pyproj import Geod
from sqlalchemy import select, text

from geo.cases.service import CaseContext
from geo.demo import DEMO_PASSWORD
from geo.routing import Router
from geo.storage import LocalBlobStore
from geo.store.models import Case, CaseEvent, CaseRating
from tests.browser.conftest import SCREEN, LiveServer, Offline, _offline
from tests.browser.test_pages_in_browser import api, fill_report, sign_in
from tests.conftest import FIXTURES, REPO, work_to_closing

PHOTOS = FIXTURES / "photos"
CANAL = gpd.read_file(REPO / "data" / "chibi" / "layers.geojson").pipe(
    lambda f: f.loc[f.name == "北渠", "geometry"].iloc[0]
)

Desk = Callable[[str], Page]


@pytest.fixture
def desk(browser: Browser) -> Iterator[Desk]:
    """Open a desk page signed in as someone, each person in their own browser context with the
    network closed and the pages' Content-Security-Policy enforced."""
    contexts: list[Iterator[Offline]] = []

    def open_as(username: str) -> Page:
        gen = _offline(browser, SCREEN | {"viewport": {"width": 1440, "height": 1000}}, enforce_csp=True)
        offline = next(gen)
        contexts.append(gen)
        page = offline.page()
        page.on(
            "console",
            lambda m: offline.errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        desk_sign_in(page, username)
        return page

    yield open_as
    for gen in contexts:
        with pytest.raises(StopIteration):
            next(gen)  # closes the context and checks it reached nothing outside, with no errors


SERVER: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _server(live_server: LiveServer) -> None:
    SERVER["url"] = live_server.url


def desk_sign_in(page: Page, username: str, path: str = "/desk") -> None:
    """Sign in through the desk's form (the way back lands on `path`)."""
    page.goto(f"{SERVER['url']}{path}")
    expect(page.locator("h1")).to_have_text("登录工作台")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text(username)


def open_case(page: Page, code: str) -> None:
    page.goto(f"{SERVER['url']}/desk/cases/{code}")
    expect(page.locator("#tracking-code")).to_have_text(code)


def do(page: Page, action: str, *, state: str | None = None, reason: bool = False, **fill: str) -> None:
    """Open an action's form on the case page, fill what it needs, send it, and wait for the answer."""
    page.click(f"#action-{action}")
    form = page.locator(f"#form-{action}")
    if reason:
        form.locator("select[name=reason_choice]").select_option(index=1)
    for name, value in fill.items():
        if name == "photos":
            form.locator("input[name=photos]").set_input_files(value)
        else:
            form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_be_visible()
    if state:
        expect(page.locator("#state")).to_have_text(state)


def shot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"desk-{name}.png"), full_page=True)


def canal_report(live_server: LiveServer, fraction: float, description: str, who: str = "inspector") -> str:
    """A report near the canal made through the API (set-up for the paths after the main one)."""
    mid = CANAL.interpolate(fraction, normalized=True)
    lon, lat, _ = Geod(ellps="WGS84").fwd(mid.x, mid.y, 0, 12)
    with api(live_server, who) as client:
        answer = client.post(
            "/api/v1/cases", json={"category": "E0102", "description": description, "lon": lon, "lat": lat}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["tracking_code"]


def stored(live_server: LiveServer, code: str) -> Case:
    with live_server.store.transaction() as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case is not None
        session.expunge(case)
        return case


def to_filed(desk: Desk, code: str) -> None:
    clerk = desk("operator")
    open_case(clerk, code)
    do(clerk, "verify", state="已受理")
    do(clerk, "file", state="已立案")
    clerk.context.close()


# -- the canal case, through pages only --------------------------------------------------------
def test_the_canal_case_from_the_phone_to_closing_through_pages_only(
    live_server: LiveServer, phone: Offline, desk: Desk, artifacts: Path
) -> None:
    # 06:37 the inspector reports from the phone with the geotagged photo.
    mobile = phone.page()
    sign_in(mobile, live_server)
    fill_report(mobile, PHOTOS / "canal_report.jpg", "北渠边有少量垃圾")
    mobile.click("#submit")
    expect(mobile.locator("#msg")).to_contain_text(re.compile(r"已上报 GC\w+"))
    code = re.search(r"GC\w+", mobile.locator("#msg").inner_text()).group(0)  # type: ignore[union-attr]

    # 08:33 the clerk finds it in the intake queue, with its photo, grid and routed unit.
    clerk = desk("operator")
    clerk.goto(f"{live_server.url}/desk/intake")
    row = clerk.locator(f"#intake-queue tr[data-code={code}]")
    expect(row).to_contain_text("水利和湖泊局")
    expect(row.locator(".thumb img")).to_have_count(1)
    shot(clerk, artifacts, "01-intake")
    row.locator("a.open").click()
    expect(clerk.locator("#tracking-code")).to_have_text(code)
    # The map: the point, its grid, its community and the canal's zone that fired.
    expect(clerk.locator("#case-map")).to_have_attribute("data-features", "4")
    expect(clerk.locator("#case-map path.leaflet-interactive")).to_have_count(4)
    expect(clerk.locator("#routing")).to_contain_text("专题图层优先于网格 → 水利和湖泊局")
    expect(clerk.locator("#photos-report img")).to_have_count(1)
    expect(clerk.locator("#photos-report a.small")).to_have_count(1)  # the original, for the centre
    shot(clerk, artifacts, "02-case-reported")
    do(clerk, "verify", state="已受理")

    # The duty chief files it from the chief's list.
    chief = desk("operator")
    chief.goto(f"{live_server.url}/desk/chief")
    chief.locator(f"#to-file tr[data-code={code}] a.open").click()
    do(chief, "file", state="已立案")

    # The dispatcher sends it to the preselected water bureau.
    dispatcher = desk("dispatcher")
    dispatcher.goto(f"{live_server.url}/desk/dispatch")
    expect(dispatcher.locator(f"#dispatch-queue tr[data-code={code}] button.dispatch")).to_contain_text(
        "派往 水利和湖泊局"
    )
    shot(dispatcher, artifacts, "03-dispatch-board")
    open_case(dispatcher, code)
    dispatcher.click("#action-dispatch")
    expect(dispatcher.locator("#form-dispatch select[name=unit]")).to_have_value("WATER")
    shot(dispatcher, artifacts, "04-dispatch-form")
    dispatcher.locator("#form-dispatch button[type=submit]").click()
    expect(dispatcher.locator("#state")).to_have_text("已派遣")
    expect(dispatcher.locator("#countdown")).to_contain_text("剩余")

    # The water bureau signs for it and handles it with an after-photo.
    unit = desk("unit_handler")
    unit.goto(f"{live_server.url}/desk/unit")
    expect(unit.locator(f"#unit-queue tr[data-code={code}] .countdown")).to_contain_text(
        re.compile("剩余|已超期")
    )
    shot(unit, artifacts, "05-unit-desk")
    unit.locator(f"#unit-queue tr[data-code={code}] a.open").click()
    do(unit, "sign", state="已签收")
    do(unit, "handle", state="已处置", photos=str(PHOTOS / "canal_after.jpg"), note="已清理渠边垃圾")
    expect(unit.locator("#photos-after img")).to_have_count(1)
    expect(unit.locator("#photos-report a.small")).to_have_count(0)  # no originals for a unit
    shot(unit, artifacts, "06-case-handled")

    # The inspector passes the check on site from the phone, with a photo.
    mobile.reload()
    expect(mobile.locator("#app")).to_be_visible()
    mobile.click("[data-tab=checks]")
    task = mobile.locator(f"#checks li[data-tracking-code={code}]")
    task.locator("input.after-photo").set_input_files(str(PHOTOS / "no_gps.jpg"))
    task.locator("button.check-pass").click()
    expect(mobile.locator("#msg")).to_contain_text(f"核查通过 {code}")

    # The duty chief closes it.
    chief.goto(f"{live_server.url}/desk/chief")
    chief.locator(f"#to-close tr[data-code={code}] a.open").click()
    do(chief, "close", state="已结案")
    timeline = chief.locator("#timeline li")
    expect(timeline).to_have_count(8)  # report, verify, file, dispatch, sign, handle, check, close
    expect(timeline.nth(5)).to_contain_text("已清理渠边垃圾")
    # Before, after and the inspector's check photo side by side, each where it belongs.
    for purpose in ("report", "after", "check"):
        expect(chief.locator(f"#photos-{purpose} img")).to_have_count(1)
    expect(chief.locator("#no-actions")).to_be_visible()
    shot(chief, artifacts, "07-case-closed")
    assert stored(live_server, code).state == "closed"


# -- the other paths ---------------------------------------------------------------------------
def test_a_return_with_a_reason_and_a_redispatch_from_the_keyboard(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    code = canal_report(live_server, 0.2, "渠边垃圾（回退）")
    to_filed(desk, code)
    dispatcher = desk("dispatcher")
    dispatcher.goto(f"{live_server.url}/desk/dispatch")
    codes = dispatcher.locator("#dispatch-queue tbody tr[data-code]").evaluate_all(
        "rows => rows.map(r => r.dataset.code)"
    )
    for _ in range(codes.index(code) + 1):
        dispatcher.keyboard.press("j")
    expect(dispatcher.locator(f"#dispatch-queue tr.current[data-code={code}]")).to_have_count(1)
    dispatcher.keyboard.press("d")  # dispatch to the suggested unit
    expect(dispatcher.locator("#done")).to_be_visible()
    assert stored(live_server, code).unit_code == "WATER"

    unit = desk("unit_handler")
    open_case(unit, code)
    do(unit, "return", state="已回退", reason=True, reason_more="渠边属城管执法范围")

    dispatcher.goto(f"{live_server.url}/desk/dispatch")
    returned = dispatcher.locator(f"#returned-queue tr[data-code={code}]")
    expect(returned).to_contain_text("不属于本单位职责：渠边属城管执法范围")
    shot(dispatcher, artifacts, "08-returned")
    returned.locator("a.open").click()
    dispatcher.click("#action-redispatch")
    dispatcher.fill("#form-redispatch input.unit-search", "城市管理")
    expect(dispatcher.locator("#form-redispatch select[name=unit]")).to_have_value("CGJ")
    dispatcher.locator("#form-redispatch button[type=submit]").click()
    expect(dispatcher.locator("#state")).to_have_text("已派遣")
    expect(dispatcher.locator("#unit")).to_have_text("城市管理执法局")


def test_a_rejected_report(live_server: LiveServer, desk: Desk, artifacts: Path) -> None:
    code = canal_report(live_server, 0.25, "不属于受理范围的上报")
    clerk = desk("operator")
    open_case(clerk, code)
    clerk.click("#action-reject")
    clerk.locator("#form-reject select[name=reason_choice]").select_option("不属于受理范围")
    shot(clerk, artifacts, "09-reject-form")
    clerk.locator("#form-reject button[type=submit]").click()
    expect(clerk.locator("#state")).to_have_text("不予立案")
    expect(clerk.locator("#timeline li").last).to_contain_text("不属于受理范围")


def test_an_extension_is_approved_with_the_new_deadline_shown_first(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    code = canal_report(live_server, 0.35, "需要延期的案件")
    to_filed(desk, code)
    dispatcher = desk("dispatcher")
    open_case(dispatcher, code)
    do(dispatcher, "dispatch", state="已派遣")
    unit = desk("unit_handler")
    open_case(unit, code)
    do(unit, "sign", state="已签收")
    do(unit, "request_extension", reason=True)
    expect(unit.locator("#extension-waiting")).to_be_visible()
    before = stored(live_server, code).deadline_at

    chief = desk("operator")
    chief.goto(f"{live_server.url}/desk/chief")
    chief.locator(f"#extension-requests tr[data-code={code}] a.open").click()
    chief.click("#action-approve_extension")
    expect(chief.locator("#extension-preview")).to_contain_text("批准后截止时间")
    expect(chief.locator("#extension-preview")).to_contain_text("4 工作小时")
    shot(chief, artifacts, "10-extension")
    chief.locator("#form-approve_extension button[type=submit]").click()
    expect(chief.locator("#done")).to_be_visible()
    after = stored(live_server, code)
    assert after.extensions == 1 and before is not None and after.deadline_at > before


def test_a_duplicate_is_merged_in_one_click(live_server: LiveServer, desk: Desk, artifacts: Path) -> None:
    first = canal_report(live_server, 0.45, "渠边垃圾")
    second = canal_report(live_server, 0.45, "渠边垃圾（再次上报）")
    clerk = desk("operator")
    open_case(clerk, second)
    duplicate = clerk.locator(f".duplicate[data-code={first}]")
    expect(duplicate).to_be_visible()
    shot(clerk, artifacts, "11-duplicate")
    duplicate.locator("button.merge").click()
    expect(clerk.locator("#state")).to_have_text("已合并")
    assert stored(live_server, second).merged_into_id == stored(live_server, first).id


def test_two_people_on_one_case_one_wins_the_other_is_told_who_changed_it(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    code = canal_report(live_server, 0.55, "两人同时处理")
    one, other = desk("operator"), desk("admin")
    open_case(one, code)
    open_case(other, code)
    do(one, "verify", state="已受理")
    other.click("#action-verify")
    other.locator("#form-verify button[type=submit]").click()
    expect(other.locator("#error h1")).to_have_text("案件已被他人修改")
    expect(other.locator("#error")).to_contain_text("operator")
    expect(other.locator("#error")).to_contain_text("受理核实")
    shot(other, artifacts, "12-conflict")
    other.click("#reload")
    expect(other.locator("#state")).to_have_text("已受理")
    with live_server.store.transaction() as session:
        verified = session.scalars(
            select(CaseEvent).join(Case).where(Case.tracking_code == code, CaseEvent.action == "verify")
        ).all()
    assert len(verified) == 1


# -- refusals ----------------------------------------------------------------------------------
def test_a_unit_handler_cannot_open_another_units_case_or_a_desk_of_another_role(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    code = canal_report(live_server, 0.65, "水利局的案件")
    to_filed(desk, code)
    dispatcher = desk("dispatcher")
    open_case(dispatcher, code)
    dispatcher.click("#action-dispatch")
    dispatcher.fill("#form-dispatch input.unit-search", "城市管理")
    dispatcher.locator("#form-dispatch button[type=submit]").click()
    expect(dispatcher.locator("#unit")).to_have_text("城市管理执法局")

    water = desk("unit_handler")
    answer = water.goto(f"{live_server.url}/desk/cases/{code}")
    assert answer is not None and answer.status == 404
    expect(water.locator("#error h1")).to_have_text("找不到这个案件")
    shot(water, artifacts, "13-not-found")
    answer = water.goto(f"{live_server.url}/desk/dispatch")
    assert answer is not None and answer.status == 403
    expect(water.locator("#error h1")).to_have_text("您没有使用此页面的权限")
    expect(water.locator("#error")).to_contain_text("回到工作台")
    shot(water, artifacts, "14-forbidden")


def test_a_post_without_the_csrf_token_is_refused(live_server: LiveServer, desk: Desk) -> None:
    code = canal_report(live_server, 0.7, "伪造的请求")
    clerk = desk("operator")
    forged = clerk.request.post(
        f"{live_server.url}/desk/cases/{code}/actions/verify", form={"expected_version": "1"}
    )
    assert forged.status == 403 and "表单已失效" in forged.text()
    assert stored(live_server, code).state == "reported"


# -- the API docs ------------------------------------------------------------------------------
def test_the_api_docs_draw_offline(live_server: LiveServer, strict_screen: Offline, artifacts: Path) -> None:
    page = strict_screen.page()
    page.on(
        "console",
        lambda m: strict_screen.errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("gridcase")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui img[src*=validator]")).to_have_count(0)
    page.screenshot(path=str(artifacts / "docs-swagger.png"))


def test_a_triage_report_is_placed_by_hand_on_the_map(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    with api(live_server, "operator") as client:
        answer = client.post(
            "/api/v1/cases",
            json={"category": "E0102", "description": "地址不详的来电", "lon": 113.5, "lat": 29.5},
        )
        assert answer.status_code == 201, answer.text
        code = answer.json()["tracking_code"]
    clerk = desk("operator")
    clerk.goto(f"{live_server.url}/desk/intake")
    row = clerk.locator(f"#triage-queue tr[data-code={code}]")
    expect(row).to_contain_text("not within 50 m")
    row.locator("a.open").click()
    clerk.click("#action-place")
    expect(clerk.locator("#case-map")).to_have_attribute("data-grids", "263")
    clerk.locator("#case-map").click()  # a click on the map fills the coordinates
    expect(clerk.locator("#place-lon")).not_to_have_value("")
    mid = CANAL.interpolate(0.5, normalized=True)
    lon, lat, _ = Geod(ellps="WGS84").fwd(mid.x, mid.y, 0, 12)
    clerk.fill("#place-lon", f"{lon:.6f}")
    clerk.fill("#place-lat", f"{lat:.6f}")
    shot(clerk, artifacts, "15-triage-place")
    clerk.locator("#form-place button[type=submit]").click()
    expect(clerk.locator("#done")).to_be_visible()
    expect(clerk.locator("#unit")).to_have_text("水利和湖泊局")
    expect(clerk.locator("#routing")).to_contain_text("专题图层优先于网格")
    placed = stored(live_server, code)
    assert placed.unit_code == "WATER" and placed.routing["located_by"] == "placed by hand"


def test_the_dispatch_board_shows_a_newly_filed_case_without_a_reload(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    dispatcher = desk("dispatcher")
    dispatcher.goto(f"{live_server.url}/desk/dispatch")
    expect(dispatcher.locator("body")).to_have_attribute("data-live", "sse")  # the stream is open
    dispatcher.evaluate("window.sameDocument = true")  # gone if the page reloads
    code = canal_report(live_server, 0.75, "刚立案的案件")
    to_filed(desk, code)  # the clerk verifies and files it in another browser
    expect(dispatcher.locator(f"#dispatch-queue tr[data-code={code}]")).to_be_visible(timeout=2000)
    assert dispatcher.evaluate("window.sameDocument") is True
    shot(dispatcher, artifacts, "16-live")


def test_a_selection_is_dispatched_at_once_each_to_its_suggested_unit(
    live_server: LiveServer, desk: Desk, artifacts: Path
) -> None:
    codes = [canal_report(live_server, f, f"批量派遣 {n}") for n, f in enumerate((0.8, 0.85, 0.9), 1)]
    left = canal_report(live_server, 0.95, "不在所选之内")
    clerk = desk("operator")
    for code in [*codes, left]:
        open_case(clerk, code)
        do(clerk, "verify", state="已受理")
        do(clerk, "file", state="已立案")
    dispatcher = desk("dispatcher")
    dispatcher.goto(f"{live_server.url}/desk/dispatch")
    for code in codes:
        dispatcher.locator(f"#dispatch-queue tr[data-code={code}] input[name=codes]").check()
    expect(dispatcher.locator(f"#dispatch-queue tr[data-code={left}]")).to_be_visible()
    shot(dispatcher, artifacts, "17-bulk-selected")
    dispatcher.click("#dispatch-selected")
    expect(dispatcher.locator("#done")).to_be_visible()
    for code in codes:
        expect(dispatcher.locator(f"#dispatch-queue tr[data-code={code}]")).to_have_count(0)
    expect(dispatcher.locator(f"#dispatch-queue tr[data-code={left}]")).to_be_visible()
    shot(dispatcher, artifacts, "18-bulk-dispatched")
    for code in codes:
        case = stored(live_server, code)
        assert (case.state, case.unit_code) == ("dispatched", "WATER"), code
        assert case.deadline_at is not None
    assert stored(live_server, left).state == "filed"
    with live_server.store.transaction() as session:
        dispatches = session.scalars(
            select(CaseEvent.actor)
            .join(Case)
            .where(Case.tracking_code.in_(codes), CaseEvent.action == "dispatch")
        ).all()
    assert dispatches == ["dispatcher"] * 3


def test_the_call_taker_files_a_call_reads_back_its_code_and_completes_the_callback(
    desk: Desk, live_server: LiveServer, artifacts, tmp_path
) -> None:
    page = desk("operator")
    page.goto(f"{live_server.url}/desk/hotline")
    page.fill("#hotline-phone", "13607150000")
    page.fill("#hotline-words", "北渠边水面上漂着垃圾")
    page.select_option("#hotline-category", label="水域不洁")
    expect(page.locator("#case-map")).to_have_attribute("data-grids", "263")
    page.locator("#case-map").click()  # a click on the map fills the coordinates…
    expect(page.locator("#place-lon")).not_to_have_value("")
    page.fill("#place-lon", "113.9003")  # …which can also be typed (here: by the North Canal)
    page.fill("#place-lat", "29.7249")
    page.screenshot(path=str(artifacts / "desk-hotline-call.png"), full_page=True)
    page.click("#hotline-submit")
    code = page.locator("#filed-code").inner_text().strip()
    assert re.fullmatch(r"GC\d{6}[0-9A-Z]{8}", code), code
    page.screenshot(path=str(artifacts / "desk-hotline-filed.png"), full_page=True)

    with live_server.store.transaction() as session:
        case_id = session.scalar(select(Case.id).where(Case.tracking_code == code))
    router = Router(live_server.store.sessions)
    try:
        work_to_closing(
            live_server.store, CaseContext(router=router, blobs=LocalBlobStore(tmp_path)), case_id
        )
    finally:
        router.close()
    page.goto(f"{live_server.url}/desk/callback")
    row = page.locator(f'#callback-queue tr[data-code="{code}"]')
    expect(row).to_contain_text("13607150000")
    row.locator("select[name=rating]").select_option(label="满意")
    page.screenshot(path=str(artifacts / "desk-callback.png"), full_page=True)
    row.get_by_role("button", name="已联系上").click()
    expect(page.locator(f'#callback-queue tr[data-code="{code}"]')).to_have_count(0)
    with live_server.store.transaction() as session:
        assert session.get(CaseRating, case_id).source == "callback"


def test_the_call_taker_finds_the_callers_place_by_name_and_the_pin_goes_there(
    desk: Desk, live_server: LiveServer, artifacts
) -> None:
    """A caller names a compound (小区), not coordinates: part of its name finds it, offline from
    the database; choosing it shows it on the map and pins a point inside it, and the call is
    filed there. A community is found by part of its name too; an unknown name says so."""
    page = desk("operator")
    page.goto(f"{live_server.url}/desk/hotline")
    expect(page.locator("#case-map")).to_have_attribute("data-grids", "263")
    page.fill("#place-search", "不存在的地名")
    expect(page.locator("#place-results")).to_contain_text("没有找到这个地名")
    page.fill("#place-search", "新风")
    first = page.locator("#place-results button.place").first
    expect(first).to_contain_text("新风社区")
    expect(first).to_contain_text("社区")
    page.fill("#place-search", "幸福花")
    hit = page.locator("#place-results button.place", has_text="幸福花园").first
    expect(hit).to_contain_text("小区")
    page.screenshot(path=str(artifacts / "desk-hotline-place-search.png"), full_page=True)
    hit.click()
    expect(page.locator("#case-map")).to_have_attribute("data-place", "幸福花园")
    lon, lat = float(page.input_value("#place-lon")), float(page.input_value("#place-lat"))
    with live_server.store.transaction() as session:
        inside = session.execute(
            text(
                "SELECT bool_or(ST_Covers(geom, ST_SetSRID(ST_Point(:lon, :lat), 4326))) FROM area "
                "WHERE level = 'compound' AND name = '幸福花园'"
            ),
            {"lon": lon, "lat": lat},
        ).scalar()
    assert inside, (lon, lat)
    # The map shows the compound: its pin is on screen, near the middle of the map.
    center = page.evaluate(
        "() => { const r = document.querySelector('#case-map').getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; }"
    )
    pin = page.locator("#case-map .leaflet-marker-icon").bounding_box()
    assert pin is not None and abs(pin["x"] + pin["width"] / 2 - center[0]) < 200
    page.screenshot(path=str(artifacts / "desk-hotline-place-chosen.png"), full_page=True)

    page.fill("#hotline-phone", "13607150001")
    page.fill("#hotline-words", "幸福花园门口路灯不亮")
    page.select_option("#hotline-category", label="路灯")
    page.click("#hotline-submit")
    code = page.locator("#filed-code").inner_text().strip()
    with live_server.store.transaction() as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case.channel == "hotline_12345" and case.grid_code is not None
        assert session.execute(
            text(
                "SELECT ST_Covers(a.geom, c.location) FROM cases c, area a "
                "WHERE c.id = :id AND a.level = 'compound' AND a.name = '幸福花园' LIMIT 1"
            ),
            {"id": case.id},
        ).scalar()
