"""Every operation in the app's OpenAPI document, fuzzed by schemathesis with an admin token and
with a field team's token (another team's orders are among the ids): no answer is a server error,
and every answer is one the document declares. The operations are read from /openapi.json when
the test runs, so a new route is covered without listing it here; routes that answer with
server-sent events (GET /v1/stream, which never ends) are left out.

Checks (CHECKS):
  not_a_server_error                  no 5xx (a 503 would be Redis down: it is up here)
  status_code_conformance             the status is one the operation documents
  content_type_conformance            and so is the Content-Type
  response_headers_conformance        documented headers (WWW-Authenticate, Retry-After) are there
  response_schema_conformance         the body validates against the documented schema
  ignored_auth                        an operation with `security` refuses the request without a
                                      token and with a made-up one
Off: negative_data_rejection (POST /v1/detections answers 200 to invalid records by design: bad
input is data, rejected record by record with a reason), positive_data_acceptance (valid requests
are rightly 400/404/409: an admin listing orders must name a team, an order that does not exist,
a transition its state refuses), the stateful checks (the document has no links) and
max_response_time.

Inputs: schemathesis's positive and negative cases, and positive cases whose path parameter is an
id that exists (seeded orders and incidents), so transitions and details are reached, not only
their 404. Deterministic (derandomized, no example database) and bounded (MAX_EXAMPLES per
operation with the admin token, 10 with the team's: most of its answers are the same).
schemathesis's own pytest loader (`schemathesis.pytest.from_fixture`) cannot be used with pytest
9.2 (it sets `Function._nodeid`, which pytest 9.2 no longer has), and a module-level schema would
need the app at import time; hence Hypothesis drives each operation's strategy here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.python import asgi

from firewatch.linkage.service import Linkage

from ..linkage.conftest import event, oid
from .conftest import Bearer, Headers

MAX_EXAMPLES = 20
STREAM = "text/event-stream"
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
)
ORDERS = 6  # orders (and their incidents) in Redis before the run


def streams(operation: schemathesis.APIOperation) -> bool:
    """An operation answering with server-sent events: a request to it never ends."""
    answers = operation.definition.raw.get("responses", {}).values()
    streamed = any(STREAM in (answer.get("content") or {}) for answer in answers)
    return streamed or operation.path == "/v1/stream"


def cases(
    operation: schemathesis.APIOperation, ids: list[str]
) -> st.SearchStrategy[schemathesis.Case]:
    """Generated cases, valid and not, and valid ones with a path parameter set to an id that
    exists."""
    options = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    for name in re.findall(r"{(\w+)}", operation.path):
        options += [operation.as_strategy(path_parameters={name: i}) for i in ids]
    return st.one_of(options)


@pytest.fixture
def fuzzed_app(make_app: Callable[..., FastAPI]) -> Iterator[FastAPI]:
    # every request counts against the token's limit: raise it so that no answer is a 429
    yield make_app(api_rate_limit=1_000_000)
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan on its event loop


@pytest.mark.parametrize(("role", "examples"), [("admin", MAX_EXAMPLES), ("team:team-A", 10)])
def test_every_operation_answers_within_its_contract(
    fuzzed_app: FastAPI, linkage: Linkage, bearer: Bearer, role: str, examples: int
) -> None:
    linkage.consume([event(n=n, team=f"team-{'AB'[n % 2]}", minutes=n) for n in range(ORDERS)])
    orders = [oid(n) for n in range(ORDERS)]
    ids = orders + [linkage.store.get(o).incident_id for o in orders]
    token = bearer(role, name="fuzz")
    checks = [getattr(schemathesis.checks, name) for name in CHECKS]
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    failures: list[str] = []
    tested = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document defines wrongly
            failures.append(str(result.err()))
            continue
        operation = result.ok()
        if streams(operation):
            continue
        tested.append(operation.label)
        failure = run(operation, cases(operation, ids), token, checks, examples)
        if failure is not None:
            failures.append(f"{operation.label}: {failure}")
    assert len(tested) >= 9, tested  # the routes of tests/api/test_openapi.py at least
    assert not failures, "\n\n".join(failures)


def run(
    operation: schemathesis.APIOperation,
    strategy: st.SearchStrategy[schemathesis.Case],
    headers: Headers,
    checks: list[Any],
    examples: int,
) -> str | None:
    """Send `examples` cases of `operation`; the (shrunk) failure, if any."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def send(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    try:
        send()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup is the latter
        return f"{type(exc).__name__}: {exc}"  # the failed checks and a curl line to replay
    return None
