"""One declared table of services (``SERVICES`` beside ``TOPICS``) feeds the settings, the metrics
ports, the supervisor's environments and what `dopomoga up` starts: adding a service is one entry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from services.devstack.supervisor import Supervisor, add_services, default_metrics_ports, service_env
from services.platform.config import settings
from services.platform.topology import BY_NAME, PIPELINE, SERVICES

ROOT = Path(__file__).resolve().parents[2]


def test_every_service_runs_as_a_module_of_its_own_package_and_reads_and_writes_declared_topics():
    assert [s.name for s in SERVICES] == ["eligibility", "calculation", "budget", "gateway", "treasury"]
    for spec in SERVICES:
        assert spec.module == f"services.{spec.name}"
        assert importlib.util.find_spec(f"{spec.module}.__main__") is not None, spec.module
        assert set(spec.consumes) | set(spec.produces) <= set(BY_NAME), spec.name
        assert spec.group == f"dopomoga-{spec.name}"
    assert len({s.metrics_port for s in SERVICES}) == len(SERVICES)
    assert PIPELINE == ("eligibility", "calculation", "budget")


def test_the_table_feeds_settings_metrics_ports_and_the_supervisor(monkeypatch, tmp_path):
    for spec in SERVICES:
        monkeypatch.delenv(f"DOPOMOGA_METRICS_PORT_{spec.name.upper()}", raising=False)
    monkeypatch.setenv("DOPOMOGA_APP_PREFIX", "t1-")
    assert {s.name: settings(s.name).metrics_port for s in SERVICES} == default_metrics_ports() == {
        "eligibility": 9101, "calculation": 9102, "budget": 9103, "gateway": 9104, "treasury": 9105}
    assert settings("budget").app_id == "t1-dopomoga-budget"
    monkeypatch.setenv("DOPOMOGA_METRICS_PORT_BUDGET", "0")
    assert settings("budget").metrics_port is None
    envs = service_env("kafka://127.0.0.1:1", tmp_path, metrics={"budget": 9999})
    assert set(envs) == {s.name for s in SERVICES}
    assert envs["budget"]["DOPOMOGA_METRICS_PORT_BUDGET"] == "9999" and envs["gateway"]["DOPOMOGA_METRICS_PORT_GATEWAY"] == "0"
    supervisor = add_services(Supervisor(), [s.name for s in SERVICES], envs, tmp_path)
    assert [(p.name, p.module, p.log_path) for p in supervisor.services] == [
        (s.name, s.module, tmp_path / f"{s.name}.log") for s in SERVICES]
