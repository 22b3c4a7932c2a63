"""What-if end to end: decisions and budgets, baseline against scenario, on the example applications."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from dopomoga.budget.commands import allocation_set
from dopomoga.cli import decide_lines
from dopomoga.rules.engine import Engine
from dopomoga.whatif.report import compare, write_csv, write_xlsx
from dopomoga.whatif.run import load_allocations, mask, run_whatif
from dopomoga.whatif.scenario import load_scenario
from schemas.events import MonthlyPlan
from tests.core.test_engine_properties import CATALOG

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = ROOT / "examples" / "applications.jsonl"
ALLOCATIONS = load_allocations(ROOT / "examples" / "allocations.json")
PM = sorted(name for name in CATALOG.parameters.names() if name.startswith("pm_"))
READS_PM = {p.id for p in CATALOG.programs.values() if any(set(v.parameter_names) & set(PM) for v in p.versions)}


def _scenario(tmp_path: Path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text("scenario: test\ntitle_uk: Тест\n" + text, encoding="utf-8")
    return load_scenario(path, CATALOG)


def _pm_plus_10(tmp_path: Path, start: str = "2021-01-01"):
    return _scenario(tmp_path, "parameters:\n" + "".join(
        f"  - {{name: {name}, from: {start}, change_percent: '10', reference: проєкт}}\n" for name in PM))


def test_a_scenario_with_no_changes_reproduces_the_baseline_exactly(tmp_path):
    scenario = _scenario(tmp_path, "")
    lines = APPLICATIONS.read_text(encoding="utf-8").splitlines()
    assert list(decide_lines(Engine(scenario.catalog()), lines)) == list(decide_lines(Engine(CATALOG), lines))
    baseline, side, recomputed = run_whatif(CATALOG, scenario, APPLICATIONS, ALLOCATIONS, full=True, workdir=tmp_path)
    assert recomputed == set(CATALOG.programs)
    assert side.claims == baseline.claims and side.months == baseline.months
    assert (side.decided, side.errors) == (baseline.decided, baseline.errors)
    report = compare(baseline, side)
    assert report.people == [] and report.totals.payable_change_kop == 0
    assert report.totals.gained == report.totals.lost == report.totals.coefficient_changes == 0
    assert report.totals.payable_baseline_kop > 0


def test_pm_plus_10_percent_changes_exactly_the_programs_that_read_the_subsistence_minimum(tmp_path):
    assert READS_PM, "some programs read the subsistence minimum"
    scenario = _pm_plus_10(tmp_path)
    assert scenario.changed_programs == READS_PM
    lines = APPLICATIONS.read_text(encoding="utf-8").splitlines()
    before = list(decide_lines(Engine(CATALOG), lines))
    after = list(decide_lines(Engine(scenario.catalog()), lines))
    changed_bytes, changed_amounts = set(), set()
    for (_, b, _), (_, a, _) in zip(before, after, strict=True):
        if b is None:
            assert a is None
            continue
        if a.json != b.json:
            changed_bytes.add(b.program_id)  # the rules hash and the parameter values shown
        if a.amount_kop != b.amount_kop:
            changed_amounts.add(b.program_id)
            assert a.amount_kop > b.amount_kop
    assert changed_bytes == {d.program_id for _, d, _ in before if d is not None} & READS_PM
    assert changed_amounts and changed_amounts <= READS_PM

    baseline, side, recomputed = run_whatif(CATALOG, scenario, APPLICATIONS, ALLOCATIONS, workdir=tmp_path)
    assert READS_PM <= recomputed
    report = compare(baseline, side)
    moved = {row.program_id for row in report.programs
             if row.entitled_scenario_kop != row.entitled_baseline_kop or row.payable_change_kop}
    assert moved and moved <= READS_PM
    # the shortcut (only what the scenario can change is recomputed) equals recomputing everything
    full_baseline, full_side, _ = run_whatif(CATALOG, scenario, APPLICATIONS, ALLOCATIONS, full=True,
                                             workdir=tmp_path)
    assert full_baseline.claims == baseline.claims and full_side.claims == side.claims
    assert sorted(map(repr, full_side.months)) == sorted(map(repr, side.months))


def test_the_report_is_exact_deterministic_and_masks_people(tmp_path):
    scenario = load_scenario(ROOT / "examples" / "whatif" / "council-session.yaml", CATALOG)
    baseline, side, _ = run_whatif(CATALOG, scenario, APPLICATIONS, ALLOCATIONS, workdir=tmp_path)
    report = compare(baseline, side, top=5)
    again = compare(*run_whatif(CATALOG, scenario, APPLICATIONS, ALLOCATIONS, workdir=tmp_path)[:2], top=5)
    assert report == again
    assert report.totals.payable_change_kop == sum(r.payable_change_kop for r in report.programs)
    assert report.totals.payable_change_kop == sum(
        m.paid_change_kop for m in report.months)  # the ledger's months add up to the claims
    payees = {c.payee for c in baseline.claims.values()}
    assert all("*" in p.payee for p in report.people) and {p.payee for p in report.people} <= payees
    assert mask("1234567890") == "12******90"
    written = write_csv(report, tmp_path / "out")
    with (tmp_path / "out" / "programs.csv").open(encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    assert rows[-1]["program_id"] == "(усі)" and "." in rows[-1]["payable_change_uah"]
    assert [p.name for p in written] == ["programs.csv", "months.csv", "people.csv"]
    pytest.importorskip("openpyxl")
    assert write_xlsx(report, tmp_path / "out" / "whatif.xlsx").stat().st_size > 0


def test_a_cut_to_a_pooled_budget_line_recomputes_its_programs_and_equals_recomputing_everything(tmp_path):
    scenario = _scenario(tmp_path, "allocations:\n  - {program: zhytomyr.line-1-1-2, year: 2023, "
                                   "change_percent: '-90', reference: проєкт}\n")
    allocations = list(ALLOCATIONS)
    allocations.append(allocation_set(program_id="zhytomyr.line-1-1-2", year=2023, annual_kop=100_000_000,
                                      plan=MonthlyPlan(kind="even"), amendment_id="test-line",
                                      legal_reference="тест"))
    baseline, side, recomputed = run_whatif(CATALOG, scenario, APPLICATIONS, allocations, workdir=tmp_path)
    assert "zhytomyr.fallen-defenders-families" in recomputed
    _, full_side, _ = run_whatif(CATALOG, scenario, APPLICATIONS, allocations, full=True, workdir=tmp_path)
    assert full_side.claims == side.claims
    assert sorted(map(repr, full_side.months)) == sorted(map(repr, side.months))
    report = compare(baseline, side)
    assert {r.program_id for r in report.programs if r.payable_change_kop} <= {"zhytomyr.fallen-defenders-families"}
