"""FastAPI dependencies: the store of the app and a session per request.

A request that uses the database first takes one of the app's database slots, waiting for it on
the event loop (which costs nothing), never in a worker thread. There are fewer slots than pooled
connections, so a request holding a slot always gets a connection: no request waits for a
connection while holding a worker thread that another request needs to finish and give its
connection back (the stall that exhausted the pool at ~22 concurrent reporters).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from geo.store import Store

# Connections kept back from requests: the rollup folder, /healthz, a router cache miss elsewhere.
# (The intake writer has connections of its own.)
RESERVED_CONNECTIONS = 2


def database_slots(store: Store) -> asyncio.Semaphore:
    """The slots of one app (made in its lifespan, on the loop that serves it)."""
    return asyncio.Semaphore(max(1, store.capacity - RESERVED_CONNECTIONS))


def get_store(request: Request) -> Store:
    """The store built at app start-up."""
    return request.app.state.store


async def get_session(
    request: Request, store: Annotated[Store, Depends(get_store)]
) -> AsyncIterator[Session]:
    """A session for one request; commits when the route returns without error."""
    async with request.app.state.db_slots:
        session = store.sessions()
        try:
            yield session
            await run_in_threadpool(session.commit)
        except BaseException:
            await run_in_threadpool(session.rollback)
            raise
        finally:
            await run_in_threadpool(session.close)


StoreDep = Annotated[Store, Depends(get_store)]
# scope="function": commit before the response is sent, so a client never acts on an answer
# whose data is not saved yet (an acknowledged report must never be lost).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
