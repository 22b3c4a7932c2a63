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
