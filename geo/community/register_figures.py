"""Figures of the reception room and the public commitments, per compound, community, street, city.

- reception: requests registered in the period (China days), answered, answered within the due
  date, overdue now (unanswered past due), share answered = answered ÷ registered, share answered
  on time = answered within due ÷ registered;
- commitments, for the quarters the period touches: problems collected, committed (taken on by a
  commitment), solved (their commitment solved); commitments published, evaluated (at least one
  verdict), and the share satisfied = (满意 + 基本满意) ÷ verdicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.areas import current_generation
from geo.community.areas_named import Places
from geo.community.commitments import quarter_days, quarter_of
from geo.errors import InvalidInput

CHINA = ZoneInfo("Asia/Shanghai")
LEVELS = ("compound", "community", "street", "city")
#: The group key of each level, chosen from this fixed table (never from request text).
_KEYS = {
    "compound": "x.compound_code",
    "community": "x.community_code",
    "street": "c.parent_code",
    "city": "'city'",
}
_COMMUNITIES = """
    c AS (SELECT code, parent_code FROM area
          WHERE level = 'community' AND generation_low <= :g AND generation_high >= :g)
"""


@dataclass
class ReceptionRow:
    """The reception room's figures of one area."""

    level: str
    code: str | None
    name: str
    registered: int
    answered: int
    answered_on_time: int
    overdue: int
    share_answered: float | None
    share_answered_on_time: float | None


@dataclass
class CommitmentRow:
    """The public commitments' figures of one area."""

    level: str
    code: str | None
    name: str
    collected: int
    committed: int
    solved: int
    commitments: int
    evaluated: int
    share_satisfied: float | None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _level(level: str) -> str:
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    return level


def _name(places: Places, level: str, code: str | None, lang: str) -> str:
    if level == "city":
        return "全市" if lang == "zh" else "City"
    if code is None:
        return "（未注明小区）" if lang == "zh" else "(no compound given)"
    return places.name(code, lang)


def reception_figures(
    session: Session,
    start: date,
    end: date,
    level: str = "community",
    *,
    now: datetime | None = None,
    lang: str = "zh",
) -> list[ReceptionRow]:
    """Requests registered from `start` to `end` (China days, both included) and where they stand now."""
    key = _KEYS[_level(level)]
    now = now or datetime.now(UTC)
    t0 = datetime.combine(start, time(), CHINA)
    t1 = datetime.combine(end + timedelta(days=1), time(), CHINA)
    rows = session.execute(
        text(
            f"""
            WITH {_COMMUNITIES}
            SELECT {key} AS code, count(*) AS registered, count(x.answered_at) AS answered,
                   count(*) FILTER (WHERE x.answered_at <= x.due_at) AS answered_on_time,
                   count(*) FILTER (WHERE x.answered_at IS NULL AND x.due_at < :now) AS overdue
            FROM reception_request x LEFT JOIN c ON c.code = x.community_code
            WHERE x.received_at >= :t0 AND x.received_at < :t1
            GROUP BY 1 ORDER BY 1 NULLS LAST
            """
        ),
        {"g": current_generation(session) or 0, "t0": t0, "t1": t1, "now": now},
    ).all()
    places = Places.load(session)
    return [
        ReceptionRow(
            level,
            None if level == "city" else r.code,
            _name(places, level, r.code, lang),
            r.registered,
            r.answered,
            r.answered_on_time,
            r.overdue,
            _share(r.answered, r.registered),
            _share(r.answered_on_time, r.registered),
        )
        for r in rows
    ]


def quarters_between(start: date, end: date) -> list[str]:
    """The quarters a period touches, oldest first."""
    quarters, day = [], start
    while day <= end:
        q = quarter_of(day)
        quarters.append(q)
        day = quarter_days(q)[1] + timedelta(days=1)
    return quarters


def commitment_figures(
    session: Session, quarters: list[str], level: str = "community", *, lang: str = "zh"
) -> list[CommitmentRow]:
    """Problems collected, committed and solved, commitments published and evaluated, in these quarters."""
    key = _KEYS[_level(level)]
    for q in quarters:
        quarter_days(q)
    params = {"g": current_generation(session) or 0, "q": quarters}
    problems = session.execute(
        text(
            f"""
            WITH {_COMMUNITIES}
            SELECT {key} AS code, count(*) AS collected, count(x.commitment_id) AS committed,
                   count(*) FILTER (WHERE m.solved_at IS NOT NULL) AS solved
            FROM commitment_problem x LEFT JOIN commitment m ON m.id = x.commitment_id
            LEFT JOIN c ON c.code = x.community_code
            WHERE x.quarter = ANY(:q)
            GROUP BY 1
            """
        ),
        params,
    ).all()
    promised = session.execute(
        text(
            f"""
            WITH {_COMMUNITIES},
            v AS (SELECT commitment_id, count(*) AS n,
                         count(*) FILTER (WHERE verdict IN ('satisfied','basically_satisfied')) AS good
                  FROM commitment_evaluation GROUP BY commitment_id)
            SELECT {key} AS code, count(*) AS commitments, count(v.n) AS evaluated,
                   coalesce(sum(v.n), 0) AS verdicts, coalesce(sum(v.good), 0) AS good
            FROM commitment x LEFT JOIN v ON v.commitment_id = x.id
            LEFT JOIN c ON c.code = x.community_code
            WHERE x.quarter = ANY(:q)
            GROUP BY 1
            """
        ),
        params,
    ).all()
    by_code: dict[str | None, dict[str, int]] = {}
    for r in problems:
        by_code.setdefault(r.code, {}).update(collected=r.collected, committed=r.committed, solved=r.solved)
    for r in promised:
        by_code.setdefault(r.code, {}).update(
            commitments=r.commitments, evaluated=r.evaluated, verdicts=int(r.verdicts), good=int(r.good)
        )
    places = Places.load(session)
    return [
        CommitmentRow(
            level,
            None if level == "city" else code,
            _name(places, level, code, lang),
            f.get("collected", 0),
            f.get("committed", 0),
            f.get("solved", 0),
            f.get("commitments", 0),
            f.get("evaluated", 0),
            _share(f.get("good", 0), f.get("verdicts", 0)),
        )
        for code, f in sorted(by_code.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]


#: The monthly report's block: its tables' and columns' Chinese names (geo/stats.py merges them).
TABLE_LABELS_ZH = {"reception": "会客室来访办理", "commitments": "三方联动公开承诺"}
COLUMN_LABELS_ZH = {
    "level": "层级",
    "code": "编码",
    "registered": "登记来访数",
    "answered": "已答复数",
    "answered_on_time": "按期答复数",
    "share_answered": "答复率",
    "share_answered_on_time": "按期答复率",
    "collected": "征集问题数",
    "committed": "承诺解决数",
    "solved": "已解决数",
    "commitments": "承诺事项数",
    "evaluated": "已评议事项数",
    "share_satisfied": "满意率",
}
_LEVEL_ZH = {"compound": "小区", "community": "社区", "street": "街道", "city": "全市"}


def report_tables(
    session: Session, start: date, end: date, *, now: datetime | None = None
) -> dict[str, object]:
    """The monthly report's community block: the reception room's month and the quarter's
    commitments, per street and for the city (pandas frames; shares as percentages in words)."""

    def frame(rows: list, shares: tuple[str, ...], kind: type) -> pd.DataFrame:
        records = []
        for row in rows:
            record = asdict(row)
            record["level"] = _LEVEL_ZH[record["level"]]
            record["code"] = record["code"] or ""
            for s in shares:
                record[s] = "–" if record[s] is None else f"{record[s] * 100:.2f}%"
            records.append(record)
        # Columns even when empty: the report's sheets keep their headers.
        return pd.DataFrame.from_records(records, columns=[f.name for f in fields(kind)])

    reception = [
        *reception_figures(session, start, end, "street", now=now),
        *reception_figures(session, start, end, "city", now=now),
    ]
    quarters = quarters_between(start, end)
    commitments = [
        *commitment_figures(session, quarters, "street"),
        *commitment_figures(session, quarters, "city"),
    ]
    return {
        "reception": frame(reception, ("share_answered", "share_answered_on_time"), ReceptionRow),
        "commitments": frame(commitments, ("share_satisfied",), CommitmentRow),
    }
