from __future__ import annotations

import pytest

from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture
def engine(catalog: Catalog) -> Engine:
    """A fresh engine with an empty in-memory grant history."""
    return Engine(catalog)


# SQLite and PostgreSQL for the stores' tests (db_url, db_file_url, pg_url): tests/databases.py
from tests.databases import db_file_url, db_url, pg_url  # noqa: E402, F401
