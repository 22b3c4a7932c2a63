"""Streaming tests: one embedded Tansu broker per session, the services as real subprocesses.

Every run uses unique Faust app ids (a fresh consumer group and fresh SQLite state), and
every test its own applications (unique ids, synthetic people), so tests share the broker
and the running services without seeing each other's results.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from services.devstack.broker import start_broker
from services.devstack.supervisor import Supervisor, add_services, service_env
from services.platform.topology import PIPELINE, create_topics
from tests.gateway.conftest import make_client, producer  # noqa: F401  (the gateway's fixtures, for the boundary tables)

SERVICES = PIPELINE  # eligibility, calculation, budget


def ledger_available() -> bool:
    return (Path(__file__).resolve().parents[2] / "dopomoga" / "budget" / "ledger.py").exists()


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    logs = tmp_path_factory.mktemp("broker")
    embedded = start_broker(log_path=logs / "broker.log")
    create_topics(embedded.bootstrap)
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def run_id() -> str:
    return f"t{os.getpid()}-{uuid.uuid4().hex[:6]}-"


@pytest.fixture(scope="session")
def stack(broker, run_id, tmp_path_factory):
    """The three services, supervised (restarted if they die), for the whole session."""
    var = tmp_path_factory.mktemp("var")
    envs = service_env(broker.url, var, prefix=run_id, metrics={})
    supervisor = Supervisor(backoff_s=0.5)
    names = SERVICES if ledger_available() else SERVICES[:2]
    add_services(supervisor, names, envs, var)
    supervisor.start()
    supervisor.var = var  # type: ignore[attr-defined]
    yield supervisor
    supervisor.stop()
    for service in supervisor.services:
        assert not service.alive()


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture
def eligibility(tmp_path, monkeypatch):
    """The eligibility service's module with its state in a temporary directory (no broker needed):
    its handlers run as the stream frame runs them (``module.service._handle(module.decide, ...)``)."""
    import importlib
    import sys

    monkeypatch.setenv("DOPOMOGA_VAR", str(tmp_path))
    monkeypatch.setenv("DOPOMOGA_APP_PREFIX", f"unit-{time.monotonic_ns()}-")
    monkeypatch.setenv("DOPOMOGA_METRICS_PORT_ELIGIBILITY", "0")
    sys.modules.pop("services.eligibility.app", None)
    module = importlib.import_module("services.eligibility.app")
    yield module
    module.history.close()
    sys.modules.pop("services.eligibility.app", None)
