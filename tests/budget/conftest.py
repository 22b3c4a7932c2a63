"""Fixtures for budget tests: a catalog with test programs, an in-memory ledger, builders."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.ids import decision_id
from dopomoga.rules.programs import PROGRAMS_DIR, Catalog
from schemas.events import (
    AllocationSet,
    EntitlementCalculated,
    MonthlyPlan,
    PeriodClosed,
    RulesRef,
)
from tests.factories import application, program_root

HERE = Path(__file__).resolve().parent
UTC = dt.UTC
T0 = dt.datetime(2023, 1, 1, 8, 0, tzinfo=UTC)


def uah(text: str) -> int:
    whole, _, cents = text.replace(" ", "").partition(".")
    return int(whole) * 100 + int(cents or 0)


@pytest.fixture(scope="session")
def budget_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The global parameters, the real centenarians program and the test programs."""
    root = tmp_path_factory.mktemp("programs")
    shutil.copytree(HERE / "programs" / "zaporizhzhia", root / "zaporizhzhia")
    program_root(root, "zhytomyr", "zaporizhzhia")
    shutil.copy(PROGRAMS_DIR / "zhytomyr" / "centenarians.yaml", root / "zhytomyr")
    return Catalog.load(root)


@pytest.fixture
def ledger(budget_catalog: Catalog, db_url: str) -> Iterator[BudgetLedger]:
    """A fresh ledger on SQLite (in memory) and on PostgreSQL (tests/databases.py)."""
    ledger = BudgetLedger(db_url, budget_catalog)
    yield ledger
    ledger.store.close()


class Clock:
    """Deterministic occurred_at values: one minute per event."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> dt.datetime:
        self.n += 1
        return T0 + dt.timedelta(minutes=self.n)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def entitlement(
    catalog: Catalog,
    program_id: str,
    app_id: str,
    amount: int,
    period: str,
    *,
    at: dt.datetime | None = None,
    eligible: bool = True,
    district: str | None = None,
    facts: dict | None = None,
    person: int | str | None = None,
) -> EntitlementCalculated:
    """An EntitlementCalculated as the engine would send it (without running the engine)."""
    spec = catalog.get(program_id).spec
    submitted = dt.date.fromisoformat(f"{period}-15")
    app = application(
        program_id,
        facts if facts is not None else {"claim_kop": amount},
        submitted_on=submitted,
        application_id=app_id,
        period=period,
        person=person if person is not None else app_id,
        id_kind="edrpou" if spec.payee == "organisation" else "rnokpp",
        district=district,
        channel=spec.payment_channels[0],
    )
    ident = decision_id("entitlement", app_id)
    key = f"{program_id}:{period}" + (f":{district}" if spec.budget.by_district and district else "")
    return EntitlementCalculated(
        event_id=ident,
        occurred_at=at or app.occurred_at,
        decision_id=ident,
        application_id=app_id,
        program_id=program_id,
        period=period,
        budget_key=key,
        budget_policy=spec.budget.policy,
        eligible=eligible,
        amount_kop=amount if eligible else 0,
        rules=RulesRef(
            program_id=program_id, version=spec.version, effective_from="2019-01-01", rules_hash="test"
        ),
        conditions=[],
        parameters=[],
        trace=[],
        explanation_uk="Призначено (тест)." if eligible else "Відмовлено: умову не виконано (тест).",
        application=app,
    )


def _slug(district: str | None) -> str:
    return "all" if district is None else hashlib.sha256(district.encode()).hexdigest()[:8]


def allocation(
    program_id: str,
    year: int,
    annual: int,
    *,
    kind: str = "even",
    months: dict[str, int] | None = None,
    district: str | None = None,
    amendment: str = "initial",
    at: dt.datetime = T0,
) -> AllocationSet:
    return AllocationSet(
        event_id=f"alloc-{program_id}-{_slug(district)}-{year}-{amendment}",
        occurred_at=at,
        program_id=program_id,
        district=district,
        year=year,
        annual_kop=annual,
        plan=MonthlyPlan(kind=kind, months=months),
        amendment_id=amendment,
        legal_reference="рішення про бюджет (тест)",
    )


def close(
    program_id: str, period: str, *, district: str | None = None, at: dt.datetime | None = None
) -> PeriodClosed:
    return PeriodClosed(
        event_id=f"close-{program_id}-{_slug(district)}-{period}",
        occurred_at=at or dt.datetime.fromisoformat(f"{period}-28T18:00:00+00:00"),
        program_id=program_id,
        district=district,
        period=period,
        closed_by="test-operator",
    )
