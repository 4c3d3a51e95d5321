"""Response schemas of the case API: the read side's models (geo/cases/views.py), under API names.

The contract tests validate responses with these same classes.
"""

from __future__ import annotations

from geo.cases.views import CasePage as CaseList
from geo.cases.views import CaseView as CaseOut
from geo.cases.views import DuplicateView as DuplicateOut
from geo.cases.views import EventView as EventOut
from geo.cases.views import PhotoView as PhotoOut
from geo.cases.views import PublicCaseView as CasePublic

__all__ = ["CaseList", "CaseOut", "CasePublic", "DuplicateOut", "EventOut", "PhotoOut"]
