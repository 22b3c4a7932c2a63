"""The console and the status API in-process (TestClient): sign-in and roles, masking, dead-letter
correction, maker-checker, month close, downloads. The browser suite (tests/e2e) drives the same
pages in Chromium against a running stack."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest

from dopomoga.budget.ledger import BudgetLedger
from schemas.events import AllocationSet, MonthlyPlan, Rejected
from services.gateway.status import StatusStore, engine_for
from services.gateway.users import DEV_PASSWORD, UserStore
from services.platform.topology import APPLICATIONS, BUDGET_COMMANDS, DEAD_LETTER, PAYOUT_DECISIONS
from tests.factories import TEST_IBAN, application, rnokpp
from tests.gateway.conftest import headers

CENT = "zhytomyr.centenarians"


@pytest.fixture
def world(producer, catalog, tmp_path):
    from fastapi.testclient import TestClient

    from dopomoga.rules.engine import Engine
    from services.gateway.app import Gateway, create_app
    from services.gateway.ingest import IngestLog
    from tests.gateway.conftest import keystore

    ledger = BudgetLedger("sqlite://", catalog)
    engine = Engine(catalog)
    apps = [application(CENT, {"resident_of_community": True}, birth_date="1920-01-01", person=500 + n,
                        application_id=f"con-{n}", submitted_on="2023-04-03") for n in range(3)]
    ledger.apply(AllocationSet(event_id="alloc-1", occurred_at=apps[0].occurred_at, program_id=CENT, year=2023,
                               annual_kop=24_000_000, plan=MonthlyPlan(kind="even"), amendment_id="a",
                               legal_reference="тест"))
    payouts = [p for a in apps for p in ledger.submit(engine.decide(a))]
    gateway = Gateway(catalog=catalog, keys=keystore(), producer=producer, ledger=ledger,
                      ingest_log=IngestLog(":memory:"))
    db = engine_for(f"sqlite:///{tmp_path / 'console.sqlite'}")
    gateway.status = StatusStore(db)
    gateway.users = UserStore(db, environ={"DOPOMOGA_DEV": "1"})
    client = TestClient(create_app(gateway), raise_server_exceptions=False)
    bad = json.loads(application(CENT, {"resident_of_community": True}, birth_date="1920-01-01", person=999,
                                 application_id="con-bad", submitted_on="2023-04-03").model_dump_json())
    bad["facts"] = {}
    rejected = Rejected(event_id="dl-1", occurred_at=dt.datetime(2023, 4, 5, tzinfo=dt.UTC), service="eligibility",
                        source_topic=APPLICATIONS, reason_code="missing_fact",
                        reason="facts.resident_of_community: required",
                        original_b64=base64.b64encode(json.dumps(bad).encode()).decode())
    records = [(APPLICATIONS, a.model_dump_json().encode(), 1.68e9) for a in apps]
    records += [(PAYOUT_DECISIONS, p.model_dump_json().encode(), 1.68e9) for p in payouts]
    records += [(DEAD_LETTER, rejected.model_dump_json().encode(), 1.68e9)]
    gateway.status.apply(records)
    return client, gateway, apps, bad


def login(client, who: str):
    client.cookies.clear()
    response = client.post("/login", data={"login": who, "password": DEV_PASSWORD, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_sign_in_roles_and_lockout(world):
    client, gateway, *_ = world
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    for who in ("viewer", "registry", "admin", "approver"):
        page = login(client, who).get("/")
        assert page.status_code == 200 and "РЕЖИМ РОЗРОБКИ" in page.text and 'id="who"' in page.text
    client.cookies.clear()
    for _ in range(5):
        assert client.post("/login", data={"login": "viewer", "password": "wrong"}).status_code == 401
    assert client.post("/login", data={"login": "viewer", "password": DEV_PASSWORD}).status_code == 429
    assert any(e["action"] == "sign_in_failed" for e in gateway.users.trail())


def test_development_users_need_the_flag(tmp_path):
    store = UserStore(engine_for(f"sqlite:///{tmp_path / 'u.sqlite'}"), environ={})
    assert store.authenticate("admin", DEV_PASSWORD) is None and not store.development


def test_overview_applications_and_a_decision(world):
    client, _, apps, _ = world
    login(client, "viewer")
    overview = client.get("/")
    assert overview.status_code == 200 and "<svg" in overview.text and "100,00 %" in overview.text
    found = client.get("/console/applications", params={"q": "con-1"})
    assert "/console/decisions/con-1" in found.text
    decision = client.get("/console/decisions/con-1")
    assert decision.status_code == 200 and "10 000,00 грн" in re.sub(r"\s", " ", decision.text) and "захід 1.1.12" in decision.text
    assert apps[1].applicant.id not in decision.text and "reveal" not in decision.text
    english = client.get("/console/programs?lang=en")
    assert "Programs" in english.text and client.get("/console/programs").text.count("Programs") >= 1


def test_reveal_is_for_allowed_roles_and_audited(world):
    client, gateway, apps, _ = world
    login(client, "viewer")
    page = client.get("/console/decisions/con-0")
    assert client.post("/console/decisions/con-0/reveal", data={"csrf": csrf(page.text)}).status_code == 403
    login(client, "registry")
    page = client.get("/console/decisions/con-0")
    assert client.post("/console/decisions/con-0/reveal", data={"csrf": "stale"}).status_code == 403
    shown = client.post("/console/decisions/con-0/reveal", data={"csrf": csrf(page.text)})
    assert shown.status_code == 200 and apps[0].applicant.id in shown.text
    assert any(e["action"] == "reveal_personal_data" and e["actor"] == "registry" for e in gateway.users.trail())


def test_dead_letter_corrected_and_resubmitted_once(world, producer):
    client, gateway, _, bad = world
    login(client, "viewer")
    page = client.get("/console/dead-letters/dl-1")
    assert "missing_fact" in page.text and bad["applicant"]["id"] not in page.text and "resubmit" not in page.text
    login(client, "registry")
    page = client.get("/console/dead-letters/dl-1")
    fixed = {**bad, "facts": {"resident_of_community": True}}
    done = client.post("/console/dead-letters/dl-1/resubmit", data={"csrf": csrf(page.text), "body": json.dumps(fixed)})
    assert done.status_code == 200 and "con-bad-r1" in done.text
    sent = [(t, k) for t, k, _ in producer.sent if t == APPLICATIONS]
    assert sent == [(APPLICATIONS, b"con-bad-r1")]
    again = client.post("/console/dead-letters/dl-1/resubmit", data={"csrf": csrf(page.text), "body": json.dumps(fixed)})
    assert again.status_code == 422 and len(producer.sent) == 1
    assert gateway.status.dead_letter("dl-1")["resubmitted_as"] == "con-bad-r1"  # the original stays, linked
    api = client.get("/applications/con-bad", headers=headers("viewer")).json()
    assert api["status"] == "dead_lettered" and api["stage"] == "eligibility" and api["reason_code"] == "missing_fact"
    assert client.get("/applications/con-bad-r1", headers=headers("viewer")).json()["status"] == "accepted"
    listed = client.get("/dead-letters?service=eligibility", headers=headers("viewer")).json()
    assert listed["total"] == 1 and listed["items"][0]["resubmitted_as"] == "con-bad-r1"
    assert bad["applicant"]["id"] not in json.dumps(listed) and bad["payment"]["iban"] not in json.dumps(listed)


def test_amendment_needs_a_second_person_and_close_needs_confirmation(world, producer):
    client, gateway, *_ = world
    login(client, "admin")
    page = client.get(f"/console/budget?program_id={CENT}&year=2023")
    proposed = client.post("/console/budget/propose", data={
        "csrf": csrf(page.text), "program_id": CENT, "year": "2023", "annual_uah": "300 000,00", "plan": "even",
        "amendment_id": "rish-99", "legal_reference": "рішення № 99"})
    assert proposed.status_code == 200 and not producer.sent
    ident = gateway.users.amendments("pending")[0]["id"]
    own = client.post(f"/console/budget/amendments/{ident}", data={"csrf": csrf(page.text), "decision": "approve"})
    assert own.status_code == 403 and not producer.sent
    confirm = client.get(f"/console/budget/close?program_id={CENT}&period=2023-04")
    assert confirm.status_code == 200
    unconfirmed = client.post("/console/budget/close", data={"csrf": csrf(page.text), "program_id": CENT,
                                                              "period": "2023-04"})
    assert unconfirmed.status_code == 422 and not producer.sent
    closed = client.post("/console/budget/close", data={"csrf": csrf(page.text), "program_id": CENT,
                                                         "period": "2023-04", "confirm": "yes"})
    assert closed.status_code == 200 and json.loads(producer.sent[-1][2])["event_type"] == "PeriodClosed"
    login(client, "approver")
    page = client.get(f"/console/budget?program_id={CENT}&year=2023")
    approved = client.post(f"/console/budget/amendments/{ident}", data={"csrf": csrf(page.text), "decision": "approve"})
    assert approved.status_code == 200
    event = json.loads(producer.sent[-1][2])
    assert producer.sent[-1][0] == BUDGET_COMMANDS and event["annual_kop"] == 30_000_000
    actions = [(e["actor"], e["action"]) for e in gateway.users.trail()]
    assert ("admin", "allocation_proposed") in actions and ("approver", "allocation_approved") in actions
    assert ("admin", "month_closed") in actions
    login(client, "viewer")
    assert client.get(f"/console/budget/close?program_id={CENT}&period=2023-04").status_code == 403


def test_department_documents_download_as_xlsx(world):
    client, *_ = world
    login(client, "viewer")
    page = client.get("/console/reports?year=2023")
    links = re.findall(r'href="(/console/reports/[a-z]+-2023\.xlsx[^"]*)"', page.text)
    assert len(links) >= 3 and any("execution" in link for link in links)
    for link in links:
        response = client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, (link, response.text[:300])
        assert response.content[:2] == b"PK"  # an XLSX is a zip
    assert client.get("/console/reports/execution-2023.xlsx?city=nowhere").status_code == 404


def test_viewer_never_receives_a_full_identifier_or_iban(world):
    client, _, apps, bad = world
    secrets_ = {a.applicant.id for a in apps} | {bad["applicant"]["id"], TEST_IBAN, rnokpp(999)}
    secrets_ |= {a.payment.iban for a in apps if a.payment.iban}
    login(client, "viewer")
    paths = ["/", "/console/applications", "/console/applications?status=decided", "/console/decisions/con-0",
             "/console/dead-letters", "/console/dead-letters/dl-1", "/console/programs",
             f"/console/programs/{CENT}", f"/console/budget?program_id={CENT}&year=2023", "/console/reports",
             "/console/reports/need-2023.csv", "/console/registers"]
    api = ["/decisions/con-0", "/applications/con-0", "/applications/con-bad", "/dead-letters",
           f"/budget/{CENT}/2023-04", "/budget/need-report?year=2023", "/programs", f"/programs/{CENT}"]
    for path in paths:
        body = client.get(path).text
        assert not any(s in body for s in secrets_), path
    for path in api:
        response = client.get(path, headers=headers("viewer"))
        assert response.status_code == 200, (path, response.text)
        assert not any(s in response.text for s in secrets_), path


def test_console_errors_are_pages_not_tracebacks(world):
    client, *_ = world
    login(client, "viewer")
    missing = client.get("/console/decisions/nope")
    assert missing.status_code == 404 and "<html" in missing.text and "Traceback" not in missing.text
    assert client.get("/console/applications?page=abc").status_code == 422
