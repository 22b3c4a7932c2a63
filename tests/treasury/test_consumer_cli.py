"""The Kafka follower's core (no broker) and the `dopomoga treasury` commands."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from dopomoga.treasury import export
from dopomoga.treasury.debtors import debtor_for
from dopomoga.treasury.registers import ExportError
from schemas.events import Rejected
from services.treasury import cli
from services.treasury.cli import app
from services.treasury.consumer import Follower, Spool, run
from tests.treasury.fakes import PERIOD, PROGRAM, FakeLedger, payout, payouts


def test_follower_writes_registers_from_final_decisions_only(tmp_path):
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    decisions = payouts(30)
    for decision in decisions:
        follower.handle(decision.model_dump_json().encode())
    follower.handle(payout(99, final=False).model_dump_json().encode())
    follower.handle(b"{not json")
    follower.handle(None)
    written = follower.flush()
    assert len(written) == 1 and follower.rejected == 2
    dead = follower.take_dead_letters()
    assert [(r.service, r.source_topic, r.reason_code) for r in dead] == [
        ("treasury", "payout-decisions", "invalid_json"),
        ("treasury", "payout-decisions", "empty_message"),
    ]
    assert follower.take_dead_letters() == []
    summary = json.loads((written[0] / "control.json").read_text(encoding="utf-8"))
    assert summary["count"] == 30 and summary["sum_kop"] == sum(p.payout_kop for p in decisions)
    before = {p.name: p.read_bytes() for p in written[0].iterdir()}
    # A restarted follower replaying the topic re-exports the month (its export may have been cut
    # short by the crash that caused the replay) to byte-identical files; the spool dedupes.
    again = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    for decision in decisions:
        again.handle(decision.model_dump_json().encode())
    assert again.flush() == written
    assert len(again.spool.decisions(PROGRAM, PERIOD)) == 30
    assert {p.name: p.read_bytes() for p in written[0].iterdir()} == before


def test_the_spool_path_checks_control_totals_too_and_writes_nothing_when_they_differ(tmp_path, monkeypatch):
    real = export.build_registers

    def dropping_one(payouts, *args, **kwargs):  # a defect that loses a payment
        return real(list(payouts)[1:], *args, **kwargs)

    monkeypatch.setattr(export, "build_registers", dropping_one)
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    for decision in payouts(10):
        follower.handle(decision.model_dump_json().encode())
    assert follower.flush() == []
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="control totals"):
        export.export_registers(payouts(10), PROGRAM, PERIOD, tmp_path / "out", debtor=debtor_for(PROGRAM, follower.debtors))


def test_run_publishes_an_invalid_event_to_dead_letter_before_committing(tmp_path):
    good = payouts(3)
    records = [SimpleNamespace(value=d.model_dump_json().encode(), topic="payout-decisions", partition=2,
                               offset=i, timestamp=1_700_000_000_000) for i, d in enumerate(good)]
    records.append(SimpleNamespace(value=b'{"event_type": "PayoutDecided"}', topic="payout-decisions", partition=2,
                                   offset=3, timestamp=1_700_000_000_000))
    log: list[str] = []

    class FakeConsumer:
        def __init__(self, topic, **config):
            self.batches = [{("payout-decisions", 2): records}]

        def poll(self, timeout_ms, max_records):
            return self.batches.pop(0) if self.batches else {}

        def commit(self):
            log.append("commit")

        def close(self):
            pass

    class FakeProducer:
        def __init__(self, **config):
            assert config["acks"] == "all"

        def send(self, topic, key, value):
            log.append(("send", topic, key, Rejected.model_validate_json(value)))

        def flush(self):
            log.append("flush")

        def close(self):
            pass

    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    seen = run("127.0.0.1:1", follower, idle_timeout_s=0.05, poll_ms=1, consumer_factory=FakeConsumer,
               producer_factory=FakeProducer)
    assert seen == 4 and follower.rejected == 1
    (_, topic, key, rejected), *rest = log
    assert (topic, key, rest) == ("dead-letter", b"payout-decisions", ["flush", "commit"])
    assert (rejected.source_partition, rejected.source_offset, rejected.reason_code) == (2, 3, "invalid_event")
    assert rejected.occurred_at.timestamp() == 1_700_000_000
    assert (tmp_path / "out" / PROGRAM / PERIOD / "control.json").exists()


def test_run_polls_commits_and_stops_when_idle(tmp_path):
    decisions = payouts(5)
    records = [SimpleNamespace(value=d.model_dump_json().encode()) for d in decisions]

    class FakeConsumer:
        def __init__(self, topic, **config):
            assert topic == "payout-decisions" and config["enable_auto_commit"] is False
            self.batches = [{("payout-decisions", 0): records}]
            self.commits = 0
            FakeConsumer.instance = self

        def poll(self, timeout_ms, max_records):
            return self.batches.pop(0) if self.batches else {}

        def commit(self):
            self.commits += 1

        def close(self):
            pass

    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"), ledger=FakeLedger(decisions))
    seen = run("127.0.0.1:1", follower, idle_timeout_s=0.05, poll_ms=1, consumer_factory=FakeConsumer)
    assert seen == 5 and FakeConsumer.instance.commits == 1
    assert (tmp_path / "out" / PROGRAM / PERIOD / "bank.pain.001.xml").exists()


def test_cli_export_and_reconcile(tmp_path, monkeypatch):
    ledger = FakeLedger(payouts(40))
    monkeypatch.setattr(cli, "open_ledger", lambda url=None, catalog=None, app_id=None: ledger)
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--program", PROGRAM, "--period", PERIOD, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "control totals equal" in result.output
    directory = tmp_path / PROGRAM / PERIOD
    again = runner.invoke(app, ["export", "--program", PROGRAM, "--period", PERIOD, "--out", str(tmp_path)])
    assert "byte-identical" in again.output
    ok = runner.invoke(app, ["reconcile", str(directory), "--json"])
    assert ok.exit_code == 0, ok.output
    ledger.decisions.append(payout(777, channel="post"))
    bad = runner.invoke(app, ["reconcile", str(directory)])
    assert bad.exit_code == 1 and "difference" in bad.output
    bad = runner.invoke(app, ["reconcile", str(directory), "--json"])
    kinds = [d["kind"] for d in json.loads(bad.output)["differences"]]
    assert bad.exit_code == 1 and "missing_channel" not in kinds and "missing_in_register" in kinds
    wrong = runner.invoke(app, ["export", "--program", "no.such", "--period", PERIOD, "--out", str(tmp_path)])
    assert wrong.exit_code == 2 and "unknown program" in wrong.output
    wrong = runner.invoke(app, ["export", "--program", PROGRAM, "--period", "2023-13", "--out", str(tmp_path)])
    assert wrong.exit_code == 2
