"""Entry point of the Dopomoga image: put the database password into the ledger URL, then exec.

The compose file never carries the PostgreSQL password. It sets the URL without one and names
the secret file that holds it::

    DOPOMOGA_DB=postgresql+psycopg://dopomoga@postgres:5432/dopomoga
    DOPOMOGA_DB_PASSWORD_FILE=/run/secrets/postgres_password

This script reads the file (trailing newlines dropped, as the postgres image does), inserts the
password percent-encoded (so ``@ : / % # ?`` and spaces survive; SQLAlchemy decodes it), exports
the result as ``DOPOMOGA_DB`` and replaces itself with the command (``exec``: the service is
PID 1 and gets the signals). The URL with the password exists only in that process's
environment, never in the compose file, ``docker inspect`` or a log line.

Any ``*_FILE`` variable whose file still holds the ``CHANGE-ME`` marker of the shipped examples
(``deploy/secrets/*.example``) stops the container before it starts with a placeholder secret.

Usage (the Dockerfile's ENTRYPOINT): ``python /app/deploy/entrypoint.py <command> [args...]``
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from urllib.parse import quote, urlsplit, urlunsplit

PLACEHOLDER = "CHANGE-ME"


class ConfigError(Exception):
    """A setting the container cannot start with (the message names the variable, never a secret)."""


def read_secret(path: str, variable: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().rstrip("\n")
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read it ({type(exc).__name__})") from None
    if not value:
        raise ConfigError(f"{variable}={path}: the file is empty")
    if PLACEHOLDER in value:
        raise ConfigError(f"{variable}={path}: still the example's {PLACEHOLDER} placeholder; "
                          "generate real secrets (python3 deploy/generate_secrets.py)")
    return value


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` percent-encoded into its user-info (the URL must name a user, no password)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or not userinfo:
        raise ConfigError("DOPOMOGA_DB must name the database user (scheme://user@host/db) "
                          "when DOPOMOGA_DB_PASSWORD_FILE is set")
    if ":" in userinfo:
        raise ConfigError("DOPOMOGA_DB already carries a password: set it only in DOPOMOGA_DB_PASSWORD_FILE")
    netloc = f"{userinfo}:{quote(password, safe='')}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def prepare(env: MutableMapping[str, str]) -> None:
    """Check every ``*_FILE`` secret and build ``DOPOMOGA_DB`` in ``env`` (in place)."""
    for variable, path in sorted(env.items()):
        if variable.endswith("_FILE") and path.startswith("/run/secrets/"):
            read_secret(path, variable)
    password_file = env.get("DOPOMOGA_DB_PASSWORD_FILE")
    if password_file:
        url = env.get("DOPOMOGA_DB")
        if not url:
            raise ConfigError("DOPOMOGA_DB_PASSWORD_FILE is set but DOPOMOGA_DB (the URL without a password) is not")
        env["DOPOMOGA_DB"] = with_password(url, read_secret(password_file, "DOPOMOGA_DB_PASSWORD_FILE"))


def main(argv: list[str], env: Mapping[str, str] | None = None) -> None:
    environment = dict(os.environ if env is None else env)
    if not argv:
        raise ConfigError("no command given")
    prepare(environment)
    os.execvpe(argv[0], argv, environment)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConfigError as exc:
        print(f"dopomoga entrypoint: {exc}", file=sys.stderr)
        sys.exit(78)  # EX_CONFIG
