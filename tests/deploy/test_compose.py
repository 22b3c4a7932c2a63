"""The compose fixes of issue 15, one test each, and the compose file through a real compose CLI.

- secrets come from files (compose ``secrets:``), none from the environment;
- no URL carries a password (the entrypoint inserts it, percent-encoded: ``test_image.py``);
- every long-running service has a health check that probes the port it really serves;
- a one-shot ``migrate`` job runs after PostgreSQL is healthy and before every service;
- ``docker compose config`` (or ``docker-compose config``) accepts the file and rejects a typo.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess

import pytest
import yaml

from tests.deploy.support import ROOT, compose_command, dopomoga_services, load_compose, long_running

URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)
SECRET_NAMES = re.compile(r"PASSWORD|SECRET|API_KEYS|TOKEN", re.IGNORECASE)
LEDGER_USERS = {"migrate", "budget", "gateway", "treasury", "eligibility"}  # eligibility: the shared grant history


def strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


def secret_names(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


# -- secrets ---------------------------------------------------------------------------------

def test_secrets_come_from_files_and_every_service_gets_the_ones_it_reads():
    compose = load_compose()
    declared = compose["secrets"]
    assert set(declared) == {"postgres_password", "api_keys", "grafana_admin_password"}
    for name, spec in declared.items():
        assert set(spec) == {"file"}, name  # a file, not `environment:` (compose 2.23+) or external
        default = re.sub(r"\$\{DOPOMOGA_SECRETS:-([^}]+)\}", r"\1", spec["file"])
        assert default.startswith("./deploy/secrets/"), default
        example = ROOT / (default[2:] + ".example")
        assert example.exists(), f"{example} is not shipped"
        assert "CHANGE-ME" in example.read_text(encoding="utf-8"), example
    services = compose["services"]
    for name, service in services.items():
        used = secret_names(service)
        assert used <= set(declared), name
        for variable, value in (service.get("environment") or {}).items():
            if variable.endswith("_FILE") or variable.endswith("__FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in used, f"{name}: {variable} names /run/secrets/{secret}, not mounted"
    assert secret_names(services["postgres"]) == {"postgres_password"}
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "api_keys" in secret_names(services["gateway"])
    assert services["gateway"]["environment"]["DOPOMOGA_API_KEYS_FILE"] == "/run/secrets/api_keys"
    assert "DOPOMOGA_API_KEYS" not in services["gateway"]["environment"]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    for name in LEDGER_USERS:
        assert "postgres_password" in secret_names(services[name]), name
        assert services[name]["environment"]["DOPOMOGA_DB_PASSWORD_FILE"] == "/run/secrets/postgres_password", name
    for name in ("calculation",):  # it never opens a database: no password for it
        assert not secret_names(services[name]), name


def test_no_secret_value_in_the_environment_or_interpolated_from_the_shell():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert interpolated <= {"DOPOMOGA_SECRETS"}, interpolated  # was POSTGRES_PASSWORD, DOPOMOGA_API_KEYS, ...
    for name, service in load_compose()["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAMES.search(variable) and not variable.endswith("FILE"):
                pytest.fail(f"{name}: {variable}={value!r} puts a secret in the environment")


def test_no_url_carries_a_password():
    compose = load_compose()
    found = [value for value in strings(compose) if URL_WITH_PASSWORD.search(value)]
    assert found == []
    # The guard itself: the URL the file had before would be caught.
    assert URL_WITH_PASSWORD.search("postgresql+psycopg://dopomoga:${POSTGRES_PASSWORD}@postgres:5432/dopomoga")
    for name in LEDGER_USERS:
        url = compose["services"][name]["environment"]["DOPOMOGA_DB"]
        assert re.fullmatch(r"postgresql\+psycopg://dopomoga@postgres:5432/dopomoga", url), (name, url)


# -- health checks ---------------------------------------------------------------------------

def test_every_long_running_service_has_a_health_check():
    compose = load_compose()
    running = long_running(compose)
    assert {"eligibility", "calculation", "budget", "gateway", "treasury", "postgres", "prometheus",
            "grafana", "kafka-exporter", "kafka-1", "kafka-2", "kafka-3"} <= set(running)
    for name, service in running.items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def test_the_services_health_checks_probe_the_port_they_serve():
    compose = load_compose()
    for name, service in dopomoga_services(compose).items():
        if name not in long_running(compose):
            continue
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "/app/deploy/healthcheck.py"], (name, test)
        url = test[3]
        if name == "gateway":
            assert url == "http://127.0.0.1:8000/healthz"
            assert "8000:8000" in service["ports"]
        else:
            port = service["environment"][f"DOPOMOGA_METRICS_PORT_{name.upper()}"]
            assert url == f"http://127.0.0.1:{port}/metrics", name
            assert service["environment"]["DOPOMOGA_METRICS_ADDR"] == "0.0.0.0", name
    assert (ROOT / "deploy" / "healthcheck.py").exists()


# -- migrate job -----------------------------------------------------------------------------

def test_migrate_runs_once_after_postgres_and_before_every_service():
    compose = load_compose()
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["image"] == "dopomoga:latest" and str(migrate["restart"]) == "no"
    assert migrate["command"] == ["python", "deploy/migrate.py"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "DOPOMOGA_DB" in migrate["environment"]
    jobs = {"topics", "migrate"}
    app_services = {n: s for n, s in dopomoga_services(compose).items() if n not in jobs}
    assert set(app_services) == {"eligibility", "calculation", "budget", "gateway", "treasury"}
    for name, service in app_services.items():
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["topics"]["condition"] == "service_completed_successfully", name
    assert services["topics"]["depends_on"]["kafka-1"]["condition"] == "service_healthy"


# -- commands --------------------------------------------------------------------------------

def test_every_command_compose_runs_in_the_image_exists_in_this_tree():
    """Modules move (issue 11): each `command:` must still name a module, script or CLI command."""
    import tomllib

    import typer
    from typer.main import get_command

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    for name, service in dopomoga_services(load_compose()).items():
        command = service["command"]
        if command[:2] == ["python", "-m"]:
            module = command[2]
            assert importlib.util.find_spec(module) is not None, (name, module)
            assert (ROOT / module.replace(".", "/") / "__main__.py").exists() or (
                ROOT / (module.replace(".", "/") + ".py")).exists(), (name, module)
        elif command[0] == "python":
            assert command[1].startswith("deploy/") and (ROOT / command[1]).exists(), (name, command)
        elif command[0] == "uvicorn":
            module, _, attribute = next(a for a in command[1:] if ":" in a).partition(":")
            assert hasattr(importlib.import_module(module), attribute), (name, command)
        elif command[0] in scripts:
            module, _, attribute = scripts[command[0]].partition(":")
            target = getattr(importlib.import_module(module), attribute)
            if not isinstance(target, typer.Typer):  # the console script wraps the Typer app (clear errors)
                target = importlib.import_module(module).app
            cli = get_command(target)
            for word in command[1:]:
                if word.startswith("-"):
                    break
                assert word in cli.commands, (name, command, word)  # a group's subcommand
                cli = cli.commands[word]
        else:
            pytest.fail(f"{name}: unknown command form {command}")


# -- volumes ---------------------------------------------------------------------------------

def test_the_registers_volume_is_mounted_where_the_treasury_writes():
    treasury = load_compose()["services"]["treasury"]
    targets = {v.split(":")[1] for v in treasury["volumes"]}
    assert "/app/var/registers" in targets
    assert treasury["environment"]["DOPOMOGA_REGISTERS"] == "/app/var/registers"
    # that the image has the directory, owned by the service user: test_image.py


# -- a real compose CLI ----------------------------------------------------------------------

def _compose_config(command: list[str], path, secrets_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env["DOPOMOGA_SECRETS"] = str(secrets_dir)
    return subprocess.run([*command, "-f", str(path), "--project-directory", str(ROOT), "config"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_docker_compose_config_accepts_the_file_and_rejects_a_typo(tmp_path, secrets_dir):
    command = compose_command()
    if command is None:
        message = "no `docker compose` nor `docker-compose` (deploy/install-tools.sh installs docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message + "; the JSON-schema test in test_deploy.py still ran")
    result = _compose_config(command, ROOT / "docker-compose.yml", secrets_dir)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert not any(URL_WITH_PASSWORD.search(value) for value in strings(resolved))
    for name, spec in resolved["secrets"].items():
        assert spec["file"].startswith(str(secrets_dir)), (name, spec)
    assert resolved["services"]["budget"]["environment"]["DOPOMOGA_DB_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    broken = load_compose()
    broken["services"]["migrate"]["depends_on"]["postgres"]["conditon"] = "service_healthy"  # a typo
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert _compose_config(command, path, secrets_dir).returncode != 0
