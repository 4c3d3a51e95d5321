"""The one error family of gridcase; api/errors.py maps each to an HTTP status."""

from __future__ import annotations


class GridcaseError(Exception):
    """Base of every domain error; `field` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownCoordinateSystem(GridcaseError):
    """A coordinate system name gridcase does not know."""


class InvalidImport(GridcaseError):
    """A boundary or reference file failed validation; nothing was written."""

    def __init__(self, message: str, findings: list | None = None, *, field: str | None = None):
        super().__init__(message, field=field)
        self.findings = findings or []


class DatabaseUnavailable(GridcaseError):
    """The database could not be reached or the managed cluster could not start."""

    def __init__(self, message: str, *, field: str | None = "database"):
        super().__init__(message, field=field)


class StorageUnavailable(GridcaseError):
    """The photo store (an object store, geo/objectstore.py) could not be reached or refused."""

    def __init__(self, message: str, *, field: str | None = "photo_store"):
        super().__init__(message, field=field)


class NotFound(GridcaseError):
    """A thing named by code or id does not exist."""


class InvalidCoordinates(GridcaseError):
    """Coordinates that are not numbers, out of range, or look swapped."""


class UnknownCategory(GridcaseError):
    """A category code not in the catalogue."""


class OutsideCoverage(GridcaseError):
    """No boundaries cover the request (none loaded, or none in force at that time)."""


class InvalidInput(GridcaseError):
    """A request body or file that cannot be read as given (the field says where)."""


class InvalidTransition(GridcaseError):
    """An action not allowed in the case's current state."""


class ActionForbidden(GridcaseError):
    """An action this person's role or scope does not allow."""


class ConcurrentUpdate(GridcaseError):
    """Someone else changed the case first; reload and try again."""


class IdempotencyConflict(GridcaseError):
    """An Idempotency-Key reused with a different request."""


class TooLarge(GridcaseError):
    """A request body over the size a route accepts (refused before it is read in full)."""


class InvalidPhoto(GridcaseError):
    """A photo that cannot be accepted: not an image, too big, too many pixels, too many photos."""
