"""The grant history on SQLite and PostgreSQL (issue 15, items 2-3): the same contract on every
store, and on PostgreSQL a per-person check that is atomic across replicas."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from dopomoga.rules.engine import Engine
from dopomoga.rules.history import Grant
from services.devstack.synthetic import SyntheticRegistry
from services.eligibility.adapters.history import SqliteGrantHistory
from services.eligibility.adapters.sql_history import SqlGrantHistory

PROGRAM = "zhytomyr.centenarians"


def grant(app_id: str, key: str = "rnokpp:1", on: str = "2023-04-03") -> Grant:
    return Grant(keys=(key, "household:h1"), program_id=PROGRAM, application_id=app_id,
                 on=dt.date.fromisoformat(on), period=on[:7])


@pytest.fixture(params=["sqlite-file", "sql"])
def open_history(request, db_file_url, tmp_path):
    """A factory opening the same store again (as a restarted service would)."""
    if request.param == "sqlite-file":
        if not db_file_url.startswith("sqlite"):
            pytest.skip("the SQLite adapter has no PostgreSQL variant")
        return lambda: SqliteGrantHistory(tmp_path / "h.sqlite")
    return lambda: SqlGrantHistory(db_file_url)


def test_the_history_counts_records_confirms_and_forgets(open_history):
    history = open_history()
    history.record(grant("a1"))
    history.record(grant("a1"))  # replay: idempotent
    history.record(grant("a2", on="2020-01-01"))

    def count(keys=("rnokpp:1",), start=None, end=None, period=None, exclude="x"):
        return history.count(list(keys), [PROGRAM], start, end, period, exclude)

    assert count() == 2
    assert count(exclude="a1") == 1
    assert count(start=dt.date(2021, 1, 1)) == 1
    assert count(end=dt.date(2021, 1, 1)) == 1
    assert count(period="2020-01") == 1
    assert count(keys=["household:h1", "rnokpp:1"]) == 2  # one grant under two keys counts once
    history.confirm("a1")
    history.record(grant("a1"))  # a provisional replay does not downgrade a final grant
    assert history.status("a1") == "final"
    history.forget("a2")
    history.remember_application("a1", "fp1", "applications/0/1", b'{"decided": 1}')
    history.remember_application("a1", "fp2", "applications/0/9", b'{"decided": 2}')  # the first stays
    history.commit()
    history.close()
    reopened = open_history()
    assert reopened.count(["rnokpp:1"], [PROGRAM], None, None, None, "x") == 1
    assert reopened.known_application("a1") == ("fp1", "applications/0/1")
    assert reopened.known_application("zz") is None
    # a replay re-emits the first decision's bytes, whatever the history says by then (deterministic)
    assert reopened.decision_of("a1") == b'{"decided": 1}' and reopened.decision_of("zz") is None
    reopened.confirm("a9", grant("a9", key="rnokpp:9"))  # never seen provisionally: recorded final
    assert reopened.status("a9") == "final"
    reopened.record(grant("a7", key="rnokpp:7"))
    reopened.confirm("a7", grant("a7", key="rnokpp:8"))  # paid someone else: only the paid person is kept
    assert reopened.count(["rnokpp:7"], [PROGRAM], None, None, None, "x") == 0
    assert reopened.count(["rnokpp:8"], [PROGRAM], None, None, None, "x") == 1
    reopened.close()


def test_the_engine_decides_the_same_on_every_store(catalog, db_file_url):
    apps = list(SyntheticRegistry(catalog, seed=7).generate(120))
    history = SqlGrantHistory(db_file_url)
    memory, sql = Engine(catalog), Engine(catalog, history)
    for application in apps:
        assert (memory.check_eligibility_encoded(application, record=True).json
                == sql.check_eligibility_encoded(application, record=True).json)
    history.close()


def test_two_replicas_never_both_grant_one_person_on_postgresql(pg_url):
    """Replica A counts the person (0), records a provisional grant and holds its batch open;
    replica B's count for the same person waits for A's commit and then sees the grant."""
    first, second = SqlGrantHistory(pg_url), SqlGrantHistory(pg_url)
    assert first.count(["rnokpp:1"], [PROGRAM], None, None, None, "a1") == 0
    first.record(grant("a1"))
    seen: list[int] = []
    waited: list[float] = []

    def replica_b() -> None:
        started = time.monotonic()
        seen.append(second.count(["rnokpp:1"], [PROGRAM], None, None, None, "b1"))
        waited.append(time.monotonic() - started)
        second.commit()

    thread = threading.Thread(target=replica_b)
    thread.start()
    time.sleep(1.0)  # B is blocked on the person's lock meanwhile
    assert thread.is_alive()
    first.commit()
    thread.join(10)
    assert seen == [1] and waited[0] >= 0.9
    # another person is not held up
    first.count(["rnokpp:1"], [PROGRAM], None, None, None, "a2")
    started = time.monotonic()
    assert second.count(["rnokpp:2"], [PROGRAM], None, None, None, "b2") == 0
    assert time.monotonic() - started < 0.5
    first.close()
    second.close()


def test_the_history_lives_beside_the_ledger_on_postgresql_unless_told_otherwise(monkeypatch):
    from services.eligibility.adapters.sql_history import history_url

    pg = "postgresql+psycopg://dopomoga@postgres:5432/dopomoga"
    for name in ("DOPOMOGA_HISTORY_DB", "DOPOMOGA_DB", "DOPOMOGA_DB_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert history_url() is None  # no PostgreSQL: the local SQLite file
    monkeypatch.setenv("DOPOMOGA_DB", "sqlite:///var/x.sqlite")
    assert history_url() is None
    monkeypatch.setenv("DOPOMOGA_DB", pg)
    assert history_url() == pg  # compose: the ledger's database, shared by the replicas
    monkeypatch.setenv("DOPOMOGA_HISTORY_DB", "local")
    assert history_url() is None
    monkeypatch.setenv("DOPOMOGA_HISTORY_DB", "postgresql+psycopg://h@db/h")
    assert history_url() == "postgresql+psycopg://h@db/h"
