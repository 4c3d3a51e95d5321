"""The community-governance part of the Chibi demo, at the published scale (DOMAIN.md), once.

Published (and made here): 383 compound party branches (one per demo compound), 6,000+ cadres
registered in compounds (双报到) and 3,200+ service posts claimed, 147 co-building agreements and
341 resource-list items, 2,600 demand items and 3,200 small wishes collected in the demo quarter
(July–September 2026); 1,500+ items claimed and 870+ closed off at compound level (small wishes
claimed by a party member or a branch at the compound's round table), 1,600+ demand-list items
claimed by co-building units (escalated by the compound, claimed at the community's big round
table) and 920+ of them closed off, 149 of those claims made with a resource of the list. Every
compound holds a round table each month of the quarter, every community a big round table.

Rows are written with `geo.store.bulk.BulkInsert` (one statement per table) with their ids given,
so the whole load takes about a second. The demo accounts `community_staff` (金鸡山社区) and
`branch_secretary` (教师家园) are made with the other demo accounts' password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geo.community.lists import KINDS
from geo.community.models import GovernancePost
from geo.community.people import POSTS
from geo.store import Store
from geo.store.bulk import BulkInsert
from geo.store.models import Account, Area, ReferenceVersion, Unit

CHINA = ZoneInfo("Asia/Shanghai")
SEED = 16
MARKER = "demo_community"
QUARTER = (date(2026, 7, 1), date(2026, 9, 30))
MONTHS = (7, 8, 9)
BIG_DAY = 25  # the community's big round table, each month
DEMANDS, WISHES, RESOURCES, AGREEMENTS = 2600, 3200, 341, 147
CADRES, POSTS_CLAIMED = 6032, 3215
WISHES_CLAIMED, WISHES_CLOSED = 1512, 873  # at compound level
UNIT_CLAIMED, UNIT_CLOSED, RESOURCE_CLAIMS = 1608, 923, 149
STAFF_COMMUNITY, SECRETARY_COMPOUND = "421281001001", "421281001001C001"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程魏苏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅辉鹏飞建国志文斌宇浩凯慧琳晶"
ORGS = (
    "市税务局",
    "市人民医院",
    "市中医院",
    "市第一中学",
    "市实验小学",
    "市供电公司",
    "市自来水公司",
    "农商银行",
    "邮政储蓄银行",
    "市图书馆",
    "市文化馆",
    "市妇幼保健院",
    "市律师协会",
    "市职业技术学院",
    "市消防救援大队",
    "市公安局交警大队",
    "市市场监督管理局",
    "市民政局",
    "市人社局",
    "市卫健局",
)
TITLES = {
    "elderly": ("独居老人需要定期探访", "老人助餐点", "为高龄老人理发"),
    "children": ("暑期儿童托管", "课后作业辅导", "儿童游乐设施"),
    "environment": ("楼道堆放杂物清理", "垃圾分类宣传", "化粪池清掏"),
    "facilities": ("单元门禁损坏", "楼道灯不亮", "屋顶漏水维修"),
    "safety": ("增设监控探头", "电动车充电桩", "夜间巡逻"),
    "health": ("社区义诊", "慢病随访", "健康讲座"),
    "culture": ("广场舞场地", "老年合唱队排练室", "社区读书角"),
    "employment": ("就业技能培训", "招聘信息发布", "灵活就业指导"),
    "legal": ("法律咨询", "邻里纠纷调解", "遗嘱公证咨询"),
    "greening": ("小区绿地补种", "修剪树枝", "菜园整治"),
}
WISH_TITLES = (
    "想要一副老花镜",
    "希望有人帮忙修理轮椅",
    "孩子想要一套课外书",
    "想学用智能手机",
    "希望有人陪伴聊天",
    "需要一台助听器",
)
RESOURCE_TITLES = ("志愿服务队每月一次", "提供场地", "专业人员上门服务", "捐赠物资", "每周一次咨询")


def _ids(session: Session, table: str) -> int:
    return int(session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {table}")) or 0)


def _setval(session: Session, table: str) -> None:
    session.execute(
        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    )


def _at(day: date, hour: int = 9) -> str:
    return datetime.combine(day, time(hour), CHINA).isoformat()


@dataclass
class _World:
    compounds: list[tuple[str, str, str]]  # code, name, community
    communities: list[str]
    property_units: list[tuple[str, str]]
    rng: np.random.Generator

    def name(self) -> str:
        s = SURNAMES[int(self.rng.integers(len(SURNAMES)))]
        given = "".join(
            GIVEN[int(i)] for i in self.rng.integers(len(GIVEN), size=int(self.rng.integers(1, 3)))
        )
        return s + given

    def meeting_day(self, index: int, month: int) -> date:
        return date(2026, month, 8 + index % 15)


def _world(session: Session) -> _World:
    latest = select(func.max(Area.generation_high)).scalar_subquery()
    compounds = [
        (c, n, p or c[:12])
        for c, n, p in session.execute(
            select(Area.code, Area.name, Area.parent_code)
            .where(Area.level == "compound", Area.generation_high == latest)
            .order_by(Area.code)
        )
    ]
    communities = sorted({p for _, _, p in compounds})
    units = list(
        session.execute(
            select(Unit.code, Unit.name).where(Unit.kind == "property_company").order_by(Unit.code)
        )
    )
    return _World(compounds, communities, units, np.random.default_rng(SEED))  # type: ignore[arg-type]


def seed_community(store: Store, cases: bool = True) -> int:
    """The demo accounts of the community side, and (with the demo quarter) its data, once; rows made."""
    with store.transaction() as session:
        made = _demo_accounts(session)
        if not cases:
            return made
        session.execute(text("SELECT pg_advisory_xact_lock(421216)"))
        if session.scalar(select(ReferenceVersion.version).where(ReferenceVersion.name == MARKER)):
            return made
        world = _world(session)
        if not world.compounds:
            return made
        made += _seed(session, world)
        session.add(ReferenceVersion(name=MARKER, version=1))
    return made


def _demo_accounts(session: Session) -> int:
    from geo.accounts import add_account
    from geo.demo import DEMO_PASSWORD

    made = 0
    for username, role, area, name in (
        ("community_staff", "community_staff", STAFF_COMMUNITY, "金鸡山社区 工作人员"),
        ("branch_secretary", "branch_secretary", SECRETARY_COMPOUND, "教师家园党支部书记"),
    ):
        if session.scalar(select(Account.id).where(Account.username == username)):
            continue
        if not session.scalar(select(func.count()).select_from(Area).where(Area.code == area)):
            continue  # no demo areas loaded
        account = add_account(session, username, DEMO_PASSWORD, role, display_name=name)
        session.add(GovernancePost(account_id=account.id, area_code=area))
        made += 1
    session.flush()
    return made


def _seed(session: Session, w: _World) -> int:
    made = _parties(session, w)
    unit_ids, agreements = _co_building(session, w)
    made += len(unit_ids) + len(agreements)
    members = _members(session, w)
    made += len(members)
    resources = _resources(session, w, agreements)
    made += len(resources)
    made += _items_and_meetings(session, w, agreements, resources, members)
    return made


def _parties(session: Session, w: _World) -> int:
    rows: list[dict[str, Any]] = []
    for i, (code, name, _) in enumerate(w.compounds):
        unit_code, unit_name = w.property_units[i % len(w.property_units)]
        rows += [
            {
                "compound_code": code,
                "party": "branch",
                "name": f"{name}党支部",
                "head": w.name(),
                "unit_code": None,
            },
            {
                "compound_code": code,
                "party": "owners_committee",
                "name": f"{name}业主委员会",
                "head": w.name(),
                "unit_code": None,
            },
            {
                "compound_code": code,
                "party": "property",
                "name": unit_name,
                "head": w.name(),
                "unit_code": unit_code,
            },
        ]
    BulkInsert(
        "compound_party", "compound_code text, party text, name text, head text, unit_code text", "1"
    ).insert(session, rows)
    return len(rows)


def _co_building(session: Session, w: _World) -> tuple[list[int], list[dict[str, Any]]]:
    names: list[str] = list(ORGS) + [
        f"赤壁{s}{o}"
        for s in ("蒲圻", "赤马港", "陆水湖")
        for o in ("分理处", "中学", "卫生院", "供电所", "派出所", "志愿者协会")
    ]
    names += [f"赤壁市第{n}小学" for n in range(2, 14)]
    names = names[:50]
    first = _ids(session, "co_building_unit") + 1
    units: list[dict[str, Any]] = [
        {"id": first + i, "name": n, "kind": "organisation"} for i, n in enumerate(names)
    ]
    BulkInsert("co_building_unit", "id int, name text, kind text", "id").insert(session, units)
    _setval(session, "co_building_unit")
    first_agreement = _ids(session, "co_building_agreement") + 1
    agreements: list[dict[str, Any]] = []
    for i in range(AGREEMENTS):
        community = w.communities[i % len(w.communities)]
        unit = units[int(w.rng.integers(len(units)))]
        signed = date(2026, 1, 1) + timedelta(days=int(w.rng.integers(0, 180)))
        agreements.append(
            {
                "id": first_agreement + i,
                "co_unit_id": unit["id"],
                "community_code": community,
                "signed_on": signed.isoformat(),
                "title": f"{unit['name']}共建协议",
            }
        )
    BulkInsert(
        "co_building_agreement",
        "id int, co_unit_id int, community_code text, signed_on date, title text",
        "id",
    ).insert(session, agreements)
    _setval(session, "co_building_agreement")
    return [u["id"] for u in units], agreements


def _members(session: Session, w: _World) -> list[dict[str, Any]]:
    first = _ids(session, "party_member") + 1
    members = []
    for i in range(CADRES):
        code = w.compounds[i % len(w.compounds)][0]
        registered = date(2025, 6, 1) + timedelta(days=int(w.rng.integers(0, 390)))
        members.append(
            {
                "id": first + i,
                "name": w.name(),
                "compound_code": code,
                "workplace": ORGS[int(w.rng.integers(len(ORGS)))],
                "cadre": bool(w.rng.random() < 0.8),
                "registered_on": registered.isoformat(),
            }
        )
    BulkInsert(
        "party_member",
        "id int, name text, compound_code text, workplace text, cadre boolean, registered_on date",
        "id",
    ).insert(session, members)
    _setval(session, "party_member")
    chosen = w.rng.permutation(len(members))[:POSTS_CLAIMED]
    posts = [
        {
            "member_id": members[int(i)]["id"],
            "post": POSTS[int(w.rng.integers(len(POSTS)))],
            "claimed_on": members[int(i)]["registered_on"],
        }
        for i in chosen
    ]
    BulkInsert("service_post", "member_id int, post text, claimed_on date", "1").insert(session, posts)
    return members


def _item(
    item_id: int,
    list_name: str,
    compound: str | None,
    community: str,
    kind: str,
    title: str,
    raised: date,
    by: str,
) -> dict[str, Any]:
    return {
        "id": item_id,
        "list": list_name,
        "compound_code": compound,
        "community_code": community,
        "street_code": community[:9],
        "kind": kind,
        "title": title,
        "description": "",
        "raised_by": by,
        "raised_at": _at(raised, 9 + item_id % 8),
        "recorded_by": "community_staff",
        "level": "compound" if compound else "community",
        "offered_by_id": None,
        "state": "open",
        "claimer_kind": None,
        "claimer_unit_id": None,
        "claimer_member_id": None,
        "claimer_compound_code": None,
        "resource_id": None,
        "claimed_at": None,
        "due_on": None,
        "closed_at": None,
        "close_note": None,
        "closed_by": None,
    }


ITEM_INPUTS = """id bigint, list text, compound_code text, community_code text, street_code text, kind text,
title text, description text, raised_by text, raised_at timestamptz, recorded_by text, level text,
offered_by_id int, state text, claimer_kind text, claimer_unit_id int, claimer_member_id int,
claimer_compound_code text, resource_id bigint, claimed_at timestamptz, due_on date, closed_at timestamptz,
close_note text, closed_by text"""


def _resources(session: Session, w: _World, agreements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = _ids(session, "governance_item") + 1
    rows = []
    for i in range(RESOURCES):
        agreement = agreements[i % len(agreements)]
        kind = KINDS[int(w.rng.integers(len(KINDS)))]
        raised = date.fromisoformat(agreement["signed_on"])
        row = _item(
            first + i,
            "resource",
            None,
            agreement["community_code"],
            kind,
            RESOURCE_TITLES[i % len(RESOURCE_TITLES)],
            raised,
            "共建单位",
        )
        row["offered_by_id"] = agreement["co_unit_id"]
        rows.append(row)
    BulkInsert("governance_item", ITEM_INPUTS, "id").insert(session, rows)
    _setval(session, "governance_item")
    return rows


@dataclass
class _Quarter:
    """What the quarter's items, claims and agendas are made from, and the rows made."""

    w: _World
    resources: list[dict[str, Any]]
    first: int
    meeting_id: dict[tuple[str, str], int]
    by_compound: dict[str, list[dict[str, Any]]]
    units_of: dict[str, list[int]]
    items: list[dict[str, Any]]
    agenda: list[dict[str, Any]]
    notes: list[dict[str, Any]]

    def next_meeting(self, index: int, after: date) -> date:
        for month in MONTHS:
            if (day := self.w.meeting_day(index, month)) > after:
                return day
        raise AssertionError("an item to claim is raised before the compound's last meeting")

    def raised(self, index: int, claimed: bool) -> date:
        last = self.w.meeting_day(index, MONTHS[-1]) if claimed else QUARTER[1] + timedelta(days=1)
        return QUARTER[0] + timedelta(days=int(self.w.rng.integers(0, (last - QUARTER[0]).days)))

    def on_agenda(
        self, area: str, day: date, item_id: int, source: str, outcome: str | None, due: str | None
    ) -> None:
        self.agenda.append(
            {
                "meeting": self.meeting_id[(area, day.isoformat())],
                "source": source,
                "item_id": item_id,
                "outcome": outcome,
                "due_on": due,
                "decided_at": _at(day, 16) if outcome else None,
            }
        )

    def wish(self, i: int) -> None:
        """A small wish; the first 1,512 claimed at the compound's next round table."""
        w = self.w
        n = int(w.rng.integers(len(w.compounds)))
        code, _, community = w.compounds[n]
        claimed = i < WISHES_CLAIMED
        title = WISH_TITLES[i % len(WISH_TITLES)]
        row = _item(
            self.first + len(self.items),
            "wish",
            code,
            community,
            KINDS[i % len(KINDS)],
            title,
            self.raised(n, claimed),
            "居民",
        )
        self.items.append(row)
        if not claimed:
            return
        day = self.next_meeting(n, date.fromisoformat(row["raised_at"][:10]))
        row["state"], row["claimed_at"] = "claimed", _at(day, 16)
        row["due_on"] = (day + timedelta(days=int(w.rng.integers(20, 60)))).isoformat()
        if i % 7 == 0 or not self.by_compound.get(code):
            row["claimer_kind"], row["claimer_compound_code"] = "branch", code
        else:
            pool = self.by_compound[code]
            row["claimer_kind"], row["claimer_member_id"] = (
                "member",
                pool[int(w.rng.integers(len(pool)))]["id"],
            )
        self.on_agenda(code, day, row["id"], "unclaimed_wish", "claimed", row["due_on"])
        self.notes.append(
            {
                "item_id": row["id"],
                "at": row["claimed_at"],
                "by": "branch_secretary",
                "kind": "claim",
                "text": "圆桌会认领",
            }
        )
        if i < WISHES_CLOSED:
            _close(w, row, day, self.notes)

    def demand(self, i: int) -> None:
        """A demand; the first 1,608 escalated and claimed by a co-building unit at the big round table."""
        w = self.w
        n = int(w.rng.integers(len(w.compounds)))
        code, _, community = w.compounds[n]
        kind = KINDS[int(w.rng.integers(len(KINDS)))]
        claimed = i < UNIT_CLAIMED
        resource = None
        if i < RESOURCE_CLAIMS:
            offered = [r for r in self.resources if r["community_code"] == community]
            resource = offered[int(w.rng.integers(len(offered)))]
            kind = resource["kind"]
        title = TITLES[kind][i % len(TITLES[kind])]
        row = _item(
            self.first + len(self.items),
            "demand",
            code,
            community,
            kind,
            title,
            self.raised(n, claimed),
            "居民代表",
        )
        self.items.append(row)
        if not claimed:
            return
        day = self.next_meeting(n, date.fromisoformat(row["raised_at"][:10]))
        big = date(2026, day.month, BIG_DAY)
        self.on_agenda(code, day, row["id"], "open_demand", "escalated", None)
        units = self.units_of[community]
        row["level"], row["state"], row["claimed_at"], row["claimer_kind"] = (
            "community",
            "claimed",
            _at(big, 16),
            "unit",
        )
        row["claimer_unit_id"] = (
            resource["offered_by_id"] if resource else units[int(w.rng.integers(len(units)))]
        )
        row["resource_id"] = resource["id"] if resource else None
        row["due_on"] = (big + timedelta(days=int(w.rng.integers(30, 75)))).isoformat()
        self.on_agenda(community, big, row["id"], "escalated", "claimed", row["due_on"])
        self.notes.append(
            {
                "item_id": row["id"],
                "at": row["claimed_at"],
                "by": "community_staff",
                "kind": "claim",
                "text": "大圆桌会认领",
            }
        )
        if i < UNIT_CLOSED:
            _close(w, row, big, self.notes)


def _items_and_meetings(
    session: Session,
    w: _World,
    agreements: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    members: list[dict[str, Any]],
) -> int:
    """Demands and wishes, their claims at round tables, close-offs, and the quarter's meetings."""
    by_compound: dict[str, list[dict[str, Any]]] = {}
    for m in members:
        by_compound.setdefault(m["compound_code"], []).append(m)
    units_of: dict[str, list[int]] = {}
    for a in agreements:
        units_of.setdefault(a["community_code"], []).append(a["co_unit_id"])
    meetings = _meetings(w)
    q = _Quarter(
        w,
        resources,
        _ids(session, "governance_item") + 1,
        {(m["area_code"], m["held_on"]): m["id"] for m in meetings},
        by_compound,
        units_of,
        [],
        [],
        [],
    )
    for i in range(WISHES):
        q.wish(i)
    for i in range(DEMANDS):
        q.demand(i)
    BulkInsert("governance_item", ITEM_INPUTS, "id").insert(session, q.items)
    _setval(session, "governance_item")
    _carry_last_open(w, q.items, q.meeting_id, q.agenda)
    _write_meetings(session, meetings, q.agenda)
    note_inputs = "item_id bigint, at timestamptz, by text, kind text, text text"
    BulkInsert("governance_item_note", note_inputs, "1").insert(session, q.notes)
    return len(q.items) + len(meetings) + len(q.agenda) + len(q.notes)


def _close(w: _World, row: dict[str, Any], day: date, notes: list[dict[str, Any]]) -> None:
    closed = min(day + timedelta(days=int(w.rng.integers(2, 25))), QUARTER[1])
    row["state"], row["closed_at"], row["close_note"], row["closed_by"] = (
        "closed",
        _at(closed, 15),
        "已完成，居民满意",
        "community_staff",
    )
    notes.append(
        {
            "item_id": row["id"],
            "at": row["closed_at"],
            "by": "community_staff",
            "kind": "close",
            "text": "已完成，居民满意",
        }
    )


def _carry_last_open(
    w: _World,
    items: list[dict[str, Any]],
    meeting_id: dict[tuple[str, str], int],
    agenda: list[dict[str, Any]],
) -> None:
    """The September round table talked about some open demands and left them for October."""
    index = {code: i for i, (code, _, _) in enumerate(w.compounds)}
    listed: dict[str, int] = {}
    for row in items:
        code = row["compound_code"]
        if row["list"] != "demand" or row["state"] != "open" or listed.get(code, 0) >= 2:
            continue
        day = w.meeting_day(index[code], MONTHS[-1])
        if date.fromisoformat(row["raised_at"][:10]) >= day:
            continue
        listed[code] = listed.get(code, 0) + 1
        agenda.append(
            {
                "meeting": meeting_id[(code, day.isoformat())],
                "source": "open_demand",
                "item_id": row["id"],
                "outcome": None,
                "due_on": None,
                "decided_at": None,
            }
        )


def _meetings(w: _World) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, (code, name, community) in enumerate(w.compounds):
        for month in MONTHS:
            chair = w.name()
            rows.append(
                {
                    "id": len(rows) + 1,
                    "level": "compound",
                    "area_code": code,
                    "community_code": community,
                    "street_code": community[:9],
                    "held_on": w.meeting_day(i, month).isoformat(),
                    "chair": chair,
                    "attendees": {
                        "branch": [chair],
                        "owners_committee": [w.name()],
                        "property": [w.name()],
                        "residents": [w.name(), w.name()],
                    },
                    "minutes": f"{name}{month}月圆桌会：通报上月事项办理情况，议定本月事项。",
                    "state": "held",
                }
            )
    for community in w.communities:
        for month in MONTHS:
            leader = w.name()
            rows.append(
                {
                    "id": len(rows) + 1,
                    "level": "community",
                    "area_code": community,
                    "community_code": community,
                    "street_code": community[:9],
                    "held_on": date(2026, month, BIG_DAY).isoformat(),
                    "chair": leader,
                    "attendees": {
                        "leader": [leader],
                        "co_building": [ORGS[int(w.rng.integers(len(ORGS)))] for _ in range(3)],
                        "branch": [w.name(), w.name()],
                    },
                    "minutes": f"{month}月大圆桌会：各小区上报事项由共建单位认领。",
                    "state": "held",
                }
            )
    return rows


def _write_meetings(session: Session, meetings: list[dict[str, Any]], agenda: list[dict[str, Any]]) -> None:
    offset = _ids(session, "round_table")
    for m in meetings:
        m["id"] += offset
    for a in agenda:
        a["meeting"] += offset
    BulkInsert(
        "round_table",
        "id int, level text, area_code text, community_code text, street_code text, held_on date, "
        "chair text, attendees jsonb, minutes text, state text",
        "id",
    ).insert(session, meetings)
    _setval(session, "round_table")
    positions: dict[int, int] = {}
    rows = []
    for a in agenda:
        positions[a["meeting"]] = positions.get(a["meeting"], 0) + 1
        rows.append(
            {
                "meeting_id": a["meeting"],
                "position": positions[a["meeting"]],
                "source": a["source"],
                "title": "",
                "item_id": a["item_id"],
                "outcome": a["outcome"],
                "due_on": a["due_on"],
                "decided_at": a["decided_at"],
            }
        )
    BulkInsert(
        "agenda_item",
        "meeting_id int, position int, source text, title text, item_id bigint, outcome text, due_on date, "
        "decided_at timestamptz",
        "1",
        computed={
            "title": "(SELECT i.title FROM governance_item i WHERE i.id = r.item_id)",
            "case_ids": "'{}'::bigint[]",
            "outcome_note": "''",
        },
    ).insert(session, rows)
