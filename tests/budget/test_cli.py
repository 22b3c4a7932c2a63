"""The `dopomoga budget` commands read the ledger a service wrote."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dopomoga.budget import cli
from dopomoga.budget.ledger import BudgetLedger
from tests.budget.conftest import allocation, close, entitlement, uah

BUS = "zaporizhzhia.test-bus-carriers"


def test_report_and_status_show_the_prorated_month(tmp_path, budget_catalog, monkeypatch):
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    ledger = BudgetLedger(url, budget_catalog)
    ledger.apply(allocation(BUS, 2021, uah("100000"), kind="explicit", months={"2021-01": uah("100000")}))
    for name, amount in (("A", "80000"), ("B", "40000"), ("C", "30000")):
        ledger.submit(entitlement(budget_catalog, BUS, f"carrier-{name}", uah(amount), "2021-01"))
    ledger.apply(close(BUS, "2021-01"))
    monkeypatch.setattr(cli, "_ledger", lambda db: BudgetLedger(db, budget_catalog))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["report", "--year", "2021", "--program", BUS, "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    january = json.loads(result.output.splitlines()[0])
    assert january["need_kop"] == uah("150000") and january["paid_kop"] == uah("100000")
    assert january["coefficient"] == "2/3"
    table = runner.invoke(cli.app, ["report", "--year", "2021", "--db", url])
    assert table.exit_code == 0 and "100000.00" in table.output
    status = runner.invoke(cli.app, ["status", BUS, "2021-01", "--db", url, "--json"])
    assert json.loads(status.output)["closed"] is True
    assert runner.invoke(cli.app, ["status", BUS, "2021-01", "--db", url]).exit_code == 0
