"""Identifiers are checked at the boundary only; internal topics are decoded with the trusted
context. And the outbox: outputs land on the partitions ``topic.send`` chose, and a batch is
done only when the broker has acknowledged all of it."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from fastapi.testclient import TestClient
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from dopomoga.rules.engine import Engine
from schemas.events import TRUSTED, ApplicationSubmitted, EligibilityDecided, EntitlementCalculated
from services.devstack.synthetic import SyntheticRegistry
from services.gateway.app import Gateway, create_app
from services.gateway.ingest import IngestLog
from services.platform.rejections import Rejection, decode
from services.platform.runtime import Outbox, key_partition
from tests.gateway.conftest import FakeProducer, headers, keystore

BAD_RNOKPP = "1234567890"
BAD_IBAN = "UA000000000000000000000000000"


def _application(catalog) -> dict:
    return json.loads(next(SyntheticRegistry(catalog, seed=5).generate(1)).model_dump_json())


def _with_bank_iban(data: dict, iban: str) -> dict:
    return {**data, "payment": {"channel": "bank", "iban": iban}}


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: {**d, "applicant": {**d["applicant"], "id": BAD_RNOKPP}}, "invalid_identifier"),
        (lambda d: _with_bank_iban(d, BAD_IBAN), "invalid_iban"),
    ],
)
def test_applications_topic_still_checks_identifiers(catalog, mutate, code):
    raw = json.dumps(mutate(_application(catalog))).encode()
    with pytest.raises(Rejection) as caught:
        decode(ApplicationSubmitted, raw)  # what the eligibility service does on `applications`
    assert caught.value.reason_code == code


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: {**d, "applicant": {**d["applicant"], "id": BAD_RNOKPP}}, "РНОКПП"),
        (lambda d: _with_bank_iban(d, BAD_IBAN), "IBAN"),
    ],
)
def test_gateway_ingest_still_checks_identifiers(catalog, mutate, fragment):
    producer = FakeProducer()
    gateway = Gateway(catalog=catalog, keys=keystore(), producer=producer, ledger=None,
                      ledger_factory=lambda: (_ for _ in ()).throw(RuntimeError("no ledger")),
                      ingest_log=IngestLog(":memory:"))
    client = TestClient(create_app(gateway), raise_server_exceptions=False)
    response = client.post("/applications", json=mutate(_application(catalog)), headers=headers("registry"))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["message"]
    assert producer.sent == []


def _internal(catalog) -> tuple[bytes, bytes]:
    engine = Engine(catalog)
    application = ApplicationSubmitted.model_validate(_with_bank_iban(_application(catalog), "UA213223130000026007233566001"))
    eligibility = engine.check_eligibility(application)
    return eligibility.model_dump_json().encode(), engine.calculate(eligibility).model_dump_json().encode()


def test_trusted_context_skips_only_the_identifier_checks(catalog):
    eligibility, entitlement = _internal(catalog)
    for model, raw in ((EligibilityDecided, eligibility), (EntitlementCalculated, entitlement)):
        # what our services produce decodes identically with and without the context
        assert decode(model, raw, trusted=True) == decode(model, raw)
        data = json.loads(raw)
        data["application"]["applicant"]["id"] = BAD_RNOKPP
        data["application"]["payment"]["iban"] = BAD_IBAN
        tampered = json.dumps(data).encode()
        with pytest.raises(Rejection):
            decode(model, tampered)  # untrusted: the check digits are checked
        assert decode(model, tampered, trusted=True).application.applicant.id == BAD_RNOKPP
        assert model.model_validate_json(tampered, context=TRUSTED).application.payment.iban == BAD_IBAN
        # every other constraint still applies in the trusted context
        data["application"]["payment"] = {"channel": "bank", "iban": None}
        with pytest.raises(Rejection) as caught:
            decode(model, json.dumps(data).encode(), trusted=True)
        assert caught.value.reason_code == "invalid_iban"  # a bank payment needs an IBAN
    data = json.loads(entitlement)
    data["amount_kop"] = 12.5
    with pytest.raises(Rejection) as caught:
        decode(EntitlementCalculated, json.dumps(data).encode(), trusted=True)
    assert caught.value.reason_code == "float_money"


def test_key_partition_matches_the_kafka_default_partitioner():
    partitions = list(range(4))
    for i in range(500):
        key = f"app-{i:05d}".encode()
        assert key_partition(key, 4) == DefaultPartitioner()(key, partitions, partitions)  # topic.send's
        assert key_partition(key, 4) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % 4  # the registry's


def test_the_fast_murmur2_equals_aiokafkas_for_keys_of_every_length_up_to_80_bytes():
    import random

    from aiokafka.partitioner import murmur2

    from services.platform.runtime import murmur2_fast

    rng = random.Random(15)
    for length in range(81):
        for _ in range(50):
            key = rng.randbytes(length)
            assert murmur2_fast(key) == murmur2(key)


class _FakeProducer:
    """aiokafka's create_batch/send_batch surface; deliveries resolve when ``ack`` is called."""

    def __init__(self, fail: bool = False):
        self.sent: list[tuple[str, int, int]] = []
        self.futures: list[asyncio.Future] = []
        self.fail = fail
        self.client = SimpleNamespace(_wait_on_metadata=self._wait)
        self._metadata = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2, 3})

    async def _wait(self, topic):
        return None

    def create_batch(self):
        return BatchBuilder(1024, 0)  # no compression

    async def send_batch(self, batch, topic, *, partition):
        self.sent.append((topic, partition, batch.record_count()))
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    def ack(self):
        for future in self.futures:
            if not future.done():
                future.set_exception(ConnectionError("lost")) if self.fail else future.set_result(None)


def _outbox(producer: _FakeProducer) -> Outbox:
    return Outbox(SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer)))  # type: ignore[arg-type]


def test_outbox_sends_per_partition_and_waits_for_every_acknowledgement():
    async def run():
        producer = _FakeProducer()
        outbox = _outbox(producer)
        keys = [f"app-{i}".encode() for i in range(40)]
        for key in keys:
            await outbox.add("eligibility-decisions", key, b"x" * 100)  # ~10 records fill a 1 KiB batch
        flushing = asyncio.ensure_future(outbox.flush())
        await asyncio.sleep(0.01)
        assert not flushing.done()  # not before the broker acknowledged
        producer.ack()
        assert await flushing == {"eligibility-decisions": 40}
        per_partition: dict[int, int] = {}
        for _topic, partition, count in producer.sent:
            per_partition[partition] = per_partition.get(partition, 0) + count
        expected: dict[int, int] = {}
        for key in keys:
            expected[key_partition(key, 4)] = expected.get(key_partition(key, 4), 0) + 1
        assert per_partition == expected
        assert len(producer.sent) > 4  # full batches were handed over as they filled

    asyncio.run(run())


def test_outbox_flush_raises_when_a_delivery_fails():
    async def run():
        producer = _FakeProducer(fail=True)
        outbox = _outbox(producer)
        await outbox.add("entitlements", b"k", b"v")
        flushing = asyncio.ensure_future(outbox.flush())
        await asyncio.sleep(0)
        producer.ack()
        with pytest.raises(ConnectionError):
            await flushing

    asyncio.run(run())
