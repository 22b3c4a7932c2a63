"""API keys and roles for the gateway.

Roles: ``registry`` (submit applications), ``viewer`` (read programs, parameters, budgets,
decisions), ``budget_admin`` (everything a viewer may, plus allocations and period closes).

Keys come from ``DOPOMOGA_API_KEYS_FILE`` (JSON ``{"<key>": {"name": "ops-1", "roles":
["viewer"]}}``) and/or ``DOPOMOGA_API_KEYS`` (``key=role+role:name,key2=role``). When
neither is set, three development keys are used (``dev-viewer``, ``dev-budget-admin``,
``dev-registry``) and the gateway says so in ``/healthz``; never run like that in production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

ROLES = ("viewer", "budget_admin", "registry")
IMPLIED = {"budget_admin": {"viewer"}}
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
        if not keys:
            return cls(dict(DEV_KEYS), development=True)
        return cls(keys)

    def lookup(self, key: str | None) -> Principal | None:
        if not key:
            return None
        digest = hashlib.sha256(key.encode()).hexdigest()
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None
