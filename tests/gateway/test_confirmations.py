"""POST /budget/confirmations: only an approver confirms an amount the act does not state."""

from __future__ import annotations

import datetime as dt
import json

from fastapi.testclient import TestClient

from dopomoga.budget.commands import parameter_confirmed
from services.gateway.app import Gateway, create_app
from services.gateway.auth import KeyStore
from services.gateway.ingest import IngestLog

PROGRAM = "zhytomyr.visual-disability-utilities"  # 4 500 UAH worked out from the report (seed 000 L28)


def _client(producer, catalog) -> TestClient:
    keys = KeyStore.from_env({"DOPOMOGA_API_KEYS": "k-head=approver:head,k-admin=budget_admin:chief"})
    gateway = Gateway(catalog=catalog, keys=keys, producer=producer, ledger=None,
                      ledger_factory=lambda: (_ for _ in ()).throw(RuntimeError("no ledger")),
                      ingest_log=IngestLog(":memory:"))
    return TestClient(create_app(gateway), raise_server_exceptions=False)


def _inferred(catalog) -> str:
    program = catalog.get(PROGRAM)
    return next(name for name, p in program.local_parameters.items() if any(v.inferred for v in p.values))


def test_the_head_of_department_confirms_an_inferred_amount_and_it_goes_to_budget_commands(producer, catalog):
    parameter = _inferred(catalog)
    body = {"program_id": PROGRAM, "year": 2023, "parameter": parameter,
            "document": "рішення Житомирської міської ради від 24.12.2020 № 35 зі змінами"}
    answer = _client(producer, catalog).post("/budget/confirmations", json=body, headers={"X-API-Key": "k-head"})
    assert answer.status_code == 202, answer.text
    [(topic, key, value)] = producer.sent
    event = json.loads(value)
    assert topic == "budget-commands" and key == f"{PROGRAM}:2023".encode()
    assert event["event_type"] == "ParameterConfirmed" and event["confirmed_by"] == "head"
    # one event id per program, year and parameter: confirming again is a harmless replay
    assert answer.json()["event_id"] == parameter_confirmed(
        PROGRAM, 2023, parameter, document="x", confirmed_by="y", occurred_at=dt.datetime.now(dt.UTC)).event_id


def test_a_budget_admin_may_not_confirm_and_a_stated_value_cannot_be_confirmed(producer, catalog):
    client = _client(producer, catalog)
    body = {"program_id": PROGRAM, "year": 2023, "parameter": _inferred(catalog), "document": "рішення № 35"}
    assert client.post("/budget/confirmations", json=body, headers={"X-API-Key": "k-admin"}).status_code == 403
    stated = {**body, "program_id": "zhytomyr.centenarians", "parameter": "centenarian_payment"}
    answer = client.post("/budget/confirmations", json=stated, headers={"X-API-Key": "k-head"})
    assert answer.status_code == 422 and "inferred" in answer.text
    assert producer.sent == []
