"""Broker-free tests of the service adapters: grant history, decoding and dead-letter records."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from dopomoga.rules.engine import Engine
from dopomoga.rules.history import Grant
from schemas.events import ApplicationSubmitted, Rejected
from services.devstack.synthetic import SyntheticRegistry, rnokpp, ua_iban
from services.eligibility.adapters.history import SqliteGrantHistory
from services.platform.rejections import Rejection, Source, dead_letter, decode
from services.platform.topology import BY_NAME, CO_PARTITIONED, MAX_MESSAGE_BYTES, TOPICS, command_key


def grant(app_id: str, key: str = "rnokpp:1", program: str = "zhytomyr.centenarians", on: str = "2023-04-03"):
    return Grant(keys=(key, "household:h1"), program_id=program, application_id=app_id,
                 on=dt.date.fromisoformat(on), period=on[:7])


def test_history_counts_records_and_forgets(tmp_path):
    history = SqliteGrantHistory(tmp_path / "h.sqlite")
    history.record(grant("a1"))
    history.record(grant("a1"))  # replay: idempotent
    history.record(grant("a2", on="2020-01-01"))
    count = lambda **kw: history.count(  # noqa: E731
        kw.get("keys", ["rnokpp:1"]), ["zhytomyr.centenarians"], kw.get("start"), kw.get("end"),
        kw.get("period"), kw.get("exclude", "x"))
    assert count() == 2
    assert count(exclude="a1") == 1
    assert count(start=dt.date(2021, 1, 1)) == 1
    assert count(period="2020-01") == 1
    assert count(keys=["household:h1", "rnokpp:1"]) == 2  # one grant under two keys counts once
    history.confirm("a1")
    history.record(grant("a1"))  # a provisional replay does not downgrade a final grant
    assert history.status("a1") == "final"
    history.forget("a2")
    history.commit()
    reopened = SqliteGrantHistory(tmp_path / "h.sqlite")
    assert reopened.count(["rnokpp:1"], ["zhytomyr.centenarians"], None, None, None, "x") == 1
    reopened.confirm("a9", grant("a9", key="rnokpp:9"))  # never seen provisionally: recorded final
    assert reopened.status("a9") == "final"


def test_engine_with_sqlite_history_matches_in_memory(catalog):
    apps = list(SyntheticRegistry(catalog, seed=7).generate(150))
    sqlite_engine = Engine(catalog, SqliteGrantHistory())
    memory_engine = Engine(catalog)
    for application in apps + apps[:20]:  # replays give the same decision
        assert (sqlite_engine.check_eligibility(application, record=True).model_dump_json()
                == memory_engine.check_eligibility(application, record=True).model_dump_json())


def _valid(catalog) -> dict:
    return json.loads(next(SyntheticRegistry(catalog, seed=3).generate(1)).model_dump_json())


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: b"{not json", "invalid_json"),
        (lambda d: b"[1, 2]", "invalid_json"),
        (lambda d: {**d, "schema_version": 2}, "unsupported_schema_version"),
        (lambda d: {**d, "applicant": {**d["applicant"], "id": "1234567890"}}, "invalid_identifier"),
        (lambda d: {**d, "payment": {"channel": "bank", "iban": "UA000000000000000000000000000"}}, "invalid_iban"),
        (lambda d: {**d, "facts": {**d["facts"], "x": 1.5}}, "float_money"),
        (lambda d: {**d, "padding": "x" * (MAX_MESSAGE_BYTES + 1)}, "oversized"),
        (lambda d: {**d, "event_type": "Nope"}, "invalid_event"),
    ],
)
def test_decode_classifies_rejections(catalog, mutate, code):
    data = _valid(catalog)
    mutated = mutate(data)
    raw = mutated if isinstance(mutated, bytes) else json.dumps(mutated).encode()
    with pytest.raises(Rejection) as caught:
        decode(ApplicationSubmitted, raw)
    assert caught.value.reason_code == code
    assert caught.value.reason
    # no personal data echoed in the reason
    assert data["applicant"]["name"] not in caught.value.reason
    assert "1234567890" not in caught.value.reason


def test_dead_letter_record_is_deterministic_and_keeps_bytes():
    raw = b'{"broken":'
    source = Source("applications", 2, 41, 1_700_000_000.0)
    record = dead_letter("eligibility", source, raw, Rejection("invalid_json", "not valid JSON"))
    again = dead_letter("eligibility", source, raw, Rejection("invalid_json", "not valid JSON"))
    assert record == again
    assert isinstance(record, Rejected)
    assert base64.b64decode(record.original_b64) == raw
    assert (record.source_topic, record.source_partition, record.source_offset) == ("applications", 2, 41)


def test_topology_is_co_partitioned_and_keys_match():
    assert len({BY_NAME[name].partitions for name in CO_PARTITIONED}) == 1
    assert len({t.name for t in TOPICS}) == 6
    # Every input of a budget year shares one key, whatever its month or district.
    assert command_key("zhytomyr.triplets", "2023-04") == "zhytomyr.triplets:2023"
    assert command_key("zhytomyr.triplets", 2023) == command_key("zhytomyr.triplets", "2023-12")
    assert command_key("p.x", "2023-04", "north") == command_key("p.x", "2023-11", "south") == "p.x:2023"


def test_synthetic_people_have_valid_identifiers():
    from schemas.identifiers import normalise_identifier, normalise_ua_iban

    for seed in range(50):
        assert normalise_identifier("rnokpp", rnokpp(seed)) == rnokpp(seed)
        assert normalise_ua_iban(ua_iban(seed)) == ua_iban(seed)
