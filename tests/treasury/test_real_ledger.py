"""1 000 carriers' claims rationed pro rata by the real BudgetLedger, exported and reconciled."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.programs import Catalog
from dopomoga.treasury.export import export_period, reconcile_with_ledger
from schemas.events import Payment
from tests.budget.conftest import HERE as BUDGET_TESTS
from tests.budget.conftest import allocation, close, entitlement
from tests.databases import BACKENDS, database
from tests.factories import TEST_IBAN, program_root

BUS = "zaporizhzhia.test-bus-carriers"
PERIOD = "2021-03"
MONTH_KOP = 987_654_321  # deliberately not a round number: the largest remainder must land exactly


@pytest.fixture(scope="module", params=BACKENDS)
def settled(request, tmp_path_factory):
    with database(request.param) as url:
        yield _settle(url, tmp_path_factory)


def _settle(url, tmp_path_factory):
    root = tmp_path_factory.mktemp("programs")
    shutil.copytree(BUDGET_TESTS / "programs" / "zaporizhzhia", root / "zaporizhzhia")
    program_root(root, "zaporizhzhia")
    catalog = Catalog.load(root)
    ledger = BudgetLedger(url, catalog)  # SQLite and PostgreSQL (tests/databases.py)
    ledger.apply(allocation(BUS, 2021, MONTH_KOP, kind="explicit", months={PERIOD: MONTH_KOP}))
    started = time.perf_counter()
    for n in range(1000):
        claim = entitlement(catalog, BUS, f"carrier-{n:04d}", 100_000 + (n * 7919) % 3_000_000 + n % 97, PERIOD)
        if n % 2:
            app = claim.application.model_copy(update={"payment": Payment(channel="bank", iban=TEST_IBAN)})
            claim = claim.model_copy(update={"application": app})
        ledger.submit(claim)
    for month in ("2021-01", "2021-02", PERIOD):
        ledger.apply(close(BUS, month))
    return ledger, catalog, time.perf_counter() - started


def test_a_month_of_1000_prorated_payouts_reconciles_to_the_kopiyka(settled, tmp_path):
    ledger, catalog, _ = settled
    status = ledger.status(BUS, PERIOD)
    assert status.closed and status.need_kop > MONTH_KOP  # short: everyone is prorated
    finals = ledger.final_payouts(BUS, PERIOD)
    assert len(finals) == 1000
    result = export_period(ledger, BUS, PERIOD, tmp_path, catalog=catalog)
    summary = json.loads((result.directory / "control.json").read_text(encoding="utf-8"))
    assert summary["count"] == 1000
    assert summary["sum_kop"] == status.paid_kop == MONTH_KOP == sum(p.payout_kop for p in finals)
    assert {ch: v["count"] for ch, v in summary["channels"].items()} == {"bank": 500, "treasury": 500}
    report = reconcile_with_ledger(ledger, result.directory)
    assert report.ok, report.differences[:5]
    before = {p.name: p.read_bytes() for p in result.directory.iterdir()}
    assert export_period(ledger, BUS, PERIOD, tmp_path, catalog=catalog).changed == []
    assert {p.name: p.read_bytes() for p in result.directory.iterdir()} == before
