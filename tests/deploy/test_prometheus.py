"""Prometheus: the shipped config and alert rules through promtool, and what the rules query.

``promtool check config`` (the config and the rule files it loads), ``promtool check rules``, and
``promtool test rules tests/deploy/alerts_test.yml`` (every alert fires on its input series and
stays quiet before). The rules may only name metrics the code defines or kafka-exporter exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml

from tests.deploy.support import HERE, ROOT, defined_metric_samples, load_compose

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
UNIT_TESTS = HERE / "alerts_test.yml"
# kafka-exporter (danielqsj/kafka_exporter, the image compose runs): the series the rules use.
KAFKA_EXPORTER = {"kafka_brokers", "kafka_consumergroup_lag", "kafka_consumergroup_lag_sum",
                  "kafka_consumergroup_current_offset", "kafka_consumergroup_current_offset_sum",
                  "kafka_topic_partition_under_replicated_partition"}
PROMQL_WORDS = {"sum", "max", "by", "and", "or", "unless", "on", "absent", "clamp_min", "increase", "changes",
                "rate", "up", "humanizePercentage"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


def rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_config_and_the_rules_it_loads(promtool):
    result = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 rule files found" in result.stdout


def test_promtool_checks_the_rules(promtool):
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_show_every_alert_firing(promtool):
    result = run(promtool, "test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert fired == {rule["alert"] for rule in rules()}, "an alert without a firing unit test"


def test_the_unit_tests_fail_when_a_threshold_is_wrong(promtool, tmp_path):
    """The unit tests bite: the rules with the budget threshold moved to 95 % fail them."""
    (tmp_path / "deploy" / "prometheus").mkdir(parents=True)
    (tmp_path / "tests" / "deploy").mkdir(parents=True)
    text = RULES.read_text(encoding="utf-8")
    assert text.count(">= 0.9\n") == 1
    (tmp_path / "deploy" / "prometheus" / "alerts.yml").write_text(text.replace(">= 0.9\n", ">= 0.95\n"), encoding="utf-8")
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / "deploy" / "alerts_test.yml")
    result = run(promtool, "test", "rules", str(tmp_path / "tests" / "deploy" / "alerts_test.yml"))
    assert result.returncode != 0 and "DopomogaBudgetUtilisationHigh" in result.stdout + result.stderr


def test_the_issue_asks_for_these_alerts():
    by_name = {rule["alert"]: rule["expr"] for rule in rules()}
    assert "dopomoga_budget_utilisation_ratio" in by_name["DopomogaBudgetUtilisationHigh"]
    assert ">= 0.9" in by_name["DopomogaBudgetUtilisationHigh"]
    assert "dopomoga_events_dead_lettered_total" in by_name["DopomogaDeadLettersRising"]
    lag = by_name["DopomogaConsumerGroupLagHigh"]
    assert "by (consumergroup)" in lag and "kafka_consumergroup_lag" in lag  # every group, the treasury's too
    assert "dopomoga_consumer_lag" in by_name["DopomogaServiceLagHigh"]
    assert re.search(r"up\{job=~\"[^\"]*treasury[^\"]*\"\} == 0", by_name["DopomogaTargetDown"])
    assert "kafka_brokers < 3" in by_name["KafkaBrokerDown"]
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_rules_query_only_metrics_that_exist():
    defined = defined_metric_samples() | KAFKA_EXPORTER | {"up"}
    for rule in rules():
        expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", rule["expr"])
        names = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b", expr)) - PROMQL_WORDS
        names -= {"program", "period", "service", "reason", "consumergroup", "job"}  # grouping labels
        assert names <= defined, f"{rule['alert']}: not exported by anything: {sorted(names - defined)}"


def test_prometheus_gets_the_rules_and_scrapes_the_kafka_exporter():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["alerts.yml"]
    services = load_compose()["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    kafka = next(job for job in config["scrape_configs"] if job["job_name"] == "kafka")
    host, port = kafka["static_configs"][0]["targets"][0].split(":")
    assert host in services and services[host]["image"].startswith("danielqsj/kafka-exporter:")
    assert port == "9308"
    assert len([a for a in services[host]["command"] if a.startswith("--kafka.server=")]) == 3
