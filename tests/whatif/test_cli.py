"""`dopomoga whatif`: from a JSONL file or a ledger's year (read only), and its errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.cli import app
from dopomoga.whatif.run import decide_side, load_allocations
from dopomoga.whatif.sources import from_ledger
from schemas.events import EntitlementCalculated
from tests.core.test_engine_properties import CATALOG

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = ROOT / "examples" / "applications.jsonl"
SCENARIO = ROOT / "examples" / "whatif" / "council-session.yaml"


def _production_ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'production.sqlite'}"
    ledger = BudgetLedger(url, CATALOG)
    for allocation in load_allocations(ROOT / "examples" / "allocations.json"):
        ledger.apply(allocation)
    decide_side(CATALOG, APPLICATIONS, tmp_path / "decided")
    for path in sorted((tmp_path / "decided").glob("*.jsonl")):
        bodies = path.read_bytes().splitlines()
        ledger.submit_many([EntitlementCalculated.model_validate_json(b) for b in bodies], bodies)
    ledger.close()
    return url


def test_whatif_from_a_ledger_year_reads_its_applications_and_allocations_and_writes_nothing(tmp_path):
    url = _production_ledger(tmp_path)
    database = tmp_path / "production.sqlite"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    applications, allocations = from_ledger(url, 2023, tmp_path)
    lines = applications.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 50 and all('"submitted_on":"2023' in line or '"period":"2023' in line for line in lines)
    assert {a.year for a in allocations} == {2023} and allocations
    result = CliRunner().invoke(app, ["whatif", str(SCENARIO), "--from-ledger", "2023", "--db", url,
                                      "--out", str(tmp_path / "out"), "--no-xlsx"])
    assert result.exit_code == 0, result.output
    assert "zhytomyr.centenarians" in (tmp_path / "out" / "people.csv").read_text(encoding="utf-8")
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before


def test_whatif_cli_reports_a_bad_scenario_with_its_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenario: bad\ntitle_uk: x\nbudget:\n  - {program: zhytomyr.nobody, policy: first_come, "
                   "reference: проєкт}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["whatif", str(bad), "--applications", str(APPLICATIONS)])
    assert result.exit_code == 2
    assert f"{bad}:4:" in result.output.replace("\n", "") and "zhytomyr.nobody" in result.output


def test_whatif_cli_writes_csv_and_xlsx(tmp_path):
    result = CliRunner().invoke(app, ["whatif", str(SCENARIO), "--applications", str(APPLICATIONS),
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} >= {"programs.csv", "months.csv", "people.csv"}
