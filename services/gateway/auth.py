"""API keys and roles for the gateway.

Roles: ``registry`` (submit applications), ``viewer`` (read programs, parameters, budgets,
decisions), ``budget_admin`` (everything a viewer may, plus allocations and period closes).

Keys come from ``DOPOMOGA_API_KEYS_FILE`` (JSON ``{"<key>": {"name": "ops-1", "roles":
["viewer"]}}``) and/or ``DOPOMOGA_API_KEYS`` (``key=role+role:name,key2=role``). The three development keys
(``dev-viewer``, ``dev-budget-admin``, ``dev-registry``) work ONLY with the explicit development
flag ``DOPOMOGA_DEV=1`` (``dopomoga up`` sets it for the local stack); the gateway then warns at
start, says so in ``/healthz`` and shows a banner in the console. Without keys and without the
flag no key is accepted.

``FailureLimiter`` locks a client out after repeated authentication failures (wrong API keys,
wrong passwords): 429 with ``Retry-After`` until the lockout ends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

ROLES = ("viewer", "budget_admin", "registry", "approver")
IMPLIED = {"budget_admin": {"viewer"}, "approver": {"viewer"}}
DEV_KEYS = {
    "dev-viewer": ("dev-viewer", frozenset({"viewer"})),
    "dev-budget-admin": ("dev-budget-admin", frozenset({"budget_admin", "viewer"})),
    "dev-registry": ("dev-registry", frozenset({"registry"})),
}


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]


class KeyConfigError(ValueError):
    pass


def development_flag(environ: Mapping[str, str] | None = None) -> bool:
    """``DOPOMOGA_DEV=1`` (or true/yes/on): development keys and users are accepted."""
    env = os.environ if environ is None else environ
    return env.get("DOPOMOGA_DEV", "").strip().lower() in ("1", "true", "yes", "on")


def _roles(raw, where: str) -> frozenset[str]:
    roles = set(raw)
    unknown = roles - set(ROLES)
    if unknown:
        raise KeyConfigError(f"{where}: unknown role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    for role in list(roles):
        roles |= IMPLIED.get(role, set())
    return frozenset(roles)


class KeyStore:
    """Looks keys up by their SHA-256 (constant-time compare); keeps no key in clear."""

    def __init__(self, keys: dict[str, tuple[str, frozenset[str]]], development: bool = False):
        self._by_hash = {hashlib.sha256(k.encode()).hexdigest(): Principal(n, r) for k, (n, r) in keys.items()}
        self.development = development

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> KeyStore:
        env = os.environ if environ is None else environ
        keys: dict[str, tuple[str, frozenset[str]]] = {}
        path = env.get("DOPOMOGA_API_KEYS_FILE")
        if path:
            try:
                raw = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise KeyConfigError(f"API key file {path} cannot be read: {exc}") from None
            if not isinstance(raw, dict):
                raise KeyConfigError(f"API key file {path}: expected an object keyed by API key")
            for number, (key, body) in enumerate(raw.items(), start=1):
                where = f"{path} entry {number}"
                if not isinstance(body, dict) or not isinstance(body.get("roles"), list):
                    raise KeyConfigError(f"{where}: expected {{'name': ..., 'roles': [...]}}")
                keys[key] = (str(body.get("name") or f"key-{number}"), _roles(body["roles"], where))
        inline = env.get("DOPOMOGA_API_KEYS", "").strip()
        if inline:
            for number, item in enumerate(inline.split(","), start=1):
                key, _, rest = item.strip().partition("=")
                roles, _, name = rest.partition(":")
                if not key or not roles:
                    raise KeyConfigError(f"DOPOMOGA_API_KEYS item {number}: expected key=role[+role][:name]")
                keys[key] = (name or f"key-{number}", _roles(roles.split("+"), f"DOPOMOGA_API_KEYS item {number}"))
        if development_flag(env):
            return cls({**DEV_KEYS, **keys}, development=True)
        return cls(keys)

    def lookup(self, key: str | None) -> Principal | None:
        if not key:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


class FailureLimiter:
    """Counts authentication failures per client (and per user name); locks out on too many.

    ``max_failures`` within ``window_s`` seconds lock the client out for ``lockout_s`` seconds;
    a success clears the count. In memory, per gateway process (a restart forgets it).
    """

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, lockout_s: float = 300.0,
                 clock=time.monotonic):
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self._clock = clock
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, who: str) -> int | None:
        """Seconds left of a lockout, or ``None`` when ``who`` may try."""
        with self._lock:
            until = self._locked.get(who)
            if until is None:
                return None
            left = until - self._clock()
            if left <= 0:
                del self._locked[who]
                return None
            return max(1, int(left + 0.999))

    def failure(self, who: str) -> None:
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(who, []) if now - t < self.window_s]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._locked[who] = now + self.lockout_s
                recent = []
            self._failures[who] = recent
            if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
                self._failures.clear()

    def success(self, who: str) -> None:
        with self._lock:
            self._failures.pop(who, None)


def api_key_check(gw, *roles: str):
    """A FastAPI dependency: a valid ``X-API-Key`` holding one of ``roles``, with the lockout.

    ``gw()`` returns the gateway (``keys``: a ``KeyStore``, ``limiter``: a ``FailureLimiter``).
    """
    header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="API key; roles viewer, budget_admin, registry, approver")

    def check(request: Request, key: str | None = Depends(header)) -> Principal:
        g = gw()
        client = request.client.host if request.client else "-"
        wait = g.limiter.retry_after(client)
        if wait is not None:
            raise HTTPException(429, f"too many failed authentications; retry in {wait} s",
                                headers={"Retry-After": str(wait)})
        principal = g.keys.lookup(key)
        if principal is None:
            if key:
                g.limiter.failure(client)
            raise HTTPException(401, "missing or unknown X-API-Key", headers={"WWW-Authenticate": "APIKey"})
        if not any(r in principal.roles for r in roles):
            raise HTTPException(403, f"this API key lacks the role {' or '.join(repr(r) for r in roles)}")
        return principal

    return check
