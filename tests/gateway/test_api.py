"""Gateway: roles, idempotent ingest, 4xx on bad input, operator reads against the real ledger."""

from __future__ import annotations

import json

import pytest

from dopomoga.budget.commands import allocation_set_id, period_closed
from dopomoga.budget.ledger import BudgetLedger
from services.gateway.auth import KeyConfigError, KeyStore
from tests.factories import application
from tests.gateway.conftest import headers

CENT = "zhytomyr.centenarians"


def app_json(n: int = 1, **kw) -> dict:
    return json.loads(application(CENT, {"resident_of_community": True}, birth_date="1920-01-01",
                                  person=n, application_id=f"gw-app-{n}", **kw).model_dump_json())


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/programs", {"viewer", "budget_admin"}),
        ("get", f"/programs/{CENT}", {"viewer", "budget_admin"}),
        ("get", "/parameters?as_of=2023-04-01", {"viewer", "budget_admin"}),
        ("post", "/applications", {"registry"}),
        ("post", "/budget/periods/close", {"budget_admin"}),
        ("post", "/budget/allocations", {"budget_admin"}),
    ],
)
def test_roles(client, method, path, allowed):
    bodies = {
        "/applications": app_json(),
        "/budget/periods/close": {"program_id": CENT, "period": "2023-04"},
        "/budget/allocations": {"program_id": CENT, "year": 2023, "annual_kop": 100_000_00,
                                "plan": {"kind": "even"}, "amendment_id": "a1", "legal_reference": "рішення № 1"},
    }
    kwargs = {"json": bodies[path]} if method == "post" else {}
    assert getattr(client, method)(path, **kwargs).status_code == 401
    assert getattr(client, method)(path, headers={"X-API-Key": "wrong"}, **kwargs).status_code == 401
    for role in ("viewer", "budget_admin", "registry"):
        response = getattr(client, method)(path, headers=headers(role), **kwargs)
        if role in allowed:
            assert response.status_code in (200, 202), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"] == "forbidden"


def test_ingest_is_idempotent_and_publishes_to_applications(client, producer):
    single = client.post("/applications", json=app_json(1), headers=headers("registry"))
    assert single.status_code == 202
    assert single.json()["results"] == [{"application_id": "gw-app-1", "status": "accepted"}]
    batch = client.post("/applications", json=[app_json(1), app_json(2), app_json(3)], headers=headers("registry"))
    assert batch.status_code == 202
    assert [r["status"] for r in batch.json()["results"]] == ["duplicate", "accepted", "accepted"]
    assert [(t, k) for t, k, _ in producer.sent] == [("applications", b"gw-app-1"), ("applications", b"gw-app-2"),
                                                     ("applications", b"gw-app-3")]
    changed = app_json(2)
    changed["facts"]["resident_of_community"] = False
    conflict = client.post("/applications", json=changed, headers=headers("registry"))
    assert conflict.status_code == 409 and "gw-app-2" in conflict.json()["message"]
    assert len(producer.sent) == 3


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda b: b["applicant"].update(id="1234567890"), "РНОКПП"),
        (lambda b: b["payment"].update(iban="UA00000"), "IBAN"),
        (lambda b: b.update(program_id="no.such-program"), "unknown program"),
        (lambda b: b.update(schema_version=2), "schema_version"),
        (lambda b: b["facts"].update(amount=12.5), ""),
        (lambda b: b.pop("applicant"), "applicant"),
    ],
)
def test_invalid_applications_are_4xx_and_nothing_is_published(client, producer, mutate, fragment):
    body = app_json(5)
    mutate(body)
    response = client.post("/applications", json=body, headers=headers("registry"))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["message"]
    assert "Тестова Особа" not in response.text  # caller's values are not echoed
    assert producer.sent == []


def test_batch_errors(client, producer):
    assert client.post("/applications", json=[], headers=headers("registry")).status_code == 422
    same = client.post("/applications", json=[app_json(1), app_json(1)], headers=headers("registry"))
    assert same.status_code == 422 and "repeats" in same.json()["message"]
    not_json = client.post("/applications", content=b"{oops", headers={**headers("registry"),
                                                                       "Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert producer.sent == []


def test_broker_down_is_503_and_a_retry_publishes(client, producer):
    producer.fail = True
    assert client.post("/applications", json=app_json(9), headers=headers("registry")).status_code == 503
    producer.fail = False
    retry = client.post("/applications", json=app_json(9), headers=headers("registry"))
    assert retry.status_code == 202 and retry.json()["accepted"] == 1


def test_budget_commands_are_published_with_their_keys(client, producer):
    close = client.post("/budget/periods/close", json={"program_id": CENT, "period": "2023-04"},
                        headers=headers("budget_admin"))
    assert close.status_code == 202
    again = client.post("/budget/periods/close", json={"program_id": CENT, "period": "2023-04"},
                        headers=headers("budget_admin"))
    assert again.json()["event_id"] == close.json()["event_id"]
    # One event-id scheme: the gateway's close is the CLI's and the demo's (dopomoga.budget.commands).
    assert close.json()["event_id"] == period_closed(CENT, "2023-04").event_id
    topic, key, value = producer.sent[0]
    # Budget commands are keyed by budget year, like the claims they order against.
    assert (topic, key) == ("budget-commands", f"{CENT}:2023".encode())
    assert json.loads(value)["closed_by"] == "chief"
    alloc = client.post("/budget/allocations", headers=headers("budget_admin"), json={
        "program_id": CENT, "year": 2023, "annual_kop": 1_200_000_00, "plan": {"kind": "explicit", "months": {"2023-04": 1}},
        "amendment_id": "a1", "legal_reference": "x"})
    assert alloc.status_code == 422 and "add up" in alloc.json()["message"]
    alloc = client.post("/budget/allocations", headers=headers("budget_admin"), json={
        "program_id": CENT, "year": 2023, "annual_kop": 12.5, "plan": {"kind": "even"},
        "amendment_id": "a1", "legal_reference": "x"})
    assert alloc.status_code == 422
    alloc = client.post("/budget/allocations", headers=headers("budget_admin"), json={
        "program_id": CENT, "year": 2023, "annual_kop": 1_200_000_00, "plan": {"kind": "even"},
        "amendment_id": "a1", "legal_reference": "x"})
    assert alloc.status_code == 202
    assert alloc.json()["event_id"] == allocation_set_id(CENT, 2023, None, "a1")
    assert json.loads(producer.sent[-1][2])["event_id"] == alloc.json()["event_id"]
    bad_period = client.post("/budget/periods/close", json={"program_id": CENT, "period": "2023-13"},
                             headers=headers("budget_admin"))
    assert bad_period.status_code == 422


def test_programs_and_parameters(client):
    programs = client.get("/programs", headers=headers("viewer")).json()
    assert CENT in {p["id"] for p in programs}
    detail = client.get(f"/programs/{CENT}", headers=headers("viewer")).json()
    condition = detail["rules"][0]["conditions"][0]
    assert condition["clause_uk"] and condition["when"]
    assert client.get("/programs/nope", headers=headers("viewer")).status_code == 404
    params = client.get("/parameters?as_of=2024-05-01", headers=headers("viewer")).json()
    wage = next(p for p in params["parameters"] if p["name"] == "min_wage")
    assert wage["value"] == 800_000 and wage["effective_from"] == "2024-04-01" and wage["reference"]
    assert client.get("/parameters?as_of=yesterday", headers=headers("viewer")).status_code == 422


def test_decision_and_budget_from_the_real_ledger(make_client, catalog):
    from dopomoga.rules.engine import Engine
    from schemas.events import AllocationSet, MonthlyPlan

    ledger = BudgetLedger("sqlite://", catalog)
    engine = Engine(catalog)
    app = application(CENT, {"resident_of_community": True}, birth_date="1920-01-01", person=77,
                      application_id="gw-dec-1", submitted_on="2023-04-03")
    ledger.apply(AllocationSet(event_id="alloc-1", occurred_at=app.occurred_at, program_id=CENT, year=2023,
                               annual_kop=12_000_000, plan=MonthlyPlan(kind="even"), amendment_id="a",
                               legal_reference="тест"))
    ledger.submit(engine.decide(app))
    client = make_client(ledger)
    decision = client.get("/decisions/gw-dec-1", headers=headers("viewer"))
    assert decision.status_code == 200, decision.text
    body = decision.json()
    assert body["payout_kop"] == 1_000_000 and body["final"] is True
    assert body["entitlement"]["trace"] and body["explanation_uk"]
    assert client.get("/decisions/unknown-1", headers=headers("viewer")).status_code == 404
    assert client.get("/decisions/bad id!", headers=headers("viewer")).status_code == 422
    status = client.get(f"/budget/{CENT}/2023-04", headers=headers("viewer")).json()
    assert status["paid_kop"] == 1_000_000 and status["allocation_kop"] == 1_000_000
    assert client.get(f"/budget/{CENT}/2023-4", headers=headers("viewer")).status_code == 422
    report = client.get("/budget/need-report?year=2023", headers=headers("viewer"))
    assert report.status_code == 200 and report.json()["totals"]["paid_kop"] == 1_000_000
    metrics = client.get("/metrics").text
    assert 'dopomoga_budget_utilisation_ratio{period="2023-04",program="zhytomyr.centenarians"}' in metrics
    assert "gw-dec-1" not in metrics


def test_missing_ledger_is_503_not_500(client):
    response = client.get(f"/budget/{CENT}/2023-04", headers=headers("viewer"))
    assert response.status_code == 503


def test_health_metrics_and_docs_need_no_key(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/metrics").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["components"]["securitySchemes"]


def test_key_configuration(tmp_path):
    assert KeyStore.from_env({}).lookup("dev-viewer") is None  # development keys need DOPOMOGA_DEV=1
    dev = KeyStore.from_env({"DOPOMOGA_DEV": "1"})
    assert dev.development and dev.lookup("dev-viewer").roles == {"viewer"}
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"s3cret": {"name": "ops", "roles": ["budget_admin"]}}), encoding="utf-8")
    store = KeyStore.from_env({"DOPOMOGA_API_KEYS_FILE": str(path)})
    assert not store.development and store.lookup("s3cret").roles == {"budget_admin", "viewer"}
    assert store.lookup("dev-viewer") is None
    with pytest.raises(KeyConfigError, match="unknown role"):
        KeyStore.from_env({"DOPOMOGA_API_KEYS": "k=root"})
