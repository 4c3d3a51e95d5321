"""The residents' pages in Chromium at phone size, network closed: report by dragging the pin and
follow a duplicate instead; report from a photo's EXIF, follow the case to closing by its notices
(a real SMTP server on loopback), rate it unsatisfied; refusals as pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from api.app import create_app
from geo.accounts import actor_of
from geo.cases.service import CaseContext, ReportIn, submit_report
from geo.demo import DEMO_PASSWORD
from geo.store.models import Account, Case, CaseFollower
from tests.browser.conftest import SCREEN, LiveServer, Offline, _offline, serving
from tests.conftest import FIXTURES, work_to_closing
from tests.sinks import MailSink, mail_sink

PHOTOS = FIXTURES / "photos"
# An open 水域不洁 report on the North Canal, and where the resident's phone says they are: 300 m
# west of it (a degree of longitude is 96.69 km at 29.72° N), beyond the 250 m of "nearby".
DUPLICATE = (113.9040, 29.7248)
PHONE_AT = (DUPLICATE[0] - 300 / 96_690, DUPLICATE[1])
# The report page opens at zoom 16: 156,543 m × cos(29.72°) / 2^16 = 2.074 m per CSS pixel. The
# test drags at zoom 15 (4.148 m per pixel): 300 m is then 72 px from the centre of a phone's map,
# clear of the 50 px margin where the pin's auto-pan would move the map under it while dragging.
DRAG_PX = round(300 / 4.148)


@pytest.fixture(scope="module")
def mail() -> Iterator[MailSink]:
    with mail_sink() as sink:
        yield sink


@dataclass
class PublicServer(LiveServer):
    """The server, and the case context its staff's steps use (its photos are served)."""

    cases: CaseContext | None = None


@pytest.fixture(scope="module")
def server(settings, browser_store, tmp_path_factory, mail) -> Iterator[PublicServer]:
    """The app with its notices going to the SMTP sink, the outbox worked every 0.2 s."""
    state = tmp_path_factory.mktemp("public-state")
    app = create_app(
        settings.model_copy(
            update={
                "state_dir": state,
                "smtp_host": "127.0.0.1",
                "smtp_port": mail.port,
                "notice_seconds": 0.2,
                "public_url": "http://gridcase.test",
            }
        ),
        store=browser_store,
    )
    with serving(app) as url:
        yield PublicServer(url=url, store=browser_store, screen_key="", cases=app.state.cases)


#: After a review reopens a case (返工): the unit handles it again, it is checked and closed.
AGAIN = (("unit_handler", "handle"), ("inspector", "check_pass"), ("operator", "close"))


@pytest.fixture
def chief(browser: Browser, server) -> Iterator[Page]:
    """The duty chief's desk, signed in as the demo operator, in a desk-sized browser context of
    its own with the network closed (checked afterwards: nothing reached outside, no errors)."""
    gen = _offline(browser, SCREEN | {"viewport": {"width": 1440, "height": 1000}})
    page = next(gen).page()
    page.goto(f"{server.url}/desk")
    page.fill("#username", "operator")
    page.fill("#password", DEMO_PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("operator")
    yield page
    with pytest.raises(StopIteration):
        next(gen)


def decide(page: Page, action: str, reason: str, more: str = "") -> None:
    """Choose the review's decision on the case page, with a reason from the list (and more)."""
    page.click(f"#action-{action}")
    form = page.locator(f"#form-{action}")
    form.locator("select[name=reason_choice]").select_option(label=reason)
    if more:
        form.locator("textarea[name=reason_more]").fill(more)
    form.locator("button[type=submit]").click()
    expect(page.locator("#done")).to_be_visible()


def shot(page: Page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"public-{name}.png"), full_page=True)


def choose_category(page: Page, words: str, name: str) -> None:
    page.fill("#category-search", words)
    page.locator("#category-results button", has_text=name).first.click()
    expect(page.locator("#category-chosen")).to_contain_text(name)


def test_a_resident_drags_the_pin_sees_the_same_problem_nearby_and_follows_it_instead(
    server, phone: Offline, artifacts
):
    with server.store.transaction() as session:
        inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
        duplicate, _ = submit_report(
            session,
            server.cases,
            inspector,
            ReportIn(category="E0106", lon=DUPLICATE[0], lat=DUPLICATE[1], description="渠面漂浮垃圾"),
        )
        duplicate_id = duplicate.id
    phone.context.grant_permissions(["geolocation"])
    phone.context.set_geolocation({"longitude": PHONE_AT[0], "latitude": PHONE_AT[1], "accuracy": 10})
    page = phone.page()
    page.goto(f"{server.url}/")
    shot(page, artifacts, "01-home")
    page.click("#go-report")
    expect(page.locator("#fix")).to_have_text("已按手机定位放置图钉。")
    choose_category(page, "水域", "水域不洁")
    assert abs(float(page.input_value("#lon")) - PHONE_AT[0]) < 1e-5
    nearby = page.locator("#nearby-list li")
    # 300 m away: the duplicate is not among the reports "nearby" (other open ones may be).
    page.wait_for_function("document.body.dataset.nearby !== undefined")
    assert str(duplicate_id) not in [li.get_attribute("data-case") for li in nearby.all()]
    shot(page, artifacts, "02-report-before-drag")

    page.click(".leaflet-control-zoom-out")
    expect(page.locator(".leaflet-zoom-anim")).to_have_count(0)  # the zoom's animation has ended
    pin = page.locator(".leaflet-marker-icon")
    box = pin.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] - 4
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + DRAG_PX * step / 10, y)
    page.mouse.up()
    first = nearby.first
    expect(first).to_have_attribute("data-case", str(duplicate_id))
    distance = int(re.search(r"相距约 (\d+) 米", first.inner_text()).group(1))  # type: ignore[union-attr]
    assert distance <= 30, first.inner_text()
    assert abs(float(page.input_value("#lon")) - DUPLICATE[0]) < 0.0003
    expect(page.locator("#nearby")).to_contain_text("附近已有相同的问题")
    shot(page, artifacts, "03-report-nearby-duplicate")

    first.get_by_role("button", name="关注此问题").click()
    page.fill("#follow-phone", "13812345678")
    page.click("#follow-send")
    expect(page.locator("#followed")).to_contain_text("已关注")
    shot(page, artifacts, "04-followed-instead")
    with server.store.transaction() as session:
        followers = session.scalars(select(CaseFollower).where(CaseFollower.case_id == duplicate_id)).all()
        assert [(f.kind, f.address, f.is_reporter) for f in followers] == [("phone", "13812345678", False)]
        assert session.scalar(select(Case.id).where(Case.reporter_contact.like("%13812345678%"))) is None


def test_a_resident_reports_from_a_photo_follows_the_case_to_closing_and_rates_it_unsatisfied(
    server, phone: Offline, artifacts, mail, chief: Page
):
    page = phone.page()
    page.goto(f"{server.url}/report")
    page.set_input_files("#photos", str(PHOTOS / "canal_report.jpg"))
    expect(page.locator("#fix")).to_have_text("已按照片的拍摄地点放置图钉。")
    assert abs(float(page.input_value("#lon")) - 113.9) < 1e-5
    assert abs(float(page.input_value("#lat")) - 29.7249) < 1e-5
    choose_category(page, "垃圾", "暴露垃圾")
    page.fill("#description", "北渠边有一堆生活垃圾")
    page.fill("#email", "li.resident@example.org")
    shot(page, artifacts, "05-report-from-photo")
    page.click("#submit")
    expect(page.locator("#new-report")).to_contain_text("上报成功")
    code = page.inner_text("#tracking-code").strip()
    expect(page.locator("#state")).to_have_text("待受理")
    shot(page, artifacts, "06-track-new")

    with server.store.transaction() as session:
        case = session.scalar(select(Case).where(Case.tracking_code == code))
        assert case.channel == "resident" and case.reporter_contact == "li.resident@example.org"
        case_id = case.id
    # The command centre, the water bureau and the inspector work it (their desks are tested
    # elsewhere); every change of state reaches the resident's mailbox through the outbox.
    work_to_closing(server.store, server.cases, case_id)
    notices = mail.wait_for(7, to="li.resident@example.org")
    assert "已结案" in notices[-1].get_content() and f"/track/{code}" in notices[-1].get_content()
    assert "已派遣" in notices[2].get_content() and "水利和湖泊局" in notices[2].get_content()

    page.goto(f"{server.url}/track/{code}")
    expect(page.locator("#state")).to_have_text("已结案")
    expect(page.locator("#unit")).to_have_text("水利和湖泊局")
    expect(page.locator("#timeline li")).to_have_count(8)
    expect(page.locator(".photos img")).to_have_count(2)  # the report's photo and the after-photo
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.photos img')).every((i) => i.complete && i.naturalWidth > 0)"
    )
    shot(page, artifacts, "07-track-closed")
    page.locator("label.choice", has_text="不满意").click()
    page.fill("#comment", "垃圾清走了，但第二天又堆上了")
    page.click("#rate-send")
    expect(page.locator("#rating-value")).to_have_text("不满意")
    expect(page.locator("#review")).to_contain_text("复核")
    shot(page, artifacts, "08-rated-unsatisfied")
    with server.store.transaction() as session:
        assert session.get(Case, case_id).review_requested_at is not None

    # The duty chief finds it among the cases to review, reads the verdict, and reopens it: the
    # case goes back to the water bureau to be handled again (返工), and the resident reads so.
    chief.goto(f"{server.url}/desk/chief")
    chief.locator(f'#to-review tr[data-code="{code}"] a').first.click()
    expect(chief.locator("#rating-value")).to_have_text("不满意")
    expect(chief.locator("#rating-comment")).to_have_text("垃圾清走了，但第二天又堆上了")
    expect(chief.locator("#review-waiting")).to_contain_text("复核重办")
    chief.screenshot(path=str(artifacts / "desk-review-waiting.png"), full_page=True)
    decide(chief, "reopen", "问题再次出现", more="请清理并加装拦污网")
    expect(chief.locator("#state")).to_have_text("返工")
    expect(chief.locator("#timeline")).to_contain_text("复核重办")
    expect(chief.locator("#timeline")).to_contain_text("请清理并加装拦污网")
    chief.screenshot(path=str(artifacts / "desk-review-reopened.png"), full_page=True)
    chief.goto(f"{server.url}/desk/chief")
    expect(chief.locator(f'#to-review tr[data-code="{code}"]')).to_have_count(0)
    with server.store.transaction() as session:
        case = session.get(Case, case_id)
        assert (case.state, case.review_requested_at, case.closed_at) == ("rework", None, None)
        assert case.unit_code == "WATER" and case.deadline_at is not None
    page.goto(f"{server.url}/track/{code}")
    expect(page.locator("#state")).to_have_text("返工")
    expect(page.locator("#review")).to_have_attribute("data-decision", "reopened")
    expect(page.locator("#review")).to_contain_text("决定重新办理")
    expect(page.locator("#review-reason")).to_contain_text("请清理并加装拦污网")
    expect(page.locator("#timeline")).to_contain_text("复核重办")
    shot(page, artifacts, "10-track-reopened")
    # The resident hears of it too: the case moved from 已结案 to 返工.
    reopened = mail.wait_for(8, to="li.resident@example.org")
    assert "返工" in reopened[-1].get_content()

    # The water bureau handles it again, and it is checked and closed again.
    work_to_closing(server.store, server.cases, case_id, steps=AGAIN)
    with server.store.transaction() as session:
        assert session.get(Case, case_id).state == "closed"


def test_the_chief_keeps_a_closing_after_review_with_a_reason_the_resident_reads(
    server, phone: Offline, artifacts, chief: Page
):
    with server.store.transaction() as session:
        inspector = actor_of(session.scalar(select(Account).where(Account.username == "inspector")))
        case, _ = submit_report(
            session, server.cases, inspector, ReportIn(category="E0102", lon=113.8999, lat=29.7249)
        )
        case_id, code = case.id, case.tracking_code
    work_to_closing(server.store, server.cases, case_id)
    with server.store.transaction() as session:
        closed_at = session.get(Case, case_id).closed_at
    page = phone.page()
    page.goto(f"{server.url}/track/{code}")
    page.locator("label.choice", has_text="不满意").click()
    page.click("#rate-send")
    expect(page.locator("#review")).to_contain_text("复核")

    chief.goto(f"{server.url}/desk/cases/{code}")
    decide(chief, "dismiss_review", "新发生的问题，已另行立案")
    expect(chief.locator("#state")).to_have_text("已结案")
    expect(chief.locator("#timeline")).to_contain_text("复核维持")
    expect(chief.locator("#review-waiting")).to_have_count(0)
    chief.screenshot(path=str(artifacts / "desk-review-kept.png"), full_page=True)
    with server.store.transaction() as session:
        case = session.get(Case, case_id)
        assert (case.state, case.review_requested_at, case.closed_at) == ("closed", None, closed_at)

    page.goto(f"{server.url}/track/{code}")
    expect(page.locator("#state")).to_have_text("已结案")
    expect(page.locator("#review")).to_have_attribute("data-decision", "dismissed")
    expect(page.locator("#review")).to_contain_text("决定维持结案")
    expect(page.locator("#review-reason")).to_contain_text("新发生的问题，已另行立案")
    shot(page, artifacts, "11-track-review-kept")


def test_a_report_without_a_category_is_answered_by_a_page_naming_the_field(
    server, phone: Offline, artifacts
):
    page = phone.page()
    page.goto(f"{server.url}/report")
    expect(page.locator("#lon")).not_to_have_value("")
    page.click("#submit")
    expect(page.locator("#error")).to_have_attribute("data-status", "422")
    expect(page.locator("#error-field")).to_contain_text("问题类别")
    shot(page, artifacts, "09-refused-category")


def test_a_report_made_without_network_waits_on_the_phone_and_arrives_once_when_it_is_back(
    server, phone: Offline, artifacts
):
    """The network is cut before sending: the report stays in the phone's outbox. Back online, the
    first attempt reaches the server but its answer is lost on the way back; the outbox sends it
    again with the same Idempotency-Key and the server answers with the case it filed: one case,
    and the person reads its tracking code."""
    phone.context.grant_permissions(["geolocation"])
    phone.context.set_geolocation({"longitude": 113.9001, "latitude": 29.7249, "accuracy": 10})
    page = phone.page()
    page.goto(f"{server.url}/report")
    expect(page.locator("#fix")).to_have_text("已按手机定位放置图钉。")
    choose_category(page, "垃圾", "暴露垃圾")
    words = "离线时上报：北渠东头垃圾桶满溢"
    page.fill("#description", words)
    key = page.input_value("input[name=idempotency_key]")

    phone.context.set_offline(True)
    page.click("#submit")
    expect(page.locator("#outbox-card")).to_be_visible()
    expect(page.locator("#outbox li")).to_have_count(1)
    expect(page.locator("#outbox li")).to_contain_text("暴露垃圾")
    expect(page.locator("#outbox li")).to_contain_text("等待网络")
    expect(page.locator("#outbox-help")).to_contain_text("现在没有网络")
    page.wait_for_timeout(2500)  # the outbox tries again meanwhile, and keeps it
    expect(page.locator("#outbox li")).to_have_count(1)
    shot(page, artifacts, "12-report-kept-offline")
    with server.store.transaction() as session:
        assert session.scalar(select(Case.id).where(Case.description == words)) is None

    posts: list[str] = []

    def lose_the_first_answer(route) -> None:
        posts.append(route.request.headers.get("accept", ""))
        answer = route.fetch()  # the server files it ...
        if len(posts) == 1:
            assert answer.status == 201, answer.text()
            route.abort("connectionreset")  # ... and the phone never hears back
        else:
            route.fulfill(response=answer)

    page.route(
        f"{server.url}/report?*",
        lambda route: lose_the_first_answer(route) if route.request.method == "POST" else route.fallback(),
    )
    phone.context.set_offline(False)
    expect(page.locator("#new-report")).to_contain_text("上报成功", timeout=20_000)
    code = page.inner_text("#tracking-code").strip()
    assert len(posts) == 2 and all("application/json" in a for a in posts)
    shot(page, artifacts, "13-report-sent-when-back")
    with server.store.transaction() as session:
        filed = session.scalars(select(Case).where(Case.description == words)).all()
        assert [c.tracking_code for c in filed] == [code]
        assert filed[0].channel == "resident"
        # The public account's key is the form's, as the outbox sent it both times.
        assert filed[0].idempotency_key is not None and key in filed[0].idempotency_key
    page.goto(f"{server.url}/report")
    expect(page.locator("#outbox-card")).to_be_hidden()
    assert page.evaluate("async () => (await window.gridcaseResident.outbox.all()).length") == 0
