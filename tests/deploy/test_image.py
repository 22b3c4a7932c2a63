"""The image side of the compose fixes: volume directories, the entrypoint, the helper scripts.

There is no Docker engine here, so the Dockerfile is read, not built; the scripts it installs are
run for real (the entrypoint execs a real command, the health check probes a real HTTP server,
the migrate job migrates a real SQLite ledger, SQLAlchemy parses the URLs the entrypoint builds).
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import PurePosixPath

import pytest
from sqlalchemy.engine import make_url

from tests.deploy.support import ROOT, dopomoga_services, load_compose

DEPLOY = ROOT / "deploy"
_spec = importlib.util.spec_from_file_location("dopomoga_deploy_entrypoint", DEPLOY / "entrypoint.py")
entrypoint = importlib.util.module_from_spec(_spec)  # deploy/entrypoint.py: a script, not a package
_spec.loader.exec_module(entrypoint)

NASTY = "p@ss:w/rd %41#?&=+ їжак\\'\""


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines[last_from:]]


# -- volumes: the directories exist in the image, owned by the service user ----------------------

def test_every_volume_of_the_dopomoga_services_is_a_directory_the_service_user_owns():
    steps = dockerfile()
    user_at = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    assert user_at and steps[user_at[-1]][1] == "dopomoga", "the image must not run as root"
    created: set[str] = set()
    owned: list[str] = []
    for op, args in steps[: user_at[-1]]:
        if op != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            words = shlex.split(command)
            if words[:1] == ["mkdir"]:
                for made in (w.rstrip("/") for w in words[1:] if not w.startswith("-")):
                    created.add(made)
                    if "-p" in words:  # and its parents
                        created |= {str(parent) for parent in PurePosixPath(made).parents}
            if words[:1] == ["chown"]:
                recursive = "-R" in words
                owner = next(w for w in words[1:] if not w.startswith("-"))
                assert owner.split(":")[0] == "dopomoga", command
                owned += [(p.rstrip("/") + ("/" if recursive else "")) for p in words[1:] if p.startswith("/")]

    def is_owned(path: str) -> bool:
        return any(path == o or (o.endswith("/") and (path + "/").startswith(o)) for o in owned)

    targets = set()
    for service in dopomoga_services(load_compose()).values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/")):  # named volumes get the image directory's owner
                targets.add(target)
    assert "/app/var/registers" in targets  # the treasury's, which crash-looped
    for target in sorted(targets):
        assert target in created, f"{target}: no `mkdir` in the Dockerfile (Docker would create it root-owned)"
        assert is_owned(target), f"{target}: not chowned to dopomoga before USER"


def test_the_image_ships_the_scripts_compose_runs_and_uses_the_entrypoint():
    steps = dockerfile()
    copied = " ".join(args for op, args in steps if op == "COPY")
    compose = load_compose()
    needed = {"deploy/entrypoint.py", "deploy/healthcheck.py", "deploy/migrate.py", "deploy/create_topics.py"}
    for word in (w for s in compose["services"].values() for w in (s.get("command") or []) if isinstance(w, str)):
        if word.startswith("deploy/"):
            needed.add(word)
    for path in needed:
        assert path in copied, f"{path} is not copied into the image"
        assert (ROOT / path).exists(), path
    entry = [json.loads(args) for op, args in steps if op == "ENTRYPOINT"]
    assert entry == [["python", "/app/deploy/entrypoint.py"]]
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "deploy/secrets" in ignored and ".venv" in ignored  # secrets never reach the build context


def test_the_deploy_scripts_import_against_this_tree():
    """create_topics.py and migrate.py import the services and the ledger, which move (issue 11)."""
    for script in ("create_topics.py", "migrate.py"):
        spec = importlib.util.spec_from_file_location(f"dopomoga_deploy_{script[:-3]}", DEPLOY / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert callable(module.main), script
    from dopomoga.budget.ledger import BudgetLedger  # what migrate.py constructs

    assert callable(BudgetLedger)


# -- entrypoint: the password goes into the URL percent-encoded, from a file only -----------------

def secret_file(tmp_path, value: str, name: str = "postgres_password"):
    path = tmp_path / name
    path.write_text(value, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("password", [NASTY, "plain", "%2F already-encoded-looking", "@", ":"])
def test_the_entrypoint_builds_a_url_sqlalchemy_reads_back_exactly(tmp_path, password):
    env = {"DOPOMOGA_DB": "postgresql+psycopg://dopomoga@postgres:5432/dopomoga",
           "DOPOMOGA_DB_PASSWORD_FILE": secret_file(tmp_path, password + "\n")}
    entrypoint.prepare(env)
    url = make_url(env["DOPOMOGA_DB"])
    assert url.password == password  # the trailing newline of the file is not part of it
    assert (url.drivername, url.username, url.host, url.port, url.database) == (
        "postgresql+psycopg", "dopomoga", "postgres", 5432, "dopomoga")
    encoded = env["DOPOMOGA_DB"].split("://", 1)[1].rpartition("@")[0].split(":", 1)[1]
    assert re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+", encoded), encoded  # nothing a URL parser could misread


def test_the_entrypoint_execs_the_command_with_the_url_and_nothing_else_changes(tmp_path):
    env = {**os.environ, "DOPOMOGA_DB": "postgresql+psycopg://dopomoga@postgres:5432/dopomoga",
           "DOPOMOGA_DB_PASSWORD_FILE": secret_file(tmp_path, NASTY + "\n")}
    probe = "import os, json; print(json.dumps({k: os.environ.get(k) for k in ('DOPOMOGA_DB', 'KEEP')}))"
    result = subprocess.run([sys.executable, str(DEPLOY / "entrypoint.py"), sys.executable, "-c", probe],
                            env={**env, "KEEP": "kept"}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["KEEP"] == "kept"
    assert make_url(seen["DOPOMOGA_DB"]).password == NASTY
    assert NASTY not in result.stderr


@pytest.mark.parametrize(("url", "content", "complaint"), [
    ("postgresql+psycopg://dopomoga:inline@postgres/dopomoga", "s3cr3t-value", "already carries a password"),
    ("postgresql+psycopg://postgres/dopomoga", "s3cr3t-value", "must name the database user"),
    ("postgresql+psycopg://dopomoga@postgres/dopomoga", "CHANGE-ME-postgres-password\n", "placeholder"),
    ("postgresql+psycopg://dopomoga@postgres/dopomoga", "\n", "empty"),
    (None, "s3cr3t-value", "DOPOMOGA_DB (the URL without a password) is not"),
])
def test_the_entrypoint_refuses_to_start_on_a_bad_setting(tmp_path, url, content, complaint):
    env = {k: v for k, v in os.environ.items() if k != "DOPOMOGA_DB"}
    env["DOPOMOGA_DB_PASSWORD_FILE"] = secret_file(tmp_path, content)
    if url:
        env["DOPOMOGA_DB"] = url
    result = subprocess.run([sys.executable, str(DEPLOY / "entrypoint.py"), "true"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 78, result
    assert complaint in result.stderr
    assert "inline" not in result.stderr and "s3cr3t" not in result.stderr  # never echoes a secret


def test_the_entrypoint_refuses_the_shipped_example_secrets():
    for example in sorted((DEPLOY / "secrets").glob("*.example")):
        with pytest.raises(entrypoint.ConfigError, match="placeholder"):
            entrypoint.read_secret(str(example), "X_FILE")
    env = {"DOPOMOGA_API_KEYS_FILE": "/run/secrets/api_keys"}
    with pytest.raises(entrypoint.ConfigError, match="cannot read"):  # missing secret: stop, do not fall back
        entrypoint.prepare(env)


def test_without_a_password_file_the_entrypoint_leaves_the_url_alone():
    env = {"DOPOMOGA_DB": "sqlite:////app/var/ledger.sqlite"}
    entrypoint.prepare(env)
    assert env == {"DOPOMOGA_DB": "sqlite:////app/var/ledger.sqlite"}


# -- generated secrets: real values the entrypoint accepts -----------------------------------------

def test_generated_secrets_are_private_random_and_accepted(secrets_dir):
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    names = {p.name for p in secrets_dir.iterdir()}
    assert names == {"postgres_password", "api_keys.json", "grafana_admin_password"}
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, path
        assert len(entrypoint.read_secret(str(path), "X_FILE")) >= 24
    keys = json.loads((secrets_dir / "api_keys.json").read_text(encoding="utf-8"))
    assert sorted(r for body in keys.values() for r in body["roles"]) == ["budget_admin", "registry", "viewer"]
    again = subprocess.run([sys.executable, str(DEPLOY / "generate_secrets.py"), str(secrets_dir)],
                           capture_output=True, text=True, check=True)
    assert again.stdout.count("kept") == 3  # never overwrites


# -- health check script ----------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/metrics" else 503)
        self.end_headers()
        self.wfile.write(b"dopomoga_events_consumed_total 1\n")

    def log_message(self, *args):
        pass


def test_the_health_check_script_reports_up_and_down():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    script = [sys.executable, str(DEPLOY / "healthcheck.py")]
    try:
        assert subprocess.run([*script, f"http://127.0.0.1:{port}/metrics"], capture_output=True, timeout=30).returncode == 0
        assert subprocess.run([*script, f"http://127.0.0.1:{port}/other"], capture_output=True, timeout=30).returncode == 1
    finally:
        server.shutdown()
        server.server_close()
    down = subprocess.run([*script, f"http://127.0.0.1:{port}/metrics", "1"], capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "127.0.0.1" in down.stdout


# -- migrate job ------------------------------------------------------------------------------

def test_the_migrate_job_brings_a_fresh_ledger_to_head_and_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    env = {**os.environ, "DOPOMOGA_DB": url, "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        result = subprocess.run([sys.executable, str(DEPLOY / "migrate.py")], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert re.search(r"migrate: ledger at revision \w+ \(sqlite", result.stdout), result.stdout
    missing = subprocess.run([sys.executable, str(DEPLOY / "migrate.py")],
                             env={k: v for k, v in env.items() if k != "DOPOMOGA_DB"},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 78
