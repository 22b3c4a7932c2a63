"""Engine behaviours the program files rely on, on a small synthetic program."""

import textwrap

import pytest

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from tests.factories import application, program_root

PROGRAM = textwrap.dedent(
    """
    id: zhytomyr.test-features
    version: "t"
    title: {uk: Тестова виплата, en: Test payment}
    city: zhytomyr
    legal_basis: {act_uk: Тестовий акт, clause_uk: п. 1, seed: "test"}
    payee: person
    payment_channels: [post]
    frequency: {kind: monthly}
    budget: {policy: first_come, clause_uk: п. 9}
    parameters_on: period_start
    rules_on: period_start
    inputs:
      children: {type: items, description_uk: діти, fields: {born_on: date, disabled: bool}}
      note: {type: string, required: false, description_uk: примітка}
    parameters:
      late_amount:
        description_uk: сума, що діє лише з 2024 року
        unit: UAH
        values: {2024-01-01: {value: "100", reference: "тест"}}
    rules:
      - effective_from: 2020-01-01
        conditions:
          - id: has_minor_child
            clause_uk: п. 2
            when: children.exists(c, age_on(c.born_on, period_start) < 18)
            refusal_uk: немає неповнолітніх дітей
          - id: note_absent_or_known
            clause_uk: п. 3
            when: "!has_note || note == 'ok'"
            refusal_uk: примітка не відповідає
        amount:
          clause_uk: п. 4
          formula: late_amount * size(children)
          rounding_uk: не застосовується
      - effective_from: 2024-01-01
        conditions: []
        amount: {clause_uk: п. 5 (нова редакція), formula: late_amount, rounding_uk: не застосовується}
    """
)


@pytest.fixture
def engine(tmp_path):
    program_root(tmp_path, "zhytomyr")
    (tmp_path / "zhytomyr" / "test-features.yaml").write_text(PROGRAM)
    return Engine(Catalog.load(tmp_path))


def _app(children, period="2023-05", submitted="2024-02-01", **facts):
    return application(
        "zhytomyr.test-features", {"children": children, **facts}, submitted_on=submitted, period=period, channel="post"
    )


def test_a_comprehension_macro_reads_item_dates_and_a_refusal_never_needs_the_amount_parameter(engine):
    adults_only = _app([{"born_on": "1990-01-01", "disabled": False}])
    decision = engine.decide(adults_only)  # late_amount has no value in May 2023, but it is never read
    assert not decision.eligible
    assert [c.id for c in decision.conditions if not c.passed] == ["has_minor_child"]
    assert decision.conditions[0].inputs["period_start"] == "2023-05-01"


def test_an_eligible_claim_that_needs_a_parameter_before_its_first_value_gets_a_clear_error(engine):
    with pytest.raises(ApplicationError) as failure:
        engine.decide(_app([{"born_on": "2015-06-01", "disabled": False}]))
    assert failure.value.reason_code == "no_parameter_value"
    assert "2024-01-01" in str(failure.value)


def test_an_absent_optional_fact_reads_as_its_zero_and_has_name_says_so(engine):
    given_wrong = engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], note="bad"))
    assert [c.id for c in given_wrong.conditions if not c.passed] == ["has_minor_child", "note_absent_or_known"]
    absent = engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], period="2023-06"))
    assert [c.id for c in absent.conditions if not c.passed] == ["has_minor_child"]


def test_the_rule_version_follows_the_month_claimed_when_the_program_says_so(engine):
    old_month = engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], period="2023-12"))
    new_month = engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], period="2024-01"))
    assert old_month.rules.effective_from.isoformat() == "2020-01-01" and not old_month.eligible
    assert new_month.rules.effective_from.isoformat() == "2024-01-01" and new_month.amount_kop == 10_000


def test_an_item_date_that_is_not_a_date_is_a_clear_error(engine):
    with pytest.raises(ApplicationError) as failure:
        engine.decide(_app([{"born_on": "31.12.2015", "disabled": False}]))
    assert failure.value.reason_code == "bad_fact"


def test_after_its_end_date_a_rule_version_refuses_with_the_programmes_term_as_the_reason(tmp_path):
    program_root(tmp_path, "zhytomyr")
    ended = PROGRAM.replace(
        "  - effective_from: 2024-01-01\n", "  - effective_from: 2024-01-01\n    effective_to: 2024-12-31\n"
    )
    (tmp_path / "zhytomyr" / "test-features.yaml").write_text(ended)
    engine = Engine(Catalog.load(tmp_path))
    assert engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], period="2024-12")).eligible
    after = engine.decide(_app([{"born_on": "1990-01-01", "disabled": False}], period="2025-01", submitted="2025-02-01"))
    assert not after.eligible and [c.id for c in after.conditions] == ["programme_term"]
    assert after.conditions[0].inputs == {"rules_date": "2025-01-01"}  # the program reads rules on period_start
    assert "строк дії програми закінчився 31.12.2024" in after.explanation_uk


def test_decision_ids_are_the_rfc_4122_uuid5_of_the_stage_and_application():
    import uuid

    from dopomoga.ids import NAMESPACE, decision_id

    for stage, application_id in [("eligibility", "a-1"), ("entitlement", "zp-2026-000123"), ("rejected:budget", "x" * 96)]:
        assert decision_id(stage, application_id) == str(uuid.uuid5(NAMESPACE, f"{stage}:{application_id}"))
