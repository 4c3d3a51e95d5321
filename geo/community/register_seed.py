"""The demo's community governance: a quarter of public commitments and a reception register.

- **Commitments**: one community, 金鸡山社区 (421281001001), carries Shiyan's published quarter
  exactly: 119 problems collected in 2026Q3 (the demo's case quarter), 98 of them committed to by
  the three parties, 93 solved (their commitments solved with a note), most solved ones evaluated
  by residents' representatives. Exactly, not spread proportionally: the figures were published
  for one zone, and a test finds them on this community's board.
- **Reception register**: every community's walk-in requests of the last 40 days before loading
  (about 430), each with its due date on the work calendar; nearly all answered, some late, the
  newest still open, and a few unanswered past due: the duty chief's list and the screen's block.

Written in bulk (one INSERT per table), once (marker `demo_commitments_reception`); a community staff
account `community_staff` (the member on duty) is made with the other demo accounts' password.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from geo.cases.work_calendar import stored_calendar
from geo.community.areas_named import Places
from geo.community.reception import DUE_WORKING_DAYS
from geo.community.register_models import (
    Commitment,
    CommitmentEvaluation,
    CommitmentProblem,
    ReceptionFollow,
    ReceptionRequest,
)
from geo.store import Store
from geo.store.models import Account, Case, ReferenceVersion

CHINA = ZoneInfo("Asia/Shanghai")
MARKER = "demo_commitments_reception"
SEED = 421281 + 16
STAFF = "community_staff"
#: The community that carries Shiyan's published quarter, and the figures.
COMMITMENT_COMMUNITY = "421281001001"
COMMITMENT_QUARTER = "2026Q3"
PUBLISHED = {"collected": 119, "committed": 98, "solved": 93}
RECEPTION_DAYS = 40

PROBLEMS = [
    ("楼道堆放杂物，存在消防隐患", "清理楼道杂物并建立每月巡查"),
    ("小区路灯不亮，夜间出行不便", "更换损坏路灯并定期检修"),
    ("电动车充电难，有人飞线充电", "增设集中充电桩"),
    ("垃圾分类点异味大", "每日清运并冲洗分类点"),
    ("停车位不足，车辆乱停占用消防通道", "划定停车位并清理消防通道"),
    ("二次供水水箱长期未清洗", "清洗消毒水箱并公示水质报告"),
    ("外墙瓷砖脱落", "排查并修复外墙脱落部位"),
    ("绿化带黄土裸露", "补种绿植"),
    ("监控探头损坏", "维修小区出入口监控"),
    ("下水道经常堵塞", "疏通主管网并加装隔渣"),
    ("单元门禁故障", "维修更换门禁系统"),
    ("健身器材损坏", "维修更换健身器材"),
    ("顶楼屋面漏水", "修复屋面防水"),
    ("广场舞噪音扰民", "协商活动时间与音量"),
    ("宠物粪便无人清理", "设置宠物便纸箱并开展文明养宠宣传"),
    ("物业费收支不公开", "每季度公示物业费收支"),
    ("电梯经常停运", "维保电梯并公示维保记录"),
    ("小区道路坑洼", "修补破损路面"),
]
PARTIES = [("community", 0.3), ("owners_committee", 0.25), ("property_company", 0.45)]
ASKED = {
    "consultation": [
        "咨询高龄津贴申领",
        "咨询医保缴费",
        "咨询居住证办理",
        "咨询孩子入学政策",
        "咨询低保申请条件",
    ],
    "help": ["独居老人家中水管爆裂求助", "行动不便需要代办证明", "家中老人走失求助", "下岗求职需要帮助"],
    "complaint": [
        "楼上漏水到我家",
        "小区门口占道经营",
        "楼下餐馆油烟扰民",
        "楼道灯坏了一个月",
        "垃圾清运不及时",
    ],
    "dispute": ["邻里因停车位起纠纷", "与物业因物业费发生争议", "楼上装修噪音协商不成"],
    "suggestion": ["建议增设老年食堂", "建议小区加装休息座椅", "建议开设四点半课堂"],
}
KIND_WEIGHTS = {"consultation": 0.3, "help": 0.15, "complaint": 0.35, "dispute": 0.1, "suggestion": 0.1}
ANSWERS = {
    "consultation": "已当面讲解政策并告知所需材料",
    "help": "已联系网格员上门协助，问题已解决",
    "complaint": "已转相关单位处理，处理结果已电话告知",
    "dispute": "已组织双方调解，达成一致",
    "suggestion": "建议已提交社区两委会研究，已答复来访人",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def seed(store: Store, cases: bool = True, now: datetime | None = None) -> int:
    """The member on duty's account, and (with the demo's cases) the quarter and register, once."""
    from geo.accounts import add_account
    from geo.demo import DEMO_PASSWORD

    with store.transaction() as session:
        if not session.scalar(select(func.count()).select_from(Account).where(Account.username == STAFF)):
            add_account(session, STAFF, DEMO_PASSWORD, STAFF, display_name="社区工作人员（会客室值班）")
        if not cases:
            return 0
        session.execute(text("SELECT pg_advisory_xact_lock(421297)"))
        if session.scalar(select(ReferenceVersion.version).where(ReferenceVersion.name == MARKER)):
            return 0
        rng = np.random.default_rng(SEED)
        made = seed_commitments(session, rng) + seed_reception(session, rng, now or datetime.now(UTC))
        session.add(ReferenceVersion(name=MARKER, version=1))
    return made


def _at(day: date, rng: np.random.Generator, start: int = 8, end: int = 18) -> datetime:
    minutes = int(rng.integers(start * 60, end * 60))
    return datetime.combine(day, time(minutes // 60, minutes % 60), CHINA)


def _problem_groups(rng: np.random.Generator, compounds: int) -> list[tuple[int, int, int]]:
    """The committed problems as (compound index, problem kind, size) groups: one or two residents'
    problems of one kind in one compound per commitment, 98 problems in all."""
    groups: list[tuple[int, int, int]] = []
    total = 0
    while total < PUBLISHED["committed"]:
        size = min(1 if rng.random() < 0.75 else 2, PUBLISHED["committed"] - total)
        groups.append((len(groups) % compounds, int(rng.integers(len(PROBLEMS))), size))
        total += size
    return groups


def _unsolved(groups: list[tuple[int, int, int]]) -> set[int]:
    """The last groups, holding exactly committed − solved problems, stay in progress."""
    left, chosen = PUBLISHED["committed"] - PUBLISHED["solved"], set()
    for g in range(len(groups) - 1, -1, -1):
        if 0 < groups[g][2] <= left:
            chosen.add(g)
            left -= groups[g][2]
    assert left == 0, "the groups cannot leave exactly the published number unsolved"
    return chosen


def seed_commitments(session: Session, rng: np.random.Generator) -> int:
    """The published quarter on one community: 119 collected, 98 committed, 93 solved."""
    places = Places.load(session)
    community = places.by_code[COMMITMENT_COMMUNITY]
    compounds = places.compounds_of(COMMITMENT_COMMUNITY)
    q0 = date(2026, 7, 1)
    case_ids = list(
        session.scalars(
            select(Case.id)
            .where(
                Case.community_code == COMMITMENT_COMMUNITY,
                Case.reported_at < datetime(2026, 7, 20, tzinfo=CHINA),
            )
            .order_by(Case.id)
            .limit(14)
        )
    )
    groups = _problem_groups(rng, len(compounds))
    # Collected but not (yet) committed to: 21 more problems anywhere in the community.
    plan: list[tuple[int, int, int | None]] = [
        (c, k, g) for g, (c, k, size) in enumerate(groups) for _ in range(size)
    ]
    plan += [
        (int(rng.integers(len(compounds))), int(rng.integers(len(PROBLEMS))), None)
        for _ in range(PUBLISHED["collected"] - PUBLISHED["committed"])
    ]
    problems: list[dict[str, Any]] = []
    for i, (c, k, group) in enumerate(plan):
        source = "case" if i < len(case_ids) else ("meeting" if i % 3 == 0 else "resident")
        # The second of a pair is the same problem raised again by other households.
        again = group is not None and i > 0 and plan[i - 1][2] == group
        problems.append(
            {
                "community_code": COMMITMENT_COMMUNITY,
                "compound_code": compounds[c].code,
                "quarter": COMMITMENT_QUARTER,
                "source": source,
                "case_id": case_ids[i] if source == "case" else None,
                "description": f"{compounds[c].name}：{PROBLEMS[k][0]}"
                + ("（又有多户居民反映）" if again else ""),
                "collected_at": _at(q0 + timedelta(days=int(rng.integers(0, 20))), rng),
                "created_by": STAFF,
            }
        )
    ids = list(session.scalars(insert(CommitmentProblem).returning(CommitmentProblem.id), problems))
    open_groups = _unsolved(groups)
    rows: list[dict[str, Any]] = []
    for g, (c, k, _) in enumerate(groups):
        kind = PARTIES[int(rng.choice(len(PARTIES), p=[w for _, w in PARTIES]))][0]
        party = {
            "community": f"{community.name}党委·居委会",
            "owners_committee": f"{compounds[c].name}业主委员会",
            "property_company": f"{compounds[c].name}物业服务中心",
        }[kind]
        due = date(2026, 8, 15) + timedelta(days=int(rng.integers(0, 45)))
        solved = g not in open_groups
        solved_at = _at(due - timedelta(days=int(rng.integers(0, 20))), rng) if solved else None
        rows.append(
            {
                "community_code": COMMITMENT_COMMUNITY,
                "compound_code": compounds[c].code,
                "quarter": COMMITMENT_QUARTER,
                "party_kind": kind,
                "party_name": party,
                "promise": PROBLEMS[k][1],
                "due_on": due,
                "progress": "已完成" if solved else "已进场施工，等待材料",
                "published_at": _at(date(2026, 7, 25), rng),
                "created_by": STAFF,
                "solved_at": solved_at,
                "solution_note": "已按承诺完成，经代表现场查看" if solved else "",
            }
        )
    commitment_ids = list(session.scalars(insert(Commitment).returning(Commitment.id), rows))
    for g, cid in enumerate(commitment_ids):
        members = [pid for pid, (_, _, group) in zip(ids, plan, strict=True) if group == g]
        session.execute(
            update(CommitmentProblem).where(CommitmentProblem.id.in_(members)).values(commitment_id=cid)
        )
    verdicts: list[dict[str, Any]] = []
    for cid, row in zip(commitment_ids, rows, strict=True):
        if row["solved_at"] is None or rng.random() < 0.1:
            continue
        verdict = str(rng.choice(["satisfied", "basically_satisfied", "unsatisfied"], p=[0.78, 0.18, 0.04]))
        verdicts.append(
            {
                "commitment_id": cid,
                "verdict": verdict,
                "comment": {
                    "satisfied": "效果明显",
                    "basically_satisfied": "基本解决，还需巩固",
                    "unsatisfied": "问题反复",
                }[verdict],
                "representative": "居民代表",
                "evaluated_at": row["solved_at"] + timedelta(days=3),
                "recorded_by": STAFF,
            }
        )
    if verdicts:
        session.execute(insert(CommitmentEvaluation), verdicts)
    return len(problems) + len(rows) + len(verdicts)


def seed_reception(session: Session, rng: np.random.Generator, now: datetime) -> int:
    """Every community's walk-in requests of the last 40 days: most answered, a few overdue."""
    places = Places.load(session)
    calendar = stored_calendar(session)
    kinds = list(KIND_WEIGHTS)
    today = now.astimezone(CHINA).date()
    rows: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    per_day: dict[date, int] = {}
    for community in places.of_level("community"):
        compounds = places.compounds_of(community.code)
        for back in range(RECEPTION_DAYS, -1, -1):
            day = today - timedelta(days=back)
            for _ in range(int(rng.poisson(0.4))):
                received = _at(day, rng, 8, 17)
                if received >= now:
                    continue
                kind = kinds[int(rng.choice(len(kinds), p=list(KIND_WEIGHTS.values())))]
                due = calendar.add_working_days(received, DUE_WORKING_DAYS[kind])
                n = per_day[day] = per_day.get(day, 0) + 1
                # Past due: answered (one in five late), but for a few that fell due in the last
                # week (12% of those): the overdue list. Not yet due: half answered.
                answered_at = None
                lapsed = now - timedelta(days=7) < due < now and rng.random() < 0.12
                if due < now and not lapsed:
                    answered_at = (
                        due + timedelta(hours=int(rng.integers(2, 30))) if rng.random() < 0.2 else None
                    )
                    answered_at = answered_at or received + (due - received) * float(rng.uniform(0.1, 0.9))
                elif due >= now and rng.random() < 0.5:
                    answered_at = received + (now - received) * float(rng.uniform(0.2, 0.9))
                if answered_at is not None and answered_at > now:
                    answered_at = None
                with_contact = rng.random() < 0.6
                rows.append(
                    {
                        "reference": f"JD{day:%Y%m%d}-{n:03d}",
                        "community_code": community.code,
                        "compound_code": compounds[int(rng.integers(len(compounds)))].code
                        if compounds
                        else None,
                        "received_at": received,
                        "taken_by": STAFF,
                        "visitor": SURNAMES[int(rng.integers(len(SURNAMES)))]
                        + ("女士" if rng.random() < 0.5 else "先生"),
                        "visitor_contact": f"1{int(rng.integers(3, 9))}{int(rng.integers(0, 10**9)):09d}"
                        if with_contact
                        else None,
                        "kind": kind,
                        "asked": str(rng.choice(ASKED[kind])),
                        "due_at": due,
                        "state": "answered" if answered_at else "open",
                        "answer": ANSWERS[kind] if answered_at else "",
                        "answered_at": answered_at,
                        "answered_by": STAFF if answered_at else None,
                    }
                )
    ids = list(session.scalars(insert(ReceptionRequest).returning(ReceptionRequest.id), rows))
    for rid, row in zip(ids, rows, strict=True):
        if row["answered_at"] is not None:
            answers.append(
                {
                    "request_id": rid,
                    "at": row["answered_at"],
                    "by": STAFF,
                    "kind": "answer",
                    "note": row["answer"],
                }
            )
        elif rng.random() < 0.5:
            answers.append(
                {
                    "request_id": rid,
                    "at": row["received_at"] + timedelta(hours=2),
                    "by": STAFF,
                    "kind": "note",
                    "note": "已电话联系相关单位，等待回复",
                }
            )
    if answers:
        session.execute(insert(ReceptionFollow), answers)
    return len(rows)
