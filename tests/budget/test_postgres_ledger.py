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
