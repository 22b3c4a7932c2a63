"""People of the console: accounts, sessions, the audit trail and amendments awaiting approval.

- **Accounts** come from ``DOPOMOGA_USERS_FILE`` (JSON ``{"login": {"name": "Олена К.", "roles":
  ["budget_admin"], "password_hash": "$argon2id$..."}}``; make a hash with ``python -m
  services.gateway.users hash``). Passwords are hashed with Argon2id (``argon2-cffi``); no
  password is ever stored or logged in clear. Roles: ``viewer``, ``registry``, ``budget_admin``,
  ``approver`` (``services.gateway.auth.ROLES``).
- **Development users** (``viewer``, ``registry``, ``admin``, ``approver``; password ``dopomoga``)
  exist only with ``DOPOMOGA_DEV=1``; the console then shows a banner.
- **Sessions**: a random token in an HttpOnly, SameSite=Strict cookie; the store keeps only its
  SHA-256, an expiry (8 h) and a CSRF token every form posts back.
- **Audit**: who did what, when (sign-ins, reveals of personal data, allocations proposed,
  approved or rejected, months closed, dead letters resubmitted). Append-only.
- **Amendments** (maker-checker): a budget admin proposes, a *different* person with the
  ``approver`` role approves; only then is the ``AllocationSet`` published.

Tables live beside the status store (``DOPOMOGA_GATEWAY_DB``; SQLite under ``var/`` by default).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

from services.gateway.auth import ROLES, KeyConfigError, _roles, development_flag

metadata = MetaData()
SESSION_HOURS = 8
DEV_PASSWORD = "dopomoga"
DEV_USERS = {
    "viewer": ("Переглядач (dev)", ["viewer"]),
    "registry": ("Реєстр (dev)", ["registry", "viewer"]),
    "admin": ("Бюджет-адмін (dev)", ["budget_admin"]),
    "approver": ("Затверджувач (dev)", ["approver"]),
}

users = Table(
    "console_users", metadata,
    Column("login", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("roles", String(128), nullable=False),
    Column("password_hash", Text, nullable=False),
)
sessions = Table(
    "console_sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("login", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("expires_at", String(40), nullable=False),
)
audit = Table(
    "console_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200)),
    Column("detail", Text),
)
amendments = Table(
    "console_amendments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request", Text, nullable=False),  # the AllocationRequest as JSON
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", String(40), nullable=False),
    Column("status", String(16), nullable=False, index=True),  # pending | approved | rejected
    Column("decided_by", String(64)),
    Column("decided_at", String(40)),
    Column("event_id", String(96)),
)


@dataclass(frozen=True)
class User:
    login: str
    name: str
    roles: frozenset[str]
    csrf: str = ""

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, engine: Engine, environ: dict[str, str] | None = None):
        self.engine = engine
        self.hasher = PasswordHasher()
        metadata.create_all(engine)
        env = os.environ if environ is None else environ
        self.development = development_flag(env)
        self._load(env)

    def _load(self, env) -> None:
        wanted: dict[str, tuple[str, frozenset[str], str]] = {}
        path = env.get("DOPOMOGA_USERS_FILE")
        if path:
            try:
                raw = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise KeyConfigError(f"users file {path} cannot be read: {type(exc).__name__}") from None
            for login, body in (raw or {}).items():
                if not isinstance(body, dict) or not str(body.get("password_hash", "")).startswith("$argon2"):
                    raise KeyConfigError(f"users file {path}, {login!r}: needs roles and an argon2 password_hash")
                wanted[login] = (str(body.get("name") or login), _roles(body.get("roles", []), f"{path} {login}"),
                                 body["password_hash"])
        if self.development:
            dev_hash = self.hasher.hash(DEV_PASSWORD)
            for login, (name, roles) in DEV_USERS.items():
                wanted.setdefault(login, (name, _roles(roles, "development users"), dev_hash))
        # The file (and the flag) are the truth at every start; several workers may start at once.
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(users.delete().where(users.c.login.not_in(list(wanted) or [""])))
                    known = set(conn.execute(select(users.c.login)).scalars())
                    for login, (name, roles, digest) in wanted.items():
                        values = {"name": name, "roles": ",".join(sorted(roles)), "password_hash": digest}
                        if login in known:
                            conn.execute(users.update().where(users.c.login == login).values(**values))
                        else:
                            conn.execute(users.insert().values(login=login, **values))
                return
            except IntegrityError:  # another worker inserted the same login first: read again
                if attempt == 2:
                    raise

    # -- sign in and sessions ---------------------------------------------------------------------
    def authenticate(self, login: str, password: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.login == login[:64])).mappings().first()
        if row is None:
            self.hasher.hash(password[:256])  # the same work either way: no user enumeration by timing
            return None
        try:
            self.hasher.verify(row["password_hash"], password[:256])
        except (VerificationError, InvalidHashError):
            return None
        return User(row["login"], row["name"], frozenset(row["roles"].split(",")))

    def open_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at < _iso(_now())))
            conn.execute(sessions.insert().values(token_sha256=_sha(token), login=user.login,
                                                  csrf=secrets.token_urlsafe(24),
                                                  expires_at=_iso(_now() + dt.timedelta(hours=SESSION_HOURS))))
        return token

    def session_user(self, token: str | None) -> User | None:
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.csrf, sessions.c.expires_at, users.c.login, users.c.name, users.c.roles)
                .join(users, users.c.login == sessions.c.login)
                .where(sessions.c.token_sha256 == _sha(token))
            ).mappings().first()
        if row is None or row["expires_at"] < _iso(_now()):
            return None
        return User(row["login"], row["name"], frozenset(row["roles"].split(",")), row["csrf"])

    def close_session(self, token: str | None) -> None:
        if token:
            with self.engine.begin() as conn:
                conn.execute(sessions.delete().where(sessions.c.token_sha256 == _sha(token)))

    # -- audit ------------------------------------------------------------------------------------
    def record(self, actor: str, action: str, target: str | None = None, detail: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(at=_iso(_now()), actor=actor, action=action,
                                               target=(target or "")[:200], detail=detail))

    def trail(self, limit: int = 100, actions: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        q = select(audit).order_by(audit.c.id.desc()).limit(limit)
        if actions:
            q = q.where(audit.c.action.in_(actions))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # -- amendments (maker-checker) ---------------------------------------------------------------
    def propose(self, request: dict[str, Any], by: User) -> int:
        with self.engine.begin() as conn:
            done = conn.execute(amendments.insert().values(
                request=json.dumps(request, ensure_ascii=False), proposed_by=by.login, proposed_at=_iso(_now()),
                status="pending"))
            return int(done.inserted_primary_key[0])

    def amendment(self, ident: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(amendments).where(amendments.c.id == ident)).mappings().first()
        return None if row is None else {**row, "request": json.loads(row["request"])}

    def amendments(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(amendments).order_by(amendments.c.id.desc()).limit(limit)
        if status:
            q = q.where(amendments.c.status == status)
        with self.engine.connect() as conn:
            return [{**r, "request": json.loads(r["request"])} for r in conn.execute(q).mappings()]

    def decide(self, ident: int, by: User, approve: bool, event_id: str | None = None) -> bool:
        """Approve or reject a pending amendment; only once, and never by its proposer."""
        with self.engine.begin() as conn:
            done = conn.execute(
                amendments.update()
                .where(amendments.c.id == ident, amendments.c.status == "pending", amendments.c.proposed_by != by.login)
                .values(status="approved" if approve else "rejected", decided_by=by.login,
                        decided_at=_iso(_now()), event_id=event_id)
            )
            return done.rowcount == 1


def main(argv: list[str]) -> int:
    """``python -m services.gateway.users hash``: read a password, print its Argon2id hash."""
    if argv[:1] != ["hash"]:
        print("usage: python -m services.gateway.users hash   (reads the password from stdin or a prompt)",
              file=sys.stderr)
        print(f"roles: {', '.join(ROLES)}", file=sys.stderr)
        return 2
    import getpass

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("use at least 12 characters", file=sys.stderr)
        return 1
    print(PasswordHasher().hash(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
