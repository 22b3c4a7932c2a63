"""The stores under test run on SQLite and on PostgreSQL (issue 15, item 2).

``DOPOMOGA_TEST_PG`` is a SQLAlchemy URL of a PostgreSQL server the tests may create databases
on (``make test`` and ``.ci/run`` start one with ``deploy/test-postgres.sh``). Without it the
PostgreSQL cases skip, unless ``DOPOMOGA_REQUIRE_PG=1`` (set by ``.ci/run``): then they fail.

``db_url`` is parametrised ``sqlite`` / ``postgresql`` and gives each test a fresh, empty
database (an in-memory SQLite, or a new PostgreSQL database dropped afterwards).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

BACKENDS = ("sqlite", "postgresql")


def pg_server_url() -> str | None:
    url = os.environ.get("DOPOMOGA_TEST_PG", "").strip()
    if url:
        return url
    if os.environ.get("DOPOMOGA_REQUIRE_PG") == "1":
        pytest.fail("DOPOMOGA_TEST_PG is not set and DOPOMOGA_REQUIRE_PG=1 (.ci/run): PostgreSQL did not start")
    pytest.skip("no PostgreSQL (DOPOMOGA_TEST_PG unset; `make test` starts one with deploy/test-postgres.sh)")


def _admin(server: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE / DROP DATABASE) on ``server``."""
    from sqlalchemy import create_engine

    admin = create_engine(server, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        admin.dispose()


def create_database(server: str, prefix: str = "t") -> str:
    """A new empty database on ``server``; returns its URL."""
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _admin(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    _admin(server, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (skips when there is no server, fails under .ci/run)."""
    with database("postgresql") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh database: in-memory SQLite, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield "sqlite://"
        return
    yield request.getfixturevalue("pg_url")


@pytest.fixture(params=BACKENDS)
def db_file_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """As ``db_url``, but SQLite is a file (several engines or processes share it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    yield request.getfixturevalue("pg_url")


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """A fresh database of ``backend`` for fixtures of wider scope than a test."""
    if backend == "sqlite":
        yield "sqlite://"
        return
    server = pg_server_url()
    assert server is not None
    url = create_database(server)
    try:
        yield url
    finally:
        drop_database(server, url)
