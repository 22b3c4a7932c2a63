"""Reads never wait behind a stuck producer (issue 12, item 5): with the broker unreachable, the
producer's construction blocks (kafka-python's bootstrap) while a write holds its lock; a read of
the ledger is answered at once instead of queueing behind it (it waited 30 s before)."""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient

from services.gateway.app import Gateway, create_app
from services.gateway.ingest import IngestLog
from tests.gateway.conftest import headers, keystore
from tests.streaming.test_boundary import _base


class Ledger:
    def status(self, program_id, period, district=None):
        return {"program_id": program_id, "period": period, "allocation_kop": 1, "paid_kop": 0, "reserved_kop": 0}


def test_a_read_is_answered_while_a_write_waits_for_the_broker(catalog):
    release = threading.Event()

    def stuck_producer():
        release.wait(10)  # the broker does not answer
        raise ConnectionError("no broker")

    gateway = Gateway(catalog=catalog, keys=keystore(), producer_factory=stuck_producer, ledger=Ledger(),
                      ingest_log=IngestLog(":memory:"))
    app = create_app(gateway)
    write_status: list[int] = []

    def write():
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post("/applications", content=json.dumps(_base()).encode(),
                                   headers={**headers("registry"), "Content-Type": "application/json"})
            write_status.append(response.status_code)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)  # the write now holds the producer's lock
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            started = time.monotonic()
            response = client.get("/budget/zhytomyr.centenarians/2023-04", headers=headers("viewer"))
            took = time.monotonic() - started
        assert response.status_code == 200 and took < 2.0, (response.status_code, took)
    finally:
        release.set()
        writer.join(15)
    assert write_status == [503]
