"""An amount the act does not state waits for an operator's confirmation; only then is it payable."""

from __future__ import annotations

import datetime as dt

import yaml

from dopomoga.budget.commands import parameter_confirmed
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from tests.budget.conftest import allocation
from tests.factories import application, program_root

PROGRAM = "zhytomyr.test-inferred"
SPEC = {
    "id": PROGRAM,
    "version": "test.1",
    "title": {"uk": "Щомісячна допомога (тест)", "en": "Test inferred"},
    "city": "zhytomyr",
    "legal_basis": {"act_uk": "Тестова програма", "clause_uk": "захід 1.1.4", "seed": "000:L24"},
    "payee": "person",
    "payment_channels": ["bank"],
    "frequency": {"kind": "monthly"},
    "budget": {"policy": "first_come", "clause_uk": "в межах асигнувань"},
    "parameters": {"monthly_payment": {
        "description_uk": "розмір щомісячної допомоги", "unit": "UAH",
        "values": {"2023-01-01": {"value": "500", "reference": "захід 1.1.4 (розмір підлягає підтвердженню)",
                                  "source": "000:L24: 9,0 тис. грн / (3 × 6)", "inferred": True}},
    }},
    "rules": [{"effective_from": "2023-01-01", "conditions": [],
               "amount": {"clause_uk": "захід 1.1.4", "formula": "monthly_payment", "rounding_uk": "немає"}}],
}
T = dt.datetime(2023, 3, 10, 9, 0, tzinfo=dt.UTC)


def _setup(tmp_path):
    program_root(tmp_path, "zhytomyr")
    (tmp_path / "zhytomyr" / "test-inferred.yaml").write_text(yaml.safe_dump(SPEC, allow_unicode=True))
    catalog = Catalog.load(tmp_path)
    ledger = BudgetLedger("sqlite://", catalog)
    ledger.apply(allocation(PROGRAM, 2023, 1_200_000))
    return Engine(catalog), ledger


def _claim(engine, person, month):
    return engine.decide(application(PROGRAM, {}, submitted_on=f"2023-{month:02d}-02", period=f"2023-{month:02d}",
                                     person=person, application_id=f"inf-{person}-{month}"))


def _confirm(at=T):
    return parameter_confirmed(PROGRAM, 2023, "monthly_payment", document="рішення ЖМР від 24.12.2020 № 35 зі змінами",
                               confirmed_by="head-of-department", occurred_at=at)


def test_a_claim_with_an_unconfirmed_amount_is_held_not_paid_though_money_is_there(tmp_path):
    engine, ledger = _setup(tmp_path)
    [held] = ledger.submit(_claim(engine, 1, 3))
    assert held.status == "held" and not held.final and held.payout_kop == 0
    assert held.reason_code == "awaiting_confirmation" and "підтвердить розмір" in held.explanation_uk
    assert ledger.status(PROGRAM, "2023-03").paid_kop == 0


def test_the_operators_confirmation_releases_the_held_claims_and_later_ones_are_paid_at_once(tmp_path):
    engine, ledger = _setup(tmp_path)
    ledger.submit(_claim(engine, 1, 3))
    ledger.submit(_claim(engine, 2, 3))
    released = ledger.apply(_confirm())
    assert [(d.application_id, d.status, d.payout_kop) for d in released] == [
        ("inf-1-3", "paid", 50_000), ("inf-2-3", "paid", 50_000),
    ]
    [later] = ledger.submit(_claim(engine, 3, 4))  # decided with the same (still inferred) value
    assert later.status == "paid" and later.payout_kop == 50_000
    assert ledger.apply(_confirm()) == released  # a replayed confirmation changes nothing
    # confirming the same value again is the same command (one event id per program, year, parameter)
    assert _confirm(T + dt.timedelta(days=1)).event_id == _confirm().event_id


def test_a_confirmed_value_in_the_program_file_is_never_held(tmp_path):
    confirmed = {**SPEC["parameters"]["monthly_payment"]["values"]["2023-01-01"],
                 "confirmed_by": "рішення ЖМР від 24.12.2020 № 35 зі змінами"}
    SPEC_C = {**SPEC, "parameters": {"monthly_payment": {**SPEC["parameters"]["monthly_payment"],
                                                         "values": {"2023-01-01": confirmed}}}}
    program_root(tmp_path, "zhytomyr")
    (tmp_path / "zhytomyr" / "test-inferred.yaml").write_text(yaml.safe_dump(SPEC_C, allow_unicode=True))
    catalog = Catalog.load(tmp_path)
    ledger = BudgetLedger("sqlite://", catalog)
    ledger.apply(allocation(PROGRAM, 2023, 1_200_000))
    [paid] = ledger.submit(_claim(Engine(catalog), 1, 3))
    assert paid.status == "paid"
