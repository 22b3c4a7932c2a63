"""budget.priority reads the same scope as the program's conditions and amount.

The ledger once rebuilt that scope by hand without ``period_start``/``period_end``, the
``has_<fact>`` flags and history counts: a program whose priority read one of them loaded fine and
then served its priority claimants last (class 2**31-1). These tests run the real engine and the
real ledger on a program whose priority reads each of those names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.engine import Engine
from dopomoga.rules.history import InMemoryHistory
from dopomoga.rules.programs import Catalog, ProgramError
from tests.budget.conftest import allocation, close
from tests.factories import application, program_root

PROGRAM = "zaporizhzhia.test-priority-scope"
SPEC = {
    "id": PROGRAM,
    "version": "test.1",
    "title": {"uk": "Тестова виплата з черговістю за датою й історією", "en": "Test priority scope"},
    "city": "zaporizhzhia",
    "legal_basis": {"act_uk": "Тестова програма", "clause_uk": "п. 3", "seed": "none"},
    "payee": "person",
    "payment_channels": ["bank"],
    "frequency": {"kind": "monthly"},
    "budget": {
        "policy": "priority_then_pro_rata",
        "clause_uk": "п. 3 (першочергово — особи з довідкою, які ще не отримували виплату цього року)",
        # Class 0: a certificate was given (has_), from May 2023 on (period_start), and no grant this
        # year yet (history count). Everyone else: class 1.
        "priority": "(has_certificate_no && period_start >= 20230501 && period_end <= 20231231"
                    " && grants_this_year == 0) ? 0 : 1",
    },
    "inputs": {
        "claim_kop": {"type": "money", "description_uk": "сума"},
        "certificate_no": {"type": "string", "required": False, "description_uk": "номер довідки"},
    },
    "history": {"grants_this_year": {"scope": "person", "window": "calendar_year"}},
    "rules": [{
        "effective_from": "2019-01-01",
        "conditions": [{
            "id": "at_most_twelve_a_year",
            "clause_uk": "п. 3",
            "when": "grants_this_year < 12",
            "refusal_uk": "виплату цього року вже отримано дванадцять разів",
        }],
        "amount": {"clause_uk": "п. 3", "formula": "claim_kop", "rounding_uk": "не застосовується"},
    }],
}


def _catalog(root: Path, spec: dict) -> Path:
    program_root(root, "zaporizhzhia")
    (root / "zaporizhzhia" / "test-priority-scope.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return root


@pytest.fixture
def scoped(tmp_path: Path) -> Catalog:
    return Catalog.load(_catalog(tmp_path, SPEC))


def test_a_priority_reading_period_start_has_fact_and_history_serves_the_priority_claimant_first(scoped):
    engine = Engine(scoped, InMemoryHistory())
    ledger = BudgetLedger("sqlite://", scoped)
    ledger.apply(allocation(PROGRAM, 2023, 1000, kind="explicit", months={"2023-05": 1000}))
    claims = [
        ("first", 600, {"claim_kop": 600, "certificate_no": "Д-17"}),  # class 0
        ("second", 600, {"claim_kop": 600}),  # no certificate: class 1
        ("third", 600, {"claim_kop": 600}),  # class 1
    ]
    for person, (app_id, _amount, facts) in enumerate(claims, start=1):
        decided = engine.decide(application(PROGRAM, facts, submitted_on="2023-05-03", period="2023-05",
                                            application_id=app_id, person=person))
        assert decided.eligible
        ledger.submit(decided)
    settled = {d.application_id: d for d in ledger.apply(close(PROGRAM, "2023-05"))}
    # The class-0 claimant is paid in full; the 400 left is shared by class 1, 200 each.
    assert {k: d.payout_kop for k, d in settled.items()} == {"first": 600, "second": 200, "third": 200}
    assert settled["first"].status == "paid"


def test_the_history_count_the_decision_shows_decides_the_class(scoped):
    engine = Engine(scoped, InMemoryHistory())
    ledger = BudgetLedger("sqlite://", scoped)
    ledger.apply(allocation(PROGRAM, 2023, 1000, kind="explicit", months={"2023-05": 600, "2023-06": 400}))
    earlier = engine.decide(application(PROGRAM, {"claim_kop": 100, "certificate_no": "Д-1"},
                                        submitted_on="2023-05-02", period="2023-05", application_id="may", person=7))
    ledger.submit(earlier)
    ledger.apply(close(PROGRAM, "2023-05"))
    # June: person 7 already had a grant this year (class 1); person 8 did not (class 0).
    again = engine.decide(application(PROGRAM, {"claim_kop": 600, "certificate_no": "Д-1"},
                                      submitted_on="2023-06-02", period="2023-06", application_id="june-7", person=7))
    fresh = engine.decide(application(PROGRAM, {"claim_kop": 600, "certificate_no": "Д-2"},
                                      submitted_on="2023-06-02", period="2023-06", application_id="june-8", person=8))
    assert again.conditions[0].inputs == {"grants_this_year": 1}
    ledger.submit(again)
    ledger.submit(fresh)
    settled = {d.application_id: d.payout_kop for d in ledger.apply(close(PROGRAM, "2023-06"))}
    # 400 planned for June + 500 unspent from May = 900: class 0 (person 8) is paid its 600 in full
    # first, person 7 (class 1: a grant this year already) gets the 300 left.
    assert settled == {"june-8": 600, "june-7": 300}


def test_a_priority_naming_an_unknown_variable_fails_at_load_with_file_rule_and_position(tmp_path):
    spec = {**SPEC, "budget": {**SPEC["budget"], "priority": "has_certificate_no && pension_kind == 1 ? 0 : 1"}}
    with pytest.raises(ProgramError) as failure:
        Catalog.load(_catalog(tmp_path, spec))
    message = str(failure.value)
    assert "test-priority-scope.yaml" in message and "budget.priority" in message
    assert "pension_kind at 1:23" in message


def test_a_priority_reading_a_history_count_no_rule_reads_fails_at_load(tmp_path):
    rules = [{**SPEC["rules"][0], "conditions": []}]
    with pytest.raises(ProgramError, match=r"budget.priority.*grants_this_year.*no condition or amount"):
        Catalog.load(_catalog(tmp_path, {**SPEC, "rules": rules}))
