"""Decisions fit to be signed: the citizen's sentence cites the law and shows the calculation;
internal pointers stay in the program file and the decision's operator-only section."""

from __future__ import annotations

import pytest
import yaml

from dopomoga.explain_uk import internal_markers
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog, ProgramError
from tests.factories import application, program_root

PROGRAM = "zaporizhzhia.test-repair"


def _spec(**amount) -> dict:
    return {
        "id": PROGRAM,
        "version": "test.1",
        "title": {"uk": "Допомога на ремонт квартири", "en": "Test repair"},
        "city": "zaporizhzhia",
        "legal_basis": {"act_uk": "Тестова програма", "clause_uk": "Додаток 4", "seed": "004:L700-733"},
        "payee": "person",
        "payment_channels": ["bank"],
        "frequency": {"kind": "one_off"},
        "budget": {"policy": "first_come", "clause_uk": "Додаток 4, п. 16"},
        "inputs": {"area_x100": {"type": "int", "description_uk": "загальна площа, м² × 100"}},
        "parameters": {
            "max_flat": {
                "description_uk": "максимальний розмір для квартири", "unit": "UAH",
                "values": {"2019-01-01": {"value": "40000", "reference": "Додаток 4, п. 13",
                                          "source": "004:L731", **amount.pop("value_extra", {})}},
            },
        },
        "rules": [{
            "effective_from": "2019-01-01",
            "conditions": [{"id": "area_declared", "clause_uk": "Додаток 4, п. 13", "when": "area_x100 > 0",
                            "refusal_uk": "не зазначено площу", "source": "004:L731-733"}],
            "amount": {"clause_uk": "Додаток 4, п. 13", "source": "004:L731-733",
                       "formula": "round_half_up(max_flat * min_int(area_x100, 2100), 2100)",
                       "rounding_uk": "до копійки, половина вгору", **amount},
        }],
    }


def _engine(tmp_path, spec) -> Engine:
    program_root(tmp_path, "zaporizhzhia")
    (tmp_path / "zaporizhzhia" / "test-repair.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return Engine(Catalog.load(tmp_path))


def _repair(area_x100: int):
    return application(PROGRAM, {"area_x100": area_x100}, submitted_on="2021-05-04")


def test_a_14_m2_flat_gets_two_thirds_of_40_000_and_the_sentence_shows_the_calculation(tmp_path):
    engine = _engine(tmp_path, _spec(calculation_uk="{max_flat:uah} × {area_x100:x100} м² ∕ 21 м²"))
    decision = engine.decide(_repair(1400))
    assert decision.amount_kop == 2_666_667
    assert "40\xa0000,00\xa0грн × 14,00 м² ∕ 21 м² = 26\xa0666,67\xa0грн" in decision.explanation_uk
    assert internal_markers(decision.explanation_uk) == []


def test_the_seed_lines_of_each_rule_are_in_the_operator_section_not_the_sentence(tmp_path):
    decision = _engine(tmp_path, _spec()).decide(_repair(2500))
    assert [(s.rule, s.source) for s in decision.operator.sources] == [
        ("legal_basis", "004:L700-733"), ("area_declared", "004:L731-733"), ("amount", "004:L731-733"),
    ]
    assert "004:L" not in decision.explanation_uk and decision.operator.pending_confirmation == []
    assert decision.parameters[0].reference == "Додаток 4, п. 13"


def test_an_amount_the_act_does_not_state_keeps_the_decision_pending_until_an_operator_confirms_it(tmp_path):
    pending = _engine(tmp_path / "a", _spec(value_extra={"inferred": True})).decide(_repair(2100))
    assert pending.eligible and pending.operator.pending_confirmation == ["max_flat"]
    refused = _engine(tmp_path / "b", _spec(value_extra={"inferred": True})).decide(_repair(0))
    assert not refused.eligible and refused.operator.pending_confirmation == []
    confirmed = _engine(tmp_path / "c", _spec(
        value_extra={"inferred": True, "confirmed_by": "рішення виконавчого комітету від 12.05.2021 № 301"}
    )).decide(_repair(2100))
    assert confirmed.operator.pending_confirmation == []


def test_a_calculation_naming_something_the_rules_do_not_read_fails_at_load(tmp_path):
    with pytest.raises(ProgramError, match=r"amount.calculation_uk.*unknown name\(s\) area_m2"):
        _engine(tmp_path, _spec(calculation_uk="{max_flat:uah} × {area_m2} м²"))
    with pytest.raises(ProgramError, match=r"amount.calculation_uk"):
        _engine(tmp_path / "x", _spec(calculation_uk="{max_flat:eur}"))
