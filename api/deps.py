"""FastAPI dependencies: the store of the app and a session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from geo.store import Store


def get_store(request: Request) -> Store:
    """The store built at app start-up."""
    return request.app.state.store


def get_session(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    """A session for one request; commits when the route returns without error."""
    with store.transaction() as session:
        yield session


StoreDep = Annotated[Store, Depends(get_store)]
# scope="function": commit before the response is sent, so a client never acts on an answer
# whose data is not saved yet (an acknowledged report must never be lost).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
