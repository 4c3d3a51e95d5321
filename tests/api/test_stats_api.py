"""Stats API and reports over HTTP, and the `gridcase stats` / `gridcase report` commands."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from geo import stats
from geo.demo import DEMO_PASSWORD
from tests.conftest import REPO

GRIDCASE = str(Path(sys.executable).parent / "gridcase")


@pytest.fixture(scope="module")
def client(settings, demo_store, tmp_path_factory):
    """The app on the demo database (its own tokens: the demo accounts of that database)."""
    app = create_app(
        settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("s")}), store=demo_store
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def planner(client):
    return _login(client, "planner")


def _login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_stats_of_the_demo_quarter(client, planner):
    response = client.get("/api/v1/stats", params={"from": "2026-07-01", "to": "2026-10-31"}, headers=planner)
    assert response.status_code == 200, response.text
    body = response.json()
    totals = body["totals"]
    assert (totals["reported"], totals["dispatched"], totals["closed"]) == (7534, 7389, 6967)
    assert round(totals["disposal_rate"] * 100, 2) == 94.29
    assert body["groups"] == [] and body["group_by"] is None
    assert {d["name"] for d in body["definitions"]} >= {"disposal_rate", "closure_rate"}


@pytest.mark.parametrize("group_by", ["unit", "street", "inspector"])
def test_groups_add_up_to_the_totals(client, planner, group_by):
    body = client.get(
        "/api/v1/stats",
        params={"from": "2026-08-01", "to": "2026-08-31", "group_by": group_by},
        headers=planner,
    ).json()
    assert body["groups"] and all(group_by in g and "name" in g for g in body["groups"])
    for column in ("reported", "dispatched", "closed", "due", "overdue"):
        assert sum(g[column] for g in body["groups"]) == body["totals"][column], column


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/stats", {"from": "2026-07-32", "to": "2026-08-01"}, "from"),
        ("/api/v1/stats", {"from": "2026-07-01", "to": "yesterday"}, "to"),
        ("/api/v1/stats", {"from": "2026-08-01", "to": "2026-07-01"}, "to"),
        ("/api/v1/stats", {"from": "2026-07-01", "to": "2026-07-31", "group_by": "planet"}, "group_by"),
        ("/api/v1/stats", {"from": "2026-07-01", "to": "2026-07-31", "channel": "fax"}, "channel"),
        ("/api/v1/stats/satisfaction", {"group_by": "planet"}, "group_by"),
        ("/api/v1/stats/satisfaction", {"channel": "fax"}, "channel"),
        ("/reports/weekly", {"week": "2026-02-30"}, "week"),
        ("/reports/monthly", {"month": "2026-8"}, "month"),
        ("/reports/monthly", {"month": "2026-13"}, "month"),
        ("/reports/monthly", {"month": "2026-08", "format": "pdf"}, "format"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client, planner, path, params, field):
    response = client.get(path, params=params, headers=planner)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["field"] == field


def test_only_planners_and_staff_read_statistics(client):
    assert client.get("/api/v1/stats").status_code == 401
    assert client.get("/reports/monthly?month=2026-08").status_code == 401
    handler = _login(client, "unit_handler")
    response = client.get("/reports/monthly?month=2026-08", headers=handler)
    assert response.status_code == 403
    for role in ("operator", "dispatcher", "admin"):
        assert client.get("/api/v1/stats", headers=_login(client, role)).status_code == 200


def test_weekly_report_page_has_tables_and_an_inline_svg_chart(client, planner):
    response = client.get("/reports/weekly", params={"week": "2026-08-12"}, headers=planner)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "2026-08-10" in page and "2026-08-16" in page
    assert page.count('<table class="report-table"') == 4
    assert "<svg" in page and "<script" not in page
    # Nothing loads from elsewhere (XML namespace URIs in the SVG are names, not loads).
    assert 'src="http' not in page and "<link" not in page and "@import" not in page


def test_monthly_ranking_page_and_downloads(client, planner):
    page = client.get("/reports/monthly", params={"month": "2026-08"}, headers=planner)
    assert page.status_code == 200 and "<svg" in page.text and 'data-table="ranking"' in page.text
    api = client.get(
        "/api/v1/stats",
        params={"from": "2026-08-01", "to": "2026-08-31", "group_by": "unit"},
        headers=planner,
    ).json()
    ranked = sorted(
        (g for g in api["groups"] if g["dispatched"] > 0),
        key=lambda g: (-g["disposal_rate"], -g["dispatched"]),
    )
    response = client.get(
        "/reports/monthly", params={"month": "2026-08", "format": "csv", "lang": "en"}, headers=planner
    )
    assert response.status_code == 200 and "text/csv" in response.headers["content-type"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == len(ranked)
    assert [r["rank"] for r in rows[:3]] == ["1", "2", "3"]
    assert rows[0]["unit"] == ranked[0]["unit"]
    response = client.get(
        "/reports/monthly", params={"month": "2026-08", "format": "xlsx", "lang": "en"}, headers=planner
    )
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert {"ranking", "summary", "streets", "definitions"} <= set(book.sheetnames)
    sheet = book["ranking"]
    assert sheet.max_row == len(ranked) + 1
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["rank", "unit", "name"]
    assert sheet.cell(row=2, column=2).value == ranked[0]["unit"]


def test_stats_per_channel_in_words_and_for_the_hotline_alone(client, planner):
    """Hotline cases carry their channel through the indicators: per channel (来源, named in words)
    the counts add up to the totals, and `channel=hotline_12345` gives the hotline's own row."""
    period = {"from": "2026-08-01", "to": "2026-08-31"}
    body = client.get("/api/v1/stats", params=period | {"group_by": "channel"}, headers=planner).json()
    names = {g["channel"]: g["name"] for g in body["groups"]}
    assert names["hotline_12345"] == "12345热线" and names["resident"] == "市民上报"
    for column in ("reported", "dispatched", "closed", "due", "overdue"):
        assert sum(g[column] for g in body["groups"]) == body["totals"][column], column
    hotline = client.get(
        "/api/v1/stats", params=period | {"channel": "hotline_12345"}, headers=planner
    ).json()
    row = next(g for g in body["groups"] if g["channel"] == "hotline_12345")
    for column in ("reported", "dispatched", "closed", "disposal_rate"):
        assert hotline["totals"][column] == row[column], column
    by_unit = client.get(
        "/api/v1/stats", params=period | {"channel": "hotline_12345", "group_by": "unit"}, headers=planner
    ).json()
    assert sum(g["reported"] for g in by_unit["groups"]) == row["reported"]
    sat = client.get(
        "/api/v1/stats/satisfaction", params=period | {"group_by": "channel"}, headers=planner
    ).json()
    assert {g["name"] for g in sat["groups"]} <= set(stats.CHANNEL_NAMES_ZH.values())
    assert sum(g["closed"] for g in sat["groups"]) == sat["totals"]["closed"]
    for group_by in ("unit", "street", "community", "month"):
        answer = client.get(
            "/api/v1/stats/satisfaction", params=period | {"group_by": group_by}, headers=planner
        )
        assert (
            answer.status_code == 200
            and sum(g["closed"] for g in answer.json()["groups"]) == (sat["totals"]["closed"])
        ), group_by
    page = client.get("/reports/monthly", params={"month": "2026-08"}, headers=planner).text
    for words in ('data-table="channels"', 'data-table="communities"', "回访率", "满意率", "12345热线"):
        assert words in page, words
    assert stats.BY_NAME["satisfaction_rate"].formula in page


COUNT_COLUMNS = {i.name for i in stats.INDICATORS if i.kind == "count"} | set(stats.AUXILIARY)


def test_counts_are_integers_in_json_csv_xlsx_and_html(client, planner):
    body = client.get(
        "/api/v1/stats",
        params={"from": "2026-07-01", "to": "2026-09-30", "group_by": "unit"},
        headers=planner,
    ).json()
    for row in [body["totals"], *body["groups"]]:
        for name in COUNT_COLUMNS:
            assert type(row[name]) is int, (name, row[name])
    assert body["totals"]["dispatched"] == 7389 and body["totals"]["dispatched_closed"] == 6967
    assert round(body["totals"]["disposal_rate"] * 100, 2) == 94.29
    for path, params in (
        ("/reports/weekly", {"week": "2026-08-12"}),
        ("/reports/monthly", {"month": "2026-08"}),
    ):
        csv_text = client.get(path, params={**params, "format": "csv", "lang": "en"}, headers=planner).content
        rows = list(csv.DictReader(io.StringIO(csv_text.decode("utf-8-sig"))))
        counted = [c for c in rows[0] if c in COUNT_COLUMNS]
        assert counted
        assert all(re.fullmatch(r"-?\d+", r[c]) for r in rows for c in counted), counted
        book = load_workbook(
            io.BytesIO(
                client.get(path, params={**params, "format": "xlsx", "lang": "en"}, headers=planner).content
            )
        )
        for sheet in book.worksheets:
            header = [c.value for c in sheet[1]]
            for row in sheet.iter_rows(min_row=2, values_only=True):
                cells = dict(zip(header, row, strict=True))
                for c in COUNT_COLUMNS & set(header):
                    assert type(cells[c]) is int, (sheet.title, c, cells[c])
                if sheet.title == "summary" and cells["indicator"] in COUNT_COLUMNS:
                    assert all(type(v) is int for v in row[2:4]), row
        page = client.get(path, params=params, headers=planner).text
        cells = re.findall(r"<td>([^<]*)</td>", page)
        assert cells and not any(re.fullmatch(r"[\d,]+\.00", c) for c in cells)
    summary = re.search(r'data-table="summary".*?</table>', page, re.S).group(0)
    reported = re.search(r"<td>reported</td><td>[^<]*</td><td>([^<]*)</td>", summary).group(1)
    assert re.fullmatch(r"[\d,]+", reported), reported


def test_downloads_have_chinese_headers_first_and_english_on_asking(client, planner):
    csv_zh = client.get("/reports/monthly", params={"month": "2026-08", "format": "csv"}, headers=planner)
    header = next(csv.reader(io.StringIO(csv_zh.content.decode("utf-8-sig"))))
    assert header[:6] == ["排名", "单位编码", "名称", "派遣数", "派遣已结案数", "派遣次数"]
    assert all(re.search(r"[\u4e00-\u9fff]", h) for h in header), header
    book = load_workbook(
        io.BytesIO(
            client.get(
                "/reports/monthly", params={"month": "2026-08", "format": "xlsx"}, headers=planner
            ).content
        )
    )
    assert book.sheetnames == [
        "单位排名",
        "指标汇总",
        "街道",
        "社区满意度",
        "按来源",
        "会客室来访办理",
        "三方联动公开承诺",
        "社区治理",
        "圆桌会",
        "指标定义",
    ]
    for sheet in book.worksheets:
        assert all(re.search(r"[\u4e00-\u9fff]", str(c.value)) for c in sheet[1]), sheet.title
    assert [c.value for c in book["指标汇总"][1]] == ["指标代码", "指标", "本月", "上月", "口径"]
    weekly = client.get("/reports/weekly", params={"week": "2026-08-12", "format": "xlsx"}, headers=planner)
    assert load_workbook(io.BytesIO(weekly.content)).sheetnames == [
        "每日",
        "指标汇总",
        "街道",
        "类别前十",
        "指标定义",
    ]
    english = client.get(
        "/reports/monthly", params={"month": "2026-08", "format": "csv", "lang": "en"}, headers=planner
    )
    assert english.content.decode("utf-8-sig").startswith("rank,unit,name,dispatched,")
    page = client.get("/reports/monthly", params={"month": "2026-08"}, headers=planner).text
    assert '<th data-column="dispatched">派遣数<small>dispatched</small></th>' in page


def test_weekly_csv_has_one_row_per_day(client, planner):
    response = client.get("/reports/weekly", params={"week": "2026-08-12", "format": "csv"}, headers=planner)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["日期"] for r in rows] == [f"2026-08-{d}" for d in range(10, 17)]


def _run(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = url
    return subprocess.run([GRIDCASE, *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO)


def test_cli_stats_and_reports_write_three_files(demo_store, tmp_path):
    done = _run("stats", "--from", "2026-07-01", "--to", "2026-10-31", url=demo_store.url)
    assert done.returncode == 0, done.stderr
    assert "disposal_rate" in done.stdout and "0.9428" in done.stdout
    assert re.search(r"^reported\s+上报数\s+7534$", done.stdout, re.M), done.stdout  # an integer
    grouped = _run(
        "stats",
        "--from",
        "2026-08-01",
        "--to",
        "2026-08-31",
        "--group-by",
        "street",
        "--csv",
        url=demo_store.url,
    )
    assert grouped.returncode == 0, grouped.stderr
    assert len(list(csv.DictReader(io.StringIO(grouped.stdout)))) == 3
    weekly = _run("report", "weekly", "--week", "2026-08-12", "-o", str(tmp_path), url=demo_store.url)
    assert weekly.returncode == 0, weekly.stderr
    monthly = _run("report", "monthly", "--month", "2026-08", "-o", str(tmp_path), url=demo_store.url)
    assert monthly.returncode == 0, monthly.stderr
    for stem in ("weekly-2026-08-10", "monthly-2026-08"):
        assert "<svg" in (tmp_path / f"{stem}.html").read_text(encoding="utf-8")
        assert (
            (tmp_path / f"{stem}.csv")
            .read_text(encoding="utf-8-sig")
            .startswith("日期,上报数," if stem.startswith("weekly") else "排名,单位编码,名称,派遣数,")
        )
        assert load_workbook(tmp_path / f"{stem}.xlsx").sheetnames[0] in ("每日", "单位排名")
    bad = _run("stats", "--from", "2026-08-31", "--to", "2026-08-01", url=demo_store.url)
    assert bad.returncode == 2 and "to" in bad.stderr


def test_cli_rebuild_stats_gives_the_same_figures(demo_store):
    """Rebuilding the rollups from the demo's whole event log changes no figure."""
    before = _run(
        "stats",
        "--from",
        "2026-07-01",
        "--to",
        "2026-10-31",
        "--group-by",
        "unit",
        "--csv",
        url=demo_store.url,
    )
    rebuilt = _run("rebuild-stats", url=demo_store.url)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert re.search(r"rebuilt the daily rollup: [\d,]+ rows", rebuilt.stdout)
    folded = _run("fold-stats", url=demo_store.url)
    assert folded.returncode == 0 and folded.stdout == "folded 0 rollup deltas\n", folded.stderr
    after = _run(
        "stats",
        "--from",
        "2026-07-01",
        "--to",
        "2026-10-31",
        "--group-by",
        "unit",
        "--csv",
        url=demo_store.url,
    )
    assert before.returncode == after.returncode == 0
    assert after.stdout == before.stdout and len(after.stdout.splitlines()) > 50
