import datetime as dt

import pytest
from pydantic import ValidationError

from schemas.events import ApplicationSubmitted, PayoutDecided
from schemas.export import main as export_main
from tests.factories import TEST_IBAN, application


def test_committed_json_schemas_match_the_models():
    assert export_main(["--check"]) == 0, "run `make schemas` and commit schemas/json"


def test_a_float_amount_of_money_is_refused_not_rounded():
    fields = set(PayoutDecided.model_fields)
    assert {"claimed_kop", "payout_kop"} <= fields
    schema = PayoutDecided.model_json_schema()
    assert schema["properties"]["payout_kop"]["type"] == "integer"


def _raw(**changes):
    data = application("zhytomyr.centenarians", {"resident_of_community": True}, birth_date="1923-03-10").model_dump(
        mode="json"
    )
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return data


def test_an_rnokpp_with_a_wrong_check_digit_is_refused_with_a_clear_reason():
    data = _raw(**{"applicant.id": "1234567890"})
    with pytest.raises(ValidationError, match="РНОКПП is not valid"):
        ApplicationSubmitted.model_validate(data)


def test_a_person_who_refused_an_rnokpp_is_identified_by_passport():
    data = _raw(**{"applicant.id_kind": "passport", "applicant.id": "ка 123456"})
    assert ApplicationSubmitted.model_validate(data).applicant.id == "КА123456"


def test_a_foreign_or_broken_iban_is_refused():
    with pytest.raises(ValidationError, match="IBAN must be Ukrainian"):
        ApplicationSubmitted.model_validate(_raw(payment={"channel": "bank", "iban": "DE89370400440532013000"}))
    with pytest.raises(ValidationError, match="IBAN is not valid"):
        ApplicationSubmitted.model_validate(_raw(payment={"channel": "bank", "iban": TEST_IBAN[:-1] + "2"}))


def test_a_bank_payment_without_an_iban_is_refused():
    with pytest.raises(ValidationError, match="needs an IBAN"):
        ApplicationSubmitted.model_validate(_raw(payment={"channel": "bank", "iban": None}))


def test_schema_version_2_and_float_facts_are_refused():
    with pytest.raises(ValidationError):
        ApplicationSubmitted.model_validate(_raw(schema_version=2))
    with pytest.raises(ValidationError):
        ApplicationSubmitted.model_validate(_raw(facts={"resident_of_community": 1.0}))


def test_timestamps_must_carry_a_timezone():
    with pytest.raises(ValidationError):
        ApplicationSubmitted.model_validate(_raw(occurred_at=dt.datetime(2023, 4, 1, 9).isoformat()))
