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


def _batches(apps, size):
    return [apps[i:i + size] for i in range(0, len(apps), size)]


def test_a_prefetched_batch_decides_exactly_as_one_query_per_count(catalog, db_file_url):
    """The service's path (``prefetch`` per batch, then counts from memory) gives the same bytes as
    the in-memory engine, also for same-person repeats inside one batch and across batches."""
    from dopomoga.rules.windows import counted_keys

    apps = list(SyntheticRegistry(catalog, seed=11).generate(160))
    apps += [a.model_copy(update={"application_id": a.application_id + "-again"}) for a in apps[:40]]
    # ^ the same people again under other ids: limits must count the earlier grants
    history = SqlGrantHistory(db_file_url)
    memory, sql = Engine(catalog), Engine(catalog, history)
    for batch in _batches(apps, 37):
        keys = [k for a in batch for k in counted_keys(catalog.programs[a.program_id], a)]
        history.prefetch([a.application_id for a in batch], keys)
        for application in batch:
            assert (memory.check_eligibility_encoded(application, record=True).json
                    == sql.check_eligibility_encoded(application, record=True).json)
        history.commit()
    history.close()


def test_a_batch_costs_two_round_trips_before_its_writes_on_postgresql(catalog, pg_url):
    """Eligibility's cost on PostgreSQL was three round trips per application; now a batch of 50 is
    locked and read in two statements, decided from memory, and written in two at commit."""
    from sqlalchemy import event

    from dopomoga.rules.windows import counted_keys

    apps = list(SyntheticRegistry(catalog, seed=5).generate(50))
    history = SqlGrantHistory(pg_url)
    engine = Engine(catalog, history)
    statements: list[str] = []
    event.listen(history.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    history.prefetch([a.application_id for a in apps],
                     [k for a in apps for k in counted_keys(catalog.programs[a.program_id], a)])
    for application in apps:
        assert history.known_application(application.application_id) is None
        engine.check_eligibility_encoded(application, record=True)
        history.remember_application(application.application_id, "fp", "applications/0/0")
    assert len(statements) == 2, statements  # the subjects' locks, then one read
    history.commit()
    assert len(statements) == 4  # the grants, the remembered applications (then COMMIT)
    history.close()


def test_two_replicas_prefetching_one_person_never_both_grant_and_never_deadlock(pg_url):
    """Replica A's batch locks persons 1 and 2 and records person 1's grant; replica B's batch names
    them in the other order: it waits for A's commit (no deadlock: locks are taken in one sorted
    statement), then counts A's grant."""
    first, second = SqlGrantHistory(pg_url), SqlGrantHistory(pg_url)
    first.prefetch(["a1"], ["rnokpp:1", "rnokpp:2", "household:h1"])
    assert first.count(["rnokpp:1"], [PROGRAM], None, None, None, "a1") == 0
    first.record(grant("a1"))
    seen: list[int] = []
    errors: list[BaseException] = []

    def replica_b() -> None:
        try:
            second.prefetch(["b1"], ["rnokpp:2", "household:h1", "rnokpp:1"])
            seen.append(second.count(["rnokpp:1"], [PROGRAM], None, None, None, "b1"))
            second.commit()
        except BaseException as exc:  # a deadlock would surface here
            errors.append(exc)

    thread = threading.Thread(target=replica_b)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # B waits on the subjects' locks
    first.prefetch(["a2"], ["rnokpp:3"])  # A's batch goes on meanwhile
    first.commit()
    thread.join(10)
    assert errors == [] and seen == [1]
    first.close()
    second.close()


def test_a_batch_of_confirmations_leaves_the_history_as_one_by_one(db_file_url, tmp_path):
    """``confirm_many`` (the feedback path's batch) against ``confirm`` one by one on another store:
    the same rows and statuses - a provisional grant made final, a grant recorded for another person
    replaced by the paid person's, a grant never seen recorded final, a final one left final."""
    from sqlalchemy import select

    from services.eligibility.adapters.sql_history import grants

    def prepared(url: str) -> SqlGrantHistory:
        history = SqlGrantHistory(url)
        history.record(grant("p1", key="rnokpp:1"))
        history.record(grant("p2", key="rnokpp:2"))  # recorded for person 2, paid to person 3
        history.record(grant("p4", key="rnokpp:4"), status="final")
        history.commit()
        return history

    items = [("p1", grant("p1", key="rnokpp:1")), ("p2", grant("p2", key="rnokpp:3")),
             ("p3", grant("p3", key="rnokpp:5")), ("p4", grant("p4", key="rnokpp:4")), ("p5", None)]
    batched = prepared(db_file_url)
    batched.confirm_many(items)
    batched.commit()
    one_by_one = prepared(f"sqlite:///{tmp_path / 'one-by-one.sqlite'}")
    for application_id, fallback in items:
        one_by_one.confirm(application_id, fallback)
    one_by_one.commit()

    def rows(history):
        return sorted(tuple(r) for r in history._conn.execute(
            select(grants.c.subject_key, grants.c.application_id, grants.c.status)))

    assert rows(batched) == rows(one_by_one)
    assert ("rnokpp:3", "p2", "final") in rows(batched) and not any(r[0] == "rnokpp:2" for r in rows(batched))
    assert ("rnokpp:5", "p3", "final") in rows(batched)
    batched.close()
    one_by_one.close()
