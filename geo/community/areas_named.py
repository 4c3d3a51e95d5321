"""Communities, compounds and streets by code, with their names (the current boundaries)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.areas import current_generation
from geo.errors import InvalidInput
from geo.store.models import Area


@dataclass(frozen=True)
class Place:
    """One area as people name it."""

    code: str
    level: str
    name: str
    name_en: str | None
    parent_code: str | None

    def named(self, lang: str = "zh") -> str:
        """The name in a language (Chinese when there is no English one)."""
        return self.name_en if lang == "en" and self.name_en else self.name


@dataclass
class Places:
    """The streets, communities and compounds in force (one read)."""

    by_code: dict[str, Place]

    @classmethod
    def load(cls, session: Session) -> Places:
        """Every street, community and compound of the current generation."""
        generation = current_generation(session) or 0
        rows = session.execute(
            select(Area.code, Area.level, Area.name, Area.name_en, Area.parent_code).where(
                Area.level.in_(("street", "community", "compound")),
                Area.generation_low <= generation,
                Area.generation_high >= generation,
            )
        )
        return cls({r.code: Place(r.code, r.level, r.name, r.name_en, r.parent_code) for r in rows})

    def name(self, code: str | None, lang: str = "zh") -> str:
        """An area's name, or the code itself when it is unknown ('' for none)."""
        if not code:
            return ""
        place = self.by_code.get(code)
        return place.named(lang) if place else code

    def of_level(self, level: str) -> list[Place]:
        """The areas of one level, by code."""
        return sorted((p for p in self.by_code.values() if p.level == level), key=lambda p: p.code)

    def compounds_of(self, community_code: str) -> list[Place]:
        """The compounds of a community, by code."""
        return [p for p in self.of_level("compound") if p.parent_code == community_code]

    def street_of(self, community_code: str) -> str | None:
        """The street office a community belongs to."""
        place = self.by_code.get(community_code)
        return place.parent_code if place else None

    def check(self, community_code: str, compound_code: str | None) -> None:
        """Refuse a community that does not exist, or a compound outside it (naming the field)."""
        place = self.by_code.get(community_code or "")
        if place is None or place.level != "community":
            raise InvalidInput(f"no community {community_code!r}", field="community_code")
        if compound_code:
            compound = self.by_code.get(compound_code)
            if compound is None or compound.level != "compound":
                raise InvalidInput(f"no compound {compound_code!r}", field="compound_code")
            if compound.parent_code != community_code:
                raise InvalidInput(
                    f"compound {compound_code} is in community {compound.parent_code}, not {community_code}",
                    field="compound_code",
                )
