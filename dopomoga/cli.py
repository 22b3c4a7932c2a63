"""`dopomoga` command line. Sub-command groups live with the code they drive."""

from __future__ import annotations

import typer

from dopomoga.budget.cli import app as budget_app
from services.cli import app as services_app
from services.treasury.cli import app as treasury_app

app = typer.Typer(no_args_is_help=True, help="Dopomoga: municipal social payouts, decided exactly and explained.")
app.add_typer(budget_app, name="budget", help="Budget ledger: allocations, status, need report.")
app.add_typer(treasury_app, name="treasury", help="Payment registers and reconciliation.")
# services.cli adds top-level commands such as `up`, `topics`, `emulate`.
for command in services_app.registered_commands:
    app.registered_commands.append(command)

if __name__ == "__main__":
    app()
