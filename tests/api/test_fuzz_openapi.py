"""Property-based fuzzing of every operation of the OpenAPI document (schemathesis), issue 11.

Anonymous and with each role's token, every operation gets generated requests, schema-valid and
schema-invalid ones; the answer must be no 5xx, a documented status, the documented content type
and headers, and a body that validates against the documented schema. The app runs in-process
through its ASGI interface on its own database (the Chibi reference data, demo accounts, a few
cases in several states), so what the fuzzer creates never meets the other tests. Hypothesis is
derandomised (the same examples every run) and bounded in examples per operation, which bounds
the time.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from geo.accounts import Role
from geo.demo import DEMO_PASSWORD, load_demo
from geo.settings import Settings
from geo.store import Store
from tests.api.test_cases import canal_point
from tests.conftest import fresh_store

ROLES = [None, *(role.value for role in Role)]  # None: anonymous
FAILED = "(failed)"  # marks an operation whose test failed in the record of callers
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CANAL = canal_point()  # 10 m north of the North Canal (北渠): routed to the water bureau
# The cases on the fuzzing database, ids 1 to 4: E0102 reports taken this far along by these actions.
SEEDS = [
    [],
    [("verify", "operator")],
    [("verify", "operator"), ("file", "operator"), ("dispatch", "dispatcher")],
    [("verify", "operator"), ("file", "operator"), ("dispatch", "dispatcher"), ("sign", "unit_handler")],
]
# Generated examples per operation (schemathesis adds its explicit ones), which bounds the time;
# raise it for a deeper run by hand.
EXAMPLES = int(os.environ.get("GRIDCASE_FUZZ_EXAMPLES", "6"))


@pytest.fixture(scope="module")
def fuzz_store(settings) -> Iterator[Store]:
    """Reference data and demo accounts on a database of its own."""
    store = fresh_store(settings, "fuzz")
    load_demo(store, cases=False)
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def fuzz_app(settings, fuzz_store, tmp_path_factory):
    return create_app(
        settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("fuzz")}), store=fuzz_store
    )


@pytest.fixture(scope="module")
def tokens(fuzz_app) -> dict[str, str]:
    """A bearer token for each role's demo account, once the seeded cases are in place."""
    found = {}
    with schemathesis.python.asgi.get_client(fuzz_app) as client:
        # What is fuzzed is what the app publishes.
        assert client.get("/openapi.json").json() == DOCUMENT
        for role in ROLES[1:]:
            response = client.post("/api/v1/auth/token", data={"username": role, "password": DEMO_PASSWORD})
            assert response.status_code == 200, response.text
            found[role] = response.json()["access_token"]
        as_role = {role: {"Authorization": f"Bearer {token}"} for role, token in found.items()}
        for number, steps in enumerate(SEEDS, start=1):
            body = {"category": "E0102", "description": "巡查发现", "lon": CANAL[0], "lat": CANAL[1]}
            response = client.post("/api/v1/cases", json=body, headers=as_role["inspector"])
            assert response.status_code == 201 and response.json()["id"] == number, response.text
            for action, who in steps:
                url = f"/api/v1/cases/{number}/actions/{action}"
                assert client.post(url, json={}, headers=as_role[who]).status_code == 200
    return found


# The document, built without a database at import (schemathesis makes one test per operation at
# collection); the requests go to `fuzz_app`, the same app on the fuzzing database.
DOCUMENT = create_app(Settings(database_url=None)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """A case reference is as often one of the seeded cases as a generated string."""
    if not path_parameters or "ref" not in path_parameters:
        return st.just(path_parameters)
    seeded = [{**path_parameters, "ref": str(n)} for n in range(1, len(SEEDS) + 1)]
    return st.sampled_from([path_parameters, *seeded])


@pytest.fixture(scope="module")
def callers() -> Iterator[dict[str, list[str | None]]]:
    """Who called each operation; at the end, every role must have called every operation that
    passed (a failed one stopped early, and says so itself)."""
    seen: dict[str, list[str | None]] = defaultdict(list)
    yield seen
    for label, roles in seen.items():
        if FAILED not in roles:
            assert set(roles) == set(ROLES), f"{label} was called as {sorted(map(str, set(roles)))} only"


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_holds_to_the_document(case, fuzz_app, tokens, callers):
    # Each example is sent anonymously and with one role's token, the roles taken in turn: over
    # the examples (the explicit ones alone are more than the roles) every role calls every operation.
    seen = callers[case.operation.label]
    role = ROLES[1 + sum(1 for r in seen if r in ROLES[1:]) % (len(ROLES) - 1)]
    for caller in (None, role):
        headers = {"Authorization": f"Bearer {tokens[caller]}"} if caller else None
        seen.append(caller)
        try:
            case.call_and_validate(app=fuzz_app, headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as failure:
            failure.add_note(f"called as {caller or 'anonymous'}")
            seen.append(FAILED)
            raise
