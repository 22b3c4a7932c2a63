"""The gateway's own store (status, users, audit, amendments) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import json

from schemas.events import Rejected
from services.gateway.status import StatusStore, engine_for
from services.gateway.users import DEV_PASSWORD, UserStore
from services.platform.topology import APPLICATIONS, DEAD_LETTER, PAYOUT_DECISIONS

NOW = dt.datetime(2023, 4, 5, 10, tzinfo=dt.UTC)


def records():
    app = {"application_id": "s-1", "program_id": "zhytomyr.centenarians", "submitted_on": "2023-04-03",
           "registry": "r"}
    payout = {"application_id": "s-1", "program_id": "zhytomyr.centenarians", "period": "2023-04",
              "status": "paid", "final": True, "payout_kop": 1_000_000, "coefficient": "1",
              "reason_code": "paid", "occurred_at": "2023-04-05T10:00:00Z"}
    bad = Rejected(event_id="dl-9", occurred_at=NOW, service="eligibility", source_topic=APPLICATIONS,
                   reason_code="missing_fact", reason="x",
                   original_b64=base64.b64encode(json.dumps({**app, "application_id": "s-2"}).encode()).decode())
    return [(APPLICATIONS, json.dumps(app).encode(), 1.68e9), (PAYOUT_DECISIONS, json.dumps(payout).encode(), None),
            (DEAD_LETTER, bad.model_dump_json().encode(), None), (APPLICATIONS, b"not json", None)]


def test_status_is_an_idempotent_read_model(db_file_url):
    store = StatusStore(engine_for(db_file_url))
    for _ in range(2):  # a replay after a crash changes nothing
        store.apply(records())
        store.apply([records()[0]])  # a late copy of the application keeps the decision
    assert store.application("s-1")["status"] == "decided" and store.application("s-1")["payout_kop"] == 1_000_000
    assert store.application("s-2")["status"] == "dead_lettered" and store.application("s-2")["stage"] == "eligibility"
    assert store.dead_letters()[0] == 1 and store.tally("2023-04")["zhytomyr.centenarians"]["paid"] == 1
    assert store.mark_resubmitted("dl-9", "s-2-r1", "registry", NOW)
    assert not store.mark_resubmitted("dl-9", "s-2-r1", "registry", NOW)  # once only
    assert store.dead_letter("dl-9")["resubmitted_as"] == "s-2-r1" and store.dead_letters(open_only=True)[0] == 0
    assert store.search(status="paid")[0] == 1 and store.latest_period("2023-12") == "2023-04"


def test_users_two_workers_and_maker_checker(db_file_url):
    engine = engine_for(db_file_url)
    first = UserStore(engine, environ={"DOPOMOGA_DEV": "1"})
    UserStore(engine_for(db_file_url), environ={"DOPOMOGA_DEV": "1"})  # a second worker starting on the same store
    admin = first.authenticate("admin", DEV_PASSWORD)
    approver = first.authenticate("approver", DEV_PASSWORD)
    assert admin and approver and first.authenticate("admin", "wrong") is None
    token = first.open_session(admin)
    assert first.session_user(token).login == "admin" and first.session_user("forged") is None
    ident = first.propose({"program_id": "p.q", "year": 2023, "annual_kop": 1}, admin)
    assert not first.decide(ident, admin, approve=True)  # never by its proposer
    assert first.decide(ident, approver, approve=True, event_id="e-1")
    assert not first.decide(ident, approver, approve=False)  # decided once
    first.record("admin", "month_closed", "p.q 2023-04")
    assert first.trail()[0]["action"] == "month_closed"
    first.close_session(token)
    assert first.session_user(token) is None
    assert UserStore(engine, environ={}).authenticate("admin", DEV_PASSWORD) is None  # the flag is gone: so are they
