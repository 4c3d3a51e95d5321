"""Bearer tokens checked from memory (`TokenChecks`): how long, and what ends it at once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update

from geo.accounts import (
    AuthenticationFailed,
    TokenChecks,
    add_account,
    digest,
    issue_token,
    revoke_token,
    revoke_tokens,
    set_password,
)
from geo.store.models import ApiToken

PASSWORD = "a-long-password"


@pytest.fixture
def token(session) -> str:
    add_account(session, "clerk", PASSWORD, "operator")
    return issue_token(session, "clerk", PASSWORD)


def test_a_token_checked_moments_ago_needs_no_query_until_its_time_is_up(session, token):
    checks = TokenChecks(seconds=0.2)
    actor = checks.authenticate(session, token)
    assert checks.recent(token) == actor
    # Another process revokes it (the row goes): this process keeps it for at most `seconds`.
    session.execute(delete(ApiToken).where(ApiToken.token_hash == digest(token)))
    assert checks.recent(token) == actor
    time.sleep(0.25)
    assert checks.recent(token) is None
    with pytest.raises(AuthenticationFailed):
        checks.authenticate(session, token)


def test_revoking_in_this_process_ends_it_at_once(session, token):
    checks = TokenChecks(seconds=60)
    actor = checks.authenticate(session, token)
    revoke_token(session, token)  # sign-out
    assert checks.recent(token) is None
    other = issue_token(session, "clerk", PASSWORD)
    checks.authenticate(session, other)
    revoke_tokens(session, actor.id)  # a disabled account
    assert checks.recent(other) is None
    third = issue_token(session, "clerk", PASSWORD)
    checks.authenticate(session, third)
    set_password(session, "clerk", "another-long-password")  # a password change
    assert checks.recent(third) is None


def test_a_token_is_never_remembered_past_its_expiry(session, token):
    checks = TokenChecks(seconds=60)
    soon = datetime.now(UTC) + timedelta(milliseconds=100)
    session.execute(update(ApiToken).where(ApiToken.token_hash == digest(token)).values(expires_at=soon))
    checks.authenticate(session, token)
    time.sleep(0.15)
    assert checks.recent(token) is None


def test_zero_seconds_checks_every_request(session, token):
    checks = TokenChecks(seconds=0)
    checks.authenticate(session, token)
    assert checks.recent(token) is None
