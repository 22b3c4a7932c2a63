"""Property-based: schemathesis generates requests from the OpenAPI spec; none may get a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.programs import Catalog
from services.gateway.app import Gateway, create_app
from services.gateway.ingest import IngestLog
from tests.gateway.conftest import FakeProducer, keystore

_catalog = Catalog.load()
app = create_app(Gateway(catalog=_catalog, keys=keystore(), producer=FakeProducer(),
                         ledger=BudgetLedger("sqlite://", _catalog), ingest_log=IngestLog(":memory:")))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
ROLE_FOR = {"/applications": "k-registry", "/budget/allocations": "k-admin", "/budget/periods/close": "k-admin"}


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    key = ROLE_FOR.get(case.path, "k-viewer")
    response = case.call(headers={"X-API-Key": key})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    unauthenticated = case.call(headers={"X-API-Key": "nope"})
    assert unauthenticated.status_code < 500
