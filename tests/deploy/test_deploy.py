"""Deployment files: compose structure, Kafka KRaft x3 with replication 3, Prometheus, Grafana.

The compose file is validated with jsonschema against the Compose Specification's own JSON
Schema (``compose_spec.json``, vendored from the ``docker-compose`` 1.29.2 package; see
``COMPOSE_SPEC.md``), and by ``docker compose config`` in ``test_compose.py`` when a compose CLI
is installed. The fixes of issue 15 (volumes, secrets, health checks, migrate job) are tested in
``test_compose.py`` and ``test_image.py``; the alert rules in ``test_prometheus.py``.
"""

from __future__ import annotations

import json
import re

import jsonschema
import yaml

from tests.deploy.support import HERE, ROOT, defined_metric_samples, load_compose

compose = load_compose


def test_compose_validates_against_the_compose_specification():
    schema = json.loads((HERE / "compose_spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    jsonschema.Draft201909Validator.check_schema(schema)
    assert [e.message for e in validator.iter_errors(compose())] == []
    broken = compose()
    broken["services"]["gateway"]["enviroment"] = {}  # a typo must fail
    assert list(validator.iter_errors(broken))


def test_kafka_is_kraft_with_three_voters_and_replication_three():
    services = compose()["services"]
    brokers = [s for name, s in services.items() if re.fullmatch(r"kafka-\d+", name)]
    assert len(brokers) == 3
    ids = set()
    for broker in brokers:
        env = broker["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        ids.add(env["KAFKA_NODE_ID"])
    assert ids == {"1", "2", "3"}
    assert services["topics"]["command"][-1] == "3"  # deploy/create_topics.py: replication 3
    assert (ROOT / "deploy" / "create_topics.py").exists()


def test_services_share_one_image_and_the_support_stack_is_there():
    services = compose()["services"]
    for name in ("eligibility", "calculation", "budget", "gateway", "treasury", "topics"):
        assert services[name]["build"] == "." and services[name]["image"] == "dopomoga:latest", name
    assert {"postgres", "prometheus", "grafana"} <= set(services)
    assert "postgresql" in services["budget"]["environment"]["DOPOMOGA_DB"]
    assert (ROOT / "Dockerfile").read_text(encoding="utf-8").startswith("# One image")
    for volume in services["grafana"]["volumes"] + services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).exists(), source


def test_prometheus_scrapes_every_service_on_its_metrics_port():
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    ports = {job["job_name"]: job["dns_sd_configs"][0]["port"] for job in config["scrape_configs"] if "dns_sd_configs" in job}
    services = compose()["services"]
    for name, port in ports.items():
        env = services[name]["environment"]
        declared = env.get(f"DOPOMOGA_METRICS_PORT_{name.upper()}")
        assert declared == str(port) or (name == "gateway" and f"{port}:{port}" in services[name]["ports"]), name
    assert set(ports) == {"eligibility", "calculation", "budget", "gateway", "treasury"}


def test_every_metric_the_dashboard_queries_is_defined():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboard.json").read_text(encoding="utf-8"))
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(dopomoga_[a-z_]+)\b", target["expr"])
    }
    defined = defined_metric_samples()
    assert queried, "the dashboard queries no metric"
    assert queried <= defined, f"not defined: {sorted(queried - defined)}"
    required = {"dopomoga_events_consumed_total", "dopomoga_events_produced_total",
                "dopomoga_events_dead_lettered_total", "dopomoga_decisions_total",
                "dopomoga_decision_latency_seconds_bucket", "dopomoga_budget_utilisation_ratio",
                "dopomoga_budget_coefficient", "dopomoga_consumer_lag"}
    assert required <= queried
