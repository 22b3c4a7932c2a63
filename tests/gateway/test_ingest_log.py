"""The gateway's ingest log on SQLite and PostgreSQL (issue 15, item 2): the same claims on every
store, atomic across threads and across gateway replicas sharing one database."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from services.gateway import ingest
from services.gateway.ingest import IngestLog


def test_the_log_claims_publishes_releases_and_refuses_conflicts(db_file_url, monkeypatch):
    log = IngestLog(db_file_url)
    assert log.claim([("a1", "f1"), ("a2", "f2")]) == {"a1": "new", "a2": "new"}
    assert log.claim([("a1", "f1")]) == {"a1": "in_progress"}  # being published by another request
    log.published_many(["a1"])
    assert log.claim([("a1", "f1")]) == {"a1": "duplicate"}
    assert log.claim([("a1", "other")]) == {"a1": "conflict"}
    # all or nothing: a batch with one conflict claims none of its new ids
    assert log.claim([("a3", "f3"), ("a1", "other")]) == {"a3": "new", "a1": "conflict"}
    assert log.seen("a3") is None
    log.release(["a2"])  # its publishing failed: the registry may retry
    assert log.seen("a2") is None and log.claim([("a2", "f2")]) == {"a2": "new"}
    log.published("a2")
    log.release(["a2"])  # a published claim is never released
    assert log.seen("a2") == "f2"
    log.record("a4", "f4")
    log.record("a4", "ignored")
    assert log.seen("a4") == "f4" and log.count() == 3
    assert log.claim_command("e1", "m1") == "new"
    assert log.claim_command("e1", "m1") == "duplicate"
    assert log.claim_command("e1", "m2") == "conflict"
    log.claim([("a5", "f5")])  # left pending by a gateway that died while publishing...
    monkeypatch.setattr(ingest, "STALE_CLAIM_S", -1.0)
    assert log.claim([("a5", "f5-other")]) == {"a5": "new"}  # ...is taken over once stale
    log.close()
    again = IngestLog(db_file_url)
    if db_file_url != "sqlite://":
        assert again.seen("a5") == "f5-other" and again.count() == 3
    again.close()


def test_two_replicas_sharing_the_log_claim_one_id_exactly_once(db_file_url):
    """Twelve threads over two logs on one database (two gateway replicas) claim one id with twelve
    contents at once: exactly one is new, the others conflict or find it in progress."""
    logs = [IngestLog(db_file_url), IngestLog(db_file_url)]
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def claim(n: int) -> None:
        barrier.wait()
        outcomes.append(logs[n % 2].claim([("shared", f"content-{n}")])["shared"])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if db_file_url == "sqlite://":  # two in-memory logs are two databases: each claims once
        assert sorted(outcomes).count("new") == 2
    else:
        assert sorted(outcomes).count("new") == 1 and len(outcomes) == 12
    for log in logs:
        log.close()


def test_parallel_posts_of_one_id_give_one_202_and_eleven_409_on_every_store(catalog, db_file_url):
    from tests.streaming.test_conflicts import parallel_posts_of_one_id

    log = IngestLog(db_file_url)
    statuses, slow = parallel_posts_of_one_id(catalog, log)
    assert sorted(statuses) == [202] + [409] * 11
    assert len(slow.sent) == 1
    log.close()


def test_a_log_written_before_sqlalchemy_is_read_on(tmp_path):
    path = tmp_path / "gateway-ingest.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE ingested (application_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")
    old.execute("CREATE TABLE commands (event_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)")
    old.execute("INSERT INTO ingested VALUES ('old-1', 'f-old')")
    old.execute("INSERT INTO commands VALUES ('e-old', 'm-old')")
    old.commit()
    old.close()
    log = IngestLog(path)
    assert log.claim([("old-1", "f-old")]) == {"old-1": "duplicate"}  # its rows were published ones
    assert log.claim_command("e-old", "m-other") == "conflict"
    log.close()


def test_the_log_lives_on_postgresql_when_the_gateway_or_the_ledger_does(monkeypatch, tmp_path):
    pg = "postgresql+psycopg://dopomoga@postgres:5432/dopomoga"
    for name in ("DOPOMOGA_INGEST_DB", "DOPOMOGA_GATEWAY_DB", "DOPOMOGA_DB", "DOPOMOGA_DB_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert ingest.ingest_url() is None
    monkeypatch.setenv("DOPOMOGA_DB", "sqlite:///var/x.sqlite")
    assert ingest.ingest_url() is None
    monkeypatch.setenv("DOPOMOGA_DB", pg)
    assert ingest.ingest_url() == pg
    monkeypatch.setenv("DOPOMOGA_GATEWAY_DB", "postgresql+psycopg://g@db/g")
    assert ingest.ingest_url() == "postgresql+psycopg://g@db/g"
    monkeypatch.setenv("DOPOMOGA_INGEST_DB", "local")
    assert ingest.ingest_url() is None
    log = ingest.open_ingest_log(tmp_path)
    assert log.engine.url.database == str(tmp_path / "gateway-ingest.sqlite")
    log.close()


@pytest.mark.parametrize("where", [":memory:", "sqlite://"])
def test_an_in_memory_log_is_one_database_for_every_thread(where):
    log = IngestLog(where)
    assert log.claim([("a", "f")]) == {"a": "new"}
    seen: list = []
    thread = threading.Thread(target=lambda: seen.append(log.seen("a")))
    thread.start()
    thread.join()
    assert seen == ["f"]
    log.close()


def test_migrate_creates_the_shared_log_s_tables_before_the_gateways_start(pg_url, monkeypatch, tmp_path):
    from sqlalchemy import create_engine, inspect

    from services.migrate import report

    for name in ("DOPOMOGA_GATEWAY_DB", "DOPOMOGA_DB", "DOPOMOGA_DB_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOPOMOGA_HISTORY_DB", "local")
    monkeypatch.setenv("DOPOMOGA_INGEST_DB", pg_url)
    assert "ingest log tables present" in report(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    engine = create_engine(pg_url)
    assert {"gateway_ingested", "gateway_commands"} <= set(inspect(engine).get_table_names())
    engine.dispose()
