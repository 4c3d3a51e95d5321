"""The command-centre screen (/command-center), the inspector's phone page (/inspector), their JSON.

Access: the screen runs unattended on the intranet, so `/command-center` and
`/api/v1/dashboard/*` need no sign-in and serve only aggregate and public-level fields (tracking
codes, categories, states, units, routing rules; never contacts or people's names). The inspector
page signs in with a bearer token and uses the case API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api import screen
from api.deps import SessionDep
from api.params import MonthQuery
from api.schemas import CaseList
from api.screen import ScreenDep
from api.security import ActorDep, oauth2
from geo import dashboard
from geo.cases import views
from geo.cases.workflow import CaseState

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

Lang = Literal["zh", "en"]
LangQuery = Annotated[Lang, Query(description="page language: zh (default) or en")]
POLL_SECONDS = 5  # the screen polls the JSON endpoints; simpler than SSE behind intranet proxies
SCREEN_COOKIE_SECONDS = 366 * 24 * 3600  # a screen is set up once a year at most

STATES_ZH = {
    "reported": "待受理",
    "verified": "已受理",
    "rejected": "不予立案",
    "filed": "已立案",
    "published": "待认领",
    "claimed": "已认领",
    "dispatched": "已派遣",
    "signed": "已签收",
    "returned": "已回退",
    "handled": "已处置",
    "rework": "返工",
    "checked": "已核查",
    "closed": "已结案",
    "parked": "挂账",
    "voided": "已作废",
    "merged": "已合并",
}
LABELS: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "社区治理指挥中心",
        "screen_key_title": "大屏接入",
        "screen_key_help": "实时数据只在指挥中心的大屏和工作人员登录后显示。"
        "请在大屏上输入接入密钥（管理员运行 gridcase screen-url 可得到带密钥的地址），只需一次。",
        "screen_key_wrong": "接入密钥不正确，请核对后重试。",
        "screen_key_label": "接入密钥",
        "screen_key_submit": "接入大屏",
        "subtitle": "网格化管理 · 实时态势",
        "switch": "English",
        "reported": "今日上报",
        "verified": "今日受理",
        "filed": "今日立案",
        "dispatched": "今日派遣",
        "handled": "今日处置",
        "closed": "今日结案",
        "disposal": "本月处置率",
        "disposal_formula": "结案数 ÷ 派遣数",
        "disposal_tip": "处置率 = 结案数 ÷ 派遣数：本月（北京时间）的结案数与派遣数之比，"
        "与月度排名报表同一口径",
        "overdue": "超期案件",
        "unresolved": "未办结",
        "map": "实时案件分布",
        "latest": "最新案件与派遣依据",
        "units": "本月单位处置率排名",
        "unit": "单位",
        "rate": "处置率",
        "no_data": "暂无数据",
        "shown": "显示",
        "of": "共",
        "updated": "更新于",
        "offline": "连接中断，正在重试…",
        "overdue_tag": "超期",
        "inspector": "网格员上报",
        "sign_in": "登录",
        "sign_out": "退出",
        "username": "用户名",
        "password": "密码",
        "new_report": "上报问题",
        "photo": "照片",
        "location": "位置",
        "loc_phone": "手机定位",
        "loc_photo": "照片中的位置 (EXIF)",
        "category": "问题类别",
        "description": "问题描述",
        "submit": "提交上报",
        "outbox": "待发送",
        "outbox_empty": "没有待发送的上报",
        "retry": "立即重试",
        "delete": "删除",
        "sending": "发送中",
        "waiting": "等待重试",
        "failed": "被拒绝",
        "needs_sign_in": "请重新登录后发送",
        "sent": "已上报",
        "my_cases": "我的上报",
        "checks": "核查任务",
        "no_checks": "没有待核查的案件",
        "after_photo": "核查照片",
        "check_pass": "核查通过",
        "check_fail": "核查不通过",
        "reason": "不通过原因",
        "events": "事件",
        "components": "部件",
        "locating": "正在定位…",
        "no_fix": "无法获取手机定位，请改用照片中的位置",
        "need_photo": "请先拍照或选择照片",
        "need_category": "请选择问题类别",
        "queued": "已保存到待发送，网络恢复后自动发送",
        "refresh": "刷新",
        "grid": "网格",
        "col_dispatched": "派遣数",
        "col_closed": "结案数",
    },
    "en": {
        "title": "Community Governance Command Centre",
        "screen_key_title": "Connect this screen",
        "screen_key_help": "The live figures show only on the command centre's screen and to signed-in "
        "staff. Enter the screen key once on this screen (an administrator gets the address with "
        "the key from `gridcase screen-url`).",
        "screen_key_wrong": "That screen key is not right; check it and try again.",
        "screen_key_label": "Screen key",
        "screen_key_submit": "Connect",
        "subtitle": "Grid management · live",
        "switch": "中文",
        "reported": "Reported today",
        "verified": "Verified today",
        "filed": "Filed today",
        "dispatched": "Dispatched today",
        "handled": "Handled today",
        "closed": "Closed today",
        "disposal": "Disposal rate (month)",
        "disposal_formula": "closed ÷ dispatched",
        "disposal_tip": "Disposal rate = closed ÷ dispatched this month (Asia/Shanghai), "
        "counted as in the monthly ranking report",
        "overdue": "Overdue",
        "unresolved": "Unresolved",
        "map": "Live cases",
        "latest": "Latest cases and why they went there",
        "units": "Units by disposal rate this month",
        "unit": "Unit",
        "rate": "Rate",
        "no_data": "No data yet",
        "shown": "showing",
        "of": "of",
        "updated": "updated",
        "offline": "Connection lost, retrying…",
        "overdue_tag": "overdue",
        "inspector": "Field inspector",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "username": "Username",
        "password": "Password",
        "new_report": "Report a problem",
        "photo": "Photo",
        "location": "Location",
        "loc_phone": "Phone location",
        "loc_photo": "From the photo (EXIF)",
        "category": "Category",
        "description": "Description",
        "submit": "Submit",
        "outbox": "Outbox",
        "outbox_empty": "Nothing waiting to be sent",
        "retry": "Retry now",
        "delete": "Delete",
        "sending": "sending",
        "waiting": "waiting to retry",
        "failed": "refused",
        "needs_sign_in": "sign in again to send",
        "sent": "Sent",
        "my_cases": "My reports",
        "checks": "Check tasks",
        "no_checks": "No cases waiting for a check",
        "after_photo": "After-photo",
        "check_pass": "Check passed",
        "check_fail": "Check failed",
        "reason": "Reason it failed",
        "events": "Events",
        "components": "Components",
        "locating": "Locating…",
        "no_fix": "No phone location: use the photo's location instead",
        "need_photo": "Take or choose a photo first",
        "need_category": "Choose a category",
        "queued": "Saved to the outbox; it is sent when the network is back",
        "refresh": "Refresh",
        "grid": "Grid",
        "col_dispatched": "dispatched",
        "col_closed": "closed",
    },
}
STATE_LABELS: dict[Lang, dict[str, str]] = {"zh": STATES_ZH, "en": {s.value: s.value for s in CaseState}}


def _page(request: Request, name: str, lang: Lang, status_code: int = 200, **context: object) -> HTMLResponse:
    strings = {**LABELS[lang], **{f"state_{k}": v for k, v in STATE_LABELS[lang].items()}}
    settings = request.app.state.settings
    config = {
        "lang": lang,
        "t": strings,
        "poll_seconds": POLL_SECONDS,
        "tiles_url": settings.tiles_url,
        **context,
    }
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": strings,
            "other_lang": "en" if lang == "zh" else "zh",
            # "</" could end the inline <script> that carries the config: escape it.
            "config_json": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
            **context,
        },
        status_code=status_code,
    )


@router.get("/command-center", response_class=HTMLResponse, include_in_schema=False)
def command_center(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2)] = None,
    lang: LangQuery = "zh",
    month: MonthQuery = None,
    key: Annotated[str | None, Query(description="the screen's kiosk key, once")] = None,
) -> Response:
    """The big screen: today's flow, disposal rate, overdue, live map, latest cases, units."""
    query = f"?lang={lang}" + (f"&month={month}" if month else "")
    if key is not None:
        if not screen.is_screen_key(request, key):
            return _page(request, "screen_key.html", lang, status_code=401, wrong_key=True)
        # Keep the key in a cookie the page's scripts cannot read, and out of the address bar.
        answer = RedirectResponse(f"/command-center{query}", status_code=303)
        answer.set_cookie(
            screen.COOKIE, key, max_age=SCREEN_COOKIE_SECONDS, httponly=True, samesite="strict", path="/"
        )
        return answer
    if not screen.may_watch(request, session, token):
        return _page(request, "screen_key.html", lang, status_code=401, wrong_key=False)
    return _page(request, "command_center.html", lang, month=month)


@router.get("/inspector", response_class=HTMLResponse, include_in_schema=False)
def inspector(request: Request, lang: LangQuery = "zh") -> HTMLResponse:
    """The field inspector's phone page: report with a photo, outbox, own cases, check tasks."""
    return _page(request, "inspector.html", lang)


# -- the screen's data (no sign-in: aggregate and public-level fields only) ----------------------
@router.get(
    "/api/v1/dashboard/summary",
    response_model=dashboard.Summary,
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_summary(session: SessionDep, month: MonthQuery = None) -> dashboard.Summary:
    """Today's counts (Asia/Shanghai), the month's disposal rate, overdue and unresolved cases."""
    return dashboard.summary(session, month=month)


@router.get(
    "/api/v1/dashboard/latest",
    response_model=list[dashboard.LatestCase],
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_latest(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[dashboard.LatestCase]:
    """The newest cases with their routing explanation."""
    return dashboard.latest_cases(session, limit)


@router.get(
    "/api/v1/dashboard/units",
    response_model=list[dashboard.UnitRank],
    tags=["dashboard"],
    dependencies=[ScreenDep],
)
def dashboard_units(
    session: SessionDep, month: MonthQuery = None, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dashboard.UnitRank]:
    """Units ranked by disposal rate for the month (单位处置率排名)."""
    window = dashboard.month_window(datetime.now(UTC), month)
    return dashboard.units_ranking(session, window, limit)


@router.get("/api/v1/dashboard/live-cases", tags=["dashboard"], dependencies=[ScreenDep])
def dashboard_live_cases(session: SessionDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 2000) -> dict:
    """Unresolved cases as GeoJSON points, newest first, at most `limit`; `total` counts all."""
    return dashboard.live_cases(session, limit)


@router.get("/api/v1/dashboard/grids", tags=["dashboard"])
def dashboard_grids(session: SessionDep, response: Response) -> dict:
    """The current grid boundaries as GeoJSON (simplified to about 1 m)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return dashboard.grid_boundaries(session)


# -- the inspector's own reports ------------------------------------------------------------------
@router.get("/api/v1/me/cases", response_model=CaseList, tags=["cases"])
def my_cases(
    actor: ActorDep, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> CaseList:
    """The cases the signed-in person reported, newest first (我的上报)."""
    return views.own_reports(session, actor, limit)
