"""A malformed program fails at load, naming the file, the rule and the position."""

from pathlib import Path

import pytest
import yaml

from dopomoga.rules.parameters import ParameterError, ParameterSet
from dopomoga.rules.programs import PROGRAMS_DIR, Catalog, ProgramError
from tests.factories import program_root

EXAMPLE = PROGRAMS_DIR / "zhytomyr" / "centenarians.yaml"


def _catalog_with(tmp_path: Path, mutate) -> Path:
    program_root(tmp_path, "zhytomyr")
    data = yaml.safe_load(EXAMPLE.read_text())
    mutate(data)
    target = tmp_path / "zhytomyr" / "centenarians.yaml"
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path


def _first_condition(data):
    return data["rules"][0]["conditions"][0]


def test_every_committed_program_loads_and_every_rule_cites_a_clause(catalog):
    assert catalog.programs
    for program in catalog.programs.values():
        assert program.spec.legal_basis.clause_uk and program.spec.budget.clause_uk
        for version in program.versions:
            assert version.amount_clause_uk
            for condition in version.conditions:
                assert condition.clause_uk and condition.refusal_uk


def test_a_syntax_error_names_the_file_the_rule_and_the_position(tmp_path):
    root = _catalog_with(tmp_path, lambda d: _first_condition(d).update(when="age_on(birth_date, submitted_on) >="))
    with pytest.raises(ProgramError) as failure:
        Catalog.load(root)
    message = str(failure.value)
    assert "centenarians.yaml" in message and "aged_100_or_more" in message and "1:" in message


def test_a_condition_that_is_not_boolean_fails_at_load(tmp_path):
    root = _catalog_with(tmp_path, lambda d: _first_condition(d).update(when="age_on(birth_date, submitted_on)"))
    with pytest.raises(ProgramError, match="condition must give bool, gives int"):
        Catalog.load(root)


def test_an_amount_that_is_not_integer_kopiyky_fails_at_load(tmp_path):
    root = _catalog_with(tmp_path, lambda d: d["rules"][0]["amount"].update(formula="double(centenarian_payment) * 1.5"))
    with pytest.raises(ProgramError, match="must give int, gives float"):
        Catalog.load(root)


def test_mixing_types_is_a_load_error_not_a_runtime_surprise(tmp_path):
    root = _catalog_with(tmp_path, lambda d: _first_condition(d).update(when="resident_of_community > 1"))
    with pytest.raises(ProgramError, match="cannot be evaluated on inputs of the declared types"):
        Catalog.load(root)


def test_an_undeclared_name_is_refused(tmp_path):
    root = _catalog_with(tmp_path, lambda d: _first_condition(d).update(when="age >= 100"))
    with pytest.raises(ProgramError, match="unknown name"):
        Catalog.load(root)


def test_a_parameter_value_without_a_legal_reference_is_refused(tmp_path):
    def strip_reference(data):
        data["parameters"]["centenarian_payment"]["values"] = {"2021-01-01": {"value": "10000"}}

    root = _catalog_with(tmp_path, strip_reference)
    with pytest.raises(ProgramError, match="legal 'reference'"):
        Catalog.load(root)


def test_a_parameter_written_as_a_float_is_refused(tmp_path):
    def floaty(data):
        next(iter(data["parameters"]["centenarian_payment"]["values"].values()))["value"] = 10000.0

    with pytest.raises(ProgramError, match="not a float"):
        Catalog.load(_catalog_with(tmp_path, floaty))


def test_asking_for_a_parameter_before_its_first_value_is_an_error_not_zero():
    parameters = ParameterSet.load(PROGRAMS_DIR / "parameters")
    import datetime as dt

    with pytest.raises(ParameterError, match="first value takes effect on 2019-01-01"):
        parameters.at("pm_general", dt.date(2018, 12, 31))


def test_the_subsistence_minimum_for_young_children_changes_on_1_january_2024():
    import datetime as dt

    parameters = ParameterSet.load(PROGRAMS_DIR / "parameters")
    assert parameters.at("pm_children_under_6", dt.date(2023, 12, 31)).value == 227_200
    new = parameters.at("pm_children_under_6", dt.date(2024, 1, 1))
    assert new.value == 256_300 and "3460-IX" in new.reference
