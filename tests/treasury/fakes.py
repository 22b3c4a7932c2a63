"""Synthetic final payout decisions and an in-memory stand-in for ``BudgetLedger``.

The fake has the same methods as ``dopomoga.budget.ledger.BudgetLedger`` (final_payouts,
payout, entitlement, status, need_report, apply) and is used only while the real ledger
is not available, or where a test needs to tamper with ledger data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from schemas.events import Applicant, Payment, PayoutDecided, RulesRef
from tests.factories import TEST_IBAN, edrpou, rnokpp

UTC = dt.UTC
PROGRAM = "zhytomyr.centenarians"
PERIOD = "2023-04"
NAMES = (
    "Ковальчук Олена Іванівна",
    "Мар\u02bcяненко Юлія Петрівна",
    "Ґудзь Євген Ярославович",
    "Їжакевич Ірина Олексіївна",
    "Шевченко Тарас Григорович",
    "Д\u2019яченко Марія Степанівна",
)
CHANNELS = ("bank", "bank", "bank", "post", "my_transfer", "treasury")


def payout(
    n: int,
    *,
    program_id: str = PROGRAM,
    period: str = PERIOD,
    amount: int | None = None,
    channel: str | None = None,
    final: bool = True,
    name: str | None = None,
    status: str = "paid",
) -> PayoutDecided:
    channel = channel or CHANNELS[n % len(CHANNELS)]
    amount = amount if amount is not None else 100_000 + (n * 7919) % 1_000_000 + n % 97
    organisation = channel == "treasury"
    app_id = f"app-{program_id.split('.')[-1]}-{period}-{n:05d}"
    when = dt.datetime(int(period[:4]), int(period[5:]), 1 + n % 27, 9, n % 60, tzinfo=UTC)
    return PayoutDecided(
        event_id=f"pd-{app_id}",
        occurred_at=when,
        decision_id=f"pd-{app_id}",
        application_id=app_id,
        program_id=program_id,
        period=period,
        status=status,
        final=final,
        claimed_kop=amount,
        payout_kop=amount,
        coefficient="1",
        policy="first_come",
        reason_code="paid_in_full",
        explanation_uk="Виплачено повністю.",
        entitlement_decision_id=f"ent-{app_id}",
        rules=RulesRef(program_id=program_id, version="2023.1", effective_from=dt.date(2021, 1, 1), rules_hash="abc"),
        payee=Applicant(
            id_kind="edrpou" if organisation else "rnokpp",
            id=edrpou(n) if organisation else rnokpp(n),
            name=name or (f"ТОВ «Перевізник {n}»" if organisation else NAMES[n % len(NAMES)]),
            district="Богунський",
        ),
        payment=Payment(channel=channel, iban=TEST_IBAN if channel in ("bank", "treasury") else None),
    )


def payouts(count: int, **kwargs: Any) -> list[PayoutDecided]:
    return [payout(n, **kwargs) for n in range(1, count + 1)]


@dataclass
class FakeStatus:
    program_id: str
    period: str
    district: str | None
    allocation_kop: int
    available_kop: int
    reserved_kop: int
    paid_kop: int
    need_kop: int
    coefficient: str
    closed: bool


class FakeLedger:
    """Same methods as ``BudgetLedger``; holds decisions and commands in memory."""

    def __init__(self, decisions: list[PayoutDecided] | None = None, allocation_kop: int = 10**12):
        self.decisions = list(decisions or [])
        self.entitlements: dict[str, Any] = {}
        self.applied: list[Any] = []
        self.allocation_kop = allocation_kop

    def final_payouts(self, program_id: str | None = None, period: str | None = None) -> list[PayoutDecided]:
        return [
            d
            for d in self.decisions
            if d.final and (program_id is None or d.program_id == program_id) and (period is None or d.period == period)
        ]

    def payout(self, application_id: str) -> PayoutDecided | None:
        found = [d for d in self.decisions if d.application_id == application_id]
        return found[-1] if found else None

    def entitlement(self, application_id: str) -> Any:
        return self.entitlements.get(application_id)

    def status(self, program_id: str, period: str, district: str | None = None) -> FakeStatus:
        paid = sum(d.payout_kop for d in self.final_payouts(program_id, period))
        return FakeStatus(program_id, period, district, self.allocation_kop, self.allocation_kop - paid, 0, paid,
                          paid, "1", True)

    def need_report(self, year: int, program_id: str | None = None) -> list[dict]:
        return [{"program_id": program_id or PROGRAM, "year": year, "need_kop": 0}]

    def apply(self, command: Any) -> None:
        self.applied.append(command)
