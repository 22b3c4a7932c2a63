"""The boundary rejects what cannot be true, the same way through the gateway and on the topic.

One table: each row is an application made implausible in one way, and the domain reason code
both paths must give. The topic path is the eligibility service's own boundary
(``services.eligibility.boundary.admit``: decode + plausibility at the broker timestamp), run as
the stream frame runs it (a ``Rejection`` or a coded ``ValueError`` becomes a dead letter with
that code; anything else would be ``processing_failed``). The gateway path is ``POST
/applications`` with the raw bytes.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from dopomoga.errors import ReasonError
from dopomoga.rules.engine import Engine
from schemas.events import ApplicationSubmitted
from services.eligibility.boundary import admit
from services.platform.rejections import Rejection, Source
from tests.gateway.conftest import headers

BASE = None


def _base() -> dict:
    global BASE
    if BASE is None:
        for line in open("examples/applications.jsonl", encoding="utf-8"):
            if '"km-2021-0073"' in line:
                BASE = json.loads(line)
    return json.loads(json.dumps(BASE))


def _set(path: str, value):
    def change(app: dict) -> dict:
        *parents, last = path.split(".")
        node = app
        for p in parents:
            node = node[p]
        node[last] = value
        return app

    return change


def _raw(change) -> bytes:
    return json.dumps(change(_base()), ensure_ascii=True).encode()


def _future_occurred(app: dict) -> dict:
    app["occurred_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    return app


def _huge(app: dict) -> dict:
    app["facts"]["pad_a"] = ["я" * 512] * 500
    app["facts"]["pad_b"] = ["я" * 512] * 500
    return app


CASES = [
    ("submitted in 2100", _set("submitted_on", "2100-12-31"), "future_date"),
    ("submitted in 9999", _set("submitted_on", "9999-12-31"), "future_date"),
    ("occurred_at three days ahead", _future_occurred, "future_date"),
    ("born in 2100", _set("applicant.birth_date", "2100-01-01"), "future_date"),
    ("born after applying", _set("applicant.birth_date", "2021-11-10"), "implausible_birth_date"),
    ("born in 1700", _set("applicant.birth_date", "1700-01-01"), "implausible_birth_date"),
    ("period in 2100", _set("period", "2100-01"), "period_out_of_range"),
    ("period before the rules", _set("period", "1990-01"), "period_out_of_range"),
    ("negative money", _set("facts.approved_amount", -1), "amount_out_of_range"),
    ("10^15 kop", _set("facts.approved_amount", 10**15), "amount_out_of_range"),
    ("2^63 kop", _set("facts.approved_amount", 2**63), "amount_out_of_range"),
    ("int64 overflow in an int fact", _set("facts.disabled_children_count", 2**63), "amount_out_of_range"),
    ("int64 underflow in an int fact", _set("facts.disabled_children_count", -(2**63) - 1), "amount_out_of_range"),
    ("lone surrogate in the name", _set("applicant.name", "Оле\ud800на"), "invalid_unicode"),
    ("lone trailing surrogate", _set("applicant.name", "\udc00"), "invalid_unicode"),
    ("over the message limit", _huge, "oversized"),
]


def _topic_code(raw: bytes, catalog) -> str:
    try:
        admit(raw, Source("applications", 0, 1, time.time()), catalog)
    except Rejection as exc:
        return exc.reason_code
    except ReasonError as exc:
        return exc.reason_code
    return "accepted"


def test_the_base_application_is_plausible_and_decided(catalog):
    raw = json.dumps(_base()).encode()
    application = admit(raw, Source("applications", 0, 1, time.time()), catalog)
    assert Engine(catalog).check_eligibility(application).eligible


@pytest.mark.parametrize(("name", "change", "code"), CASES, ids=[c[0] for c in CASES])
def test_topic_path_rejects_with_the_domain_code(catalog, name, change, code):
    assert _topic_code(_raw(change), catalog) == code


@pytest.mark.parametrize(("name", "change", "code"), CASES, ids=[c[0] for c in CASES])
def test_gateway_path_rejects_with_the_same_code(make_client, producer, name, change, code):
    client = make_client()
    response = client.post("/applications", content=_raw(change),
                           headers={**headers("registry"), "Content-Type": "application/json"})
    assert response.status_code == (413 if code == "oversized" else 422), response.text[:300]
    body = response.json()
    assert body.get("reason_code") == code, body
    assert producer.sent == []


def test_int64_overflow_never_reaches_the_engine_as_a_defect(catalog):
    """Before: 2^63 in a fact was decided, or crashed CEL and was parked as processing_failed."""
    raw = _raw(_set("facts.disabled_children_count", 2**63))
    assert _topic_code(raw, catalog) == "amount_out_of_range"


def test_a_tolerated_date_is_accepted(catalog):
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date()
    app = _base()
    app["submitted_on"] = tomorrow.isoformat()
    app["period"] = "2021-11"  # the claimed month stays within the rules
    app = ApplicationSubmitted.model_validate(app)
    from dopomoga.rules.plausibility import check_application

    check_application(app, catalog, dt.datetime.now(dt.UTC))  # one day of tolerance (Kyiv vs UTC)


def test_gateway_refuses_a_large_body_before_reading_it(make_client):
    client = make_client()
    big = b"[" + b" " * (11 * 1024 * 1024) + b"]"
    response = client.post("/applications", content=big,
                           headers={**headers("registry"), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["reason_code"] == "oversized"


@pytest.mark.anyio
async def test_body_limit_stops_reading_a_chunked_body():
    from services.gateway.limits import BodyLimit

    reached = []

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        reached.append(scope)

    chunks = [b"x" * 1024] * 100
    read = []

    async def receive():
        read.append(1)
        return {"type": "http.request", "body": chunks[len(read) - 1], "more_body": len(read) < len(chunks)}

    sent = []

    async def send(message):
        sent.append(message)

    await BodyLimit(app, limit=10 * 1024)({"type": "http", "headers": []}, receive, send)
    assert sent[0]["status"] == 413 and not reached
    assert len(read) == 11  # stopped as soon as the limit was passed
