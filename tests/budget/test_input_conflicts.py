"""The ledger's input ids reject conflicts (issue 12, item 2): an id taken before with different
content is a ``LedgerError`` (dead-lettered by the budget service) naming both versions by digest;
the same content is a replay returning the stored decisions; nothing changes either way."""

from __future__ import annotations

import pytest

from dopomoga.errors import LedgerError
from tests.budget.conftest import allocation, entitlement

PROGRAM = "zhytomyr.centenarians"


def test_a_claim_id_reused_for_another_person_is_a_conflict(ledger, budget_catalog):
    ledger.apply(allocation(PROGRAM, 2023, 12_000_000))
    first = entitlement(budget_catalog, PROGRAM, "a-1", 100_000, "2023-04", person=1)
    decided = ledger.submit(first)
    assert ledger.submit(first) == decided  # the same content: a replay
    other = entitlement(budget_catalog, PROGRAM, "a-1", 100_000, "2023-04", person=2)
    with pytest.raises(LedgerError) as caught:
        ledger.submit(other)
    assert caught.value.reason_code == "input_conflict"
    assert "first version digest" in str(caught.value) and "this version digest" in str(caught.value)
    assert other.application.applicant.id not in str(caught.value)
    assert ledger.payout("a-1").payee.id == first.application.applicant.id
    with pytest.raises(LedgerError):
        ledger.submit_many([other])  # the batch path too


def test_an_amendment_id_reused_with_another_amount_is_a_conflict(ledger):
    first = allocation(PROGRAM, 2023, 12_000_000, amendment="r-7")
    ledger.apply(first)
    assert ledger.apply(first) == []  # a replay
    with pytest.raises(LedgerError) as caught:
        ledger.apply(allocation(PROGRAM, 2023, 24_000_000, amendment="r-7"))
    assert caught.value.reason_code == "amendment_conflict"
    assert ledger.status(PROGRAM, "2023-01").allocation_kop == 1_000_000  # unchanged


def test_the_ledger_file_is_synchronous_full(tmp_path, budget_catalog):
    from dopomoga.budget.ledger import BudgetLedger

    ledger = BudgetLedger(f"sqlite:///{tmp_path}/l.db", budget_catalog)
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
