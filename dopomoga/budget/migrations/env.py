"""Alembic environment of the budget ledger.

The ledger runs ``upgrade head`` itself on construction and passes its connection in
``config.attributes["connection"]``; from the command line,
``alembic -x url=sqlite:///var/budget.db -c <ini>`` works too (``sqlalchemy.url``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from dopomoga.budget.schema import metadata

config = context.config
VERSION_TABLE = "budget_alembic_version"


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


run()
