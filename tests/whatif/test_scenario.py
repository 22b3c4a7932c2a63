"""Scenario files are checked like program files: every error names the file and line:column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dopomoga.whatif.scenario import ScenarioError, load_scenario
from tests.core.test_engine_properties import CATALOG

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "whatif"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, CATALOG)
    return str(caught.value)


HEAD = "scenario: test\ntitle_uk: Тест\n"


def test_a_bad_parameter_name_fails_with_the_file_and_its_line_and_column(tmp_path):
    message = _error(tmp_path, HEAD + (
        "parameters:\n"
        "  - name: pm_general\n"
        "    from: 2023-07-01\n"
        "    change_percent: '10'\n"
        "    reference: проєкт рішення\n"
        "  - name: pm_genral\n"
        "    from: 2023-07-01\n"
        "    value: '3000'\n"
        "    reference: проєкт рішення\n"
    ))
    assert message.startswith(f"{tmp_path / 'scenario.yaml'}:8:11: parameters.1.name: unknown parameter 'pm_genral'")
    assert "did you mean pm_general" in message


def test_a_program_parameter_named_without_its_program_says_whose_it_is(tmp_path):
    message = _error(tmp_path, HEAD + "parameters:\n  - {name: centenarian_payment, from: 2023-01-01, "
                     "value: '12000', reference: проєкт}\n")
    assert re.match(r".*scenario\.yaml:4:12: parameters\.0\.name: .*zhytomyr\.centenarians: add `program:`", message)


@pytest.mark.parametrize(("body", "where", "says"), [
    ("parameters:\n  - {name: pm_general, from: 2023-07-01, value: 3000.5, reference: проєкт}\n",
     ":4:", "parameters.0.value"),
    ("parameters:\n  - {name: pm_general, from: 2023-07-01, reference: проєкт}\n", ":4:5:",
     "exactly one of value, change_percent"),
    ("allocations:\n  - {program: zhytomyr.centenarian, year: 2023, change_percent: '-20', reference: проєкт}\n",
     ":4:", "did you mean zhytomyr.centenarians"),
    ("allocations:\n  - program: zhytomyr.centenarians\n    year: 2023\n    months: {2024-07: '5000'}\n"
     "    reference: проєкт\n", ":6:23:", "not a month of 2023"),
    ("budget:\n  - {program: zhytomyr.triplets, policy: priority_then_pro_rata, reference: проєкт}\n",
     ":4:", "no budget.priority"),
    ("budget:\n  - {program: zhytomyr.triplets, polcy: first_come, reference: проєкт}\n", ":4:", "polcy"),
    ("programs:\n  - {file: missing.yaml, reference: проєкт}\n", ":4:", "does not load"),
    ("parameters: [\n", ":", "not valid YAML"),
])
def test_every_kind_of_mistake_is_placed(tmp_path, body, where, says):
    message = _error(tmp_path, HEAD + body)
    assert message.startswith(str(tmp_path / "scenario.yaml") + where), message
    assert says in message


def test_a_replacement_program_replaces_its_program_only(tmp_path):
    source = CATALOG.get("zhytomyr.centenarians").path.read_text(encoding="utf-8")
    (tmp_path / "centenarians.yaml").write_text(source.replace('"10000"', '"11000"'), encoding="utf-8")
    scenario = load_scenario(_write(tmp_path, HEAD + "programs:\n  - {file: centenarians.yaml, reference: проєкт}\n"),
                             CATALOG)
    assert scenario.changed_programs == {"zhytomyr.centenarians"}
    changed = scenario.catalog()
    assert changed.get("zhytomyr.centenarians").rules_hash != CATALOG.get("zhytomyr.centenarians").rules_hash
    assert all(changed.programs[p] is CATALOG.programs[p] for p in CATALOG.programs if p != "zhytomyr.centenarians")


def test_a_percent_change_scales_every_value_in_force_and_the_law_resumes_after_to(tmp_path):
    scenario = load_scenario(_write(tmp_path, HEAD + (
        "parameters:\n  - {name: pm_general, from: 2023-07-01, to: 2023-12-31, change_percent: '10', "
        "round_to: hryvnia, reference: проєкт}\n")), CATALOG)
    import datetime as dt
    law, changed = CATALOG.parameters, scenario.catalog().parameters
    assert changed.at("pm_general", dt.date(2023, 6, 30)) == law.at("pm_general", dt.date(2023, 6, 30))
    assert changed.at("pm_general", dt.date(2023, 7, 1)).value == 284800  # 2 589 × 1.1 = 2 847.90 -> 2 848
    assert changed.at("pm_general", dt.date(2024, 1, 1)).value == law.at("pm_general", dt.date(2024, 1, 1)).value


def test_the_example_scenarios_load():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        load_scenario(path, CATALOG)


def test_an_allocation_may_name_a_pooled_budget_line_and_its_code_is_checked(tmp_path):
    scenario = load_scenario(_write(tmp_path, HEAD + (
        "allocations:\n  - {program: zhytomyr.line-1-1-2, line: '1.1.2', year: 2023, change_percent: '-20', "
        "reference: проєкт}\n")), CATALOG)
    assert scenario.lines.members("zhytomyr.line-1-1-2") == ("zhytomyr.fallen-defenders-families",)
    message = _error(tmp_path, HEAD + "allocations:\n  - {program: zhytomyr.centenarians, line: '9.9.9', "
                     "year: 2023, change_percent: '-20', reference: проєкт}\n")
    assert ":4:" in message and "is not on budget line 9.9.9" in message
