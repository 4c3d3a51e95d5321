"""Query parameters shared by routes: calendar months and days the reports can count.

Years run from 1900 to 2999: the reports step a week or a month around the day asked for and turn
China time into UTC, which overflows Python's dates near year 1 and 9999; nothing a command centre
holds is older. The patterns are published in the OpenAPI document and checked here, so that a
refusal names the parameter as the domain errors do (`month`, `from`), with the reason.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query

from geo.errors import InvalidInput

YEAR = r"(19\d\d|2\d\d\d)"
MONTH_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])$"
DAY_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


def day_query(description: str, alias: str | None = None) -> Any:
    """A YYYY-MM-DD query parameter (1900–2999); `parse_day` reads it."""
    return Query(
        alias=alias,
        description=f"{description}; YYYY-MM-DD, 1900–2999",
        json_schema_extra={"pattern": DAY_PATTERN},
    )


def parse_day(value: str | None, field: str, default: date) -> date:
    """The day a parameter names (`default` when absent), or InvalidInput naming the parameter."""
    if value is None:
        return default
    if re.fullmatch(DAY_PATTERN, value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{field}: {value!r} is not a day of the calendar", field=field) from None
    raise InvalidInput(f"{field} must be a day YYYY-MM-DD from 1900 to 2999, not {value!r}", field=field)


def month_query(
    month: Annotated[
        str | None,
        Query(
            description="YYYY-MM, 1900–2999 (Asia/Shanghai); default: this month",
            json_schema_extra={"pattern": MONTH_PATTERN},
        ),
    ] = None,
) -> str | None:
    """A checked `month` parameter, still as "YYYY-MM" (None when absent)."""
    if month is not None and not re.fullmatch(MONTH_PATTERN, month):
        raise InvalidInput(f"month must be YYYY-MM from 1900-01 to 2999-12, not {month!r}", field="month")
    return month


MonthQuery = Annotated[str | None, Depends(month_query)]


def month_start(month: str | None, default: date) -> date:
    """The first day of a checked month (`default` when absent)."""
    return default if month is None else date.fromisoformat(month + "-01")
