"""Issue 13, items 5 and 6: the seed tables replayed, and the department's documents (XLSX, CSV)."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from dopomoga.budget import documents as d
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.budget.replay import MATCH, MISMATCH, replay
from dopomoga.errors import LedgerError
from dopomoga.rules.programs import Catalog
from tests.budget.conftest import allocation, close, entitlement, uah
from tests.budget.test_replay_and_migrations import dump

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
T000 = SPEC / "000-zhytomyr-measures.csv"
CENT = "zhytomyr.centenarians"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> tuple[BudgetLedger, list]:
    url = f"sqlite:///{tmp_path_factory.mktemp('replay') / 'ledger.db'}"
    ledger = BudgetLedger(url)
    return ledger, replay(T000, ledger)


def test_replay_of_000_reproduces_every_row_whose_program_is_encoded_and_amount_stated(replayed):
    _, results = replayed
    assert not [r for r in results if r.status == MISMATCH]
    by_measure = {r.row.measure: r for r in results if r.row.programs}
    assert by_measure["1.1.7"].status == MATCH and by_measure["1.1.7"].replay_kop == uah("1039500")  # 000 L28
    assert by_measure["1.1.12"].replay_kop == uah("70000") == by_measure["1.1.12"].row.financed_kop  # 000 L32
    assert by_measure["1.1.4"].replay_kop == uah("9000")  # 000 L24: 3 persons, monthly, H1
    assert "input" in by_measure["1.1.9"].reason and by_measure["1.1.9"].replay_kop is None
    assert "1.1.2" in by_measure["1.1.2"].reason  # one line, two measures, counts not separated
    for measure in ("3.1.2", "1.1.14"):  # a provider's register: the seed has the total, not the rows
        assert "rows of each claim (register)" in by_measure[measure].reason, by_measure[measure].reason
    assert len(results) == 69  # every row of the table is reported, none hidden


def test_the_h1_2023_execution_report_opens_with_the_seed_columns_and_totals(replayed, tmp_path):
    ledger, _ = replayed
    path = d.write(tmp_path / "zhytomyr-2023-H1.xlsx", *_execution(ledger))
    sheet = load_workbook(path).active
    rows = list(sheet.iter_rows(values_only=True))
    seed_header = (SEEDS / "000_70df75272e457611.txt").read_text(encoding="utf-8").splitlines()[18].split("\t")
    assert list(rows[1][:10]) == seed_header  # 000 L19, the seed's ten columns
    assert "I півріччя 2023 р." in rows[0][0]
    body = {r[0]: r for r in rows[2:]}
    visual = body["1.1.7"]
    assert (Decimal(str(visual[5])), Decimal(str(visual[6])), Decimal(str(visual[7])), visual[8]) == (
        Decimal("1431"), Decimal("1431"), Decimal("1039.5"), "72,6")  # 000 L28: 1431,0 1431,0 1039,5 (72,6 %)
    assert "231 особа" in visual[9]
    measures = [r for r in csv.DictReader(T000.open(encoding="utf-8")) if r["row_type"] == "measure"]
    total = body["Усього за Програмою"]
    assert Decimal(str(total[6])) == sum(Decimal(r["annual_kUAH"]) for r in measures)  # column 7 of the seed
    assert Decimal(str(total[7])) == sum(Decimal(str(r[7])) for r in rows[2:] if r[0] in {m["code"] for m in measures})
    assert Decimal(str(body["Разом за завданням 1.1"][7])) == Decimal("1118.5")  # 1.1.4 + 1.1.7 + 1.1.12
    assert Decimal(str(total[12])) == Decimal(str(total[7]))  # all paid by the city budget


def _execution(ledger):
    report = ledger.execution_report("zhytomyr", "2023-H1")
    return d.execution_title(report), d.EXECUTION_COLUMNS, d.execution_rows(report)


def test_the_execution_report_as_csv_is_semicolon_separated_with_decimal_commas(replayed, tmp_path):
    ledger, _ = replayed
    path = d.write(tmp_path / "report.csv", *_execution(ledger))
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=";"))
    visual = next(r for r in rows if r[0] == "1.1.7")
    assert visual[6:9] == ["1431", "1039,5", "72,6"]


def test_replaying_the_table_twice_gives_a_byte_identical_ledger(tmp_path):
    catalog = Catalog.load()  # once: the same rules (and rule hashes) for both replays
    dumps = []
    for name in ("a", "b"):
        ledger = BudgetLedger(f"sqlite:///{tmp_path / name}.db", catalog)
        replay(T000, ledger)
        dumps.append(dump(ledger))
    assert dumps[0] == dumps[1]


def test_the_002_and_004_tables_are_replayed_or_reported_row_by_row():
    ledger = BudgetLedger("sqlite://")
    kamianske = replay(SPEC / "002-figures.csv", ledger)
    matched = {r.row.measure: r.replay_kop for r in kamianske if r.status == MATCH}
    assert matched == {  # 002 L1104, L1107, L1126, L1109
        "fallen_servicemen_child_birthday_assist": uah("9000"),
        "ato_land_documents_assist": uah("7200"),
        "ato_demobilisation_assist": uah("35000"),
        "burial_assistance": uah("13500"),
    }
    assert not [r for r in kamianske if r.status == MISMATCH]
    zaporizhzhia = replay(SPEC / "004-budget.csv", ledger)
    assert zaporizhzhia and all(r.status in ("no program", "not reproducible") for r in zaporizhzhia)


def test_dopomoga_replay_exits_non_zero_when_a_reproducible_row_does_not_match(tmp_path):
    from dopomoga.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["replay", str(T000), "--out", str(tmp_path / "h1.xlsx")])
    assert ok.exit_code == 0, ok.output
    assert "7 match" in ok.output and (tmp_path / "h1.xlsx").exists()
    wrong = tmp_path / "000-wrong.csv"
    wrong.write_text(T000.read_text(encoding="utf-8").replace("1431.0,1431.0,1039.5", "1431.0,1431.0,1040.0"),
                     encoding="utf-8")
    bad = runner.invoke(app, ["replay", str(wrong)])
    assert bad.exit_code == 1 and MISMATCH in bad.output


def test_a_funding_request_goes_requested_approved_received_and_reads_back(budget_catalog, tmp_path):
    ledger = BudgetLedger("sqlite://", budget_catalog)
    ledger.apply(allocation(CENT, 2023, uah("120000")))
    for n in range(3):
        ledger.submit(entitlement(budget_catalog, CENT, f"f-{n}", uah("10000"), "2023-03"))
    on = dt.date(2023, 2, 25)
    asked = ledger.funding.request(CENT, "2023-03", on)
    assert (asked.state, asked.requested_kop) == ("requested", uah("30000"))  # the month's need
    assert ledger.funding.request(CENT, "2023-03", on) == asked  # idempotent
    with pytest.raises(LedgerError):
        ledger.funding.receive(CENT, "2023-03", uah("1"), on)  # not approved yet
    ledger.funding.approve(CENT, "2023-03", uah("25000"), dt.date(2023, 2, 28), "розпорядження № 7")
    with pytest.raises(LedgerError):
        ledger.funding.approve(CENT, "2023-03", uah("26000"), dt.date(2023, 2, 28), "інше")  # conflicting replay
    got = ledger.funding.receive(CENT, "2023-03", uah("25000"), dt.date(2023, 3, 3))
    assert (got.state, got.approved_kop, got.received_kop, got.document) == (
        "received", uah("25000"), uah("25000"), "розпорядження № 7")
    path = d.write(tmp_path / "funding.xlsx", "Заявки", d.FUNDING_COLUMNS, d.funding_rows(ledger.funding.report(2023)),
                   thousands_format=False)
    [row] = list(load_workbook(path).active.iter_rows(min_row=3, values_only=True))
    assert row[:7] == (None, CENT, "2023-03", "надійшло", 30000, 25000, 25000)  # no budget line in this catalog


def test_the_payables_report_lists_what_was_carried_into_the_year(budget_catalog, tmp_path):
    ledger = BudgetLedger("sqlite://", budget_catalog)
    ledger.apply(allocation(CENT, 2023, uah("100"), kind="december"))
    ledger.submit(entitlement(budget_catalog, CENT, "owed-1", uah("10000.01"), "2023-12"))
    ledger.apply(close(CENT, "2023-12"))
    path = d.write(tmp_path / "payables.csv", "Кредиторська заборгованість", d.PAYABLE_COLUMNS,
                   d.payable_rows(ledger.payables(2024)))
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[2][2:7] == ["owed-1", "2023", "2024-01", "10000,01", "0"]


def test_the_amendments_report_shows_every_version_with_its_change_reason_and_document(budget_catalog, tmp_path,
                                                                                    monkeypatch):
    from dopomoga.budget import cli
    from dopomoga.budget.commands import allocation_set

    url = f"sqlite:///{tmp_path / 'budget.db'}"
    ledger = BudgetLedger(url, budget_catalog)
    ledger.apply(allocation_set(program_id=CENT, year=2023, annual_kop=uah("110000"), plan={"kind": "even"},
                                amendment_id="initial", legal_reference="рішення про бюджет на 2023 рік"))
    ledger.apply(allocation_set(program_id=CENT, year=2023, annual_kop=uah("104000"), plan={"kind": "even"},
                                amendment_id="zmina-1", legal_reference="рішення про внесення змін",
                                reason_uk="відповідно до фактичних видатків", document="рішення № 612",
                                amended_on=dt.date(2023, 9, 21), occurred_at=dt.datetime(2023, 9, 21, tzinfo=dt.UTC)))
    monkeypatch.setattr(cli, "_ledger", lambda db: BudgetLedger(db, budget_catalog))
    out = tmp_path / "amendments.xlsx"
    result = CliRunner().invoke(cli.app, ["report", "amendments", "--year", "2023", "--db", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(load_workbook(out).active.iter_rows(min_row=3, values_only=True))
    assert [(r[4], r[5], r[6], r[9], r[10], r[11]) for r in rows] == [
        (1, 110000, 110000, None, None, None),
        (2, 104000, -6000, "відповідно до фактичних видатків", "рішення № 612", "2023-09-21"),
    ]
