"""Idempotency that rejects conflicts (issue 12, item 2), TigerBeetle's ``exists_with_different_…``.

- same id, same content: a harmless replay (the gateway answers ``duplicate``; the eligibility
  service decides it again, byte for byte, without a second record);
- same id, different content: a conflict - 409 at the gateway, a dead letter
  (``application_id_conflict``) naming both versions by fingerprint on the topic;
- the gateway's check is one atomic claim: twelve parallel posts of one id, twelve persons: one 202;
- the grant history never holds a person who was not granted.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

from dopomoga.rules.history import Grant
from services.devstack.synthetic import rnokpp
from services.eligibility.adapters.history import SqliteGrantHistory
from services.platform.rejections import Source
from tests.gateway.conftest import FakeFuture, headers
from tests.streaming.test_boundary import _base


def _person(app: dict, n: int) -> dict:
    app = json.loads(json.dumps(app))
    app["applicant"]["id_kind"] = "rnokpp"
    app["applicant"]["id"] = rnokpp(7000 + n)
    app["applicant"]["name"] = f"Особа {n}"
    return app


class SlowProducer:
    """Holds each send a moment, so parallel requests overlap inside the check-and-publish."""

    def __init__(self):
        self.sent: list = []
        self.lock = threading.Lock()

    def send(self, topic, key=None, value=None):
        time.sleep(0.05)
        with self.lock:
            self.sent.append((topic, key, value))
        return FakeFuture()


def parallel_posts_of_one_id(catalog, ingest_log, n: int = 12) -> tuple[list[int], SlowProducer]:
    """``n`` registry posts of one application id with different persons, released at once through a
    gateway whose producer is slow; the statuses and what reached the producer."""
    from fastapi.testclient import TestClient

    from services.gateway.app import Gateway, create_app
    from tests.gateway.conftest import keystore

    slow = SlowProducer()
    app = create_app(Gateway(catalog=catalog, keys=keystore(), producer=slow, ledger=object(), ingest_log=ingest_log))
    bodies = [json.dumps(_person(_base(), k)).encode() for k in range(n)]
    statuses: list[int] = []
    barrier = threading.Barrier(n)

    def post(body: bytes) -> None:
        with TestClient(app, raise_server_exceptions=False) as client:
            barrier.wait()
            response = client.post("/applications", content=body,
                                   headers={**headers("registry"), "Content-Type": "application/json"})
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses, slow


def test_parallel_posts_of_one_id_with_different_persons_give_exactly_one_202(catalog):
    from services.gateway.ingest import IngestLog

    statuses, slow = parallel_posts_of_one_id(catalog, IngestLog(":memory:"))
    assert sorted(statuses) == [202] + [409] * 11
    assert len(slow.sent) == 1


def test_gateway_replay_is_a_duplicate_and_a_conflict_is_409(make_client, producer):
    client = make_client()
    h = {**headers("registry"), "Content-Type": "application/json"}
    first = json.dumps(_person(_base(), 1)).encode()
    assert client.post("/applications", content=first, headers=h).status_code == 202
    again = client.post("/applications", content=first, headers=h)
    assert again.status_code == 202 and again.json()["duplicates"] == 1
    other = client.post("/applications", content=json.dumps(_person(_base(), 2)).encode(), headers=h)
    assert other.status_code == 409 and other.json()["reason_code"] == "application_id_conflict"
    assert len(producer.sent) == 1


def test_gateway_publish_failure_releases_the_claim(make_client, producer):
    client = make_client()
    h = {**headers("registry"), "Content-Type": "application/json"}
    body = json.dumps(_person(_base(), 1)).encode()
    producer.fail = True
    assert client.post("/applications", content=body, headers=h).status_code == 503
    producer.fail = False
    assert client.post("/applications", content=body, headers=h).status_code == 202  # the retry goes through


def test_an_amendment_id_reposted_with_another_amount_is_409(make_client, producer):
    client = make_client()
    h = headers("budget_admin")
    body = {"program_id": "zhytomyr.centenarians", "year": 2023, "annual_kop": 1_000_000,
            "plan": {"kind": "even"}, "amendment_id": "rishennia-1", "legal_reference": "рішення № 1"}
    assert client.post("/budget/allocations", json=body, headers=h).status_code == 202
    assert client.post("/budget/allocations", json=body, headers=h).status_code == 202  # same content: replay
    changed = client.post("/budget/allocations", json={**body, "annual_kop": 2_000_000}, headers=h)
    assert changed.status_code == 409 and changed.json()["reason_code"] == "amendment_conflict"
    assert len(producer.sent) == 2


def _run(module, raw: bytes, offset: int) -> list:
    return module.service._handle(module.decide, raw, Source("applications", 0, offset, time.time()))


def test_topic_conflict_is_dead_lettered_naming_both_versions(eligibility):
    first = json.dumps(_person(_base(), 1)).encode()
    second = json.dumps(_person(_base(), 2)).encode()
    decided = _run(eligibility, first, 10)
    assert decided[0][0] == "eligibility-decisions"
    replay = _run(eligibility, first, 10)
    assert replay == decided  # a replay: the same bytes again
    out = _run(eligibility, second, 11)
    assert [o[0] for o in out] == ["dead-letter"]
    rejected = json.loads(out[0][2])
    assert rejected["reason_code"] == "application_id_conflict"
    assert "first version sha256:" in rejected["reason"] and "this version sha256:" in rejected["reason"]
    assert "applications/0/10" in rejected["reason"]
    assert "Особа" not in rejected["reason"] and _person(_base(), 2)["applicant"]["id"] not in rejected["reason"]
    # the second person was never recorded: only the first holds the grant
    keys = {row[0] for row in eligibility.history._db.execute("SELECT subject_key FROM grants")}
    people = {k for k in keys if k.startswith("rnokpp:")}
    assert people == {f"rnokpp:{_person(_base(), 1)['applicant']['id']}"}


def test_a_corrected_resend_of_a_rejected_application_is_not_a_conflict(eligibility):
    bad = _person(_base(), 1)
    bad["facts"]["no_such_fact"] = True
    out = _run(eligibility, json.dumps(bad).encode(), 1)
    assert out[0][0] == "dead-letter"
    out = _run(eligibility, json.dumps(_person(_base(), 1)).encode(), 2)
    assert out[0][0] == "eligibility-decisions"


def test_history_confirms_only_the_paid_person(tmp_path):
    history = SqliteGrantHistory(tmp_path / "h.sqlite")
    wrong = Grant(keys=("rnokpp:2",), program_id="p.x", application_id="a1", on=dt.date(2023, 1, 1), period="2023-01")
    paid = Grant(keys=("rnokpp:1",), program_id="p.x", application_id="a1", on=dt.date(2023, 1, 1), period="2023-01")
    history.record(wrong)  # recorded provisionally for another person under the same id (old data)
    history.confirm("a1", paid)
    assert {r[0] for r in history._db.execute("SELECT subject_key FROM grants")} == {"rnokpp:1"}
    assert history.status("a1") == "final"
    assert history._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
