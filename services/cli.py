"""The composition root of the `dopomoga` command: the core's commands and the services' commands.

The core (``dopomoga.cli``: decide, explain, programs, and the ``budget`` group) never imports the
services; this module, on the services side, puts the two together:

- ``decide``, ``explain``, ``programs``, ``budget ...`` from ``dopomoga.cli``;
- ``topics ...`` from ``services.platform.cli`` (the declared topology);
- ``treasury ...`` from ``services.treasury.cli`` (registers, reconciliation, the follower);
- ``up`` and ``emulate`` from ``services.devstack.cli`` (the local stack and the registry emulator);
- ``migrate`` from ``services.migrate`` (schemas to head before the services start).

``[project.scripts] dopomoga`` points here.
"""

from __future__ import annotations

import typer

from dopomoga.cli import app as core_app
from services.devstack.cli import app as devstack_app
from services.migrate import migrate
from services.platform.cli import app as topics_app
from services.treasury.cli import app as treasury_app

app = typer.Typer(no_args_is_help=True, help=core_app.info.help, pretty_exceptions_enable=False)
app.registered_commands.extend(core_app.registered_commands)  # decide, explain, programs
app.registered_groups.extend(core_app.registered_groups)  # budget
app.add_typer(treasury_app, name="treasury", help="Payment registers and reconciliation.")
app.add_typer(topics_app, name="topics")
app.registered_commands.extend(devstack_app.registered_commands)  # up, emulate
app.command("migrate")(migrate)  # every store's schema to head, before the services start



def main() -> None:
    """The console script: errors are one plain line, never a traceback (services/platform/cli_errors.py)."""
    from services.platform.cli_errors import run

    run(app)


if __name__ == "__main__":
    main()
