"""The ledger on PostgreSQL with several processes (issue 15, item 2).

Before the advisory lock, four processes opening a fresh ledger at once failed in 2 of 3
trials (``UniqueViolation`` on ``alembic_version`` / the tables, concurrent migrations)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import create_database, drop_database, pg_server_url

ROOT = Path(__file__).resolve().parents[2]
OPEN = "import sys; from dopomoga.budget.store import Store; Store(sys.argv[1]).upgrade()"


@pytest.mark.parametrize("trial", range(3))
def test_four_processes_opening_a_fresh_ledger_at_once_all_succeed(trial):
    server = pg_server_url()
    url = create_database(server, "mig")
    try:
        procs = [subprocess.Popen([sys.executable, "-c", OPEN, url], cwd=ROOT, stderr=subprocess.PIPE) for _ in range(4)]
        failures = [p.stderr.read().decode()[-400:] for p in procs if p.wait(120) != 0]
        assert not failures, failures
    finally:
        drop_database(server, url)


WRITER = Path(__file__).with_name("ledger_writer.py")


def _writers(url: str, years: list[int], n: int) -> list[dict]:
    import json

    procs = [subprocess.Popen([sys.executable, str(WRITER), url, str(year), str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for year in years]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("years", [[2023, 2024, 2025, 2026], [2023, 2023, 2023, 2023]], ids=["four-budgets", "one-budget"])
def test_four_writers_submit_without_a_single_failure(years):
    """Before per-budget locks and the sequence: 26 of 400 submissions failed after 8 retries
    (four writers on four budgets, 2026-11-29); writers on one budget now queue on its lock."""
    from sqlalchemy import create_engine, text

    server = pg_server_url()
    url = create_database(server, "wr")
    try:
        subprocess.run([sys.executable, "-c", OPEN, url], cwd=ROOT, check=True)
        results = _writers(url, years, 60)
        assert [r["failed"] for r in results] == [0, 0, 0, 0], results
        engine = create_engine(url)
        with engine.connect() as conn:
            claims = conn.execute(text("SELECT count(*) FROM budget_claims")).scalar()
            seqs = conn.execute(text("SELECT count(DISTINCT seq), count(*) FROM budget_inputs")).one()
        engine.dispose()
        distinct_claims = 60 * len(set(years))  # the one-budget writers submit the same ids: replays
        assert claims == distinct_claims and seqs[0] == seqs[1]
    finally:
        drop_database(server, url)


def test_the_budget_scopes_an_input_locks():
    import datetime as dt

    from dopomoga.budget.store import lock_keys
    from tests.budget.conftest import allocation, close

    at = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    assert lock_keys(allocation("zhytomyr.centenarians", 2023, 100)) == {"zhytomyr:2023", "zhytomyr:2022"}
    assert lock_keys(close("zhytomyr.centenarians", "2023-05", at=at)) == {"zhytomyr:2023"}
    assert lock_keys(close("zhytomyr.centenarians", "2023-12", at=at)) == {"zhytomyr:2023", "zhytomyr:2024"}
    assert lock_keys(object()) == {"*"}  # unknown: every budget
    from dopomoga.rules.programs import Catalog
    from tests.budget.conftest import entitlement

    catalog = Catalog.load()
    claim = entitlement(catalog, "zhytomyr.centenarians", "lk-1", 100, "2023-12")
    assert lock_keys(claim) == {"zhytomyr:2023", "zhytomyr:2024"}  # a late December claim moves to January
    assert lock_keys(entitlement(catalog, "zhytomyr.centenarians", "lk-2", 100, "2023-06")) == {"zhytomyr:2023"}
    assert lock_keys(allocation("zhytomyr.centenarians", 2023, 100), scope=lambda p: p) == {
        "zhytomyr.centenarians:2023", "zhytomyr.centenarians:2022"}
