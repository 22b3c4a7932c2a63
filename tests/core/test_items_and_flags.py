"""Item rows with their own conditions (a provider's register of privileges) and checks that flag
without refusing (a carrier's printed figures): the engine capabilities privileges need."""

from __future__ import annotations

import pytest
import yaml

from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog, ProgramError
from tests.factories import application, program_root

PROGRAM = "zaporizhzhia.test-privilege"
SPEC = {
    "id": PROGRAM,
    "version": "test.1",
    "title": {"uk": "Пільга на оплату житлово-комунальних послуг (тест)", "en": "Test privilege"},
    "city": "zaporizhzhia",
    "legal_basis": {"act_uk": "Тестова програма", "clause_uk": "п. 5", "seed": "test"},
    "payee": "organisation",
    "payment_channels": ["treasury"],
    "frequency": {"kind": "monthly"},
    "budget": {"policy": "first_come", "clause_uk": "п. 7"},
    "inputs": {
        "rows": {"type": "items", "description_uk": "реєстр надавача", "fields": {
            "category": "string", "service": "string", "billed_kop": "money", "norm_kop": "money",
            "members_covered": "int", "household_size": "int",
        }},
        "printed_total_kop": {"type": "money", "description_uk": "сума, зазначена надавачем у реєстрі"},
    },
    "rules": [{
        "effective_from": "2021-01-01",
        "conditions": [],
        "flags": [{"id": "printed_total_matches", "clause_uk": "п. 9", "when": "printed_total_kop == items_total",
                   "flag_uk": "сума в реєстрі надавача відрізняється від розрахованої — звірити з надавачем"}],
        "amount": {
            "clause_uk": "п. 5",
            "items": {
                "of": "rows",
                "conditions": [
                    {"id": "category_covered", "clause_uk": "п. 3", "when": "category in ['visual_1', 'visual_2']",
                     "exclude_uk": "особа не належить до пільгової категорії"},
                    {"id": "members_within_household", "clause_uk": "п. 4",
                     "when": "members_covered >= 1 && members_covered <= household_size",
                     "exclude_uk": "кількість членів сім'ї, на яких поширюється пільга, не відповідає складу сім'ї"},
                ],
                "flags": [{"id": "billed_within_norm", "clause_uk": "п. 6", "when": "billed_kop <= norm_kop",
                           "flag_uk": "нарахування перевищує норму споживання — пільга лише в межах норми"}],
                "formula": "round_half_up(min_int(billed_kop, norm_kop) * members_covered, household_size) / 2",
            },
            "formula": "items_total",
            "rounding_uk": "до копійки на рядок",
        },
    }],
}


def _engine(tmp_path) -> Engine:
    program_root(tmp_path, "zaporizhzhia")
    (tmp_path / "zaporizhzhia" / "test-privilege.yaml").write_text(yaml.safe_dump(SPEC, allow_unicode=True))
    return Engine(Catalog.load(tmp_path))


def _claim(rows, printed):
    return application(PROGRAM, {"rows": rows, "printed_total_kop": printed}, submitted_on="2021-06-05",
                       period="2021-05", id_kind="edrpou", channel="treasury", name="КП «Водоканал»")


ROW = {"category": "visual_1", "service": "water", "billed_kop": 40_000, "norm_kop": 50_000,
       "members_covered": 2, "household_size": 4}


def test_a_provider_is_paid_half_the_bill_of_covered_members_and_each_excluded_row_says_why(tmp_path):
    rows = [
        ROW,  # 40 000 × 2/4 / 2 = 10 000
        {**ROW, "category": "veteran"},  # not covered
        {**ROW, "members_covered": 5},  # more members than the household
        {**ROW, "billed_kop": 60_000},  # within the norm only: 50 000 × 2/4 / 2 = 12 500, flagged
    ]
    decision = _engine(tmp_path).decide(_claim(rows, printed=22_500))
    assert decision.eligible and decision.amount_kop == 22_500
    steps = {s.step: s.result for s in decision.trace}
    assert steps["item:2:category_covered"] == "False — особа не належить до пільгової категорії"
    assert steps["item:3:category_covered"] is True
    assert steps["item:3:members_within_household"].startswith("False — кількість членів сім'ї")
    assert "item:2:amount" not in steps and steps["item:4:amount"] == 12_500
    assert [(f.id, f.item) for f in decision.operator.flags] == [("billed_within_norm", 4)]


def test_a_printed_total_that_differs_is_flagged_for_the_department_but_never_refused(tmp_path):
    decision = _engine(tmp_path).decide(_claim([ROW], printed=11_000))
    assert decision.eligible and decision.amount_kop == 10_000
    [flag] = decision.operator.flags
    assert flag.id == "printed_total_matches" and flag.item is None and "звірити з надавачем" in flag.flag_uk
    assert "звірити" not in decision.explanation_uk


def test_the_checks_of_a_row_are_evaluated_in_one_call_or_one_by_one_with_the_same_result(tmp_path):
    engine = _engine(tmp_path)
    one_call = engine.decide(_claim([ROW, {**ROW, "category": "veteran"}], printed=10_000))
    program = engine.catalog.get(PROGRAM)
    object.__setattr__(program.versions[0].items, "row", None)  # force the rule-by-rule path
    by_rule = engine.decide(_claim([ROW, {**ROW, "category": "veteran"}], printed=10_000))
    assert one_call.model_dump_json() == by_rule.model_dump_json()


def test_an_amount_beyond_what_an_event_may_carry_is_a_bad_amount_error_not_a_crash(tmp_path):

    from dopomoga.errors import ApplicationError

    huge = {**ROW, "billed_kop": 10**13, "norm_kop": 10**13, "members_covered": 1, "household_size": 1}
    with pytest.raises(ApplicationError) as failure:  # three rows of 5 * 10**12 each
        _engine(tmp_path).decide(_claim([huge] * 3, printed=0))
    assert failure.value.reason_code == "bad_amount" and "10000000000000" in str(failure.value)


def _with_values(tmp_path, values: dict, formula: str = "items_total") -> Engine:
    import copy

    spec = copy.deepcopy(SPEC)
    spec["rules"][0]["amount"]["values"] = values
    spec["rules"][0]["amount"]["formula"] = formula
    program_root(tmp_path, "zaporizhzhia")
    (tmp_path / "zaporizhzhia" / "test-privilege.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return Engine(Catalog.load(tmp_path))


def test_a_named_intermediate_amount_is_computed_before_the_formula_and_shown_in_the_trace(tmp_path):
    engine = _with_values(tmp_path, {"cap": "min_int(items_total, 50000)"}, formula="cap")
    rows = [{"category": "visual_1", "service": "housing", "billed_kop": 300_000, "norm_kop": 300_000,
             "members_covered": 1, "household_size": 1}]
    decision = engine.decide(application(PROGRAM, {"rows": rows, "printed_total_kop": 150_000}, id_kind="edrpou",
                                         channel="treasury", period="2021-05", submitted_on="2021-06-02"))
    assert decision.amount_kop == 50_000  # half of 3 000,00 UAH is 1 500,00, capped by the value at 500,00
    steps = [(s.step, s.result) for s in decision.trace]
    assert steps[-2:] == [("value:cap", 50_000), ("amount", 50_000)]  # after the rows, before the formula


def test_a_value_named_like_an_input_is_refused_at_load_with_the_file_and_rule(tmp_path):
    with pytest.raises(ProgramError, match=r"test-privilege.yaml: version 2021-01-01: rule 'amount.values.printed_total_kop'"):
        _with_values(tmp_path, {"printed_total_kop": "1"})


def test_a_value_that_is_not_a_whole_number_is_refused_at_load(tmp_path):
    with pytest.raises(ProgramError, match=r"amount.values.ratio"):
        _with_values(tmp_path, {"ratio": "1.5"})
