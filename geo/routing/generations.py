"""Which boundary generation was in force when: every generation's start, held in memory.

Generations are few (one per boundary import) and change only with an import, which bumps the
reference version; so the router reads them once per version and answers "which generation at t?"
without a database round trip, with the same rules as `geo.areas.current_generation` and
`geo.areas.generation_at`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.store.models import BoundaryGeneration


@dataclass(frozen=True)
class Generations:
    """Boundary generations by start time: `starts` ascending, `ids` in the same order."""

    starts: tuple[datetime, ...]
    ids: tuple[int, ...]
    # The largest id among generations started by each position: what "current" means.
    _newest: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_newest", tuple(accumulate(self.ids, max)))

    def current(self, now: datetime) -> int | None:
        """The newest generation (largest id) already in force at `now`, as `current_generation`."""
        i = bisect_right(self.starts, now)
        return self._newest[i - 1] if i else None

    def at(self, when: datetime) -> int | None:
        """The generation that started last by `when` (ties: the larger id), as `generation_at`."""
        i = bisect_right(self.starts, when)
        return self.ids[i - 1] if i else None


def load_generations(session: Session) -> Generations:
    """Every generation's start (timestamptz, so aware datetimes) and id, in start order."""
    rows = session.execute(
        select(BoundaryGeneration.valid_from, BoundaryGeneration.id).order_by(
            BoundaryGeneration.valid_from, BoundaryGeneration.id
        )
    ).all()
    return Generations(starts=tuple(r[0] for r in rows), ids=tuple(r[1] for r in rows))
