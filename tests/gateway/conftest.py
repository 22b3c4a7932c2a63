from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import Gateway, create_app
from services.gateway.auth import KeyStore
from services.gateway.ingest import IngestLog

KEYS = {"viewer": "k-viewer", "budget_admin": "k-admin", "registry": "k-registry"}


class FakeFuture:
    def get(self, timeout=None):
        return None


class FakeProducer:
    """Records what would be sent to Kafka (kafka-python's send(topic, key=, value=))."""

    def __init__(self):
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    def send(self, topic, key=None, value=None):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((topic, key, value))
        return FakeFuture()


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


def keystore() -> KeyStore:
    return KeyStore.from_env({"DOPOMOGA_API_KEYS": "k-viewer=viewer:ops,k-admin=budget_admin:chief,k-registry=registry:reg"})


@pytest.fixture
def make_client(producer, catalog):
    def make(ledger=None) -> TestClient:
        gateway = Gateway(catalog=catalog, keys=keystore(), producer=producer, ledger=ledger,
                          ledger_factory=lambda: (_ for _ in ()).throw(RuntimeError("no ledger")),
                          ingest_log=IngestLog(":memory:"))
        return TestClient(create_app(gateway), raise_server_exceptions=False)

    return make


def headers(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}
