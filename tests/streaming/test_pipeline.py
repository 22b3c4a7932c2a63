"""End-to-end and bad-input tests against the real embedded broker and service subprocesses."""

from __future__ import annotations

import base64
import json
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from dopomoga.rules.engine import Engine
from schemas.events import EntitlementCalculated, Rejected
from services.devstack.registry import Registry
from services.devstack.synthetic import SyntheticRegistry
from services.platform.topology import BY_NAME, DEAD_LETTER, ENTITLEMENTS
from tests.streaming.conftest import ledger_available, wait_for

pytestmark = pytest.mark.broker


class TopicReader:
    """Reads whole topics from the beginning (no consumer group)."""

    def __init__(self, bootstrap: str, *topics: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                      fetch_max_wait_ms=100, max_partition_fetch_bytes=4 * 1024 * 1024)
        parts = [TopicPartition(t, p) for t in topics for p in range(BY_NAME[t].partitions)]
        self.consumer.assign(parts)
        self.consumer.seek_to_beginning(*parts)
        self.records: dict[str, list] = defaultdict(list)

    def poll(self) -> None:
        for tp, records in self.consumer.poll(timeout_ms=200, max_records=50_000).items():
            self.records[tp.topic].extend(records)

    def close(self) -> None:
        self.consumer.close()


def test_entitlements_equal_offline_engine(broker, stack, catalog):
    apps = list(SyntheticRegistry(catalog, seed=101).generate(300))
    with Registry(broker.bootstrap) as registry:
        registry.publish(apps)
    offline = Engine(catalog)
    expected = {a.application_id: offline.decide(a).model_dump_json().encode() for a in apps}
    reader = TopicReader(broker.bootstrap, ENTITLEMENTS)
    try:
        def complete():
            reader.poll()
            seen = {EntitlementCalculated.model_validate_json(r.value).application_id for r in reader.records[ENTITLEMENTS]}
            return set(expected) <= seen
        assert wait_for(complete, 60), "not every application reached entitlements"
        got: dict[str, set[bytes]] = defaultdict(set)
        for record in reader.records[ENTITLEMENTS]:
            entitlement = EntitlementCalculated.model_validate_json(record.value)
            if entitlement.application_id in expected:
                got[entitlement.application_id].add(record.value)
                assert record.key.decode() == f"{entitlement.program_id}:{entitlement.period[:4]}"
        for application_id, value in expected.items():
            assert got[application_id] == {value}, "streaming differs from Engine.decide"
    finally:
        reader.close()


def _bad_inputs(catalog) -> list[tuple[str, bytes]]:
    template = json.loads(next(SyntheticRegistry(catalog, seed=202).generate(1)).model_dump_json())

    def variant(app_id: str, **changes) -> bytes:
        data = json.loads(json.dumps(template))
        data.update(application_id=app_id, event_id=f"ev-{app_id}", **changes)
        return json.dumps(data).encode()

    applicant = template["applicant"]
    return [
        ("invalid_json", b'{"application_id": "bad-json", '),
        ("unsupported_schema_version", variant("bad-v2", schema_version=2)),
        ("unknown_program", variant("bad-program", program_id="zhytomyr.no-such-program")),
        ("invalid_identifier", variant("bad-rnokpp", applicant={**applicant, "id": "1234567890"})),
        ("invalid_iban", variant("bad-iban", payment={"channel": "bank", "iban": "UA213223130000026007233566002"})),
        ("float_money", variant("bad-float", facts={**template["facts"], "amount": 100.5})),
        ("oversized", variant("bad-big", registry="r", padding="x" * (300 * 1024))),
    ]


def test_bad_input_goes_to_dead_letter_and_the_stream_goes_on(broker, stack, catalog):
    bad = _bad_inputs(catalog)
    good = list(SyntheticRegistry(catalog, seed=203).generate(3))
    with Registry(broker.bootstrap) as registry:
        registry.publish_raw([raw for _, raw in bad])
        registry.publish(good)
    reader = TopicReader(broker.bootstrap, DEAD_LETTER, ENTITLEMENTS)
    try:
        originals = {raw: code for code, raw in bad}

        def rejected() -> dict[bytes, Rejected]:
            found = {}
            for record in reader.records[DEAD_LETTER]:
                event = Rejected.model_validate_json(record.value)
                found[base64.b64decode(event.original_b64)] = event
            return found

        def good_done() -> bool:
            ids = {EntitlementCalculated.model_validate_json(r.value).application_id for r in reader.records[ENTITLEMENTS]}
            return {a.application_id for a in good} <= ids

        def complete():
            reader.poll()
            return set(originals) <= set(rejected()) and good_done()

        assert wait_for(complete, 60), f"missing: {sorted(set(originals.values()) - {r.reason_code for r in rejected().values()})}"
        found = rejected()
        for raw, code in originals.items():
            event = found[raw]
            assert event.reason_code == code, (code, event.reason)
            assert event.reason and event.service == "eligibility" and event.source_topic == "applications"
            assert event.source_offset is not None and event.source_partition is not None
    finally:
        reader.close()
    assert all(s.alive() for s in stack.services)
    # no personal data in the service logs
    logs = "".join((stack.var / f"{s.name}.log").read_text(errors="replace") for s in stack.services)
    for application in good:
        assert application.applicant.name not in logs
        assert application.applicant.id not in logs
        assert application.application_id not in logs


@pytest.mark.skipif(not ledger_available(), reason="dopomoga/budget/ledger.py not written yet")
def test_budget_service_is_running(stack):
    assert any(s.name == "budget" and s.alive() for s in stack.services)
