"""The eligibility service decides a batch with one prefetch of its subjects (issue 15): the outputs,
message by message, are the bytes one-by-one decisions on the local SQLite history give - also for
a message that is not admitted, an id reused for other content, and a replay."""

from __future__ import annotations

import importlib
import json
import sys
import time

from services.devstack.synthetic import SyntheticRegistry
from services.platform.rejections import Source


def _service(monkeypatch, tmp_path, history_db: str):
    monkeypatch.setenv("DOPOMOGA_VAR", str(tmp_path))
    monkeypatch.setenv("DOPOMOGA_APP_PREFIX", f"unit-{time.monotonic_ns()}-")
    monkeypatch.setenv("DOPOMOGA_METRICS_PORT_ELIGIBILITY", "0")
    monkeypatch.setenv("DOPOMOGA_HISTORY_DB", history_db)
    sys.modules.pop("services.eligibility.app", None)
    module = importlib.import_module("services.eligibility.app")
    sys.modules.pop("services.eligibility.app", None)
    return module


def test_a_batch_decided_with_one_prefetch_gives_the_one_by_one_bytes(catalog, db_file_url, monkeypatch, tmp_path):
    apps = list(SyntheticRegistry(catalog, seed=3).generate(90))
    raws = [a.model_dump_json().encode() for a in apps]
    raws += [a.model_copy(update={"application_id": a.application_id + "-2"}).model_dump_json().encode()
             for a in apps[:30]]  # the same people under other ids: their limits count the first grants
    other = json.loads(raws[0])
    other["applicant"]["household_id"] = "another-household"
    raws += [b"{not json", json.dumps(other).encode(), raws[1]]  # not admitted; a conflict; a replay
    messages = [(raw, Source("applications", 0, offset, 0)) for offset, raw in enumerate(raws)]

    local = _service(monkeypatch, tmp_path / "local", "local")
    expected = [local.service._handle(local.decide, raw, source) for raw, source in messages]
    local.history.close()

    shared = _service(monkeypatch, tmp_path / "shared", db_file_url)
    assert hasattr(shared.history, "prefetch")
    got: list = []
    for start in range(0, len(messages), 40):
        got += shared.decide_batch(messages[start:start + 40])
        shared.history.commit()
    shared.history.close()
    assert [_without_clock(outs) for outs in got] == [_without_clock(outs) for outs in expected]
    assert [json.loads(out[0][2]).get("reason_code") for out in got[-3:-1]] == ["invalid_json", "application_id_conflict"]
    assert got[-1] == got[1]  # the replay re-emits the first decision's bytes


def _without_clock(outputs):
    """A dead letter records when it was written; everything else is compared byte for byte."""
    return [(topic, key, value if topic != "dead-letter" else {k: v for k, v in json.loads(value).items()
                                                               if k != "occurred_at"})
            for topic, key, value in outputs]


def test_a_batch_of_final_payouts_feeds_the_history_as_one_by_one(catalog, db_file_url, monkeypatch, tmp_path):
    """The payouts' feedback (``feed_history_batch``: runs of confirmations in one ``confirm_many``)
    leaves the same grants and statuses as ``feed_history`` message by message: paid (made final),
    refused (forgotten), a repeated payout, and a message that does not decode."""
    import datetime as dt

    from sqlalchemy import select

    from dopomoga.budget.ledger import BudgetLedger
    from dopomoga.rules.engine import Engine
    from services.eligibility.adapters.sql_history import grants
    from tests.budget.conftest import allocation

    program = "zhytomyr.centenarians"
    apps = list(SyntheticRegistry(catalog, seed=4, submitted_on="2024-05-06", eligible_share=0.7,
                                  programs=[program, "zhytomyr.triplets"]).generate(60))
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'ledger.sqlite'}", catalog)
    for p in (program, "zhytomyr.triplets"):
        ledger.apply(allocation(p, 2024, 10**11, at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)))
    engine = Engine(catalog)
    payouts = [p.model_dump_json().encode() for a in apps for p in ledger.submit(engine.decide(a))]
    ledger.close()
    kinds = {(json.loads(p)["status"], json.loads(p)["final"], json.loads(p)["payout_kop"] > 0) for p in payouts}
    assert {("refused", True, False), ("paid", True, True)} <= kinds, kinds  # both feedbacks are exercised
    payouts += [payouts[0], b"{broken", payouts[1]]
    decisions = [(a.model_dump_json().encode(), Source("applications", 0, i, 0)) for i, a in enumerate(apps)]
    fed = [(raw, Source("payout-decisions", 0, i, 0)) for i, raw in enumerate(payouts)]

    def state(module):
        return sorted(tuple(r) for r in module.history._conn.execute(
            select(grants.c.subject_key, grants.c.application_id, grants.c.status)))

    one = _service(monkeypatch, tmp_path / "one", f"sqlite:///{tmp_path / 'one.sqlite'}")
    for raw, source in decisions:
        one.service._handle(one.decide, raw, source)
    one.history.commit()
    for raw, source in fed:
        one.service._handle(one.feed_history, raw, source)
    one.history.commit()

    batch = _service(monkeypatch, tmp_path / "batch", db_file_url)
    batch.decide_batch(decisions)
    batch.history.commit()
    assert batch.feed_history_batch(fed)[-2][0][0] == "dead-letter"
    batch.history.commit()
    statuses = {row[2] for row in state(batch)}
    assert state(batch) == state(one) and statuses == {"final"}, statuses
    assert len(state(batch)) < sum(1 for _ in apps) * 2  # the refused ones were forgotten
    one.history.close()
    batch.history.close()
