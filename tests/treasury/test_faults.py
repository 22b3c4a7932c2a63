"""Registers that stay complete and correct after faults (issue 12, item 4), broker-free.

Torn spool lines, failed exports, a new ledger generation, formula-like names, execution dates
from the payment schedule, and the follower's own lag.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from dopomoga.treasury import export
from dopomoga.treasury.reconcile import reconcile_dir
from dopomoga.treasury.registers import ExportError
from dopomoga.treasury.schedule import annex7_execution_date, execution_date, neutralise_cell, restore_cell
from services.treasury import consumer
from services.treasury.consumer import Follower, Spool, run
from tests.treasury.fakes import PERIOD, PROGRAM, payout, payouts


def _feed(follower: Follower, decisions) -> list:
    for decision in decisions:
        follower.handle(decision.model_dump_json().encode())
    return follower.flush()


def test_a_torn_spool_line_is_dropped_not_a_crash_loop(tmp_path):
    decisions = payouts(5)
    _feed(Follower(tmp_path / "out", Spool(tmp_path / "spool")), decisions)
    path = tmp_path / "spool" / PROGRAM / f"{PERIOD}.jsonl"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + text.splitlines()[0][:57], encoding="utf-8")  # kill -9 mid-append
    spool = Spool(tmp_path / "spool")
    assert len(spool.decisions(PROGRAM, PERIOD)) == 5 and spool.torn == 1
    assert path.read_text(encoding="utf-8") == text  # repaired on disk
    follower = Follower(tmp_path / "out", spool)
    written = _feed(follower, [payout(6)])
    assert json.loads((written[0] / "control.json").read_text())["count"] == 6


def test_a_failed_export_is_retried_not_committed_away(tmp_path, monkeypatch):
    real = export.export_registers
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ExportError("disk said no")
        return real(*args, **kwargs)

    monkeypatch.setattr(consumer, "export_registers", flaky)
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    assert _feed(follower, payouts(3)) == []
    assert follower.failed == {(PROGRAM, PERIOD)}
    assert REGISTRY.get_sample_value("dopomoga_treasury_exports_pending") == 1
    # the process restarts (offsets were committed): the pending month is still retried
    again = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    assert again.failed == {(PROGRAM, PERIOD)}
    written = again.flush()
    assert len(written) == 1 and again.failed == set()
    assert REGISTRY.get_sample_value("dopomoga_treasury_exports_pending") == 0


def test_the_follower_retries_while_idle(tmp_path, monkeypatch):
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    follower.failed.add((PROGRAM, PERIOD))
    follower.spool.add(payout(1))
    follower.last_retry -= consumer.RETRY_EVERY_S
    assert follower.retry_due()

    class Idle:
        def __init__(self, topic, **config):
            assert config["session_timeout_ms"] <= 10_000  # a killed follower's partitions move quickly

        def poll(self, timeout_ms, max_records):
            return {}

        def assignment(self):
            return [SimpleNamespace(topic="payout-decisions", partition=3)]

        def highwater(self, tp):
            return 120

        def position(self, tp):
            return 100

        def commit(self):
            pass

        def close(self):
            pass

    run("127.0.0.1:1", follower, idle_timeout_s=0.05, poll_ms=1, consumer_factory=Idle)
    assert follower.failed == set()
    assert (tmp_path / "out").exists()
    lag = REGISTRY.get_sample_value("dopomoga_consumer_lag",
                                    {"service": "treasury", "topic": "payout-decisions", "partition": "3"})
    assert lag == 20


def test_a_new_ledger_generation_never_merges_with_the_old_spool(tmp_path):
    out, root = tmp_path / "registers", tmp_path / "spool"
    first = Follower(out, Spool(root, generation="run1-dopomoga-treasury"))
    _feed(first, payouts(10))
    second = Follower(out, Spool(root, generation="run2-dopomoga-treasury"))
    written = _feed(second, payouts(4))
    summary = json.loads((written[0] / "control.json").read_text())
    assert summary["count"] == 4  # not 10 (the previous run's decisions are not merged in)
    assert (tmp_path / "spool.archive" / "run1-dopomoga-treasury" / PROGRAM).exists()
    assert (tmp_path / "registers.archive" / "run1-dopomoga-treasury").exists()
    report = reconcile_dir(written[0], payouts(4))
    assert report.ok, report.differences
    # the same generation again (a restart) keeps its spool
    third = Follower(out, Spool(root, generation="run2-dopomoga-treasury"))
    assert len(third.spool.decisions(PROGRAM, PERIOD)) == 4


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+380501112233", "-1+1", "@SUM(A1)", "\tТаб"])
def test_formula_like_names_are_neutralised_in_every_csv(tmp_path, name):
    decisions = [payout(n, name=name, channel=channel) for n, channel in ((1, "bank"), (2, "post"), (3, "my_transfer"))]
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"))
    written = _feed(follower, decisions)
    csvs = list(written[0].glob("*.csv"))
    assert len(csvs) == 6
    for path in csvs:
        text = path.read_bytes().decode("utf-8" if "utf-8" in path.name else "cp1251")
        for line in text.splitlines()[1:]:
            for cell in line.split(";"):
                assert not cell.strip('"').startswith(("=", "+", "-", "@", "\t")), (path.name, cell)
    assert reconcile_dir(written[0], decisions).ok  # read back, the names are the ledger's


def test_cells_round_trip():
    for value in ["=1", "+1", "-1", "@a", "Олена", "'=x", ""]:
        assert restore_cell(neutralise_cell(value)) == value


def test_execution_date_is_the_next_banking_day_not_the_event_time(tmp_path):
    # a May payment decided (event time) on 2023-01-31: executed when May starts, on a banking day
    assert execution_date(dt.date(2023, 1, 31), "2023-05") == dt.date(2023, 5, 1)
    assert execution_date(dt.date(2023, 6, 2), "2023-06") == dt.date(2023, 6, 5)  # Friday -> Monday
    assert execution_date(dt.date(2023, 7, 31), "2023-07") == dt.date(2023, 8, 1)
    early = payout(1, channel="bank", period="2023-05")
    early = early.model_copy(update={"occurred_at": dt.datetime(2023, 1, 31, 12, tzinfo=dt.UTC)})
    written = _feed(Follower(tmp_path / "out", Spool(tmp_path / "spool")), [early])
    control = json.loads((written[0] / "bank.control.json").read_text())
    assert control["execution_date"] == "2023-05-01"
    assert b"<ReqdExctnDt>2023-05-01</ReqdExctnDt>" in (written[0] / "bank.pain.001.xml").read_bytes()


def test_annex7_pays_two_days_before_the_contract_not_before_consent():
    decided = dt.date(2021, 3, 1)
    assert annex7_execution_date(decided, dt.date(2021, 3, 12)) == dt.date(2021, 3, 10)  # Fri 12 -> Wed 10
    assert annex7_execution_date(decided, dt.date(2021, 3, 15)) == dt.date(2021, 3, 12)  # Mon 15 -> Sat -> Fri 12
    assert annex7_execution_date(decided, dt.date(2021, 3, 12), dt.date(2021, 3, 11)) == dt.date(2021, 3, 11)
    assert annex7_execution_date(dt.date(2021, 3, 11), dt.date(2021, 3, 12)) == dt.date(2021, 3, 12)  # late


def test_a_ledger_export_of_annex7_pays_two_days_before_the_contract(tmp_path):
    from tests.treasury.fakes import FakeLedger

    decisions = [payout(n, channel="bank", period="2021-03") for n in (1, 2)]
    decisions = [d.model_copy(update={"occurred_at": dt.datetime(2021, 3, 1, 10, tzinfo=dt.UTC)}) for d in decisions]
    contracts = {decisions[0].application_id: "2021-03-19", decisions[1].application_id: "2021-03-12"}

    class Annex7Ledger(FakeLedger):
        def entitlement(self, application_id):
            facts = {"sale_contract_date": contracts[application_id], "written_consent_date": "2021-03-02"}
            return SimpleNamespace(application=SimpleNamespace(facts=facts))

    result = export.export_period(Annex7Ledger(decisions), decisions[0].program_id, "2021-03", tmp_path / "out")
    control = json.loads((result.directory / "bank.control.json").read_text())
    assert control["execution_date"] == "2021-03-10"  # the earlier contract (Fri 12th) minus two days
    plain = export.export_period(FakeLedger(decisions), decisions[0].program_id, "2021-03", tmp_path / "plain")
    assert json.loads((plain.directory / "bank.control.json").read_text())["execution_date"] == "2021-03-02"


def test_an_export_failure_is_logged_without_the_validators_quoted_value(tmp_path, monkeypatch):
    logged = []

    class Log:
        def error(self, event, **fields):
            logged.append((event, fields))

        def info(self, *args, **kwargs):
            pass

    def invalid(*args, **kwargs):
        raise ExportError("the pain.001 document does not validate against pain.001.001.03.xsd: "
                          "value 'Петренко Олена Іванівна UA213223130000026007233566001' is too long")

    monkeypatch.setattr(consumer, "export_registers", invalid)
    follower = Follower(tmp_path / "out", Spool(tmp_path / "spool"), log=Log())
    _feed(follower, payouts(2))
    assert logged and "Петренко" not in str(logged) and "UA2132" not in str(logged)
    assert "does not validate" in logged[0][1]["reason"]
